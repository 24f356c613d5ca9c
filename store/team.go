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
// CreateUser fill an empty ID and a zero CreatedAt. CreateTeam also creates
// the team's default project.
func (s *Store) CreateTeam(ctx context.Context, t *berth.Team) error {
	return s.tx(ctx, func(d db) error { return createTeam(ctx, d, t) })
}

func createTeam(ctx context.Context, d db, t *berth.Team) error {
	const op = "create team"
	if t.ID == "" {
		t.ID = berth.NewID("team")
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now()
	}
	t.CreatedAt = utc(t.CreatedAt)
	_, err := d.exec(ctx, `INSERT INTO teams (id, name, created_at) VALUES (?, ?, ?)`,
		t.ID, t.Name, t.CreatedAt)
	if isUnique(err) {
		return conflict(op, "team %q already exists", t.Name)
	}
	if err != nil {
		return dbError(op, err)
	}
	p := &berth.Project{ID: berth.NewID("proj"), TeamID: t.ID, Name: berth.DefaultProject, CreatedAt: t.CreatedAt}
	return createProject(ctx, d, p)
}

// CreateTeamWithOwner creates a team (and its default project) with userID
// as its owner, in one transaction.
func (s *Store) CreateTeamWithOwner(ctx context.Context, t *berth.Team, userID string) error {
	return s.tx(ctx, func(d db) error {
		if err := createTeam(ctx, d, t); err != nil {
			return err
		}
		return addMember(ctx, d, t.ID, userID, berth.RoleOwner)
	})
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
	return addMember(ctx, s.writer(), teamID, userID, role)
}

func addMember(ctx context.Context, d db, teamID, userID string, role berth.Role) error {
	const op = "add member"
	if !berth.ValidRole(role) {
		return berth.E(op, berth.Invalid, "unknown role %q", role)
	}
	_, err := d.exec(ctx, `INSERT INTO members (team_id, user_id, role) VALUES (?, ?, ?)`,
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

// Membership returns a team, a user and the user's role in it in one read:
// what every authenticated request checks. NotFound when the user is not a
// member of the team (or either is gone).
func (s *Store) Membership(ctx context.Context, teamID, userID string) (*berth.Team, *berth.User, berth.Role, error) {
	const op = "get membership"
	var t berth.Team
	var u berth.User
	var role string
	err := s.reader().row(ctx, `SELECT t.id, t.name, t.created_at, u.id, u.name, u.email, u.created_at, m.role
		FROM members m JOIN teams t ON t.id = m.team_id JOIN users u ON u.id = m.user_id
		WHERE m.team_id = ? AND m.user_id = ?`, teamID, userID).
		Scan(&t.ID, &t.Name, scanTime{&t.CreatedAt}, &u.ID, &u.Name, &u.Email, scanTime{&u.CreatedAt}, &role)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, "", notFound(op, "not a member of the team")
	}
	if err != nil {
		return nil, nil, "", dbError(op, err)
	}
	return &t, &u, berth.Role(role), nil
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
	return one(op, n, err, "token %q not found", id)
}

// Tokens lists a team's tokens, oldest first.
func (s *Store) Tokens(ctx context.Context, teamID string) ([]berth.Token, error) {
	const op = "list tokens"
	return queryAll(ctx, s.reader(), op, deref(scanToken), `SELECT `+tokenColumns+` FROM tokens WHERE team_id = ? ORDER BY created_at, id`, teamID)
}

func (s *Store) DeleteToken(ctx context.Context, teamID, id string) error {
	const op = "delete token"
	n, err := s.writer().affected(ctx, `DELETE FROM tokens WHERE id = ? AND team_id = ?`, id, teamID)
	return one(op, n, err, "token %q not found", id)
}

// Members lists a team's members by name, with their project grants.
func (s *Store) Members(ctx context.Context, teamID string) ([]berth.Member, error) {
	const op = "list members"
	rows, err := s.reader().query(ctx, `SELECT u.id, u.name, u.email, u.created_at, m.role
		FROM members m JOIN users u ON u.id = m.user_id
		WHERE m.team_id = ? ORDER BY u.name, u.id`, teamID)
	if err != nil {
		return nil, dbError(op, err)
	}
	defer rows.Close()
	var out []berth.Member
	for rows.Next() {
		var m berth.Member
		var role string
		if err := rows.Scan(&m.User.ID, &m.User.Name, &m.User.Email, scanTime{&m.User.CreatedAt}, &role); err != nil {
			return nil, dbError(op, err)
		}
		m.Role = berth.Role(role)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(op, err)
	}
	grants, err := s.grants(ctx, s.reader(), teamID, "")
	if err != nil {
		return nil, dbError(op, err)
	}
	for i := range out {
		out[i].Projects = grants[out[i].User.ID]
	}
	return out, nil
}

// grants returns the project grants of a team's members (of one member when
// userID is not empty), by user ID.
func (s *Store) grants(ctx context.Context, d db, teamID, userID string) (map[string][]string, error) {
	rows, err := d.query(ctx, `SELECT user_id, project_id FROM member_projects
		WHERE team_id = ? AND (? = '' OR user_id = ?) ORDER BY user_id, project_id`, teamID, userID, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var u, p string
		if err := rows.Scan(&u, &p); err != nil {
			return nil, err
		}
		out[u] = append(out[u], p)
	}
	return out, rows.Err()
}

// MemberProjects returns the projects a member is narrowed to: nil when the
// member sees every project of the team.
func (s *Store) MemberProjects(ctx context.Context, teamID, userID string) ([]string, error) {
	g, err := s.grants(ctx, s.reader(), teamID, userID)
	if err != nil {
		return nil, dbError("member projects", err)
	}
	return g[userID], nil
}

// SetMemberProjects narrows a developer or viewer to some projects of the
// team (none: every project again). NotFound when the user is not a member
// or a project is not the team's; Invalid for an owner or admin.
func (s *Store) SetMemberProjects(ctx context.Context, teamID, userID string, projectIDs []string) error {
	const op = "set member projects"
	return s.tx(ctx, func(d db) error {
		role, err := memberRole(ctx, d, teamID, userID, false)
		if err != nil {
			return err
		}
		if len(projectIDs) > 0 && !role.Narrowable() {
			return berth.E(op, berth.Invalid, "only developers and viewers can be narrowed to projects")
		}
		return setGrants(ctx, d, teamID, userID, projectIDs)
	})
}

func setGrants(ctx context.Context, d db, teamID, userID string, projectIDs []string) error {
	const op = "set member projects"
	if _, err := d.exec(ctx, `DELETE FROM member_projects WHERE team_id = ? AND user_id = ?`, teamID, userID); err != nil {
		return dbError(op, err)
	}
	for _, p := range projectIDs {
		_, err := d.exec(ctx, `INSERT INTO member_projects (team_id, user_id, project_id) VALUES (?, ?, ?)
			ON CONFLICT DO NOTHING`, teamID, userID, p)
		if isForeignKey(err) {
			return notFound(op, "no project %q in the team", p)
		}
		if err != nil {
			return dbError(op, err)
		}
	}
	return nil
}

// memberRole reads a member's role inside a transaction; lock takes the
// row lock on PostgreSQL (SQLite's IMMEDIATE transaction already holds the
// database's write lock).
func memberRole(ctx context.Context, d db, teamID, userID string, lock bool) (berth.Role, error) {
	q := `SELECT role FROM members WHERE team_id = ? AND user_id = ?`
	if lock && d.pg {
		q += ` FOR UPDATE`
	}
	var role string
	err := d.row(ctx, q, teamID, userID).Scan(&role)
	if errors.Is(err, sql.ErrNoRows) {
		return "", notFound("get member", "not a member of the team")
	}
	return berth.Role(role), dbError("get member", err)
}

// otherOwners counts the owners of a team other than userID, locking the
// owners' rows on PostgreSQL so that two owners cannot demote each other at
// once and leave the team without one.
func otherOwners(ctx context.Context, d db, teamID, userID string) (int, error) {
	q := `SELECT user_id FROM members WHERE team_id = ? AND role = 'owner'`
	if d.pg {
		q += ` FOR UPDATE`
	}
	rows, err := d.query(ctx, q, teamID)
	if err != nil {
		return 0, dbError("count owners", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return 0, dbError("count owners", err)
		}
		if u != userID {
			n++
		}
	}
	return n, dbError("count owners", rows.Err())
}

// SetMemberRole changes a member's role. The last owner cannot be demoted
// (Conflict). A member made owner or admin loses their project grants,
// since those roles see the whole team.
func (s *Store) SetMemberRole(ctx context.Context, teamID, userID string, role berth.Role) error {
	const op = "set member role"
	if !berth.ValidRole(role) {
		return berth.E(op, berth.Invalid, "unknown role %q", role)
	}
	return s.tx(ctx, func(d db) error {
		n, err := otherOwners(ctx, d, teamID, userID)
		if err != nil {
			return err
		}
		old, err := memberRole(ctx, d, teamID, userID, true)
		if err != nil {
			return err
		}
		if old == berth.RoleOwner && role != berth.RoleOwner && n == 0 {
			return conflict(op, "the last owner of a team cannot be demoted; make someone else owner first")
		}
		if _, err := d.exec(ctx, `UPDATE members SET role = ? WHERE team_id = ? AND user_id = ?`, string(role), teamID, userID); err != nil {
			return dbError(op, err)
		}
		if !role.Narrowable() {
			return setGrants(ctx, d, teamID, userID, nil)
		}
		return nil
	})
}

// RemoveMember removes a user from a team together with their tokens and
// project grants in that team, in one transaction. The last owner cannot
// leave (Conflict).
func (s *Store) RemoveMember(ctx context.Context, teamID, userID string) error {
	const op = "remove member"
	return s.tx(ctx, func(d db) error {
		n, err := otherOwners(ctx, d, teamID, userID)
		if err != nil {
			return err
		}
		old, err := memberRole(ctx, d, teamID, userID, true)
		if err != nil {
			return err
		}
		if old == berth.RoleOwner && n == 0 {
			return conflict(op, "the last owner of a team cannot leave it; make someone else owner first")
		}
		for _, q := range []string{
			`DELETE FROM tokens WHERE team_id = ? AND user_id = ?`,
			`DELETE FROM member_projects WHERE team_id = ? AND user_id = ?`,
			`DELETE FROM members WHERE team_id = ? AND user_id = ?`,
		} {
			if _, err := d.exec(ctx, q, teamID, userID); err != nil {
				return dbError(op, err)
			}
		}
		return nil
	})
}

// TeamsOf lists the teams a user belongs to, by name, with their role.
func (s *Store) TeamsOf(ctx context.Context, userID string) ([]berth.Membership, error) {
	const op = "list teams of user"
	rows, err := s.reader().query(ctx, `SELECT t.id, t.name, t.created_at, m.role
		FROM members m JOIN teams t ON t.id = m.team_id
		WHERE m.user_id = ? ORDER BY t.name`, userID)
	if err != nil {
		return nil, dbError(op, err)
	}
	defer rows.Close()
	var out []berth.Membership
	for rows.Next() {
		var m berth.Membership
		var role string
		if err := rows.Scan(&m.Team.ID, &m.Team.Name, scanTime{&m.Team.CreatedAt}, &role); err != nil {
			return nil, dbError(op, err)
		}
		m.Role = berth.Role(role)
		out = append(out, m)
	}
	return out, dbError(op, rows.Err())
}

// TeamByName finds a team by its name. It is not scoped by team: callers
// check membership (see Member) before acting in it.
func (s *Store) TeamByName(ctx context.Context, name string) (*berth.Team, error) {
	const op = "get team"
	var t berth.Team
	err := s.reader().row(ctx, `SELECT id, name, created_at FROM teams WHERE name = ?`, name).
		Scan(&t.ID, &t.Name, scanTime{&t.CreatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(op, "team %q not found", name)
	}
	if err != nil {
		return nil, dbError(op, err)
	}
	return &t, nil
}

// Token finds a token of a team by ID.
func (s *Store) Token(ctx context.Context, teamID, id string) (*berth.Token, error) {
	const op = "get token"
	t, err := scanToken(s.reader().row(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id = ? AND team_id = ?`, id, teamID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(op, "token %q not found", id)
	}
	if err != nil {
		return nil, dbError(op, err)
	}
	return t, nil
}
