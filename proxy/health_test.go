package proxy_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthhq/berth"
)

// fast is a health check that keeps the tests short.
var fast = berth.HealthCheck{Path: "/up", Interval: 50 * time.Millisecond, Timeout: time.Second, Threshold: 2, Deadline: 2 * time.Second}

func TestCheck(t *testing.T) {
	var flaky atomic.Int64
	healthy := serveBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/up" {
			http.NotFound(w, r)
		}
	}))
	redirect := serveBackend(t, http.RedirectHandler("/elsewhere", http.StatusFound))
	failing := serveBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	// Fails twice, then is healthy: passes once Threshold probes in a row did.
	warming := serveBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if flaky.Add(1) <= 2 {
			http.Error(w, "warming up", http.StatusServiceUnavailable)
		}
	}))
	slow := serveBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	dead := deadAddr(t)
	slowCheck := fast
	slowCheck.Timeout = 100 * time.Millisecond

	tests := []struct {
		name    string
		targets []string
		health  berth.HealthCheck
		want    []string // substrings of the error; nil for success
	}{
		{"healthy", []string{healthy}, fast, nil},
		{"redirect is healthy", []string{redirect}, fast, nil},
		{"warms up", []string{warming}, fast, nil},
		{"500", []string{failing}, fast, []string{failing, "status 500"}},
		{"dead", []string{dead}, fast, []string{dead, "connection refused"}},
		{"slow", []string{slow}, slowCheck, []string{slow, "no answer within 100ms"}},
		{"one of two fails", []string{healthy, failing}, fast, []string{failing, "status 500"}},
	}
	t.Run("group", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				p := newProxy(t, "")
				start := time.Now()
				err := p.Check(context.Background(), berth.Probe{Targets: tt.targets, Health: tt.health})
				if tt.want == nil {
					if err != nil {
						t.Fatalf("check: %v", err)
					}
					return
				}
				if err == nil || !contains(err.Error(), tt.want...) {
					t.Fatalf("error %v, want one naming %q", err, tt.want)
				}
				// It ends at its deadline, not long after (a generous bound).
				if d := time.Since(start); d > tt.health.Deadline+10*time.Second {
					t.Fatalf("check took %s with a deadline of %s", d, tt.health.Deadline)
				}
			})
		}
	})
	if flaky.Load() < 4 {
		t.Errorf("warming target probed %d times, want at least 4 (2 failures + 2 passes)", flaky.Load())
	}
}

func TestCheckStopsWhenCancelled(t *testing.T) {
	var probes atomic.Int64
	addr := serveBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		probes.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	p := newProxy(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	health := fast
	health.Deadline = time.Minute
	errc := make(chan error, 1)
	go func() { errc <- p.Check(ctx, berth.Probe{Targets: []string{addr}, Health: health}) }()
	eventually(t, "three probes", func() bool { return probes.Load() >= 3 })
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("check kept going after its context was cancelled")
	}
	// Check has returned, so every probe goroutine has ended.
	n := probes.Load()
	time.Sleep(5 * health.Interval)
	if probes.Load() != n {
		t.Fatalf("probes continued after the check returned: %d then %d", n, probes.Load())
	}
}

// TestCheckProbesSoon verifies targets long before one Interval: it
// probes at once, then about 50 ms later, backing off to the Interval, so
// that a release that listens quickly is verified quickly. One target
// listens from the start, one only 300 ms into the check; both need two
// passing probes.
func TestCheckProbesSoon(t *testing.T) {
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	ready := serveBackend(t, up)
	late := deadAddr(t)
	health := berth.HealthCheck{Path: "/up", Interval: time.Minute, Timeout: time.Second, Threshold: 2, Deadline: 2 * time.Minute}
	p := newProxy(t, "")
	go func() {
		time.Sleep(300 * time.Millisecond)
		ln, err := net.Listen("tcp", late)
		if err != nil {
			t.Errorf("listen on the late target: %v", err)
			return
		}
		srv := &http.Server{Handler: up}
		t.Cleanup(func() { srv.Close() })
		srv.Serve(ln)
	}()
	start := time.Now()
	if err := p.Check(context.Background(), berth.Probe{Targets: []string{ready, late}, Health: health}); err != nil {
		t.Fatalf("check: %v", err)
	}
	// Probing every Interval, the check would take a minute at least.
	if d := time.Since(start); d >= health.Interval {
		t.Fatalf("check took %s with an interval of %s", d, health.Interval)
	}
}
