package web_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/api"
	"github.com/berthhq/berth/auth"
	"github.com/berthhq/berth/engine"
	"github.com/berthhq/berth/engine/enginetest"
	"github.com/berthhq/berth/store"
	"github.com/berthhq/berth/web"
)

const ownerEmail, ownerPassword = "owner@example.com", "correct horse battery"

// env is the dashboard in front of a real API over a real store (SQLite)
// and an engine with fake adapters, served as berth serves them.
type env struct {
	t     *testing.T
	st    *store.Store
	srv   *httptest.Server
	admin string // the bootstrap admin's token
	fakes *enginetest.Fakes
}

// newEnv serves the dashboard; tune changes the engine's configuration.
func newEnv(t *testing.T, tune ...func(*engine.Config)) *env {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "berth.db"), bytes.Repeat([]byte{9}, 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	eng, fakes := enginetest.NewWithFakes(t, st, tune...)
	admin, err := auth.Bootstrap(ctx, st, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	apiH := api.New(api.Config{Store: st, Engine: eng, InsecureCookies: true,
		Health: api.HealthProbe{Docker: func(context.Context) error { return nil }, DataDir: t.TempDir()}}).Handler()
	mux := http.NewServeMux()
	mux.Handle("/api/", api.SecureHeaders(apiH))
	mux.Handle("/", api.SecurePageHeaders(web.New(web.Config{API: apiH, Log: slog.New(slog.DiscardHandler)}).Handler()))
	e := &env{t: t, st: st, srv: httptest.NewServer(mux), admin: admin, fakes: fakes}
	t.Cleanup(e.srv.Close)
	// The bootstrap admin sets an e-mail and a password, as `berth passwd` does.
	req, _ := http.NewRequest("PUT", e.srv.URL+"/api/v1/me/password",
		strings.NewReader(`{"new_password":"`+ownerPassword+`","email":"`+ownerEmail+`"}`))
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("set password: %v %v", resp, err)
	}
	resp.Body.Close()
	return e
}

// addUser adds a user with a password to the bootstrap admin's team (or
// to a new team when team is not "").
func (e *env) addUser(name string, role berth.Role, team string) {
	e.t.Helper()
	ctx := context.Background()
	owner, err := e.st.UserByEmail(ctx, ownerEmail)
	if err != nil {
		e.t.Fatal(err)
	}
	teams, err := e.st.TeamsOf(ctx, owner.ID)
	if err != nil || len(teams) == 0 {
		e.t.Fatalf("teams: %v", err)
	}
	teamID := teams[0].Team.ID
	if team != "" {
		tm := &berth.Team{ID: berth.NewID("team"), Name: team, CreatedAt: time.Now()}
		if err := e.st.CreateTeam(ctx, tm); err != nil {
			e.t.Fatal(err)
		}
		teamID = tm.ID
	}
	u := &berth.User{ID: berth.NewID("user"), Name: name, Email: name + "@example.com", CreatedAt: time.Now()}
	if err := e.st.CreateUser(ctx, u); err != nil {
		e.t.Fatal(err)
	}
	h, err := auth.HashPassword(ownerPassword)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.st.SetPassword(ctx, u.ID, h, time.Now()); err != nil {
		e.t.Fatal(err)
	}
	if err := e.st.AddMember(ctx, teamID, u.ID, role); err != nil {
		e.t.Fatal(err)
	}
}

// browser is a signed-in browser: a cookie jar that follows no redirect.
type browser struct {
	e *env
	c *http.Client
}

// page is an answer read whole.
type page struct {
	status      int
	location    string
	contentType string
	body        string
	took        time.Duration
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(method, path string, form url.Values) page {
	b.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.e.srv.URL+path, body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	start := time.Now()
	resp, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, location: resp.Header.Get("Location"), contentType: resp.Header.Get("Content-Type"),
		body: string(out), took: time.Since(start)}
}

func (b *browser) get(path string) page { return b.do("GET", path, nil) }

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// post submits a form with the CSRF token of the page at from.
func (b *browser) post(from, path string, form url.Values) page {
	b.e.t.Helper()
	m := csrfField.FindStringSubmatch(b.get(from).body)
	if m == nil {
		b.e.t.Fatalf("no csrf field on %s", from)
	}
	form.Set("csrf", m[1])
	return b.do("POST", path, form)
}

// createApp creates app name from a git repository on the new-app form.
func (b *browser) createApp(name string) {
	b.e.t.Helper()
	if p := b.post("/apps/new", "/apps/new", url.Values{"name": {name}, "git": {"https://git.example.com/" + name + ".git"}}); p.status != http.StatusSeeOther {
		b.e.t.Fatalf("create %s = %d: %s", name, p.status, p.body)
	}
}

// submit posts a form that succeeds and follows its 303 to next, as a
// browser does (POST/redirect/GET): it returns the page next shows.
func (b *browser) submit(from, path string, form url.Values, next string) page {
	b.e.t.Helper()
	p := b.post(from, path, form)
	if p.status != http.StatusSeeOther || p.location != next {
		b.e.t.Fatalf("POST %s = %d → %q, want 303 → %s: %s", path, p.status, p.location, next, p.body)
	}
	return b.get(next)
}

func (e *env) login(email string) *browser {
	e.t.Helper()
	b := e.browser()
	if p := b.get("/apps"); p.status != http.StatusSeeOther || p.location != "/login" {
		e.t.Fatalf("signed out /apps = %d → %q, want 303 → /login", p.status, p.location)
	}
	if p := b.get("/login"); p.status != 200 || !strings.Contains(p.body, `id="login"`) {
		e.t.Fatalf("GET /login = %d", p.status)
	}
	p := b.do("POST", "/login", url.Values{"email": {email}, "password": {ownerPassword}})
	if p.status != http.StatusSeeOther || p.location != "/apps" {
		e.t.Fatalf("POST /login = %d → %q: %s", p.status, p.location, p.body)
	}
	return b
}

func want(t *testing.T, p page, status int, contains ...string) {
	t.Helper()
	if p.status != status {
		t.Fatalf("status %d, want %d: %s", p.status, status, p.body)
	}
	for _, c := range contains {
		if !strings.Contains(p.body, c) {
			t.Errorf("page lacks %q:\n%s", c, p.body)
		}
	}
}

// deployLive deploys app from the app page and waits until the deployment
// page shows it live; it returns the deployment page's path.
func (b *browser) deployLive(app string) string {
	t := b.e.t
	t.Helper()
	p := b.post("/apps/"+app, "/apps/"+app+"/deploy", url.Values{})
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, "/apps/"+app+"/deployments/") {
		t.Fatalf("deploy = %d → %q: %s", p.status, p.location, p.body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		d := b.get(p.location)
		if strings.Contains(d.body, `class="status s-live"`) {
			return p.location
		}
		if strings.Contains(d.body, `s-failed`) {
			t.Fatalf("deployment failed: %s", d.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("deployment %s never went live", p.location)
	return ""
}

func TestDashboardAsOwner(t *testing.T) {
	e := newEnv(t)
	b := e.login(ownerEmail)

	want(t, b.get("/apps"), 200, `id="no-apps"`, `id="current-team"`)
	want(t, b.get("/apps/new"), 200, `id="app-create"`)
	p := b.post("/apps/new", "/apps/new", url.Values{"name": {"web"}, "git": {"https://git.example.com/web.git"}, "ref": {"main"}, "port": {"8080"}})
	if p.status != http.StatusSeeOther || p.location != "/apps/web" {
		t.Fatalf("create app = %d → %q: %s", p.status, p.location, p.body)
	}
	// A refused form is shown again with the API's detail and status.
	want(t, b.post("/apps/new", "/apps/new", url.Values{"name": {"web"}, "git": {"https://git.example.com/web.git"}}), http.StatusConflict,
		"already exists", `value="web"`)

	dep1 := b.deployLive("web")
	want(t, b.get(dep1), 200, `id="log"`, `class="line"`, `id="status"`)
	b.deployLive("web")
	want(t, b.get("/apps"), 200, `data-app="web"`, `s-live`)
	app := b.get("/apps/web")
	want(t, app, 200, `id="deploy"`, `id="settings"`, `class="rollback"`, `id="live-release"`, "v2", `id="metrics"`, "No metrics yet")

	// Metrics: samples in the store are drawn as SVG charts, per range.
	owner, err := e.st.UserByEmail(context.Background(), ownerEmail)
	if err != nil {
		t.Fatal(err)
	}
	teams, err := e.st.TeamsOf(context.Background(), owner.ID)
	if err != nil || len(teams) == 0 {
		t.Fatal(teams, err)
	}
	a, err := e.st.App(context.Background(), teams[0].Team.ID, "web")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var samples []berth.MetricSample
	for i := range 10 {
		samples = append(samples, berth.MetricSample{TeamID: a.TeamID, AppID: a.ID, At: now.Add(time.Duration(i-10) * time.Minute),
			CPUPercent: float64(10 * i), MemoryBytes: int64(i+1) << 20, RxRate: 100, TxRate: 50, Replicas: 1})
	}
	if err := e.st.AddMetricSamples(context.Background(), samples); err != nil {
		t.Fatal(err)
	}
	charts := b.get("/apps/web?range=1h")
	want(t, charts, 200, `class="chart"`, `aria-label="CPU`, `aria-label="Memory`, `aria-label="Network received`, `aria-current="page">1h`)
	want(t, b.get("/apps/web?range=7d"), 200, `aria-current="page">7d`)
	want(t, b.get("/apps/web?range=<script>"), 200, `aria-current="page">1h`)

	// Roll back to v1.
	rel := regexp.MustCompile(`name="release" value="([^"]+)"><button type="submit" class="small">Roll back to v1`).FindStringSubmatch(app.body)
	if rel == nil {
		t.Fatalf("no rollback to v1 on the app page:\n%s", app.body)
	}
	p = b.post("/apps/web", "/apps/web/rollback", url.Values{"release": {rel[1]}})
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, "/apps/web/deployments/") {
		t.Fatalf("rollback = %d → %q: %s", p.status, p.location, p.body)
	}
	want(t, b.get(p.location), 200, "rollback")

	// Settings: a PATCH through the form.
	form := url.Values{"kind": {"git"}, "git": {"https://git.example.com/web.git"}, "ref": {"dev"}, "port": {"9090"},
		"replicas": {"2"}, "memory_mb": {"256"}, "cpus": {"0.5"}, "health_path": {"/up"}, "health_interval": {"1s"},
		"health_timeout": {"2s"}, "health_threshold": {"1"}, "health_deadline": {"30s"}, "volumes": {"data:/data"}}
	if p := b.post("/apps/web", "/apps/web/settings", form); p.status != http.StatusSeeOther {
		t.Fatalf("settings = %d: %s", p.status, p.body)
	}
	want(t, b.get("/apps/web"), 200, `value="9090"`, `value="/up"`, "data:/data", `value="dev"`)
	form.Set("health_interval", "soon")
	want(t, b.post("/apps/web", "/apps/web/settings", form), http.StatusBadRequest, "health check interval")

	// Env: values are never shown.
	if p := b.post("/apps/web/env", "/apps/web/env", url.Values{"key": {"DATABASE_URL"}, "value": {"postgres://secret"}}); p.status != http.StatusSeeOther {
		t.Fatalf("env set = %d: %s", p.status, p.body)
	}
	env := b.get("/apps/web/env")
	want(t, env, 200, `data-key="DATABASE_URL"`, "••••", `id="env-set"`)
	if strings.Contains(env.body, "postgres://secret") {
		t.Error("env page shows a secret value")
	}
	if p := b.post("/apps/web/env", "/apps/web/env/unset", url.Values{"key": {"DATABASE_URL"}}); p.status != http.StatusSeeOther {
		t.Fatalf("env unset = %d: %s", p.status, p.body)
	}
	want(t, b.get("/apps/web/env"), 200, `id="no-env"`)

	// Members: an invitation's secret is shown once.
	p = b.submit("/members", "/members/invite", url.Values{"email": {"new@example.com"}, "role": {"developer"}}, "/members")
	want(t, p, 200, `id="invite-secret"`, "berthinv_")
	if b.get("/members").body == p.body || strings.Contains(b.get("/members").body, "berthinv_") {
		t.Error("the invitation secret is shown again")
	}
	want(t, b.get("/members"), 200, "new@example.com", `id="invite"`)

	// Tokens: created with its secret once, then revoked.
	p = b.submit("/tokens", "/tokens", url.Values{"name": {"ci"}, "scopes": {"read", "deploy"}, "expires_in": {"720h"}}, "/tokens")
	want(t, p, 200, `id="token-secret"`, "berth_", `data-token="ci"`)
	id := regexp.MustCompile(`action="/tokens/(tok_[^/"]+)/revoke"`).FindStringSubmatch(p.body)
	if id == nil {
		t.Fatalf("no revoke form:\n%s", p.body)
	}
	if p := b.post("/tokens", "/tokens/"+id[1]+"/revoke", url.Values{}); p.status != http.StatusSeeOther {
		t.Fatalf("revoke = %d: %s", p.status, p.body)
	}
	if strings.Contains(b.get("/tokens").body, `data-token="ci"`) {
		t.Error("revoked token still listed")
	}

	want(t, b.get("/audit"), 200, `id="audit"`, "app.create", "token.revoke")
	want(t, b.get("/server"), 200, `id="health-docker"`, "s-ok", `id="health-disk"`, `id="health-cpu"`)

	// Every page renders, under 100 KB.
	for _, path := range []string{"/login", "/apps", "/apps/new", "/apps/web", "/apps/web/env", dep1, "/members", "/tokens", "/audit", "/server"} {
		p := b.get(path)
		if p.status != 200 {
			t.Errorf("%s = %d", path, p.status)
		}
		if len(p.body) >= 100<<10 {
			t.Errorf("%s is %d bytes, want < 100 KB", path, len(p.body))
		}
		t.Logf("%-28s %6d bytes %8s", path, len(p.body), p.took.Round(time.Microsecond))
	}

	// Sign out ends the session.
	if p := b.post("/apps", "/logout", url.Values{}); p.status != http.StatusSeeOther || p.location != "/login" {
		t.Fatalf("logout = %d → %q", p.status, p.location)
	}
	if p := b.get("/apps"); p.status != http.StatusSeeOther {
		t.Errorf("after sign-out /apps = %d, want a redirect to /login", p.status)
	}
}

// TestDashboardPushApp creates a push app from the new-app form, shows its
// hosted remote on its page and turns a git app into a push app through
// the settings form.
func TestDashboardPushApp(t *testing.T) {
	e := newEnv(t)
	b := e.login(ownerEmail)
	want(t, b.get("/apps/new"), 200, `id="push"`, `id="push_branch"`)
	p := b.post("/apps/new", "/apps/new", url.Values{"name": {"pushed"}, "push": {"1"}, "push_branch": {"prod"}})
	if p.status != http.StatusSeeOther || p.location != "/apps/pushed" {
		t.Fatalf("create push app = %d → %q: %s", p.status, p.location, p.body)
	}
	host := strings.TrimPrefix(e.srv.URL, "http://")
	want(t, b.get("/apps/pushed"), 200, `id="git-remote"`, "git push</code> to prod", "git remote add berth http://"+host+"/git/pushed.git",
		`<option value="push" selected>`)
	// Push and a git URL together: the API's refusal, the form refilled.
	want(t, b.post("/apps/new", "/apps/new", url.Values{"name": {"both"}, "push": {"1"}, "git": {"https://git.example.com/x.git"}}),
		http.StatusBadRequest, "takes no other source fields", `id="push" name="push" type="checkbox" value="1" checked`)

	if p := b.post("/apps/new", "/apps/new", url.Values{"name": {"web"}, "git": {"https://git.example.com/web.git"}, "ref": {"stable"}}); p.status != http.StatusSeeOther {
		t.Fatalf("create git app = %d: %s", p.status, p.body)
	}
	if p := b.get("/apps/web"); strings.Contains(p.body, `id="git-remote"`) {
		t.Error("a git app shows a hosted remote")
	}
	form := url.Values{"kind": {"push"}, "git": {"https://git.example.com/web.git"}, "ref": {"stable"}, "port": {"8080"},
		"replicas": {"1"}, "health_path": {"/"}, "health_threshold": {"1"}}
	if p := b.post("/apps/web", "/apps/web/settings", form); p.status != http.StatusSeeOther {
		t.Fatalf("settings to push = %d: %s", p.status, p.body)
	}
	want(t, b.get("/apps/web"), 200, `id="git-remote"`, "git push</code> to stable", `<option value="push" selected>`)
}

func TestDashboardRefusals(t *testing.T) {
	e := newEnv(t)
	e.addUser("vera", berth.RoleViewer, "")
	e.addUser("mallory", berth.RoleOwner, "other")
	owner := e.login(ownerEmail)
	if p := owner.post("/apps/new", "/apps/new", url.Values{"name": {"web"}, "image": {"nginx:1"}}); p.status != http.StatusSeeOther {
		t.Fatalf("create = %d: %s", p.status, p.body)
	}
	mallory := e.login("mallory@example.com")
	if p := mallory.post("/apps/new", "/apps/new", url.Values{"name": {"theirs"}, "image": {"nginx:1"}}); p.status != http.StatusSeeOther {
		t.Fatalf("create = %d: %s", p.status, p.body)
	}

	t.Run("viewer gets the API's 403", func(t *testing.T) {
		v := e.login("vera@example.com")
		want(t, v.get("/apps/web"), 200, `id="deploy"`)
		want(t, v.post("/apps/web", "/apps/web/deploy", url.Values{}), http.StatusForbidden, `id="error"`, "permission")
		want(t, v.post("/apps/web/env", "/apps/web/env", url.Values{"key": {"A"}, "value": {"b"}}), http.StatusForbidden, "permission")
		want(t, v.post("/members", "/members/invite", url.Values{"email": {"x@example.com"}, "role": {"owner"}}), http.StatusForbidden)
	})
	t.Run("another team's app is not found", func(t *testing.T) {
		want(t, owner.get("/apps/theirs"), http.StatusNotFound, `no app named`)
		want(t, owner.get("/apps/theirs/env"), http.StatusNotFound)
		want(t, owner.get("/apps/theirs/deployments/1"), http.StatusNotFound)
		want(t, owner.post("/apps", "/apps/theirs/deploy", url.Values{}), http.StatusNotFound)
		if strings.Contains(owner.get("/apps").body, "theirs") {
			t.Error("another team's app is listed")
		}
	})
	t.Run("a form without CSRF is refused", func(t *testing.T) {
		for _, form := range []url.Values{{}, {"csrf": {"forged"}}} {
			want(t, owner.do("POST", "/apps/web/deploy", form), http.StatusForbidden, "CSRF")
			want(t, owner.do("POST", "/tokens", url.Values{"name": {"x"}, "scopes": {"read"}, "csrf": form["csrf"]}), http.StatusForbidden, "CSRF")
		}
		if p := owner.get("/apps/web"); strings.Contains(p.body, `href="/apps/web/deployments/1"`) {
			t.Error("a forged deploy ran")
		}
	})
	t.Run("user input is escaped", func(t *testing.T) {
		const evil = `<script>alert(1)</script>`
		p := owner.submit("/tokens", "/tokens", url.Values{"name": {evil}, "scopes": {"read"}}, "/tokens")
		want(t, p, 200, "&lt;script&gt;alert(1)&lt;/script&gt;")
		for _, q := range []page{p, owner.get("/tokens"), owner.get("/audit"),
			owner.do("POST", "/login", url.Values{"email": {evil}, "password": {"x"}}),
			owner.post("/apps/new", "/apps/new", url.Values{"name": {evil}, "git": {evil}})} {
			if strings.Contains(q.body, evil) {
				t.Errorf("unescaped user input in:\n%s", q.body)
			}
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		p := e.browser().do("POST", "/login", url.Values{"email": {ownerEmail}, "password": {"wrong horse battery"}})
		want(t, p, http.StatusUnauthorized, `id="login"`, `id="error"`)
	})
}

func TestStaticAndHeaders(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	for _, path := range []string{"/static/style.css", "/static/app.js"} {
		resp, err := http.Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s = %d", path, resp.StatusCode)
		}
	}
	resp, err := http.Get(e.srv.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", csp)
	}
	// No inline script or style anywhere: the CSP would block them.
	body := b.get("/login").body
	for _, bad := range []string{"<script>", "style=", "<style", "onclick="} {
		if strings.Contains(body, bad) {
			t.Errorf("login page has inline %q", bad)
		}
	}
}
