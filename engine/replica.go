package engine

import (
	"context"
	"fmt"
	"maps"
	"strconv"

	"github.com/berthhq/berth"
)

// replica is what it takes to start one container of a release: the
// deployment and release it belongs to.
type replica struct {
	app   *berth.App
	dep   *berth.Deployment // the deployment that owns the container
	rel   *berth.Release
	index int // 1-based, for the name only
}

// startReplica runs one container of a release, with its volumes.
func (e *Engine) startReplica(ctx context.Context, r replica) (berth.Container, error) {
	if err := checkRelease(r.app, r.rel); err != nil {
		return berth.Container{}, err
	}
	cfg := r.rel.Config
	network := e.cfg.Network
	if cfg.Isolated {
		var err error
		if network, err = e.isolate(ctx, r.app); err != nil {
			return berth.Container{}, err
		}
	}
	base := e.objectLabels(r.app)
	for _, v := range cfg.Volumes {
		if err := e.cfg.Runtime.EnsureVolume(ctx, volumeName(r.app.ID, v.Name), base); err != nil {
			return berth.Container{}, fmt.Errorf("volume %s: %w", v.Name, err)
		}
	}
	env := maps.Clone(cfg.Env)
	if env == nil {
		env = map[string]string{}
	}
	env["PORT"] = strconv.Itoa(cfg.Port)
	env["BERTH_APP"] = r.app.Name
	env["BERTH_RELEASE"] = fmt.Sprintf("v%d", r.rel.Number)
	if r.rel.Commit != "" {
		env["BERTH_COMMIT"] = r.rel.Commit
	}
	spec := berth.ContainerSpec{
		Name:        fmt.Sprintf("berth-%s-d%d-r%d-%s", r.app.Name, r.dep.Number, r.index, berth.NewID("c")[2:8]),
		Image:       r.rel.Image,
		Env:         env,
		Labels:      e.replicaLabels(r.app, r.dep.ID, r.rel.ID),
		Network:     network,
		MemoryBytes: cfg.Resources.MemoryMB << 20,
		NanoCPUs:    int64(cfg.Resources.CPUs * 1e9),
		StopTimeout: e.cfg.StopGrace,
	}
	for _, v := range cfg.Volumes {
		spec.Volumes = append(spec.Volumes, berth.VolumeMount{Volume: volumeName(r.app.ID, v.Name), Path: v.Path})
	}
	return e.cfg.Runtime.Run(ctx, spec)
}

// isolate makes the network of app's own (see berth.ReleaseConfig.Isolated),
// connects the proxy to it and returns its name.
func (e *Engine) isolate(ctx context.Context, app *berth.App) (string, error) {
	if len(e.cfg.Proxy) == 0 {
		return "", berth.E("isolate app", berth.Internal, "no proxy to connect the network of %s to", app.Name)
	}
	name := e.isolatedNetwork(app)
	l := e.objectLabels(app)
	l[berth.LabelRole] = "network"
	if err := e.cfg.Runtime.EnsureNetwork(ctx, name, l); err != nil {
		return "", fmt.Errorf("network of %s: %w", app.Name, err)
	}
	if err := e.cfg.Runtime.Connect(ctx, name, e.cfg.Proxy); err != nil {
		return "", fmt.Errorf("connect the proxy to the network of %s: %w", app.Name, err)
	}
	return name, nil
}

// isolatedNetwork is the name of app's own network.
func (e *Engine) isolatedNetwork(app *berth.App) string {
	return e.cfg.Network + "-" + app.ID
}

// objectLabels are the labels of every Docker object of an app.
func (e *Engine) objectLabels(app *berth.App) map[string]string {
	l := e.appLabels(app)
	l[berth.LabelTeam] = app.TeamID
	l[berth.LabelAppName] = app.Name
	return l
}

// replicaLabels are the labels of an app container.
func (e *Engine) replicaLabels(app *berth.App, deploymentID, releaseID string) map[string]string {
	l := e.objectLabels(app)
	l[berth.LabelRole] = "app"
	l[berth.LabelDeployment] = deploymentID
	if releaseID != "" {
		l[berth.LabelRelease] = releaseID
	}
	return l
}

// retire drains the targets of containers cs through the proxy, then stops
// them: SIGTERM, the grace period, SIGKILL, removal. ports maps each
// container's release to the port it listens on.
func (e *Engine) retire(ctx context.Context, cs []berth.Container, port func(releaseID string) int, say func(format string, args ...any)) {
	if len(cs) == 0 {
		return
	}
	var ts []string
	for _, c := range cs {
		ts = append(ts, c.Name+":"+strconv.Itoa(port(c.Labels[berth.LabelRelease])))
	}
	n, err := e.cfg.Router.Drain(ctx, ts, e.cfg.DrainTimeout)
	switch {
	case err != nil:
		say("==> could not drain the old replicas (%v); stopping them after %s", err, e.cfg.DrainDelay)
		sleep(ctx, e.cfg.DrainDelay)
	case n > 0:
		say("==> %d request(s) still in flight after the drain timeout (%s); stopping the old replicas", n, e.cfg.DrainTimeout)
	default:
		say("==> drained %d old replica(s)", len(cs))
	}
	for _, c := range cs {
		if err := e.cfg.Runtime.Remove(ctx, c.ID, e.cfg.StopGrace); err != nil {
			e.log.Warn("remove old container", "container", c.ID, "err", err)
		}
	}
}
