package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth"
)

func TestClientErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.client(berth.ScopeWrite).CreateApp(ctx, &berth.App{Name: "web", Source: berth.Source{Kind: berth.SourceUpload}}); err != nil {
		t.Fatal(err)
	}
	// A server that answers like a broken reverse proxy would.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream connect error", http.StatusBadGateway)
	}))
	t.Cleanup(proxy.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	tests := []struct {
		name     string
		call     func() error
		kind     berth.Kind
		contains string
	}{
		{"not found", func() error { _, err := e.client(berth.ScopeRead).App(ctx, "nope"); return err }, berth.NotFound, `no app named "nope"`},
		{"hostile name", func() error { _, err := e.client(berth.ScopeRead).App(ctx, "../../etc;x"); return err }, berth.NotFound, ""},
		{"bad token", func() error { _, err := NewClient(e.srv.URL, "berth_nope", nil).Apps(ctx); return err }, berth.Unauthorized, "invalid token"},
		{"no token", func() error { _, err := NewClient(e.srv.URL, "", nil).Me(ctx); return err }, berth.Unauthorized, "Bearer"},
		{"forbidden", func() error {
			_, err := e.client(berth.ScopeRead).CreateApp(ctx, &berth.App{Name: "x", Source: berth.Source{Kind: berth.SourceUpload}})
			return err
		}, berth.Forbidden, `permission "write" needed`},
		{"invalid", func() error {
			_, err := e.client(berth.ScopeWrite).CreateApp(ctx, &berth.App{Name: "Bad Name"})
			return err
		}, berth.Invalid, `name "Bad Name"`},
		{"conflict", func() error {
			_, err := e.client(berth.ScopeWrite).CreateApp(ctx, &berth.App{Name: "web", Source: berth.Source{Kind: berth.SourceUpload}})
			return err
		}, berth.Conflict, "already exists"},
		{"invalid host", func() error { _, err := e.client(berth.ScopeWrite).AddDomain(ctx, "web", "bad host"); return err }, berth.Invalid, "host"},
		{"follow missing", func() error {
			_, err := e.client(berth.ScopeRead).FollowDeployment(ctx, "web", "7", func(berth.LogLine) {}, nil)
			return err
		}, berth.NotFound, "no deployment"},
		{"plain text 502", func() error { _, err := NewClient(proxy.URL, "t", nil).Apps(ctx); return err }, berth.Unavailable, "upstream connect error"},
		{"connection refused", func() error { _, err := NewClient(closed.URL, "t", nil).Apps(ctx); return err }, berth.Unavailable, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var be *berth.Error
			if !errors.As(err, &be) {
				t.Fatalf("error %v (%T) is not a *berth.Error", err, err)
			}
			if be.Kind != tt.kind {
				t.Errorf("kind %s, want %s (%v)", be.Kind, tt.kind, err)
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("error %q does not contain %q", err, tt.contains)
			}
		})
	}
}

func TestClientRoundTrip(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client(berth.ScopeAdmin)
	me, err := c.Me(ctx)
	if err != nil || me.User.Name != "admin" || me.Team.Name != "main" || me.Role != berth.RoleOwner || len(me.Scopes) != 5 || me.Scopes[0] != berth.ScopeAdmin {
		t.Fatalf("me = %+v, %v", me, err)
	}
	a, err := c.CreateApp(ctx, &berth.App{Name: "web", Source: berth.Source{Git: "https://git.example.com/web.git"},
		Health: berth.HealthCheck{Interval: time.Second}, Volumes: []berth.Volume{{Name: "data", Path: "/data"}}})
	if err != nil {
		t.Fatal(err)
	}
	if h := a.Health; h.Interval != time.Second || h.Path != "/" || h.Deadline != time.Minute {
		t.Errorf("health = %+v", h)
	}
	port, threshold := 9000, 3
	path := "/ready"
	interval := 2 * time.Second
	a, err = c.UpdateApp(ctx, "web", AppPatch{Port: &port, Health: &HealthPatch{Path: &path, Interval: &interval, Threshold: &threshold}, Volumes: &[]berth.Volume{}})
	if err != nil {
		t.Fatal(err)
	}
	if h := a.Health; a.Port != 9000 || h.Path != "/ready" || h.Interval != 2*time.Second || h.Threshold != 3 || h.Timeout != 2*time.Second || len(a.Volumes) != 0 {
		t.Errorf("after update: %+v %+v", a, h)
	}
	if _, err := c.AddDomain(ctx, "web", "web.example.com"); err != nil {
		t.Fatal(err)
	}
	if ds, err := c.Domains(ctx, "web"); err != nil || len(ds) != 1 || ds[0].Certificate.Status != berth.CertNone || !strings.Contains(ds[0].Certificate.LastError, "deploy") {
		t.Errorf("domains = %+v, %v", ds, err)
	}
	if res, err := c.UpdateEnv(ctx, "web", EnvPatch{Set: map[string]string{"K": "v"}}); err != nil || len(res.Env) != 1 || res.Env[0].Value != "v" {
		t.Errorf("env = %+v, %v", res, err)
	}
	d, err := c.Deploy(ctx, "web", DeployRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	var statuses []berth.Status
	final, err := c.FollowDeployment(ctx, "web", d.ID, func(l berth.LogLine) { lines = append(lines, l.Text) },
		func(d *berth.Deployment) { statuses = append(statuses, d.Status) })
	if err != nil || final.Status != berth.StatusLive || len(lines) == 0 || len(statuses) == 0 {
		t.Fatalf("follow: %+v, %d lines, statuses %v, %v", final, len(lines), statuses, err)
	}
	cert, key := testCert(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "web.example.com")
	if d, err := c.SetCertificate(ctx, "web", "web.example.com", cert, key); err != nil || d.Certificate.Status != berth.CertValid {
		t.Errorf("set certificate = %+v, %v", d, err)
	}
	if _, err := c.SetCertificate(ctx, "web", "nope.example.com", cert, key); !berth.IsKind(err, berth.NotFound) {
		t.Errorf("set certificate of an unknown host: %v, want not found", err)
	}
	if err := c.RemoveCertificate(ctx, "web", "web.example.com"); err != nil {
		t.Error(err)
	}
	if ds, err := c.Domains(ctx, "web"); err != nil || len(ds) != 1 || ds[0].Certificate.Status != berth.CertNone || ds[0].Certificate.LastError != "" {
		t.Errorf("domains after removing the certificate = %+v, %v", ds, err)
	}
	var log strings.Builder
	if err := c.DeploymentLog(ctx, "web", "1", &log); err != nil || !strings.Contains(log.String(), lines[0]) {
		t.Errorf("log %q, %v", log.String(), err)
	}
	if got, err := c.Deployment(ctx, "web", "1"); err != nil || got.ID != d.ID {
		t.Errorf("deployment 1 = %+v, %v", got, err)
	}
	if ds, err := c.Deployments(ctx, "web", 5); err != nil || len(ds) != 1 {
		t.Errorf("deployments = %v, %v", ds, err)
	}
	rels, err := c.Releases(ctx, "web", 0)
	if err != nil || len(rels) != 1 || rels[0].Config.Env["K"] != "v" || rels[0].Config.Port != 9000 || rels[0].Config.Health.Path != "/ready" {
		t.Errorf("releases = %+v, %v", rels, err)
	}
	st, err := c.Status(ctx, "web")
	if err != nil || st.Live == nil || st.Live.ID != d.ID || st.App.Name != "web" || st.Release.ID != rels[0].ID || st.Domains[0] != "web.example.com" {
		t.Errorf("status = %+v, %v", st, err)
	}
	if _, err := c.Rollback(ctx, "web", ""); !berth.IsKind(err, berth.Conflict) {
		t.Errorf("rollback with one release: %v, want a conflict", err)
	}
	if _, err := c.CancelDeployment(ctx, "web", d.ID); !berth.IsKind(err, berth.Conflict) {
		t.Errorf("cancel a live deployment: %v, want a conflict", err)
	}
	if err := c.RemoveDomain(ctx, "web", "web.example.com"); err != nil {
		t.Error(err)
	}
	if doc, err := c.OpenAPI(ctx); err != nil || !strings.Contains(string(doc), `"openapi": "3.1.0"`) {
		t.Errorf("openapi: %v", err)
	}
	if err := c.Healthz(ctx); err != nil {
		t.Error(err)
	}
	if err := c.DeleteApp(ctx, "web", false); err != nil {
		t.Fatal(err)
	}
	if apps, err := c.Apps(ctx); err != nil || len(apps) != 0 {
		t.Errorf("apps after delete = %v, %v", apps, err)
	}
}

func TestHealthz(t *testing.T) {
	e := newEnv(t)
	r := e.do("", "GET", "/healthz", nil)
	if r.status != http.StatusOK || string(r.body) != "ok" {
		t.Errorf("healthz: %d %q", r.status, r.body)
	}
	e.st.Close()
	r = e.do("", "GET", "/healthz", nil)
	if r.status != http.StatusServiceUnavailable {
		t.Errorf("healthz with the store closed: %d, want 503", r.status)
	}
	r.problem(t)
}

// TestInternalErrorsStayInside checks that an internal failure is logged
// in full and answered with a generic message.
func TestInternalErrorsStayInside(t *testing.T) {
	e := newEnv(t)
	e.st.Close()
	r := e.do(e.tokens[berth.ScopeAdmin], "GET", "/api/v1/apps", nil)
	if r.status < 500 {
		t.Fatalf("status %d, want 5xx", r.status)
	}
	p := r.problem(t)
	if strings.Contains(strings.ToLower(p.Detail), "sql") || strings.Contains(p.Detail, "closed") || strings.Contains(p.Detail, "/") {
		t.Errorf("detail leaks internals: %q", p.Detail)
	}
	if logs := e.logs.String(); !strings.Contains(logs, "closed") {
		t.Errorf("the internal error was not logged:\n%s", logs)
	}
}

func TestHealthPatchJSON(t *testing.T) {
	path, threshold, interval, deadline := "/up", 2, 250*time.Millisecond, 90*time.Second
	for _, tt := range []struct {
		name  string
		patch HealthPatch
		want  string
	}{
		{"empty", HealthPatch{}, `{}`},
		{"durations as strings", HealthPatch{Interval: &interval, Deadline: &deadline}, `{"deadline":"1m30s","interval":"250ms"}`},
		{"path and threshold", HealthPatch{Path: &path, Threshold: &threshold}, `{"path":"/up","threshold":2}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.patch)
			if err != nil || string(b) != tt.want {
				t.Errorf("marshal = %s, %v; want %s", b, err, tt.want)
			}
		})
	}
	if b, _ := json.Marshal(AppPatch{}); string(b) != `{}` {
		t.Errorf("empty AppPatch = %s", b)
	}
}
