package proxy

import (
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"sync/atomic"
	"syscall"
	"time"
)

// This file is the forwarding design both servers share (see
// plainServer): which route answers, which target a request goes to,
// how it is counted while in flight, and which other targets it is
// retried on when its target cannot be reached. Each server only moves
// the bytes.

// route is one app's forwarding state: its targets, served round-robin. A
// route is immutable but for its counters; a change to the targets makes a
// new route.
type route struct {
	app     string
	addrs   []string
	targets []*target
	next    atomic.Uint64
}

// target is one backend address of a route, with the reverse proxy
// forwarding to it on the net/http path.
type target struct {
	addr      string
	be        *backend
	rt        *route
	downUntil atomic.Int64 // unix nanoseconds; after a failed dial, others are preferred until then
	rp        httputil.ReverseProxy
}

// downFor is how long a target whose dial failed is skipped while another
// target is available.
const downFor = 2 * time.Second

// verdict says how to answer a request for the route rt (nil when no app
// owns its host): 0 to forward it, or else the status and page to answer.
func verdict(rt *route, connect bool) (int, []byte) {
	switch {
	case rt == nil:
		return http.StatusNotFound, notFoundPage
	case connect:
		return http.StatusMethodNotAllowed, notAllowedPage
	case len(rt.targets) == 0:
		return http.StatusBadGateway, badGatewayPage
	}
	return 0, nil
}

// pick returns the next target round-robin, skipping targets whose dial
// failed recently unless all of them did. The route must have targets.
func (r *route) pick() *target {
	n := len(r.targets)
	if n == 1 {
		return r.targets[0]
	}
	i := int(r.next.Add(1) % uint64(n))
	var now int64
	for k := range n {
		t := r.targets[(i+k)%n]
		d := t.downUntil.Load()
		if d == 0 {
			return t
		}
		if now == 0 {
			now = time.Now().UnixNano()
		}
		if now > d {
			t.downUntil.CompareAndSwap(d, 0)
			return t
		}
	}
	return r.targets[i]
}

// markDown records a failed dial to t.
func (t *target) markDown() {
	t.downUntil.Store(time.Now().Add(downFor).UnixNano())
}

// begin counts a request in flight to t, until end. A request counts on
// the target it picked, also when it was retried on another.
func (t *target) begin() { t.be.inflight.Add(1) }

// end ends what begin counted.
func (t *target) end() { t.be.inflight.Add(-1) }

// failover sends a request with send to t. When dialing t fails, nothing
// was sent, so a retriable request is sent to each other target of the
// route in turn, from the one after t, until one is reached or gone
// away reports true (the client left): a target that went away costs no
// request. Each target whose dial failed is marked down.
func (t *target) failover(retriable bool, goneAway func() bool, send func(*target) error) error {
	err := send(t)
	if err == nil || !isDialError(err) {
		return err
	}
	t.markDown()
	targets := t.rt.targets
	if !retriable || len(targets) < 2 {
		return err
	}
	start := 0
	for i, o := range targets {
		if o == t {
			start = i + 1
			break
		}
	}
	for k := range len(targets) {
		o := targets[(start+k)%len(targets)]
		if goneAway != nil && goneAway() {
			break
		}
		if o == t {
			continue
		}
		err = send(o)
		if err == nil || !isDialError(err) {
			return err
		}
		o.markDown()
	}
	return err
}

// isDialError reports whether err means a connection could not be opened,
// so the request never reached the target.
func isDialError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}
