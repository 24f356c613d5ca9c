package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/egress"
	"github.com/berthhq/berth/engine"
	"github.com/berthhq/berth/git"
)

// clock is a fake clock the test moves by hand.
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

// provider is a local fake of a Git provider's status API: it records
// every request and answers code.
type provider struct {
	mu    sync.Mutex
	posts []post
	code  int
	srv   *httptest.Server
}

type post struct {
	Path, Auth string
	Body       map[string]string
}

func newProvider(t *testing.T) *provider {
	p := &provider{code: http.StatusCreated}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body map[string]string
		_ = json.Unmarshal(b, &body)
		auth := r.Header.Get("Authorization")
		if auth == "" {
			auth = "PRIVATE-TOKEN " + r.Header.Get("PRIVATE-TOKEN")
		}
		p.mu.Lock()
		p.posts = append(p.posts, post{r.URL.EscapedPath(), auth, body})
		code := p.code
		p.mu.Unlock()
		w.WriteHeader(code)
		if code >= 400 {
			io.WriteString(w, `{"message":"Bad credentials"}`)
		}
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *provider) all() []post {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]post(nil), p.posts...)
}

// waitFor polls cond until it holds, for at most 20s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("still waiting after 20s for %s", what)
}

// waitPost waits for a post whose body has state and whose path holds sha.
func (p *provider) waitPost(t *testing.T, sha, state string) post {
	t.Helper()
	var found post
	waitFor(t, "a "+state+" status of "+sha[:8], func() bool {
		for _, q := range p.all() {
			if strings.Contains(q.Path, sha) && q.Body["state"] == state {
				found = q
				return true
			}
		}
		return false
	})
	return found
}

// previewFixture is the fixture's app "hello" (domain hello.example.com)
// with secrets (an env var and a build arg), a volume, previews on, and a
// fake GitHub.
type previewFixture struct {
	*fixture
	gh    *provider
	clock *clock
	mu    sync.Mutex
	heads map[string]string // fetch ref → the commit it points at
}

func newPreviewFixture(t *testing.T, tune func(*berth.PreviewSettings)) *previewFixture {
	t.Helper()
	gh := newProvider(t)
	c := &clock{now: time.Now()}
	x := newFixture(t, func(a *berth.App) {
		a.Build.Args = map[string]string{"NPM_TOKEN": "build-secret"}
		a.Volumes = []berth.Volume{{Name: "data", Path: "/data"}}
	}, func(cfg *engine.Config) {
		cfg.Statuses = git.NewStatuses(egress.Policy{AllowPrivate: true}, 0)
		cfg.Now = c.Now
	})
	px := &previewFixture{fixture: x, gh: gh, clock: c, heads: map[string]string{}}
	x.f.Source.SetCommit(func(url, ref string) string {
		px.mu.Lock()
		defer px.mu.Unlock()
		return px.heads[ref]
	})
	ctx := context.Background()
	must(t, x.st.SetEnv(ctx, x.app.TeamID, x.app.ID, map[string]string{"SECRET": "parent-secret", "DB": "parent-db"}))
	set := berth.DefaultPreviewSettings(x.app.TeamID, x.app.ID)
	set.Enabled, set.Env = true, map[string]string{"DB": "preview-db"}
	set.StatusAPI, set.StatusToken = gh.srv.URL, "gh-token"
	if tune != nil {
		tune(set)
	}
	must(t, x.st.SetPreviewSettings(ctx, set))
	return px
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func sha(c byte) string { return strings.Repeat(string(c), 40) }

// pr is pull request n of acme/hello at head, pushed to refs/pull/n/head.
func (x *previewFixture) pr(n int, head string, fork bool, action berth.PullRequestAction) berth.PullRequest {
	ref := fmt.Sprintf("refs/pull/%d/head", n)
	x.mu.Lock()
	x.heads[ref] = head
	x.mu.Unlock()
	return berth.PullRequest{Provider: berth.GitHub, Repo: "acme/hello", Number: n, Action: action, Title: "change",
		Author: "octocat", BaseRef: "main", HeadRef: fmt.Sprintf("feature-%d", n), HeadSHA: head, FetchRef: ref, Fork: fork}
}

func (x *previewFixture) event(pr berth.PullRequest) engine.PreviewResult {
	x.t.Helper()
	out, err := x.e.PullRequest(context.Background(), x.app, pr)
	if err != nil {
		x.t.Fatalf("pull request #%d %s: %v", pr.Number, pr.Action, err)
	}
	return out
}

func (x *previewFixture) preview(n int) *berth.Preview {
	x.t.Helper()
	p, err := x.e.Preview(context.Background(), x.app, n)
	if err != nil {
		x.t.Fatal(err)
	}
	return p
}

// waitPreview waits until preview n has status want and no deployment of
// its child runs.
func (x *previewFixture) waitPreview(n int, want berth.PreviewStatus) *berth.Preview {
	x.t.Helper()
	var p *berth.Preview
	waitFor(x.t, fmt.Sprintf("preview #%d %s", n, want), func() bool {
		got, err := x.e.Preview(context.Background(), x.app, n)
		if err != nil || got.Status != want {
			return false
		}
		ds, err := x.st.Deployments(context.Background(), x.app.TeamID, got.ChildAppID, 10)
		if err != nil {
			return false
		}
		for _, d := range ds {
			if d.Status.Active() {
				return false
			}
		}
		p = got
		return true
	})
	x.waitIdle()
	return p
}

// liveEnv is the env of the live release of preview n's app.
func (x *previewFixture) liveEnv(n int) map[string]string {
	x.t.Helper()
	ctx := context.Background()
	p := x.preview(n)
	d, err := x.st.LiveDeployment(ctx, x.app.TeamID, p.ChildAppID)
	must(x.t, err)
	rel, err := x.st.Release(ctx, x.app.TeamID, d.ReleaseID)
	must(x.t, err)
	return rel.Config.Env
}

// lastBuildArgs are the build args of the newest build.
func (x *previewFixture) lastBuildArgs() map[string]string {
	b := x.f.Builder.BuildLog()
	if len(b) == 0 {
		x.t.Fatal("no build")
	}
	return b[len(b)-1].Args
}

func TestPreviewOpenDeploysWithParentEnv(t *testing.T) {
	x := newPreviewFixture(t, nil)
	// The build waits until the pending status is out: a status job posts
	// the preview's state when it runs, so on a slow machine a deployment
	// live before the job ran would skip "pending" (rightly).
	block := make(chan struct{})
	x.f.Builder.SetBlock(block)
	out := x.event(x.pr(7, sha('a'), false, berth.PullRequestOpened))
	if out.Outcome != berth.DeliveryDeployed || !strings.Contains(out.Reason, "https://pr-7.hello.example.com") || !strings.Contains(out.Reason, "hello-pr-7") {
		t.Errorf("outcome %+v", out)
	}
	pending := x.gh.waitPost(t, sha('a'), "pending")
	x.f.Builder.SetBlock(nil)
	close(block)
	p := x.waitPreview(7, berth.PreviewLive)
	if p.ChildApp != "hello-pr-7" || p.Host != "pr-7.hello.example.com" || p.URL != "https://pr-7.hello.example.com" || p.StatusSHA != sha('a') {
		t.Errorf("preview %+v", p)
	}
	child, err := x.st.App(context.Background(), x.app.TeamID, "hello-pr-7")
	must(t, err)
	if child.Source.Git != x.app.Source.Git || child.Source.Ref != "refs/pull/7/head" || child.Replicas != 1 || child.ProjectID != x.app.ProjectID {
		t.Errorf("child app %+v", child)
	}
	if r, ok := x.f.Router.Route(child.ID); !ok || len(r.Hosts) != 1 || r.Hosts[0] != "pr-7.hello.example.com" || len(r.Targets) != 1 {
		t.Errorf("route %+v, %v", r, ok)
	}
	// The parent's route is untouched by its preview.
	if _, ok := x.f.Router.Route(x.app.ID); ok {
		t.Error("the parent, never deployed, has a route")
	}
	env := x.liveEnv(7)
	if env["SECRET"] != "parent-secret" || env["DB"] != "preview-db" {
		t.Errorf("preview env %v: want the parent's with the overrides on top", env)
	}
	if x.lastBuildArgs()["NPM_TOKEN"] != "build-secret" {
		t.Errorf("build args %v: want the parent's", x.lastBuildArgs())
	}
	if f := x.f.Source.FetchLog(); len(f) != 1 || f[0] != x.app.Source.Git+"@refs/pull/7/head" {
		t.Errorf("fetches %v", f)
	}
	// Pending when queued, success with the URL when live, to GitHub.
	live := x.gh.waitPost(t, sha('a'), "success")
	for _, q := range []post{pending, live} {
		if q.Path != "/repos/acme/hello/statuses/"+sha('a') || q.Auth != "Bearer gh-token" || q.Body["context"] != "berth/preview" {
			t.Errorf("status post %+v", q)
		}
	}
	if live.Body["target_url"] != "https://pr-7.hello.example.com" || live.Body["description"] != "Preview live" {
		t.Errorf("success post %+v", live)
	}
	if p := x.preview(7); p.PostedAt == nil || p.PostError != "" {
		t.Errorf("post record %+v", p)
	}
	// The preview app is listed under its parent, not among the team's apps.
	apps, err := x.st.Apps(context.Background(), x.app.TeamID)
	must(t, err)
	if len(apps) != 1 || apps[0].ID != x.app.ID {
		t.Errorf("apps %+v", apps)
	}
	// An event of the preview app itself makes nothing.
	if out, err := x.e.PullRequest(context.Background(), child, x.pr(8, sha('b'), false, berth.PullRequestOpened)); err != nil || out.Outcome != berth.DeliveryIgnored || !strings.Contains(out.Reason, "runs a preview itself") {
		t.Errorf("event of the child: %+v, %v", out, err)
	}
}

func TestPreviewForkGetsNoSecretsUntilApproved(t *testing.T) {
	x := newPreviewFixture(t, nil)
	ctx := context.Background()
	out := x.event(x.pr(9, sha('f'), true, berth.PullRequestOpened))
	if out.Outcome != berth.DeliveryDeployed || !strings.Contains(out.Reason, "no secrets until a member approves") {
		t.Errorf("outcome %+v", out)
	}
	p := x.waitPreview(9, berth.PreviewLive)
	if !p.Fork || p.ApprovedSHA != "" {
		t.Errorf("preview %+v", p)
	}
	if env := x.liveEnv(9); len(env) != 1 || env["DB"] != "preview-db" {
		t.Errorf("fork's env %v: want the overrides only", env)
	}
	if args := x.lastBuildArgs(); len(args) != 0 {
		t.Errorf("fork's build args %v: want none", args)
	}
	live := x.gh.waitPost(t, sha('f'), "success")
	if !strings.Contains(live.Body["description"], "fork: no secrets") {
		t.Errorf("status of an unapproved fork: %+v", live)
	}

	// Approval names the head: an older commit is refused.
	if _, err := x.e.ApprovePreview(ctx, x.app, 9, sha('0'), "alice"); !berth.IsKind(err, berth.Conflict) {
		t.Errorf("approving a commit that is not the head: %v", err)
	}
	got, err := x.e.ApprovePreview(ctx, x.app, 9, sha('f'), "alice")
	must(t, err)
	if got.ApprovedSHA != sha('f') || got.ApprovedBy != "alice" || got.Status != berth.PreviewPending {
		t.Errorf("approved %+v", got)
	}
	x.waitPreview(9, berth.PreviewLive)
	if env := x.liveEnv(9); env["SECRET"] != "parent-secret" || env["DB"] != "preview-db" {
		t.Errorf("approved fork's env %v", env)
	}
	if x.lastBuildArgs()["NPM_TOKEN"] != "build-secret" {
		t.Errorf("approved fork's build args %v", x.lastBuildArgs())
	}
	if _, err := x.e.ApprovePreview(ctx, x.app, 9, "", "alice"); !berth.IsKind(err, berth.Conflict) {
		t.Errorf("approving twice: %v", err)
	}

	// A new push is a new commit nobody approved: no secrets again.
	x.event(x.pr(9, sha('e'), true, berth.PullRequestUpdated))
	x.waitPreview(9, berth.PreviewLive)
	if env := x.liveEnv(9); env["SECRET"] != "" {
		t.Errorf("env after an unapproved push %v", env)
	}
	if args := x.lastBuildArgs(); len(args) != 0 {
		t.Errorf("build args after an unapproved push %v", args)
	}

	// The head moves between approval and fetch: the fetched commit is not
	// the approved one, so it gets no secrets.
	_, err = x.e.ApprovePreview(ctx, x.app, 9, sha('e'), "alice")
	must(t, err)
	x.waitPreview(9, berth.PreviewLive)
	x.mu.Lock()
	x.heads["refs/pull/9/head"] = sha('d') // pushed, the event not yet delivered
	x.mu.Unlock()
	child, err := x.st.AppByID(ctx, x.app.TeamID, x.preview(9).ChildAppID)
	must(t, err)
	d := x.fixture.deployApp(child)
	if d.Commit != sha('d') || d.Status != berth.StatusLive {
		t.Fatalf("deployment %+v", d)
	}
	if env := x.liveEnv(9); env["SECRET"] != "" {
		t.Errorf("a commit pushed after the approval got the secrets: %v", env)
	}
	if log := x.log(d); !strings.Contains(log, "is not approved") || strings.Contains(log, "parent-secret") {
		t.Errorf("log of the unapproved commit:\n%s", log)
	}
	// A request that is not from a fork needs no approval.
	x.event(x.pr(10, sha('c'), false, berth.PullRequestOpened))
	if _, err := x.e.ApprovePreview(ctx, x.app, 10, "", "alice"); !berth.IsKind(err, berth.Conflict) {
		t.Errorf("approving a request from the base repository: %v", err)
	}
}

// deployApp deploys app (not the fixture's) and waits for the end.
func (x *fixture) deployApp(app *berth.App) *berth.Deployment {
	x.t.Helper()
	d, err := x.e.Deploy(context.Background(), app, engine.DeployRequest{CreatedBy: "test"})
	if err != nil {
		x.t.Fatal(err)
	}
	var got *berth.Deployment
	waitFor(x.t, "the deployment to end", func() bool {
		got, err = x.st.Deployment(context.Background(), app.TeamID, d.ID)
		return err == nil && !got.Status.Active()
	})
	x.waitIdle()
	return got
}

func TestPreviewCapAndLimitStatus(t *testing.T) {
	x := newPreviewFixture(t, func(s *berth.PreviewSettings) { s.MaxPreviews = 2 })
	x.event(x.pr(1, sha('1'), false, berth.PullRequestOpened))
	x.event(x.pr(2, sha('2'), false, berth.PullRequestOpened))
	out := x.event(x.pr(3, sha('3'), false, berth.PullRequestOpened))
	if out.Outcome != berth.DeliveryIgnored || !strings.Contains(out.Reason, "no preview for pull request #3") || !strings.Contains(out.Reason, "preview limit reached") {
		t.Errorf("third preview's outcome %+v", out)
	}
	if _, err := x.e.Preview(context.Background(), x.app, 3); !berth.IsKind(err, berth.NotFound) {
		t.Errorf("#3 has a preview beyond the cap: %v", err)
	}
	errPost := x.gh.waitPost(t, sha('3'), "error")
	if !strings.Contains(errPost.Body["description"], "preview limit reached") || errPost.Auth != "Bearer gh-token" {
		t.Errorf("limit status %+v", errPost)
	}
	x.waitPreview(1, berth.PreviewLive)
	x.waitPreview(2, berth.PreviewLive)

	// Closing #1 frees a slot for #3's next push.
	if out := x.event(x.pr(1, sha('1'), false, berth.PullRequestClosed)); out.Outcome != berth.DeliveryDeployed || !strings.Contains(out.Reason, "tearing down") {
		t.Errorf("close outcome %+v", out)
	}
	x.waitGone(1)
	x.event(x.pr(3, sha('4'), false, berth.PullRequestUpdated))
	x.waitPreview(3, berth.PreviewLive)
}

// waitGone waits until preview n and its app are gone.
func (x *previewFixture) waitGone(n int) {
	x.t.Helper()
	waitFor(x.t, fmt.Sprintf("preview #%d to be torn down", n), func() bool {
		_, err := x.e.Preview(context.Background(), x.app, n)
		return berth.IsKind(err, berth.NotFound)
	})
	x.waitIdle()
}

func TestPreviewCloseFreesEverything(t *testing.T) {
	x := newPreviewFixture(t, nil)
	ctx := context.Background()
	x.event(x.pr(7, sha('a'), false, berth.PullRequestOpened))
	p := x.waitPreview(7, berth.PreviewLive)
	child, err := x.st.AppByID(ctx, x.app.TeamID, p.ChildAppID)
	must(t, err)
	childLabels := map[string]string{berth.LabelApp: child.ID}
	must(t, x.e.SetCertificate(ctx, child, p.Host, []byte("CERT"), []byte("KEY")))
	count := func() (cs, vols, imgs int) {
		c, _ := x.f.Runtime.Containers(ctx, childLabels)
		v, _ := x.f.Runtime.Volumes(ctx, childLabels)
		i, _ := x.f.Runtime.Images(ctx, childLabels)
		return len(c), len(v), len(i)
	}
	if cs, vols, imgs := count(); cs != 1 || vols != 1 || imgs != 1 {
		t.Fatalf("before close: %d containers, %d volumes, %d images; want 1 each", cs, vols, imgs)
	}
	// A redeploy in progress is cancelled by the close.
	block := make(chan struct{})
	x.f.Builder.SetBlock(block)
	x.event(x.pr(7, sha('b'), false, berth.PullRequestUpdated))
	waitFor(t, "the redeploy to build", func() bool { return len(x.f.Builder.BuildLog()) == 2 })

	before, err := x.st.Deployments(ctx, x.app.TeamID, child.ID, 0)
	must(t, err)
	if len(before) != 2 {
		t.Fatalf("%d deployments before the close, want 2", len(before))
	}
	merged := x.pr(7, sha('b'), false, berth.PullRequestClosed)
	merged.Merged = true
	if out := x.event(merged); out.Outcome != berth.DeliveryDeployed || !strings.Contains(out.Reason, "merged: tearing down its preview hello-pr-7") {
		t.Errorf("outcome %+v", out)
	}
	if got := x.preview(7); got.Status != berth.PreviewClosing {
		t.Errorf("status after close %s", got.Status)
	}
	// A push meanwhile does nothing.
	if out := x.event(x.pr(7, sha('c'), false, berth.PullRequestUpdated)); out.Outcome != berth.DeliveryIgnored || !strings.Contains(out.Reason, "being torn down") {
		t.Errorf("push while closing: %+v", out)
	}
	x.f.Builder.SetBlock(nil)
	close(block)
	x.waitGone(7)

	if cs, vols, imgs := count(); cs != 0 || vols != 0 || imgs != 0 {
		t.Errorf("after close: %d containers, %d volumes, %d images left", cs, vols, imgs)
	}
	if _, ok := x.f.Router.Route(child.ID); ok {
		t.Error("the route is left")
	}
	if x.f.Router.CustomCertificate(p.Host) != "" {
		t.Error("the custom certificate is left")
	}
	if _, err := x.st.AppByID(ctx, x.app.TeamID, child.ID); !berth.IsKind(err, berth.NotFound) {
		t.Errorf("the child app is left: %v", err)
	}
	for _, d := range before {
		if _, err := x.st.Deployment(ctx, x.app.TeamID, d.ID); !berth.IsKind(err, berth.NotFound) {
			t.Errorf("deployment #%d is left: %v", d.Number, err)
		}
	}
	// The host is free for anyone again.
	must(t, x.st.AddDomain(ctx, &berth.Domain{TeamID: x.app.TeamID, AppID: x.app.ID, Host: p.Host}))
	// The parent and its secrets are untouched.
	if env, err := x.st.Env(ctx, x.app.TeamID, x.app.ID); err != nil || len(env) != 2 {
		t.Errorf("parent env after the teardown: %v, %v", env, err)
	}
	// Closing again is fine.
	if out := x.event(merged); out.Outcome != berth.DeliveryIgnored || !strings.Contains(out.Reason, "has no preview") {
		t.Errorf("second close %+v", out)
	}
}

func TestPreviewUpdateRedeploysWithoutPilingUp(t *testing.T) {
	x := newPreviewFixture(t, nil)
	ctx := context.Background()
	x.event(x.pr(7, sha('a'), false, berth.PullRequestOpened))
	p := x.waitPreview(7, berth.PreviewLive)
	if out := x.event(x.pr(7, sha('a'), false, berth.PullRequestOpened)); out.Outcome != berth.DeliveryIgnored || !strings.Contains(out.Reason, "already at") {
		t.Errorf("the same head again: %+v", out)
	}
	// An hour later, a build in progress, and three pushes meanwhile: one
	// more deployment.
	x.clock.Add(time.Hour)
	block := make(chan struct{})
	x.f.Builder.SetBlock(block)
	x.event(x.pr(7, sha('b'), false, berth.PullRequestUpdated))
	waitFor(t, "the redeploy to build", func() bool { return len(x.f.Builder.BuildLog()) == 2 })
	x.event(x.pr(7, sha('c'), false, berth.PullRequestUpdated))
	out := x.event(x.pr(7, sha('d'), false, berth.PullRequestUpdated))
	if out.Outcome != berth.DeliveryCoalesced || !strings.Contains(out.Reason, "already queued") {
		t.Errorf("outcome of the third push %+v", out)
	}
	ds, err := x.st.Deployments(ctx, x.app.TeamID, p.ChildAppID, 0)
	must(t, err)
	if len(ds) != 3 {
		t.Errorf("%d deployments, want 3 (the first, the running one, one queued)", len(ds))
	}
	x.f.Builder.SetBlock(nil)
	close(block)
	got := x.waitPreview(7, berth.PreviewLive)
	if got.HeadSHA != sha('d') || got.StatusSHA != sha('d') {
		t.Errorf("preview after the pushes %+v", got)
	}
	x.gh.waitPost(t, sha('d'), "success")
	live, err := x.st.LiveDeployment(ctx, x.app.TeamID, p.ChildAppID)
	must(t, err)
	if live.Commit != sha('d') || live.Number != 3 {
		t.Errorf("live deployment #%d at %s, want #3 at the newest head", live.Number, live.Commit)
	}
	// The pushes moved the expiry an hour on.
	if !got.ExpiresAt.Equal(p.ExpiresAt.Add(time.Hour)) {
		t.Errorf("expiry %s, want %s (the last push + the TTL)", got.ExpiresAt, p.ExpiresAt.Add(time.Hour))
	}
}

func TestPreviewTTL(t *testing.T) {
	x := newPreviewFixture(t, func(s *berth.PreviewSettings) { s.TTL = 48 * time.Hour })
	ctx := context.Background()
	x.event(x.pr(7, sha('a'), false, berth.PullRequestOpened))
	x.waitPreview(7, berth.PreviewLive)
	x.clock.Add(47 * time.Hour)
	if n, err := x.e.SweepPreviews(ctx); err != nil || n != 0 {
		t.Fatalf("sweep before the TTL: %d, %v", n, err)
	}
	// A push restarts the clock.
	x.event(x.pr(7, sha('b'), false, berth.PullRequestUpdated))
	x.waitPreview(7, berth.PreviewLive)
	x.clock.Add(47 * time.Hour)
	if n, err := x.e.SweepPreviews(ctx); err != nil || n != 0 {
		t.Fatalf("sweep within the TTL of the last push: %d, %v", n, err)
	}
	x.clock.Add(2 * time.Hour)
	if n, err := x.e.SweepPreviews(ctx); err != nil || n != 1 {
		t.Fatalf("sweep after the TTL: %d, %v; want 1", n, err)
	}
	x.waitGone(7)
	expired := x.gh.waitPost(t, sha('b'), "error")
	if !strings.Contains(expired.Body["description"], "expired") {
		t.Errorf("expiry status %+v", expired)
	}
	if cs := x.f.Runtime.Running(); len(cs) != 0 {
		t.Errorf("%d containers run after the expiry", len(cs))
	}
	// Closing the request of an expired preview is fine.
	if out := x.event(x.pr(7, sha('b'), false, berth.PullRequestClosed)); out.Outcome != berth.DeliveryIgnored || !strings.Contains(out.Reason, "no preview") {
		t.Errorf("close after expiry: %+v", out)
	}
}

func TestPreviewRefusals(t *testing.T) {
	x := newPreviewFixture(t, nil)
	ctx := context.Background()
	// Previews off: nothing happens.
	set, err := x.st.PreviewSettings(ctx, x.app.TeamID, x.app.ID)
	must(t, err)
	set.Enabled = false
	must(t, x.st.SetPreviewSettings(ctx, set))
	if out := x.event(x.pr(1, sha('1'), false, berth.PullRequestOpened)); out.Outcome != berth.DeliveryIgnored || !strings.Contains(out.Reason, "previews are off") {
		t.Errorf("previews off: %+v", out)
	}
	set.Enabled = true
	must(t, x.st.SetPreviewSettings(ctx, set))
	// No domain: refused with a clear outcome and an error status.
	must(t, x.st.RemoveDomain(ctx, x.app.TeamID, x.app.ID, "hello.example.com"))
	out := x.event(x.pr(2, sha('2'), false, berth.PullRequestOpened))
	if out.Outcome != berth.DeliveryIgnored || !strings.Contains(out.Reason, "hello has no domain") {
		t.Errorf("no domain: %+v", out)
	}
	x.gh.waitPost(t, sha('2'), "error")
	// A bad event is an error, and nothing is stored.
	bad := x.pr(3, "not-a-sha", false, berth.PullRequestOpened)
	if _, err := x.e.PullRequest(ctx, x.app, bad); !berth.IsKind(err, berth.Invalid) {
		t.Errorf("bad event: %v", err)
	}
	// A Bitbucket fork needs an https repository URL.
	must(t, x.st.AddDomain(ctx, &berth.Domain{TeamID: x.app.TeamID, AppID: x.app.ID, Host: "hello.example.com"}))
	bb := x.pr(4, sha('4'), true, berth.PullRequestOpened)
	bb.Provider, bb.FetchRef, bb.HeadRepo = berth.Bitbucket, "", "ext::sh -c touch% /tmp/pwned"
	if out := x.event(bb); out.Outcome != berth.DeliveryIgnored || !strings.Contains(out.Reason, "not https") {
		t.Errorf("bitbucket fork with a hostile URL: %+v", out)
	}
	ps, err := x.e.Previews(ctx, x.app)
	must(t, err)
	if len(ps) != 0 {
		t.Errorf("previews %+v", ps)
	}
	// A Bitbucket fork deploys its branch from the fork's repository.
	bb.HeadRepo = "https://bitbucket.org/mallory/hello.git"
	x.event(bb)
	x.waitPreview(4, berth.PreviewLive)
	if f := x.f.Source.FetchLog(); len(f) != 1 || f[0] != "https://bitbucket.org/mallory/hello.git@feature-4" {
		t.Errorf("fetches %v", f)
	}
}

func TestPreviewStatusPerProvider(t *testing.T) {
	for _, c := range []struct {
		provider berth.Provider
		repo     string
		base     string
		path     string
		auth     string
		success  string
	}{
		{berth.GitHub, "acme/hello", "", "/repos/acme/hello/statuses/", "Bearer tok", "success"},
		{berth.GitLab, "acme/sub/hello", "/api/v4", "/api/v4/projects/acme%2Fsub%2Fhello/statuses/", "PRIVATE-TOKEN tok", "success"},
		{berth.Gitea, "acme/hello", "/api/v1", "/api/v1/repos/acme/hello/statuses/", "token tok", "success"},
		{berth.Bitbucket, "acme/hello", "/2.0", "/2.0/repositories/acme/hello/commit/", "Bearer tok", "SUCCESSFUL"},
	} {
		t.Run(string(c.provider), func(t *testing.T) {
			x := newPreviewFixture(t, func(s *berth.PreviewSettings) {
				s.StatusAPI, s.StatusToken = s.StatusAPI+c.base, "tok"
			})
			pr := x.pr(5, sha('5'), false, berth.PullRequestOpened)
			pr.Provider, pr.Repo = c.provider, c.repo
			if c.provider == berth.Bitbucket {
				pr.FetchRef = "" // the head branch is fetched
				x.mu.Lock()
				x.heads[pr.HeadRef] = sha('5')
				x.mu.Unlock()
			}
			x.event(pr)
			x.waitPreview(5, berth.PreviewLive)
			q := x.gh.waitPost(t, sha('5'), c.success)
			if !strings.HasPrefix(q.Path, c.path+sha('5')) || q.Auth != c.auth {
				t.Errorf("post %+v, want path %s… and auth %q", q, c.path, c.auth)
			}
		})
	}
}

func TestPreviewStatusFailureIsVisibleAndHarmless(t *testing.T) {
	x := newPreviewFixture(t, nil)
	x.gh.mu.Lock()
	x.gh.code = http.StatusUnauthorized
	x.gh.mu.Unlock()
	x.event(x.pr(7, sha('a'), false, berth.PullRequestOpened))
	x.waitPreview(7, berth.PreviewLive)
	var p *berth.Preview
	waitFor(t, "the failed post to be recorded", func() bool {
		p = x.preview(7)
		return strings.Contains(p.PostError, "refused the status token")
	})
	if strings.Contains(p.PostError, "gh-token") {
		t.Errorf("post error holds the token: %q", p.PostError)
	}
}

func TestPreviewFailedDeployment(t *testing.T) {
	x := newPreviewFixture(t, nil)
	x.f.Builder.Err = fmt.Errorf("compile error in main.go")
	x.event(x.pr(7, sha('a'), false, berth.PullRequestOpened))
	p := x.waitPreview(7, berth.PreviewFailed)
	if p.Message != "the deployment failed while building" {
		t.Errorf("message %q", p.Message)
	}
	q := x.gh.waitPost(t, sha('a'), "failure")
	if q.Body["description"] != "Preview: the deployment failed while building" {
		t.Errorf("failure post %+v: the reason stays in berth", q)
	}
	// The same head again retries a failed preview.
	x.f.Builder.Err = nil
	if out := x.event(x.pr(7, sha('a'), false, berth.PullRequestUpdated)); out.Outcome != berth.DeliveryDeployed || !strings.Contains(out.Reason, "redeploying") {
		t.Errorf("retry outcome %+v", out)
	}
	x.waitPreview(7, berth.PreviewLive)
}

func TestDeleteParentDeletesPreviews(t *testing.T) {
	x := newPreviewFixture(t, nil)
	ctx := context.Background()
	x.event(x.pr(7, sha('a'), false, berth.PullRequestOpened))
	p := x.waitPreview(7, berth.PreviewLive)
	must(t, x.e.DeleteApp(ctx, x.app, false))
	if _, err := x.st.AppByID(ctx, x.app.TeamID, p.ChildAppID); !berth.IsKind(err, berth.NotFound) {
		t.Errorf("the preview's app outlived its parent: %v", err)
	}
	if cs, _ := x.f.Runtime.Containers(ctx, map[string]string{berth.LabelApp: p.ChildAppID}); len(cs) != 0 {
		t.Errorf("%d containers of the preview left", len(cs))
	}
	if imgs, _ := x.f.Runtime.Images(ctx, map[string]string{berth.LabelApp: p.ChildAppID}); len(imgs) != 0 {
		t.Errorf("%d images of the preview left", len(imgs))
	}
}

// TestPreviewFetchCredentials: a preview fetched from its parent's own
// repository uses the parent's deploy key and token; a Bitbucket fork's
// head lives in another repository, which must never receive them.
func TestPreviewFetchCredentials(t *testing.T) {
	x := newPreviewFixture(t, nil)
	ctx := context.Background()
	if _, err := x.st.SetGitToken(ctx, x.app.TeamID, x.app.ID, "oauth2", fakeToken); err != nil {
		t.Fatal(err)
	}
	if _, err := x.st.SetDeployKey(ctx, x.app.TeamID, x.app.ID, []byte(fakePrivate), fakePublic); err != nil {
		t.Fatal(err)
	}
	x.event(x.pr(7, sha('a'), false, berth.PullRequestOpened))
	x.waitPreview(7, berth.PreviewLive)
	bb := x.pr(4, sha('4'), true, berth.PullRequestOpened)
	bb.Provider, bb.FetchRef, bb.HeadRepo = berth.Bitbucket, "", "https://bitbucket.org/mallory/hello.git"
	x.event(bb)
	x.waitPreview(4, berth.PreviewLive)

	fetches, auths := x.f.Source.FetchLog(), x.f.Source.SourceAuths()
	if len(fetches) != 2 || len(auths) != 2 {
		t.Fatalf("fetches %v", fetches)
	}
	for i, f := range fetches {
		a := auths[i]
		switch {
		case strings.HasPrefix(f, x.app.Source.Git+"@"):
			if a.Token != fakeToken || string(a.DeployKey) != fakePrivate {
				t.Errorf("fetch %s from the parent's repository got no parent credentials", f)
			}
		case strings.HasPrefix(f, "https://bitbucket.org/mallory/"):
			if a.Token != "" || a.DeployKey != nil {
				t.Errorf("fetch %s from a fork's repository got the parent's credentials", f)
			}
		default:
			t.Errorf("unexpected fetch %s", f)
		}
	}
}

// TestPreviewForkIsolated: an unapproved fork's preview runs on a network of
// its own that only the proxy joins, even after the proxy is replaced; an
// approved commit joins the shared network; the teardown removes the
// network.
func TestPreviewForkIsolated(t *testing.T) {
	x := newPreviewFixture(t, nil)
	ctx := context.Background()
	x.event(x.pr(9, sha('f'), true, berth.PullRequestOpened))
	child, err := x.st.AppByID(ctx, x.app.TeamID, x.waitPreview(9, berth.PreviewLive).ChildAppID)
	must(t, err)
	private := "berth-" + child.ID
	live := func() (network string, isolated bool) {
		t.Helper()
		st, err := x.e.Status(ctx, child)
		must(t, err)
		if len(st.Containers) != 1 || st.Release == nil {
			t.Fatalf("status of the preview: %d containers, release %v", len(st.Containers), st.Release)
		}
		return x.f.Runtime.NetworkOf(st.Containers[0].ID), st.Release.Config.Isolated
	}
	if net, isolated := live(); net != private || !isolated {
		t.Fatalf("unapproved fork runs on %q (isolated %v), want %q", net, isolated, private)
	}
	if !x.f.Runtime.ProxyOn(private) {
		t.Fatal("the proxy is not connected to the preview's network")
	}
	// A proxy started afresh is on the shared network only; the server
	// connects it again.
	must(t, x.f.Runtime.Disconnect(ctx, private, map[string]string{berth.LabelRole: "proxy"}))
	must(t, x.e.ConnectProxy(ctx))
	if !x.f.Runtime.ProxyOn(private) {
		t.Fatal("ConnectProxy left the preview's network out")
	}

	_, err = x.e.ApprovePreview(ctx, x.app, 9, sha('f'), "alice")
	must(t, err)
	waitFor(t, "the approved commit to go live", func() bool {
		st, err := x.e.Status(ctx, child)
		return err == nil && st.Release != nil && !st.Release.Config.Isolated && len(st.Containers) == 1
	})
	if net, _ := live(); net != "berth" {
		t.Errorf("approved fork runs on %q, want the shared network", net)
	}

	x.event(x.pr(9, sha('f'), true, berth.PullRequestClosed))
	x.waitGone(9)
	if nets, _ := x.f.Runtime.Networks(ctx, map[string]string{berth.LabelRole: "network"}); len(nets) != 0 {
		t.Errorf("networks left after the teardown: %v", nets)
	}

	// A request from the base repository never gets a network of its own.
	x.event(x.pr(10, sha('c'), false, berth.PullRequestOpened))
	child, err = x.st.AppByID(ctx, x.app.TeamID, x.waitPreview(10, berth.PreviewLive).ChildAppID)
	must(t, err)
	if net, isolated := live(); net != "berth" || isolated {
		t.Errorf("a same-repository preview runs on %q (isolated %v), want the shared network", net, isolated)
	}
}
