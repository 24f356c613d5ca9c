package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/berthhq/berth"
)

// The account queries below are keyed by user, not by team: a user's
// password, second factor, sessions and linked identities belong to the
// person, whichever teams they are a member of. Sign-in is the one place
// that finds a user without a team (by e-mail, session hash or linked
// identity); everything after it is scoped by the team the session or token
// acts in.

// UserByEmail finds a user by e-mail address, whatever its case.
func (s *Store) UserByEmail(ctx context.Context, email string) (*berth.User, error) {
	const op = "get user by email"
	email = strings.TrimSpace(email)
	if email == "" {
		return nil, notFound(op, "user not found")
	}
	var u berth.User
	err := s.reader().row(ctx, `SELECT id, name, email, created_at FROM users WHERE email <> '' AND lower(email) = lower(?)`, email).
		Scan(&u.ID, &u.Name, &u.Email, scanTime{&u.CreatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(op, "user not found")
	}
	if err != nil {
		return nil, dbError(op, err)
	}
	return &u, nil
}

// SetUserEmail changes a user's e-mail address; Conflict when another user
// has it, in any case.
func (s *Store) SetUserEmail(ctx context.Context, userID, email string) error {
	const op = "set user email"
	n, err := s.writer().affected(ctx, `UPDATE users SET email = ? WHERE id = ?`, email, userID)
	if isUnique(err) {
		return conflict(op, "another user has this e-mail address")
	}
	if err != nil {
		return dbError(op, err)
	}
	if n == 0 {
		return notFound(op, "user %q not found", userID)
	}
	return nil
}

// UserTeams lists the teams a user is a member of, by name.
func (s *Store) UserTeams(ctx context.Context, userID string) ([]berth.Team, error) {
	const op = "list teams of user"
	rows, err := s.reader().query(ctx, `SELECT t.id, t.name, t.created_at FROM teams t
		JOIN members m ON m.team_id = t.id WHERE m.user_id = ? ORDER BY t.name`, userID)
	if err != nil {
		return nil, dbError(op, err)
	}
	defer rows.Close()
	var out []berth.Team
	for rows.Next() {
		var t berth.Team
		if err := rows.Scan(&t.ID, &t.Name, scanTime{&t.CreatedAt}); err != nil {
			return nil, dbError(op, err)
		}
		out = append(out, t)
	}
	return out, dbError(op, rows.Err())
}

// SetPassword stores the hash of a user's new password.
func (s *Store) SetPassword(ctx context.Context, userID, hash string, at time.Time) error {
	const op = "set password"
	n, err := s.writer().affected(ctx, `UPDATE users SET password_hash = ?, password_changed_at = ? WHERE id = ?`, hash, at, userID)
	return one(op, n, err, "user %q not found", userID)
}

// PasswordHash returns the stored hash of a user's password; "" when the
// user has none (and may then not sign in with a password).
func (s *Store) PasswordHash(ctx context.Context, userID string) (string, error) {
	const op = "get password"
	var h string
	err := s.reader().row(ctx, `SELECT password_hash FROM users WHERE id = ?`, userID).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", notFound(op, "user %q not found", userID)
	}
	return h, dbError(op, err)
}

// CreateSession stores a session (the hash of its secret, never the
// secret), and its team as the user's last team (see LastTeam).
func (s *Store) CreateSession(ctx context.Context, ss *berth.Session) error {
	const op = "create session"
	if len(ss.ID) != 32 {
		return berth.E(op, berth.Invalid, "a session ID is the 32-byte hash of its secret")
	}
	return s.tx(ctx, func(tx db) error {
		_, err := tx.exec(ctx, `INSERT INTO sessions (id, user_id, team_id, csrf, created_at, expires_at, last_seen_at, client_addr, user_agent)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			ss.ID, ss.UserID, ss.TeamID, ss.CSRF, ss.CreatedAt, ss.ExpiresAt, ss.LastSeenAt, ss.ClientAddr, ss.UserAgent)
		switch {
		case isUnique(err):
			return conflict(op, "the session already exists")
		case isForeignKey(err):
			return notFound(op, "team or user not found")
		case err != nil:
			return dbError(op, err)
		}
		return setLastTeam(ctx, tx, op, ss.UserID, ss.TeamID)
	})
}

// setLastTeam records teamID as the team userID last worked in.
func setLastTeam(ctx context.Context, tx db, op, userID, teamID string) error {
	_, err := tx.exec(ctx, `UPDATE users SET last_team_id = ? WHERE id = ?`, teamID, userID)
	return dbError(op, err)
}

// LastTeam returns the ID of the team userID last signed in to or switched
// to, "" when none is known (or that team was deleted). The caller checks
// that the user is still a member.
func (s *Store) LastTeam(ctx context.Context, userID string) (string, error) {
	const op = "get last team"
	var id sql.NullString
	err := s.reader().row(ctx, `SELECT last_team_id FROM users WHERE id = ?`, userID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", notFound(op, "user %q not found", userID)
	}
	if err != nil {
		return "", dbError(op, err)
	}
	return id.String, nil
}

// SessionByHash finds a session by the hash of its secret.
func (s *Store) SessionByHash(ctx context.Context, hash []byte) (*berth.Session, error) {
	const op = "get session"
	var ss berth.Session
	err := s.reader().row(ctx, `SELECT id, user_id, team_id, csrf, created_at, expires_at, last_seen_at, client_addr, user_agent
		FROM sessions WHERE id = ?`, hash).
		Scan(&ss.ID, &ss.UserID, &ss.TeamID, &ss.CSRF, scanTime{&ss.CreatedAt}, scanTime{&ss.ExpiresAt},
			scanTime{&ss.LastSeenAt}, &ss.ClientAddr, &ss.UserAgent)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(op, "session not found")
	}
	if err != nil {
		return nil, dbError(op, err)
	}
	return &ss, nil
}

// TouchSession records that a session was used at at.
func (s *Store) TouchSession(ctx context.Context, hash []byte, at time.Time) error {
	const op = "touch session"
	n, err := s.writer().affected(ctx, `UPDATE sessions SET last_seen_at = ? WHERE id = ?`, at, hash)
	return one(op, n, err, "session not found")
}

// SetSessionTeam binds a session of userID to another team (the team
// switcher), which becomes the user's last team (see LastTeam). The caller
// checks that the user is a member of teamID and may act there; the
// session's secret, CSRF token and expiry stay.
func (s *Store) SetSessionTeam(ctx context.Context, hash []byte, userID, teamID string) error {
	const op = "switch session team"
	return s.tx(ctx, func(tx db) error {
		n, err := tx.affected(ctx, `UPDATE sessions SET team_id = ? WHERE id = ? AND user_id = ?`, teamID, hash, userID)
		if isForeignKey(err) {
			return notFound(op, "team not found")
		}
		if err != nil {
			return dbError(op, err)
		}
		if n == 0 {
			return notFound(op, "session not found")
		}
		return setLastTeam(ctx, tx, op, userID, teamID)
	})
}

// DeleteSession ends one session; ending one that does not exist is not an
// error (signing out twice is fine).
func (s *Store) DeleteSession(ctx context.Context, hash []byte) error {
	_, err := s.writer().exec(ctx, `DELETE FROM sessions WHERE id = ?`, hash)
	return dbError("delete session", err)
}

// DeleteUserSessions ends every session of a user except the one whose
// hash is keep (nil: all of them) and returns how many it ended.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string, keep []byte) (int64, error) {
	const op = "delete sessions of user"
	if keep == nil {
		keep = []byte{}
	}
	n, err := s.writer().affected(ctx, `DELETE FROM sessions WHERE user_id = ? AND id <> ?`, userID, keep)
	return n, dbError(op, err)
}

// DeleteExpiredSessions removes sessions whose absolute expiry is past, or
// that were last seen before idleBefore.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now, idleBefore time.Time) (int64, error) {
	n, err := s.writer().affected(ctx, `DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at < ?`, now, idleBefore)
	return n, dbError("delete expired sessions", err)
}

// DeleteUserTokens deletes every API token of a user, in every team, and
// returns how many it deleted.
func (s *Store) DeleteUserTokens(ctx context.Context, userID string) (int64, error) {
	n, err := s.writer().affected(ctx, `DELETE FROM tokens WHERE user_id = ?`, userID)
	return n, dbError("delete tokens of user", err)
}

func totpWhere(userID string) string { return "totp/" + userID }

// SetTOTPSecret stores a new, not yet enabled TOTP secret for a user
// (sealed), replacing any earlier one; the second factor stays off until
// EnableTOTP.
func (s *Store) SetTOTPSecret(ctx context.Context, userID, secret string) error {
	const op = "set totp secret"
	sealed := s.seal.seal([]byte(secret), totpWhere(userID))
	n, err := s.writer().affected(ctx, `UPDATE users SET totp_secret = ?, totp_enabled = ?, totp_last_step = 0 WHERE id = ?`,
		sealed, false, userID)
	return one(op, n, err, "user %q not found", userID)
}

// TOTP returns a user's TOTP secret ("" when none) and whether it is
// enabled.
func (s *Store) TOTP(ctx context.Context, userID string) (secret string, enabled bool, err error) {
	const op = "get totp"
	var sealed []byte
	err = s.reader().row(ctx, `SELECT totp_secret, totp_enabled FROM users WHERE id = ?`, userID).Scan(&sealed, &enabled)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, notFound(op, "user %q not found", userID)
	}
	if err != nil {
		return "", false, dbError(op, err)
	}
	if sealed == nil {
		return "", false, nil
	}
	plain, err := s.seal.open(sealed, totpWhere(userID))
	if err != nil {
		return "", false, berth.Wrap(op, berth.Internal, err)
	}
	return string(plain), enabled, nil
}

// EnableTOTP turns on the second factor of a user who has a secret.
func (s *Store) EnableTOTP(ctx context.Context, userID string) error {
	const op = "enable totp"
	n, err := s.writer().affected(ctx, `UPDATE users SET totp_enabled = ? WHERE id = ? AND totp_secret IS NOT NULL`, true, userID)
	if err != nil {
		return dbError(op, err)
	}
	if n == 0 {
		return conflict(op, "no TOTP enrolment was started")
	}
	return nil
}

// DisableTOTP turns off a user's second factor: it forgets the secret and
// the recovery codes.
func (s *Store) DisableTOTP(ctx context.Context, userID string) error {
	const op = "disable totp"
	return s.tx(ctx, func(d db) error {
		n, err := d.affected(ctx, `UPDATE users SET totp_secret = NULL, totp_enabled = ?, totp_last_step = 0 WHERE id = ?`, false, userID)
		if err != nil {
			return dbError(op, err)
		}
		if n == 0 {
			return notFound(op, "user %q not found", userID)
		}
		_, err = d.exec(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, userID)
		return dbError(op, err)
	})
}

// UseTOTPStep records that the code of time step step was accepted for a
// user. It reports false when that step, or a later one, was already used:
// a TOTP code is never accepted twice. The check and the write are one
// statement, so two requests racing with one code cannot both win.
func (s *Store) UseTOTPStep(ctx context.Context, userID string, step int64) (bool, error) {
	n, err := s.writer().affected(ctx, `UPDATE users SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?`, step, userID, step)
	return n == 1, dbError("use totp code", err)
}

// ReplaceRecoveryCodes replaces a user's recovery codes with the given
// hashes.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, userID string, hashes [][]byte) error {
	const op = "replace recovery codes"
	return s.tx(ctx, func(d db) error {
		if _, err := d.exec(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, userID); err != nil {
			return dbError(op, err)
		}
		for _, h := range hashes {
			_, err := d.exec(ctx, `INSERT INTO recovery_codes (user_id, hash) VALUES (?, ?)`, userID, h)
			switch {
			case isForeignKey(err):
				return notFound(op, "user %q not found", userID)
			case isUnique(err):
				return berth.E(op, berth.Invalid, "recovery codes repeat")
			case err != nil:
				return dbError(op, err)
			}
		}
		return nil
	})
}

// ConsumeRecoveryCode marks the user's unused recovery code with this hash
// as used and reports whether there was one. A code works once: the check
// and the write are one statement.
func (s *Store) ConsumeRecoveryCode(ctx context.Context, userID string, hash []byte, at time.Time) (bool, error) {
	n, err := s.writer().affected(ctx, `UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND hash = ? AND used_at IS NULL`,
		at, userID, hash)
	return n == 1, dbError("use recovery code", err)
}

// RecoveryCodesLeft counts a user's unused recovery codes.
func (s *Store) RecoveryCodesLeft(ctx context.Context, userID string) (int, error) {
	var n int
	err := s.reader().row(ctx, `SELECT COUNT(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL`, userID).Scan(&n)
	return n, dbError("count recovery codes", err)
}

// LinkIdentity links an account at an OpenID Connect provider to a user;
// Conflict when that account is already linked (to anyone).
func (s *Store) LinkIdentity(ctx context.Context, id *berth.Identity) error {
	const op = "link identity"
	if id.Issuer == "" || id.Subject == "" {
		return berth.E(op, berth.Invalid, "an identity needs an issuer and a subject")
	}
	id.CreatedAt = utc(id.CreatedAt)
	_, err := s.writer().exec(ctx, `INSERT INTO identities (issuer, subject, user_id, created_at) VALUES (?, ?, ?, ?)`,
		id.Issuer, id.Subject, id.UserID, id.CreatedAt)
	switch {
	case isUnique(err):
		return conflict(op, "this account of the provider is already linked")
	case isForeignKey(err):
		return notFound(op, "user %q not found", id.UserID)
	}
	return dbError(op, err)
}

// IdentityUser returns the ID of the user an identity is linked to;
// NotFound when it is linked to nobody.
func (s *Store) IdentityUser(ctx context.Context, issuer, subject string) (string, error) {
	const op = "find identity"
	var userID string
	err := s.reader().row(ctx, `SELECT user_id FROM identities WHERE issuer = ? AND subject = ?`, issuer, subject).Scan(&userID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", notFound(op, "this account of the provider is not linked to a berth user")
	}
	return userID, dbError(op, err)
}

// Identities lists the identities linked to a user.
func (s *Store) Identities(ctx context.Context, userID string) ([]berth.Identity, error) {
	const op = "list identities"
	rows, err := s.reader().query(ctx, `SELECT issuer, subject, user_id, created_at FROM identities WHERE user_id = ? ORDER BY created_at, issuer, subject`, userID)
	if err != nil {
		return nil, dbError(op, err)
	}
	defer rows.Close()
	var out []berth.Identity
	for rows.Next() {
		var id berth.Identity
		if err := rows.Scan(&id.Issuer, &id.Subject, &id.UserID, scanTime{&id.CreatedAt}); err != nil {
			return nil, dbError(op, err)
		}
		out = append(out, id)
	}
	return out, dbError(op, rows.Err())
}

// UnlinkIdentity removes a user's link to an identity; NotFound when the
// user has no such link (another user's link is not touched).
func (s *Store) UnlinkIdentity(ctx context.Context, userID, issuer, subject string) error {
	const op = "unlink identity"
	n, err := s.writer().affected(ctx, `DELETE FROM identities WHERE user_id = ? AND issuer = ? AND subject = ?`, userID, issuer, subject)
	return one(op, n, err, "identity not linked")
}

// TwoFactor reports whether a team requires a second factor and whether
// a user has TOTP on, in one read that never opens the sealed secret:
// authentication asks it on every request.
func (s *Store) TwoFactor(ctx context.Context, teamID, userID string) (required, enabled bool, err error) {
	const op = "get 2fa state"
	err = s.reader().row(ctx, `SELECT t.require_2fa, u.totp_enabled FROM teams t, users u WHERE t.id = ? AND u.id = ?`,
		teamID, userID).Scan(&required, &enabled)
	if errors.Is(err, sql.ErrNoRows) {
		return false, false, notFound(op, "team or user not found")
	}
	return required, enabled, dbError(op, err)
}

// SetTeamRequire2FA turns the team's second-factor requirement on or off.
func (s *Store) SetTeamRequire2FA(ctx context.Context, teamID string, on bool) error {
	const op = "set team require_2fa"
	n, err := s.writer().affected(ctx, `UPDATE teams SET require_2fa = ? WHERE id = ?`, on, teamID)
	return one(op, n, err, "team %q not found", teamID)
}
