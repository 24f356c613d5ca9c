package store

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthhq/berth"
)

func TestDeployments(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme")
		other := newFixture(t, s, "other")

		_, err := s.Deployments(ctx, f.team.ID, f.app.ID, 10)
		must(t, err) // an app without deployments lists none
		_, err = s.LiveDeployment(ctx, f.team.ID, f.app.ID)
		wantKind(t, err, berth.NotFound)

		var deps []*berth.Deployment
		for i := range 3 {
			d := &berth.Deployment{TeamID: f.team.ID, AppID: f.app.ID, Ref: "main", CreatedBy: f.user.ID,
				CreatedAt: t0.Add(time.Duration(i) * time.Minute)}
			must(t, s.CreateDeployment(ctx, d))
			if d.Number != i+1 || d.Status != berth.StatusQueued || d.Kind != berth.KindDeploy {
				t.Fatalf("deployment %d: %+v", i, d)
			}
			deps = append(deps, d)
		}
		// Numbers are per app.
		od := &berth.Deployment{TeamID: other.team.ID, AppID: other.app.ID, Kind: berth.KindRollback,
			Status: berth.StatusQueued, TargetReleaseID: "rel_x", Image: "img:1", CreatedAt: t0}
		must(t, s.CreateDeployment(ctx, od))
		if od.Number != 1 {
			t.Fatalf("the other app's first deployment is number %d", od.Number)
		}
		wantKind(t, s.CreateDeployment(ctx, &berth.Deployment{TeamID: f.team.ID, AppID: "app_nope"}), berth.NotFound)
		wantKind(t, s.CreateDeployment(ctx, &berth.Deployment{TeamID: f.team.ID, AppID: f.app.ID, Status: "weird"}), berth.Invalid)
		wantKind(t, s.CreateDeployment(ctx, &berth.Deployment{ID: deps[0].ID, TeamID: f.team.ID, AppID: f.app.ID}), berth.Conflict)

		got, err := s.Deployment(ctx, f.team.ID, deps[1].ID)
		must(t, err)
		want := *deps[1]
		want.CreatedAt = want.CreatedAt.UTC()
		want.UpdatedAt = want.UpdatedAt.UTC()
		want.Stages = []berth.StageTiming{{Stage: berth.StatusQueued, StartedAt: want.CreatedAt}}
		if !reflect.DeepEqual(*got, want) {
			t.Fatalf("Deployment =\n%+v\nwant\n%+v", *got, want)
		}
		if got, err := s.Deployment(ctx, other.team.ID, od.ID); err != nil || got.Kind != berth.KindRollback ||
			got.TargetReleaseID != "rel_x" || got.Image != "img:1" {
			t.Fatalf("rollback deployment = %+v, %v", got, err)
		}
		_, err = s.Deployment(ctx, f.team.ID, "dep_nope")
		wantKind(t, err, berth.NotFound)

		list, err := s.Deployments(ctx, f.team.ID, f.app.ID, 2)
		must(t, err)
		if len(list) != 2 || list[0].Number != 3 || list[1].Number != 2 {
			t.Fatalf("Deployments(limit 2) = %v", numbers(list))
		}
		if list, _ := s.Deployments(ctx, f.team.ID, f.app.ID, 0); len(list) != 3 {
			t.Fatalf("Deployments(no limit) = %v", numbers(list))
		}

		active, err := s.ActiveDeployments(ctx)
		must(t, err)
		if len(active) != 4 {
			t.Fatalf("ActiveDeployments = %d, want 4 across both teams", len(active))
		}

		must(t, s.SetDeploymentCommit(ctx, f.team.ID, deps[0].ID, "abc123"))
		must(t, s.SetDeploymentRelease(ctx, f.team.ID, deps[0].ID, "rel_1"))
		must(t, s.RequestCancel(ctx, f.team.ID, deps[0].ID))
		wantKind(t, s.SetDeploymentCommit(ctx, f.team.ID, "dep_nope", "x"), berth.NotFound)
		wantKind(t, s.SetDeploymentRelease(ctx, f.team.ID, "dep_nope", "x"), berth.NotFound)
		wantKind(t, s.RequestCancel(ctx, f.team.ID, "dep_nope"), berth.NotFound)
		got, err = s.Deployment(ctx, f.team.ID, deps[0].ID)
		must(t, err)
		if got.Commit != "abc123" || got.ReleaseID != "rel_1" || !got.CancelRequested {
			t.Fatalf("after Set*: %+v", got)
		}

		// Walk deps[2] to live; it becomes the live one and leaves the
		// active list.
		walk(t, s, f.team.ID, deps[2].ID, t0, berth.StatusFetching, berth.StatusBuilding, berth.StatusStarting,
			berth.StatusVerifying, berth.StatusSwitching, berth.StatusLive)
		live, err := s.LiveDeployment(ctx, f.team.ID, f.app.ID)
		must(t, err)
		if live.ID != deps[2].ID {
			t.Fatalf("LiveDeployment = %s, want %s", live.ID, deps[2].ID)
		}
		active, _ = s.ActiveDeployments(ctx)
		if len(active) != 3 || slices.ContainsFunc(active, func(d berth.Deployment) bool { return d.ID == deps[2].ID }) {
			t.Fatalf("ActiveDeployments after live: %v", numbers(active))
		}
		wantKind(t, s.RequestCancel(ctx, f.team.ID, deps[2].ID), berth.Conflict)
	})
}

func numbers(ds []berth.Deployment) []int {
	var n []int
	for _, d := range ds {
		n = append(n, d.Number)
	}
	return n
}

// walk moves a deployment through statuses, a second apart from start.
func walk(t *testing.T, s *Store, teamID, id string, start time.Time, to ...berth.Status) {
	t.Helper()
	d, err := s.Deployment(ctxT(t), teamID, id)
	must(t, err)
	from := d.Status
	for i, st := range to {
		must(t, s.MoveDeployment(ctxT(t), teamID, id, from, st, start.Add(time.Duration(i+1)*time.Second), ""))
		from = st
	}
}

func TestMoveDeployment(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme")
		newDep := func() *berth.Deployment {
			d := &berth.Deployment{TeamID: f.team.ID, AppID: f.app.ID, CreatedAt: t0}
			must(t, s.CreateDeployment(ctx, d))
			return d
		}
		sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second).UTC().Truncate(time.Microsecond) }
		ptr := func(t time.Time) *time.Time { return &t }

		t.Run("happy path records every stage", func(t *testing.T) {
			d := newDep()
			walk(t, s, f.team.ID, d.ID, t0, berth.StatusFetching, berth.StatusBuilding, berth.StatusStarting,
				berth.StatusVerifying, berth.StatusSwitching, berth.StatusLive)
			got, err := s.Deployment(ctx, f.team.ID, d.ID)
			must(t, err)
			want := []berth.StageTiming{
				{Stage: berth.StatusQueued, StartedAt: sec(0), EndedAt: ptr(sec(1))},
				{Stage: berth.StatusFetching, StartedAt: sec(1), EndedAt: ptr(sec(2))},
				{Stage: berth.StatusBuilding, StartedAt: sec(2), EndedAt: ptr(sec(3))},
				{Stage: berth.StatusStarting, StartedAt: sec(3), EndedAt: ptr(sec(4))},
				{Stage: berth.StatusVerifying, StartedAt: sec(4), EndedAt: ptr(sec(5))},
				{Stage: berth.StatusSwitching, StartedAt: sec(5), EndedAt: ptr(sec(6))},
			}
			if !reflect.DeepEqual(got.Stages, want) {
				t.Fatalf("stages =\n%+v\nwant\n%+v", got.Stages, want)
			}
			if got.Status != berth.StatusLive || got.FinishedAt == nil || !got.FinishedAt.Equal(sec(6)) ||
				!got.UpdatedAt.Equal(sec(6)) || got.Error != "" {
				t.Fatalf("live deployment = %+v", got)
			}
			// Superseding keeps when the work finished.
			must(t, s.MoveDeployment(ctx, f.team.ID, d.ID, berth.StatusLive, berth.StatusSuperseded, sec(60), ""))
			got, _ = s.Deployment(ctx, f.team.ID, d.ID)
			if got.Status != berth.StatusSuperseded || !got.FinishedAt.Equal(sec(6)) || !got.UpdatedAt.Equal(sec(60)) ||
				len(got.Stages) != 6 {
				t.Fatalf("superseded deployment = %+v", got)
			}
		})

		t.Run("failure records the error", func(t *testing.T) {
			d := newDep()
			walk(t, s, f.team.ID, d.ID, t0, berth.StatusFetching)
			must(t, s.MoveDeployment(ctx, f.team.ID, d.ID, berth.StatusFetching, berth.StatusFailed, sec(5), "clone: repository not found"))
			got, _ := s.Deployment(ctx, f.team.ID, d.ID)
			if got.Status != berth.StatusFailed || got.Error != "clone: repository not found" ||
				got.FinishedAt == nil || !got.FinishedAt.Equal(sec(5)) || len(got.Stages) != 2 ||
				got.Stages[1].EndedAt == nil || !got.Stages[1].EndedAt.Equal(sec(5)) {
				t.Fatalf("failed deployment = %+v", got)
			}
		})

		t.Run("skipping stages", func(t *testing.T) {
			d := newDep()
			walk(t, s, f.team.ID, d.ID, t0, berth.StatusStarting, berth.StatusVerifying)
			got, _ := s.Deployment(ctx, f.team.ID, d.ID)
			if len(got.Stages) != 3 || got.Stages[1].Stage != berth.StatusStarting || got.Stages[2].EndedAt != nil {
				t.Fatalf("stages %+v", got.Stages)
			}
		})

		for _, tc := range []struct {
			name     string
			walk     []berth.Status
			from, to berth.Status
		}{
			{"skip to live", nil, berth.StatusQueued, berth.StatusLive},
			{"backwards", []berth.Status{berth.StatusFetching, berth.StatusBuilding}, berth.StatusBuilding, berth.StatusFetching},
			{"out of a terminal status", []berth.Status{berth.StatusFailed}, berth.StatusFailed, berth.StatusQueued},
			{"to itself", nil, berth.StatusQueued, berth.StatusQueued},
			{"wrong from", []berth.Status{berth.StatusFetching}, berth.StatusQueued, berth.StatusFetching},
			{"cancel a live one", []berth.Status{berth.StatusStarting, berth.StatusVerifying, berth.StatusSwitching, berth.StatusLive},
				berth.StatusLive, berth.StatusCancelled},
		} {
			t.Run("refused: "+tc.name, func(t *testing.T) {
				d := newDep()
				walk(t, s, f.team.ID, d.ID, t0, tc.walk...)
				before, _ := s.Deployment(ctx, f.team.ID, d.ID)
				wantKind(t, s.MoveDeployment(ctx, f.team.ID, d.ID, tc.from, tc.to, sec(99), "x"), berth.Conflict)
				after, _ := s.Deployment(ctx, f.team.ID, d.ID)
				if !reflect.DeepEqual(before, after) {
					t.Fatalf("a refused move changed the deployment:\n%+v\n%+v", before, after)
				}
			})
		}
		wantKind(t, s.MoveDeployment(ctx, f.team.ID, "dep_nope", berth.StatusQueued, berth.StatusFetching, t0, ""), berth.NotFound)

		t.Run("lost race", func(t *testing.T) {
			// Workers race for the same move; exactly one wins each round.
			for round := range 5 {
				d := newDep()
				const workers = 8
				errs := make([]error, workers)
				var wg sync.WaitGroup
				start := make(chan struct{})
				for w := range workers {
					wg.Go(func() {
						<-start
						to := []berth.Status{berth.StatusFetching, berth.StatusCancelled, berth.StatusFailed}[w%3]
						errs[w] = s.MoveDeployment(ctx, f.team.ID, d.ID, berth.StatusQueued, to, sec(w+1), fmt.Sprint("worker ", w))
					})
				}
				close(start)
				wg.Wait()
				won := -1
				for w, err := range errs {
					switch {
					case err == nil && won >= 0:
						t.Fatalf("round %d: workers %d and %d both moved the deployment", round, won, w)
					case err == nil:
						won = w
					default:
						wantKind(t, err, berth.Conflict)
					}
				}
				if won < 0 {
					t.Fatalf("round %d: no worker won: %v", round, errs)
				}
				got, _ := s.Deployment(ctx, f.team.ID, d.ID)
				wantTo := []berth.Status{berth.StatusFetching, berth.StatusCancelled, berth.StatusFailed}[won%3]
				wantStages := 1
				if wantTo.Active() {
					wantStages = 2
				}
				if got.Status != wantTo || got.Error != fmt.Sprint("worker ", won) || len(got.Stages) != wantStages ||
					!got.Stages[0].EndedAt.Equal(sec(won+1)) {
					t.Fatalf("round %d: winner %d left %+v", round, won, got)
				}
			}
		})
	})
}

func TestLogs(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme")
		d := &berth.Deployment{TeamID: f.team.ID, AppID: f.app.ID}
		must(t, s.CreateDeployment(ctx, d))

		if logs, err := s.Logs(ctx, f.team.ID, d.ID, 0, 10); err != nil || len(logs) != 0 {
			t.Fatalf("Logs of a new deployment = %v, %v", logs, err)
		}
		must(t, s.AppendLog(ctx, f.team.ID, d.ID, t0))
		var want []string
		for i := range 250 {
			want = append(want, fmt.Sprintf("line %03d", i+1))
		}
		must(t, s.AppendLog(ctx, f.team.ID, d.ID, t0, want[:1]...))
		must(t, s.AppendLog(ctx, f.team.ID, d.ID, t0.Add(time.Second), want[1:230]...)) // more than one batch
		must(t, s.AppendLog(ctx, f.team.ID, d.ID, t0.Add(2*time.Second), want[230:]...))

		// Page through with afterSeq, as a follower does.
		var got []string
		var after int64
		for {
			page, err := s.Logs(ctx, f.team.ID, d.ID, after, 64)
			must(t, err)
			if len(page) == 0 {
				break
			}
			if len(page) > 64 {
				t.Fatalf("page of %d lines, limit 64", len(page))
			}
			for _, l := range page {
				if l.Seq != after+1 {
					t.Fatalf("seq %d after %d", l.Seq, after)
				}
				after = l.Seq
				got = append(got, l.Text)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("paged %d lines, want %d", len(got), len(want))
		}
		page, err := s.Logs(ctx, f.team.ID, d.ID, 229, 2)
		must(t, err)
		if len(page) != 2 || page[0].Seq != 230 || !page[0].Time.Equal(us(t0.Add(time.Second))) || !page[1].Time.Equal(us(t0.Add(2*time.Second))) {
			t.Fatalf("page at 229 = %+v", page)
		}

		// Lines are stored as valid UTF-8 without NUL.
		must(t, s.AppendLog(ctx, f.team.ID, d.ID, t0, "bad\x00byte \xff end"))
		page, err = s.Logs(ctx, f.team.ID, d.ID, 250, 0)
		must(t, err)
		if len(page) != 1 || page[0].Text != "badbyte \uFFFD end" {
			t.Fatalf("cleaned line = %+v", page)
		}

		// Concurrent writers get distinct, gapless numbers.
		d2 := &berth.Deployment{TeamID: f.team.ID, AppID: f.app.ID}
		must(t, s.CreateDeployment(ctx, d2))
		var wg sync.WaitGroup
		for w := range 6 {
			wg.Go(func() {
				for i := range 10 {
					if err := s.AppendLog(ctx, f.team.ID, d2.ID, t0, fmt.Sprintf("w%d-%d-a", w, i), fmt.Sprintf("w%d-%d-b", w, i)); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		all, err := s.Logs(ctx, f.team.ID, d2.ID, 0, 0)
		must(t, err)
		if len(all) != 120 {
			t.Fatalf("%d lines, want 120", len(all))
		}
		for i, l := range all {
			if l.Seq != int64(i+1) {
				t.Fatalf("line %d has seq %d", i, l.Seq)
			}
			// The lines of one call stay together.
			if strings.HasSuffix(l.Text, "-a") && all[i+1].Text != strings.TrimSuffix(l.Text, "-a")+"-b" {
				t.Fatalf("line %q followed by %q", l.Text, all[i+1].Text)
			}
		}

		wantKind(t, s.AppendLog(ctx, f.team.ID, "dep_nope", t0, "x"), berth.NotFound)
		_, err = s.Logs(ctx, f.team.ID, "dep_nope", 0, 0)
		wantKind(t, err, berth.NotFound)
	})
}

func TestReleases(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme")
		if rs, err := s.Releases(ctx, f.team.ID, f.app.ID, 0); err != nil || len(rs) != 0 {
			t.Fatalf("Releases of a new app = %v, %v", rs, err)
		}
		r := &berth.Release{TeamID: f.team.ID, AppID: f.app.ID, Image: "sha256:abc", Commit: "c0ffee", DeploymentID: "dep_x",
			CreatedAt: t0, Config: berth.ReleaseConfig{
				Port: 8080, Replicas: 2, Resources: berth.Resources{MemoryMB: 128},
				Health:  berth.DefaultHealthCheck,
				Volumes: []berth.Volume{{Name: "data", Path: "/data"}}, Domains: []string{"a.example.com"},
				Env: map[string]string{"A": "1", "SECRET": "s"},
			}}
		must(t, s.CreateRelease(ctx, r))
		if r.Number != 1 || r.ID == "" {
			t.Fatalf("CreateRelease left %+v", r)
		}
		got, err := s.Release(ctx, f.team.ID, r.ID)
		must(t, err)
		want := *r
		want.CreatedAt = t0.UTC().Truncate(time.Microsecond)
		if !reflect.DeepEqual(*got, want) {
			t.Fatalf("Release =\n%+v\nwant\n%+v", *got, want)
		}
		noEnv := &berth.Release{TeamID: f.team.ID, AppID: f.app.ID, Image: "img2"}
		must(t, s.CreateRelease(ctx, noEnv))
		if got, err := s.Release(ctx, f.team.ID, noEnv.ID); err != nil || got.Config.Env != nil || got.Number != 2 {
			t.Fatalf("release without env = %+v, %v", got, err)
		}
		_, err = s.Release(ctx, f.team.ID, "rel_nope")
		wantKind(t, err, berth.NotFound)
		wantKind(t, s.CreateRelease(ctx, &berth.Release{TeamID: f.team.ID, AppID: "app_nope", Image: "x"}), berth.NotFound)
		wantKind(t, s.CreateRelease(ctx, &berth.Release{ID: r.ID, TeamID: f.team.ID, AppID: f.app.ID, Image: "x"}), berth.Conflict)

		// Numbers stay unique and gapless when releases are created at once.
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				if err := s.CreateRelease(ctx, &berth.Release{TeamID: f.team.ID, AppID: f.app.ID, Image: "img"}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		rs, err := s.Releases(ctx, f.team.ID, f.app.ID, 0)
		must(t, err)
		if len(rs) != 12 {
			t.Fatalf("%d releases, want 12", len(rs))
		}
		for i, r := range rs {
			if r.Number != 12-i {
				t.Fatalf("release %d has number %d (newest first)", i, r.Number)
			}
		}
		if rs, _ := s.Releases(ctx, f.team.ID, f.app.ID, 3); len(rs) != 3 || rs[0].Number != 12 {
			t.Fatalf("Releases(limit 3) = %d", len(rs))
		}
		_, err = s.Releases(ctx, f.team.ID, "app_nope", 0)
		wantKind(t, err, berth.NotFound)
	})
}

func TestDeploymentNumbersConcurrent(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme")
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				if err := s.CreateDeployment(ctx, &berth.Deployment{TeamID: f.team.ID, AppID: f.app.ID}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		ds, err := s.Deployments(ctx, f.team.ID, f.app.ID, 0)
		must(t, err)
		if got := numbers(ds); !slices.Equal(got, []int{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}) {
			t.Fatalf("numbers %v", got)
		}
	})
}

func TestLatestDeployments(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme")
		other := newFixture(t, s, "other")
		never := newApp(f.team.ID, "never")
		must(t, s.CreateApp(ctx, never))
		for _, a := range []struct {
			team, app string
			n         int
		}{{f.team.ID, f.app.ID, 3}, {other.team.ID, other.app.ID, 1}} {
			for i := range a.n {
				must(t, s.CreateDeployment(ctx, &berth.Deployment{TeamID: a.team, AppID: a.app, Ref: "main", CreatedAt: t0.Add(time.Duration(i) * time.Minute)}))
			}
		}
		got, err := s.LatestDeployments(ctx, f.team.ID, berth.AppFilter{})
		must(t, err)
		if len(got) != 1 || got[0].AppID != f.app.ID || got[0].Number != 3 {
			t.Errorf("latest deployments of acme: %+v, want web's #3 only (never-deployed apps have none, other teams' are not listed)", got)
		}
		// Of some apps only, by name; the other team's "web" is not listed.
		api := newApp(f.team.ID, "api")
		must(t, s.CreateApp(ctx, api))
		must(t, s.CreateDeployment(ctx, &berth.Deployment{TeamID: f.team.ID, AppID: api.ID, Ref: "main", CreatedAt: t0}))
		got, err = s.LatestDeployments(ctx, f.team.ID, berth.AppFilter{Names: []string{"api", "never", "ghost"}})
		must(t, err)
		if len(got) != 1 || got[0].AppID != api.ID || got[0].Number != 1 {
			t.Errorf("latest deployments of api, never and ghost: %+v, want api's #1 only", got)
		}
		got, err = s.LatestDeployments(ctx, other.team.ID, berth.AppFilter{Names: []string{"web", "api"}})
		must(t, err)
		if len(got) != 1 || got[0].AppID != other.app.ID {
			t.Errorf("latest deployments of the other team's web and api: %+v, want its web's only", got)
		}
		got, err = s.LatestDeployments(ctx, f.team.ID, berth.AppFilter{})
		must(t, err)
		if len(got) != 2 {
			t.Errorf("latest deployments of acme: %d, want web's and api's", len(got))
		}
		// Narrowed to a project: the apps of others are left out.
		shop := &berth.Project{TeamID: f.team.ID, Name: "shop", CreatedAt: t0}
		must(t, s.CreateProject(ctx, shop))
		for _, vis := range [][]string{{shop.ID}, {}} {
			got, err = s.LatestDeployments(ctx, f.team.ID, berth.AppFilter{Visible: vis})
			must(t, err)
			if len(got) != 0 {
				t.Errorf("latest deployments visible in %v: %+v, want none", vis, got)
			}
		}
	})
}

func TestPruneLogs(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme")
		other := newFixture(t, s, "other")
		var deps []*berth.Deployment
		for i := range 5 {
			d := &berth.Deployment{TeamID: f.team.ID, AppID: f.app.ID, CreatedAt: t0.Add(time.Duration(i) * time.Minute)}
			must(t, s.CreateDeployment(ctx, d))
			must(t, s.AppendLog(ctx, f.team.ID, d.ID, t0, "one", "two"))
			if i != 1 { // #2 stays queued: in progress
				must(t, s.MoveDeployment(ctx, f.team.ID, d.ID, berth.StatusQueued, berth.StatusCancelled, t0, ""))
			}
			deps = append(deps, d)
		}
		od := &berth.Deployment{TeamID: other.team.ID, AppID: other.app.ID}
		must(t, s.CreateDeployment(ctx, od))
		must(t, s.AppendLog(ctx, other.team.ID, od.ID, t0, "theirs"))

		wantKind(t, func() error { _, err := s.PruneLogs(ctx, f.team.ID, f.app.ID, 0); return err }(), berth.Invalid)
		// Another team's ID prunes nothing of this app.
		if n, err := s.PruneLogs(ctx, other.team.ID, f.app.ID, 1); err != nil || n != 0 {
			t.Fatalf("PruneLogs with another team = %d, %v", n, err)
		}
		n, err := s.PruneLogs(ctx, f.team.ID, f.app.ID, 2)
		must(t, err)
		if n != 4 {
			t.Errorf("pruned %d lines, want 4 (#1 and #3)", n)
		}
		for i, d := range deps {
			logs, err := s.Logs(ctx, f.team.ID, d.ID, 0, 0)
			must(t, err)
			kept := i == 1 || i >= 3
			if kept != (len(logs) == 2) {
				t.Errorf("deployment #%d has %d lines, kept %v", d.Number, len(logs), kept)
			}
		}
		if logs, err := s.Logs(ctx, other.team.ID, od.ID, 0, 0); err != nil || len(logs) != 1 {
			t.Errorf("the other app's log: %v, %v", logs, err)
		}
		if n, err := s.PruneLogs(ctx, f.team.ID, f.app.ID, 2); err != nil || n != 0 {
			t.Errorf("second prune = %d, %v", n, err)
		}
	})
}
