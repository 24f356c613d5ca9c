package engine_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/engine"
)

func TestPlan(t *testing.T) {
	app := &berth.App{ID: "app_a", Name: "a"}
	rel := &berth.Release{ID: "rel_2", Config: berth.ReleaseConfig{Replicas: 2, Port: 8080}}
	live := berth.Deployment{ID: "dep_2", Number: 2, Status: berth.StatusLive, ReleaseID: "rel_2"}
	older := berth.Deployment{ID: "dep_1", Number: 1, Status: berth.StatusLive, ReleaseID: "rel_1"}
	c := func(name, dep, state string) berth.Container {
		return berth.Container{ID: name, Name: name, State: state, Labels: map[string]string{berth.LabelDeployment: dep, berth.LabelApp: app.ID}}
	}
	cases := []struct {
		name   string
		st     engine.AppState
		strays []berth.Container
		resync bool
		want   []string
	}{
		{"in order", engine.AppState{App: app, Live: []berth.Deployment{live}, Release: rel,
			Containers: []berth.Container{c("r1", "dep_2", "running"), c("r2", "dep_2", "running")}}, nil, false, nil},
		{"in order, resync", engine.AppState{App: app, Live: []berth.Deployment{live}, Release: rel,
			Containers: []berth.Container{c("r1", "dep_2", "running"), c("r2", "dep_2", "restarting")}}, nil, true, []string{"route a"}},
		{"removed by hand", engine.AppState{App: app, Live: []berth.Deployment{live}, Release: rel,
			Containers: []berth.Container{c("r1", "dep_2", "running")}}, nil, false, []string{"start a", "route a"}},
		{"stopped by hand", engine.AppState{App: app, Live: []berth.Deployment{live}, Release: rel,
			Containers: []berth.Container{c("r1", "dep_2", "running"), c("r2", "dep_2", "exited")}}, nil, false,
			[]string{"start a", "route a", "remove r2"}},
		{"left over from an old release", engine.AppState{App: app, Live: []berth.Deployment{live}, Release: rel,
			Containers: []berth.Container{c("r1", "dep_2", "running"), c("r2", "dep_2", "running"), c("old", "dep_1", "running")}}, nil, false,
			[]string{"remove old"}},
		{"too many", engine.AppState{App: app, Live: []berth.Deployment{live}, Release: rel,
			Containers: []berth.Container{c("r1", "dep_2", "running"), c("r2", "dep_2", "running"), c("r3", "dep_2", "running")}}, nil, false,
			[]string{"route a", "remove r3"}},
		{"two live", engine.AppState{App: app, Live: []berth.Deployment{live, older}, Release: rel,
			Containers: []berth.Container{c("r1", "dep_2", "running"), c("r2", "dep_2", "running")}}, nil, false,
			[]string{"supersede #1"}},
		{"nothing live", engine.AppState{App: app, Containers: []berth.Container{c("half", "dep_3", "running")}}, nil, false,
			[]string{"remove half"}},
		{"busy", engine.AppState{App: app, Busy: true, Live: []berth.Deployment{live}, Release: rel,
			Containers: []berth.Container{c("new", "dep_3", "running")}}, nil, true, nil},
		{"stray", engine.AppState{App: app, Live: []berth.Deployment{live}, Release: rel,
			Containers: []berth.Container{c("r1", "dep_2", "running"), c("r2", "dep_2", "running")}},
			[]berth.Container{c("ghost", "dep_9", "running")}, false, []string{"remove ghost"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, a := range engine.Plan([]engine.AppState{tc.st}, tc.strays, tc.resync) {
				switch a.Kind {
				case engine.ActRemove:
					got = append(got, "remove "+a.Container.Name)
				case engine.ActSupersede:
					got = append(got, fmt.Sprintf("supersede #%d", a.Deployment.Number))
				default:
					got = append(got, string(a.Kind)+" "+a.App.Name)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Plan = %q, want %q", got, tc.want)
			}
		})
	}
}

// The reconciler on a real store with the fake runtime: a container
// removed by hand comes back and is routed, an orphan goes away.
func TestReconcileRepairs(t *testing.T) {
	x := newFixture(t, nil)
	ctx := context.Background()
	d := x.deploy(engine.DeployRequest{})
	x.waitIdle()
	running := x.f.Runtime.Running()
	if len(running) != 2 {
		t.Fatalf("%d running", len(running))
	}
	// Someone removes a replica by hand, and leaves a container of a
	// deleted app behind.
	if err := x.f.Runtime.Remove(ctx, running[0].ID, 0); err != nil {
		t.Fatal(err)
	}
	ghost, _ := x.f.Runtime.Run(ctx, berth.ContainerSpec{Name: "berth-ghost-d1-r1-x", Labels: map[string]string{
		berth.LabelManaged: "true", berth.LabelInstance: "test", berth.LabelRole: "app", berth.LabelApp: "app_deletedaaaaaaaaaa"}})
	if err := x.e.Reconcile(ctx, false); err != nil {
		t.Fatal(err)
	}
	now := x.f.Runtime.Running()
	if len(now) != 2 {
		t.Fatalf("%d running after repair, want 2", len(now))
	}
	for _, c := range now {
		if c.ID == ghost.ID {
			t.Error("the orphan container was kept")
		}
		if c.Labels[berth.LabelDeployment] != d.ID {
			t.Errorf("replacement %s is not labelled with the live deployment", c.Name)
		}
	}
	x.wantRoute(d.ReleaseID)
	r, _ := x.f.Router.Route(x.app.ID)
	if !slices.ContainsFunc(r.Targets, func(t string) bool { return strings.HasPrefix(t, now[1].Name) || strings.HasPrefix(t, now[0].Name) }) {
		t.Errorf("route %v does not reach the replacement", r.Targets)
	}
	// A second pass finds nothing to do.
	before := x.f.Runtime.Running()
	if err := x.e.Reconcile(ctx, false); err != nil {
		t.Fatal(err)
	}
	if after := x.f.Runtime.Running(); !slices.EqualFunc(before, after, func(a, b berth.Container) bool { return a.ID == b.ID }) {
		t.Error("a second pass changed containers")
	}
}

// waitIdle waits until no job is queued or leased: the last deployment has
// retired its old replicas.
func (x *fixture) waitIdle() {
	x.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		busy, err := x.st.BusyKeys(context.Background())
		if err != nil {
			x.t.Fatal(err)
		}
		if len(busy) == 0 {
			return
		}
	}
	x.t.Fatal("jobs still busy after 10s")
}
