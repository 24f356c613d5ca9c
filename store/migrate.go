package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// migrationFS holds the schema of each dialect as numbered SQL files,
// migrations/<dialect>/NNNN_name.sql, applied in order and never edited once
// released.
//
//go:embed migrations
var migrationFS embed.FS

// migrateLock is the PostgreSQL advisory lock that serializes migrations
// when several berth processes start at once.
const migrateLock int64 = 0x6265727468_01 // "berth", 1

type migration struct {
	version int
	name    string
	sql     string
}

// migrations reads the embedded migrations of a dialect, in order.
func migrations(dialect string) ([]migration, error) {
	dir := path.Join("migrations", dialect)
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var out []migration
	for _, e := range entries {
		base, ok := strings.CutSuffix(e.Name(), ".sql")
		num, name, ok2 := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || !ok2 || err != nil || v < 1 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name.sql", e.Name())
		}
		b, err := fs.ReadFile(migrationFS, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		out = append(out, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("migration version %d appears twice", out[i].version)
		}
	}
	return out, nil
}

// migrate applies the migrations the database lacks — every one not
// recorded, not only those above the newest recorded, so a database that
// got a later migration first (from a development build) still gets an
// earlier one — each in its own
// transaction. On PostgreSQL each transaction first takes an advisory lock,
// so that two processes starting at once apply each migration once; on
// SQLite the IMMEDIATE transaction does the same.
func (s *Store) migrate(ctx context.Context) error {
	all, err := migrations(s.dialect)
	if err != nil {
		return err
	}
	timeType := "TEXT"
	if s.dialect == Postgres {
		timeType = "TIMESTAMPTZ"
	}
	lock := func(ctx context.Context, d db) error {
		if !d.pg {
			return nil
		}
		_, err := d.exec(ctx, `SELECT pg_advisory_xact_lock(?)`, migrateLock)
		return err
	}
	var current int
	applied := map[int]bool{}
	err = s.tx(ctx, func(d db) error {
		if err := lock(ctx, d); err != nil {
			return err
		}
		if _, err := d.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at `+timeType+` NOT NULL
		)`); err != nil {
			return err
		}
		rows, err := d.query(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				return err
			}
			applied[v], current = true, max(current, v)
		}
		return rows.Err()
	})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if n := len(all); n > 0 && current > all[n-1].version {
		return fmt.Errorf("migrate: the database schema is at version %d, newer than this berth knows (%d); upgrade berth", current, all[n-1].version)
	}
	for _, m := range all {
		if applied[m.version] {
			continue
		}
		done := false
		err := s.tx(ctx, func(d db) error {
			if err := lock(ctx, d); err != nil {
				return err
			}
			have, err := d.exists(ctx, `SELECT 1 FROM schema_migrations WHERE version = ?`, m.version)
			if err != nil || have {
				return err
			}
			if _, err := d.exec(ctx, m.sql); err != nil {
				return err
			}
			_, err = d.exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.version, m.name, time.Now())
			done = err == nil
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate to %04d_%s: %w", m.version, m.name, err)
		}
		if done {
			s.log.Info("applied migration", "version", m.version, "name", m.name)
		}
	}
	return nil
}
