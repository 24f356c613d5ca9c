package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/berthhq/berth"
)

// unhealthyError says why a target did not pass its health check in time.
type unhealthyError struct {
	Target   string
	Deadline time.Duration
	Last     string // the last failure: a status code or a dial error
}

func (e *unhealthyError) Error() string {
	return fmt.Sprintf("target %s not healthy within %s: %s", e.Target, e.Deadline, e.Last)
}

// Check probes each target of pr with GET pr.Health.Path until it passed
// Threshold consecutive probes (2xx or 3xx, each within Timeout): at once,
// then after firstRetry, each wait doubling up to Interval, so that a
// release that listens quickly is verified quickly. It returns nil when all passed, or, once Deadline passed, an
// error naming the first target that did not and its last failure. Zero
// fields of pr.Health take berth's defaults. Probing stops when ctx ends.
func (p *Proxy) Check(ctx context.Context, pr berth.Probe) error {
	const op = "check"
	if len(pr.Targets) == 0 {
		return berth.E(op, berth.Invalid, "no targets to check")
	}
	if len(pr.Targets) > maxTargets {
		return berth.E(op, berth.Invalid, "at most %d targets", maxTargets)
	}
	for _, t := range pr.Targets {
		if err := validTarget(t); err != nil {
			return err
		}
	}
	h := pr.Health.WithDefaults()
	if err := h.Validate(); err != nil {
		return berth.E(op, berth.Invalid, "%s", err.Error())
	}

	pctx, cancel := context.WithTimeout(ctx, h.Deadline)
	defer cancel()
	errs := make([]error, len(pr.Targets))
	var wg sync.WaitGroup
	for i, t := range pr.Targets {
		wg.Go(func() { errs[i] = p.probe(pctx, t, h) })
	}
	wg.Wait()
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("check targets: %w", ctx.Err())
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// probe probes one target until it passed h.Threshold consecutive probes or
// ctx ends, backing off from firstRetry to h.Interval between probes.
func (p *Proxy) probe(ctx context.Context, target string, h berth.HealthCheck) error {
	u := "http://" + target + h.Path
	passed := 0
	last := "no answer"
	timer := time.NewTimer(0)
	defer timer.Stop()
	wait := min(firstRetry, h.Interval)
	for {
		select {
		case <-ctx.Done():
			return &unhealthyError{Target: target, Deadline: h.Deadline, Last: last}
		case <-timer.C:
		}
		fail := p.probeOnce(ctx, u, h.Timeout)
		switch {
		case fail == "":
			passed++
			if passed >= h.Threshold {
				return nil
			}
		case ctx.Err() == nil || last == "no answer":
			// A probe cut short by the deadline says less than the
			// failure before it.
			passed, last = 0, fail
		default:
			passed = 0
		}
		timer.Reset(wait)
		wait = min(2*wait, h.Interval)
	}
}

// firstRetry is the wait before the second probe of a target.
const firstRetry = 50 * time.Millisecond

// probeOnce sends one probe and returns "" when it passed, or why not.
func (p *Proxy) probeOnce(ctx context.Context, u string, timeout time.Duration) string {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err.Error()
	}
	req.Header.Set("User-Agent", "berth-proxy-health-check")
	resp, err := p.probes.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return "no answer within " + timeout.String()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err.Error()
	}
	io.CopyN(io.Discard, resp.Body, 64<<10)
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return "status " + strconv.Itoa(resp.StatusCode)
	}
	return ""
}

// newProbeClient returns the client of health checks: a fresh connection
// per probe, no redirects followed (3xx is healthy), no proxy.
func newProbeClient() *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			DialContext:        d.DialContext,
			DisableKeepAlives:  true,
			DisableCompression: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
