// Package storetest gives tests a PostgreSQL database of their own: a fresh
// schema in the server named by BERTH_TEST_POSTGRES (see .ci/postgres),
// dropped when the test ends. Without that variable the test is skipped,
// except under CI=true, where it fails.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// Postgres creates a schema in the BERTH_TEST_POSTGRES database, drops it
// when t ends, and returns a DSN whose search_path is that schema.
func Postgres(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("BERTH_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but BERTH_TEST_POSTGRES is empty; export BERTH_TEST_POSTGRES=\"$(.ci/postgres)\"")
		}
		t.Skip("PostgreSQL tests skipped: BERTH_TEST_POSTGRES is not set (export BERTH_TEST_POSTGRES=\"$(.ci/postgres)\")")
	}
	schemaDSN, drop, err := Schema(context.Background(), dsn)
	if err != nil {
		t.Fatalf("PostgreSQL at BERTH_TEST_POSTGRES: %v", err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Error(err)
		}
	})
	return schemaDSN
}

// Schema creates a fresh schema in the PostgreSQL database at dsn and
// returns a DSN whose search_path is that schema, and a func that drops
// it. It is Postgres for a program that is not a test (the benchmark).
func Schema(ctx context.Context, dsn string) (schemaDSN string, drop func() error, err error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", nil, fmt.Errorf("parse DSN: %w", err)
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		return "", nil, fmt.Errorf("open: %w", err)
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "berth_test_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("create schema: %w", err)
	}
	drop = func() error {
		defer admin.Close()
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			return fmt.Errorf("drop schema %s: %w", schema, err)
		}
		return nil
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}
