package engine

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/berthhq/berth"
)

// AppState is, for one app, what the store wants and what the runtime has.
type AppState struct {
	App        *berth.App
	Live       []berth.Deployment // live deployments, newest first (normally one)
	Release    *berth.Release     // the release of Live[0]
	Busy       bool               // a deployment works on the app: its run owns the containers
	Containers []berth.Container  // every container of the app, in any state
}

// ActionKind names a repair.
type ActionKind string

// The repairs the reconciler makes.
const (
	ActSupersede ActionKind = "supersede" // a second live deployment of an app (a crash between two moves)
	ActRemove    ActionKind = "remove"    // a container that should not exist
	ActStart     ActionKind = "start"     // a missing replica of the live release
	ActRoute     ActionKind = "route"     // tell the proxy the app's route again
)

// Action is one repair.
type Action struct {
	Kind       ActionKind
	App        *berth.App
	Deployment *berth.Deployment // supersede, start
	Release    *berth.Release    // start, route: the live release
	Container  berth.Container   // remove
	Reason     string
}

func (a Action) String() string {
	name := "-"
	if a.App != nil {
		name = a.App.Name
	}
	switch a.Kind {
	case ActRemove:
		return fmt.Sprintf("remove %s of %s: %s", a.Container.Name, name, a.Reason)
	case ActSupersede:
		return fmt.Sprintf("supersede deployment #%d of %s: %s", a.Deployment.Number, name, a.Reason)
	}
	return fmt.Sprintf("%s %s: %s", a.Kind, name, a.Reason)
}

// Plan compares what the store wants with what runs and returns the
// repairs, in the order to apply them: supersede, start, route, remove (new
// replicas serve before anything is taken away). strays are berth's app
// containers whose app no longer exists. With resync, every app with a live
// release gets a route action (at start, when the proxy may have lost
// state). Plan has no side effects.
func Plan(states []AppState, strays []berth.Container, resync bool) []Action {
	var sup, start, route, remove []Action
	for _, st := range states {
		if st.Busy {
			continue
		}
		for i := 1; i < len(st.Live); i++ {
			sup = append(sup, Action{Kind: ActSupersede, App: st.App, Deployment: &st.Live[i], Reason: "a newer deployment is live"})
		}
		var live *berth.Deployment
		if len(st.Live) > 0 && st.Release != nil {
			live = &st.Live[0]
		}
		kept, changed := 0, false
		for _, c := range st.Containers {
			switch {
			case live == nil:
				remove = append(remove, Action{Kind: ActRemove, App: st.App, Container: c, Reason: "the app has no live release"})
			case c.Labels[berth.LabelDeployment] != live.ID:
				remove = append(remove, Action{Kind: ActRemove, App: st.App, Container: c, Reason: "not of the live deployment"})
			case c.State == "running" || c.State == "restarting" || c.State == "paused":
				if kept < st.Release.Config.Replicas {
					kept++
					continue
				}
				remove = append(remove, Action{Kind: ActRemove, App: st.App, Container: c, Reason: "more replicas than configured"})
				changed = true
			default:
				remove = append(remove, Action{Kind: ActRemove, App: st.App, Container: c, Reason: "stopped (" + c.State + ")"})
				changed = true
			}
		}
		if live == nil {
			continue
		}
		for i := kept; i < st.Release.Config.Replicas; i++ {
			start = append(start, Action{Kind: ActStart, App: st.App, Deployment: live, Release: st.Release,
				Reason: fmt.Sprintf("%d of %d replicas run", kept, st.Release.Config.Replicas)})
			changed = true
		}
		if changed || resync {
			route = append(route, Action{Kind: ActRoute, App: st.App, Release: st.Release, Reason: "replicas changed or the proxy needs the route again"})
		}
	}
	for _, c := range strays {
		remove = append(remove, Action{Kind: ActRemove, Container: c, Reason: "its app no longer exists"})
	}
	return slices.Concat(sup, start, route, remove)
}

// Reconcile makes one pass: it reads the store and the runtime, plans and
// applies the repairs. The server runs it at start (with resync) and then
// periodically.
func (e *Engine) Reconcile(ctx context.Context, resync bool) error {
	states, strays, err := e.observe(ctx)
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	actions := Plan(states, strays, resync)
	return e.apply(ctx, actions)
}

// RunReconciler reconciles now (with resync) and then every interval until
// ctx ends.
func (e *Engine) RunReconciler(ctx context.Context, every time.Duration) {
	resync := true
	for {
		if err := e.Reconcile(ctx, resync); err != nil && ctx.Err() == nil {
			e.log.Warn("reconcile", "err", err)
		} else {
			resync = false
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// observe reads what runs first and what the store wants second, so that
// anything started after the containers were listed belongs to an app the
// store already shows as busy or newly live (and is then left alone).
func (e *Engine) observe(ctx context.Context) ([]AppState, []berth.Container, error) {
	listedAt := e.cfg.Now()
	cs, err := e.cfg.Runtime.Containers(ctx, map[string]string{berth.LabelManaged: "true", berth.LabelInstance: e.cfg.Instance, berth.LabelRole: "app"})
	if err != nil {
		return nil, nil, err
	}
	apps, err := e.st.AllApps(ctx)
	if err != nil {
		return nil, nil, err
	}
	lives, err := e.st.LiveDeployments(ctx)
	if err != nil {
		return nil, nil, err
	}
	active, err := e.st.ActiveDeployments(ctx)
	if err != nil {
		return nil, nil, err
	}
	busy, err := e.st.BusyKeys(ctx)
	if err != nil {
		return nil, nil, err
	}
	byApp := map[string]*AppState{}
	states := make([]AppState, len(apps))
	for i := range apps {
		states[i] = AppState{App: &apps[i], Busy: busy[apps[i].ID]}
		byApp[apps[i].ID] = &states[i]
	}
	for _, d := range active {
		if st := byApp[d.AppID]; st != nil {
			st.Busy = true
		}
	}
	for _, d := range lives {
		if st := byApp[d.AppID]; st != nil {
			st.Live = append(st.Live, d) // newest first, as listed
			if d.UpdatedAt.After(listedAt) {
				st.Busy = true // it went live after the containers were listed
			}
		}
	}
	var strays []berth.Container
	for _, c := range cs {
		st := byApp[c.Labels[berth.LabelApp]]
		if st == nil {
			strays = append(strays, c)
			continue
		}
		st.Containers = append(st.Containers, c)
	}
	for i := range states {
		st := &states[i]
		if len(st.Live) == 0 || st.Busy {
			continue
		}
		rel, err := e.st.Release(ctx, st.App.TeamID, st.Live[0].ReleaseID)
		if err != nil {
			return nil, nil, fmt.Errorf("release of %s: %w", st.App.Name, err)
		}
		st.Release = rel
	}
	return states, strays, nil
}

// apply carries out the repairs. A failed repair is logged and the others
// go on; the next pass tries again.
func (e *Engine) apply(ctx context.Context, actions []Action) error {
	var started []berth.Container
	for _, a := range actions {
		if err := ctx.Err(); err != nil {
			return err
		}
		log := e.log.With("action", string(a.Kind), "reason", a.Reason)
		var err error
		switch a.Kind {
		case ActSupersede:
			err = e.st.MoveDeployment(ctx, a.App.TeamID, a.Deployment.ID, berth.StatusLive, berth.StatusSuperseded, e.cfg.Now(), "")
		case ActStart:
			var c berth.Container
			c, err = e.startReplica(ctx, replica{app: a.App, dep: a.Deployment, rel: a.Release, index: 1})
			if err == nil {
				started = append(started, c)
			}
		case ActRoute:
			err = e.routeHealthy(ctx, a.App, a.Release, started)
		case ActRemove:
			err = e.cfg.Runtime.Remove(ctx, a.Container.ID, e.cfg.StopGrace)
		}
		if err != nil {
			log.Warn("repair failed", "repair", a.String(), "err", err)
			continue
		}
		log.Info("repaired", "repair", a.String())
	}
	return nil
}

// routeHealthy routes app to its live replicas once the ones just started
// for it pass the health check of the live release.
func (e *Engine) routeHealthy(ctx context.Context, app *berth.App, rel *berth.Release, started []berth.Container) error {
	var mine []berth.Container
	for _, c := range started {
		if c.Labels[berth.LabelApp] == app.ID {
			mine = append(mine, c)
		}
	}
	fresh := targets(mine, rel.Config.Port)
	if len(fresh) > 0 {
		if err := e.cfg.Router.Check(ctx, berth.Probe{Targets: fresh, Health: rel.Config.Health.WithDefaults()}); err != nil {
			return fmt.Errorf("new replicas of %s: %w", app.Name, err)
		}
	}
	return e.SyncRoute(ctx, app)
}
