package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/berthhq/berth"
)

// sealedColumn is a column whose values are sealed with the store's key.
// Key rotation re-seals every non-NULL value of every column listed in
// sealedColumns, so a new sealed column is one more line there.
type sealedColumn struct {
	table, column string
	// id names the columns that identify a row; where turns their values
	// into the additional data the value is sealed with.
	id    []string
	where func(id []string) string
}

// sealedColumns are all the sealed columns of the schema.
var sealedColumns = []sealedColumn{
	{"env_vars", "value", []string{"app_id", "key"}, func(id []string) string { return envWhere(id[0], id[1]) }},
	{"releases", "env", []string{"id"}, func(id []string) string { return releaseWhere(id[0]) }},
	{"users", "totp_secret", []string{"id"}, func(id []string) string { return totpWhere(id[0]) }},
	{"deploy_keys", "private_key", []string{"app_id"}, func(id []string) string { return deployKeyWhere(id[0]) }},
	{"git_tokens", "token", []string{"app_id"}, func(id []string) string { return gitTokenWhere(id[0]) }},
	{"preview_settings", "env", []string{"app_id"}, func(id []string) string { return previewEnvWhere(id[0]) }},
	{"preview_settings", "status_token", []string{"app_id"}, func(id []string) string { return previewTokenWhere(id[0]) }},
	{"app_webhooks", "secret", []string{"app_id"}, func(id []string) string { return webhookWhere(id[0]) }},
}

// RotateKey re-seals every sealed value of the database, and the key check,
// with newKey, in one transaction: either all of them open with newKey
// afterwards, or (on any error, such as a value that does not open with the
// current key) none changed. It reports how many values it re-sealed. The
// store seals with newKey from then on.
//
// It works across every team: it is a maintenance operation of the
// server's operator (berth server rotate-key), run while no server uses the
// store.
func (s *Store) RotateKey(ctx context.Context, newKey []byte) (int, error) {
	const op = "rotate key"
	next, err := newSealer(newKey)
	if err != nil {
		return 0, berth.E(op, berth.Invalid, "%v", err)
	}
	n := 0
	err = s.tx(ctx, func(d db) error {
		for _, c := range sealedColumns {
			m, err := s.reseal(ctx, d, next, c)
			if err != nil {
				return err
			}
			n += m
		}
		check := base64.StdEncoding.EncodeToString(next.seal([]byte("berth"), keyCheckWhere))
		if _, err := d.exec(ctx, `UPDATE settings SET value = ? WHERE key = ?`, check, keyCheckSetting); err != nil {
			return dbError(op, fmt.Errorf("write key check: %w", err))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	s.seal = next
	return n, nil
}

// reseal re-seals the values of one column with next.
func (s *Store) reseal(ctx context.Context, d db, next *sealer, c sealedColumn) (int, error) {
	const op = "rotate key"
	type row struct {
		id    []string
		value []byte
	}
	q := `SELECT ` + strings.Join(c.id, ", ") + `, ` + c.column + ` FROM ` + c.table +
		` WHERE ` + c.column + ` IS NOT NULL ORDER BY ` + strings.Join(c.id, ", ")
	rows, err := d.query(ctx, q)
	if err != nil {
		return 0, dbError(op, fmt.Errorf("read %s.%s: %w", c.table, c.column, err))
	}
	var all []row
	for rows.Next() {
		ids := make([]sql.NullString, len(c.id))
		dest := make([]any, 0, len(c.id)+1)
		for i := range ids {
			dest = append(dest, &ids[i])
		}
		var r row
		dest = append(dest, &r.value)
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return 0, dbError(op, fmt.Errorf("read %s.%s: %w", c.table, c.column, err))
		}
		for _, id := range ids {
			r.id = append(r.id, id.String)
		}
		all = append(all, r)
	}
	if err := rows.Close(); err != nil {
		return 0, dbError(op, err)
	}
	if err := rows.Err(); err != nil {
		return 0, dbError(op, err)
	}
	conds := make([]string, len(c.id))
	for i, col := range c.id {
		conds[i] = col + " = ?"
	}
	update := `UPDATE ` + c.table + ` SET ` + c.column + ` = ? WHERE ` + strings.Join(conds, " AND ")
	for _, r := range all {
		where := c.where(r.id)
		plain, err := s.seal.open(r.value, where)
		if err != nil {
			return 0, berth.E(op, berth.Invalid, "%s.%s of %s does not open with the current key; nothing was changed", c.table, c.column, strings.Join(r.id, "/"))
		}
		args := []any{next.seal(plain, where)}
		for _, id := range r.id {
			args = append(args, id)
		}
		if _, err := d.exec(ctx, update, args...); err != nil {
			return 0, dbError(op, fmt.Errorf("write %s.%s: %w", c.table, c.column, err))
		}
	}
	return len(all), nil
}
