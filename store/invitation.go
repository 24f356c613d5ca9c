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

// CreateInvitation stores an invitation (the hash of its secret, never the
// secret). It fills an empty ID. Projects must be the team's (NotFound).
func (s *Store) CreateInvitation(ctx context.Context, inv *berth.Invitation) error {
	const op = "create invitation"
	if len(inv.Hash) == 0 {
		return berth.E(op, berth.Invalid, "an invitation needs the hash of its secret")
	}
	if inv.ID == "" {
		inv.ID = berth.NewID("inv")
	}
	inv.CreatedAt, inv.ExpiresAt = utc(inv.CreatedAt), utc(inv.ExpiresAt)
	projects, err := json.Marshal(nonNil(inv.Projects))
	if err != nil {
		return dbError(op, err)
	}
	return s.tx(ctx, func(d db) error {
		for _, p := range inv.Projects {
			ok, err := d.exists(ctx, `SELECT 1 FROM projects WHERE id = ? AND team_id = ?`, p, inv.TeamID)
			if err != nil {
				return dbError(op, err)
			}
			if !ok {
				return notFound(op, "no project %q in the team", p)
			}
		}
		_, err := d.exec(ctx, `INSERT INTO invitations (id, team_id, email, role, projects, hash, invited_by, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			inv.ID, inv.TeamID, inv.Email, string(inv.Role), string(projects), inv.Hash, inv.InvitedBy, inv.CreatedAt, inv.ExpiresAt)
		switch {
		case isUnique(err):
			return conflict(op, "the invitation already exists")
		case isForeignKey(err):
			return notFound(op, "team %q not found", inv.TeamID)
		}
		return dbError(op, err)
	})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

const invitationColumns = `id, team_id, email, role, projects, hash, invited_by, created_at, expires_at, accepted_at, accepted_by`

func scanInvitation(sc scanner) (*berth.Invitation, error) {
	var inv berth.Invitation
	var role, projects string
	err := sc.Scan(&inv.ID, &inv.TeamID, &inv.Email, &role, &projects, &inv.Hash, &inv.InvitedBy,
		scanTime{&inv.CreatedAt}, scanTime{&inv.ExpiresAt}, scanTimePtr{&inv.AcceptedAt}, &inv.AcceptedBy)
	if err != nil {
		return nil, err
	}
	inv.Role = berth.Role(role)
	if err := json.Unmarshal([]byte(projects), &inv.Projects); err != nil {
		return nil, fmt.Errorf("invitation %s projects: %w", inv.ID, err)
	}
	if len(inv.Projects) == 0 {
		inv.Projects = nil
	}
	return &inv, nil
}

// Invitations lists a team's invitations, newest first.
func (s *Store) Invitations(ctx context.Context, teamID string) ([]berth.Invitation, error) {
	const op = "list invitations"
	return queryAll(ctx, s.reader(), op, deref(scanInvitation), `SELECT `+invitationColumns+` FROM invitations WHERE team_id = ? ORDER BY created_at DESC, id`, teamID)
}

// DeleteInvitation revokes an invitation (accepted ones are deleted too,
// which only forgets them).
func (s *Store) DeleteInvitation(ctx context.Context, teamID, id string) error {
	const op = "delete invitation"
	n, err := s.writer().affected(ctx, `DELETE FROM invitations WHERE id = ? AND team_id = ?`, id, teamID)
	return one(op, n, err, "invitation %q not found", id)
}

// Acceptance is who accepts an invitation: an existing user, or a new one
// that AcceptInvitation creates (its ID and CreatedAt are filled, and its
// e-mail, when empty, is the invited one).
type Acceptance struct {
	User    *berth.User
	NewUser bool
	// PasswordHash is the new account's password (argon2id PHC string),
	// stored in the same transaction; "" for none.
	PasswordHash string
}

// AcceptInvitation accepts the invitation whose secret has hash, at now,
// in one transaction: it creates the user when NewUser, checks the user's
// e-mail is the invited one, adds the member with the invited role and
// project grants, and marks the invitation accepted. It is single use: of
// two concurrent acceptances exactly one succeeds. An unknown, revoked,
// used or expired invitation, or one for another e-mail, is NotFound (the
// caller cannot tell which); a user who is already a member is Conflict.
func (s *Store) AcceptInvitation(ctx context.Context, hash []byte, a Acceptance, now time.Time) (*berth.Invitation, error) {
	const op = "accept invitation"
	now = utc(now)
	gone := notFound(op, "invitation not found, used or expired")
	var inv *berth.Invitation
	err := s.tx(ctx, func(d db) error {
		var err error
		inv, err = scanInvitation(d.row(ctx, `SELECT `+invitationColumns+` FROM invitations WHERE hash = ?`, hash))
		if errors.Is(err, sql.ErrNoRows) {
			return gone
		}
		if err != nil {
			return dbError(op, err)
		}
		if a.NewUser && a.User.Email == "" {
			a.User.Email = inv.Email
		}
		email, err := berth.NormalizeEmail(a.User.Email)
		if err != nil || !inv.Pending(now) || email != inv.Email {
			return gone
		}
		if a.NewUser {
			if a.User.ID == "" {
				a.User.ID = berth.NewID("user")
			}
			a.User.CreatedAt, a.User.Email = now, email
			var changed any
			if a.PasswordHash != "" {
				changed = now
			}
			_, err := d.exec(ctx, `INSERT INTO users (id, name, email, created_at, password_hash, password_changed_at) VALUES (?, ?, ?, ?, ?, ?)`,
				a.User.ID, a.User.Name, a.User.Email, a.User.CreatedAt, a.PasswordHash, changed)
			if isUnique(err) {
				return conflict(op, "an account with this e-mail exists: sign in with it and accept the invitation")
			}
			if err != nil {
				return dbError(op, err)
			}
		}
		// The conditional update is what makes the invitation single use:
		// a concurrent acceptance blocks on the row (PostgreSQL) or the
		// write lock (SQLite) and then finds it accepted.
		n, err := d.affected(ctx, `UPDATE invitations SET accepted_at = ?, accepted_by = ?
			WHERE id = ? AND accepted_at IS NULL AND expires_at > ?`, now, a.User.ID, inv.ID, now)
		if err != nil {
			return dbError(op, err)
		}
		if n == 0 {
			return gone
		}
		if err := addMember(ctx, d, inv.TeamID, a.User.ID, inv.Role); err != nil {
			return err
		}
		if err := setGrants(ctx, d, inv.TeamID, a.User.ID, inv.Projects); err != nil {
			return err
		}
		inv.AcceptedAt, inv.AcceptedBy = &now, a.User.ID
		return nil
	})
	if err != nil {
		return nil, err
	}
	return inv, nil
}
