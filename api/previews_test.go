package api

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth"
)

func TestPreviewSettingsAPI(t *testing.T) {
	e := newEnv(t)
	admin := e.tokens[berth.ScopeAdmin]
	e.createApp(gitApp("web"))
	const path = "/api/v1/apps/web/previews/settings"
	got := decode[PreviewSettings](t, e.do(e.tokens[berth.ScopeRead], "GET", path, nil), http.StatusOK)
	if got.Enabled || got.MaxPreviews != berth.DefaultMaxPreviews || got.TTL != "168h0m0s" || got.StatusTokenSet || len(got.Env) != 0 {
		t.Errorf("default settings %+v", got)
	}
	in := map[string]any{"enabled": true, "max_previews": 5, "ttl": "3d", "env": map[string]string{"DB": "preview-db"},
		"status_api": "https://gitea.example.com/api/v1/", "status_token": "tok-write-only"}
	r := e.do(admin, "PUT", path, in)
	got = decode[PreviewSettings](t, r, http.StatusOK)
	if !got.Enabled || got.MaxPreviews != 5 || got.TTL != "72h0m0s" || !got.StatusTokenSet || got.StatusAPI != "https://gitea.example.com/api/v1" ||
		len(got.Env) != 1 || got.Env[0].Value != "preview-db" {
		t.Errorf("settings after PUT %+v", got)
	}
	if strings.Contains(string(r.body), "tok-write-only") {
		t.Error("the token came back")
	}
	// Without read-secrets the overrides are redacted; the token never shows.
	r = e.do(e.tokens[berth.ScopeRead], "GET", path, nil)
	got = decode[PreviewSettings](t, r, http.StatusOK)
	if len(got.Env) != 1 || got.Env[0].Value != "" || !got.Env[0].Redacted || strings.Contains(string(r.body), "tok-write-only") {
		t.Errorf("settings for a reader %s", r.body)
	}
	// Fields left out keep their value.
	got = decode[PreviewSettings](t, e.do(e.tokens[berth.ScopeWrite], "PUT", path, map[string]any{"max_previews": 2}), http.StatusOK)
	if !got.Enabled || got.MaxPreviews != 2 || got.TTL != "72h0m0s" || !got.StatusTokenSet || len(got.Env) != 1 {
		t.Errorf("partial PUT %+v", got)
	}
	ps, err := e.st.PreviewSettings(context.Background(), e.principal(admin).Team.ID, e.appID("web"))
	if err != nil || ps.StatusToken != "tok-write-only" {
		t.Errorf("stored token %q, %v", ps.StatusToken, err)
	}
	// "" removes the token.
	got = decode[PreviewSettings](t, e.do(admin, "PUT", path, map[string]any{"status_token": ""}), http.StatusOK)
	if got.StatusTokenSet {
		t.Error("the token is still set")
	}
	for name, body := range map[string]any{
		"ttl":             map[string]any{"ttl": "forever"},
		"ttl short":       map[string]any{"ttl": "1m"},
		"max":             map[string]any{"max_previews": 0},
		"max big":         map[string]any{"max_previews": 1000},
		"api scheme":      map[string]any{"status_api": "file:///etc/passwd"},
		"api loopback":    map[string]any{"status_api": "http://127.0.0.1:9/api"},
		"api metadata":    map[string]any{"status_api": "http://169.254.169.254/latest"},
		"env reserved":    map[string]any{"env": map[string]string{"BERTH_APP": "x"}},
		"unknown field":   map[string]any{"colour": "red"},
		"token with crlf": map[string]any{"status_token": "a\r\nb"},
	} {
		if r := e.do(admin, "PUT", path, body); r.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", name, r.status, r.body)
		}
	}
	if r := e.do(e.tokens[berth.ScopeDeploy], "PUT", path, map[string]any{"enabled": false}); r.status != http.StatusForbidden {
		t.Errorf("deploy scope changes settings: %d", r.status)
	}
}

// appID returns the ID of the admin team's app name.
func (e *testEnv) appID(name string) string {
	e.t.Helper()
	a := decode[berth.App](e.t, e.do(e.tokens[berth.ScopeAdmin], "GET", "/api/v1/apps/"+name, nil), http.StatusOK)
	return a.ID
}

func TestPreviewsAPI(t *testing.T) {
	e := newEnv(t)
	admin := e.tokens[berth.ScopeAdmin]
	e.createApp(gitApp("web"))
	decode[berth.Domain](t, e.do(admin, "POST", "/api/v1/apps/web/domains", map[string]string{"host": "web.example.com"}), http.StatusCreated)
	decode[PreviewSettings](t, e.do(admin, "PUT", "/api/v1/apps/web/previews/settings", map[string]any{"enabled": true}), http.StatusOK)
	event := func(n int, sha string, fork bool, action string) map[string]any {
		return map[string]any{"provider": "github", "repo": "acme/web", "number": n, "action": action, "base_ref": "main",
			"head_ref": "feature", "head_sha": sha, "fetch_ref": "refs/pull/7/head", "fork": fork}
	}
	head := strings.Repeat("a", 40)
	res := decode[EventResult](t, e.do(e.tokens[berth.ScopeWrite], "POST", "/api/v1/apps/web/previews", event(7, head, true, "opened")), http.StatusOK)
	if !strings.Contains(res.Outcome, "https://pr-7.web.example.com") {
		t.Errorf("outcome %q", res.Outcome)
	}
	if r := e.do(e.tokens[berth.ScopeDeploy], "POST", "/api/v1/apps/web/previews", event(8, head, false, "opened")); r.status != http.StatusForbidden {
		t.Errorf("an event with the deploy scope: %d, want 403 (it can deploy any ref with secrets)", r.status)
	}
	c := e.client(berth.ScopeRead)
	ctx := context.Background()
	var list []berth.Preview
	waitUntil(t, "the preview to go live", func() bool {
		var err error
		list, err = c.Previews(ctx, "web")
		return err == nil && len(list) == 1 && list[0].Status == berth.PreviewLive
	})
	p := list[0]
	if p.ChildApp != "web-pr-7" || p.URL != "https://pr-7.web.example.com" || !p.Fork {
		t.Errorf("preview %+v", p)
	}
	// Its app is reachable by name but not listed among the team's apps,
	// and its settings follow the parent: not changed by hand.
	apps := decode[[]berth.App](t, e.do(admin, "GET", "/api/v1/apps", nil), http.StatusOK)
	if len(apps) != 1 || apps[0].Name != "web" {
		t.Errorf("apps %+v", apps)
	}
	decode[berth.App](t, e.do(admin, "GET", "/api/v1/apps/web-pr-7", nil), http.StatusOK)
	for _, req := range []struct{ method, path string }{
		{"PATCH", "/api/v1/apps/web-pr-7"}, {"PATCH", "/api/v1/apps/web-pr-7/env"},
		{"POST", "/api/v1/apps/web-pr-7/domains"}, {"DELETE", "/api/v1/apps/web-pr-7/domains/pr-7.web.example.com"},
		{"PUT", "/api/v1/apps/web-pr-7/previews/settings"},
	} {
		r := e.do(admin, req.method, req.path, map[string]any{"set": map[string]string{"A": "b"}, "host": "x.example.com", "replicas": 3})
		if r.status != http.StatusConflict || !strings.Contains(r.problem(t).Detail, "preview") {
			t.Errorf("%s %s: %d %s, want 409", req.method, req.path, r.status, r.body)
		}
	}

	// Approval needs read-secrets on top of write; the body names the head.
	if _, err := e.client(berth.ScopeWrite).ApprovePreview(ctx, "web", 7, ""); !berth.IsKind(err, berth.Forbidden) {
		t.Errorf("approve with write only: %v", err)
	}
	if _, err := e.client(berth.ScopeAdmin).ApprovePreview(ctx, "web", 7, strings.Repeat("b", 40)); !berth.IsKind(err, berth.Conflict) {
		t.Errorf("approve another commit: %v", err)
	}
	if r := e.do(admin, "POST", "/api/v1/apps/web/previews/7/approve", nil); r.status != http.StatusOK {
		t.Errorf("approve without a body: %d %s", r.status, r.body)
	}
	got, err := c.Preview(ctx, "web", 7)
	if err != nil || got.ApprovedSHA != head || got.ApprovedBy == "" {
		t.Errorf("approved preview %+v, %v", got, err)
	}
	for _, path := range []string{"/api/v1/apps/web/previews/8", "/api/v1/apps/web/previews/007", "/api/v1/apps/web/previews/-1", "/api/v1/apps/web/previews/x"} {
		if r := e.do(admin, "DELETE", path, nil); r.status != http.StatusNotFound {
			t.Errorf("DELETE %s: %d, want 404", path, r.status)
		}
	}

	// Manual teardown: 202 closing, then gone with its app.
	del, err := e.client(berth.ScopeWrite).DeletePreview(ctx, "web", 7)
	if err != nil || del.Status != berth.PreviewClosing {
		t.Fatalf("delete: %+v, %v", del, err)
	}
	waitUntil(t, "the preview to be gone", func() bool {
		_, err := c.Preview(ctx, "web", 7)
		return berth.IsKind(err, berth.NotFound)
	})
	if r := e.do(admin, "GET", "/api/v1/apps/web-pr-7", nil); r.status != http.StatusNotFound {
		t.Errorf("the preview's app after the teardown: %d", r.status)
	}
	// The audit log names what was done to which preview.
	var actions []string
	_ = e.st.AuditEvents(ctx, e.principal(admin).Team.ID, berth.AuditFilter{Action: "preview."}, func(ev *berth.AuditEvent) error {
		actions = append(actions, ev.Action+" "+ev.Target)
		return nil
	})
	joined := strings.Join(actions, "\n")
	for _, want := range []string{"preview.delete app=web n=7", "preview.approve app=web n=7", "preview.event app=web", "preview.settings app=web"} {
		if !strings.Contains(joined, want) {
			t.Errorf("audit log lacks %q:\n%s", want, joined)
		}
	}
}

// waitUntil polls cond for at most 20s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("still waiting after 20s for %s", what)
}
