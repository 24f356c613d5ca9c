package proxy

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/berthhq/berth"
)

// TestBackendsForgotten churns targets: the registry forgets those no
// route names once idle long enough, and keeps the routed ones and those
// with requests in flight.
func TestBackendsForgotten(t *testing.T) {
	p, err := New(Config{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		r := berth.Route{App: "app", Hosts: []string{"app.example.com"}, Targets: []string{fmt.Sprintf("10.0.0.%d:80", i+1)}}
		if err := p.SetRoute(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	busy := p.backends.get("10.0.0.7:80")
	busy.inflight.Add(1)
	if n := p.backends.size(); n != 50 {
		t.Fatalf("%d backends registered, want 50", n)
	}
	p.backends.sweep() // all idle ones are now marked
	p.backends.mu.Lock()
	p.backends.sweepLocked(time.Now().Add(forgetAfter + time.Second))
	p.backends.mu.Unlock()
	if n := p.backends.size(); n != 2 {
		t.Fatalf("%d backends registered after the sweep, want 2 (the routed one and the busy one)", n)
	}
	if p.backends.get("10.0.0.50:80") != p.table.Load().apps["app"].fwd.targets[0].be {
		t.Fatal("the routed backend was replaced")
	}
	if n := p.backends.inflight([]string{"10.0.0.7:80"}); n != 1 {
		t.Fatalf("in flight to the busy backend: %d, want 1", n)
	}
}
