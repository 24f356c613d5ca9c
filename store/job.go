package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/berthhq/berth"
)

// leaseLock is the PostgreSQL advisory lock that serializes LeaseJob. Row
// locks alone (FOR UPDATE SKIP LOCKED) would let two workers lease two
// different jobs of one key at once; leasing is short and rare enough to
// take one at a time.
const leaseLock int64 = 0x6265727468_02 // "berth", 2

const jobColumns = `id, kind, key, payload, team_id, status, attempts, max_attempts, run_at, deadline,
	owner, lease_until, last_error, created_at`

func scanJob(sc scanner) (*berth.Job, error) {
	var j berth.Job
	var status string
	err := sc.Scan(&j.ID, &j.Kind, &j.Key, &j.Payload, &j.TeamID, &status, &j.Attempts, &j.MaxAttempts,
		scanTime{&j.RunAt}, scanTime{&j.Deadline}, &j.Owner, scanTime{&j.LeaseUntil}, &j.LastError, scanTime{&j.CreatedAt})
	if err != nil {
		return nil, err
	}
	j.Status = berth.JobStatus(status)
	return &j, nil
}

// EnqueueJob adds a job (status queued). It fills an empty ID, a zero
// CreatedAt (now) and a zero RunAt (CreatedAt); a zero Deadline means none.
func (s *Store) EnqueueJob(ctx context.Context, j *berth.Job) error {
	const op = "enqueue job"
	if j.Kind == "" {
		return berth.E(op, berth.Invalid, "a job needs a kind")
	}
	if j.ID == "" {
		j.ID = berth.NewID("job")
	}
	if j.CreatedAt.IsZero() {
		j.CreatedAt = time.Now()
	}
	if j.RunAt.IsZero() {
		j.RunAt = j.CreatedAt
	}
	j.CreatedAt, j.RunAt = utc(j.CreatedAt), utc(j.RunAt)
	if !j.Deadline.IsZero() {
		j.Deadline = utc(j.Deadline)
	}
	j.Status, j.Owner, j.LeaseUntil, j.Attempts = berth.JobQueued, "", time.Time{}, 0
	_, err := s.writer().exec(ctx, `INSERT INTO jobs (`+jobColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		j.ID, j.Kind, j.Key, j.Payload, j.TeamID, string(j.Status), j.Attempts, j.MaxAttempts, j.RunAt, nullTime(j.Deadline),
		j.Owner, nil, j.LastError, j.CreatedAt)
	if isUnique(err) {
		return conflict(op, "job %q already exists", j.ID)
	}
	return dbError(op, err)
}

// leasable is the condition of a job LeaseJob may take at now (the two
// placeholders).
const leasable = `((status = 'queued' AND run_at <= ?) OR (status = 'leased' AND lease_until <= ?))`

// LeaseJob takes the oldest queued job whose RunAt has come, or a leased one
// whose lease expired, whose Key no live lease holds; it increments Attempts.
// NotFound when there is none.
//
// A key is held by any other leased job of that key, even one whose lease
// expired: that job is itself leasable and is taken again first, so that a
// late heartbeat of its old owner can never leave two jobs of one key
// running. A unique index keeps at most one leased job per key.
func (s *Store) LeaseJob(ctx context.Context, owner string, now, until time.Time) (*berth.Job, error) {
	const op = "lease job"
	if owner == "" {
		return nil, berth.E(op, berth.Invalid, "a lease needs an owner")
	}
	var job *berth.Job
	err := s.tx(ctx, func(tx db) error {
		if tx.pg {
			if _, err := tx.exec(ctx, `SELECT pg_advisory_xact_lock(?)`, leaseLock); err != nil {
				return dbError(op, err)
			}
		}
		// A heartbeat may renew the picked job between the two statements;
		// the update then takes nothing and the next pick is tried.
		for range 5 {
			var id string
			err := tx.row(ctx, `SELECT j.id FROM jobs j WHERE `+leasable+`
				AND (j.key = '' OR NOT EXISTS (SELECT 1 FROM jobs o
					WHERE o.key = j.key AND o.id <> j.id AND o.status = 'leased'))
				ORDER BY j.created_at, j.id LIMIT 1`, now, now).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				return notFound(op, "no job to lease")
			}
			if err != nil {
				return dbError(op, err)
			}
			job, err = scanJob(tx.row(ctx, `UPDATE jobs SET status = 'leased', owner = ?, lease_until = ?, attempts = attempts + 1
				WHERE id = ? AND `+leasable+` RETURNING `+jobColumns, owner, until, id, now, now))
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			return dbError(op, err)
		}
		return notFound(op, "no job to lease")
	})
	if err != nil {
		return nil, err
	}
	return job, nil
}

// leasedUpdate runs an update of a job that owner leases; Conflict when it
// does not (any more), NotFound when there is no such job.
func (s *Store) leasedUpdate(ctx context.Context, op, id, owner, query string, args ...any) error {
	args = append(args, id, owner)
	n, err := s.writer().affected(ctx, query+` WHERE id = ? AND owner = ? AND status = 'leased'`, args...)
	if err != nil {
		return dbError(op, err)
	}
	if n > 0 {
		return nil
	}
	if _, err := s.Job(ctx, id); err != nil {
		return err
	}
	return conflict(op, "job %q is not leased by this worker", id)
}

// HeartbeatJob extends a lease; Conflict when owner no longer holds it.
func (s *Store) HeartbeatJob(ctx context.Context, id, owner string, until time.Time) error {
	return s.leasedUpdate(ctx, "heartbeat job", id, owner, `UPDATE jobs SET lease_until = ?`, until)
}

// FinishJob ends a job (done, failed or aborted); Conflict when owner no
// longer holds it. An empty errMsg keeps the last error.
func (s *Store) FinishJob(ctx context.Context, id, owner string, status berth.JobStatus, errMsg string) error {
	const op = "finish job"
	switch status {
	case berth.JobDone, berth.JobFailed, berth.JobAborted:
	default:
		return berth.E(op, berth.Invalid, "a job cannot finish as %q", status)
	}
	if errMsg == "" {
		return s.leasedUpdate(ctx, op, id, owner, `UPDATE jobs SET status = ?`, string(status))
	}
	return s.leasedUpdate(ctx, op, id, owner, `UPDATE jobs SET status = ?, last_error = ?`, string(status), errMsg)
}

// RetryJob puts a leased job back in the queue to run at runAt; Conflict
// when owner no longer holds it. An empty errMsg keeps the last error.
func (s *Store) RetryJob(ctx context.Context, id, owner string, runAt time.Time, errMsg string) error {
	const op = "retry job"
	const set = `UPDATE jobs SET status = 'queued', run_at = ?, owner = '', lease_until = NULL`
	if errMsg == "" {
		return s.leasedUpdate(ctx, op, id, owner, set, runAt)
	}
	return s.leasedUpdate(ctx, op, id, owner, set+`, last_error = ?`, runAt, errMsg)
}

// PruneJobs deletes the finished jobs (done, failed, aborted) created
// before before, and reports how many. Queued and leased jobs are never
// touched. What a job did is kept by its object (a deployment's status,
// error and log), so a finished job row is bookkeeping only.
func (s *Store) PruneJobs(ctx context.Context, before time.Time) (int64, error) {
	n, err := s.writer().affected(ctx, `DELETE FROM jobs WHERE status IN (?, ?, ?) AND created_at < ?`,
		string(berth.JobDone), string(berth.JobFailed), string(berth.JobAborted), utc(before))
	return n, dbError("prune jobs", err)
}

// CancelJob aborts a job that no worker has leased yet; Conflict when it is
// not queued.
func (s *Store) CancelJob(ctx context.Context, id string) error {
	const op = "cancel job"
	n, err := s.writer().affected(ctx, `UPDATE jobs SET status = 'aborted' WHERE id = ? AND status = 'queued'`, id)
	if err != nil {
		return dbError(op, err)
	}
	if n > 0 {
		return nil
	}
	j, err := s.Job(ctx, id)
	if err != nil {
		return err
	}
	return conflict(op, "job %q is %s, not queued", id, j.Status)
}

// Job finds a job by ID.
func (s *Store) Job(ctx context.Context, id string) (*berth.Job, error) {
	const op = "get job"
	j, err := scanJob(s.reader().row(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(op, "job %q not found", id)
	}
	if err != nil {
		return nil, dbError(op, err)
	}
	return j, nil
}

// BusyKeys returns the keys of every job that is queued or leased: the apps
// a deployment is working on or about to. The reconciler leaves them alone.
func (s *Store) BusyKeys(ctx context.Context) (map[string]bool, error) {
	const op = "list busy job keys"
	rows, err := s.reader().query(ctx, `SELECT DISTINCT key FROM jobs WHERE status IN (?, ?)`, string(berth.JobQueued), string(berth.JobLeased))
	if err != nil {
		return nil, dbError(op, err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, dbError(op, err)
		}
		out[k] = true
	}
	return out, dbError(op, rows.Err())
}

// ExpireLeases ends at once the leases held by owners whose name starts
// with prefix, except owner keep: when a server restarts, the leases of its
// previous process (same instance, another owner) are known dead, and
// waiting for them to run out would only delay recovery. It returns how
// many leases it ended.
func (s *Store) ExpireLeases(ctx context.Context, prefix, keep string, now time.Time) (int, error) {
	const op = "expire leases"
	if prefix == "" {
		return 0, berth.E(op, berth.Invalid, "an owner prefix is required")
	}
	res, err := s.writer().exec(ctx, `UPDATE jobs SET lease_until = ?
		WHERE status = 'leased' AND owner <> ? AND substr(owner, 1, ?) = ? AND lease_until > ?`,
		now, keep, len(prefix), prefix, now)
	if err != nil {
		return 0, dbError(op, err)
	}
	n, err := res.RowsAffected()
	return int(n), dbError(op, err)
}
