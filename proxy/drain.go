package proxy

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/berthhq/berth"
)

// backend is one target address as the whole proxy sees it, across
// routing tables: the requests in flight to it and the connections kept
// open to it, by each server's client. Every route naming the address
// shares one backend, so its count survives table swaps.
type backend struct {
	addr      string
	inflight  atomic.Int64
	transport *http.Transport      // the net/http path's
	client    *fasthttp.HostClient // the fast path's

	// Guarded by backends.mu.
	refs      int       // how many times the routes of the current table name it
	idleSince time.Time // when it was first seen unrouted with nothing in flight
}

// closeIdle closes the idle connections of both clients.
func (b *backend) closeIdle() {
	b.transport.CloseIdleConnections()
	b.client.CloseIdleConnections()
}

// backends is the registry of backends by address.
type backends struct {
	mu sync.Mutex
	m  map[string]*backend
}

// forgetAfter is how long a backend stays registered once no route names
// it and nothing is in flight to it. A request that loaded a routing table
// just before a swap still counts on the backend it picked; keeping the
// entry this long makes sure Drain sees that count.
const forgetAfter = time.Minute

// get returns the backend of addr, registering it when new.
func (bs *backends) get(addr string) *backend {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if b, ok := bs.m[addr]; ok {
		return b
	}
	if bs.m == nil {
		bs.m = make(map[string]*backend)
	}
	b := &backend{addr: addr, transport: newTransport(), client: newHostClient(addr)}
	bs.m[addr] = b
	return b
}

// retarget follows a route change from the addresses was to now: it
// counts the routes naming each backend and closes the idle connections
// of those no route names any more. The periodic sweep forgets them.
func (bs *backends) retarget(was, now []string) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	for _, a := range now {
		if b, ok := bs.m[a]; ok {
			b.refs++
		}
	}
	for _, a := range was {
		if b, ok := bs.m[a]; ok {
			b.refs--
			if b.refs == 0 {
				b.closeIdle()
			}
		}
	}
}

// sweep closes the idle connections to backends no route names and that
// have nothing in flight, and forgets those idle for forgetAfter.
func (bs *backends) sweep() {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	bs.sweepLocked(time.Now())
}

func (bs *backends) sweepLocked(now time.Time) {
	for addr, b := range bs.m {
		if b.refs > 0 {
			b.idleSince = time.Time{}
			continue
		}
		if b.inflight.Load() != 0 {
			b.idleSince = time.Time{}
			continue
		}
		b.closeIdle()
		switch {
		case b.idleSince.IsZero():
			b.idleSince = now
		case now.Sub(b.idleSince) >= forgetAfter:
			delete(bs.m, addr)
		}
	}
}

// inflight returns the requests in flight to addrs.
func (bs *backends) inflight(addrs []string) int {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	n := int64(0)
	for _, a := range addrs {
		if b, ok := bs.m[a]; ok {
			n += b.inflight.Load()
		}
	}
	return int(n)
}

// closeIdle closes the idle connections to addrs that no route names.
func (bs *backends) closeIdle(addrs []string) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	for _, a := range addrs {
		if b, ok := bs.m[a]; ok && b.refs == 0 {
			b.closeIdle()
		}
	}
}

// size returns how many backends are registered.
func (bs *backends) size() int {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	return len(bs.m)
}

// Drain limits.
const (
	maxDrainTargets     = 4096
	defaultDrainTimeout = 30 * time.Second
	maxDrainTimeout     = time.Hour
	drainPoll           = 20 * time.Millisecond
	sweepInterval       = 10 * time.Second
)

// Drain waits until no request is in flight to targets and no route names
// any of them, or until timeout passes, and returns how many requests
// were still in flight then: 0 when drained. A target still routed when
// the timeout passes is a Conflict error (with the count), since no drain
// can finish while new requests keep arriving. Once drained, the idle
// connections to the targets are closed.
//
// A request retried on another target after its first target refused the
// connection stays counted on the first one, so drain a route's old
// targets together.
func (p *Proxy) Drain(ctx context.Context, targets []string, timeout time.Duration) (int, error) {
	n, routed, err := p.drain(ctx, targets, timeout)
	if err == nil && len(routed) > 0 {
		err = berth.E("drain", berth.Conflict, "target %s is still routed", routed[0])
	}
	return n, err
}

// drain drains targets and returns the requests still in flight and the
// targets still routed when it stopped.
func (p *Proxy) drain(ctx context.Context, targets []string, timeout time.Duration) (int, []string, error) {
	const op = "drain"
	if len(targets) > maxDrainTargets {
		return 0, nil, berth.E(op, berth.Invalid, "at most %d targets", maxDrainTargets)
	}
	for _, t := range targets {
		if err := validTarget(t); err != nil {
			return 0, nil, err
		}
	}
	switch {
	case timeout == 0:
		timeout = defaultDrainTimeout
	case timeout < 0 || timeout > maxDrainTimeout:
		return 0, nil, berth.E(op, berth.Invalid, "timeout must be between 0 and %s", maxDrainTimeout)
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	// Done takes two quiet polls in a row: a request that loaded the old
	// table just before the swap may not have counted itself yet.
	set := make(map[string]bool, len(targets))
	for _, t := range targets {
		set[t] = true
	}
	quiet := false
	for {
		n := p.backends.inflight(targets)
		routed := p.table.Load().routing(set)
		if n == 0 && len(routed) == 0 {
			if quiet {
				p.backends.closeIdle(targets)
				return 0, nil, nil
			}
			quiet = true
		} else {
			quiet = false
		}
		select {
		case <-ctx.Done():
			return n, routed, ctx.Err()
		case <-deadline.C:
			n, routed = p.backends.inflight(targets), p.table.Load().routing(set)
			p.log.Warn("drain timed out", "targets", targets, "inflight", n, "routed", routed)
			return n, routed, nil
		case <-tick.C:
		}
	}
}

// routing returns the addresses of set that some route of t names.
func (t *table) routing(set map[string]bool) []string {
	var out []string
	for _, e := range t.apps {
		for _, a := range e.fwd.addrs {
			if set[a] && !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}
