package api

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/git/gittest"
)

// remoteURL is the hosted remote of app with token as the password, as a
// user would add it (git remote add berth URL).
func (e *testEnv) remoteURL(app, token string) string {
	u, err := url.Parse(e.srv.URL)
	if err != nil {
		e.t.Fatal(err)
	}
	u.User = url.UserPassword("git", token)
	u.Path = "/git/" + app + ".git"
	return u.String()
}

// pushApp creates a push app deploying branch (default main).
func (e *testEnv) pushApp(name, branch string) berth.App {
	e.t.Helper()
	src := map[string]any{"kind": "push"}
	if branch != "" {
		src["ref"] = branch
	}
	return e.createApp(map[string]any{"name": name, "source": src})
}

// appRepo is a working repository whose commit builds (the fake builder
// wants a Dockerfile).
func appRepo(t *testing.T) *gittest.Repo {
	r := gittest.NewRepo(t)
	r.Write("Dockerfile", "FROM scratch\n")
	r.Write("app/main.txt", "hello\n")
	r.Commit("first")
	return r
}

func (e *testEnv) lastAudit(action string) *berth.AuditEvent {
	e.t.Helper()
	var last *berth.AuditEvent
	team := e.principal(e.tokens[berth.ScopeAdmin]).Team.ID
	if err := e.st.AuditEvents(context.Background(), team, berth.AuditFilter{Action: action, Limit: 1}, func(ev *berth.AuditEvent) error {
		last = ev
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	if last == nil {
		e.t.Fatalf("no %s audit event", action)
	}
	return last
}

// TestPushDeploys pushes with the real git client to a push app: the
// deployment's log reaches the pusher in order, the deployment records the
// commit, a broken commit fails git push and leaves the branch and the live
// release where they were, other branches and tags are stored without
// deploying, the deploying branch cannot be deleted, and redeploy and
// rollback work from the hosted repository.
func TestPushDeploys(t *testing.T) {
	e := newEnv(t)
	e.pushApp("web", "")
	deployer := e.tokens[berth.ScopeDeploy]
	remote := e.remoteURL("web", deployer)
	r := appRepo(t)
	first := r.Head()

	_, stderr, err := r.Try(nil, "push", remote, "main")
	if err != nil {
		t.Fatalf("push: %v\n%s", err, stderr)
	}
	if !gittest.InOrder(stderr,
		"remote: berth: deployment #1 of web: commit "+first[:12],
		"remote: ==> commit "+first+", pushed to main",
		"remote: ==> 2 files",
		"remote: ==> building",
		"remote: Successfully tagged",
		"remote: ==> release v1",
		"remote: ==> live",
		"remote: berth: deployment #1 is live; main is now at "+first[:12],
		"* [new branch]      main -> main") {
		t.Errorf("push output lacks the deployment's log in order:\n%s", stderr)
	}
	ds := e.deployments("web")
	if len(ds) != 1 || ds[0].Status != berth.StatusLive || ds[0].Commit != first || ds[0].Ref != "main" || ds[0].CreatedBy != e.principal(deployer).Name() {
		t.Fatalf("deployments after the push: %+v", ds)
	}
	if got := r.RemoteHead(remote, "main"); got != first {
		t.Errorf("remote main = %q, want %s", got, first)
	}
	if ev := e.lastAudit("app.push"); ev.Outcome != berth.OutcomeSuccess || ev.Target != "app=web ref=refs/heads/main commit="+first || !strings.Contains(ev.Detail, "#1 live") {
		t.Errorf("audit event of the push: %+v", ev)
	}

	// A broken commit: the build fails, git push fails, nothing moves.
	r.Git("rm", "-q", "Dockerfile")
	broken := r.Commit("no Dockerfile")
	_, stderr, err = r.Try(nil, "push", remote, "main")
	if err == nil {
		t.Fatalf("a push whose deployment failed succeeded:\n%s", stderr)
	}
	for _, want := range []string{
		"remote: ==> deploy failed: build: no Dockerfile in the build context",
		"remote: berth: deployment #2 failed",
		"remote: berth: push refused: main stays at " + first[:12],
		"! [remote rejected] main -> main (pre-receive hook declined)",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("failed push output lacks %q:\n%s", want, stderr)
		}
	}
	if got := r.RemoteHead(remote, "main"); got != first {
		t.Errorf("remote main = %q after a failed deploy, want %s", got, first)
	}
	st := decode[struct {
		Live *berth.Deployment `json:"live"`
	}](t, e.do(e.tokens[berth.ScopeRead], "GET", "/api/v1/apps/web/status", nil), http.StatusOK)
	if st.Live == nil || st.Live.Number != 1 {
		t.Errorf("live deployment after the failed push: %+v", st.Live)
	}
	if ev := e.lastAudit("app.push"); ev.Outcome != berth.OutcomeFailed || !strings.Contains(ev.Target, broken) {
		t.Errorf("audit event of the failed push: %+v", ev)
	}

	// Other branches and tags are stored, not deployed; main cannot go.
	r.Git("tag", "v1", first)
	if _, stderr, err := r.Try(nil, "push", remote, "HEAD:refs/heads/feature", "v1"); err != nil ||
		!strings.Contains(stderr, "remote: berth: refs/heads/feature stored without deploying: only pushes to main deploy web") {
		t.Errorf("push of another branch and a tag: %v\n%s", err, stderr)
	}
	if got := r.RemoteHead(remote, "feature"); got != broken {
		t.Errorf("remote feature = %q, want %s", got, broken)
	}
	if _, stderr, err := r.Try(nil, "push", remote, ":main"); err == nil || !strings.Contains(stderr, "remote: berth: push refused: main deploys app web: it cannot be deleted") {
		t.Errorf("delete main: %v\n%s", err, stderr)
	}
	if _, stderr, err := r.Try(nil, "push", remote, "HEAD:refs/notes/x"); err == nil || !strings.Contains(stderr, "only branches and tags") {
		t.Errorf("push of refs/notes: %v\n%s", err, stderr)
	}
	if n := len(e.deployments("web")); n != 2 {
		t.Errorf("%d deployments after pushes that deploy nothing, want 2", n)
	}

	// A forced push that goes live moves main backwards and forwards.
	r.Git("reset", "-q", "--hard", first)
	r.Write("app/main.txt", "second\n")
	second := r.Commit("second")
	if _, stderr, err := r.Try(nil, "push", "--force", remote, "main"); err != nil {
		t.Fatalf("forced push: %v\n%s", err, stderr)
	}
	if got := r.RemoteHead(remote, "main"); got != second {
		t.Errorf("remote main = %q after a forced push, want %s", got, second)
	}

	// Redeploy: the newest commit of main, from the hosted repository; a
	// ref names a pushed tag or commit.
	d := decode[berth.Deployment](t, e.do(deployer, "POST", "/api/v1/apps/web/deployments", nil), http.StatusAccepted)
	if d = *e.wait("web", d.ID, berth.StatusLive); d.Commit != second {
		t.Errorf("redeploy commit %s, want %s", d.Commit, second)
	}
	d = decode[berth.Deployment](t, e.do(deployer, "POST", "/api/v1/apps/web/deployments", map[string]string{"ref": "v1"}), http.StatusAccepted)
	if d = *e.wait("web", d.ID, berth.StatusLive); d.Commit != first || d.Ref != "v1" {
		t.Errorf("deploy of tag v1: commit %s ref %s, want %s", d.Commit, d.Ref, first)
	}
	if r := e.do(deployer, "POST", "/api/v1/apps/web/deployments", map[string]string{"ref": "nope"}); r.status != http.StatusBadRequest {
		t.Errorf("deploy of a ref never pushed: %d %s", r.status, r.body)
	}
	if r := e.do(deployer, "POST", "/api/v1/apps/web/deployments", "x", "Content-Type", "application/x-tar"); r.status != http.StatusBadRequest {
		t.Errorf("upload to a push app: %d %s", r.status, r.body)
	}
	d = decode[berth.Deployment](t, e.do(deployer, "POST", "/api/v1/apps/web/rollback", map[string]string{}), http.StatusAccepted)
	if d = *e.wait("web", d.ID, berth.StatusLive); d.Commit != second {
		t.Errorf("rollback went to commit %s, want %s", d.Commit, second)
	}

	// Clone from berth with a read token: the deployed code comes back.
	dst := filepath.Join(t.TempDir(), "clone")
	if _, stderr, err := r.Try(nil, "clone", "-q", e.remoteURL("web", e.tokens[berth.ScopeRead]), dst); err != nil {
		t.Fatalf("clone: %v\n%s", err, stderr)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "app", "main.txt")); err != nil || string(b) != "second\n" {
		t.Errorf("cloned main.txt = %q, %v", b, err)
	}

	// A fresh app with nothing pushed has nothing to redeploy.
	e.pushApp("empty", "prod")
	if r := e.do(deployer, "POST", "/api/v1/apps/empty/deployments", nil); r.status != http.StatusConflict || !strings.Contains(string(r.body), "nothing has been pushed to prod") {
		t.Errorf("redeploy before any push: %d %s", r.status, r.body)
	}
	// Deleting the app deletes its repository.
	repo, _ := e.api.repos.Path(decode[berth.App](t, e.do(deployer, "GET", "/api/v1/apps/web", nil), http.StatusOK).ID)
	if _, err := os.Stat(repo); err != nil {
		t.Fatalf("repository: %v", err)
	}
	if r := e.do(e.tokens[berth.ScopeWrite], "DELETE", "/api/v1/apps/web", nil); r.status != http.StatusNoContent {
		t.Fatalf("delete app: %d %s", r.status, r.body)
	}
	if _, err := os.Stat(repo); !os.IsNotExist(err) {
		t.Errorf("the repository of a deleted app is still there: %v", err)
	}
}

// TestPushRefusals checks who may push where, and that a refused push
// changes nothing: a wrong token (git reports failed authentication), a
// read-only token, another team's token (not found, as a missing app), an
// app that does not deploy from pushes, a push while another runs.
func TestPushRefusals(t *testing.T) {
	e := newEnv(t)
	a := e.pushApp("web", "")
	e.createApp(gitApp("fromgit"))
	r := appRepo(t)
	cases := []struct {
		name, url string
		want      []string
	}{
		{"wrong token", e.remoteURL("web", "berth_"+strings.Repeat("a", 52)), []string{"remote: berth: invalid token", "Authentication failed"}},
		{"no token", strings.Replace(e.remoteURL("web", "x"), "git:x@", "", 1), []string{"could not read Username"}},
		{"read token", e.remoteURL("web", e.tokens[berth.ScopeRead]), []string{`remote: berth: permission "deploy" needed to push`, "403"}},
		{"other team", e.remoteURL("web", e.teamB), []string{`remote: berth: no app named "web"`, "not found"}},
		{"missing app", e.remoteURL("ghost", e.tokens[berth.ScopeDeploy]), []string{`remote: berth: no app named "ghost"`, "not found"}},
		{"git app", e.remoteURL("fromgit", e.tokens[berth.ScopeDeploy]), []string{"remote: berth: app fromgit deploys from the git repository https://git.example.com/fromgit.git, not from git push", "409"}},
	}
	for _, c := range cases {
		_, stderr, err := r.Try(nil, "push", c.url, "main")
		if err == nil {
			t.Errorf("%s: push succeeded", c.name)
		}
		for _, w := range c.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%s: output lacks %q:\n%s", c.name, w, stderr)
			}
		}
	}
	// Another team's app answers exactly like a missing one.
	other := e.do(e.teamB, "GET", "/git/web.git/info/refs?service=git-receive-pack", nil)
	missing := e.do(e.teamB, "GET", "/git/ghost.git/info/refs?service=git-receive-pack", nil)
	if other.status != http.StatusNotFound || strings.ReplaceAll(string(missing.body), "ghost", "web") != string(other.body) {
		t.Errorf("other team's app: %d %q; missing app: %d %q", other.status, other.body, missing.status, missing.body)
	}

	// One push per app at a time: the second is told who pushes.
	if _, ok := e.api.pushes.lock(a.ID, "alice"); !ok {
		t.Fatal("lock")
	}
	_, stderr, err := r.Try(nil, "push", e.remoteURL("web", e.tokens[berth.ScopeDeploy]), "main")
	if err == nil || !strings.Contains(stderr, "remote: berth: alice is pushing to web right now: one push per app at a time") {
		t.Errorf("concurrent push: %v\n%s", err, stderr)
	}
	if r := e.do(e.tokens[berth.ScopeWrite], "DELETE", "/api/v1/apps/web", nil); r.status != http.StatusConflict {
		t.Errorf("delete during a push: %d %s", r.status, r.body)
	}
	e.api.pushes.unlock(a.ID)

	if ds := e.deployments("web"); len(ds) != 0 {
		t.Errorf("refused pushes made deployments: %+v", ds)
	}
	if e.api.repos.Exists(a.ID) {
		if _, err := e.api.repos.Resolve(context.Background(), a.ID, "main"); err == nil {
			t.Error("a refused push created main")
		}
	}
	// The audit log has the refused pushes, with their outcome.
	ev := e.lastAudit("app.push")
	if ev.Outcome != berth.OutcomeFailed || ev.Status != http.StatusConflict || ev.ActorID == "" {
		t.Errorf("audit event of the concurrent push: %+v", ev)
	}
}

// TestPushLimits checks the size limit of a push, the rate limit of the
// git routes and the answers to malformed requests: each is refused with a
// status and a text/plain reason, and leaves no ref, deployment or
// quarantine behind.
func TestPushLimits(t *testing.T) {
	e := newEnv(t)
	a := e.pushApp("web", "")
	deployer := e.tokens[berth.ScopeDeploy]
	r := appRepo(t)
	big := make([]byte, 256<<10)
	rand.Read(big)
	r.Write("big.bin", string(big))
	r.Commit("big")

	e.api.maxPush = 64 << 10
	_, stderr, err := r.Try(nil, "push", e.remoteURL("web", deployer), "main")
	if err == nil || !strings.Contains(stderr, "413") {
		t.Errorf("push over the size limit: %v\n%s", err, stderr)
	}
	if ds := e.deployments("web"); len(ds) != 0 {
		t.Errorf("a push over the limit deployed: %+v", ds)
	}
	if _, err := e.api.repos.Resolve(context.Background(), a.ID, "main"); err == nil {
		t.Error("a push over the limit created main")
	}
	dir, _ := e.api.repos.Path(a.ID)
	if entries, _ := os.ReadDir(filepath.Join(dir, "objects")); len(entries) > 2 { // info, pack
		t.Errorf("objects left by a refused push: %v", entries)
	}
	e.api.maxPush = DefaultMaxPushBody

	// Malformed requests: 400 with a reason git can show.
	raw := func(method, path, ctype string, body io.Reader, headers ...string) response {
		t.Helper()
		req, err := http.NewRequest(method, e.srv.URL+path, body)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("git", deployer)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return response{status: resp.StatusCode, header: resp.Header, body: b}
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("0000"))
	zw.Close()
	for _, c := range []struct {
		name   string
		resp   response
		status int
		want   string
	}{
		{"dumb protocol", raw("GET", "/git/web.git/info/refs", "", nil), 400, "smart HTTP protocol only"},
		{"unknown service", raw("GET", "/git/web.git/info/refs?service=git-upload-archive", "", nil), 400, "smart HTTP protocol only"},
		{"wrong media type", raw("POST", "/git/web.git/git-receive-pack", "application/json", strings.NewReader("{}")), 400, "application/x-git-receive-pack-request"},
		{"garbage body", raw("POST", "/git/web.git/git-receive-pack", "application/x-git-receive-pack-request", strings.NewReader("garbage")), 400, "git receive-pack"},
		{"bad gzip", raw("POST", "/git/web.git/git-receive-pack", "application/x-git-receive-pack-request", strings.NewReader("not gzip"), "Content-Encoding", "gzip"), 400, "not valid gzip"},
		{"unknown encoding", raw("POST", "/git/web.git/git-upload-pack", "application/x-git-upload-pack-request", strings.NewReader("x"), "Content-Encoding", "br"), 400, "Content-Encoding"},
		{"hostile protocol", raw("GET", "/git/web.git/info/refs?service=git-upload-pack", "", nil, "Git-Protocol", "version=2;touch /tmp/x"), 400, "Git-Protocol"},
	} {
		if c.resp.status != c.status || !strings.Contains(string(c.resp.body), c.want) || !strings.HasPrefix(c.resp.header.Get("Content-Type"), "text/plain") {
			t.Errorf("%s: %d %q (%s), want %d with %q in text/plain", c.name, c.resp.status, c.resp.body, c.resp.header.Get("Content-Type"), c.status, c.want)
		}
	}
	// git's probe before a large push ("0000": no command) changes
	// nothing and is not audited as a push.
	pushes := func() int {
		n := 0
		team := e.principal(e.tokens[berth.ScopeAdmin]).Team.ID
		e.st.AuditEvents(context.Background(), team, berth.AuditFilter{Action: "app.push"}, func(*berth.AuditEvent) error { n++; return nil })
		return n
	}
	before := pushes()
	if resp := raw("POST", "/git/web.git/git-receive-pack", "application/x-git-receive-pack-request", strings.NewReader("0000")); resp.status != http.StatusOK {
		t.Errorf("probe: %d %q", resp.status, resp.body)
	}
	if pushes() != before {
		t.Error("git's probe was audited as a push")
	}
	e.api.maxPush = 1024
	if resp := raw("POST", "/git/web.git/git-receive-pack", "application/x-git-receive-pack-request", bytes.NewReader(make([]byte, 4096))); resp.status != http.StatusRequestEntityTooLarge || !strings.Contains(string(resp.body), "larger than this server's limit of 1024 bytes") {
		t.Errorf("declared too large: %d %q", resp.status, resp.body)
	}
	e.api.maxPush = DefaultMaxPushBody
	if ds := e.deployments("web"); len(ds) != 0 {
		t.Errorf("malformed requests deployed: %+v", ds)
	}

	// Rate limit: per client address, then 429 with Retry-After.
	e.api.gitLimiter, e.api.gitRate = newRateLimiter("git", time.Minute), 3
	var last response
	for range 4 {
		last = raw("GET", "/git/web.git/info/refs?service=git-upload-pack", "", nil)
	}
	if last.status != http.StatusTooManyRequests || last.header.Get("Retry-After") == "" || !strings.Contains(string(last.body), "too many git requests") {
		t.Errorf("4th request of 3 a minute: %d %q %v", last.status, last.body, last.header)
	}
	_, stderr, err = r.Try(nil, "ls-remote", e.remoteURL("web", deployer))
	if err == nil || !strings.Contains(stderr, "remote: berth: too many git requests") {
		t.Errorf("git past the rate limit: %v\n%s", err, stderr)
	}
}

// TestPushInterrupted interrupts git push while its deployment builds: the
// deployment is cancelled, the branch does not move, nothing of the push
// stays (quarantine, lock), and the next push deploys.
func TestPushInterrupted(t *testing.T) {
	e := newEnv(t)
	a := e.pushApp("web", "")
	remote := e.remoteURL("web", e.tokens[berth.ScopeDeploy])
	r := appRepo(t)
	block := make(chan struct{})
	e.fakes.Builder.Block = block

	cmd := r.Command(nil, "push", remote, "main")
	// As a terminal's Ctrl-C does: the whole process group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	var d berth.Deployment
	for {
		if ds := e.deployments("web"); len(ds) == 1 && ds[0].Status == berth.StatusBuilding {
			d = ds[0]
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no deployment building; push output:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	if err := cmd.Wait(); err == nil {
		t.Error("an interrupted push succeeded")
	}
	for {
		_, busy := e.api.pushes.holder(a.ID)
		got := e.deployments("web")[0]
		if !busy && !got.Status.Active() {
			if got.ID != d.ID || got.Status != berth.StatusCancelled {
				t.Errorf("deployment of the interrupted push: #%d %s (%s), want cancelled", got.Number, got.Status, got.Error)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the interruption: push lock held %v, deployment %s", busy, got.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := e.api.repos.Resolve(context.Background(), a.ID, "main"); err == nil {
		t.Error("an interrupted push created main")
	}
	dir, _ := e.api.repos.Path(a.ID)
	entries, _ := os.ReadDir(filepath.Join(dir, "objects"))
	for _, en := range entries {
		if strings.HasPrefix(en.Name(), "tmp_objdir") {
			t.Errorf("quarantine of the interrupted push left: %s", en.Name())
		}
	}
	if ev := e.lastAudit("app.push"); ev.Outcome != berth.OutcomeFailed || !strings.Contains(ev.Detail, "interrupted") {
		t.Errorf("audit event of the interrupted push: %+v", ev)
	}

	close(block)
	if _, stderr, err := r.Try(nil, "push", remote, "main"); err != nil || !strings.Contains(stderr, "deployment #2 is live") {
		t.Errorf("push after the interrupted one: %v\n%s", err, stderr)
	}
}

// TestGitRouteTable checks the git routes' declarations, and walks them as
// an anonymous caller, a viewer, another team's owner and a member
// narrowed to another project (like TestRouteWalk for the API).
func TestGitRouteTable(t *testing.T) {
	seen := map[string]bool{}
	for _, rt := range gitRoutes() {
		key := rt.method + " " + rt.pattern
		switch {
		case !berth.ValidScope(rt.scope):
			t.Errorf("%s: scope %q", key, rt.scope)
		case !strings.HasPrefix(rt.pattern, "/git/{app}/"):
			t.Errorf("%s: not under /git/{app}/", key)
		case seen[key]:
			t.Errorf("%s: listed twice", key)
		case strings.HasSuffix(rt.pattern, "receive-pack") && (rt.scope != berth.ScopeDeploy || rt.action != "app.push"):
			t.Errorf("%s: a push needs the deploy permission and the audit action app.push", key)
		case !strings.HasSuffix(rt.pattern, "receive-pack") && (rt.scope != berth.ScopeRead || rt.action != ""):
			t.Errorf("%s: a read needs the read permission and no audit action", key)
		}
		seen[key] = true
	}

	w := newWalkEnv(t)
	// "web" of the walk becomes a push app; "papp" is in project p.
	for _, name := range []string{"web", "papp"} {
		if r := w.do(w.tokens[berth.ScopeAdmin], "PATCH", "/api/v1/apps/"+name, map[string]any{"source": map[string]any{"kind": "push"}}); r.status != http.StatusOK {
			t.Fatalf("make %s a push app: %d %s", name, r.status, r.body)
		}
	}
	for _, rt := range gitRoutes() {
		key := rt.method + " " + rt.pattern
		path := func(app string) string {
			p := strings.Replace(rt.pattern, "{app}", app+".git", 1)
			if rt.method == "GET" {
				p += "?service=git-upload-pack"
			}
			return p
		}
		body := "0000"
		ctype := "Content-Type"
		media := "application/x-" + path("")[strings.LastIndex(path(""), "/")+1:] + "-request"
		if r := w.do("", rt.method, path("web"), body, ctype, media); r.status != http.StatusUnauthorized || !strings.Contains(r.header.Get("WWW-Authenticate"), "Basic") {
			t.Errorf("%s anonymous: %d %v, want 401 asking for Basic", key, r.status, r.header)
		}
		if rt.action != "" {
			if r := w.do(w.viewer, rt.method, path("web"), body, ctype, media); r.status != http.StatusForbidden {
				t.Errorf("%s viewer: %d, want 403: %s", key, r.status, r.body)
			}
		}
		got := w.do(w.teamB, rt.method, path("web"), body, ctype, media)
		miss := w.do(w.teamB, rt.method, path("ghostapp"), body, ctype, media)
		if got.status != http.StatusNotFound || w.unswap(miss.body) != string(got.body) {
			t.Errorf("%s other team: %d %q, missing app: %q", key, got.status, got.body, miss.body)
		}
		got = w.do(w.narrowed, rt.method, path("web"), body, ctype, media)
		miss = w.do(w.narrowed, rt.method, path("ghostapp"), body, ctype, media)
		if got.status != http.StatusNotFound || w.unswap(miss.body) != string(got.body) {
			t.Errorf("%s narrowed member: %d %q, missing app: %q", key, got.status, got.body, miss.body)
		}
		// The walk can fail: the narrowed member reaches its project's app.
		if r := w.do(w.narrowed, rt.method, path("papp"), body, ctype, media); r.status >= 400 {
			t.Errorf("%s narrowed member, app of its project: %d %s", key, r.status, r.body)
		}
		// Hostile app names are missing apps, never more.
		canary := filepath.Join(t.TempDir(), "canary")
		for _, v := range hostile(canary) {
			r := w.do(w.tokens[berth.ScopeAdmin], rt.method, strings.Replace(path("x"), "x.git", url.PathEscape(v), 1), body, ctype, media)
			if r.status != http.StatusNotFound && r.status != http.StatusBadRequest && r.status != http.StatusMovedPermanently {
				t.Errorf("%s app %q: %d %s", key, clip(v), r.status, r.body)
			}
		}
		if _, err := os.Stat(canary); err == nil {
			t.Fatalf("%s: a hostile app name ran a command", key)
		}
	}
	// A session cookie is no credential for git (a browser must not push).
	if r := w.do("", "GET", "/git/web.git/info/refs?service=git-receive-pack", nil, "Cookie", "berth_session=x"); r.status != http.StatusUnauthorized {
		t.Errorf("cookie: %d", r.status)
	}
}
