package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth"
)

func TestAppLifecycle(t *testing.T) {
	e := newEnv(t)
	admin, write := e.tokens[berth.ScopeAdmin], e.tokens[berth.ScopeWrite]

	r := e.do(write, "POST", "/api/v1/apps", map[string]any{
		"name":   "web",
		"source": map[string]any{"git": "https://git.example.com/web.git"},
		"health": map[string]any{"path": "/up", "interval": "250ms"},
		"build":  map[string]any{"args": map[string]string{"A": "1", "B": "2"}},
	})
	a := decode[berth.App](t, r, http.StatusCreated)
	if loc := r.header.Get("Location"); loc != "/api/v1/apps/web" {
		t.Errorf("Location = %q", loc)
	}
	// Defaults are filled in, and durations travel as strings.
	if a.Source.Kind != berth.SourceGit || a.Source.Ref != "main" || a.Port != 8080 || a.Replicas != 1 {
		t.Errorf("defaults not applied: %+v", a)
	}
	h := a.Health
	if h.Path != "/up" || h.Interval != 250*time.Millisecond || h.Timeout != 2*time.Second || h.Deadline != time.Minute {
		t.Errorf("health = %+v", h)
	}
	if !strings.Contains(string(r.body), `"interval": "250ms"`) || !strings.Contains(string(r.body), `"deadline": "1m0s"`) {
		t.Errorf("durations are not strings in %s", r.body)
	}
	if !berth.ValidID("app", a.ID) || a.TeamID == "" {
		t.Errorf("id %q team %q", a.ID, a.TeamID)
	}

	// The same name again conflicts.
	if r := e.do(write, "POST", "/api/v1/apps", gitApp("web")); r.status != http.StatusConflict {
		t.Errorf("duplicate: %d, want 409", r.status)
	} else if p := r.problem(t); p.Type != ProblemTypePrefix+"conflict" {
		t.Errorf("duplicate problem %+v", p)
	}

	e.createApp(map[string]any{"name": "api", "source": map[string]any{"image": "registry.example.com/api:1"}})
	apps := decode[[]berth.App](t, e.do(e.tokens[berth.ScopeRead], "GET", "/api/v1/apps", nil), http.StatusOK)
	if len(apps) != 2 || apps[0].Name != "api" || apps[1].Name != "web" {
		t.Errorf("apps = %v", apps)
	}

	// PATCH is a merge patch: only what is present changes.
	patched := decode[berth.App](t, e.do(write, "PATCH", "/api/v1/apps/web", map[string]any{
		"port":      3000,
		"health":    map[string]any{"timeout": "5s"},
		"build":     map[string]any{"args": map[string]any{"A": nil, "C": "3"}},
		"resources": map[string]any{"memory_mb": 256},
	}), http.StatusOK)
	ph := patched.Health
	if patched.Port != 3000 || patched.Replicas != 1 || patched.Source.Git != "https://git.example.com/web.git" ||
		ph.Path != "/up" || ph.Interval != 250*time.Millisecond || ph.Timeout != 5*time.Second || patched.Resources.MemoryMB != 256 {
		t.Errorf("patched = %+v health %+v", patched, ph)
	}
	if args := patched.Build.Args; len(args) != 2 || args["B"] != "2" || args["C"] != "3" {
		t.Errorf("build args = %v, want B=2 C=3", args)
	}
	// null resets a field to its default.
	reset := decode[berth.App](t, e.do(write, "PATCH", "/api/v1/apps/web", `{"port": null, "health": null}`), http.StatusOK)
	if reset.Port != 8080 || reset.Health != berth.DefaultHealthCheck {
		t.Errorf("after null: port %d health %+v", reset.Port, reset.Health)
	}
	// A new source kind drops the old kind's fields; mixing them is refused.
	if r := e.do(write, "PATCH", "/api/v1/apps/web", `{"source": {"image": "nginx:1"}}`); r.status != http.StatusBadRequest {
		t.Errorf("image on a git app without a kind: %d, want 400", r.status)
	}
	img := decode[berth.App](t, e.do(write, "PATCH", "/api/v1/apps/web", `{"source": {"kind": "image", "image": "nginx:1"}}`), http.StatusOK)
	if img.Source != (berth.Source{Kind: berth.SourceImage, Image: "nginx:1"}) {
		t.Errorf("source after switching to image = %+v", img.Source)
	}
	back := decode[berth.App](t, e.do(write, "PATCH", "/api/v1/apps/web", `{"source": {"kind": "git", "git": "https://git.example.com/web.git"}}`), http.StatusOK)
	if back.Source != (berth.Source{Kind: berth.SourceGit, Git: "https://git.example.com/web.git", Ref: "main"}) {
		t.Errorf("source after switching back to git = %+v", back.Source)
	}
	got := decode[berth.App](t, e.do(admin, "GET", "/api/v1/apps/web", nil), http.StatusOK)
	if got.Port != 8080 || got.Build.Args["C"] != "3" || !got.CreatedAt.Equal(a.CreatedAt) {
		t.Errorf("stored app = %+v", got)
	}

	// Invalid patches change nothing.
	for name, body := range map[string]string{
		"rename":        `{"name": "other"}`,
		"bad replicas":  `{"replicas": 1000}`,
		"unknown field": `{"portt": 1}`,
		"nested field":  `{"health": {"pth": "/"}}`,
		"bad duration":  `{"health": {"interval": "soon"}}`,
		"wrong type":    `{"port": "80"}`,
		"not object":    `[1]`,
		"null body":     `null`,
		"local git":     `{"source": {"git": "/etc"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			r := e.do(write, "PATCH", "/api/v1/apps/web", body)
			if r.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", r.status, r.body)
			}
			r.problem(t)
		})
	}
	if got := decode[berth.App](t, e.do(admin, "GET", "/api/v1/apps/web", nil), http.StatusOK); got.Port != 8080 || got.Name != "web" {
		t.Errorf("an invalid patch changed the app: %+v", got)
	}

	// Delete.
	if r := e.do(write, "DELETE", "/api/v1/apps/web", nil); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if r := e.do(admin, "GET", "/api/v1/apps/web", nil); r.status != http.StatusNotFound {
		t.Errorf("after delete: %d, want 404", r.status)
	} else if p := r.problem(t); p.Detail != `no app named "web"` {
		t.Errorf("detail %q", p.Detail)
	}
	if r := e.do(write, "DELETE", "/api/v1/apps/web", nil); r.status != http.StatusNotFound {
		t.Errorf("second delete: %d, want 404", r.status)
	}
}

// TestHostileInput sends what attackers send. Each must be refused with a
// 400 problem document before it reaches the store, git or Docker.
func TestHostileInput(t *testing.T) {
	e := newEnv(t)
	e.createApp(gitApp("web"))
	write := e.tokens[berth.ScopeWrite]
	big := `{"name": "` + strings.Repeat("a", MaxJSONBody) + `"}`
	tests := []struct {
		name, method, path, body string
	}{
		{"name with shell", "POST", "/api/v1/apps", `{"name": "web;rm -rf /", "source": {"kind": "upload"}}`},
		{"name with path", "POST", "/api/v1/apps", `{"name": "../etc", "source": {"kind": "upload"}}`},
		{"name uppercase", "POST", "/api/v1/apps", `{"name": "Web", "source": {"kind": "upload"}}`},
		{"name empty", "POST", "/api/v1/apps", `{"source": {"kind": "upload"}}`},
		{"name with newline", "POST", "/api/v1/apps", `{"name": "a\nb", "source": {"kind": "upload"}}`},
		{"git option", "POST", "/api/v1/apps", `{"name": "x", "source": {"git": "--upload-pack=touch /tmp/pwned"}}`},
		{"git ext transport", "POST", "/api/v1/apps", `{"name": "x", "source": {"git": "ext::sh -c touch% /tmp/pwned"}}`},
		{"git file transport", "POST", "/api/v1/apps", `{"name": "x", "source": {"git": "file:///etc"}}`},
		{"git local path", "POST", "/api/v1/apps", `{"name": "x", "source": {"git": "/var/lib/berth"}}`},
		{"git url with space", "POST", "/api/v1/apps", `{"name": "x", "source": {"git": "https://h.example.com/a b"}}`},
		{"ref option", "POST", "/api/v1/apps", `{"name": "x", "source": {"git": "https://h.example.com/a", "ref": "--force"}}`},
		{"ref with shell", "POST", "/api/v1/apps", `{"name": "x", "source": {"git": "https://h.example.com/a", "ref": "main;rm -rf /"}}`},
		{"image with shell", "POST", "/api/v1/apps", `{"name": "x", "source": {"image": "nginx; rm -rf /"}}`},
		{"git and image", "POST", "/api/v1/apps", `{"name": "x", "source": {"git": "https://h.example.com/a", "image": "nginx"}}`},
		{"upload with git", "POST", "/api/v1/apps", `{"name": "x", "source": {"kind": "upload", "git": "https://h.example.com/a"}}`},
		{"unknown source kind", "POST", "/api/v1/apps", `{"name": "x", "source": {"kind": "ftp"}}`},
		{"dockerfile escape", "POST", "/api/v1/apps", `{"name": "x", "source": {"kind": "upload"}, "build": {"dockerfile": "../../etc/passwd"}}`},
		{"context absolute", "POST", "/api/v1/apps", `{"name": "x", "source": {"kind": "upload"}, "build": {"context": "/etc"}}`},
		{"build arg name", "POST", "/api/v1/apps", `{"name": "x", "source": {"kind": "upload"}, "build": {"args": {"A=B": "1"}}}`},
		{"volume root", "POST", "/api/v1/apps", `{"name": "x", "source": {"kind": "upload"}, "volumes": [{"name": "d", "path": "/"}]}`},
		{"volume host bind", "POST", "/api/v1/apps", `{"name": "x", "source": {"kind": "upload"}, "volumes": [{"name": "/etc", "path": "/data"}]}`},
		{"port zero after all", "POST", "/api/v1/apps", `{"name": "x", "source": {"kind": "upload"}, "port": 70000}`},
		{"negative duration", "POST", "/api/v1/apps", `{"name": "x", "source": {"kind": "upload"}, "health": {"timeout": "-1s"}}`},
		{"duration as number", "POST", "/api/v1/apps", `{"name": "x", "source": {"kind": "upload"}, "health": {"timeout": 5}}`},
		{"unknown field", "POST", "/api/v1/apps", `{"name": "x", "source": {"kind": "upload"}, "admin": true}`},
		{"unknown nested field", "POST", "/api/v1/apps", `{"name": "x", "source": {"kind": "upload", "cmd": "sh"}}`},
		{"id chosen by client", "POST", "/api/v1/apps", `{"id": "app_aaaaaaaaaaaaaaaa", "name": "x", "source": {"kind": "upload"}}`},
		{"team chosen by client", "POST", "/api/v1/apps", `{"team_id": "team_x", "name": "x", "source": {"kind": "upload"}}`},
		{"not json", "POST", "/api/v1/apps", `name=x`},
		{"truncated json", "POST", "/api/v1/apps", `{"name": "x"`},
		{"trailing data", "POST", "/api/v1/apps", `{"name": "x", "source": {"kind": "upload"}} {}`},
		{"empty body", "POST", "/api/v1/apps", ``},
		{"body over 1 MiB", "POST", "/api/v1/apps", big},
		{"host with space", "POST", "/api/v1/apps/web/domains", `{"host": "exa mple.com"}`},
		{"host with shell", "POST", "/api/v1/apps/web/domains", `{"host": "a.com;rm -rf /"}`},
		{"host single label", "POST", "/api/v1/apps/web/domains", `{"host": "localhost"}`},
		{"host empty label", "POST", "/api/v1/apps/web/domains", `{"host": "a..com"}`},
		{"host leading dash", "POST", "/api/v1/apps/web/domains", `{"host": "-a.com"}`},
		{"host with port", "POST", "/api/v1/apps/web/domains", `{"host": "a.com:80"}`},
		{"host with path", "POST", "/api/v1/apps/web/domains", `{"host": "a.com/x"}`},
		{"host unknown field", "POST", "/api/v1/apps/web/domains", `{"host": "a.com", "app": "other"}`},
		{"env key with =", "PATCH", "/api/v1/apps/web/env", `{"set": {"A=B": "1"}}`},
		{"env key with digit", "PATCH", "/api/v1/apps/web/env", `{"set": {"1A": "1"}}`},
		{"env key reserved", "PATCH", "/api/v1/apps/web/env", `{"set": {"BERTH_TOKEN": "1"}}`},
		{"env key empty", "PATCH", "/api/v1/apps/web/env", `{"set": {"": "1"}}`},
		{"env value NUL", "PATCH", "/api/v1/apps/web/env", `{"set": {"A": "a\u0000b"}}`},
		{"env unset bad key", "PATCH", "/api/v1/apps/web/env", `{"unset": ["A;B"]}`},
		{"env set and unset", "PATCH", "/api/v1/apps/web/env", `{"set": {"A": "1"}, "unset": ["A"]}`},
		{"env unknown field", "PATCH", "/api/v1/apps/web/env", `{"sett": {"A": "1"}}`},
		{"deploy ref option", "POST", "/api/v1/apps/web/deployments", `{"ref": "--upload-pack=x"}`},
		{"deploy ref shell", "POST", "/api/v1/apps/web/deployments", `{"ref": "$(reboot)"}`},
		{"deploy image on git app", "POST", "/api/v1/apps/web/deployments", `{"image": "nginx"}`},
		{"deploy unknown field", "POST", "/api/v1/apps/web/deployments", `{"commit": "abc"}`},
		{"deploy upload on git app", "POST", "/api/v1/apps/web/deployments", "\x1f\x8b"},
		{"rollback unknown field", "POST", "/api/v1/apps/web/rollback", `{"release": "", "force": true}`},
		{"limit zero", "GET", "/api/v1/apps/web/deployments?limit=0", ``},
		{"limit huge", "GET", "/api/v1/apps/web/releases?limit=100000", ``},
		{"limit text", "GET", "/api/v1/apps/web/deployments?limit=all", ``},
		{"tail text", "GET", "/api/v1/apps/web/logs?tail=lots", ``},
		{"follow text", "GET", "/api/v1/apps/web/logs?follow=maybe", ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var headers []string
			if tt.name == "deploy upload on git app" {
				headers = []string{"Content-Type", "application/gzip"}
			}
			var body any
			if tt.body != "" || tt.method != "GET" {
				body = tt.body
			}
			r := e.do(write, tt.method, tt.path, body, headers...)
			if r.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", r.status, r.body)
			}
			p := r.problem(t)
			if p.Type != ProblemTypePrefix+"invalid" || p.Detail == "" || p.Detail == "internal error" {
				t.Errorf("problem %+v", p)
			}
		})
	}
	apps := decode[[]berth.App](t, e.do(write, "GET", "/api/v1/apps", nil), http.StatusOK)
	if len(apps) != 1 {
		t.Errorf("%d apps after hostile input, want 1", len(apps))
	}
	if r := e.do(write, "POST", "/api/v1/apps", `{"name": "x", "source": {"kind": "upload"}}`, "Content-Type", "text/plain"); r.status != http.StatusBadRequest {
		t.Errorf("text/plain body: %d, want 400", r.status)
	}
}

func TestLocalGitAllowed(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	if r := e.do(e.tokens[berth.ScopeWrite], "POST", "/api/v1/apps", map[string]any{"name": "x", "source": map[string]any{"git": dir}}); r.status != http.StatusBadRequest {
		t.Fatalf("local git without AllowLocalGit: %d, want 400", r.status)
	}
	e.api.localGit = true
	if r := e.do(e.tokens[berth.ScopeWrite], "POST", "/api/v1/apps", map[string]any{"name": "x", "source": map[string]any{"git": dir}}); r.status != http.StatusCreated {
		t.Fatalf("local git with AllowLocalGit: %d, want 201: %s", r.status, r.body)
	}
}

func TestListAppsPaged(t *testing.T) {
	w := newWalkEnv(t) // "web" (default project, live), "papp" (project p); dave is narrowed to p
	admin := w.tokens[berth.ScopeAdmin]
	for i := range 6 {
		project := "default"
		if i%2 == 1 {
			project = "p"
		}
		w.createApp(map[string]any{"name": fmt.Sprintf("svc-%d", i), "project": project, "source": map[string]any{"image": "nginx:1"}})
	}
	names := func(r response) ([]string, string) {
		t.Helper()
		var out []string
		for _, a := range decode[[]berth.App](t, r, http.StatusOK) {
			out = append(out, a.Name)
		}
		return out, r.header.Get(TotalCountHeader)
	}
	for _, tc := range []struct {
		name, token, query string
		want               []string
		total              string
	}{
		{"all", admin, "", []string{"papp", "svc-0", "svc-1", "svc-2", "svc-3", "svc-4", "svc-5", "web"}, "8"},
		{"a page", admin, "?limit=3&offset=2", []string{"svc-1", "svc-2", "svc-3"}, "8"},
		{"past the end", admin, "?limit=3&offset=30", nil, "8"},
		{"search", admin, "?q=SVC-", []string{"svc-0", "svc-1", "svc-2", "svc-3", "svc-4", "svc-5"}, "6"},
		{"project by name", admin, "?project=p&limit=2", []string{"papp", "svc-1"}, "4"},
		{"search in a project", admin, "?project=default&q=we", []string{"web"}, "1"},
		{"nothing found", admin, "?q=%25", nil, "0"},
		// A member narrowed to p sees p's apps only, in the count too.
		{"narrowed", w.narrowed, "?limit=2", []string{"papp", "svc-1"}, "4"},
		{"narrowed, searching outside", w.narrowed, "?q=web", nil, "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, total := names(w.do(tc.token, "GET", "/api/v1/apps"+tc.query, nil))
			if !slices.Equal(got, tc.want) || total != tc.total {
				t.Errorf("GET /api/v1/apps%s = %v, total %s; want %v, total %s", tc.query, got, total, tc.want, tc.total)
			}
		})
	}
	for _, q := range []string{"?limit=0", "?limit=1001", "?limit=x", "?offset=-1", "?offset=x", "?q=" + strings.Repeat("a", 41), "?q=%ff"} {
		if r := w.do(admin, "GET", "/api/v1/apps"+q, nil); r.status != http.StatusBadRequest {
			t.Errorf("GET /api/v1/apps%s = %d, want 400", q, r.status)
		}
	}
	for _, tc := range []struct{ token, query string }{{admin, "?project=ghost"}, {w.narrowed, "?project=default"}} {
		if r := w.do(tc.token, "GET", "/api/v1/apps"+tc.query, nil); r.status != http.StatusNotFound {
			t.Errorf("GET /api/v1/apps%s = %d, want 404 (no such project, or not one the caller sees)", tc.query, r.status)
		}
	}

	// The client pages and filters too, and the CLI's listing still gets
	// every app.
	c := NewClient(w.srv.URL, admin, nil)
	apps, total, err := c.FindApps(context.Background(), AppQuery{Query: "svc", Project: "p", Limit: 2, Offset: 1})
	if err != nil || total != 3 || len(apps) != 2 || apps[0].Name != "svc-3" || apps[1].Name != "svc-5" {
		t.Errorf("FindApps = %v, %d, %v", apps, total, err)
	}
	if all, err := c.Apps(context.Background()); err != nil || len(all) != 8 {
		t.Errorf("Apps = %d apps, %v", len(all), err)
	}

	// The newest deployments of some apps only; an app the caller does
	// not see is left out like one that does not exist.
	w.deployLive("svc-1")
	latest := func(token, query string) []string {
		t.Helper()
		var out []string
		for _, d := range decode[[]berth.Deployment](t, w.do(token, "GET", "/api/v1/deployments"+query, nil), http.StatusOK) {
			a, err := w.st.AppByID(context.Background(), d.TeamID, d.AppID)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, a.Name)
		}
		slices.Sort(out)
		return out
	}
	if got := latest(admin, ""); !slices.Equal(got, []string{"svc-1", "web"}) {
		t.Errorf("latest deployments = %v, want svc-1's and web's", got)
	}
	if got := latest(admin, "?app=svc-1&app=svc-2&app=ghost"); !slices.Equal(got, []string{"svc-1"}) {
		t.Errorf("latest deployments of svc-1, svc-2 and ghost = %v, want svc-1's", got)
	}
	if got := latest(w.narrowed, "?app=web&app=svc-1"); !slices.Equal(got, []string{"svc-1"}) {
		t.Errorf("narrowed member: latest deployments of web and svc-1 = %v, want svc-1's only", got)
	}
	if got := latest(w.narrowed, ""); !slices.Equal(got, []string{"svc-1"}) {
		t.Errorf("narrowed member: latest deployments = %v, want svc-1's only", got)
	}
	many := "?app=" + strings.Repeat("x&app=", 1000) + "x"
	if r := w.do(admin, "GET", "/api/v1/deployments"+many, nil); r.status != http.StatusBadRequest {
		t.Errorf("1001 apps named: %d, want 400", r.status)
	}
}
