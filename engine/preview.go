package engine

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/store"
)

// Preview environments (see berth.Preview): a pull request's head runs as
// a child app of the app it targets. This file turns pull request events
// into previews, tears them down, posts their commit statuses and decides
// which secrets a preview's deployment gets.
//
// Everything slow or fallible happens on the job queue: deployments as
// usual, teardowns as "preview.teardown" jobs keyed by the child app (so a
// teardown runs after any deployment of it has ended), and commit status
// posts as "preview.status" jobs keyed by the preview (one at a time, each
// posting the preview's state when it runs, so a late retry never posts a
// stale state over a newer one).

// Job kinds of previews.
const (
	JobPreviewStatus   = "preview.status"
	JobPreviewTeardown = "preview.teardown"
)

// previewStuck is how long a preview may stay closing before the sweeper
// starts its teardown again.
const previewStuck = 15 * time.Minute

// previewJob is the payload of preview jobs. A status job without a
// preview (a pull request that got none) carries the status to post.
type previewJob struct {
	AppID   string              `json:"app"` // the parent
	Number  int                 `json:"number"`
	Preview string              `json:"preview,omitempty"`
	Status  *berth.CommitStatus `json:"status,omitempty"`
}

// PreviewResult is what a pull request event did: the outcome its webhook
// delivery is recorded with, and the reason in words for that record and
// for the caller.
type PreviewResult struct {
	// Outcome is deployed when a preview is deployed, redeployed or torn
	// down, coalesced when the deployment already queued for the preview
	// takes the new head, and ignored when nothing was done (previews off,
	// the limit reached, no domain, nothing to tear down…).
	Outcome berth.DeliveryOutcome
	Reason  string
}

// acted and ignored make the result of an event that did something, and of
// one that did nothing, from a sentence.
func acted(format string, args ...any) PreviewResult {
	return PreviewResult{Outcome: berth.DeliveryDeployed, Reason: fmt.Sprintf(format, args...)}
}

func ignored(format string, args ...any) PreviewResult {
	return PreviewResult{Outcome: berth.DeliveryIgnored, Reason: fmt.Sprintf(format, args...)}
}

// PullRequest acts on a pull request event of app: opened or updated, it
// deploys the head to the request's preview (creating it, within the
// app's limit); closed, it tears the preview down. The result says what
// was done, or why nothing was — previews off, the limit reached, no
// domain — for the webhook delivery's record; an error means the event
// could not be handled (a bad event, the store down).
func (e *Engine) PullRequest(ctx context.Context, app *berth.App, pr berth.PullRequest) (PreviewResult, error) {
	if err := pr.Validate(); err != nil {
		return PreviewResult{}, err
	}
	if err := berth.ValidRepoPath(pr.Repo); err != nil {
		return PreviewResult{}, err // it reaches the provider's API URL
	}
	if _, err := e.st.PreviewByChild(ctx, app.TeamID, app.ID); err == nil {
		return ignored("%s runs a preview itself: pull requests make previews of the app they target", app.Name), nil
	} else if !berth.IsKind(err, berth.NotFound) {
		return PreviewResult{}, fmt.Errorf("pull request #%d: %w", pr.Number, err)
	}
	existing, err := e.st.Preview(ctx, app.TeamID, app.ID, pr.Number)
	if err != nil && !berth.IsKind(err, berth.NotFound) {
		return PreviewResult{}, fmt.Errorf("pull request #%d: %w", pr.Number, err)
	}
	if pr.Action == berth.PullRequestClosed {
		if existing == nil {
			return ignored("pull request #%d has no preview: nothing to tear down", pr.Number), nil
		}
		how := "closed"
		if pr.Merged {
			how = "merged"
		}
		if err := e.closePreview(ctx, existing); err != nil {
			return PreviewResult{}, err
		}
		return acted("pull request #%d %s: tearing down its preview %s", pr.Number, how, existing.ChildApp), nil
	}
	set, err := e.st.PreviewSettings(ctx, app.TeamID, app.ID)
	if err != nil {
		return PreviewResult{}, fmt.Errorf("pull request #%d: %w", pr.Number, err)
	}
	if !set.Enabled {
		return ignored("previews are off for %s: nothing deployed for pull request #%d", app.Name, pr.Number), nil
	}
	if existing != nil {
		return e.updatePreview(ctx, app, set, existing, pr)
	}
	return e.openPreview(ctx, app, set, pr)
}

// refuse posts an error status for a pull request that gets no preview and
// returns the result that says why.
func (e *Engine) refuse(ctx context.Context, app *berth.App, pr berth.PullRequest, host, why string) (PreviewResult, error) {
	st := &berth.CommitStatus{Provider: pr.Provider, Repo: pr.Repo, SHA: pr.HeadSHA, State: berth.CommitError, Description: "No preview: " + why}
	if host != "" {
		st.TargetURL = e.previewURL(host)
	}
	e.queueStatus(ctx, app.TeamID, previewJob{AppID: app.ID, Number: pr.Number, Status: st})
	return ignored("no preview for pull request #%d: %s", pr.Number, why), nil
}

func (e *Engine) openPreview(ctx context.Context, app *berth.App, set *berth.PreviewSettings, pr berth.PullRequest) (PreviewResult, error) {
	if app.Source.Kind != berth.SourceGit {
		return e.refuse(ctx, app, pr, "", fmt.Sprintf("%s does not build from git", app.Name))
	}
	host, err := e.previewHost(ctx, app, pr.Number)
	if err != nil {
		return PreviewResult{}, err
	}
	if host == "" {
		return e.refuse(ctx, app, pr, "", fmt.Sprintf("%s has no domain (a preview is served at pr-%d.<the app's first domain>)", app.Name, pr.Number))
	}
	now := e.cfg.Now()
	child := &berth.App{ID: berth.NewID("app"), TeamID: app.TeamID, Name: berth.PreviewAppName(app.Name, pr.Number)}
	if why := followParent(child, app, pr); why != "" {
		return e.refuse(ctx, app, pr, host, why)
	}
	if err := checkApp(child); err != nil {
		return e.refuse(ctx, app, pr, host, berth.ErrorMessage(err))
	}
	p := &berth.Preview{
		TeamID: app.TeamID, AppID: app.ID, Number: pr.Number, Provider: pr.Provider, Repo: pr.Repo,
		Title: pr.Title, Author: pr.Author, HeadRef: pr.HeadRef, HeadSHA: pr.HeadSHA, Fork: pr.Fork,
		Status: berth.PreviewPending, StatusSHA: pr.HeadSHA, Host: host,
		CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(set.TTL),
	}
	err = e.st.CreatePreview(ctx, p, child, set.MaxPreviews)
	switch {
	case errors.Is(err, store.ErrPreviewLimit):
		return e.refuse(ctx, app, pr, host, fmt.Sprintf("preview limit reached (%s has %d previews; close one or raise the limit)", app.Name, set.MaxPreviews))
	case berth.IsKind(err, berth.Conflict):
		return e.refuse(ctx, app, pr, host, berth.ErrorMessage(err))
	case err != nil:
		return PreviewResult{}, fmt.Errorf("pull request #%d: %w", pr.Number, err)
	}
	e.log.Info("preview created", "app", app.ID, "preview", p.ID, "number", p.Number, "fork", p.Fork)
	if _, err := e.Deploy(ctx, child, DeployRequest{CreatedBy: createdBy(pr)}); err != nil {
		e.previewFailed(ctx, p, "could not be queued")
		return PreviewResult{}, fmt.Errorf("deploy preview of #%d: %w", pr.Number, err)
	}
	e.queueStatus(ctx, p.TeamID, previewJob{AppID: p.AppID, Number: p.Number, Preview: p.ID})
	return acted("deploying pull request #%d to %s (app %s)%s", pr.Number, e.previewURL(host), child.Name, forkNote(p, pr.HeadSHA)), nil
}

func (e *Engine) updatePreview(ctx context.Context, app *berth.App, set *berth.PreviewSettings, p *berth.Preview, pr berth.PullRequest) (PreviewResult, error) {
	if p.Status == berth.PreviewClosing {
		return ignored("the preview of pull request #%d is being torn down; push again once it is gone", pr.Number), nil
	}
	if p.HeadSHA == pr.HeadSHA && p.Fork == pr.Fork && p.Status != berth.PreviewFailed {
		return ignored("the preview of pull request #%d is already at %s", pr.Number, berth.ShortSHA(pr.HeadSHA)), nil
	}
	child, err := e.st.AppByID(ctx, app.TeamID, p.ChildAppID)
	if err != nil {
		return PreviewResult{}, fmt.Errorf("pull request #%d: %w", pr.Number, err)
	}
	next := *child
	if why := followParent(&next, app, pr); why != "" {
		return e.refuse(ctx, app, pr, p.Host, why)
	}
	if err := checkApp(&next); err != nil {
		return e.refuse(ctx, app, pr, p.Host, berth.ErrorMessage(err))
	}
	now := e.cfg.Now()
	p.Title, p.Author, p.HeadRef, p.HeadSHA, p.Fork = pr.Title, pr.Author, pr.HeadRef, pr.HeadSHA, pr.Fork
	p.UpdatedAt, p.ExpiresAt = now, now.Add(set.TTL)
	if err := e.st.UpdatePreviewHead(ctx, p); err != nil {
		if berth.IsKind(err, berth.Conflict) {
			return ignored("the preview of pull request #%d is being torn down; push again once it is gone", pr.Number), nil
		}
		return PreviewResult{}, fmt.Errorf("pull request #%d: %w", pr.Number, err)
	}
	next.UpdatedAt = now
	if err := e.st.UpdateApp(ctx, &next); err != nil {
		return PreviewResult{}, fmt.Errorf("pull request #%d: %w", pr.Number, err)
	}
	queued, err := e.redeploy(ctx, &next, createdBy(pr))
	if err != nil {
		e.previewFailed(ctx, p, "could not be queued")
		return PreviewResult{}, fmt.Errorf("deploy preview of #%d: %w", pr.Number, err)
	}
	e.queueStatus(ctx, p.TeamID, previewJob{AppID: p.AppID, Number: p.Number, Preview: p.ID})
	if queued {
		return PreviewResult{Outcome: berth.DeliveryCoalesced, Reason: fmt.Sprintf("pull request #%d moved to %s: the deployment already queued for its preview takes the new head%s",
			pr.Number, berth.ShortSHA(pr.HeadSHA), forkNote(p, pr.HeadSHA))}, nil
	}
	return acted("redeploying pull request #%d at %s to %s%s", pr.Number, berth.ShortSHA(pr.HeadSHA), e.previewURL(p.Host), forkNote(p, pr.HeadSHA)), nil
}

// redeploy queues a deployment of a preview's child app unless one is
// queued already: that one has not fetched yet and takes the newest head,
// so pushes in a burst make one deployment, not one each.
func (e *Engine) redeploy(ctx context.Context, child *berth.App, by string) (alreadyQueued bool, err error) {
	ds, err := e.st.Deployments(ctx, child.TeamID, child.ID, 20)
	if err != nil {
		return false, err
	}
	for _, d := range ds {
		if d.Status == berth.StatusQueued {
			return true, nil
		}
	}
	_, err = e.Deploy(ctx, child, DeployRequest{CreatedBy: by})
	return false, err
}

func createdBy(pr berth.PullRequest) string {
	if pr.Author != "" {
		return fmt.Sprintf("pull request #%d (%s)", pr.Number, pr.Author)
	}
	return fmt.Sprintf("pull request #%d", pr.Number)
}

func forkNote(p *berth.Preview, commit string) string {
	if p.Trusted(commit) {
		return ""
	}
	return "; from a fork: no secrets until a member approves this commit"
}

// followParent sets child's settings from its parent's and the pull
// request's head; it returns why that cannot be, or "".
func followParent(child, parent *berth.App, pr berth.PullRequest) string {
	src := berth.Source{Kind: berth.SourceGit, Git: parent.Source.Git, Ref: pr.FetchRef}
	if pr.FetchRef == "" {
		// Bitbucket has no pull request refs: a head is a branch of the
		// repository it lives in, the fork's for a fork.
		src.Ref = pr.HeadRef
		if pr.Fork {
			if !strings.HasPrefix(pr.HeadRepo, "https://") {
				return "the fork's repository URL is missing or not https"
			}
			src.Git = pr.HeadRepo
		}
	}
	child.Source = src
	child.ProjectID = parent.ProjectID
	child.Build = parent.Build
	child.Build.Args = maps.Clone(parent.Build.Args) // withheld from untrusted builds (see fetchAndBuild)
	child.Port, child.Resources, child.Health = parent.Port, parent.Resources, parent.Health
	child.Volumes = slices.Clone(parent.Volumes) // volumes of its own, removed with it
	child.Replicas = 1                           // a preview is for review, not for load
	return ""
}

// previewHost is the host of pull request n's preview: pr-<n>. before the
// app's first domain (the oldest that is not a wildcard), or "" when the
// app has none.
func (e *Engine) previewHost(ctx context.Context, app *berth.App, n int) (string, error) {
	doms, err := e.st.Domains(ctx, app.TeamID, app.ID)
	if err != nil {
		return "", fmt.Errorf("domains of %s: %w", app.Name, err)
	}
	doms = slices.DeleteFunc(doms, func(d berth.Domain) bool { return strings.HasPrefix(d.Host, "*.") })
	slices.SortStableFunc(doms, func(a, b berth.Domain) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.Host, b.Host))
	})
	for _, d := range doms {
		if h := berth.PreviewHost(n, d.Host); berth.ValidHost(h) == nil {
			return h, nil
		}
	}
	return "", nil
}

// previewURL is where a preview host is reached.
func (e *Engine) previewURL(host string) string {
	if e.cfg.PreviewURL != nil {
		return e.cfg.PreviewURL(host)
	}
	return "https://" + host
}

// Previews lists the previews of app, with their URLs.
func (e *Engine) Previews(ctx context.Context, app *berth.App) ([]berth.Preview, error) {
	ps, err := e.st.Previews(ctx, app.TeamID, app.ID)
	if err != nil {
		return nil, fmt.Errorf("previews of %s: %w", app.Name, err)
	}
	for i := range ps {
		ps[i].URL = e.previewURL(ps[i].Host)
	}
	return ps, nil
}

// Preview finds the preview of app's pull request n.
func (e *Engine) Preview(ctx context.Context, app *berth.App, n int) (*berth.Preview, error) {
	p, err := e.st.Preview(ctx, app.TeamID, app.ID, n)
	if berth.IsKind(err, berth.NotFound) {
		return nil, berth.E("find preview", berth.NotFound, "%s has no preview of pull request #%d", app.Name, n)
	}
	if err != nil {
		return nil, fmt.Errorf("preview #%d of %s: %w", n, app.Name, err)
	}
	p.URL = e.previewURL(p.Host)
	return p, nil
}

// PreviewOf returns the preview that app runs, or nil when it runs none.
func (e *Engine) PreviewOf(ctx context.Context, app *berth.App) (*berth.Preview, error) {
	p, err := e.st.PreviewByChild(ctx, app.TeamID, app.ID)
	if berth.IsKind(err, berth.NotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("preview of %s: %w", app.Name, err)
	}
	p.URL = e.previewURL(p.Host)
	return p, nil
}

// ApprovePreview lets the preview of a fork's pull request n have app's
// secrets: by approves its head commit, which is deployed again with them.
// Approval is of that one commit (see berth.Preview.Trusted): a later push
// is deployed without secrets until approved in turn. When sha is given it
// must be the head — what the member reviewed.
func (e *Engine) ApprovePreview(ctx context.Context, app *berth.App, n int, sha, by string) (*berth.Preview, error) {
	const op = "approve preview"
	p, err := e.Preview(ctx, app, n)
	if err != nil {
		return nil, err
	}
	switch {
	case !p.Fork:
		return nil, berth.E(op, berth.Conflict, "pull request #%d is not from a fork: its preview has %s's secrets already", n, app.Name)
	case p.Status == berth.PreviewClosing:
		return nil, berth.E(op, berth.Conflict, "the preview of pull request #%d is being torn down", n)
	case sha != "" && sha != p.HeadSHA:
		return nil, berth.E(op, berth.Conflict, "the head of pull request #%d is %s, not %s: review the new commits, then approve again", n, berth.ShortSHA(p.HeadSHA), berth.ShortSHA(sha))
	case p.ApprovedSHA == p.HeadSHA:
		return nil, berth.E(op, berth.Conflict, "commit %s of pull request #%d is approved already", berth.ShortSHA(p.HeadSHA), n)
	}
	if err := e.st.ApprovePreview(ctx, app.TeamID, p.ID, p.HeadSHA, by, e.cfg.Now()); err != nil {
		return nil, fmt.Errorf("%s #%d: %w", op, n, err)
	}
	child, err := e.st.AppByID(ctx, app.TeamID, p.ChildAppID)
	if err != nil {
		return nil, fmt.Errorf("%s #%d: %w", op, n, err)
	}
	if _, err := e.redeploy(ctx, child, by+" (approval)"); err != nil {
		return nil, fmt.Errorf("%s #%d: %w", op, n, err)
	}
	e.log.Info("preview approved", "app", app.ID, "preview", p.ID, "commit", p.HeadSHA, "by", by)
	e.queueStatus(ctx, p.TeamID, previewJob{AppID: p.AppID, Number: p.Number, Preview: p.ID})
	return e.Preview(ctx, app, n)
}

// DeletePreview tears down the preview of app's pull request n now, as
// closing the request would.
func (e *Engine) DeletePreview(ctx context.Context, app *berth.App, n int) (*berth.Preview, error) {
	p, err := e.Preview(ctx, app, n)
	if err != nil {
		return nil, err
	}
	if err := e.closePreview(ctx, p); err != nil {
		return nil, err
	}
	// Not read again: the teardown may be done already.
	return p, nil
}

// closePreview marks p closing, stops its deployments (a queued one at
// once, a running one at its next step) and queues its teardown, which
// runs once no deployment of the child runs any more.
func (e *Engine) closePreview(ctx context.Context, p *berth.Preview) error {
	now := e.cfg.Now()
	if err := e.st.ClosePreview(ctx, p.TeamID, p.ID, now); err != nil {
		return fmt.Errorf("close %s: %w", p, err)
	}
	p.Status = berth.PreviewClosing
	if child, err := e.st.AppByID(ctx, p.TeamID, p.ChildAppID); err == nil {
		ds, err := e.st.Deployments(ctx, p.TeamID, child.ID, 20)
		if err != nil {
			return fmt.Errorf("close %s: %w", p, err)
		}
		for _, d := range ds {
			if d.Status.Active() && d.Status != berth.StatusSwitching {
				if _, err := e.Cancel(ctx, child, d.ID); err != nil && !berth.IsKind(err, berth.Conflict) {
					e.log.Warn("cancel preview deployment", "preview", p.ID, "deployment", d.ID, "err", err)
				}
			}
		}
	}
	b, _ := json.Marshal(previewJob{AppID: p.AppID, Number: p.Number, Preview: p.ID})
	j := &berth.Job{Kind: JobPreviewTeardown, Key: p.ChildAppID, Payload: string(b), TeamID: p.TeamID,
		MaxAttempts: 5, Deadline: now.Add(previewStuck)}
	if err := e.q.Enqueue(ctx, j); err != nil {
		// The sweeper starts it again (the preview stays closing).
		return fmt.Errorf("close %s: %w", p, err)
	}
	e.log.Info("preview closing", "app", p.AppID, "preview", p.ID, "number", p.Number)
	return nil
}

// teardown is the handler of preview.teardown jobs: it removes everything
// of the preview — route, custom certificates, containers, volumes,
// images, and the child app with its domain, deployments, releases and the
// preview's row.
func (e *Engine) teardown(ctx context.Context, j *berth.Job) error {
	var pj previewJob
	if err := json.Unmarshal([]byte(j.Payload), &pj); err != nil {
		return berth.E("tear down preview", berth.Invalid, "bad job payload")
	}
	p, err := e.st.Preview(ctx, j.TeamID, pj.AppID, pj.Number)
	if berth.IsKind(err, berth.NotFound) || (err == nil && (p.ID != pj.Preview || p.Status != berth.PreviewClosing)) {
		return nil // gone already
	}
	if err != nil {
		return berth.Wrap("tear down preview", berth.Unavailable, err)
	}
	child, err := e.st.AppByID(ctx, p.TeamID, p.ChildAppID)
	if err != nil {
		return berth.Wrap("tear down preview", berth.Unavailable, err)
	}
	if err := e.removeApp(ctx, child, true); err != nil {
		return berth.Wrap("tear down preview", berth.Unavailable, err)
	}
	e.log.Info("preview torn down", "app", p.AppID, "preview", p.ID, "number", p.Number, "child", child.Name)
	return nil
}

// SweepPreviews tears down the previews whose time to live has passed
// since their last push, and starts again the teardowns that have not
// finished in a while. It reports how many previews it acted on.
func (e *Engine) SweepPreviews(ctx context.Context) (int, error) {
	now := e.cfg.Now()
	ps, err := e.st.PreviewsToSweep(ctx, now, now.Add(-previewStuck))
	if err != nil {
		return 0, fmt.Errorf("sweep previews: %w", err)
	}
	n := 0
	for i := range ps {
		p := &ps[i]
		if p.Status != berth.PreviewClosing {
			e.queueStatus(ctx, p.TeamID, previewJob{AppID: p.AppID, Number: p.Number, Status: &berth.CommitStatus{
				Provider: p.Provider, Repo: p.Repo, SHA: p.HeadSHA, State: berth.CommitError,
				Description: "Preview expired without a push since " + p.UpdatedAt.UTC().Format("2006-01-02") + ": push to deploy it again",
			}})
			e.log.Info("preview expired", "app", p.AppID, "preview", p.ID, "number", p.Number)
		}
		if err := e.closePreview(ctx, p); err != nil {
			e.log.Warn("sweep previews", "preview", p.ID, "err", err)
			continue
		}
		n++
	}
	return n, nil
}

// RunPreviewSweeper sweeps previews (see SweepPreviews) every interval
// until ctx ends.
func (e *Engine) RunPreviewSweeper(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := e.SweepPreviews(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("sweep previews", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// previewSettled records how a deployment of a preview's child ended and
// posts it, unless another deployment of the child is under way (it will
// settle the preview) or the preview is closing.
func (e *Engine) previewSettled(ctx context.Context, teamID, deploymentID string) {
	d, err := e.st.Deployment(ctx, teamID, deploymentID)
	if err != nil || d.Status.Active() {
		return
	}
	p, err := e.st.PreviewByChild(ctx, teamID, d.AppID)
	if err != nil {
		return // no preview (or the store is down: the status job never comes)
	}
	ds, err := e.st.Deployments(ctx, teamID, d.AppID, 20)
	if err != nil {
		return
	}
	for _, o := range ds {
		if o.ID != d.ID && o.Status.Active() {
			return
		}
	}
	status, msg := berth.PreviewLive, ""
	switch d.Status {
	case berth.StatusLive:
	case berth.StatusCancelled:
		status, msg = berth.PreviewFailed, "the deployment was cancelled"
	default:
		status, msg = berth.PreviewFailed, "the deployment failed"
		if stage := lastStage(d); stage != "" {
			msg += " while " + string(stage)
		}
	}
	sha := cmp.Or(d.Commit, p.HeadSHA)
	if err := e.st.SetPreviewStatus(ctx, teamID, p.ID, status, sha, msg, e.cfg.Now()); err != nil {
		if !berth.IsKind(err, berth.Conflict) {
			e.log.Warn("record preview status", "preview", p.ID, "err", err)
		}
		return
	}
	e.queueStatus(ctx, teamID, previewJob{AppID: p.AppID, Number: p.Number, Preview: p.ID})
}

// lastStage is the last stage a deployment entered.
func lastStage(d *berth.Deployment) berth.Status {
	if len(d.Stages) == 0 {
		return ""
	}
	return d.Stages[len(d.Stages)-1].Stage
}

// previewFailed records that a preview's deployment could not even start.
func (e *Engine) previewFailed(ctx context.Context, p *berth.Preview, msg string) {
	ctx = context.WithoutCancel(ctx)
	if err := e.st.SetPreviewStatus(ctx, p.TeamID, p.ID, berth.PreviewFailed, p.HeadSHA, msg, e.cfg.Now()); err == nil {
		e.queueStatus(ctx, p.TeamID, previewJob{AppID: p.AppID, Number: p.Number, Preview: p.ID})
	}
}

// queueStatus queues a status post. A failure to queue is logged: a
// status never holds up a deployment.
func (e *Engine) queueStatus(ctx context.Context, teamID string, pj previewJob) {
	b, err := json.Marshal(pj)
	if err != nil {
		return
	}
	key := "preview-status/" + pj.AppID + "/" + fmt.Sprint(pj.Number)
	j := &berth.Job{Kind: JobPreviewStatus, Key: key, Payload: string(b), TeamID: teamID,
		MaxAttempts: 5, Deadline: e.cfg.Now().Add(time.Hour)}
	if err := e.q.Enqueue(context.WithoutCancel(ctx), j); err != nil {
		e.log.Warn("queue commit status", "app", pj.AppID, "number", pj.Number, "err", err)
	}
}

// postStatus is the handler of preview.status jobs. It posts the preview's
// state as it is now (or the job's own status for a pull request without a
// preview) and records on the preview how that went. Only an unreachable
// or failing provider makes the job retry.
func (e *Engine) postStatus(ctx context.Context, j *berth.Job) error {
	var pj previewJob
	if err := json.Unmarshal([]byte(j.Payload), &pj); err != nil {
		return berth.E("post commit status", berth.Invalid, "bad job payload")
	}
	var p *berth.Preview
	st := pj.Status
	if pj.Preview != "" {
		got, err := e.st.Preview(ctx, j.TeamID, pj.AppID, pj.Number)
		if berth.IsKind(err, berth.NotFound) || (err == nil && got.ID != pj.Preview) {
			return nil // torn down since
		}
		if err != nil {
			return berth.Wrap("post commit status", berth.Unavailable, err)
		}
		p = got
		if st = e.commitStatus(p); st == nil {
			return nil
		}
	}
	if st == nil {
		return nil
	}
	set, err := e.st.PreviewSettings(ctx, j.TeamID, pj.AppID)
	if berth.IsKind(err, berth.NotFound) {
		return nil
	}
	if err != nil {
		return berth.Wrap("post commit status", berth.Unavailable, err)
	}
	if e.cfg.Statuses == nil {
		err = berth.E("post commit status", berth.Invalid, "this server posts no commit statuses")
	} else {
		err = e.cfg.Statuses.PostStatus(ctx, berth.StatusAPI{BaseURL: set.StatusAPI, Token: set.StatusToken}, *st)
	}
	log := e.log.With("app", pj.AppID, "number", pj.Number, "state", st.State, "commit", st.SHA)
	retry := berth.IsKind(err, berth.Unavailable) && j.Attempts < j.MaxAttempts
	switch {
	case err == nil:
		log.Info("commit status posted")
	case retry:
		log.Warn("post commit status: will retry", "err", err)
	default:
		log.Warn("post commit status", "err", err)
	}
	if p != nil {
		msg := ""
		if err != nil {
			msg = berth.ErrorMessage(err)
		}
		if rerr := e.st.RecordPreviewPost(context.WithoutCancel(ctx), p.TeamID, p.ID, e.cfg.Now(), msg); rerr != nil && !berth.IsKind(rerr, berth.NotFound) {
			log.Warn("record status post", "err", rerr)
		}
	}
	if retry {
		return err
	}
	return nil
}

// commitStatus is the status to post for a preview's state; nil while it
// is torn down.
func (e *Engine) commitStatus(p *berth.Preview) *berth.CommitStatus {
	st := &berth.CommitStatus{Provider: p.Provider, Repo: p.Repo, SHA: cmp.Or(p.StatusSHA, p.HeadSHA), TargetURL: e.previewURL(p.Host)}
	note := ""
	if !p.Trusted(st.SHA) {
		note = " (fork: no secrets until a member approves)"
	}
	switch p.Status {
	case berth.PreviewPending:
		st.State, st.Description = berth.CommitPending, "Deploying the preview"+note
	case berth.PreviewLive:
		st.State, st.Description = berth.CommitSuccess, "Preview live"+note
	case berth.PreviewFailed:
		st.State, st.Description = berth.CommitFailure, "Preview: "+p.Message
	default:
		return nil
	}
	return st
}

// previewOf returns the preview that app runs, or nil.
func (e *Engine) previewOf(ctx context.Context, app *berth.App) (*berth.Preview, error) {
	p, err := e.st.PreviewByChild(ctx, app.TeamID, app.ID)
	if berth.IsKind(err, berth.NotFound) {
		return nil, nil
	}
	return p, err
}

// previewEnv is the env of a deployment of preview p: the parent's env when
// trusted, with the preview env overrides on top.
func (e *Engine) previewEnv(ctx context.Context, p *berth.Preview, trusted bool) (map[string]string, error) {
	env := map[string]string{}
	if trusted {
		vars, err := e.st.Env(ctx, p.TeamID, p.AppID)
		if err != nil {
			return nil, fmt.Errorf("env of the parent: %w", err)
		}
		for _, v := range vars {
			env[v.Key] = v.Value
		}
	}
	set, err := e.st.PreviewSettings(ctx, p.TeamID, p.AppID)
	if err != nil {
		return nil, fmt.Errorf("preview settings: %w", err)
	}
	maps.Copy(env, set.Env)
	return env, nil
}
