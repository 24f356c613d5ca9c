package api

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth"
)

func wantSecureHeaders(t *testing.T, what string, h http.Header, csp string) {
	t.Helper()
	for k, v := range map[string]string{
		"Content-Security-Policy": csp,
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
	} {
		if got := h.Get(k); got != v {
			t.Errorf("%s: %s = %q, want %q", what, k, got, v)
		}
	}
}

// serveLimited serves h with NewHTTPServer's limits, writeTimeout aside.
func serveLimited(t *testing.T, h http.Handler, writeTimeout time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewHTTPServer(h)
	srv.WriteTimeout = writeTimeout
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func TestSecureHeaders(t *testing.T) {
	e := newEnv(t)
	e.createApp(gitApp("web"))
	mux := http.NewServeMux()
	mux.Handle("/api/", SecureHeaders(e.api.Handler()))
	mux.Handle("/healthz", SecureHeaders(e.api.Handler()))
	mux.Handle("/", SecurePageHeaders(http.NotFoundHandler()))
	base := serveLimited(t, mux, WriteTimeout)
	for _, tc := range []struct {
		path, token string
		status      int
		csp         string
	}{
		{"/healthz", "", 200, APIContentSecurityPolicy},
		{"/api/v1/apps", e.tokens[berth.ScopeRead], 200, APIContentSecurityPolicy},
		{"/api/v1/apps", "", 401, APIContentSecurityPolicy},
		{"/api/v1/apps/nope", e.tokens[berth.ScopeRead], 404, APIContentSecurityPolicy},
		{"/api/v1/nothing-here", "", 404, APIContentSecurityPolicy},
		{"/missing-page", "", 404, PageContentSecurityPolicy},
	} {
		req, _ := http.NewRequest("GET", base+tc.path, nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d", tc.path, resp.StatusCode, tc.status)
		}
		wantSecureHeaders(t, tc.path, resp.Header, tc.csp)
	}

	// A page that sets its own, stricter policy keeps it.
	own := SecurePageHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'")
	}))
	base = serveLimited(t, own, WriteTimeout)
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Content-Security-Policy"); got != "default-src 'none'" {
		t.Errorf("page policy replaced: %q", got)
	}
}

func TestHTTPServerLimits(t *testing.T) {
	e := newEnv(t)
	base := serveLimited(t, SecureHeaders(e.api.Handler()), WriteTimeout)
	req, _ := http.NewRequest("GET", base+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("a", MaxHeaderBytes+8<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("%d KiB of headers: status %d, want 431", (MaxHeaderBytes+8<<10)>>10, resp.StatusCode)
	}
	// A JSON body over the limit is refused whole.
	r := e.do(e.tokens[berth.ScopeWrite], "POST", "/api/v1/apps", `{"name": "`+strings.Repeat("a", MaxJSONBody)+`"}`)
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "larger than") {
		t.Errorf("oversized body: %d %s", r.status, r.body)
	}
}

// TestStreamOutlivesWriteTimeout: a deployment log stream lasts longer
// than the server's write timeout.
func TestStreamOutlivesWriteTimeout(t *testing.T) {
	e := newEnv(t)
	e.createApp(gitApp("web"))
	block := make(chan struct{})
	e.fakes.Source.Block = block
	base := serveLimited(t, e.api.Handler(), 300*time.Millisecond)
	d := decode[berth.Deployment](t, e.do(e.tokens[berth.ScopeDeploy], "POST", "/api/v1/apps/web/deployments", nil), http.StatusAccepted)
	go func() { time.Sleep(time.Second); close(block) }()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	got, err := NewClient(base, e.tokens[berth.ScopeRead], nil).FollowDeployment(ctx, "web", d.ID, func(berth.LogLine) {}, nil)
	if err != nil {
		t.Fatalf("follow: %v", err)
	}
	if got.Status != berth.StatusLive || time.Since(start) < time.Second {
		t.Errorf("stream ended %s after %s", got.Status, time.Since(start))
	}
}
