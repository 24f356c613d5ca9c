// Command bench is berth's benchmark: `go run ./bench [--quick] [--json
// FILE] [--only PART]`. It builds what it needs (the berth binary, a tiny
// static app and its FROM scratch image), then measures, each side by
// side with its baseline in the same run:
//
//   - deploy_overhead_ratio: a berth redeploy of a small Dockerfile-built
//     app against the same build, start and first healthy answer done
//     directly on the Engine API;
//   - failed_requests, total_requests: a steady load through the proxy on a
//     2-replica app across redeploys, rollbacks, restarts and kill -9s of
//     the control plane;
//   - proxy_rps_ratio_vs_direct, proxy_rps_ratio_vs_nginx,
//     proxy_p99_added_ms: wrk against `berth proxy`, the container directly
//     and Debian's nginx in front of the same container;
//   - route_apply_ms_1000: a route change to its first answer with 1,000
//     apps routed;
//   - idle_rss_mb_server, idle_rss_mb_proxy: resident memory, idle, with 50
//     apps defined and 10 running;
//   - dashboard_max_page_kb, dashboard_max_median_ms, dashboard_max_p95_ms:
//     the largest page, and the slowest median and 95th percentile, of
//     every dashboard page of a team of 1,000 apps rendered in process
//     through the real API and dashboard over SQLite (and PostgreSQL when
//     BERTH_TEST_POSTGRES is set), each against GET /static/style.css
//     through the same handler. This part needs no Docker and runs first.
//
// --only runs one part (proxy, routes, memory, deploy, steady or
// dashboard) and leaves the other keys null. It prints a table with each target and
// whether it is met, writes the JSON report, and removes every process,
// Docker object and temporary directory it made, also when it fails or is
// interrupted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/client"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/build"
	"github.com/berthhq/berth/docker"
)

// params are the sizes of one run.
type params struct {
	perfConns    []int
	perfRounds   int
	perfDuration time.Duration
	perfWarmup   bool

	routeSamples int

	rssApps, rssRunning int
	rssSettle           time.Duration

	deployPairs int

	dashIterations int // timed renders of each dashboard page

	redeploys, rollbacks, restarts, kills int
	killStages                            []string
	loadKeepAlive, loadFresh              int
	loadMax                               time.Duration
	steadyImage                           bool // redeploy a prebuilt-image app (no builds)

	deadline time.Duration // the whole run, cleanup excluded
}

var fullParams = params{
	perfConns: []int{64, 8}, perfRounds: 3, perfDuration: 4 * time.Second, perfWarmup: true,
	routeSamples: 21,
	rssApps:      50, rssRunning: 10, rssSettle: 10 * time.Second,
	deployPairs: 5,
	redeploys:   20, rollbacks: 5, restarts: 3, kills: 3, killStages: []string{"building", "verifying", "idle"},
	loadKeepAlive: 200, loadFresh: 100, loadMax: 6 * time.Minute,
	dashIterations: 50,
	deadline:       14 * time.Minute,
}

var quickParams = params{
	perfConns: []int{64, 8}, perfRounds: 1, perfDuration: time.Second,
	routeSamples: 7,
	rssApps:      50, rssRunning: 10, rssSettle: 2 * time.Second,
	deployPairs: 1,
	redeploys:   3, rollbacks: 1, restarts: 1, kills: 1, killStages: []string{"idle"},
	loadKeepAlive: 200, loadFresh: 100, loadMax: 2 * time.Minute, steadyImage: true,
	dashIterations: 15,
	deadline:       3 * time.Minute,
}

// bench is one run of the benchmark.
type bench struct {
	p     params
	quick bool
	only  string    // the one part to run; "" runs them all
	out   io.Writer // progress
	start time.Time
	jan   *janitor
	res   *results

	dir       string // temporary root, removed at the end
	root      string // the module's directory
	berthBin  string
	appBin    string
	wrkPath   string
	nginxPath string

	dk       *docker.Engine
	builder  *build.Builder
	runID    string
	labels   map[string]string // on every Docker object the bench creates
	network  string            // the bench's own network (direct side, perf)
	appImage string            // the app as a prebuilt image
	// directTags are the images of the direct side of the deploy
	// comparison, built without labels.
	directTags []string
	// overheadReady says the deploy comparison's app has had its first
	// deploy.
	overheadReady bool
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// run parses the flags, runs the benchmark and cleans up.
func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "a short run (under a minute) with fewer operations")
	jsonPath := fs.String("json", "", "write the JSON report to `FILE` (- for stdout)")
	only := fs.String("only", "", "run one `PART` only: "+strings.Join(parts, ", ")+"; the other keys stay null")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *only != "" && !slices.Contains(parts, *only) {
		return fmt.Errorf("--only %s: want one of %s", *only, strings.Join(parts, ", "))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	b := &bench{p: fullParams, quick: *quick, only: *only, out: stderr, start: time.Now(), jan: &janitor{}}
	mode := "full"
	if b.quick {
		b.p, mode = quickParams, "quick"
	}
	b.res = &results{Mode: mode, StartedAt: b.start.UTC(), Notes: []string{}, Errors: []string{},
		Machine: machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}}
	if b.only != "" {
		b.note("only " + b.only + " was run: the other keys are null")
	}
	if b.quick {
		b.note(fmt.Sprintf("quick run: fewer operations: %d redeploys (env changes of a prebuilt-image app, no builds), %d rollback, %d restart, %d kill -9 while idle; %d deploy pair; wrk %s x %d round, no warm-up; %d route samples; %d renders of each dashboard page",
			b.p.redeploys, b.p.rollbacks, b.p.restarts, b.p.kills, b.p.deployPairs, b.p.perfDuration, b.p.perfRounds, b.p.routeSamples, b.p.dashIterations))
	}

	runErr := b.runAll(ctx)
	if runErr != nil {
		b.res.Errors = append(b.res.Errors, runErr.Error())
	}

	// Clean up with a context of its own: the run's may be what ended.
	b.say("cleaning up")
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
	defer cancel()
	for _, err := range b.jan.run(cctx) {
		b.res.Errors = append(b.res.Errors, err.Error())
		fmt.Fprintln(stderr, "bench:", err)
	}

	b.res.DurationS = time.Since(b.start).Seconds()
	b.res.check()
	b.res.printTable(stdout)
	if *jsonPath != "" {
		if err := b.res.writeJSON(*jsonPath); err != nil {
			return fmt.Errorf("write %s: %w", *jsonPath, err)
		}
	}
	if len(b.res.Errors) > 0 {
		return fmt.Errorf("%d error(s); the keys they concern are null", len(b.res.Errors))
	}
	return nil
}

// say prints a progress line.
func (b *bench) say(format string, args ...any) {
	fmt.Fprintf(b.out, "[%5.1fs] %s\n", time.Since(b.start).Seconds(), fmt.Sprintf(format, args...))
}

// note records a remark for the report and prints it.
func (b *bench) note(s string) {
	b.res.Notes = append(b.res.Notes, s)
	b.say("note: %s", s)
}

// The parts of a run, which --only selects.
const (
	partProxy  = "proxy"
	partRoutes = "routes"
	partMemory = "memory"
	partDeploy = "deploy"
	partSteady = "steady"
	partDash   = "dashboard"
)

var parts = []string{partProxy, partRoutes, partMemory, partDeploy, partSteady, partDash}

// runs reports whether the part is part of this run.
func (b *bench) runs(part string) bool { return b.only == "" || b.only == part }

// runAll sets up and runs every phase. A failing phase leaves its keys
// null and the others still run; only a failed setup ends the run.
func (b *bench) runAll(ctx context.Context) error {
	phase := func(part, name string, fn func(context.Context) error) {
		if !b.runs(part) {
			return
		}
		if ctx.Err() != nil {
			b.res.Errors = append(b.res.Errors, fmt.Sprintf("%s: not run: %v", name, context.Cause(ctx)))
			return
		}
		b.say("== %s", name)
		t := time.Now()
		if err := fn(ctx); err != nil {
			b.res.Errors = append(b.res.Errors, fmt.Sprintf("%s: %v", name, err))
			b.say("%s failed: %v", name, err)
			return
		}
		b.say("%s done in %.1f s", name, time.Since(t).Seconds())
	}
	// The dashboard needs neither Docker nor the binaries: it runs first,
	// within a deadline of its own, and alone it needs no setup.
	dctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	phase(partDash, "dashboard", func(context.Context) error { return b.dashboard(dctx) })
	cancel()
	if b.only == partDash {
		return nil
	}
	ctx, cancel = context.WithTimeout(ctx, b.p.deadline)
	defer cancel()
	if err := b.setup(ctx); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	phase(partProxy, "proxy throughput", b.proxyPerf)
	phase(partRoutes, "route apply", b.routeApply)
	if !b.runs(partMemory) && !b.runs(partDeploy) && !b.runs(partSteady) {
		return nil
	}

	s, err := b.startServer(ctx)
	if err != nil {
		return fmt.Errorf("start berth server: %w", err)
	}
	phase(partMemory, "idle memory", func(ctx context.Context) error { return b.idleRSS(ctx, s) })
	phase(partDeploy, "deploy overhead", func(ctx context.Context) error { return b.deployOverhead(ctx, s) })
	phase(partSteady, "steady load", func(ctx context.Context) error { return b.steady(ctx, s) })
	return nil
}

// setup finds the tools, builds the binaries and the app image, and makes
// the bench's Docker network.
func (b *bench) setup(ctx context.Context) error {
	var err error
	b.root, err = moduleRoot(ctx)
	if err != nil {
		return err
	}
	b.dir, err = os.MkdirTemp("", "berth-bench-")
	if err != nil {
		return err
	}
	dir := b.dir
	b.jan.add("temp dir", func(context.Context) error { return os.RemoveAll(dir) })
	b.runID = strings.ToLower(berth.NewID("b")[2:10])
	b.labels = map[string]string{labelBench: b.runID, labelTest: "1", berth.LabelManaged: "true"}

	b.res.Machine.Nginx, b.res.Machine.Wrk = "missing", "missing"
	if p, err := exec.LookPath("wrk"); err == nil {
		b.wrkPath, b.res.Machine.Wrk = p, p
	}
	if p, err := exec.LookPath("nginx"); err == nil {
		b.nginxPath = p
		out, _ := exec.CommandContext(ctx, p, "-v").CombinedOutput()
		b.res.Machine.Nginx = strings.TrimPrefix(strings.TrimSpace(string(out)), "nginx version: ")
	}
	if b.wrkPath == "" || b.nginxPath == "" {
		b.note("install the comparison tools with: apt-get install nginx wrk")
	}

	b.say("building berth and the app (CGO_ENABLED=0)")
	b.berthBin, b.appBin, err = buildBinaries(ctx, b.root, filepath.Join(b.dir, "bin"))
	if err != nil {
		return err
	}

	log := slog.New(slog.NewTextHandler(b.out, &slog.HandlerOptions{Level: slog.LevelError}))
	b.dk, err = docker.New("", log)
	if err != nil {
		return err
	}
	b.jan.add("docker client", func(context.Context) error { return b.dk.Close() })
	if err := b.dk.Ping(ctx); err != nil {
		return fmt.Errorf("docker: %w", err)
	}
	if v, err := b.dk.Client().ServerVersion(ctx, client.ServerVersionOptions{}); err == nil {
		b.res.Machine.Docker = v.Version
	}
	b.builder = build.New(b.dk, log, build.Options{})
	// Everything the bench itself makes in Docker goes by its label, but
	// for the direct side's images, which go by tag once their containers
	// are gone (the janitor runs its steps newest first).
	dk := b.dk
	b.jan.add("direct images", func(ctx context.Context) error { return removeImages(ctx, dk, b.directTags) })
	sel := map[string]string{labelBench: b.runID}
	b.jan.add("docker objects", func(ctx context.Context) error { return dk.RemoveLabelled(ctx, sel) })

	b.network = "berth-bench-" + b.runID
	if err := b.dk.EnsureNetwork(ctx, b.network, b.labels); err != nil {
		return err
	}
	b.appImage = "berth-bench/app:" + b.runID
	if err := importAppImage(ctx, b.dk, b.appBin, b.appImage, map[string]string{labelBench: b.runID, labelTest: "1"}); err != nil {
		return fmt.Errorf("app image: %w", err)
	}
	return nil
}

// startServer starts the berth server the last three phases share, and
// registers its removal with every Docker object of its instance.
func (b *bench) startServer(ctx context.Context) (*server, error) {
	apiAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	proxyAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	s := &server{
		bin: b.berthBin, data: filepath.Join(b.dir, "server", "data"), logPath: filepath.Join(b.dir, "server", "server.log"),
		apiURL: "http://" + apiAddr, proxy: proxyAddr, network: "berth-bench-srv-" + b.runID,
	}
	if err := os.MkdirAll(filepath.Dir(s.logPath), 0o700); err != nil {
		return nil, err
	}
	dk := b.dk
	b.jan.add("berth server", func(ctx context.Context) error {
		err := s.stop()
		return errors.Join(err, removeInstance(ctx, dk, s))
	})
	b.say("starting berth server (API %s, proxy %s)", apiAddr, proxyAddr)
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	if pc, err := proxyContainer(ctx, b.dk, s); err == nil {
		s.instance = pc.Labels[berth.LabelInstance]
	}
	return s, nil
}
