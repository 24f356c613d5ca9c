package store

import (
	"testing"
	"time"

	"github.com/berthhq/berth"
)

// The reconciler's cross-team listings see every team, and only live
// deployments.
func TestSystemListings(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		a := newFixture(t, s, "acme")
		b := newFixture(t, s, "other")
		apps, err := s.AllApps(ctx)
		must(t, err)
		if len(apps) != 2 || apps[0].TeamID == apps[1].TeamID {
			t.Fatalf("AllApps = %+v, want one app of each team", apps)
		}
		for i, f := range []fixture{a, b, a} {
			d := &berth.Deployment{TeamID: f.team.ID, AppID: f.app.ID, CreatedAt: t0.Add(time.Duration(i) * time.Minute)}
			must(t, s.CreateDeployment(ctx, d))
			for _, to := range []berth.Status{berth.StatusStarting, berth.StatusVerifying, berth.StatusSwitching, berth.StatusLive} {
				must(t, s.MoveDeployment(ctx, f.team.ID, d.ID, d.Status, to, t0, ""))
				d.Status = to
			}
		}
		pending := &berth.Deployment{TeamID: b.team.ID, AppID: b.app.ID, CreatedAt: t0}
		must(t, s.CreateDeployment(ctx, pending))
		live, err := s.LiveDeployments(ctx)
		must(t, err)
		if len(live) != 3 {
			t.Fatalf("LiveDeployments = %d, want 3 (two of acme's app, one of other's)", len(live))
		}
		for _, d := range live {
			if d.Status != berth.StatusLive {
				t.Errorf("listed a %s deployment", d.Status)
			}
		}
	})
}

func TestBusyKeys(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		for _, k := range []string{"a", "b", "c"} {
			must(t, s.EnqueueJob(ctx, &berth.Job{ID: berth.NewID("job"), Kind: "deploy", Key: k, Status: berth.JobQueued,
				MaxAttempts: 1, RunAt: t0, Deadline: t0.Add(time.Hour), CreatedAt: t0}))
		}
		j, err := s.LeaseJob(ctx, "w", t0, t0.Add(time.Minute))
		must(t, err)
		must(t, s.FinishJob(ctx, j.ID, "w", berth.JobDone, ""))
		j, err = s.LeaseJob(ctx, "w", t0, t0.Add(time.Minute))
		must(t, err)
		busy, err := s.BusyKeys(ctx)
		must(t, err)
		if len(busy) != 2 || !busy[j.Key] {
			t.Fatalf("BusyKeys = %v, want the leased and the queued key", busy)
		}
	})
}

func TestExpireLeases(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		for _, k := range []string{"a", "b", "c"} {
			must(t, s.EnqueueJob(ctx, &berth.Job{ID: berth.NewID("job"), Kind: "deploy", Key: k, Status: berth.JobQueued,
				MaxAttempts: 3, RunAt: t0, Deadline: t0.Add(time.Hour), CreatedAt: t0}))
		}
		for _, owner := range []string{"inst_a/old", "inst_a/new", "inst_b/other"} {
			_, err := s.LeaseJob(ctx, owner, t0, t0.Add(time.Minute))
			must(t, err)
		}
		n, err := s.ExpireLeases(ctx, "inst_a/", "inst_a/new", t0)
		must(t, err)
		if n != 1 {
			t.Fatalf("expired %d leases, want 1 (the old process's)", n)
		}
		j, err := s.LeaseJob(ctx, "inst_a/new", t0, t0.Add(time.Minute))
		must(t, err)
		if j.Attempts != 2 {
			t.Errorf("re-leased job has %d attempts, want 2", j.Attempts)
		}
		if _, err := s.LeaseJob(ctx, "inst_a/new", t0, t0.Add(time.Minute)); !berth.IsKind(err, berth.NotFound) {
			t.Errorf("other leases were expired too: %v", err)
		}
	})
}
