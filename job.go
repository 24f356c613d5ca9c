package berth

import "time"

// Job is a durable unit of background work in the store's queue. A worker
// leases a job until LeaseUntil and extends the lease with heartbeats while it
// works; a job whose lease expires (its worker died) is leased again. Jobs
// with the same Key never run at the same time, so deployments of one app run
// one after another.
type Job struct {
	ID          string    `json:"id"`
	Kind        string    `json:"kind"`    // such as "deploy"
	Key         string    `json:"key"`     // serialization key, such as the app ID
	Payload     string    `json:"payload"` // such as the deployment ID
	TeamID      string    `json:"team_id"`
	Status      JobStatus `json:"status"`
	Attempts    int       `json:"attempts"` // leases taken so far
	MaxAttempts int       `json:"max_attempts"`
	RunAt       time.Time `json:"run_at"`   // not leased before this
	Deadline    time.Time `json:"deadline"` // past it the job fails, whatever its state
	Owner       string    `json:"owner,omitempty"`
	LeaseUntil  time.Time `json:"lease_until"`
	LastError   string    `json:"last_error,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// JobStatus is where a job is.
type JobStatus string

// The job statuses.
const (
	JobQueued  JobStatus = "queued"  // waiting for RunAt and a worker
	JobLeased  JobStatus = "leased"  // a worker holds it until LeaseUntil
	JobDone    JobStatus = "done"    // finished
	JobFailed  JobStatus = "failed"  // gave up
	JobAborted JobStatus = "aborted" // cancelled before or while it ran
)
