package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/berthhq/berth"
)

// errCancelled ends a deployment's context when a user cancels it.
var errCancelled = errors.New("cancelled by a user")

// run is one deployment being worked on by this process.
type run struct {
	e   *Engine
	d   *berth.Deployment
	app *berth.App
	log *slog.Logger
	out *lineWriter // the deployment's log in the store
	rel *berth.Release
	new []berth.Container // containers this run started
	// auth is what the fetch presents to the app's Git server; its secrets
	// are masked in the deployment's log. authApp is the app whose
	// credentials they are (a preview's parent), where the host keys a
	// first fetch trusts are pinned.
	auth    berth.GitAuth
	authApp string
	// preview is the preview the app runs, if any; trusted says whether
	// the commit fetched may have the parent's secrets (see
	// berth.Preview.Trusted).
	preview *berth.Preview
	trusted bool
}

// work is the queue handler of deploy jobs. It settles the deployment in a
// terminal state whatever happens; it returns an error only when the store
// could not record that, so that the queue retries.
func (e *Engine) work(ctx context.Context, j *berth.Job) error {
	err := e.runDeployment(ctx, j)
	// A preview learns how its deployment ended, whatever the outcome.
	e.previewSettled(context.WithoutCancel(ctx), j.TeamID, j.Payload)
	return err
}

// runDeployment runs the deployment of job j (see work).
func (e *Engine) runDeployment(ctx context.Context, j *berth.Job) error {
	d, err := e.st.Deployment(ctx, j.TeamID, j.Payload)
	if err != nil {
		if berth.IsKind(err, berth.NotFound) {
			return nil // deleted with its app
		}
		return berth.Wrap("load deployment", berth.Unavailable, err)
	}
	if !d.Status.Active() {
		return nil // cancelled while queued, or already settled
	}
	app, err := e.st.AppByID(ctx, d.TeamID, d.AppID)
	if err != nil {
		return berth.Wrap("load app", berth.Unavailable, err)
	}
	preview, err := e.previewOf(ctx, app)
	if err != nil {
		return berth.Wrap("load preview", berth.Unavailable, err)
	}
	var secrets []string // every value the log must not show
	if preview == nil {
		env, err := e.st.Env(ctx, d.TeamID, app.ID)
		if err != nil {
			return berth.Wrap("load env", berth.Unavailable, err)
		}
		secrets = envValues(env)
	} else {
		env, err := e.previewEnv(ctx, preview, true)
		if err != nil {
			return berth.Wrap("load env", berth.Unavailable, err)
		}
		secrets = slices.Collect(maps.Values(env))
	}
	r := &run{e: e, d: d, app: app, log: e.log.With("app", app.ID, "deployment", d.ID), preview: preview}
	defer e.pruneLogs(context.WithoutCancel(ctx), app) // after the log's last lines (deferred below)
	if app.Source.Kind == berth.SourceGit && d.Kind != berth.KindRollback {
		if r.auth, r.authApp, err = e.fetchAuth(ctx, app, preview); err != nil {
			return berth.Wrap("load git credentials", berth.Unavailable, err)
		}
		secrets = append(secrets, r.auth.Secrets()...)
	}
	r.out = newLineWriter(func(lines []string) {
		// Detached from ctx: the log of a cancelled deploy must still be written.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := e.st.AppendLog(wctx, d.TeamID, d.ID, e.cfg.Now(), lines...); err != nil {
			r.log.Warn("append deployment log", "err", err)
		}
	}, newMasker(secrets))
	defer r.out.Close()
	defer e.dropUpload(d.ID)
	defer os.RemoveAll(r.workDir())

	if d.Status != berth.StatusQueued {
		// A worker died while it ran this deployment. A switch that had
		// begun is finished when its replicas still run (they passed their
		// health check); anything earlier may be half-made, so it is removed
		// and the deployment ends honestly.
		if d.Status == berth.StatusSwitching {
			err := r.resumeSwitch(ctx)
			if err == nil {
				return nil
			}
			r.log.Warn("resume switch", "err", err)
		}
		return r.fail(ctx, fmt.Errorf("interrupted while %s: the control plane stopped (attempt %d)", d.Status, j.Attempts))
	}

	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stopWatch := e.watchCancel(wctx, d, cancel)
	defer stopWatch()

	if err := r.deploy(wctx); err != nil {
		if cause := context.Cause(wctx); cause != nil && wctx.Err() != nil {
			err = cause
		}
		if errors.Is(err, errCancelled) {
			return r.cancel(ctx)
		}
		return r.fail(ctx, err)
	}
	return nil
}

func (r *run) workDir() string { return filepath.Join(r.e.cfg.WorkDir, r.d.ID) }

// resumeSwitch finishes the switch of a deployment whose worker died while
// switching, when all its replicas still run.
func (r *run) resumeSwitch(ctx context.Context) error {
	rel, err := r.e.st.Release(ctx, r.d.TeamID, r.d.ReleaseID)
	if err != nil {
		return fmt.Errorf("load release: %w", err)
	}
	l := r.e.appLabels(r.app)
	l[berth.LabelDeployment] = r.d.ID
	cs, err := r.e.cfg.Runtime.Containers(ctx, l)
	if err != nil {
		return err
	}
	var running []berth.Container
	for _, c := range cs {
		if c.Running() {
			running = append(running, c)
		}
	}
	if len(running) < rel.Config.Replicas {
		return fmt.Errorf("%d of %d replicas run", len(running), rel.Config.Replicas)
	}
	r.rel, r.new = rel, running
	r.printf("==> the control plane restarted while switching; finishing the switch")
	return r.switchTraffic(ctx)
}

// watchCancel polls the store for a cancel request and cancels ctx with
// errCancelled when one comes. The returned func stops the watch.
func (e *Engine) watchCancel(ctx context.Context, d *berth.Deployment, cancel context.CancelCauseFunc) func() {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(e.cfg.CancelPoll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-done:
				return
			case <-t.C:
			}
			cur, err := e.st.Deployment(ctx, d.TeamID, d.ID)
			if err == nil && cur.CancelRequested && cur.Status != berth.StatusSwitching && cur.Status.Active() {
				cancel(errCancelled)
				return
			}
		}
	}()
	return func() { close(done) }
}

// deploy runs the stages. Each stage checks ctx before it starts.
func (r *run) deploy(ctx context.Context) error {
	if err := checkApp(r.app); err != nil {
		return err
	}
	var err error
	switch {
	case r.d.Kind == berth.KindRollback:
		r.rel, err = r.e.st.Release(ctx, r.d.TeamID, r.d.TargetReleaseID)
		if err != nil {
			return fmt.Errorf("load release to roll back to: %w", err)
		}
		r.printf("==> rolling back to release v%d (image %s)", r.rel.Number, shortID(r.rel.Image))
		if err := r.move(ctx, berth.StatusStarting); err != nil {
			return err
		}
		if err := r.e.st.SetDeploymentRelease(ctx, r.d.TeamID, r.d.ID, r.rel.ID); err != nil {
			return fmt.Errorf("record release: %w", err)
		}
	case r.app.Source.Kind == berth.SourceImage:
		if err := r.move(ctx, berth.StatusStarting); err != nil {
			return err
		}
		if err := r.release(ctx, r.d.Image); err != nil {
			return err
		}
	default:
		image, err := r.fetchAndBuild(ctx)
		if err != nil {
			return err
		}
		if err := r.move(ctx, berth.StatusStarting); err != nil {
			return err
		}
		if err := r.release(ctx, image); err != nil {
			return err
		}
	}
	if err := r.start(ctx); err != nil {
		return err
	}
	if err := r.move(ctx, berth.StatusVerifying); err != nil {
		return err
	}
	if err := r.verify(ctx); err != nil {
		return err
	}
	if err := r.move(ctx, berth.StatusSwitching); err != nil {
		return err
	}
	return r.switchTraffic(ctx)
}

// fetchAndBuild gets the source and builds its image.
func (r *run) fetchAndBuild(ctx context.Context) (string, error) {
	if err := r.move(ctx, berth.StatusFetching); err != nil {
		return "", err
	}
	// A webhook may have re-pointed the deployment to a newer commit while
	// it was queued (see DeployCommit). From fetching on, its ref no longer
	// changes: read it now.
	cur, err := r.e.st.Deployment(ctx, r.d.TeamID, r.d.ID)
	if err != nil {
		return "", fmt.Errorf("load deployment: %w", err)
	}
	r.d.Ref = cur.Ref
	src := filepath.Join(r.workDir(), "src")
	if err := os.MkdirAll(src, 0o700); err != nil {
		return "", fmt.Errorf("make work dir: %w", err)
	}
	fctx, cancel := context.WithTimeoutCause(ctx, r.e.cfg.FetchTimeout, fmt.Errorf("fetch took longer than %s", r.e.cfg.FetchTimeout))
	defer cancel()
	if r.app.Source.Kind == berth.SourceGit {
		r.printf("==> fetching %s at %s", redactURL(r.app.Source.Git), r.d.Ref)
		res, err := r.e.cfg.Source.Fetch(fctx, berth.FetchRequest{URL: r.app.Source.Git, Ref: r.d.Ref, Dir: src, Auth: r.auth}, r.out)
		if err != nil {
			return "", ctxErr(fctx, fmt.Errorf("fetch: %w", err))
		}
		if err := r.e.TrustHostKeys(ctx, r.d.TeamID, r.authApp, res.NewHostKeys); err != nil {
			return "", err
		}
		for _, k := range res.NewHostKeys {
			r.printf("==> trusting the ssh host key of %s on first use: %s %s (berth apps host-keys %s)", k.Host, keyType(k.Key), k.Fingerprint, r.app.Name)
		}
		commit := res.Commit
		r.d.Commit = commit
		if err := r.e.st.SetDeploymentCommit(ctx, r.d.TeamID, r.d.ID, commit); err != nil {
			return "", fmt.Errorf("record commit: %w", err)
		}
		r.printf("==> commit %s", commit)
		if r.preview != nil {
			r.trusted = r.preview.Trusted(commit)
			if r.trusted {
				r.printf("==> preview of pull request #%d: built and run with %s's env and build args", r.preview.Number, r.parentName(ctx))
			} else {
				r.printf("==> preview of pull request #%d from a fork: commit %s is not approved, so it is built without %s's build args and runs with the preview env overrides only", r.preview.Number, berth.ShortSHA(commit), r.parentName(ctx))
			}
		}
	} else if r.app.Source.Kind == berth.SourcePush {
		r.printf("==> commit %s, pushed to %s", r.d.Commit, r.d.Ref)
		n, err := extractUpload(r.e.uploadPath(r.d.ID), src)
		if err != nil {
			return "", err
		}
		r.printf("==> %d files", n)
	} else {
		r.printf("==> unpacking the uploaded build context")
		n, err := extractUpload(r.e.uploadPath(r.d.ID), src)
		if err != nil {
			return "", err
		}
		r.printf("==> %d files", n)
	}

	if err := r.move(ctx, berth.StatusBuilding); err != nil {
		return "", err
	}
	select {
	case r.e.builds <- struct{}{}:
	default:
		r.printf("==> waiting for a build slot (%d build(s) at a time)", cap(r.e.builds))
		select {
		case r.e.builds <- struct{}{}:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	defer func() { <-r.e.builds }()

	ctxDir, err := checkContext(src, r.app.Build.Context)
	if err != nil {
		return "", err
	}
	args := r.app.Build.Args
	if r.preview != nil && !r.trusted {
		args = nil // build args can carry secrets
	}
	spec := berth.BuildSpec{
		ContextDir:  ctxDir,
		Dockerfile:  r.app.Build.Dockerfile,
		Args:        args,
		Target:      r.app.Build.Target,
		Tag:         "berth/" + r.app.ID + ":d" + fmt.Sprint(r.d.Number),
		Labels:      r.e.objectLabels(r.app), // the same for every build of the app: cached
		MemoryBytes: r.e.cfg.BuildMemory,
		NanoCPUs:    int64(r.e.cfg.BuildCPUs * 1e9),
	}
	if err := berth.ValidRelPath(spec.Dockerfile); err != nil {
		return "", berth.E("build", berth.Invalid, "%v", err)
	}
	r.printf("==> building %s", spec.Tag)
	bctx, cancel := context.WithTimeoutCause(ctx, r.e.cfg.BuildTimeout, fmt.Errorf("build took longer than %s", r.e.cfg.BuildTimeout))
	defer cancel()
	image, err := r.e.cfg.Builder.Build(bctx, spec, r.out)
	if err != nil {
		return "", ctxErr(bctx, fmt.Errorf("build: %w", err))
	}
	r.printf("==> built image %s", shortID(image))
	return image, nil
}

// release records the release this deployment runs: image plus a snapshot
// of the app's settings, env and domains.
func (r *run) release(ctx context.Context, image string) error {
	env, err := r.env(ctx)
	if err != nil {
		return fmt.Errorf("load env: %w", err)
	}
	doms, err := r.e.st.Domains(ctx, r.d.TeamID, r.app.ID)
	if err != nil {
		return fmt.Errorf("load domains: %w", err)
	}
	cfg := berth.ReleaseConfig{
		Port: r.app.Port, Replicas: r.app.Replicas, Resources: r.app.Resources,
		Health: r.app.Health.WithDefaults(), Volumes: r.app.Volumes, Env: map[string]string{},
		Isolated: r.preview != nil && !r.trusted,
	}
	maps.Copy(cfg.Env, env)
	for _, d := range doms {
		cfg.Domains = append(cfg.Domains, d.Host)
	}
	r.rel = &berth.Release{
		ID: berth.NewID("rel"), TeamID: r.d.TeamID, AppID: r.app.ID, Image: image,
		Commit: r.d.Commit, DeploymentID: r.d.ID, Config: cfg, CreatedAt: r.e.cfg.Now(),
	}
	if err := r.e.st.CreateRelease(ctx, r.rel); err != nil {
		return fmt.Errorf("record release: %w", err)
	}
	if err := r.e.st.SetDeploymentRelease(ctx, r.d.TeamID, r.d.ID, r.rel.ID); err != nil {
		return fmt.Errorf("record release: %w", err)
	}
	r.printf("==> release v%d", r.rel.Number)
	return nil
}

// env is the env the release runs with: the app's own, or for a preview
// the parent's (when trusted) with the preview overrides on top.
func (r *run) env(ctx context.Context) (map[string]string, error) {
	if r.preview != nil {
		return r.e.previewEnv(ctx, r.preview, r.trusted)
	}
	vars, err := r.e.st.Env(ctx, r.d.TeamID, r.app.ID)
	if err != nil {
		return nil, err
	}
	env := make(map[string]string, len(vars))
	for _, v := range vars {
		env[v.Key] = v.Value
	}
	return env, nil
}

// parentName names the app a preview previews, for the log.
func (r *run) parentName(ctx context.Context) string {
	if a, err := r.e.st.AppByID(ctx, r.d.TeamID, r.preview.AppID); err == nil {
		return a.Name
	}
	return "the app"
}

// start runs the release's replicas beside whatever serves now.
func (r *run) start(ctx context.Context) error {
	sctx, cancel := context.WithTimeoutCause(ctx, r.e.cfg.StartTimeout, fmt.Errorf("starting took longer than %s", r.e.cfg.StartTimeout))
	defer cancel()
	for i := range r.rel.Config.Replicas {
		c, err := r.e.startReplica(sctx, replica{app: r.app, dep: r.d, rel: r.rel, index: i + 1})
		if err != nil {
			return ctxErr(sctx, fmt.Errorf("start replica %d: %w", i+1, err))
		}
		r.new = append(r.new, c)
		r.printf("==> started replica %d: %s", i+1, c.Name)
	}
	return nil
}

// verify has the proxy health-check the new replicas.
func (r *run) verify(ctx context.Context) error {
	h := r.rel.Config.Health.WithDefaults()
	r.printf("==> health check: GET %s on %d replica(s), %d success(es) each, within %s", h.Path, len(r.new), h.Threshold, h.Deadline)
	// The proxy probes; meanwhile a replica that crashes fails the check at
	// once instead of at the deadline.
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go r.watchCrash(cctx, cancel)
	err := r.e.cfg.Router.Check(cctx, berth.Probe{Targets: targets(r.new, r.rel.Config.Port), Health: h})
	if cause := context.Cause(cctx); err != nil && cause != nil && ctx.Err() == nil {
		err = cause
	}
	if err != nil {
		return fmt.Errorf("health check: %w", err)
	}
	if err := r.waitDockerHealth(ctx, h.Deadline); err != nil {
		return err
	}
	r.printf("==> healthy")
	return nil
}

// waitDockerHealth honours a HEALTHCHECK in the image: every new replica
// that has one must report healthy, within deadline.
func (r *run) waitDockerHealth(ctx context.Context, deadline time.Duration) error {
	end := time.Now().Add(deadline)
	l := map[string]string{berth.LabelDeployment: r.d.ID, berth.LabelInstance: r.e.cfg.Instance}
	said := false
	for {
		cs, err := r.e.cfg.Runtime.Containers(ctx, l)
		if err != nil {
			return fmt.Errorf("health check: %w", err)
		}
		waiting := 0
		for _, c := range cs {
			switch c.Health {
			case "", "healthy":
			case "unhealthy":
				return fmt.Errorf("health check: the image's HEALTHCHECK reports %s unhealthy", c.Name)
			default:
				waiting++
			}
		}
		if waiting == 0 {
			return nil
		}
		if !said {
			r.printf("==> waiting for the image's HEALTHCHECK on %d replica(s)", waiting)
			said = true
		}
		if time.Now().After(end) {
			return fmt.Errorf("health check: the image's HEALTHCHECK did not report healthy within %s", deadline)
		}
		sleep(ctx, crashPoll)
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// watchCrash cancels ctx with the reason when one of the new replicas stops
// running (Docker restarts a crashing container: "restarting" counts).
func (r *run) watchCrash(ctx context.Context, cancel context.CancelCauseFunc) {
	t := time.NewTicker(crashPoll)
	defer t.Stop()
	l := map[string]string{berth.LabelDeployment: r.d.ID, berth.LabelInstance: r.e.cfg.Instance}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cs, err := r.e.cfg.Runtime.Containers(ctx, l)
		if err != nil {
			continue
		}
		for _, c := range cs {
			switch c.State {
			case "exited", "dead", "restarting":
				cancel(fmt.Errorf("replica %s stopped (%s, exit code %d)", c.Name, c.State, c.ExitCode))
				return
			}
		}
	}
}

// crashPoll is how often a verifying deployment looks for crashed replicas.
var crashPoll = 500 * time.Millisecond

// switchTraffic points the app's domains at the new replicas, marks the
// deployment live and every other live one of the app superseded, then
// drains and stops the replicas of the others. The order makes a crash at
// any point repairable: until the new deployment is live the old one still
// is (and a failed switch routes back to it); after, the reconciler
// supersedes a second live deployment and removes stray replicas.
func (r *run) switchTraffic(ctx context.Context) error {
	if err := r.e.route(ctx, r.app, r.rel, r.new); err != nil {
		return fmt.Errorf("switch traffic: %w", err)
	}
	r.printf("==> traffic switched to release v%d", r.rel.Number)
	// From here the new release serves: finish even if ctx ends.
	ctx = context.WithoutCancel(ctx)
	// The log is complete before the status says so: followers stop
	// reading at a terminal status.
	r.printf("==> live")
	r.out.Flush()
	if err := r.e.st.MoveDeployment(ctx, r.d.TeamID, r.d.ID, berth.StatusSwitching, berth.StatusLive, r.e.cfg.Now(), ""); err != nil {
		return fmt.Errorf("mark live: %w", err)
	}
	to := berth.StatusSuperseded
	if r.d.Kind == berth.KindRollback {
		to = berth.StatusRolledBack
	}
	if err := r.e.supersede(ctx, r.app, r.d.ID, to); err != nil {
		r.log.Warn("retire previous deployment", "err", err)
	}
	r.retireOthers(ctx)
	r.e.collectImages(ctx, r.app, r.printf)
	return nil
}

// supersede moves every live deployment of app but keep to status to.
func (e *Engine) supersede(ctx context.Context, app *berth.App, keep string, to berth.Status) error {
	ds, err := e.st.Deployments(ctx, app.TeamID, app.ID, 0)
	if err != nil {
		return err
	}
	for _, d := range ds {
		if d.Status == berth.StatusLive && d.ID != keep {
			if err := e.st.MoveDeployment(ctx, app.TeamID, d.ID, berth.StatusLive, to, e.cfg.Now(), ""); err != nil {
				return err
			}
		}
	}
	return nil
}

// retireOthers drains and stops every container of the app that this
// deployment did not start.
func (r *run) retireOthers(ctx context.Context) {
	cs, err := r.e.cfg.Runtime.Containers(ctx, r.e.appLabels(r.app))
	if err != nil {
		r.log.Warn("list old containers", "err", err)
		return
	}
	var old []berth.Container
	for _, c := range cs {
		if c.Labels[berth.LabelDeployment] != r.d.ID {
			old = append(old, c)
		}
	}
	r.e.retire(ctx, old, r.e.releasePort(ctx, r.app), r.printf)
}

// releasePort returns a lookup of the port of app's releases, for the
// targets of old containers.
func (e *Engine) releasePort(ctx context.Context, app *berth.App) func(string) int {
	ports := map[string]int{}
	return func(id string) int {
		if p, ok := ports[id]; ok {
			return p
		}
		p := app.Port
		if rel, err := e.st.Release(ctx, app.TeamID, id); err == nil {
			p = rel.Config.Port
		}
		ports[id] = p
		return p
	}
}

// move records the deployment's next status and logs it.
func (r *run) move(ctx context.Context, to berth.Status) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.out.Flush() // the log of a stage precedes the status that ends it
	if err := r.e.st.MoveDeployment(ctx, r.d.TeamID, r.d.ID, r.d.Status, to, r.e.cfg.Now(), ""); err != nil {
		return fmt.Errorf("move to %s: %w", to, err)
	}
	r.d.Status = to
	return nil
}

// fail removes what this deployment started, restores the route of the
// live release if it was touched, and ends the deployment failed.
func (r *run) fail(ctx context.Context, cause error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	// The deployment's owner sees the whole chain: it is their build and
	// their containers. Adapters keep credentials out of their errors.
	msg := cause.Error()
	if tail := r.lastLogLines(ctx, 20); tail != "" {
		msg += "\n--- last lines of the container log ---\n" + tail
	}
	msg = r.out.mask.mask(msg) // the error is shown like the log
	r.cleanup(ctx)
	r.printf("==> deploy failed: %s", msg)
	r.out.Flush()
	return r.settle(ctx, berth.StatusFailed, msg)
}

// cancel removes what this deployment started and ends it cancelled.
func (r *run) cancel(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	r.cleanup(ctx)
	r.printf("==> cancelled")
	r.out.Flush()
	return r.settle(ctx, berth.StatusCancelled, "cancelled by a user")
}

// settle moves the deployment from whatever active status it is in to a
// terminal one.
func (r *run) settle(ctx context.Context, to berth.Status, msg string) error {
	cur, err := r.e.st.Deployment(ctx, r.d.TeamID, r.d.ID)
	if err != nil {
		return berth.Wrap("settle deployment", berth.Unavailable, err)
	}
	if !cur.Status.Active() {
		return nil
	}
	if to == berth.StatusCancelled && !berth.CanMove(cur.Status, to) {
		to = berth.StatusFailed
	}
	if err := r.e.st.MoveDeployment(ctx, r.d.TeamID, r.d.ID, cur.Status, to, r.e.cfg.Now(), msg); err != nil {
		return berth.Wrap("settle deployment", berth.Unavailable, err)
	}
	r.log.Info("deployment ended", "status", to)
	return nil
}

// cleanup removes every container labelled with this deployment and, if
// the proxy may already point at them, points it back at the live release.
func (r *run) cleanup(ctx context.Context) {
	l := r.e.appLabels(r.app)
	l[berth.LabelDeployment] = r.d.ID
	cs, err := r.e.cfg.Runtime.Containers(ctx, l)
	if err != nil {
		r.log.Warn("list containers to clean up", "err", err)
		return
	}
	if len(cs) > 0 && r.d.Status == berth.StatusSwitching {
		if err := r.e.SyncRoute(ctx, r.app); err != nil {
			r.log.Warn("restore route of live release", "err", err)
		}
	}
	for _, c := range cs {
		if err := r.e.cfg.Runtime.Remove(ctx, c.ID, 0); err != nil {
			r.log.Warn("remove container", "container", c.ID, "err", err)
		}
	}
	if len(cs) > 0 {
		r.printf("==> removed %d container(s) of this deployment", len(cs))
	}
}

// lastLogLines returns the last n lines of the first new container that is
// not running, or else of the first new container.
func (r *run) lastLogLines(ctx context.Context, n int) string {
	if len(r.new) == 0 {
		return ""
	}
	c := r.new[0]
	if cs, err := r.e.cfg.Runtime.Containers(ctx, map[string]string{berth.LabelDeployment: r.d.ID, berth.LabelInstance: r.e.cfg.Instance}); err == nil {
		for _, x := range cs {
			if !x.Running() {
				c = x
				break
			}
		}
	}
	var b strings.Builder
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := r.e.cfg.Runtime.Logs(lctx, c.ID, n, false, &b); err != nil {
		return ""
	}
	return strings.TrimRight(b.String(), "\n")
}

func (r *run) printf(format string, args ...any) {
	fmt.Fprintf(r.out, format+"\n", args...)
}

// logLine appends one line to a deployment's log outside of a run.
func (e *Engine) logLine(ctx context.Context, d *berth.Deployment, line string) {
	if err := e.st.AppendLog(ctx, d.TeamID, d.ID, e.cfg.Now(), line); err != nil {
		e.log.Warn("append deployment log", "deployment", d.ID, "err", err)
	}
}

// volumeName is the Docker volume of an app's named volume.
func volumeName(appID, name string) string { return "berth-" + appID + "-" + name }

// ctxErr prefers the cause of ctx's end (a stage deadline) over err.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) && !errors.Is(c, errCancelled) {
			return c
		}
		if errors.Is(context.Cause(ctx), errCancelled) {
			return errCancelled
		}
	}
	return err
}

// checkContext returns the build context directory rel of the source tree
// src, refusing one that is, or passes through, a link leading outside src:
// the source's author would otherwise build (and read back in the image)
// files of this server.
func checkContext(src, rel string) (string, error) {
	dir := filepath.Join(src, filepath.FromSlash(cleanRel(rel)))
	realSrc, err := filepath.EvalSymlinks(src)
	if err != nil {
		return "", fmt.Errorf("resolve source directory: %w", err)
	}
	real, err := filepath.EvalSymlinks(dir)
	if errors.Is(err, os.ErrNotExist) {
		return dir, nil // the build says what is missing
	}
	if err != nil {
		return "", berth.E("build", berth.Invalid, "build context %q: %v", cleanRel(rel), errors.Unwrap(err))
	}
	if r, err := filepath.Rel(realSrc, real); err != nil || !filepath.IsLocal(r) && r != "." {
		return "", berth.E("build", berth.Invalid, "build context %q is a link leading outside the source", cleanRel(rel))
	}
	return dir, nil
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func cleanRel(p string) string {
	if p == "" {
		return "."
	}
	return filepath.ToSlash(filepath.Clean(p))
}

// SourceAuth loads what a fetch of an app's repository presents to its Git
// server: the app's deploy key, access token and trusted ssh host keys. A
// deployment of the app uses its own; a preview of a pull request fetches
// with its parent app's (pass the parent's ID), and records the host keys
// it trusts on first use there too (TrustHostKeys).
func (e *Engine) SourceAuth(ctx context.Context, teamID, appID string) (berth.GitAuth, error) {
	return e.st.GitAuth(ctx, teamID, appID)
}

// fetchAuth is what a deployment of app presents to its Git server, and the
// app whose host-key pins apply (see SourceAuth). A preview fetches with its
// parent's credentials only from the parent's own repository: a fork's head
// repository (Bitbucket previews fetch from it) is another server, which
// must never receive the parent's token or deploy key; it gets none, and its
// host keys are pinned on the preview's own app.
func (e *Engine) fetchAuth(ctx context.Context, app *berth.App, preview *berth.Preview) (berth.GitAuth, string, error) {
	if preview == nil {
		auth, err := e.SourceAuth(ctx, app.TeamID, app.ID)
		return auth, app.ID, err
	}
	parent, err := e.st.AppByID(ctx, app.TeamID, preview.AppID)
	if err != nil {
		return berth.GitAuth{}, "", fmt.Errorf("parent app: %w", err)
	}
	if parent.Source.Kind != berth.SourceGit || parent.Source.Git != app.Source.Git {
		auth, err := e.SourceAuth(ctx, app.TeamID, app.ID)
		return auth, app.ID, err
	}
	auth, err := e.SourceAuth(ctx, app.TeamID, parent.ID)
	return auth, parent.ID, err
}

// TrustHostKeys pins the ssh host keys a successful fetch trusted on first
// use for the app whose credentials it used.
func (e *Engine) TrustHostKeys(ctx context.Context, teamID, appID string, keys []berth.HostKey) error {
	if len(keys) == 0 {
		return nil
	}
	if err := e.st.AddHostKeys(ctx, teamID, appID, keys); err != nil {
		return fmt.Errorf("record the host key trusted on first use: %w", err)
	}
	return nil
}

// keyType is the type of a public key in authorized_keys form.
func keyType(key string) string {
	t, _, _ := strings.Cut(key, " ")
	return t
}
