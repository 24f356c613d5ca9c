package store

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/berthhq/berth"
)

func TestJobs(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		at := func(sec int) time.Time { return us(t0.Add(time.Duration(sec) * time.Second)) }
		enqueue := func(key string, created, runAt time.Time) *berth.Job {
			j := &berth.Job{Kind: "deploy", Key: key, Payload: "dep_" + key, TeamID: "team_x", MaxAttempts: 3,
				CreatedAt: created, RunAt: runAt, Deadline: created.Add(time.Hour)}
			must(t, s.EnqueueJob(ctx, j))
			return j
		}
		lease := func(owner string, now time.Time) *berth.Job {
			t.Helper()
			j, err := s.LeaseJob(ctx, owner, now, now.Add(time.Hour))
			must(t, err)
			return j
		}
		none := func(owner string, now time.Time) {
			t.Helper()
			j, err := s.LeaseJob(ctx, owner, now, now.Add(time.Minute))
			if err == nil {
				t.Fatalf("leased %s (key %q), want none", j.ID, j.Key)
			}
			wantKind(t, err, berth.NotFound)
		}

		none("w1", at(0))
		wantKind(t, s.EnqueueJob(ctx, &berth.Job{}), berth.Invalid)
		_, err := s.LeaseJob(ctx, "", at(0), at(1))
		wantKind(t, err, berth.Invalid)

		a1 := enqueue("app_a", at(0), at(0))
		a2 := enqueue("app_a", at(1), at(1))
		b1 := enqueue("app_b", at(2), at(10)) // not before 10s
		free1 := enqueue("", at(3), at(3))
		free2 := enqueue("", at(4), at(4))
		wantKind(t, s.EnqueueJob(ctx, &berth.Job{ID: a1.ID, Kind: "x"}), berth.Conflict)

		got, err := s.Job(ctx, a1.ID)
		must(t, err)
		if got.Status != berth.JobQueued || got.Kind != "deploy" || got.Payload != "dep_app_a" || got.TeamID != "team_x" ||
			got.MaxAttempts != 3 || !got.RunAt.Equal(at(0)) || !got.Deadline.Equal(at(3600)) || !got.CreatedAt.Equal(at(0)) ||
			!got.LeaseUntil.IsZero() || got.Attempts != 0 || got.Owner != "" {
			t.Fatalf("Job = %+v", got)
		}
		_, err = s.Job(ctx, "job_nope")
		wantKind(t, err, berth.NotFound)

		// Oldest first; a2 waits for a1 (same key), b1 for its RunAt;
		// keyless jobs never wait for each other.
		j := lease("w1", at(5))
		if j.ID != a1.ID || j.Status != berth.JobLeased || j.Owner != "w1" || j.Attempts != 1 || !j.LeaseUntil.Equal(at(3605)) {
			t.Fatalf("first lease = %+v", j)
		}
		if j := lease("w2", at(5)); j.ID != free1.ID {
			t.Fatalf("second lease = %s (key %q), want the first keyless job", j.ID, j.Key)
		}
		if j := lease("w3", at(5)); j.ID != free2.ID {
			t.Fatalf("third lease = %s (key %q), want the second keyless job", j.ID, j.Key)
		}
		none("w4", at(5))
		if j := lease("w4", at(10)); j.ID != b1.ID {
			t.Fatalf("lease at 10s = %s, want b1", j.ID)
		}

		// Heartbeats, finishes and retries belong to the owner.
		wantKind(t, s.HeartbeatJob(ctx, a1.ID, "w2", at(100)), berth.Conflict)
		wantKind(t, s.FinishJob(ctx, a1.ID, "w2", berth.JobDone, ""), berth.Conflict)
		wantKind(t, s.RetryJob(ctx, a1.ID, "w2", at(100), "x"), berth.Conflict)
		wantKind(t, s.HeartbeatJob(ctx, "job_nope", "w1", at(100)), berth.NotFound)
		must(t, s.HeartbeatJob(ctx, a1.ID, "w1", at(100)))
		if got, _ := s.Job(ctx, a1.ID); !got.LeaseUntil.Equal(at(100)) {
			t.Fatalf("lease until %v after heartbeat", got.LeaseUntil)
		}

		// An expired lease (a1's, after the heartbeat) is taken again by another worker, which counts
		// an attempt; the old owner has lost it. a2 still waits: a1 holds
		// the key.
		none("w5", at(99))
		j = lease("w5", at(100))
		if j.ID != a1.ID || j.Owner != "w5" || j.Attempts != 2 {
			t.Fatalf("re-lease = %+v", j)
		}
		wantKind(t, s.HeartbeatJob(ctx, a1.ID, "w1", at(200)), berth.Conflict)
		wantKind(t, s.FinishJob(ctx, a1.ID, "w1", berth.JobDone, ""), berth.Conflict)

		// Retry puts it back with its error, not before runAt, and
		// releases the key meanwhile.
		must(t, s.RetryJob(ctx, a1.ID, "w5", at(300), "build: out of memory"))
		got, _ = s.Job(ctx, a1.ID)
		if got.Status != berth.JobQueued || !got.RunAt.Equal(at(300)) || got.Owner != "" || got.LastError != "build: out of memory" {
			t.Fatalf("after retry: %+v", got)
		}
		wantKind(t, s.HeartbeatJob(ctx, a1.ID, "w5", at(400)), berth.Conflict)
		if j := lease("w6", at(101)); j.ID != a2.ID {
			t.Fatalf("lease after retry = %s, want a2 (a1 waits until 300s)", j.ID)
		}
		none("w7", at(300)) // a1 is due, but a2 holds the key
		must(t, s.FinishJob(ctx, a2.ID, "w6", berth.JobDone, ""))
		j = lease("w7", at(300))
		if j.ID != a1.ID || j.Attempts != 3 || j.LastError != "build: out of memory" {
			t.Fatalf("lease of the retried job = %+v", j)
		}

		wantKind(t, s.FinishJob(ctx, a1.ID, "w7", berth.JobQueued, ""), berth.Invalid)
		must(t, s.FinishJob(ctx, a1.ID, "w7", berth.JobFailed, "gave up"))
		got, _ = s.Job(ctx, a1.ID)
		if got.Status != berth.JobFailed || got.LastError != "gave up" {
			t.Fatalf("failed job = %+v", got)
		}
		wantKind(t, s.FinishJob(ctx, a1.ID, "w7", berth.JobDone, ""), berth.Conflict)
		must(t, s.FinishJob(ctx, b1.ID, "w4", berth.JobDone, ""))
		if got, _ := s.Job(ctx, b1.ID); got.Status != berth.JobDone || got.LastError != "" {
			t.Fatalf("done job = %+v", got)
		}

		// Finished jobs are never leased again, even long after.
		must(t, s.FinishJob(ctx, free1.ID, "w2", berth.JobAborted, ""))
		must(t, s.FinishJob(ctx, free2.ID, "w3", berth.JobDone, ""))
		none("w8", at(100000))

		// Cancel takes queued jobs only.
		c := enqueue("app_c", at(500), at(500))
		must(t, s.CancelJob(ctx, c.ID))
		if got, _ := s.Job(ctx, c.ID); got.Status != berth.JobAborted {
			t.Fatalf("cancelled job = %+v", got)
		}
		wantKind(t, s.CancelJob(ctx, c.ID), berth.Conflict)
		wantKind(t, s.CancelJob(ctx, "job_nope"), berth.NotFound)
		none("w9", at(1000))
	})
}

// TestLeaseConcurrent has many workers lease, hold and finish jobs at once:
// no job is leased twice, and no two jobs of one key are held at once.
func TestLeaseConcurrent(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		const keys, perKey, keyless, workers = 5, 8, 20, 10
		total := keys*perKey + keyless
		for i := range total {
			key := ""
			if i < keys*perKey {
				key = fmt.Sprint("app_", i%keys)
			}
			must(t, s.EnqueueJob(ctx, &berth.Job{Kind: "deploy", Key: key, CreatedAt: t0.Add(time.Duration(i) * time.Millisecond)}))
		}
		now := t0.Add(time.Hour)
		var (
			mu     sync.Mutex
			held   = map[string]string{} // key → job holding it
			leased = map[string]int{}    // job → leases
			wg     sync.WaitGroup
		)
		for w := range workers {
			owner := fmt.Sprint("worker-", w)
			wg.Go(func() {
				for {
					j, err := s.LeaseJob(ctx, owner, now, now.Add(time.Hour))
					if berth.IsKind(err, berth.NotFound) {
						mu.Lock()
						finished := len(leased) == total
						mu.Unlock()
						if finished {
							return
						}
						time.Sleep(2 * time.Millisecond)
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					leased[j.ID]++
					if other, ok := held[j.Key]; ok && j.Key != "" {
						t.Errorf("jobs %s and %s of key %s held at once", other, j.ID, j.Key)
					}
					held[j.Key] = j.ID
					mu.Unlock()
					time.Sleep(time.Millisecond) // hold it while others lease
					mu.Lock()
					delete(held, j.Key)
					mu.Unlock()
					if err := s.FinishJob(ctx, j.ID, owner, berth.JobDone, ""); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if len(leased) != total {
			t.Fatalf("%d jobs leased, want %d", len(leased), total)
		}
		for id, n := range leased {
			if n != 1 {
				t.Errorf("job %s leased %d times", id, n)
			}
		}
		if _, err := s.LeaseJob(ctx, "late", now, now); !berth.IsKind(err, berth.NotFound) {
			t.Fatalf("a job is left after all finished: %v", err)
		}
	})
}

// TestOneLeasePerKey checks the schema itself refuses a second leased job of
// a key, whatever the code does.
func TestOneLeasePerKey(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		for range 2 {
			must(t, s.EnqueueJob(ctx, &berth.Job{Kind: "deploy", Key: "app_a"}))
		}
		_, err := s.writer().exec(ctx, `UPDATE jobs SET status = 'leased'`)
		if !isUnique(err) {
			t.Fatalf("two leased jobs of one key: err %v, want a unique violation", err)
		}
	})
}

func TestPruneJobs(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		old, recent := us(t0), us(t0.Add(48*time.Hour))
		mk := func(created time.Time, status berth.JobStatus) *berth.Job {
			j := &berth.Job{Kind: "deploy", Payload: "x", TeamID: "team_x", MaxAttempts: 1, CreatedAt: created, RunAt: created}
			must(t, s.EnqueueJob(ctx, j))
			if status != berth.JobQueued {
				l, err := s.LeaseJob(ctx, "w", created, created.Add(time.Minute))
				must(t, err)
				if l.ID != j.ID {
					t.Fatalf("leased %s, want %s", l.ID, j.ID)
				}
				if status != berth.JobLeased {
					must(t, s.FinishJob(ctx, j.ID, "w", status, ""))
				}
			}
			return j
		}
		done := mk(old, berth.JobDone)
		failed := mk(old, berth.JobFailed)
		fresh := mk(recent, berth.JobDone)
		queued := mk(old, berth.JobQueued) // last: leasing takes the oldest queued job
		n, err := s.PruneJobs(ctx, t0.Add(24*time.Hour))
		must(t, err)
		if n != 2 {
			t.Errorf("pruned %d jobs, want 2 (the old done and failed ones)", n)
		}
		for _, j := range []*berth.Job{done, failed} {
			if _, err := s.Job(ctx, j.ID); !berth.IsKind(err, berth.NotFound) {
				t.Errorf("job %s still there: %v", j.ID, err)
			}
		}
		for _, j := range []*berth.Job{queued, fresh} {
			if _, err := s.Job(ctx, j.ID); err != nil {
				t.Errorf("job %s pruned: %v", j.ID, err)
			}
		}
	})
}
