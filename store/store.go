// Package store keeps berth's state in SQLite (the default, pure Go) or
// PostgreSQL. Queries are hand-written SQL, migrations are embedded per
// dialect and run at Open, env var values are sealed with AES-256-GCM, and
// every query that reads or changes a team's objects takes the team's ID.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/berthhq/berth"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver
)

// The dialects.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// Store is berth's database. It is safe for concurrent use.
type Store struct {
	// w takes every write and every transaction; r takes plain reads. For
	// SQLite w holds one connection, so writers queue in Go instead of
	// failing with SQLITE_BUSY, and r holds several read-only connections
	// that WAL lets read while w writes. For PostgreSQL both are one pool.
	w, r    *sql.DB
	dialect string
	seal    *sealer
	log     *slog.Logger
}

// Open opens the database named by dsn and runs its migrations. dsn is a
// "postgres://" or "postgresql://" URL for PostgreSQL; anything else is a
// SQLite file path (optionally "sqlite://PATH"). key is the 32-byte AES-256
// key that seals env var values.
func Open(ctx context.Context, dsn string, key []byte, log *slog.Logger) (*Store, error) {
	const op = "open store"
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	seal, err := newSealer(key)
	if err != nil {
		return nil, berth.E(op, berth.Invalid, "%v", err)
	}
	s := &Store{seal: seal}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		s.dialect = Postgres
		s.log = log.With("store", Postgres)
		s.w, err = sql.Open("pgx", dsn)
		if err != nil {
			return nil, berth.E(op, berth.Invalid, "bad PostgreSQL DSN")
		}
		s.w.SetMaxOpenConns(16)
		s.w.SetMaxIdleConns(4)
		s.r = s.w
	} else {
		s.dialect = SQLite
		s.log = log.With("store", SQLite)
		if err := s.openSQLite(strings.TrimPrefix(dsn, "sqlite://")); err != nil {
			return nil, err
		}
	}
	if err := s.connect(ctx); err != nil {
		s.Close()
		return nil, berth.Wrap(op, berth.Unavailable, fmt.Errorf("connect to %s: %w", s.dialect, err))
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := s.checkKey(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// openSQLite opens the writer and reader pools of a SQLite file.
func (s *Store) openSQLite(path string) error {
	const op = "open store"
	if path == "" {
		return berth.E(op, berth.Invalid, "empty SQLite path")
	}
	memory := path == ":memory:"
	name := ":memory:"
	if !memory {
		abs, err := filepath.Abs(path)
		if err != nil {
			return berth.Wrap(op, berth.Invalid, fmt.Errorf("resolve %s: %w", path, err))
		}
		// A "file:" URI, so that no character of the path is taken for
		// a parameter; SQLite ignores the driver's parameters.
		name = "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(abs)
	}
	params := url.Values{}
	params.Add("_pragma", "busy_timeout(5000)")
	params.Add("_pragma", "foreign_keys(1)")
	params.Add("_pragma", "synchronous(NORMAL)")
	if !memory {
		params.Add("_pragma", "journal_mode(WAL)")
	}
	params.Set("_txlock", "immediate")
	var err error
	s.w, err = sql.Open("sqlite", name+"?"+params.Encode())
	if err != nil {
		return fmt.Errorf("open sqlite: %w", err)
	}
	s.w.SetMaxOpenConns(1)
	if memory {
		// Every connection to ":memory:" is another database: keep one.
		s.w.SetConnMaxIdleTime(0)
		s.w.SetConnMaxLifetime(0)
		s.r = s.w
		return nil
	}
	params.Add("_pragma", "query_only(1)")
	params.Del("_txlock")
	s.r, err = sql.Open("sqlite", name+"?"+params.Encode())
	if err != nil {
		s.w.Close()
		return fmt.Errorf("open sqlite: %w", err)
	}
	s.r.SetMaxOpenConns(max(4, runtime.NumCPU()))
	return nil
}

// connect makes the first connection. Switching a new SQLite file to WAL
// needs an exclusive lock and SQLite does not wait for it (no busy handler
// for that step), so several processes opening one fresh file at once may
// be told SQLITE_BUSY: those retry for a few seconds.
func (s *Store) connect(ctx context.Context) error {
	deadline := time.Now().Add(5 * time.Second)
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		err := s.w.PingContext(ctx)
		if err == nil || s.dialect != SQLite || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
	}
}

// Close closes the database.
func (s *Store) Close() error {
	err := s.w.Close()
	if s.r != s.w {
		err = errors.Join(err, s.r.Close())
	}
	return err
}

// Dialect is "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dialect }

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.r.PingContext(ctx); err != nil {
		return berth.Wrap("ping store", berth.Unavailable, err)
	}
	return nil
}

// reader runs plain reads, writer single writes outside a transaction.
func (s *Store) reader() db { return db{q: s.r, pg: s.dialect == Postgres} }
func (s *Store) writer() db { return db{q: s.w, pg: s.dialect == Postgres} }

// tx runs fn in a transaction and commits it when fn returns nil. On SQLite
// the transaction begins IMMEDIATE, taking the write lock at once.
func (s *Store) tx(ctx context.Context, fn func(db) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(db{q: tx, pg: s.dialect == Postgres}); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
