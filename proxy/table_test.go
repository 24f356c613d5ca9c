package proxy_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/proxy"
)

func TestSetRouteConflict(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		existing berth.Route
		route    berth.Route
		kind     berth.Kind // "" for success
	}{
		{"shared exact host", berth.Route{App: "a", Hosts: []string{"x.example.com"}},
			berth.Route{App: "b", Hosts: []string{"y.example.com", "x.example.com"}}, berth.Conflict},
		{"shared wildcard", berth.Route{App: "a", Hosts: []string{"*.example.com"}},
			berth.Route{App: "b", Hosts: []string{"*.example.com"}}, berth.Conflict},
		{"same app again", berth.Route{App: "a", Hosts: []string{"x.example.com"}},
			berth.Route{App: "a", Hosts: []string{"x.example.com", "z.example.com"}}, ""},
		{"exact under another app's wildcard", berth.Route{App: "a", Hosts: []string{"*.example.com"}},
			berth.Route{App: "b", Hosts: []string{"x.example.com"}}, ""},
		{"duplicate host in one route", berth.Route{App: "a", Hosts: []string{"q.example.com"}},
			berth.Route{App: "b", Hosts: []string{"x.example.com", "x.example.com"}}, ""},
		{"invalid host", berth.Route{App: "a"},
			berth.Route{App: "b", Hosts: []string{"X.example.com"}}, berth.Invalid},
		{"invalid target", berth.Route{App: "a"},
			berth.Route{App: "b", Targets: []string{"10.0.0.1"}}, berth.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProxy(t, "")
			if err := p.SetRoute(ctx, tt.existing); err != nil {
				t.Fatal(err)
			}
			err := p.SetRoute(ctx, tt.route)
			if tt.kind == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !berth.IsKind(err, tt.kind) {
				t.Fatalf("error %v, want kind %s", err, tt.kind)
			}
			// A refused change leaves the table as it was.
			routes, _ := p.Routes(ctx)
			if len(routes) != 1 || routes[0].App != tt.existing.App {
				t.Fatalf("routes after a refused change: %+v", routes)
			}
		})
	}
}

func TestStatePersistedAndRestored(t *testing.T) { eachFront(t, testStatePersistedAndRestored) }

func testStatePersistedAndRestored(t *testing.T, front frontFunc) {
	ctx := context.Background()
	dir := t.TempDir()
	a, b := newBackend(t, "A"), newBackend(t, "B")
	p := newProxy(t, dir)
	setRoute(t, p, "app-a", []string{"a.example.com"}, a.addr)
	setRoute(t, p, "app-b", []string{"*.b.example.com"}, b.addr)
	setRoute(t, p, "gone", []string{"gone.example.com"}, b.addr)
	if err := p.RemoveRoute(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := p.RemoveRoute(ctx, "never-existed"); err != nil {
		t.Fatalf("removing a missing route: %v", err)
	}
	want, _ := p.Routes(ctx)

	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "routes.json" {
		t.Fatalf("state dir holds %v, want only routes.json", entries)
	}

	restored := newProxy(t, dir) // as after a restart
	got, _ := restored.Routes(ctx)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("restored %+v, want %+v", got, want)
	}
	srv := front(t, restored)
	for host, body := range map[string]string{"a.example.com": "A", "x.b.example.com": "B"} {
		if code, got := get(t, srv.Client(), srv.URL, host); code != 200 || got != body {
			t.Errorf("%s: %d %q, want 200 %q", host, code, got, body)
		}
	}
	if code, _ := get(t, srv.Client(), srv.URL, "gone.example.com"); code != 404 {
		t.Errorf("removed route still served: %d", code)
	}
}

func TestCorruptState(t *testing.T) {
	valid := func(routes ...berth.Route) string {
		b, _ := json.Marshal(map[string]any{"version": 1, "routes": routes})
		return string(b)
	}
	tests := []struct {
		name string
		data string
	}{
		{"not json", "{\"version\": 1, \"routes\": [ garbage"},
		{"empty", ""},
		{"unknown version", `{"version": 99, "routes": []}`},
		{"invalid host", valid(berth.Route{App: "a", Hosts: []string{"BAD HOST"}})},
		{"invalid target", valid(berth.Route{App: "a", Targets: []string{"nowhere"}})},
		{"conflicting hosts", valid(
			berth.Route{App: "a", Hosts: []string{"x.example.com"}},
			berth.Route{App: "b", Hosts: []string{"x.example.com"}})},
		{"app twice", valid(berth.Route{App: "a"}, berth.Route{App: "a"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "routes.json")
			if err := os.WriteFile(path, []byte(tt.data), 0o600); err != nil {
				t.Fatal(err)
			}
			p, err := proxy.New(proxy.Config{StateDir: dir})
			if err != nil {
				t.Fatalf("new proxy with a corrupt state file: %v", err)
			}
			if routes, _ := p.Routes(context.Background()); len(routes) != 0 {
				t.Fatalf("routes %+v, want none", routes)
			}
			kept, err := os.ReadFile(path + ".bad")
			if err != nil || string(kept) != tt.data {
				t.Fatalf("corrupt file not kept aside: %q, %v", kept, err)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Fatalf("corrupt routes.json still in place: %v", err)
			}
			// The proxy works and persists again.
			setRoute(t, p, "a", []string{"a.example.com"}, "127.0.0.1:9")
			if _, err := proxy.New(proxy.Config{StateDir: dir}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestStateFile writes the table as json.Marshal encodes it, sorted by
// app, after every change; a change that changes nothing writes nothing.
func TestStateFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "routes.json")
	p := newProxy(t, dir)
	want := func(routes ...berth.Route) string {
		b, err := json.Marshal(struct {
			Version int           `json:"version"`
			Routes  []berth.Route `json:"routes"`
		}{1, routes})
		if err != nil {
			t.Fatal(err)
		}
		return string(b) + "\n"
	}
	check := func(routes ...berth.Route) {
		t.Helper()
		if b, err := os.ReadFile(path); err != nil || string(b) != want(routes...) {
			t.Fatalf("routes.json:\n%s (%v)\nwant\n%s", b, err, want(routes...))
		}
	}
	b := berth.Route{App: "b", Hosts: []string{"b.example.com", "*.b.example.com"}, Targets: []string{"10.0.0.2:80", "10.0.0.3:80"}}
	a := berth.Route{App: "a", Hosts: []string{"a.example.com"}, Targets: []string{"10.0.0.1:80"}}
	c := berth.Route{App: "c", Hosts: []string{}, Targets: []string{}}
	for _, r := range []berth.Route{b, a, c} {
		if err := p.SetRoute(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	check(a, b, c)
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetRoute(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := p.RemoveRoute(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if after, err := os.Stat(path); err != nil || !os.SameFile(before, after) {
		t.Fatalf("a change that changes nothing rewrote routes.json (%v)", err)
	}
	a.Targets = []string{"10.0.0.9:80"}
	if err := p.SetRoute(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := p.RemoveRoute(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	check(a, c)
}
