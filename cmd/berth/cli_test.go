package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http/httptest"
	"os"
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
)

// cli runs the client commands against a real API server over a real store
// (SQLite in a temp dir) and a real engine with fake adapters.
type cli struct {
	t      *testing.T
	st     *store.Store
	fakes  *enginetest.Fakes
	url    string
	admin  string // the bootstrap token
	config string // XDG_CONFIG_HOME
	env    map[string]string
	stdin  string // what the next commands read on stdin
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "berth.db"), bytes.Repeat([]byte{3}, 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	eng, fakes := enginetest.NewWithFakes(t, st)
	admin, err := auth.Bootstrap(ctx, st, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.Config{Store: st, Engine: eng, GitDir: t.TempDir()}).Handler())
	t.Cleanup(srv.Close)
	c := &cli{t: t, st: st, fakes: fakes, url: srv.URL, admin: admin, config: t.TempDir()}
	c.env = map[string]string{"XDG_CONFIG_HOME": c.config, "HOME": "/nonexistent"}
	return c
}

// run runs the command line and returns its stdout, stderr and error.
func (c *cli) run(args ...string) (string, string, error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	err := runWith(ctx, args, stdio{in: strings.NewReader(c.stdin), out: &out, err: &errOut, getenv: func(k string) string { return c.env[k] }})
	return out.String(), errOut.String(), err
}

// ok runs the command line, which must succeed, and returns its stdout.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	out, errOut, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("berth %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// fail runs the command line, which must fail, and returns its error
// message as main prints it.
func (c *cli) fail(args ...string) string {
	c.t.Helper()
	out, _, err := c.run(args...)
	if err == nil {
		c.t.Fatalf("berth %s succeeded, want an error; stdout:\n%s", strings.Join(args, " "), out)
	}
	return err.Error()
}

func (c *cli) login() {
	c.t.Helper()
	c.ok("login", c.url, "--token", c.admin)
}

func jsonOf[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
	return v
}

// lines splits table output into rows of fields.
func rows(s string) [][]string {
	var out [][]string
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		out = append(out, strings.Fields(l))
	}
	return out
}

func TestLogin(t *testing.T) {
	c := newCLI(t)
	if msg := c.fail("apps", "list"); !strings.Contains(msg, "no server") || !strings.Contains(msg, "berth login") {
		t.Errorf("without login: %q", msg)
	}
	if msg := c.fail("login", c.url); !strings.Contains(msg, "--token") {
		t.Errorf("login without a token: %q", msg)
	}
	if msg := c.fail("login", c.url, "--token", "berth_wrong"); !strings.Contains(msg, "invalid token") {
		t.Errorf("login with a bad token: %q", msg)
	}
	if msg := c.fail("login", "ftp://example.com", "--token", c.admin); !strings.Contains(msg, "https://") {
		t.Errorf("login to a bad URL: %q", msg)
	}
	if _, err := os.Stat(filepath.Join(c.config, "berth", "config.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed login wrote the config: %v", err)
	}

	out := c.ok("login", c.url+"/", "--token", c.admin)
	if !strings.Contains(out, "Logged in to "+c.url+" as admin (team main, role owner, can: admin,write,deploy,read-secrets,read)") {
		t.Errorf("login output: %q", out)
	}
	p := filepath.Join(c.config, "berth", "config.json")
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config %s: %v, mode %v; want 0600", p, err, fi.Mode())
	}
	if di, _ := os.Stat(filepath.Dir(p)); di.Mode().Perm() != 0o700 {
		t.Errorf("config dir mode %v, want 0700", di.Mode().Perm())
	}
	cfg := jsonOf[clientConfig](t, readFile(t, p))
	if cfg.Server != c.url || cfg.Token != c.admin {
		t.Errorf("config = %+v", cfg)
	}
	c.ok("apps", "list")

	// Flags beat the environment, which beats the file.
	c.env["BERTH_TOKEN"] = "berth_fromenv"
	if msg := c.fail("apps", "list"); !strings.Contains(msg, "invalid token") {
		t.Errorf("BERTH_TOKEN was not used: %q", msg)
	}
	c.ok("apps", "list", "--token", c.admin)
	delete(c.env, "BERTH_TOKEN")
	c.env["BERTH_SERVER"] = "http://127.0.0.1:1"
	if msg := c.fail("apps", "list"); !strings.Contains(msg, "127.0.0.1:1") {
		t.Errorf("BERTH_SERVER was not used: %q", msg)
	}
	c.ok("apps", "list", "--server", c.url)
	delete(c.env, "BERTH_SERVER")

	me := jsonOf[api.Me](t, c.ok("login", c.url, "--token", c.admin, "-o", "json"))
	if me.User.Name != "admin" || me.Team.Name != "main" {
		t.Errorf("login -o json = %+v", me)
	}
	if msg := c.fail("apps", "list", "-o", "yaml"); !strings.Contains(msg, "unknown output format") {
		t.Errorf("-o yaml: %q", msg)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestApps(t *testing.T) {
	c := newCLI(t)
	c.login()

	out := c.ok("apps", "create", "web", "--git", "https://git.example.com/web.git", "--branch", "prod",
		"--port", "3000", "--replicas", "2", "--memory", "512M", "--cpus", "0.5", "--dockerfile", "deploy/Dockerfile",
		"--context", "srv", "--build-arg", "A=1", "--build-arg", "B=x=y", "--target", "run", "--health-path", "/up",
		"--health-interval", "1s", "--volume", "data:/var/data")
	for _, want := range []string{"Name:", "web", "Ref:", "prod", "Port:", "3000", "Replicas:", "2", "512 MB", "0.5",
		"deploy/Dockerfile", "Build arg:", "B=x=y", "GET /up every 1s", "data at /var/data"} {
		if !strings.Contains(out, want) {
			t.Errorf("create output lacks %q:\n%s", want, out)
		}
	}
	c.ok("apps", "create", "img", "--image", "registry.example.com/img:1")
	c.ok("apps", "create", "site", "--upload")

	list := rows(c.ok("apps", "list"))
	want := [][]string{
		{"NAME", "SOURCE", "PORT", "REPLICAS", "CREATED"},
		{"img", "registry.example.com/img:1", "8080", "1"},
		{"site", "upload", "8080", "1"},
		{"web", "https://git.example.com/web.git#prod", "3000", "2"},
	}
	if len(list) != len(want) {
		t.Fatalf("apps list:\n%q", list)
	}
	for i, w := range want {
		if len(list[i]) < len(w) || strings.Join(list[i][:len(w)], " ") != strings.Join(w, " ") {
			t.Errorf("row %d = %q, want %q…", i, list[i], w)
		}
	}
	apps := jsonOf[[]map[string]any](t, c.ok("apps", "list", "-o", "json"))
	if len(apps) != 3 || apps[2]["name"] != "web" || apps[2]["health"].(map[string]any)["interval"] != "1s" {
		t.Errorf("apps list -o json = %v", apps)
	}
	// Searching by a part of the name, in a project.
	if got := rows(c.ok("apps", "list", "--search", "I")); len(got) != 3 || got[1][0] != "img" || got[2][0] != "site" {
		t.Errorf("apps list --search I:\n%q", got)
	}
	if got := jsonOf[[]map[string]any](t, c.ok("apps", "list", "-s", "we", "--project", "default", "-o", "json")); len(got) != 1 || got[0]["name"] != "web" {
		t.Errorf("apps list -s we --project default = %v", got)
	}
	if got := jsonOf[[]map[string]any](t, c.ok("apps", "list", "-s", "nothing", "-o", "json")); got == nil || len(got) != 0 {
		t.Errorf("apps list -s nothing = %v, want []", got)
	}
	if msg := c.fail("apps", "list", "--project", "ghost"); !strings.Contains(msg, `no project "ghost"`) {
		t.Errorf("apps list --project ghost: %s", msg)
	}

	// set changes only the flags given.
	a := jsonOf[berth.App](t, c.ok("apps", "set", "web", "--port", "9000", "--unset-build-arg", "A", "--build-arg", "C=3", "--health-timeout", "5s", "-o", "json"))
	h := a.Health
	if a.Port != 9000 || a.Replicas != 2 || a.Source.Ref != "prod" || h.Path != "/up" || h.Timeout != 5*time.Second || h.Interval != time.Second {
		t.Errorf("after set: %+v %+v", a, h)
	}
	if len(a.Build.Args) != 2 || a.Build.Args["B"] != "x=y" || a.Build.Args["C"] != "3" {
		t.Errorf("build args after set = %v", a.Build.Args)
	}
	a = jsonOf[berth.App](t, c.ok("apps", "set", "web", "--image", "registry.example.com/web:2", "--volume", "logs:/logs", "-o", "json"))
	if a.Source.Kind != berth.SourceImage || a.Source.Image != "registry.example.com/web:2" || len(a.Volumes) != 1 || a.Volumes[0].Name != "logs" {
		t.Errorf("after set --image: %+v", a)
	}
	shown := jsonOf[berth.App](t, c.ok("apps", "show", "web", "-o", "json"))
	if shown.ID != a.ID || shown.Port != 9000 {
		t.Errorf("show = %+v", shown)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"apps", "set", "web"}, "nothing to change"},
		{[]string{"apps", "create", "x"}, "--git URL, --image IMAGE, --upload or --push"},
		{[]string{"apps", "create", "x", "--push", "--upload"}, "one of"},
		{[]string{"apps", "create", "x", "--push", "--branch", "-x"}, "branch"},
		{[]string{"apps", "create", "x", "--git", "https://h.example.com/x", "--image", "nginx"}, "one of"},
		{[]string{"apps", "create", "x", "--image", "nginx", "--branch", "main"}, "--branch goes with --git"},
		{[]string{"apps", "create", "web;rm -rf /", "--upload"}, `create app: name "web;rm -rf /"`},
		{[]string{"apps", "create", "x", "--git", "--upload-pack=evil"}, "git URL"},
		{[]string{"apps", "create", "x", "--upload", "--memory", "lots"}, `memory "lots"`},
		{[]string{"apps", "create", "x", "--upload", "--build-arg", "NOVALUE"}, "KEY=VALUE"},
		{[]string{"apps", "create", "x", "--upload", "--volume", "novolume"}, "NAME:/path"},
		{[]string{"apps", "create", "web", "--upload"}, "already exists"},
		{[]string{"apps", "show", "nope"}, `show app: no app named "nope"`},
		{[]string{"apps", "set", "web", "--replicas", "1000"}, "replicas 1000"},
		{[]string{"apps", "show"}, "accepts 1 arg"},
	} {
		if msg := c.fail(tt.args...); !strings.Contains(msg, tt.want) {
			t.Errorf("berth %s: %q, want it to contain %q", strings.Join(tt.args, " "), msg, tt.want)
		}
	}

	if out := c.ok("apps", "delete", "img", "--volumes"); !strings.Contains(out, "Deleted app img and its volumes.") {
		t.Errorf("delete: %q", out)
	}
	if msg := c.fail("apps", "show", "img"); !strings.Contains(msg, "no app named") {
		t.Errorf("show after delete: %q", msg)
	}
}

// TestPushApps creates and changes push apps from the CLI and prints the
// URL of their hosted remote.
func TestPushApps(t *testing.T) {
	c := newCLI(t)
	c.login()
	out := c.ok("apps", "create", "web", "--push", "--branch", "prod")
	if !strings.Contains(out, "push") || !strings.Contains(out, "prod (git push to berth git-remote web)") {
		t.Errorf("create --push:\n%s", out)
	}
	if got := c.ok("git-remote", "web"); got != c.url+"/git/web.git\n" {
		t.Errorf("git-remote = %q, want %s/git/web.git", got, c.url)
	}
	r := jsonOf[gitRemote](t, c.ok("git-remote", "web", "-o", "json"))
	if r.URL != c.url+"/git/web.git" || r.Branch != "prod" || r.App != "web" {
		t.Errorf("git-remote -o json = %+v", r)
	}
	if list := c.ok("apps", "list"); !strings.Contains(list, "git push to prod") {
		t.Errorf("apps list:\n%s", list)
	}
	c.ok("apps", "create", "site", "--git", "https://git.example.com/site.git", "--branch", "stable")
	if msg := c.fail("git-remote", "site"); !strings.Contains(msg, "not from git push: change that with berth apps set site --push") {
		t.Errorf("git-remote of a git app: %q", msg)
	}
	// A git app becomes a push app deploying the branch it fetched.
	a := jsonOf[berth.App](t, c.ok("apps", "set", "site", "--push", "-o", "json"))
	if a.Source.Kind != berth.SourcePush || a.Source.Ref != "stable" || a.Source.Git != "" {
		t.Errorf("after set --push: %+v", a.Source)
	}
	a = jsonOf[berth.App](t, c.ok("apps", "set", "site", "--branch", "main", "-o", "json"))
	if a.Source.Kind != berth.SourcePush || a.Source.Ref != "main" {
		t.Errorf("after set --branch: %+v", a.Source)
	}
	// Nothing pushed yet: a deploy says what to do.
	if msg := c.fail("deploy", "web"); !strings.Contains(msg, "nothing has been pushed to prod of app web yet") {
		t.Errorf("deploy before any push: %q", msg)
	}
}

func TestDomainsAndEnv(t *testing.T) {
	c := newCLI(t)
	c.login()
	c.ok("apps", "create", "web", "--git", "https://git.example.com/web.git")

	if out := c.ok("domains", "add", "web", "Web.Example.com"); !strings.Contains(out, "Added web.example.com to web.") {
		t.Errorf("domains add: %q", out)
	}
	if msg := c.fail("domains", "add", "web", "bad host.com"); !strings.Contains(msg, "host") {
		t.Errorf("bad host: %q", msg)
	}
	if r := rows(c.ok("domains", "list", "web")); len(r) != 2 || r[0][0] != "HOST" || r[1][0] != "web.example.com" {
		t.Errorf("domains list: %q", r)
	}
	if ds := jsonOf[[]berth.Domain](t, c.ok("domains", "list", "web", "-o", "json")); len(ds) != 1 || ds[0].Host != "web.example.com" {
		t.Errorf("domains list -o json: %+v", ds)
	}
	c.ok("domains", "remove", "web", "web.example.com")
	if ds := jsonOf[[]berth.Domain](t, c.ok("domains", "list", "web", "-o", "json")); len(ds) != 0 {
		t.Errorf("after remove: %+v", ds)
	}

	if out := c.ok("env", "set", "web", "A=1", "B=two=2"); !strings.Contains(out, "Set 2 env var(s) of web") {
		t.Errorf("env set: %q", out)
	}
	table := c.ok("env", "list", "web")
	if r := rows(table); len(r) != 3 || r[1][0] != "A" || r[1][1] != "1" || r[2][1] != "two=2" {
		t.Errorf("env list:\n%s", table)
	}
	// A token without read-secrets sees keys, not values.
	p := principal(t, c)
	ro, _, err := auth.IssueToken(context.Background(), c.st, p.Team.ID, p.User.ID, "ro", []berth.Scope{berth.ScopeRead}, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	table = c.ok("env", "list", "web", "--token", ro)
	if !strings.Contains(table, "(redacted)") || strings.Contains(table, "two=2") {
		t.Errorf("env list with a read token:\n%s", table)
	}
	if msg := c.fail("env", "set", "web", "C=3", "--token", ro); !strings.Contains(msg, `permission "write" needed`) {
		t.Errorf("env set with a read token: %q", msg)
	}
	if msg := c.fail("env", "set", "web", "NOVALUE"); !strings.Contains(msg, "KEY=VALUE") {
		t.Errorf("env set NOVALUE: %q", msg)
	}
	if msg := c.fail("env", "set", "web", "BAD-KEY=1"); !strings.Contains(msg, "env key") {
		t.Errorf("env set BAD-KEY: %q", msg)
	}
	c.ok("env", "unset", "web", "A")
	vars := jsonOf[[]api.EnvVar](t, c.ok("env", "list", "web", "-o", "json"))
	if len(vars) != 1 || vars[0].Key != "B" || vars[0].Value != "two=2" {
		t.Errorf("env after unset: %+v", vars)
	}
	// --deploy waits for the deployment like berth deploy.
	out := c.ok("env", "set", "web", "C=3", "--deploy")
	if !strings.Contains(out, "is live") {
		t.Errorf("env set --deploy:\n%s", out)
	}
}

func principal(t *testing.T, c *cli) *auth.Principal {
	t.Helper()
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer "+c.admin)
	p, err := auth.Authenticate(context.Background(), c.st, req, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDeploy(t *testing.T) {
	c := newCLI(t)
	c.login()
	c.fakes.Runtime.LogText = "app says hello\n"
	c.ok("apps", "create", "web", "--git", "https://git.example.com/web.git")

	out := c.ok("deploy", "web")
	for _, want := range []string{"==> deployment #1 of web", "fetched main", "==> building", "Successfully tagged", "Deployment #1 of web is live"} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy output lacks %q:\n%s", want, out)
		}
	}
	c.ok("deploy", "web", "--ref", "v2")
	// -o json: the log goes to stderr, the final deployment to stdout.
	stdout, stderr, err := c.run("deploy", "web", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	if d := jsonOf[berth.Deployment](t, stdout); d.Number != 3 || d.Status != berth.StatusLive {
		t.Errorf("deploy -o json = %+v", d)
	}
	if !strings.Contains(stderr, "fetched main") {
		t.Errorf("deploy -o json stderr lacks the log:\n%s", stderr)
	}

	table := c.ok("deployments", "web")
	r := rows(table)
	if strings.Join(r[0], " ") != "# ID STATUS COMMIT STAGES BY AGE" || len(r) != 4 {
		t.Fatalf("deployments table:\n%s", table)
	}
	row := regexp.MustCompile(`(?m)^1\s+dep_[a-z2-7]{16}\s+superseded\s+[0-9a-f]{7}\s+queue \d+\.\ds fetch \d+\.\ds build \d+\.\ds start \d+\.\ds verify \d+\.\ds switch \d+\.\ds\s+admin\s+\d+s$`)
	if !row.MatchString(table) {
		t.Errorf("deployments table row of #1 does not match %s:\n%s", row, table)
	}
	ds := jsonOf[[]berth.Deployment](t, c.ok("deployments", "web", "-o", "json"))
	if len(ds) != 3 || ds[0].Status != berth.StatusLive || ds[2].Ref != "main" || ds[1].Ref != "v2" {
		t.Errorf("deployments -o json = %+v", ds)
	}
	detail := c.ok("deployment", "web", "2", "--log")
	for _, want := range []string{"Deployment:", "#2", "Status:", "superseded", "Ref:", "v2", "STAGE", "building", "fetched v2"} {
		if !strings.Contains(detail, want) {
			t.Errorf("deployment web 2 lacks %q:\n%s", want, detail)
		}
	}
	if d := jsonOf[berth.Deployment](t, c.ok("deployment", "web", ds[1].ID, "-o", "json")); d.Number != 2 {
		t.Errorf("deployment by ID = %+v", d)
	}

	rels := rows(c.ok("releases", "web"))
	if len(rels) != 4 || strings.Join(rels[0], " ") != "VERSION ID IMAGE COMMIT DEPLOYMENT AGE" || rels[1][0] != "v3" {
		t.Errorf("releases:\n%q", rels)
	}
	out = c.ok("rollback", "web", "v1")
	if !strings.Contains(out, "Deployment #4 of web is live") {
		t.Errorf("rollback:\n%s", out)
	}
	if d := jsonOf[berth.Deployment](t, c.ok("deployment", "web", "4", "-o", "json")); d.Kind != berth.KindRollback {
		t.Errorf("deployment 4 = %+v", d)
	}

	st := c.ok("status", "web")
	for _, want := range []string{"App:", "Live:", "deployment #4", "release v1", "CONTAINER", "running"} {
		if !strings.Contains(st, want) {
			t.Errorf("status lacks %q:\n%s", want, st)
		}
	}
	if s := jsonOf[map[string]any](t, c.ok("status", "web", "-o", "json")); s["live"] == nil || s["containers"] == nil {
		t.Errorf("status -o json = %v", s)
	}
	if logs := c.ok("logs", "web", "--tail", "10"); !strings.Contains(logs, "app says hello") {
		t.Errorf("logs: %q", logs)
	}

	// A failed deployment exits non-zero with its reason.
	c.fakes.Builder.Err = errors.New("compiler exploded")
	if msg := c.fail("deploy", "web"); !strings.HasPrefix(msg, "deploy failed: ") || !strings.Contains(msg, "compiler exploded") {
		t.Errorf("failed deploy: %q", msg)
	}
	c.fakes.Builder.Err = nil

	// --detach returns at once; --cancel cancels what is in progress.
	block := make(chan struct{})
	c.fakes.Source.Block = block
	t.Cleanup(func() {
		select {
		case <-block:
		default:
			close(block)
		}
	})
	if out := c.ok("deploy", "web", "--detach"); !strings.Contains(out, "Deployment #6 of web is queued") {
		t.Errorf("deploy --detach: %q", out)
	}
	if out := c.ok("deploy", "web", "--cancel"); !strings.Contains(out, "Cancelling deployment #6") {
		t.Errorf("deploy --cancel: %q", out)
	}
	// The fetch blocks until the engine sees the cancel request.
	waitFor(t, func() bool {
		d := jsonOf[berth.Deployment](t, c.ok("deployment", "web", "6", "-o", "json"))
		return d.Status == berth.StatusCancelled
	})
	if msg := c.fail("deploy", "web", "--cancel"); !strings.Contains(msg, "no deployment in progress") {
		t.Errorf("cancel with nothing in progress: %q", msg)
	}
	if msg := c.fail("deploy", "web", "--image", "nginx"); !strings.Contains(msg, "image") {
		t.Errorf("deploy --image of a git app: %q", msg)
	}
	if msg := c.fail("deploy", "nope"); !strings.Contains(msg, `no app named "nope"`) {
		t.Errorf("deploy nope: %q", msg)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDeployFromDir(t *testing.T) {
	c := newCLI(t)
	c.login()
	c.ok("apps", "create", "site", "--upload")
	dir := t.TempDir()
	write(t, filepath.Join(dir, "Dockerfile"), "FROM scratch\n")
	write(t, filepath.Join(dir, "www", "index.html"), "hi\n")
	write(t, filepath.Join(dir, ".git", "config"), "secret\n")
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "passwd")); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := c.run("deploy", "site", "--from-dir", dir)
	if err != nil {
		t.Fatalf("deploy --from-dir: %v\n%s\n%s", err, stdout, stderr)
	}
	if !strings.Contains(stdout, "is live") || !strings.Contains(stderr, "skipping passwd") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
	if msg := c.fail("deploy", "site", "--from-dir", filepath.Join(dir, "missing")); !strings.Contains(msg, "missing") {
		t.Errorf("missing dir: %q", msg)
	}
	// A refused upload reports the server's reason, even when the server
	// answers before the archive is sent.
	big := make([]byte, 8<<20)
	rand.Read(big)
	write(t, filepath.Join(dir, "big.bin"), string(big))
	c.ok("apps", "create", "web", "--git", "https://git.example.com/web.git")
	if msg := c.fail("deploy", "web", "--from-dir", dir); !strings.Contains(msg, "not from uploads") {
		t.Errorf("upload to a git app: %q", msg)
	}
}

func write(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestVersion(t *testing.T) {
	c := newCLI(t)
	if out := c.ok("version"); !strings.HasPrefix(out, "berth ") || !strings.Contains(out, "go1.") {
		t.Errorf("version: %q", out)
	}
	if v := jsonOf[versionInfo](t, c.ok("version", "-o", "json")); v.Version == "" || v.Go == "" {
		t.Errorf("version -o json = %+v", v)
	}
}

func TestDomainCertificates(t *testing.T) {
	c := newCLI(t)
	c.login()
	c.ok("apps", "create", "web", "--git", "https://git.example.com/web.git")
	c.ok("domains", "add", "web", "web.example.com")
	table := c.ok("domains", "list", "web")
	r := rows(table)
	if len(r) != 2 || strings.Join(r[0], " ") != "HOST CERT ISSUER EXPIRES ADDED ERROR" || r[1][1] != "none" || !strings.Contains(table, "not routed yet") {
		t.Fatalf("domains list before a deploy:\n%s", table)
	}
	c.ok("deploy", "web")

	dir := t.TempDir()
	now := time.Now()
	certPEM, keyPEM := testCert(t, now.Add(-time.Hour), now.Add(30*24*time.Hour), "web.example.com")
	_, otherKey := testCert(t, now.Add(-time.Hour), now.Add(time.Hour), "web.example.com")
	certFile, keyFile, otherKeyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "other.pem")
	write(t, certFile, string(certPEM))
	write(t, keyFile, string(keyPEM))
	write(t, otherKeyFile, string(otherKey))
	write(t, filepath.Join(dir, "big.pem"), strings.Repeat("A", maxPEMFile+1))

	out := c.ok("domains", "cert", "web", "web.example.com", "--cert", certFile, "--key", keyFile)
	if !strings.Contains(out, "Installed a custom certificate for web.example.com on web: valid") {
		t.Errorf("domains cert: %q", out)
	}
	table = c.ok("domains", "list", "web")
	if r := rows(table); len(r) != 2 || r[1][0] != "web.example.com" || r[1][1] != "valid" {
		t.Errorf("domains list after cert:\n%s", table)
	}
	ds := jsonOf[[]engine.DomainStatus](t, c.ok("domains", "list", "web", "-o", "json"))
	if len(ds) != 1 || ds[0].Certificate.Status != berth.CertValid || ds[0].Certificate.Source != "custom" {
		t.Errorf("domains list -o json = %+v", ds)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"domains", "cert", "web", "web.example.com"}, "--cert FILE and --key FILE"},
		{[]string{"domains", "cert", "web", "web.example.com", "--cert", certFile}, "--cert FILE and --key FILE"},
		{[]string{"domains", "cert", "web", "web.example.com", "--remove", "--cert", certFile}, "not both"},
		{[]string{"domains", "cert", "web", "web.example.com", "--cert", filepath.Join(dir, "missing.pem"), "--key", keyFile}, "missing.pem"},
		{[]string{"domains", "cert", "web", "web.example.com", "--cert", certFile, "--key", filepath.Join(dir, "big.pem")}, "larger than"},
		{[]string{"domains", "cert", "web", "web.example.com", "--cert", certFile, "--key", otherKeyFile}, "does not match"},
		{[]string{"domains", "cert", "web", "nope.example.com", "--cert", certFile, "--key", keyFile}, `no domain "nope.example.com"`},
		{[]string{"domains", "cert", "web", "nope.example.com", "--remove"}, `no domain "nope.example.com"`},
	} {
		stdout, stderr, err := c.run(tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("berth %s: %v, want an error containing %q", strings.Join(tt.args, " "), err, tt.want)
		}
		for _, l := range strings.Split(string(otherKey)+string(keyPEM), "\n") {
			if len(l) > 16 && !strings.HasPrefix(l, "-----") && (strings.Contains(stdout+stderr, l) || err != nil && strings.Contains(err.Error(), l)) {
				t.Fatalf("berth %s echoes the key", strings.Join(tt.args, " "))
			}
		}
	}

	if out := c.ok("domains", "cert", "web", "web.example.com", "--remove"); !strings.Contains(out, "Removed the custom certificate of web.example.com") {
		t.Errorf("domains cert --remove: %q", out)
	}
	if r := rows(c.ok("domains", "list", "web")); r[1][1] != "none" {
		t.Errorf("domains list after --remove: %q", r)
	}
}

func TestDomainCells(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.Local)
	soon, past := now.Add(89*24*time.Hour+time.Hour), now.Add(-time.Hour)
	for _, tt := range []struct{ got, want string }{
		{expires(nil, now), "-"},
		{expires(&soon, now), "2026-05-29 (in 89d)"},
		{expires(&past, now), "2026-03-01 (expired)"},
		{clipText("short", 10), "short"},
		{clipText("acme: urn:ietf:params:acme:error:dns: no such host", 20), "acme: urn:ietf:para…"},
		{clipText("", 5), ""},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

// testCert returns a self-signed PEM certificate for hosts and its PEM key.
func testCert(t *testing.T, notBefore, notAfter time.Time, hosts ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: hosts[0]},
		DNSNames:     hosts,
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}
