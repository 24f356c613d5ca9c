package proxy_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/proxy"
)

func TestClient(t *testing.T) { eachFront(t, testClient) }

func testClient(t *testing.T, front frontFunc) {
	ctx := context.Background()
	p := newProxy(t, "")
	c := proxy.NewClient(serveAdmin(t, p))
	live := newBackend(t, "live")
	dead := deadAddr(t)

	if err := c.Health(ctx); err != nil {
		t.Fatalf("health: %v", err)
	}
	route := berth.Route{App: "app_1", Hosts: []string{"one.example.com"}, Targets: []string{live.addr}}
	if err := c.SetRoute(ctx, route); err != nil {
		t.Fatalf("set route: %v", err)
	}
	routes, err := c.Routes(ctx)
	if err != nil || !reflect.DeepEqual(routes, []berth.Route{route}) {
		t.Fatalf("routes: %+v, %v", routes, err)
	}
	srv := front(t, p)
	if code, body := get(t, srv.Client(), srv.URL, "one.example.com"); code != 200 || body != "live" {
		t.Fatalf("forwarding after SetRoute: %d %q", code, body)
	}

	err = c.SetRoute(ctx, berth.Route{App: "app_2", Hosts: []string{"one.example.com"}})
	if !berth.IsKind(err, berth.Conflict) || !contains(berth.ErrorMessage(err), "one.example.com", "app_1") {
		t.Fatalf("conflict: %v (kind %s)", err, berth.ErrorKind(err))
	}
	err = c.SetRoute(ctx, berth.Route{App: "app_2", Targets: []string{"no-port"}})
	if !berth.IsKind(err, berth.Invalid) {
		t.Fatalf("invalid route: %v (kind %s)", err, berth.ErrorKind(err))
	}

	health := berth.HealthCheck{Path: "/", Interval: 50 * time.Millisecond, Timeout: time.Second, Threshold: 1, Deadline: time.Second}
	if err := c.Check(ctx, berth.Probe{Targets: []string{live.addr}, Health: health}); err != nil {
		t.Fatalf("check a live target: %v", err)
	}
	err = c.Check(ctx, berth.Probe{Targets: []string{dead}, Health: health})
	if !berth.IsKind(err, berth.Invalid) || !contains(berth.ErrorMessage(err), dead, "connection refused") {
		t.Fatalf("check a dead target: %v (kind %s)", err, berth.ErrorKind(err))
	}

	if err := c.RemoveRoute(ctx, "app_1"); err != nil {
		t.Fatalf("remove route: %v", err)
	}
	if err := c.RemoveRoute(ctx, "app_1"); err != nil {
		t.Fatalf("remove a missing route: %v", err)
	}
	if routes, err := c.Routes(ctx); err != nil || len(routes) != 0 {
		t.Fatalf("routes after remove: %+v, %v", routes, err)
	}
}

func TestClientCancelStopsCheck(t *testing.T) {
	p := newProxy(t, "")
	c := proxy.NewClient(serveAdmin(t, p))
	probes := make(chan struct{}, 1000)
	addr := serveBackend(t, httpStatus(500, probes))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	health := berth.HealthCheck{Interval: 50 * time.Millisecond, Deadline: time.Minute}
	go func() { errc <- c.Check(ctx, berth.Probe{Targets: []string{addr}, Health: health}) }()
	<-probes
	<-probes
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	// The proxy stops probing soon after: the probes go quiet for many
	// intervals, long before the one-minute deadline.
	quiet := 0
	eventually(t, "probing to stop", func() bool {
		select {
		case <-probes:
			quiet = 0
		case <-time.After(health.Interval):
			quiet++
		}
		return quiet >= 10
	})
}

func TestClientUnreachable(t *testing.T) {
	dir, err := os.MkdirTemp("", "bp")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	c := proxy.NewClient(filepath.Join(dir, "missing.sock"))
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"health":    func() error { return c.Health(ctx) },
		"set route": func() error { return c.SetRoute(ctx, berth.Route{App: "a"}) },
		"remove":    func() error { return c.RemoveRoute(ctx, "a") },
		"check":     func() error { return c.Check(ctx, berth.Probe{}) },
		"routes":    func() error { _, err := c.Routes(ctx); return err },
	} {
		err := call()
		if !berth.IsKind(err, berth.Unavailable) || !contains(berth.ErrorMessage(err), "proxy unreachable") {
			t.Errorf("%s: %v (kind %s), want Unavailable", name, err, berth.ErrorKind(err))
		}
	}
}
