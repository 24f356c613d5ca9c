package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/proxy"
)

// routesDetail is how route_apply_ms_1000 was measured.
type routesDetail struct {
	Routes            int       `json:"routes"`
	LoadedVia         string    `json:"loaded_via"` // "state file" or "admin API"
	SamplesMS         []float64 `json:"samples_ms"`
	MedianMS          float64   `json:"median_ms"`
	MinMS             float64   `json:"min_ms"`
	MaxMS             float64   `json:"max_ms"`
	AdminCallMedianMS float64   `json:"admin_call_median_ms"` // the SetRoute call alone
	BaselineRoutes    int       `json:"baseline_routes"`
	BaselineMedianMS  float64   `json:"baseline_median_ms"` // the same with few routes
}

// routeCount is how many apps are routed for route_apply_ms_1000.
const routeCount = 1000

func routeName(i int) (app, host string) {
	return fmt.Sprintf("bench-r%04d", i), fmt.Sprintf("r%04d.routes.bench.localhost", i)
}

// routeApply measures the time from a route change (proxy.Client.SetRoute
// on the admin API) to the new target answering through the proxy, first
// with a couple of routes, then with 1,000 apps routed.
func (b *bench) routeApply(ctx context.Context) error {
	blue, err := b.runApp(ctx, "blue", "blue")
	if err != nil {
		return err
	}
	green, err := b.runApp(ctx, "green", "green")
	if err != nil {
		return err
	}
	d := &routesDetail{Routes: routeCount, BaselineRoutes: 2}
	b.res.Routes = d

	// Baseline: a proxy with two routes.
	dir := filepath.Join(b.dir, "routes-few")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	few, err := b.startHostProxy(ctx, "berth proxy (few routes)", dir)
	if err != nil {
		return err
	}
	var fewApps []int
	for i := range d.BaselineRoutes {
		app, host := routeName(i)
		if err := few.client.SetRoute(ctx, berth.Route{App: app, Hosts: []string{host}, Targets: []string{blue}}); err != nil {
			return err
		}
		fewApps = append(fewApps, i)
	}
	var base []float64
	for i := range b.p.routeSamples {
		total, _, err := applyOnce(ctx, few, fewApps[i%len(fewApps)], blue, green, i)
		if err != nil {
			return err
		}
		base = append(base, total)
	}
	d.BaselineMedianMS = median(base)
	if err := few.proc.stop(syscall.SIGTERM, 15*time.Second); err != nil {
		return err
	}

	// 1,000 apps: the table is written as the proxy's state file before it
	// starts (it restores it), which is much faster than 1,000 admin calls;
	// if the file's format has changed, the admin API fills it instead.
	dir = filepath.Join(b.dir, "routes-1000")
	if err := writeRoutesState(filepath.Join(dir, "state"), blue); err != nil {
		return err
	}
	hp, err := b.startHostProxy(ctx, "berth proxy (1000 routes)", dir)
	if err != nil {
		return err
	}
	defer hp.proc.stop(syscall.SIGTERM, 15*time.Second)
	routes, err := hp.client.Routes(ctx)
	if err != nil {
		return err
	}
	d.LoadedVia = "state file"
	if len(routes) != routeCount {
		d.LoadedVia = "admin API"
		b.note(fmt.Sprintf("the proxy restored %d routes from the state file written in its format of today, not %d: routes loaded through the admin API instead", len(routes), routeCount))
		for i := range routeCount {
			app, host := routeName(i)
			if err := hp.client.SetRoute(ctx, berth.Route{App: app, Hosts: []string{host}, Targets: []string{blue}}); err != nil {
				return fmt.Errorf("load route %d: %w", i, err)
			}
		}
	}
	var samples, calls []float64
	for i := range b.p.routeSamples {
		// A different app each time, spread over the table.
		total, call, err := applyOnce(ctx, hp, (i*397+11)%routeCount, blue, green, i)
		if err != nil {
			return err
		}
		samples, calls = append(samples, total), append(calls, call)
	}
	d.SamplesMS = samples
	d.MedianMS = median(samples)
	d.MinMS, d.MaxMS = spread(samples)
	d.AdminCallMedianMS = median(calls)
	b.res.RouteApplyMS1000 = num(d.MedianMS)
	return nil
}

// applyOnce switches app i between the blue and the green target and
// returns the milliseconds from the SetRoute call to the first answer of
// the new target through the proxy, and how long the call itself took.
func applyOnce(ctx context.Context, hp *hostProxy, i int, blue, green string, sample int) (total, call float64, err error) {
	app, host := routeName(i)
	to, want := green, "green"
	cur, err := routeTarget(ctx, hp.client, app)
	if err != nil {
		return 0, 0, err
	}
	if cur == green {
		to, want = blue, "blue"
	}
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 5 * time.Second}
	defer c.CloseIdleConnections()
	// Warm the connection, so that the poll measures the route, not a dial.
	if _, err := waitAnswer(ctx, c, "http://"+hp.addr+"/", host, "berth-bench", time.Millisecond, 5*time.Second); err != nil {
		return 0, 0, err
	}
	start := time.Now()
	callDone := make(chan error, 1)
	var callEnd time.Time
	go func() {
		err := hp.client.SetRoute(ctx, berth.Route{App: app, Hosts: []string{host}, Targets: []string{to}})
		callEnd = time.Now()
		callDone <- err
	}()
	deadline := start.Add(10 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+hp.addr+"/", nil)
		req.Host = host
		resp, err := c.Do(req)
		if err != nil {
			<-callDone
			return 0, 0, fmt.Errorf("route apply sample %d: %w", sample, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && bytes.Contains(body, []byte(want)) {
			break
		}
		if time.Now().After(deadline) {
			<-callDone
			return 0, 0, fmt.Errorf("route apply sample %d: %s still answers %q 10 s after the change", sample, host, clip(string(body)))
		}
	}
	end := time.Now()
	if err := <-callDone; err != nil {
		return 0, 0, fmt.Errorf("set route: %w", err)
	}
	return ms(end.Sub(start)), ms(callEnd.Sub(start)), nil
}

// routeTarget returns the first target of an app's route.
func routeTarget(ctx context.Context, c *proxy.Client, app string) (string, error) {
	routes, err := c.Routes(ctx)
	if err != nil {
		return "", err
	}
	for _, r := range routes {
		if r.App == app && len(r.Targets) > 0 {
			return r.Targets[0], nil
		}
	}
	return "", fmt.Errorf("no route for %s", app)
}

// writeRoutesState writes a proxy state file routing routeCount apps to
// target: {"version": 1, "routes": [...]}, the format proxy.New restores.
func writeRoutesState(dir, target string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	type state struct {
		Version int           `json:"version"`
		Routes  []berth.Route `json:"routes"`
	}
	s := state{Version: 1}
	for i := range routeCount {
		app, host := routeName(i)
		s.Routes = append(s.Routes, berth.Route{App: app, Hosts: []string{host}, Targets: []string{target}})
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "routes.json"), b, 0o600)
}
