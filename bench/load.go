package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// loadConfig is a steady, bounded request load against one URL: a fixed
// rate on keep-alive connections and another on a fresh connection per
// request. It never sends more than rate × MaxDuration requests.
type loadConfig struct {
	URL          string
	Host         string
	KeepAliveRPS int
	FreshRPS     int
	Workers      int           // per kind; default 4
	Timeout      time.Duration // per request; default 10s
	MaxDuration  time.Duration // hard bound on the run
	// Check says whether an answer is right; nil accepts any 2xx-4xx.
	Check func(status int, body []byte) error
	// Op names what is happening now, for attributing failures.
	Op func() string
}

// failure is one failed request.
type failure struct {
	At    float64 `json:"at_s"` // seconds since the load started
	Conn  string  `json:"conn"` // "keepalive" or "fresh"
	Op    string  `json:"op"`
	Error string  `json:"error"`
}

// loadResult counts what the load saw.
type loadResult struct {
	Total     int64            `json:"total"`
	Failed    int64            `json:"failed"`
	KeepAlive int64            `json:"keepalive"`
	Fresh     int64            `json:"fresh"`
	ByKind    map[string]int64 `json:"failed_by_kind"`
	ByOp      map[string]int64 `json:"failed_by_op"`
	Samples   []failure        `json:"failure_samples"`
	Duration  time.Duration    `json:"-"`
}

// load is a running load generator.
type load struct {
	cfg    loadConfig
	start  time.Time
	cancel context.CancelFunc
	wg     sync.WaitGroup

	total, keepalive, fresh atomic.Int64
	mu                      sync.Mutex
	byKind, byOp            map[string]int64
	samples                 []failure
	failed                  int64
}

// maxSamples bounds the failures kept with their details.
const maxSamples = 50

// startLoad starts the load; stop ends it and returns the counts.
func startLoad(ctx context.Context, cfg loadConfig) (*load, error) {
	if cfg.URL == "" || cfg.MaxDuration <= 0 || cfg.KeepAliveRPS < 0 || cfg.FreshRPS < 0 || cfg.KeepAliveRPS+cfg.FreshRPS == 0 {
		return nil, errors.New("load: URL, a positive rate and a maximum duration are required")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.MaxDuration)
	l := &load{cfg: cfg, start: time.Now(), cancel: cancel, byKind: map[string]int64{}, byOp: map[string]int64{}}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	kinds := []struct {
		name string
		rps  int
		tr   *http.Transport
	}{
		{"keepalive", cfg.KeepAliveRPS, &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: cfg.Workers, IdleConnTimeout: 90 * time.Second, DisableCompression: true}},
		{"fresh", cfg.FreshRPS, &http.Transport{DialContext: dialer.DialContext, DisableKeepAlives: true, DisableCompression: true}},
	}
	for _, k := range kinds {
		if k.rps == 0 {
			continue
		}
		c := &http.Client{Transport: k.tr, Timeout: cfg.Timeout}
		// Each worker sends at most one request per tick; a slow answer
		// skips ticks instead of piling requests up.
		every := time.Duration(float64(time.Second) * float64(cfg.Workers) / float64(k.rps))
		for w := range cfg.Workers {
			l.wg.Go(func() {
				defer k.tr.CloseIdleConnections()
				// Spread the workers' ticks over one interval.
				select {
				case <-ctx.Done():
					return
				case <-time.After(every * time.Duration(w) / time.Duration(cfg.Workers)):
				}
				t := time.NewTicker(every)
				defer t.Stop()
				for {
					l.once(ctx, c, k.name)
					select {
					case <-ctx.Done():
						return
					case <-t.C:
					}
				}
			})
		}
	}
	return l, nil
}

// once sends one request and records the outcome.
func (l *load) once(ctx context.Context, c *http.Client, conn string) {
	if ctx.Err() != nil {
		return
	}
	req, err := http.NewRequest(http.MethodGet, l.cfg.URL, nil)
	if err != nil {
		l.fail(conn, "request", err)
		return
	}
	// The request is not tied to ctx: stopping the load lets the requests
	// in flight finish (within the client timeout) instead of failing them.
	if l.cfg.Host != "" {
		req.Host = l.cfg.Host
	}
	l.total.Add(1)
	if conn == "fresh" {
		l.fresh.Add(1)
	} else {
		l.keepalive.Add(1)
	}
	resp, err := c.Do(req)
	if err != nil {
		kind := "connection"
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
			kind = "timeout"
		}
		l.fail(conn, kind, err)
		return
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case err != nil:
		l.fail(conn, "body read", err)
	case resp.StatusCode >= 500:
		l.fail(conn, "5xx", fmt.Errorf("status %d: %s", resp.StatusCode, clip(string(body))))
	case l.cfg.Check != nil:
		if err := l.cfg.Check(resp.StatusCode, body); err != nil {
			l.fail(conn, "wrong answer", err)
		}
	case resp.StatusCode >= 400:
		l.fail(conn, "status", fmt.Errorf("status %d", resp.StatusCode))
	}
}

func (l *load) fail(conn, kind string, err error) {
	op := ""
	if l.cfg.Op != nil {
		op = l.cfg.Op()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failed++
	l.byKind[kind]++
	l.byOp[op]++
	if len(l.samples) < maxSamples {
		l.samples = append(l.samples, failure{At: time.Since(l.start).Seconds(), Conn: conn, Op: op, Error: kind + ": " + clip(err.Error())})
	}
}

// stop ends the load, waits for the requests in flight and returns the
// counts.
func (l *load) stop() loadResult {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return loadResult{
		Total: l.total.Load(), Failed: l.failed, KeepAlive: l.keepalive.Load(), Fresh: l.fresh.Load(),
		ByKind: l.byKind, ByOp: l.byOp, Samples: l.samples, Duration: time.Since(l.start),
	}
}

// snapshot returns the counts so far without stopping.
func (l *load) snapshot() (total, failed int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total.Load(), l.failed
}

// clip shortens a text for a report line.
func clip(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	if len(s) > 200 {
		return s[:197] + "..."
	}
	return s
}
