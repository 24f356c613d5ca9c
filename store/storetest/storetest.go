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
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("BERTH_TEST_POSTGRES: %v", err)
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "berth_test_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("PostgreSQL at BERTH_TEST_POSTGRES: create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		admin.Close()
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("BERTH_TEST_POSTGRES: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
