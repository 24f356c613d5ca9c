package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/berthhq/berth"
	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// db runs SQL written once, with "?" placeholders, on either dialect: it
// rebinds the placeholders to $n for PostgreSQL and converts time values to
// each dialect's column type (TIMESTAMPTZ there, fixed-width UTC text in
// SQLite, which then sorts and compares in time order).
type db struct {
	q  querier
	pg bool
}

func (d db) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return d.q.ExecContext(ctx, d.bind(query), d.args(args)...)
}

func (d db) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return d.q.QueryContext(ctx, d.bind(query), d.args(args)...)
}

func (d db) row(ctx context.Context, query string, args ...any) *sql.Row {
	return d.q.QueryRowContext(ctx, d.bind(query), d.args(args)...)
}

// affected runs an UPDATE or DELETE and returns how many rows it touched.
func (d db) affected(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := d.exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// one is the error of an UPDATE or DELETE of one row that ran with err and
// touched n rows: err as a store error, NotFound (format, args) when it
// touched none.
func one(op string, n int64, err error, format string, args ...any) error {
	if err != nil {
		return dbError(op, err)
	}
	if n == 0 {
		return notFound(op, format, args...)
	}
	return nil
}

// exists reports whether query returns a row.
func (d db) exists(ctx context.Context, query string, args ...any) (bool, error) {
	var got int
	err := d.row(ctx, query, args...).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func (d db) bind(query string) string {
	if !d.pg {
		return query
	}
	return rebind(query)
}

// rebind turns "?" placeholders into PostgreSQL's "$1", "$2"…, leaving
// string literals alone.
func rebind(query string) string {
	var b strings.Builder
	b.Grow(len(query) + 16)
	n, quoted := 0, false
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'':
			quoted = !quoted
		case c == '?' && !quoted:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// sqliteTime is how SQLite columns hold times: UTC, microseconds, fixed
// width, so that text order is time order.
const sqliteTime = "2006-01-02T15:04:05.000000Z"

func (d db) args(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case time.Time:
			out[i] = d.time(v)
		case *time.Time:
			if v == nil {
				out[i] = nil
			} else {
				out[i] = d.time(*v)
			}
		default:
			out[i] = a
		}
	}
	return out
}

func (d db) time(t time.Time) any {
	t = utc(t)
	if d.pg {
		return t
	}
	return t.Format(sqliteTime)
}

// utc is the form every time takes in the store: UTC, to the microsecond.
func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// nullTime is a nullable time argument: NULL for the zero time.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// scanTime scans a time column of either dialect; NULL scans as the zero
// time.
type scanTime struct{ t *time.Time }

func (s scanTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*s.t = time.Time{}
	case time.Time:
		*s.t = utc(v)
	case string:
		return s.parse(v)
	case []byte:
		return s.parse(string(v))
	default:
		return fmt.Errorf("scan time: unexpected %T", src)
	}
	return nil
}

func (s scanTime) parse(v string) error {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return fmt.Errorf("scan time %q: %w", v, err)
	}
	*s.t = utc(t)
	return nil
}

// scanTimePtr scans a nullable time column into a *time.Time.
type scanTimePtr struct{ p **time.Time }

func (s scanTimePtr) Scan(src any) error {
	if src == nil {
		*s.p = nil
		return nil
	}
	var t time.Time
	if err := (scanTime{&t}).Scan(src); err != nil {
		return err
	}
	*s.p = &t
	return nil
}

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// queryAll runs query on d and scans every row with scan, in order; no row
// is a nil slice. Errors are wrapped with op.
func queryAll[T any](ctx context.Context, d db, op string, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := d.query(ctx, query, args...)
	if err != nil {
		return nil, dbError(op, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, dbError(op, err)
		}
		out = append(out, v)
	}
	return out, dbError(op, rows.Err())
}

// deref adapts a scan function that returns a pointer to queryAll.
func deref[T any](scan func(scanner) (*T, error)) func(scanner) (T, error) {
	return func(sc scanner) (T, error) {
		p, err := scan(sc)
		if err != nil {
			var zero T
			return zero, err
		}
		return *p, nil
	}
}

// Errors of the drivers that the store turns into berth errors.

func isUnique(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// isBusy reports SQLite's "database is locked" (SQLITE_BUSY or one of its
// extended codes).
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

func isForeignKey(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}

// dbError wraps a driver error with the operation, passing berth errors
// through untouched.
func dbError(op string, err error) error {
	if err == nil {
		return nil
	}
	var be *berth.Error
	if errors.As(err, &be) {
		return err
	}
	return berth.Wrap(op, berth.Internal, err)
}

func notFound(op, format string, args ...any) error {
	return berth.E(op, berth.NotFound, format, args...)
}

func conflict(op, format string, args ...any) error {
	return berth.E(op, berth.Conflict, format, args...)
}
