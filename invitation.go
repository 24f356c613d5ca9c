package berth

import (
	"net/mail"
	"strings"
	"time"
)

// DefaultInvitationTTL is how long an invitation stays valid unless the
// inviter says otherwise.
const DefaultInvitationTTL = 7 * 24 * time.Hour

// MaxInvitationTTL bounds the lifetime of an invitation.
const MaxInvitationTTL = 30 * 24 * time.Hour

// Invitation asks someone, known by e-mail, to join a team with a role (and,
// for developers and viewers, some projects). It is accepted once, by the
// holder of its secret whose account has that e-mail, before it expires.
// Only a hash of the secret is stored; the secret is shown once.
type Invitation struct {
	ID         string     `json:"id"`
	TeamID     string     `json:"team_id"`
	Email      string     `json:"email"`
	Role       Role       `json:"role"`
	Projects   []string   `json:"projects,omitempty"` // project IDs
	Hash       []byte     `json:"-"`
	InvitedBy  string     `json:"invited_by"` // user ID
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	AcceptedAt *time.Time `json:"accepted_at,omitempty"`
	AcceptedBy string     `json:"accepted_by,omitempty"` // user ID
}

// Validate checks an invitation before it is stored.
func (i *Invitation) Validate() error {
	bad := func(format string, args ...any) error { return E("validate invitation", Invalid, format, args...) }
	if _, err := NormalizeEmail(i.Email); err != nil {
		return err
	}
	if !ValidRole(i.Role) {
		return bad("unknown role %q: use owner, admin, developer or viewer", clip(string(i.Role)))
	}
	if len(i.Projects) > 0 && !i.Role.Narrowable() {
		return bad("only developers and viewers can be narrowed to projects")
	}
	if !i.ExpiresAt.After(i.CreatedAt) || i.ExpiresAt.Sub(i.CreatedAt) > MaxInvitationTTL {
		return bad("an invitation expires after more than 0 and at most %s", MaxInvitationTTL)
	}
	return nil
}

// Pending reports whether the invitation can still be accepted at now.
func (i *Invitation) Pending(now time.Time) bool {
	return i.AcceptedAt == nil && now.Before(i.ExpiresAt)
}

// NormalizeEmail checks a bare e-mail address ("ann@example.com", no display
// name) and returns it lowercased, the form berth compares.
func NormalizeEmail(s string) (string, error) {
	bad := E("validate email", Invalid, "e-mail %q: give a plain address such as ann@example.com", clip(s))
	if len(s) > 254 || strings.ContainsAny(s, " <>\"\r\n") {
		return "", bad
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return "", bad
	}
	return strings.ToLower(s), nil
}
