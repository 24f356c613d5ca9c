// Package queue runs durable background jobs stored in the store: workers
// lease a job, extend the lease with heartbeats while they work, and finish
// it, retry it with exponential backoff, or give it up. A job whose worker
// dies is leased again once its lease expires, so no job is ever stuck.
package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/store"
)

// Handler does a job's work. A returned error of Kind Unavailable is
// retried with backoff while attempts remain; any other error fails the job.
// ctx is cancelled when the lease is lost or the job's deadline passes.
type Handler func(ctx context.Context, job *berth.Job) error

// Config tunes a Queue. Zero fields take the defaults shown.
type Config struct {
	Owner       string           // this worker's identity; default a random ID
	Workers     int              // concurrent jobs; default 4
	Lease       time.Duration    // lease length; default 15s
	Poll        time.Duration    // how often idle workers look for work; default 500ms
	BaseBackoff time.Duration    // first retry delay; default 2s, doubling, capped at MaxBackoff
	MaxBackoff  time.Duration    // default 1m
	Now         func() time.Time // clock; default time.Now
	Log         *slog.Logger
	// KeepFinished is how long finished jobs are kept before Run prunes
	// them (hourly); default 7 days.
	KeepFinished time.Duration
}

// Queue is a pool of workers over the store's jobs.
type Queue struct {
	st       *store.Store
	cfg      Config
	log      *slog.Logger
	mu       sync.Mutex
	handlers map[string]Handler
	wake     chan struct{}
}

// New returns a queue over st.
func New(st *store.Store, cfg Config) *Queue {
	if cfg.Owner == "" {
		cfg.Owner = berth.NewID("worker")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.KeepFinished <= 0 {
		cfg.KeepFinished = 7 * 24 * time.Hour
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 15 * time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 500 * time.Millisecond
	}
	if cfg.BaseBackoff <= 0 {
		cfg.BaseBackoff = 2 * time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Queue{st: st, cfg: cfg, log: cfg.Log.With("owner", cfg.Owner), handlers: map[string]Handler{}, wake: make(chan struct{}, 1)}
}

// Handle registers the handler of a job kind. Call it before Run.
func (q *Queue) Handle(kind string, h Handler) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.handlers[kind] = h
}

// Enqueue stores a new job and wakes a worker. It fills ID, Status,
// CreatedAt, RunAt (now) and MaxAttempts (3) when they are zero; a zero
// Deadline means one hour from now.
func (q *Queue) Enqueue(ctx context.Context, j *berth.Job) error {
	now := q.cfg.Now()
	if j.ID == "" {
		j.ID = berth.NewID("job")
	}
	j.Status = berth.JobQueued
	if j.CreatedAt.IsZero() {
		j.CreatedAt = now
	}
	if j.RunAt.IsZero() {
		j.RunAt = now
	}
	if j.MaxAttempts <= 0 {
		j.MaxAttempts = 3
	}
	if j.Deadline.IsZero() {
		j.Deadline = now.Add(time.Hour)
	}
	if err := q.st.EnqueueJob(ctx, j); err != nil {
		return fmt.Errorf("enqueue %s job: %w", j.Kind, err)
	}
	q.Notify()
	return nil
}

// Notify wakes an idle worker to look for work now.
func (q *Queue) Notify() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Run works jobs until ctx ends, then waits for running jobs to return.
func (q *Queue) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range q.cfg.Workers {
		wg.Go(func() { q.work(ctx) })
	}
	wg.Go(func() { q.prune(ctx, time.Hour) })
	wg.Wait()
}

// prune deletes finished jobs older than KeepFinished now and then every
// interval, until ctx ends.
func (q *Queue) prune(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := q.Prune(ctx); err != nil && ctx.Err() == nil {
			q.log.Warn("prune jobs", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Prune deletes the finished jobs created more than KeepFinished ago.
func (q *Queue) Prune(ctx context.Context) error {
	n, err := q.st.PruneJobs(ctx, q.cfg.Now().Add(-q.cfg.KeepFinished))
	if n > 0 {
		q.log.Info("pruned finished jobs", "count", n)
	}
	return err
}

func (q *Queue) work(ctx context.Context) {
	t := time.NewTicker(q.cfg.Poll)
	defer t.Stop()
	for {
		// Drain every job that is ready before sleeping again.
		for ctx.Err() == nil && q.RunOnce(ctx) {
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-q.wake:
		}
	}
}

// RunOnce leases one ready job and works it. It reports whether it found
// one.
func (q *Queue) RunOnce(ctx context.Context) bool {
	now := q.cfg.Now()
	j, err := q.st.LeaseJob(ctx, q.cfg.Owner, now, now.Add(q.cfg.Lease))
	if err != nil {
		if !berth.IsKind(err, berth.NotFound) && ctx.Err() == nil {
			q.log.Error("lease job", "err", err)
		}
		return false
	}
	q.run(ctx, j)
	return true
}

// errLeaseLost and errDeadline are the causes of a job context's end.
var (
	errLeaseLost = errors.New("lease lost to another worker")
	errDeadline  = errors.New("job deadline passed")
)

func (q *Queue) run(parent context.Context, j *berth.Job) {
	log := q.log.With("job", j.ID, "kind", j.Kind, "attempt", j.Attempts)
	q.mu.Lock()
	h := q.handlers[j.Kind]
	q.mu.Unlock()
	if h == nil {
		q.finish(j, berth.JobFailed, "no handler for job kind "+j.Kind, log)
		return
	}
	// The handler runs even when the deadline has passed, with a context
	// already ended, so that it can settle the job's object (a deployment
	// must end in a terminal state).
	now := q.cfg.Now()
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	// The handler gets the job's deadline as a real-time deadline.
	dctx, dcancel := context.WithDeadlineCause(ctx, time.Now().Add(j.Deadline.Sub(now)), errDeadline)
	defer dcancel()

	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		q.heartbeat(dctx, j, cancel, log)
	}()
	err := h(dctx, j)
	dcancel()
	<-hbDone

	if parent.Err() != nil {
		// Shutting down: leave the lease to expire so that the next
		// process takes the job over.
		log.Info("job interrupted by shutdown")
		return
	}
	switch {
	case err == nil:
		q.finish(j, berth.JobDone, "", log)
	case context.Cause(ctx) == errLeaseLost:
		log.Warn("job abandoned: lease lost")
	case berth.IsKind(err, berth.Unavailable) && j.Attempts < j.MaxAttempts && q.cfg.Now().Before(j.Deadline):
		runAt := q.cfg.Now().Add(Backoff(j.Attempts, q.cfg.BaseBackoff, q.cfg.MaxBackoff))
		if rerr := q.st.RetryJob(context.WithoutCancel(parent), j.ID, q.cfg.Owner, runAt, err.Error()); rerr != nil {
			log.Error("retry job", "err", rerr)
			return
		}
		log.Warn("job will be retried", "err", err, "run_at", runAt)
	default:
		q.finish(j, berth.JobFailed, err.Error(), log)
	}
}

func (q *Queue) heartbeat(ctx context.Context, j *berth.Job, cancel context.CancelCauseFunc, log *slog.Logger) {
	t := time.NewTicker(q.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := q.st.HeartbeatJob(ctx, j.ID, q.cfg.Owner, q.cfg.Now().Add(q.cfg.Lease))
		switch {
		case err == nil:
		case berth.IsKind(err, berth.Conflict):
			cancel(errLeaseLost)
			return
		case ctx.Err() == nil:
			log.Warn("heartbeat", "err", err)
		}
	}
}

func (q *Queue) finish(j *berth.Job, status berth.JobStatus, msg string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := q.st.FinishJob(ctx, j.ID, q.cfg.Owner, status, msg); err != nil {
		log.Error("finish job", "status", status, "err", err)
		return
	}
	if status == berth.JobFailed {
		log.Warn("job failed", "err", msg)
	}
}

// Backoff is the delay before retry number attempt (1-based): base doubled
// per earlier attempt, capped at max.
func Backoff(attempt int, base, max time.Duration) time.Duration {
	d := base
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}
