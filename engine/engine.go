// Package engine runs deployments: it moves each one through the state
// machine of berth.Deployment (fetch, build, start, verify, switch), one app
// at a time, on the durable job queue, and answers what runs for an app. It
// talks to Docker, git and the proxy only through the small interfaces in
// ports.go, which cmd/berth wires to the real adapters.
//
// A deploy, from the API call to the container:
//
//	Engine.Deploy   stores the deployment (queued) and enqueues a "deploy" job
//	queue           a worker leases the job and calls Engine.work
//	work            fetch (Source) → build (Builder) → release → start
//	                (Runtime.Run per replica) → verify (Router.Check) →
//	                switch (Router.SetRoute) → retire the old containers → live
//
// Pull request events become preview environments (preview.go): child apps
// deployed, swept and torn down on the same queue, with commit statuses
// posted back through StatusPoster.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/queue"
	"github.com/berthhq/berth/store"
)

// JobDeploy is the kind of the queue jobs that run deployments.
const JobDeploy = "deploy"

// Config wires an Engine. Zero durations and limits take the defaults shown.
type Config struct {
	Store   *store.Store
	Queue   *queue.Queue
	Source  Source
	Builder Builder
	Runtime Runtime
	Router  Router
	Log     *slog.Logger
	// Statuses posts the commit statuses of previews; nil posts none (each
	// preview shows why).
	Statuses StatusPoster
	// PreviewURL is where browsers reach a preview's host; default
	// "https://" + host.
	PreviewURL func(host string) string

	WorkDir string // scratch space for sources and uploads (required)
	Network string // the Docker network apps join; default "berth"
	// Proxy are the labels of the proxy's container, which the engine
	// connects to the networks of isolated apps (see
	// berth.ReleaseConfig.Isolated); required to run one.
	Proxy    map[string]string
	Instance string // this server's instance ID, put on every object's labels (required)

	MaxBuilds    int           // concurrent builds; default 1
	BuildTimeout time.Duration // default 30m
	BuildMemory  int64         // bytes per build; 0 = no limit
	BuildCPUs    float64       // CPUs per build; 0 = no limit
	FetchTimeout time.Duration // default 10m
	StartTimeout time.Duration // default 2m
	StopGrace    time.Duration // SIGTERM → SIGKILL for retired containers; default 10s
	DrainTimeout time.Duration // longest wait for in-flight requests to old replicas; default 30s
	DrainDelay   time.Duration // wait before stopping old replicas when the proxy cannot drain; default 2s
	KeepReleases int           // releases whose images are kept for rollbacks; default 10
	KeepLogs     int           // deployments per app whose build logs are kept; default 100
	CancelPoll   time.Duration // how often a running deploy looks for a cancel; default 1s
	Now          func() time.Time
}

// Engine is the deploy engine.
type Engine struct {
	cfg    Config
	st     *store.Store
	q      *queue.Queue
	log    *slog.Logger
	builds chan struct{} // build slots
}

// New returns an engine and registers its job handler with cfg.Queue.
func New(cfg Config) (*Engine, error) {
	if cfg.Store == nil || cfg.Queue == nil || cfg.Source == nil || cfg.Builder == nil || cfg.Runtime == nil || cfg.Router == nil {
		return nil, errors.New("engine: store, queue, source, builder, runtime and router are required")
	}
	if cfg.WorkDir == "" || cfg.Instance == "" {
		return nil, errors.New("engine: work dir and instance are required")
	}
	if cfg.Network == "" {
		cfg.Network = "berth"
	}
	if cfg.MaxBuilds <= 0 {
		cfg.MaxBuilds = 1
	}
	setDefault(&cfg.BuildTimeout, 30*time.Minute)
	setDefault(&cfg.FetchTimeout, 10*time.Minute)
	setDefault(&cfg.StartTimeout, 2*time.Minute)
	setDefault(&cfg.StopGrace, 10*time.Second)
	setDefault(&cfg.DrainDelay, 2*time.Second)
	setDefault(&cfg.DrainTimeout, 30*time.Second)
	if cfg.KeepReleases <= 0 {
		cfg.KeepReleases = 10
	}
	if cfg.KeepLogs <= 0 {
		cfg.KeepLogs = 100
	}
	setDefault(&cfg.CancelPoll, time.Second)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.WorkDir, 0o700); err != nil {
		return nil, fmt.Errorf("engine: work dir: %w", err)
	}
	e := &Engine{cfg: cfg, st: cfg.Store, q: cfg.Queue, log: cfg.Log, builds: make(chan struct{}, cfg.MaxBuilds)}
	e.q.Handle(JobDeploy, e.work)
	e.q.Handle(JobPreviewTeardown, e.teardown)
	e.q.Handle(JobPreviewStatus, e.postStatus)
	return e, nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Prepare creates what every deployment needs (the app network). The server
// calls it at start, before it starts the proxy.
func (e *Engine) Prepare(ctx context.Context) error {
	return e.cfg.Runtime.EnsureNetwork(ctx, e.cfg.Network, map[string]string{
		berth.LabelManaged: "true", berth.LabelInstance: e.cfg.Instance,
	})
}

// ConnectProxy connects the proxy to the network of every isolated app. The
// server calls it once the proxy runs: a proxy container started afresh is
// on the shared network only.
func (e *Engine) ConnectProxy(ctx context.Context) error {
	if len(e.cfg.Proxy) == 0 {
		return nil
	}
	nets, err := e.cfg.Runtime.Networks(ctx, map[string]string{
		berth.LabelManaged: "true", berth.LabelInstance: e.cfg.Instance, berth.LabelRole: "network",
	})
	if err != nil {
		return fmt.Errorf("connect the proxy: %w", err)
	}
	for _, n := range nets {
		if err := e.cfg.Runtime.Connect(ctx, n, e.cfg.Proxy); err != nil {
			return fmt.Errorf("connect the proxy to %s: %w", n, err)
		}
	}
	return nil
}

// DeployRequest asks for a new deployment of an app.
type DeployRequest struct {
	Ref    string    // branch, tag or commit; default: the app's ref
	Image  string    // prebuilt image; only for image apps (default: the app's image)
	Upload io.Reader // a tar (optionally gzipped) build context; required for upload and push apps
	// Commit is the commit an Upload was made from (push apps: the
	// pushed commit, archived by the caller); it is recorded on the
	// deployment and its release.
	Commit    string
	CreatedBy string // who asked, for the history
}

// AppStatus is what runs for an app right now.
type AppStatus struct {
	App        *berth.App        `json:"app"`
	Live       *berth.Deployment `json:"live,omitempty"`    // the live deployment, if any
	Release    *berth.Release    `json:"release,omitempty"` // its release
	Active     *berth.Deployment `json:"active,omitempty"`  // a deployment in progress, if any
	Containers []berth.Container `json:"containers"`
	Domains    []string          `json:"domains"`
}

// LogOptions selects an app's runtime logs.
type LogOptions struct {
	Tail   int  // lines per container from the end; <0 for all
	Follow bool // keep streaming until ctx ends
}

// KeepReleases is how many of an app's newest releases keep their images
// for rollbacks.
func (e *Engine) KeepReleases() int { return e.cfg.KeepReleases }

// deadline is how long a deployment job may take in all: every stage's
// budget plus slack for the store and the queue.
func (e *Engine) deadline(app *berth.App) time.Duration {
	return e.cfg.FetchTimeout + e.cfg.BuildTimeout + e.cfg.StartTimeout + app.Health.WithDefaults().Deadline + 2*time.Minute
}

// Deploy stores a deployment of app (queued) and enqueues its job.
func (e *Engine) Deploy(ctx context.Context, app *berth.App, req DeployRequest) (*berth.Deployment, error) {
	const op = "deploy"
	d := &berth.Deployment{
		ID: berth.NewID("dep"), TeamID: app.TeamID, AppID: app.ID, Kind: berth.KindDeploy,
		Status: berth.StatusQueued, CreatedBy: req.CreatedBy,
	}
	switch app.Source.Kind {
	case berth.SourceGit:
		d.Ref = app.Source.Ref
		if req.Ref != "" {
			d.Ref = req.Ref
		}
		if err := berth.ValidGitRef(d.Ref); err != nil {
			return nil, berth.E(op, berth.Invalid, "%v", err)
		}
	case berth.SourceImage:
		d.Image = app.Source.Image
		if req.Image != "" {
			d.Image = req.Image
		}
		if err := berth.ValidImageRef(d.Image); err != nil {
			return nil, berth.E(op, berth.Invalid, "%v", err)
		}
	case berth.SourceUpload:
		if req.Upload == nil {
			return nil, berth.E(op, berth.Invalid, "app %s builds from an uploaded context: deploy with --from-dir", app.Name)
		}
	case berth.SourcePush:
		// The caller archives the commit from the app's hosted repository.
		if req.Upload == nil || !commitRE.MatchString(req.Commit) {
			return nil, berth.E(op, berth.Invalid, "app %s deploys what is pushed to its hosted git remote: git push to its branch %s", app.Name, app.Source.Ref)
		}
		d.Ref, d.Commit = app.Source.Ref, req.Commit
		if req.Ref != "" {
			d.Ref = req.Ref
		}
		if err := berth.ValidGitRef(d.Ref); err != nil {
			return nil, berth.E(op, berth.Invalid, "%v", err)
		}
	}
	if req.Ref != "" && app.Source.Kind != berth.SourceGit && app.Source.Kind != berth.SourcePush {
		return nil, berth.E(op, berth.Invalid, "a ref applies only to git and push apps")
	}
	if req.Image != "" && app.Source.Kind != berth.SourceImage {
		return nil, berth.E(op, berth.Invalid, "an image applies only to image apps")
	}
	if req.Commit != "" && app.Source.Kind != berth.SourcePush {
		return nil, berth.E(op, berth.Invalid, "a commit applies only to push apps")
	}
	if req.Upload != nil {
		if app.Source.Kind != berth.SourceUpload && app.Source.Kind != berth.SourcePush {
			return nil, berth.E(op, berth.Invalid, "app %s does not build from an upload", app.Name)
		}
		if err := e.saveUpload(d.ID, req.Upload); err != nil {
			return nil, err
		}
	}
	now := e.cfg.Now()
	d.CreatedAt, d.UpdatedAt = now, now
	if err := e.st.CreateDeployment(ctx, d); err != nil {
		e.dropUpload(d.ID)
		return nil, fmt.Errorf("%s %s: %w", op, app.Name, err)
	}
	if err := e.enqueue(ctx, app, d); err != nil {
		return nil, err
	}
	return d, nil
}

// Rollback stores a deployment of an earlier release of app (releaseID, or
// when empty the one before the live release) and enqueues its job.
func (e *Engine) Rollback(ctx context.Context, app *berth.App, releaseID, createdBy string) (*berth.Deployment, error) {
	const op = "rollback"
	var target *berth.Release
	if releaseID != "" {
		r, err := e.st.Release(ctx, app.TeamID, releaseID)
		if err != nil || r.AppID != app.ID {
			return nil, berth.E(op, berth.NotFound, "release %q of %s not found", releaseID, app.Name)
		}
		target = r
	} else {
		live, err := e.st.LiveDeployment(ctx, app.TeamID, app.ID)
		if err != nil {
			if berth.IsKind(err, berth.NotFound) {
				return nil, berth.E(op, berth.Conflict, "%s has no live release to roll back from", app.Name)
			}
			return nil, fmt.Errorf("%s %s: %w", op, app.Name, err)
		}
		rels, err := e.st.Releases(ctx, app.TeamID, app.ID, 100)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", op, app.Name, err)
		}
		for i, r := range rels {
			if r.ID == live.ReleaseID && i+1 < len(rels) {
				target = &rels[i+1]
				break
			}
		}
		if target == nil {
			return nil, berth.E(op, berth.Conflict, "%s has no release before the live one", app.Name)
		}
	}
	if ok, err := e.cfg.Runtime.ImageExists(ctx, target.Image); err != nil {
		return nil, fmt.Errorf("%s %s: %w", op, app.Name, err)
	} else if !ok {
		return nil, berth.E(op, berth.Conflict, "the image of release v%d is no longer on this server (berth keeps the images of the last %d releases)", target.Number, e.cfg.KeepReleases)
	}
	now := e.cfg.Now()
	d := &berth.Deployment{
		ID: berth.NewID("dep"), TeamID: app.TeamID, AppID: app.ID, Kind: berth.KindRollback,
		Status: berth.StatusQueued, TargetReleaseID: target.ID, Commit: target.Commit,
		CreatedBy: createdBy, CreatedAt: now, UpdatedAt: now,
	}
	if err := e.st.CreateDeployment(ctx, d); err != nil {
		return nil, fmt.Errorf("%s %s: %w", op, app.Name, err)
	}
	if err := e.enqueue(ctx, app, d); err != nil {
		return nil, err
	}
	return d, nil
}

func (e *Engine) enqueue(ctx context.Context, app *berth.App, d *berth.Deployment) error {
	j := &berth.Job{
		Kind: JobDeploy, Key: app.ID, Payload: d.ID, TeamID: app.TeamID,
		MaxAttempts: 3, Deadline: e.cfg.Now().Add(e.deadline(app)),
	}
	if err := e.q.Enqueue(ctx, j); err != nil {
		// Without a job nobody would ever run it: end it now.
		_ = e.st.MoveDeployment(context.WithoutCancel(ctx), d.TeamID, d.ID, berth.StatusQueued, berth.StatusFailed, e.cfg.Now(), "could not be queued")
		return fmt.Errorf("deploy %s: %w", app.Name, err)
	}
	return nil
}

// Cancel cancels deployment id of app, or its active one when id is empty.
// A queued deployment is cancelled at once; a running one stops at its next
// step and removes what it started. A deployment that is switching cannot be
// cancelled any more.
func (e *Engine) Cancel(ctx context.Context, app *berth.App, id string) (*berth.Deployment, error) {
	const op = "cancel deployment"
	var d *berth.Deployment
	if id == "" {
		a, err := e.activeDeployment(ctx, app)
		if err != nil {
			return nil, err
		}
		if a == nil {
			return nil, berth.E(op, berth.Conflict, "%s has no deployment in progress", app.Name)
		}
		d = a
	} else {
		got, err := e.st.Deployment(ctx, app.TeamID, id)
		if err != nil || got.AppID != app.ID {
			return nil, berth.E(op, berth.NotFound, "deployment %q of %s not found", id, app.Name)
		}
		d = got
	}
	if !d.Status.Active() {
		return nil, berth.E(op, berth.Conflict, "deployment #%d is %s, not in progress", d.Number, d.Status)
	}
	if d.Status == berth.StatusSwitching {
		return nil, berth.E(op, berth.Conflict, "deployment #%d is switching traffic and can no longer be cancelled", d.Number)
	}
	if d.Status == berth.StatusQueued {
		err := e.st.MoveDeployment(ctx, app.TeamID, d.ID, berth.StatusQueued, berth.StatusCancelled, e.cfg.Now(), "cancelled before it started")
		if err == nil {
			e.logLine(ctx, d, "==> cancelled before it started")
			return e.st.Deployment(ctx, app.TeamID, d.ID)
		}
		if !berth.IsKind(err, berth.Conflict) {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		// It started meanwhile: ask the worker.
	}
	if err := e.st.RequestCancel(ctx, app.TeamID, d.ID); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return e.st.Deployment(ctx, app.TeamID, d.ID)
}

// activeDeployment returns app's oldest deployment still in progress, or nil.
func (e *Engine) activeDeployment(ctx context.Context, app *berth.App) (*berth.Deployment, error) {
	ds, err := e.st.Deployments(ctx, app.TeamID, app.ID, 50)
	if err != nil {
		return nil, fmt.Errorf("list deployments of %s: %w", app.Name, err)
	}
	var active *berth.Deployment
	for i := range ds {
		if ds[i].Status.Active() {
			active = &ds[i] // newest first: keep the oldest
		}
	}
	return active, nil
}

// Status reports what runs for app.
func (e *Engine) Status(ctx context.Context, app *berth.App) (*AppStatus, error) {
	st := &AppStatus{App: app, Containers: []berth.Container{}, Domains: []string{}}
	live, err := e.st.LiveDeployment(ctx, app.TeamID, app.ID)
	switch {
	case err == nil:
		st.Live = live
		if r, err := e.st.Release(ctx, app.TeamID, live.ReleaseID); err == nil {
			r.Config.Env = nil // status never carries secrets
			st.Release = r
		}
	case !berth.IsKind(err, berth.NotFound):
		return nil, fmt.Errorf("status of %s: %w", app.Name, err)
	}
	if st.Active, err = e.activeDeployment(ctx, app); err != nil {
		return nil, err
	}
	doms, err := e.st.Domains(ctx, app.TeamID, app.ID)
	if err != nil {
		return nil, fmt.Errorf("status of %s: %w", app.Name, err)
	}
	for _, d := range doms {
		st.Domains = append(st.Domains, d.Host)
	}
	cs, err := e.cfg.Runtime.Containers(ctx, e.appLabels(app))
	if err != nil {
		return nil, fmt.Errorf("status of %s: %w", app.Name, err)
	}
	st.Containers = append(st.Containers, cs...)
	return st, nil
}

// SyncRoute tells the proxy app's current domains and live replicas.
func (e *Engine) SyncRoute(ctx context.Context, app *berth.App) error {
	live, err := e.st.LiveDeployment(ctx, app.TeamID, app.ID)
	if berth.IsKind(err, berth.NotFound) {
		return nil // nothing serves yet; the first deploy routes the domains
	}
	if err != nil {
		return fmt.Errorf("route %s: %w", app.Name, err)
	}
	rel, err := e.st.Release(ctx, app.TeamID, live.ReleaseID)
	if err != nil {
		return fmt.Errorf("route %s: %w", app.Name, err)
	}
	cs, err := e.releaseContainers(ctx, app, rel.ID)
	if err != nil {
		return err
	}
	return e.route(ctx, app, rel, cs)
}

// route points the proxy at containers cs of release rel.
func (e *Engine) route(ctx context.Context, app *berth.App, rel *berth.Release, cs []berth.Container) error {
	doms, err := e.st.Domains(ctx, app.TeamID, app.ID)
	if err != nil {
		return fmt.Errorf("route %s: %w", app.Name, err)
	}
	if len(doms) == 0 {
		return e.cfg.Router.RemoveRoute(ctx, app.ID)
	}
	r := berth.Route{App: app.ID, Targets: targets(cs, rel.Config.Port)}
	for _, d := range doms {
		r.Hosts = append(r.Hosts, d.Host)
	}
	return e.cfg.Router.SetRoute(ctx, r)
}

// DeleteApp stops what app runs, removes its route, containers, images and
// custom certificates, and deletes it with its history. Its named volumes
// hold data: they are kept unless volumes is set, in which case every
// volume berth made for the app (found by label) is removed too. An app's
// previews go with it, and an app that runs a preview goes whole (volumes
// too), as closing its pull request would.
func (e *Engine) DeleteApp(ctx context.Context, app *berth.App, volumes bool) error {
	const op = "delete app"
	if p, err := e.previewOf(ctx, app); err != nil {
		return fmt.Errorf("%s %s: %w", op, app.Name, err)
	} else if p != nil {
		return e.removeApp(ctx, app, true)
	}
	previews, err := e.st.Previews(ctx, app.TeamID, app.ID)
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, app.Name, err)
	}
	var children []*berth.App
	for _, p := range previews {
		child, err := e.st.AppByID(ctx, app.TeamID, p.ChildAppID)
		if err != nil {
			return fmt.Errorf("%s %s: %w", op, app.Name, err)
		}
		if a, err := e.activeDeployment(ctx, child); err != nil {
			return err
		} else if a != nil {
			return berth.E(op, berth.Conflict, "preview %s has deployment #%d in progress: cancel it first", child.Name, a.Number)
		}
		children = append(children, child)
	}
	for _, child := range children {
		if err := e.removeApp(ctx, child, true); err != nil {
			return err
		}
	}
	return e.removeApp(ctx, app, volumes)
}

// removeApp removes app from the proxy (route, custom certificates), Docker
// (containers, its own network, images, and its named volumes when volumes
// is set) and the store, unless a deployment of it is in progress.
func (e *Engine) removeApp(ctx context.Context, app *berth.App, volumes bool) error {
	const op = "delete app"
	if a, err := e.activeDeployment(ctx, app); err != nil {
		return err
	} else if a != nil {
		return berth.E(op, berth.Conflict, "%s has deployment #%d in progress: cancel it first", app.Name, a.Number)
	}
	steps := []func(context.Context, *berth.App) error{e.unroute, e.removeContainers, e.removeImages}
	if volumes {
		steps = append(steps, e.removeVolumes)
	}
	for _, step := range steps {
		if err := step(ctx, app); err != nil {
			return fmt.Errorf("%s %s: %w", op, app.Name, err)
		}
	}
	if err := e.st.DeleteApp(ctx, app.TeamID, app.ID); err != nil {
		return fmt.Errorf("%s %s: %w", op, app.Name, err)
	}
	e.log.Info("app deleted", "app", app.ID, "name", app.Name, "volumes_removed", volumes)
	return nil
}

// unroute removes app's route and the custom certificates of its domains
// from the proxy.
func (e *Engine) unroute(ctx context.Context, app *berth.App) error {
	if err := e.cfg.Router.RemoveRoute(ctx, app.ID); err != nil {
		return err
	}
	doms, err := e.st.Domains(ctx, app.TeamID, app.ID)
	if err != nil {
		return err
	}
	for _, d := range doms {
		if err := e.cfg.Router.SetCertificate(ctx, d.Host, nil, nil); err != nil {
			return fmt.Errorf("certificate of %s: %w", d.Host, err)
		}
	}
	return nil
}

// removeContainers removes app's containers, then its own network if it
// had one (see isolate).
func (e *Engine) removeContainers(ctx context.Context, app *berth.App) error {
	cs, err := e.cfg.Runtime.Containers(ctx, e.appLabels(app))
	if err != nil {
		return err
	}
	for _, c := range cs {
		if err := e.cfg.Runtime.Remove(ctx, c.ID, e.cfg.StopGrace); err != nil {
			return err
		}
	}
	if len(e.cfg.Proxy) == 0 {
		return nil // no app of this engine has a network of its own
	}
	net := e.isolatedNetwork(app)
	if err := e.cfg.Runtime.Disconnect(ctx, net, e.cfg.Proxy); err != nil {
		return err
	}
	return e.cfg.Runtime.RemoveNetwork(ctx, net)
}

// removeImages removes every image built for app. Its containers must be
// gone: an image in use cannot go.
func (e *Engine) removeImages(ctx context.Context, app *berth.App) error {
	imgs, err := e.cfg.Runtime.Images(ctx, e.appLabels(app))
	if err != nil {
		return err
	}
	for _, img := range imgs {
		// By tag first, as collectImages does; the last tag takes the
		// image with it, an untagged one goes by ID.
		for _, ref := range append(slices.Clone(img.Tags), img.ID) {
			if err := e.cfg.Runtime.RemoveImage(ctx, ref); err != nil {
				return fmt.Errorf("image %s: %w", ref, err)
			}
		}
	}
	return nil
}

// removeVolumes removes every named volume berth made for app. Its
// containers must be gone: a volume in use cannot go.
func (e *Engine) removeVolumes(ctx context.Context, app *berth.App) error {
	names, err := e.cfg.Runtime.Volumes(ctx, e.appLabels(app))
	if err != nil {
		return err
	}
	for _, v := range names {
		if err := e.cfg.Runtime.RemoveVolume(ctx, v); err != nil {
			return fmt.Errorf("volume %s: %w", v, err)
		}
	}
	return nil
}

// appLabels selects every container of app.
func (e *Engine) appLabels(app *berth.App) map[string]string {
	return map[string]string{berth.LabelManaged: "true", berth.LabelInstance: e.cfg.Instance, berth.LabelApp: app.ID}
}

// releaseContainers lists the running containers of one release of app.
func (e *Engine) releaseContainers(ctx context.Context, app *berth.App, releaseID string) ([]berth.Container, error) {
	l := e.appLabels(app)
	l[berth.LabelRelease] = releaseID
	cs, err := e.cfg.Runtime.Containers(ctx, l)
	if err != nil {
		return nil, fmt.Errorf("containers of %s: %w", app.Name, err)
	}
	running := cs[:0]
	for _, c := range cs {
		if c.Running() {
			running = append(running, c)
		}
	}
	return running, nil
}

// targets are the proxy's addresses of containers: name:port on the app
// network, resolved by Docker's DNS inside the proxy container.
func targets(cs []berth.Container, port int) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.Name+":"+strconv.Itoa(port))
	}
	return out
}

// commitRE matches a full commit ID (SHA-1 or SHA-256).
var commitRE = regexp.MustCompile(`^[0-9a-f]{40}$|^[0-9a-f]{64}$`)

// uploadPath is where an uploaded build context waits for its deployment.
func (e *Engine) uploadPath(deploymentID string) string {
	return filepath.Join(e.cfg.WorkDir, "uploads", deploymentID+".tar")
}
