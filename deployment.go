package berth

import (
	"slices"
	"time"
)

// Deployment is one attempt to put a version of an app live. It is a durable
// job: every move between statuses is persisted with a conditional update, so
// two workers never step the same deployment and a crash leaves a state that
// the next process can finish.
//
//	queued ─▶ fetching ─▶ building ─▶ starting ─▶ verifying ─▶ switching ─▶ live
//	   │          │           │           │            │            │
//	   └──────────┴───────────┴───────────┴────────────┴────────────┴──▶ failed | cancelled
//	live ─▶ superseded (a newer release went live)
//	live ─▶ rolled_back (a rollback replaced it)
//
// A rollback, or a deploy of a prebuilt image, skips the stages it does not
// need (queued ─▶ starting, fetching ─▶ starting).
type Deployment struct {
	ID        string     `json:"id"`
	TeamID    string     `json:"team_id"`
	AppID     string     `json:"app_id"`
	Number    int        `json:"number"` // 1, 2, 3… per app
	Kind      DeployKind `json:"kind"`
	Status    Status     `json:"status"`
	Ref       string     `json:"ref,omitempty"`    // requested branch, tag or commit
	Image     string     `json:"image,omitempty"`  // requested prebuilt image
	Commit    string     `json:"commit,omitempty"` // resolved commit
	ReleaseID string     `json:"release_id,omitempty"`
	// TargetReleaseID is the release a rollback goes back to.
	TargetReleaseID string        `json:"target_release_id,omitempty"`
	CreatedBy       string        `json:"created_by"`
	Error           string        `json:"error,omitempty"`
	Stages          []StageTiming `json:"stages,omitempty"`
	CancelRequested bool          `json:"cancel_requested,omitempty"`
	CreatedAt       time.Time     `json:"created_at"`
	UpdatedAt       time.Time     `json:"updated_at"`
	FinishedAt      *time.Time    `json:"finished_at,omitempty"`
}

// DeployKind says what a deployment does.
type DeployKind string

// The deployment kinds.
const (
	KindDeploy   DeployKind = "deploy"   // fetch, build and run the app's source
	KindRollback DeployKind = "rollback" // run an earlier release again, no build
)

// StageTiming records when a deployment entered and left a stage.
type StageTiming struct {
	Stage     Status     `json:"stage"`
	StartedAt time.Time  `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
}

// Duration is how long the stage took, or has taken until now.
func (s StageTiming) Duration(now time.Time) time.Duration {
	if s.EndedAt != nil {
		return s.EndedAt.Sub(s.StartedAt)
	}
	return now.Sub(s.StartedAt)
}

// Status is where a deployment is in its life.
type Status string

// The deployment statuses.
const (
	StatusQueued     Status = "queued"
	StatusFetching   Status = "fetching"
	StatusBuilding   Status = "building"
	StatusStarting   Status = "starting"
	StatusVerifying  Status = "verifying"
	StatusSwitching  Status = "switching"
	StatusLive       Status = "live"
	StatusFailed     Status = "failed"
	StatusCancelled  Status = "cancelled"
	StatusSuperseded Status = "superseded"
	StatusRolledBack Status = "rolled_back"
)

// transitions is the state machine: the statuses each status may move to.
var transitions = map[Status][]Status{
	StatusQueued:    {StatusFetching, StatusStarting, StatusFailed, StatusCancelled},
	StatusFetching:  {StatusBuilding, StatusStarting, StatusFailed, StatusCancelled},
	StatusBuilding:  {StatusStarting, StatusFailed, StatusCancelled},
	StatusStarting:  {StatusVerifying, StatusFailed, StatusCancelled},
	StatusVerifying: {StatusSwitching, StatusFailed, StatusCancelled},
	StatusSwitching: {StatusLive, StatusFailed},
	StatusLive:      {StatusSuperseded, StatusRolledBack},
}

// CanMove reports whether a deployment may move from one status to another.
func CanMove(from, to Status) bool { return slices.Contains(transitions[from], to) }

// Active reports whether a deployment in this status is still being worked on.
func (s Status) Active() bool {
	switch s {
	case StatusQueued, StatusFetching, StatusBuilding, StatusStarting, StatusVerifying, StatusSwitching:
		return true
	}
	return false
}

// Done reports whether the deployment has ended its work (live counts as
// done: the work ended in success).
func (s Status) Done() bool { return !s.Active() }

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	_, ok := transitions[s]
	return ok || s == StatusFailed || s == StatusCancelled || s == StatusSuperseded || s == StatusRolledBack
}

// Statuses lists every status in order of the happy path, then the ends.
var Statuses = []Status{StatusQueued, StatusFetching, StatusBuilding, StatusStarting, StatusVerifying,
	StatusSwitching, StatusLive, StatusFailed, StatusCancelled, StatusSuperseded, StatusRolledBack}

// LogLine is one line of a deployment's log (build output, stage changes).
type LogLine struct {
	Seq  int64     `json:"seq"`
	Time time.Time `json:"time"`
	Text string    `json:"text"`
}
