package berth

import "time"

// Team owns apps and has members. Every object belongs to exactly one team,
// and every lookup is scoped by it.
type Team struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// User is a person (or a robot) who acts on berth.
type User struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Role is a member's role in a team.
type Role string

// The roles, from most to least powerful.
const (
	RoleOwner     Role = "owner"
	RoleAdmin     Role = "admin"
	RoleDeveloper Role = "developer"
	RoleViewer    Role = "viewer"
)

// ValidRole reports whether r is one of the four roles.
func ValidRole(r Role) bool { return r.Rank() > 0 }

// Rank orders the roles: owner 4, admin 3, developer 2, viewer 1; 0 for an
// unknown role. A member may only grant roles of at most their own rank.
func (r Role) Rank() int {
	switch r {
	case RoleOwner:
		return 4
	case RoleAdmin:
		return 3
	case RoleDeveloper:
		return 2
	case RoleViewer:
		return 1
	}
	return 0
}

// Scopes are the permissions a role gives in its team. A token of a member
// never exceeds them, whatever scopes it was issued with: demoting a member
// narrows their tokens at once.
//
//   - owner, admin: everything (admin); an owner alone may change owners
//     and team-wide security settings
//   - developer: read, read-secrets, deploy, write (apps, env, domains)
//   - viewer: read
func (r Role) Scopes() []Scope {
	switch r {
	case RoleOwner, RoleAdmin:
		return []Scope{ScopeAdmin}
	case RoleDeveloper:
		return []Scope{ScopeReadSecrets, ScopeWrite}
	case RoleViewer:
		return []Scope{ScopeRead}
	}
	return nil
}
