package proxy_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/proxy"
)

// newProxy returns a proxy keeping its state in dir (a new temp dir when
// empty).
func newProxy(t testing.TB, dir string) *proxy.Proxy {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	p, err := proxy.New(proxy.Config{StateDir: dir})
	if err != nil {
		t.Fatalf("new proxy: %v", err)
	}
	return p
}

// server is one of the proxy's forwarding servers on a loopback port.
type server struct {
	URL      string
	Listener net.Listener
	client   *http.Client
}

// Client returns a client of s with a transport of its own.
func (s *server) Client() *http.Client { return s.client }

// frontFunc serves p's forwarding on a loopback port until the test ends.
type frontFunc func(testing.TB, *proxy.Proxy) *server

// fronts are the proxy's two forwarding servers: the fast path, which
// serves the plain-HTTP listener, and the net/http handler, which serves
// HTTPS and the connections the fast path hands over (here over plain
// HTTP).
var fronts = []struct {
	name  string
	serve frontFunc
}{
	{"fast", frontFast},
	{"net-http", frontNetHTTP},
}

// eachFront runs test once per forwarding server.
func eachFront(t *testing.T, test func(t *testing.T, front frontFunc)) {
	for _, f := range fronts {
		t.Run(f.name, func(t *testing.T) { test(t, f.serve) })
	}
}

func frontFast(t testing.TB, p *proxy.Proxy) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := proxy.ServePlain(p, ln)
	s := &server{URL: "http://" + ln.Addr().String(), Listener: ln, client: &http.Client{Transport: &http.Transport{}}}
	t.Cleanup(func() {
		s.client.CloseIdleConnections()
		stop()
	})
	return s
}

func frontNetHTTP(t testing.TB, p *proxy.Proxy) *server {
	t.Helper()
	hs := httptest.NewServer(p)
	s := &server{URL: hs.URL, Listener: hs.Listener, client: &http.Client{Transport: &http.Transport{}}}
	t.Cleanup(func() {
		s.client.CloseIdleConnections()
		hs.Close()
	})
	return s
}

// backend is a target that answers its name and counts requests.
type backend struct {
	name string
	addr string
	hits atomic.Int64
}

func newBackend(t testing.TB, name string) *backend {
	t.Helper()
	b := &backend{name: name}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		io.WriteString(w, b.name)
	}))
	t.Cleanup(s.Close)
	b.addr = s.Listener.Addr().String()
	return b
}

// serveBackend serves h as a target and returns its address.
func serveBackend(t testing.TB, h http.Handler) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// get sends GET url with the Host header host and returns status and body.
func get(t testing.TB, c *http.Client, url, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s (Host %s): %v", url, host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp.StatusCode, string(body)
}

func setRoute(t testing.TB, p *proxy.Proxy, app string, hosts []string, targets ...string) {
	t.Helper()
	if err := p.SetRoute(context.Background(), berth.Route{App: app, Hosts: hosts, Targets: targets}); err != nil {
		t.Fatalf("set route %s: %v", app, err)
	}
}

// serveAdmin serves p's admin API on a unix socket in a short temp path
// and returns the socket path.
func serveAdmin(t testing.TB, p *proxy.Proxy) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "bp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "admin.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: p.Admin()}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock
}

// eventually polls cond until it holds or 10s passed.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// httpStatus answers code and signals each request on seen, without
// blocking when seen is full.
func httpStatus(code int, seen chan<- struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case seen <- struct{}{}:
		default:
		}
		w.WriteHeader(code)
	})
}
