package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/berthhq/berth"
)

// Setting returns a server setting, or "" with a NotFound error.
func (s *Store) Setting(ctx context.Context, key string) (string, error) {
	const op = "get setting"
	var v string
	err := s.reader().row(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", notFound(op, "setting %q not found", key)
	}
	return v, dbError(op, err)
}

// SetSetting writes a server setting.
func (s *Store) SetSetting(ctx context.Context, key, value string) error {
	const op = "set setting"
	if key == keyCheckSetting {
		return berth.E(op, berth.Invalid, "setting %q is reserved", key)
	}
	_, err := s.writer().exec(ctx, `INSERT INTO settings (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	return dbError(op, err)
}

// HasTeams reports whether any team exists (false on a fresh store).
func (s *Store) HasTeams(ctx context.Context) (bool, error) {
	ok, err := s.reader().exists(ctx, `SELECT 1 FROM teams LIMIT 1`)
	return ok, dbError("has teams", err)
}

// CreateTeam, CreateUser and AddMember set up who can act. CreateTeam and
// CreateUser fill an empty ID and a zero CreatedAt.
func (s *Store) CreateTeam(ctx context.Context, t *berth.Team) error {
	const op = "create team"
	if t.ID == "" {
		t.ID = berth.NewID("team")
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now()
	}
	t.CreatedAt = utc(t.CreatedAt)
	_, err := s.writer().exec(ctx, `INSERT INTO teams (id, name, created_at) VALUES (?, ?, ?)`,
		t.ID, t.Name, t.CreatedAt)
	if isUnique(err) {
		return conflict(op, "team %q already exists", t.Name)
	}
	return dbError(op, err)
}

func (s *Store) CreateUser(ctx context.Context, u *berth.User) error {
	const op = "create user"
	if u.ID == "" {
		u.ID = berth.NewID("user")
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = time.Now()
	}
	u.CreatedAt = utc(u.CreatedAt)
	_, err := s.writer().exec(ctx, `INSERT INTO users (id, name, email, created_at) VALUES (?, ?, ?, ?)`,
		u.ID, u.Name, u.Email, u.CreatedAt)
	if isUnique(err) {
		return conflict(op, "a user with this ID or email already exists")
	}
	return dbError(op, err)
}

// AddMember makes a user a member of a team; Conflict when it already is.
func (s *Store) AddMember(ctx context.Context, teamID, userID string, role berth.Role) error {
	const op = "add member"
	_, err := s.writer().exec(ctx, `INSERT INTO members (team_id, user_id, role) VALUES (?, ?, ?)`,
		teamID, userID, string(role))
	switch {
	case isUnique(err):
		return conflict(op, "the user is already a member of the team")
	case isForeignKey(err):
		return notFound(op, "team or user not found")
	}
	return dbError(op, err)
}

// Member returns a user's role in a team; NotFound when the user is not a
// member.
func (s *Store) Member(ctx context.Context, teamID, userID string) (berth.Role, error) {
	const op = "get member"
	var role string
	err := s.reader().row(ctx, `SELECT role FROM members WHERE team_id = ? AND user_id = ?`, teamID, userID).Scan(&role)
	if errors.Is(err, sql.ErrNoRows) {
		return "", notFound(op, "not a member of the team")
	}
	return berth.Role(role), dbError(op, err)
}

func (s *Store) Team(ctx context.Context, id string) (*berth.Team, error) {
	const op = "get team"
	var t berth.Team
	err := s.reader().row(ctx, `SELECT id, name, created_at FROM teams WHERE id = ?`, id).
		Scan(&t.ID, &t.Name, scanTime{&t.CreatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(op, "team %q not found", id)
	}
	if err != nil {
		return nil, dbError(op, err)
	}
	return &t, nil
}

func (s *Store) User(ctx context.Context, id string) (*berth.User, error) {
	const op = "get user"
	var u berth.User
	err := s.reader().row(ctx, `SELECT id, name, email, created_at FROM users WHERE id = ?`, id).
		Scan(&u.ID, &u.Name, &u.Email, scanTime{&u.CreatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(op, "user %q not found", id)
	}
	if err != nil {
		return nil, dbError(op, err)
	}
	return &u, nil
}

// CreateToken stores a token (its hash, never its secret). It fills an
// empty ID and a zero CreatedAt.
func (s *Store) CreateToken(ctx context.Context, t *berth.Token) error {
	const op = "create token"
	if len(t.Hash) == 0 {
		return berth.E(op, berth.Invalid, "a token needs the hash of its secret")
	}
	if t.ID == "" {
		t.ID = berth.NewID("tok")
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now()
	}
	t.CreatedAt = utc(t.CreatedAt)
	scopes, err := json.Marshal(t.Scopes)
	if err != nil {
		return dbError(op, err)
	}
	var user any
	if t.UserID != "" {
		user = t.UserID
	}
	_, err = s.writer().exec(ctx, `INSERT INTO tokens (id, team_id, user_id, name, scopes, hash, created_at, expires_at, last_used_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.TeamID, user, t.Name, string(scopes), t.Hash, t.CreatedAt, t.ExpiresAt, t.LastUsedAt)
	switch {
	case isUnique(err):
		return conflict(op, "the token already exists")
	case isForeignKey(err):
		return notFound(op, "team or user not found")
	}
	return dbError(op, err)
}

const tokenColumns = `id, team_id, COALESCE(user_id, ''), name, scopes, hash, created_at, expires_at, last_used_at`

func scanToken(sc scanner) (*berth.Token, error) {
	var t berth.Token
	var scopes string
	err := sc.Scan(&t.ID, &t.TeamID, &t.UserID, &t.Name, &scopes, &t.Hash,
		scanTime{&t.CreatedAt}, scanTimePtr{&t.ExpiresAt}, scanTimePtr{&t.LastUsedAt})
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(scopes), &t.Scopes); err != nil {
		return nil, fmt.Errorf("token %s scopes: %w", t.ID, err)
	}
	return &t, nil
}

// TokenByHash finds a token by the hash of its secret. It is the one lookup
// not scoped by team: it is how a request's team is found.
func (s *Store) TokenByHash(ctx context.Context, hash []byte) (*berth.Token, error) {
	const op = "get token"
	t, err := scanToken(s.reader().row(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(op, "token not found")
	}
	if err != nil {
		return nil, dbError(op, err)
	}
	return t, nil
}

// TouchToken records that a token was used.
func (s *Store) TouchToken(ctx context.Context, id string, at time.Time) error {
	const op = "touch token"
	n, err := s.writer().affected(ctx, `UPDATE tokens SET last_used_at = ? WHERE id = ?`, at, id)
	if err != nil {
		return dbError(op, err)
	}
	if n == 0 {
		return notFound(op, "token %q not found", id)
	}
	return nil
}

// Tokens lists a team's tokens, oldest first.
func (s *Store) Tokens(ctx context.Context, teamID string) ([]berth.Token, error) {
	const op = "list tokens"
	rows, err := s.reader().query(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE team_id = ? ORDER BY created_at, id`, teamID)
	if err != nil {
		return nil, dbError(op, err)
	}
	defer rows.Close()
	var out []berth.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, dbError(op, err)
		}
		out = append(out, *t)
	}
	return out, dbError(op, rows.Err())
}

func (s *Store) DeleteToken(ctx context.Context, teamID, id string) error {
	const op = "delete token"
	n, err := s.writer().affected(ctx, `DELETE FROM tokens WHERE id = ? AND team_id = ?`, id, teamID)
	if err != nil {
		return dbError(op, err)
	}
	if n == 0 {
		return notFound(op, "token %q not found", id)
	}
	return nil
}
