package queue_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/queue"
	"github.com/berthhq/berth/store"
)

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		attempt int
		want    time.Duration
	}{{1, 2 * time.Second}, {2, 4 * time.Second}, {3, 8 * time.Second}, {6, time.Minute}, {60, time.Minute}} {
		if got := queue.Backoff(tc.attempt, 2*time.Second, time.Minute); got != tc.want {
			t.Errorf("Backoff(%d) = %s, want %s", tc.attempt, got, tc.want)
		}
	}
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "q.db"), bytes.Repeat([]byte{1}, 32), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// clock is a fake clock tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestRetryWithBackoffThenGiveUp(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	clk := &clock{now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
	q := queue.New(st, queue.Config{Now: clk.Now, BaseBackoff: 10 * time.Second, MaxBackoff: time.Minute})
	var calls atomic.Int32
	q.Handle("flaky", func(ctx context.Context, j *berth.Job) error {
		calls.Add(1)
		return berth.Wrap("call docker", berth.Unavailable, errors.New("connection refused"))
	})
	j := &berth.Job{Kind: "flaky", Key: "k", Payload: "p", MaxAttempts: 3}
	if err := q.Enqueue(ctx, j); err != nil {
		t.Fatal(err)
	}
	if !q.RunOnce(ctx) || calls.Load() != 1 {
		t.Fatal("first attempt did not run")
	}
	if q.RunOnce(ctx) {
		t.Fatal("retry ran before its backoff")
	}
	clk.Add(10 * time.Second)
	if !q.RunOnce(ctx) || calls.Load() != 2 {
		t.Fatal("second attempt did not run after 10s")
	}
	clk.Add(10 * time.Second)
	if q.RunOnce(ctx) {
		t.Fatal("third attempt ran before its doubled backoff (20s)")
	}
	clk.Add(10 * time.Second)
	if !q.RunOnce(ctx) || calls.Load() != 3 {
		t.Fatal("third attempt did not run")
	}
	got, err := st.Job(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != berth.JobFailed || got.LastError == "" {
		t.Errorf("after 3 attempts: %s %q, want failed with the error", got.Status, got.LastError)
	}
	clk.Add(time.Hour)
	if q.RunOnce(ctx) {
		t.Error("a failed job ran again")
	}
}

func TestPermanentErrorFailsAtOnce(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	q := queue.New(st, queue.Config{})
	q.Handle("bad", func(ctx context.Context, j *berth.Job) error { return berth.E("x", berth.Invalid, "nope") })
	j := &berth.Job{Kind: "bad", Key: "k"}
	q.Enqueue(ctx, j)
	q.RunOnce(ctx)
	got, _ := st.Job(ctx, j.ID)
	if got.Status != berth.JobFailed || got.Attempts != 1 {
		t.Errorf("%s after %d attempts, want failed after 1", got.Status, got.Attempts)
	}
}

// A job whose worker vanished is leased again once its lease expires.
func TestExpiredLeaseIsTakenOver(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	clk := &clock{now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
	j := &berth.Job{ID: berth.NewID("job"), Kind: "work", Key: "k", Status: berth.JobQueued, MaxAttempts: 3,
		RunAt: clk.Now(), Deadline: clk.Now().Add(time.Hour), CreatedAt: clk.Now()}
	if err := st.EnqueueJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	if _, err := st.LeaseJob(ctx, "dead-worker", clk.Now(), clk.Now().Add(15*time.Second)); err != nil {
		t.Fatal(err)
	}
	q := queue.New(st, queue.Config{Now: clk.Now, Owner: "new-worker"})
	var ran atomic.Int32
	q.Handle("work", func(ctx context.Context, j *berth.Job) error { ran.Add(1); return nil })
	if q.RunOnce(ctx) {
		t.Fatal("took a job whose lease is still held")
	}
	clk.Add(16 * time.Second)
	if !q.RunOnce(ctx) || ran.Load() != 1 {
		t.Fatal("did not take over the expired lease")
	}
	if got, _ := st.Job(ctx, j.ID); got.Status != berth.JobDone || got.Attempts != 2 {
		t.Errorf("%s after %d attempts, want done after 2", got.Status, got.Attempts)
	}
}

// Jobs with the same key never run at the same time; others do.
func TestKeySerializes(t *testing.T) {
	st := openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	q := queue.New(st, queue.Config{Workers: 4, Poll: 5 * time.Millisecond})
	var mu sync.Mutex
	running := map[string]int{}
	maxSame, done := 0, make(chan struct{}, 16)
	q.Handle("work", func(ctx context.Context, j *berth.Job) error {
		mu.Lock()
		running[j.Key]++
		maxSame = max(maxSame, running[j.Key])
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		running[j.Key]--
		mu.Unlock()
		done <- struct{}{}
		return nil
	})
	for i := range 8 {
		q.Enqueue(ctx, &berth.Job{Kind: "work", Key: []string{"a", "b"}[i%2]})
	}
	stopped := make(chan struct{})
	go func() { q.Run(ctx); close(stopped) }()
	for range 8 {
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("jobs did not finish")
		}
	}
	cancel()
	<-stopped
	if maxSame != 1 {
		t.Errorf("%d jobs of one key ran at once", maxSame)
	}
}

func TestPruneKeepsRecentAndUnfinished(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	clk := &clock{now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
	q := queue.New(st, queue.Config{Now: clk.Now, KeepFinished: 24 * time.Hour})
	q.Handle("ok", func(context.Context, *berth.Job) error { return nil })
	done := &berth.Job{Kind: "ok", Payload: "p", MaxAttempts: 1}
	if err := q.Enqueue(ctx, done); err != nil {
		t.Fatal(err)
	}
	if !q.RunOnce(ctx) {
		t.Fatal("the job did not run")
	}
	waiting := &berth.Job{Kind: "ok", Payload: "p", MaxAttempts: 1, RunAt: clk.Now().Add(72 * time.Hour)}
	if err := q.Enqueue(ctx, waiting); err != nil {
		t.Fatal(err)
	}
	clk.Add(23 * time.Hour)
	if err := q.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Job(ctx, done.ID); err != nil {
		t.Errorf("a job finished 23h ago was pruned: %v", err)
	}
	clk.Add(2 * time.Hour)
	if err := q.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Job(ctx, done.ID); !berth.IsKind(err, berth.NotFound) {
		t.Errorf("a job finished 25h ago is still there: %v", err)
	}
	if _, err := st.Job(ctx, waiting.ID); err != nil {
		t.Errorf("a queued job was pruned: %v", err)
	}
}
