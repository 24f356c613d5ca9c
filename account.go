package berth

import "time"

// Session is a browser's sign-in. The cookie holds a random secret; only
// its SHA-256 hash (ID) is stored, so a copy of the database opens no
// session. A session acts in one team (its current team) and ends at
// ExpiresAt, or earlier when it stays unused for the idle timeout.
type Session struct {
	ID         []byte // SHA-256 of the cookie's secret
	UserID     string
	TeamID     string
	CSRF       string // the secret that mutating requests must echo
	CreatedAt  time.Time
	ExpiresAt  time.Time
	LastSeenAt time.Time
	ClientAddr string
	UserAgent  string
}

// Expired reports whether the session has ended at now: past its absolute
// expiry, or unused for longer than idle.
func (s *Session) Expired(now time.Time, idle time.Duration) bool {
	return !now.Before(s.ExpiresAt) || now.Sub(s.LastSeenAt) >= idle
}

// Identity is an account at an OpenID Connect provider (issuer and
// subject) linked to a berth user, who may then sign in through it.
type Identity struct {
	Issuer    string    `json:"issuer"`
	Subject   string    `json:"subject"`
	UserID    string    `json:"user_id"`
	CreatedAt time.Time `json:"created_at"`
}
