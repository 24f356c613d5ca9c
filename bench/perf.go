package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/proxy"
)

// proxyDetail is how the proxy's throughput was measured.
type proxyDetail struct {
	Conns     []int         `json:"conns"`
	Rounds    int           `json:"rounds"`
	DurationS float64       `json:"duration_s"`
	Runs      []perfRun     `json:"runs"`
	Summary   []perfSummary `json:"summary"`
	Ratios    []perfRatio   `json:"ratios"`
	Headline  string        `json:"headline"`
}

// perfRun is one wrk run.
type perfRun struct {
	Target string  `json:"target"`
	Conns  int     `json:"conns"`
	Round  int     `json:"round"`
	RPS    float64 `json:"rps"`
	P50MS  float64 `json:"p50_ms"`
	P99MS  float64 `json:"p99_ms"`
	Errors int64   `json:"errors"`
}

// perfSummary is the median of a target's runs at one concurrency.
type perfSummary struct {
	Target string  `json:"target"`
	Conns  int     `json:"conns"`
	RPS    float64 `json:"rps"`
	P50MS  float64 `json:"p50_ms"`
	P99MS  float64 `json:"p99_ms"`
	Errors int64   `json:"errors"` // over every run
}

// perfRatio compares the proxy with the baselines at one concurrency.
type perfRatio struct {
	Conns      int      `json:"conns"`
	VsDirect   *float64 `json:"vs_direct"`
	VsNginx    *float64 `json:"vs_nginx"`
	P99AddedMS *float64 `json:"p99_added_ms"`
}

// perfTarget is something wrk loads.
type perfTarget struct {
	name string
	url  string
}

// hostProxy is a `berth proxy` run as a host process.
type hostProxy struct {
	proc   *proc
	addr   string
	client *proxy.Client
}

// startHostProxy runs `berth proxy` on a free loopback port with its state
// in dir (a routes.json already there is restored).
func (b *bench) startHostProxy(ctx context.Context, name, dir string) (*hostProxy, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "admin.sock")
	p, err := startProc(name, filepath.Join(dir, "proxy.log"), b.berthBin, "proxy",
		"--listen", addr, "--admin-socket", sock, "--state", filepath.Join(dir, "state"))
	if err != nil {
		return nil, err
	}
	b.jan.add(name, func(context.Context) error { return p.stop(syscall.SIGTERM, 15*time.Second) })
	hp := &hostProxy{proc: p, addr: addr, client: proxy.NewClient(sock)}
	deadline := time.Now().Add(30 * time.Second)
	for {
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := hp.client.Health(hctx)
		cancel()
		if err == nil {
			break
		}
		if p.exited() {
			return nil, fmt.Errorf("%s exited: %v\n%s", name, p.err, p.logTail(20))
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s: admin API not up after 30s: %w", name, err)
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return nil, err
		}
	}
	if err := waitTCP(ctx, addr, 30*time.Second, p); err != nil {
		return nil, err
	}
	return hp, nil
}

// runApp starts one container of the benchmark's app image on the bench
// network and waits until it answers; it returns the container's address.
func (b *bench) runApp(ctx context.Context, name, message string) (string, error) {
	c, err := b.dk.Run(ctx, berth.ContainerSpec{
		Name: "berth-bench-" + name + "-" + b.runID, Image: b.appImage,
		Env: map[string]string{"BENCH_MESSAGE": message, "PORT": "8080"}, Labels: b.labels,
		Network: b.network, StopTimeout: 5 * time.Second,
	})
	if err != nil {
		return "", fmt.Errorf("run %s container: %w", name, err)
	}
	if c.IP == "" {
		return "", fmt.Errorf("container %s has no address on network %s", c.Name, b.network)
	}
	addr := c.IP + ":8080"
	if _, err := waitAnswer(ctx, http.DefaultClient, "http://"+addr+"/", "", message, 20*time.Millisecond, 30*time.Second); err != nil {
		return "", err
	}
	return addr, nil
}

// perfHost is the Host header of the throughput runs.
const perfHost = "perf.bench.localhost"

// proxyPerf measures the throughput and latency of `berth proxy` against
// the same container reached directly and through nginx, alternating the
// three in every round.
func (b *bench) proxyPerf(ctx context.Context) error {
	app, err := b.runApp(ctx, "perf", "perf")
	if err != nil {
		return err
	}
	dir := filepath.Join(b.dir, "proxy-perf")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	hp, err := b.startHostProxy(ctx, "berth proxy (throughput)", dir)
	if err != nil {
		return err
	}
	defer hp.proc.stop(syscall.SIGTERM, 15*time.Second)
	if err := hp.client.SetRoute(ctx, berth.Route{App: "perf", Hosts: []string{perfHost}, Targets: []string{app}}); err != nil {
		return fmt.Errorf("route the throughput app: %w", err)
	}
	targets := []perfTarget{{"direct", "http://" + app + "/kib"}, {"berth-proxy", "http://" + hp.addr + "/kib"}}
	if b.nginxPath != "" {
		ng, err := b.startNginx(ctx, app)
		if err != nil {
			return err
		}
		defer ng.proc.stop(syscall.SIGQUIT, 15*time.Second)
		targets = append(targets, perfTarget{"nginx", "http://" + ng.addr + "/kib"})
	} else {
		b.note("nginx is missing (apt-get install nginx): proxy_rps_ratio_vs_nginx is null")
	}
	if b.wrkPath == "" {
		b.note("wrk is missing (apt-get install wrk): proxy_rps_ratio_vs_direct, proxy_rps_ratio_vs_nginx and proxy_p99_added_ms are null")
		return nil
	}
	// Every target must really answer the 1 KiB page: a fast error page
	// would make a fine-looking number.
	for _, t := range targets {
		if err := checkKiB(ctx, t.url); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
	}

	d := &proxyDetail{Conns: b.p.perfConns, Rounds: b.p.perfRounds, DurationS: b.p.perfDuration.Seconds()}
	b.res.Proxy = d
	if b.p.perfWarmup {
		b.say("warm-up: 1 s of wrk per target")
		for _, t := range targets {
			if _, err := (wrkRun{Threads: 2, Conns: 64, Duration: time.Second, URL: t.url, Host: perfHost}).run(ctx, b.wrkPath); err != nil {
				return err
			}
		}
	}
	for round := range b.p.perfRounds {
		for _, conns := range b.p.perfConns {
			// Rotate the order each round so that no target always runs
			// first (or right after another) on a noisy machine.
			for k := range targets {
				t := targets[(k+round)%len(targets)]
				r, err := (wrkRun{Threads: 2, Conns: conns, Duration: b.p.perfDuration, URL: t.url, Host: perfHost}).run(ctx, b.wrkPath)
				if err != nil {
					return err
				}
				d.Runs = append(d.Runs, perfRun{Target: t.name, Conns: conns, Round: round + 1, RPS: r.RPS,
					P50MS: ms(r.P50), P99MS: ms(r.P99), Errors: r.errors()})
				b.say("round %d c%d %-11s %8.0f req/s  p99 %6.2f ms  errors %d", round+1, conns, t.name, r.RPS, ms(r.P99), r.errors())
			}
		}
	}
	d.Summary = summarize(d.Runs, targets, b.p.perfConns)
	d.Ratios = perfRatios(d.Summary, b.p.perfConns)
	for _, s := range d.Summary {
		if s.Errors > 0 {
			b.note(fmt.Sprintf("wrk saw %d failed requests against %s at c%d: its req/s is suspect", s.Errors, s.Target, s.Conns))
		}
	}
	// Headline: the worse of the concurrencies measured, so that a
	// target is met only when it holds for both.
	d.Headline = "the worse value over c" + joinInts(b.p.perfConns, " and c")
	b.res.ProxyRPSRatioVsDirect, b.res.ProxyRPSRatioVsNginx, b.res.ProxyP99AddedMS = worst(d.Ratios)
	if p := b.res.ProxyP99AddedMS; p != nil && *p < 0 {
		b.note("proxy_p99_added_ms is negative: wrk runs each target flat out, and the direct runs, serving several times more requests, queue more at p99")
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// summarize takes the median of each target's runs per concurrency.
func summarize(runs []perfRun, targets []perfTarget, conns []int) []perfSummary {
	var out []perfSummary
	for _, c := range conns {
		for _, t := range targets {
			var rps, p50, p99 []float64
			var errs int64
			for _, r := range runs {
				if r.Target == t.name && r.Conns == c {
					rps, p50, p99 = append(rps, r.RPS), append(p50, r.P50MS), append(p99, r.P99MS)
					errs += r.Errors
				}
			}
			if len(rps) == 0 {
				continue
			}
			out = append(out, perfSummary{Target: t.name, Conns: c, RPS: median(rps), P50MS: median(p50), P99MS: median(p99), Errors: errs})
		}
	}
	return out
}

// perfRatios compares berth-proxy with direct and nginx per concurrency.
func perfRatios(sum []perfSummary, conns []int) []perfRatio {
	var out []perfRatio
	for _, c := range conns {
		by := map[string]perfSummary{}
		for _, s := range sum {
			if s.Conns == c {
				by[s.Target] = s
			}
		}
		p, ok := by["berth-proxy"]
		if !ok {
			continue
		}
		r := perfRatio{Conns: c}
		if d, ok := by["direct"]; ok {
			r.VsDirect = ratio(p.RPS, d.RPS)
			r.P99AddedMS = num(p.P99MS - d.P99MS)
		}
		if n, ok := by["nginx"]; ok {
			r.VsNginx = ratio(p.RPS, n.RPS)
		}
		out = append(out, r)
	}
	return out
}

// worst returns the lowest ratios and the largest added latency.
func worst(rs []perfRatio) (vsDirect, vsNginx, p99Added *float64) {
	lower := func(cur, v *float64) *float64 {
		if v == nil || (cur != nil && *cur <= *v) {
			return cur
		}
		return v
	}
	for _, r := range rs {
		vsDirect = lower(vsDirect, r.VsDirect)
		vsNginx = lower(vsNginx, r.VsNginx)
		if r.P99AddedMS != nil && (p99Added == nil || *r.P99AddedMS > *p99Added) {
			p99Added = r.P99AddedMS
		}
	}
	return vsDirect, vsNginx, p99Added
}

// checkKiB checks that url answers 200 with the 1 KiB page.
func checkKiB(ctx context.Context, url string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Host = perfHost
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK || len(body) != 1024 || !strings.HasPrefix(string(body), "xxxx") {
		return fmt.Errorf("GET %s: %d with %d bytes, want 200 with the 1 KiB page", url, resp.StatusCode, len(body))
	}
	return nil
}

// nginxProc is a running nginx.
type nginxProc struct {
	proc *proc
	addr string
}

// startNginx runs Debian's nginx as a reverse proxy to upstream.
func (b *bench) startNginx(ctx context.Context, upstream string) (*nginxProc, error) {
	dir := filepath.Join(b.dir, "nginx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// nginx's workers run as nobody.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	conf, err := writeNginxConf(dir, addr, upstream)
	if err != nil {
		return nil, err
	}
	p, err := startProc("nginx", filepath.Join(dir, "stderr.log"), b.nginxPath, "-c", conf, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
	if err != nil {
		return nil, err
	}
	b.jan.add("nginx", func(context.Context) error { return p.stop(syscall.SIGQUIT, 15*time.Second) })
	if err := waitTCP(ctx, addr, 30*time.Second, p); err != nil {
		return nil, errors.Join(err, fmt.Errorf("nginx error log:\n%s", fileTail(filepath.Join(dir, "error.log"), 20)))
	}
	return &nginxProc{proc: p, addr: addr}, nil
}
