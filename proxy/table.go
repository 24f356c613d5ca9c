package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http/httputil"
	"slices"
	"strings"

	"github.com/berthhq/berth"
)

// Limits on one route.
const (
	maxHosts   = 256
	maxTargets = 256
)

// table is an immutable snapshot of the routes. A change clones the table,
// applies itself to the clone and swaps it in; requests in flight keep the
// table they started with.
type table struct {
	apps  map[string]*entry // by app
	names []string          // the apps, sorted: the order of the state file
	exact map[string]*route // by host
	wild  map[string]*route // by the domain under "*.", for one-label wildcards
}

// entry is one app's place in a table: its route as set, its forwarding
// state and the route as encoded in the state file. An entry is
// immutable.
type entry struct {
	spec berth.Route
	fwd  *route
	enc  []byte
}

func newTable() *table {
	return &table{apps: map[string]*entry{}, exact: map[string]*route{}, wild: map[string]*route{}}
}

// clone returns a copy of t to change.
func (t *table) clone() *table {
	return &table{apps: maps.Clone(t.apps), names: slices.Clone(t.names), exact: maps.Clone(t.exact), wild: maps.Clone(t.wild)}
}

// lookup returns the route of a normalized host: an exact match first, then
// a wildcard covering exactly one more label.
func (t *table) lookup(host string) *route {
	if r, ok := t.exact[host]; ok {
		return r
	}
	if i := strings.IndexByte(host, '.'); i > 0 && len(t.wild) > 0 {
		return t.wild[host[i+1:]]
	}
	return nil
}

// lookupBytes is lookup for a host held in bytes; it does not allocate.
func (t *table) lookupBytes(host []byte) *route {
	if r, ok := t.exact[string(host)]; ok {
		return r
	}
	if i := bytes.IndexByte(host, '.'); i > 0 && len(t.wild) > 0 {
		return t.wild[string(host[i+1:])]
	}
	return nil
}

// hostMap returns the map of t holding host and its key there.
func (t *table) hostMap(host string) (map[string]*route, string) {
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		return t.wild, rest
	}
	return t.exact, host
}

// specs returns copies of the routes of the table sorted by app.
func (t *table) specs() []berth.Route {
	out := make([]berth.Route, 0, len(t.names))
	for _, app := range t.names {
		r := t.apps[app].spec
		out = append(out, berth.Route{App: r.App, Hosts: slices.Clone(r.Hosts), Targets: slices.Clone(r.Targets)})
	}
	return out
}

// put sets the route of spec.App in t, which is not published yet. A host
// routed to another app is a Conflict, and leaves t as it was. The
// forwarding state of the app's current route is kept when its targets
// did not change, with its round-robin position and failure marks.
func (p *Proxy) put(t *table, spec berth.Route) error {
	for _, h := range spec.Hosts {
		m, key := t.hostMap(h)
		if o, taken := m[key]; taken && o.app != spec.App {
			return berth.E("set route", berth.Conflict, "host %s is already routed to app %s", h, o.app)
		}
	}
	enc, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("encode route: %w", err)
	}
	old := t.apps[spec.App]
	var r *route
	if old != nil && slices.Equal(old.fwd.addrs, spec.Targets) {
		r = old.fwd
	} else {
		r = p.newRoute(spec)
	}
	if old != nil {
		t.unmap(old)
	} else {
		i, _ := slices.BinarySearch(t.names, spec.App)
		t.names = slices.Insert(t.names, i, spec.App)
	}
	for _, h := range spec.Hosts {
		m, key := t.hostMap(h)
		m[key] = r
	}
	t.apps[spec.App] = &entry{spec: spec, fwd: r, enc: enc}
	return nil
}

// drop removes the route of app from t, which is not published yet.
func (t *table) drop(app string) {
	e := t.apps[app]
	if e == nil {
		return
	}
	t.unmap(e)
	delete(t.apps, app)
	if i, ok := slices.BinarySearch(t.names, app); ok {
		t.names = slices.Delete(t.names, i, i+1)
	}
}

// unmap removes the hosts of e from t.
func (t *table) unmap(e *entry) {
	for _, h := range e.spec.Hosts {
		if m, key := t.hostMap(h); m[key] == e.fwd {
			delete(m, key)
		}
	}
}

// buildTable builds a table from routes, refusing a host claimed by two
// apps; conflicts are found in app order, so their message is the same
// every time.
func (p *Proxy) buildTable(routes []berth.Route) (*table, error) {
	routes = slices.Clone(routes)
	slices.SortFunc(routes, func(a, b berth.Route) int { return strings.Compare(a.App, b.App) })
	t := newTable()
	for _, r := range routes {
		if err := p.put(t, r); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// newRoute makes the route of spec, its targets sharing the registered
// backends of their addresses.
func (p *Proxy) newRoute(spec berth.Route) *route {
	r := &route{app: spec.App, addrs: slices.Clone(spec.Targets)}
	for _, a := range spec.Targets {
		t := &target{addr: a, be: p.backends.get(a), rt: r}
		t.rp = httputil.ReverseProxy{
			Rewrite:      t.rewrite,
			Transport:    t,
			BufferPool:   &p.bufs,
			ErrorHandler: p.forwardError,
		}
		r.targets = append(r.targets, t)
	}
	return r
}

// SetRoute replaces the route of r.App, after persisting the new table.
func (p *Proxy) SetRoute(ctx context.Context, r berth.Route) error {
	_, err := p.setRoute(r)
	return err
}

// setRoute sets r and returns it as stored.
func (p *Proxy) setRoute(r berth.Route) (berth.Route, error) {
	if err := validRoute(r); err != nil {
		return berth.Route{}, err
	}
	r.Hosts = dedupe(r.Hosts)
	r.Targets = slices.Clone(r.Targets)
	changed, err := p.change(r.App, &r)
	if err != nil {
		return berth.Route{}, err
	}
	if changed {
		p.log.Info("route set", "app", r.App, "hosts", r.Hosts, "targets", r.Targets)
	}
	return r, nil
}

// RemoveRoute stops routing app. Removing a missing route is not an error.
func (p *Proxy) RemoveRoute(ctx context.Context, app string) error {
	if err := validApp(app); err != nil {
		return err
	}
	removed, err := p.change(app, nil)
	if err == nil && removed {
		p.log.Info("route removed", "app", app)
	}
	return err
}

// Routes returns the current routes sorted by app.
func (p *Proxy) Routes(ctx context.Context) ([]berth.Route, error) {
	return p.table.Load().specs(), nil
}

// change sets the route of app to spec, or removes it when spec is nil:
// it builds the new table, persists it and swaps it in, then lets the
// backends and the certificates follow the app's old and new addresses
// and hosts. The work is the app's, not the table's, but for copying the
// table's maps and writing the state file. A change that changes nothing
// is not written; changed reports whether there was one.
func (p *Proxy) change(app string, spec *berth.Route) (changed bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cur := p.table.Load()
	old := cur.apps[app]
	var was berth.Route
	if old != nil {
		was = old.spec
	}
	switch {
	case spec == nil && old == nil:
		return false, nil
	case spec != nil && old != nil && slices.Equal(spec.Hosts, was.Hosts) && slices.Equal(spec.Targets, was.Targets):
		return false, nil
	}
	t := cur.clone()
	var now berth.Route
	if spec == nil {
		t.drop(app)
	} else {
		if err := p.put(t, *spec); err != nil {
			return false, err
		}
		now = *spec
	}
	if err := p.saveState(t); err != nil {
		return false, err
	}
	p.table.Store(t)
	p.backends.retarget(was.Targets, now.Targets)
	p.certs.follow(minus(now.Hosts, was.Hosts), minus(was.Hosts, now.Hosts))
	return true, nil
}

// minus returns the elements of a that b does not hold.
func minus(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

// validRoute checks a route as it comes from the control plane.
func validRoute(r berth.Route) error {
	const op = "set route"
	if err := validApp(r.App); err != nil {
		return err
	}
	if len(r.Hosts) > maxHosts {
		return berth.E(op, berth.Invalid, "at most %d hosts per route", maxHosts)
	}
	if len(r.Targets) > maxTargets {
		return berth.E(op, berth.Invalid, "at most %d targets per route", maxTargets)
	}
	for _, h := range r.Hosts {
		if err := berth.ValidHost(h); err != nil {
			return berth.E(op, berth.Invalid, "%s", err.Error())
		}
	}
	for _, t := range r.Targets {
		if err := validTarget(t); err != nil {
			return err
		}
	}
	return nil
}

// validApp checks a route name: the app ID as the engine sends it.
func validApp(app string) error {
	if app == "" || len(app) > 64 || !isAlnum(app[0]) {
		return berth.E("route", berth.Invalid, "app %q: use 1-64 letters, digits, '_', '.', '-', starting with a letter or digit", clip(app))
	}
	for i := 0; i < len(app); i++ {
		if c := app[i]; !isAlnum(c) && c != '_' && c != '-' && c != '.' {
			return berth.E("route", berth.Invalid, "app %q: use 1-64 letters, digits, '_', '.', '-', starting with a letter or digit", clip(app))
		}
	}
	return nil
}

// validTarget checks a target address: host:port, where host is an IP
// address or a DNS name (a container name on the berth network) and port is
// 1-65535.
func validTarget(t string) error {
	bad := berth.E("route", berth.Invalid, "target %q: must be host:port with a DNS name or IP address and a port 1-65535", clip(t))
	host, port, err := net.SplitHostPort(t)
	if err != nil || port == "" || len(port) > 5 || port[0] == '0' {
		return bad
	}
	n := 0
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return bad
		}
		n = n*10 + int(port[i]-'0')
	}
	if n < 1 || n > 65535 {
		return bad
	}
	if net.ParseIP(host) != nil {
		return nil
	}
	if host == "" || len(host) > 253 || strings.Contains(t, "[") {
		return bad
	}
	for l := range strings.SplitSeq(host, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return bad
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; !isAlnum(c) && c != '-' && c != '_' {
				return bad
			}
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// dedupe returns hosts without repeats, in their first order.
func dedupe(hosts []string) []string {
	out := make([]string, 0, len(hosts))
	for _, h := range hosts {
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// clip shortens a user value for an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:61] + "..."
	}
	return s
}
