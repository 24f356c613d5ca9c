package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/berthhq/berth"
)

// deployKeyWhere and gitTokenWhere bind a sealed credential to its app.
func deployKeyWhere(appID string) string { return "deploy_key/" + appID }
func gitTokenWhere(appID string) string  { return "git_token/" + appID }

// SetDeployKey stores an app's deploy key, replacing the one it had (which
// is gone at once): the private half sealed, the public half as given. It
// is NotFound when the team has no such app.
func (s *Store) SetDeployKey(ctx context.Context, teamID, appID string, private []byte, public string) (*berth.DeployKey, error) {
	const op = "set deploy key"
	if len(private) == 0 || public == "" {
		return nil, berth.E(op, berth.Invalid, "empty deploy key")
	}
	now := utc(time.Now())
	sealed := s.seal.seal(private, deployKeyWhere(appID))
	err := s.tx(ctx, func(d db) error {
		if err := checkApp(ctx, d, op, teamID, appID); err != nil {
			return err
		}
		_, err := d.exec(ctx, `INSERT INTO deploy_keys (app_id, team_id, private_key, public_key, created_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (app_id) DO UPDATE SET private_key = excluded.private_key, public_key = excluded.public_key, created_at = excluded.created_at`,
			appID, teamID, sealed, public, now)
		return dbError(op, err)
	})
	if err != nil {
		return nil, err
	}
	return &berth.DeployKey{PublicKey: public, Fingerprint: berth.KeyFingerprint(public), CreatedAt: now}, nil
}

// DeployKey returns the public half of an app's deploy key; NotFound when
// the team has no such app or the app has no key.
func (s *Store) DeployKey(ctx context.Context, teamID, appID string) (*berth.DeployKey, error) {
	const op = "get deploy key"
	var k berth.DeployKey
	err := s.reader().row(ctx, `SELECT public_key, created_at FROM deploy_keys WHERE team_id = ? AND app_id = ?`, teamID, appID).
		Scan(&k.PublicKey, scanTime{&k.CreatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		if err := checkApp(ctx, s.reader(), op, teamID, appID); err != nil {
			return nil, err
		}
		return nil, notFound(op, "the app has no deploy key")
	}
	if err != nil {
		return nil, dbError(op, err)
	}
	k.Fingerprint = berth.KeyFingerprint(k.PublicKey)
	return &k, nil
}

// DeleteDeployKey removes an app's deploy key; NotFound when it has none.
func (s *Store) DeleteDeployKey(ctx context.Context, teamID, appID string) error {
	return s.deleteCredential(ctx, "delete deploy key", "deploy_keys", "the app has no deploy key", teamID, appID)
}

// SetGitToken stores an app's access token (sealed) and the user name it
// goes with, replacing any it had. It checks them with berth.ValidGitToken
// and is NotFound when the team has no such app.
func (s *Store) SetGitToken(ctx context.Context, teamID, appID, username, token string) (*berth.GitCredentials, error) {
	const op = "set git credentials"
	if err := berth.ValidGitToken(username, token); err != nil {
		return nil, berth.E(op, berth.Invalid, "%v", err)
	}
	now := utc(time.Now())
	sealed := s.seal.seal([]byte(token), gitTokenWhere(appID))
	err := s.tx(ctx, func(d db) error {
		if err := checkApp(ctx, d, op, teamID, appID); err != nil {
			return err
		}
		_, err := d.exec(ctx, `INSERT INTO git_tokens (app_id, team_id, username, token, updated_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (app_id) DO UPDATE SET username = excluded.username, token = excluded.token, updated_at = excluded.updated_at`,
			appID, teamID, username, sealed, now)
		return dbError(op, err)
	})
	if err != nil {
		return nil, err
	}
	return &berth.GitCredentials{Set: true, Username: username, UpdatedAt: &now}, nil
}

// GitCredentials says whether an app has an access token, with its user
// name and when it was set; NotFound when the team has no such app.
func (s *Store) GitCredentials(ctx context.Context, teamID, appID string) (*berth.GitCredentials, error) {
	const op = "get git credentials"
	var c berth.GitCredentials
	var at time.Time
	err := s.reader().row(ctx, `SELECT username, updated_at FROM git_tokens WHERE team_id = ? AND app_id = ?`, teamID, appID).
		Scan(&c.Username, scanTime{&at})
	if errors.Is(err, sql.ErrNoRows) {
		if err := checkApp(ctx, s.reader(), op, teamID, appID); err != nil {
			return nil, err
		}
		return &berth.GitCredentials{}, nil
	}
	if err != nil {
		return nil, dbError(op, err)
	}
	c.Set, c.UpdatedAt = true, &at
	return &c, nil
}

// DeleteGitToken removes an app's access token; NotFound when it has none.
func (s *Store) DeleteGitToken(ctx context.Context, teamID, appID string) error {
	return s.deleteCredential(ctx, "delete git credentials", "git_tokens", "the app has no access token", teamID, appID)
}

// deleteCredential deletes an app's row of table.
func (s *Store) deleteCredential(ctx context.Context, op, table, none, teamID, appID string) error {
	n, err := s.writer().affected(ctx, `DELETE FROM `+table+` WHERE team_id = ? AND app_id = ?`, teamID, appID)
	if err != nil {
		return dbError(op, err)
	}
	if n == 0 {
		if err := checkApp(ctx, s.reader(), op, teamID, appID); err != nil {
			return err
		}
		return notFound(op, "%s", none)
	}
	return nil
}

// HostKeys lists the ssh host keys an app trusts, by host; NotFound when
// the team has no such app.
func (s *Store) HostKeys(ctx context.Context, teamID, appID string) ([]berth.HostKey, error) {
	const op = "list host keys"
	keys, err := hostKeys(ctx, s.reader(), op, teamID, appID)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, checkApp(ctx, s.reader(), op, teamID, appID)
	}
	return keys, nil
}

func hostKeys(ctx context.Context, d db, op, teamID, appID string) ([]berth.HostKey, error) {
	rows, err := d.query(ctx, `SELECT host, key, source, created_at FROM git_host_keys
		WHERE team_id = ? AND app_id = ? ORDER BY host, created_at, key`, teamID, appID)
	if err != nil {
		return nil, dbError(op, err)
	}
	defer rows.Close()
	var out []berth.HostKey
	for rows.Next() {
		var k berth.HostKey
		if err := rows.Scan(&k.Host, &k.Key, &k.Source, scanTime{&k.CreatedAt}); err != nil {
			return nil, dbError(op, err)
		}
		k.Fingerprint = berth.KeyFingerprint(k.Key)
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(op, err)
	}
	return out, nil
}

// SetHostKeys replaces every host key an app trusts with keys (none: the
// next fetch trusts each host on first use again). The keys must be
// normalized (see git.ParseHostKeys); NotFound when the team has no such
// app.
func (s *Store) SetHostKeys(ctx context.Context, teamID, appID string, keys []berth.HostKey) error {
	const op = "set host keys"
	if len(keys) > berth.MaxHostKeys {
		return berth.E(op, berth.Invalid, "at most %d host keys", berth.MaxHostKeys)
	}
	return s.tx(ctx, func(d db) error {
		if err := checkApp(ctx, d, op, teamID, appID); err != nil {
			return err
		}
		if _, err := d.exec(ctx, `DELETE FROM git_host_keys WHERE team_id = ? AND app_id = ?`, teamID, appID); err != nil {
			return dbError(op, err)
		}
		return insertHostKeys(ctx, d, op, teamID, appID, keys)
	})
}

// AddHostKeys adds host keys an app trusts from now on (trusted on first
// use); keys it already has are left as they are. NotFound when the team
// has no such app.
func (s *Store) AddHostKeys(ctx context.Context, teamID, appID string, keys []berth.HostKey) error {
	const op = "add host keys"
	if len(keys) == 0 {
		return nil
	}
	return s.tx(ctx, func(d db) error {
		if err := checkApp(ctx, d, op, teamID, appID); err != nil {
			return err
		}
		if err := insertHostKeys(ctx, d, op, teamID, appID, keys); err != nil {
			return err
		}
		var n int
		if err := d.row(ctx, `SELECT COUNT(*) FROM git_host_keys WHERE team_id = ? AND app_id = ?`, teamID, appID).Scan(&n); err != nil {
			return dbError(op, err)
		}
		if n > berth.MaxHostKeys {
			return berth.E(op, berth.Invalid, "an app trusts at most %d host keys", berth.MaxHostKeys)
		}
		return nil
	})
}

func insertHostKeys(ctx context.Context, d db, op, teamID, appID string, keys []berth.HostKey) error {
	for _, k := range keys {
		if k.Host == "" || k.Key == "" || berth.KeyFingerprint(k.Key) == "" {
			return berth.E(op, berth.Invalid, "host key %q of %q is not a public key", clipStr(k.Key), clipStr(k.Host))
		}
		if k.Source != berth.HostKeyFirstUse && k.Source != berth.HostKeyUser {
			return berth.E(op, berth.Invalid, "host key source %q: use first-use or user", clipStr(string(k.Source)))
		}
		at := k.CreatedAt
		if at.IsZero() {
			at = time.Now()
		}
		if _, err := d.exec(ctx, `INSERT INTO git_host_keys (team_id, app_id, host, key, source, created_at) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (app_id, host, key) DO NOTHING`, teamID, appID, k.Host, k.Key, string(k.Source), at); err != nil {
			return dbError(op, fmt.Errorf("host key of %s: %w", k.Host, err))
		}
	}
	return nil
}

// GitAuth returns everything berth presents to an app's Git server: its
// deploy key and access token unsealed, and its trusted host keys. It is
// for the engine's fetches only; NotFound when the team has no such app.
func (s *Store) GitAuth(ctx context.Context, teamID, appID string) (berth.GitAuth, error) {
	const op = "load git credentials"
	var a berth.GitAuth
	if err := checkApp(ctx, s.reader(), op, teamID, appID); err != nil {
		return a, err
	}
	var sealed []byte
	err := s.reader().row(ctx, `SELECT private_key FROM deploy_keys WHERE team_id = ? AND app_id = ?`, teamID, appID).Scan(&sealed)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return a, dbError(op, err)
	default:
		if a.DeployKey, err = s.seal.open(sealed, deployKeyWhere(appID)); err != nil {
			return a, berth.E(op, berth.Internal, "deploy key: %v", err)
		}
	}
	err = s.reader().row(ctx, `SELECT username, token FROM git_tokens WHERE team_id = ? AND app_id = ?`, teamID, appID).Scan(&a.Username, &sealed)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return a, dbError(op, err)
	default:
		token, err := s.seal.open(sealed, gitTokenWhere(appID))
		if err != nil {
			return a, berth.E(op, berth.Internal, "access token: %v", err)
		}
		a.Token = string(token)
	}
	if a.HostKeys, err = hostKeys(ctx, s.reader(), op, teamID, appID); err != nil {
		return a, err
	}
	return a, nil
}

func clipStr(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}
