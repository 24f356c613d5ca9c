package berth

import (
	"slices"
	"time"
)

// Token is an API token. Only a hash of its secret is stored; the secret is
// shown once, when the token is created.
type Token struct {
	ID         string     `json:"id"`
	TeamID     string     `json:"team_id"`
	UserID     string     `json:"user_id"`
	Name       string     `json:"name"`
	Scopes     []Scope    `json:"scopes"`
	Hash       []byte     `json:"-"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// Scope is a permission a token carries.
type Scope string

// The scopes. Each implies the ones listed before it, except read-secrets,
// which only admin implies.
const (
	ScopeRead        Scope = "read"
	ScopeReadSecrets Scope = "read-secrets"
	ScopeDeploy      Scope = "deploy"
	ScopeWrite       Scope = "write"
	ScopeAdmin       Scope = "admin"
)

var scopeImplies = map[Scope][]Scope{
	ScopeRead:        {ScopeRead},
	ScopeReadSecrets: {ScopeRead, ScopeReadSecrets},
	ScopeDeploy:      {ScopeRead, ScopeDeploy},
	ScopeWrite:       {ScopeRead, ScopeDeploy, ScopeWrite},
	ScopeAdmin:       {ScopeRead, ScopeReadSecrets, ScopeDeploy, ScopeWrite, ScopeAdmin},
}

// Allows reports whether a holder of scopes has permission need.
func Allows(scopes []Scope, need Scope) bool {
	for _, s := range scopes {
		if slices.Contains(scopeImplies[s], need) {
			return true
		}
	}
	return false
}

// ValidScope reports whether s is a known scope.
func ValidScope(s Scope) bool { _, ok := scopeImplies[s]; return ok }

// Expired reports whether the token has expired at now.
func (t *Token) Expired(now time.Time) bool { return t.ExpiresAt != nil && !now.Before(*t.ExpiresAt) }
