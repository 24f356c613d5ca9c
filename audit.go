package berth

import "time"

// Outcome is how an audited request ended.
type Outcome string

// The outcomes: success (2xx/3xx), denied (401, 403, and 404 of an object
// that is missing or hidden) and failed (any other error).
const (
	OutcomeSuccess Outcome = "success"
	OutcomeDenied  Outcome = "denied"
	OutcomeFailed  Outcome = "failed"
)

// OutcomeOf classifies an HTTP status.
func OutcomeOf(status int) Outcome {
	switch {
	case status < 400:
		return OutcomeSuccess
	case status == 401, status == 403, status == 404:
		return OutcomeDenied
	}
	return OutcomeFailed
}

// ValidOutcome reports whether o is one of the outcomes.
func ValidOutcome(o Outcome) bool {
	return o == OutcomeSuccess || o == OutcomeDenied || o == OutcomeFailed
}

// AuditEvent records one request that tried to change something: who, what,
// on which object, from where, and how it ended. It never holds a request
// body or a secret.
type AuditEvent struct {
	ID         string    `json:"id"`
	TeamID     string    `json:"team_id,omitempty"` // empty when the caller's team is unknown (no credentials)
	At         time.Time `json:"at"`
	ActorID    string    `json:"actor_id,omitempty"` // user ID; empty for "anonymous"
	ActorName  string    `json:"actor_name"`
	Action     string    `json:"action"` // "app.create", "member.remove", …
	Target     string    `json:"target,omitempty"`
	ClientAddr string    `json:"client_addr,omitempty"`
	Outcome    Outcome   `json:"outcome"`
	Status     int       `json:"status"`
	Detail     string    `json:"detail,omitempty"`
}

// AuditFilter selects audit events; zero fields select everything.
type AuditFilter struct {
	Since, Until time.Time
	Action       string // exact, or a prefix ending in "." ("app.")
	ActorID      string
	Outcome      Outcome
	Limit        int // newest first; 0 means no limit
}
