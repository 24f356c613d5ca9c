package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/berthhq/berth"
)

// deployDetail is how deploy_overhead_ratio was measured.
type deployDetail struct {
	Pairs         int                `json:"pairs"`
	BerthS        []float64          `json:"berth_s"`
	DirectS       []float64          `json:"direct_s"`
	BerthMedianS  float64            `json:"berth_median_s"`
	BerthMinS     float64            `json:"berth_min_s"`
	BerthMaxS     float64            `json:"berth_max_s"`
	DirectMedianS float64            `json:"direct_median_s"`
	DirectMinS    float64            `json:"direct_min_s"`
	DirectMaxS    float64            `json:"direct_max_s"`
	BerthStagesS  map[string]float64 `json:"berth_stage_median_s"`
	DirectStepsS  map[string]float64 `json:"direct_step_median_s"`
	PollInterval  string             `json:"poll_interval"`
}

// pollInterval is how often both sides of the deploy comparison look for
// the new release's answer.
const pollInterval = 10 * time.Millisecond

// The app of the deploy comparison.
const overheadApp, overheadHost = "overhead", "overhead.bench.localhost"

// overheadFirstDeploy creates the app of the deploy comparison and deploys
// it once: a redeploy needs a release to replace, and this first build
// warms the build cache. The idle-memory phase runs it beside its own
// deploys, as one of the apps running there.
func (b *bench) overheadFirstDeploy(ctx context.Context, s *server) error {
	if _, err := s.client.CreateApp(ctx, &berth.App{Name: overheadApp, Source: berth.Source{Kind: berth.SourceUpload}, Port: 8080, Replicas: 1}); err != nil {
		return fmt.Errorf("create app: %w", err)
	}
	if _, err := s.client.AddDomain(ctx, overheadApp, overheadHost); err != nil {
		return err
	}
	if _, _, err := b.berthRedeploy(ctx, s, "overhead-warm"); err != nil {
		return fmt.Errorf("first deploy: %w", err)
	}
	b.overheadReady = true
	return nil
}

// berthRedeploy deploys the comparison app with a new message and returns
// the time from the API call to the first answer of the new release
// through the proxy, and the deployment's stage timings. Before it returns
// (untimed) the deployment has ended and the old release is gone.
func (b *bench) berthRedeploy(ctx context.Context, s *server, msg string) (time.Duration, map[string]float64, error) {
	appBin, err := os.ReadFile(b.appBin)
	if err != nil {
		return 0, nil, err
	}
	files := appContext(appBin, msg)
	hc := &http.Client{Timeout: 5 * time.Second}
	start := time.Now()
	dep, err := s.deployUpload(ctx, overheadApp, files)
	if err != nil {
		return 0, nil, fmt.Errorf("deploy: %w", err)
	}
	at, err := waitAnswer(ctx, hc, "http://"+s.proxy+"/", overheadHost, "berth-bench "+msg+" ", pollInterval, 3*time.Minute)
	if err != nil {
		if d, _ := s.client.Deployment(ctx, overheadApp, dep.ID); d != nil {
			err = fmt.Errorf("%w (deployment %s: %s)", err, d.Status, clip(d.Error))
		}
		return 0, nil, err
	}
	took := at.Sub(start)
	d, err := s.waitDone(ctx, overheadApp, dep.ID, 3*time.Minute)
	if err != nil {
		return 0, nil, err
	}
	if d.Status != berth.StatusLive {
		return 0, nil, fmt.Errorf("deployment ended %s: %s", d.Status, clip(d.Error))
	}
	if err := s.waitSettled(ctx, overheadApp, 1, 2*time.Minute); err != nil {
		return 0, nil, err
	}
	return took, stageSeconds(d), nil
}

// deployOverhead compares a berth redeploy of a small Dockerfile-built app
// (API call until the new release answers through the proxy) with the same
// steps done directly on the Engine API (build with a warm cache, start the
// container, first healthy answer), in alternating order.
func (b *bench) deployOverhead(ctx context.Context, s *server) error {
	if !b.overheadReady {
		b.say("first deploy of the comparison app")
		if err := b.overheadFirstDeploy(ctx, s); err != nil {
			return err
		}
	}
	appBin, err := os.ReadFile(b.appBin)
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	berthOnce := func(msg string) (time.Duration, map[string]float64, error) {
		return b.berthRedeploy(ctx, s, msg)
	}

	var prevDirect string
	directOnce := func(i int, msg string) (time.Duration, map[string]float64, error) {
		dir := filepath.Join(b.dir, "direct", fmt.Sprint(i))
		if err := writeContext(dir, appContext(appBin, msg)); err != nil {
			return 0, nil, err
		}
		// No labels: each is one more step of the classic builder. The
		// image goes by its tag at cleanup.
		tag := fmt.Sprintf("berth-bench/direct:%s-%d", b.runID, i)
		b.directTags = append(b.directTags, tag)
		start := time.Now()
		image, err := b.builder.Build(ctx, berth.BuildSpec{ContextDir: dir, Tag: tag}, nil)
		if err != nil {
			return 0, nil, fmt.Errorf("direct build: %w", err)
		}
		built := time.Now()
		c, err := b.dk.Run(ctx, berth.ContainerSpec{
			Name: fmt.Sprintf("berth-bench-direct-%s-%d", b.runID, i), Image: image,
			Env: map[string]string{"PORT": "8080"}, Labels: b.labels, Network: b.network, StopTimeout: 5 * time.Second,
		})
		if err != nil {
			return 0, nil, fmt.Errorf("direct run: %w", err)
		}
		started := time.Now()
		at, err := waitAnswer(ctx, hc, "http://"+c.IP+":8080/", "", "berth-bench "+msg+" ", pollInterval, time.Minute)
		if err != nil {
			return 0, nil, err
		}
		steps := map[string]float64{"build": built.Sub(start).Seconds(), "start": started.Sub(built).Seconds(), "probe": at.Sub(started).Seconds()}
		// Not timed: the previous container goes, as berth's old release does.
		if prevDirect != "" {
			if err := b.dk.Remove(ctx, prevDirect, 5*time.Second); err != nil {
				return 0, nil, err
			}
		}
		prevDirect = c.ID
		return at.Sub(start), steps, nil
	}

	// Warm-up, not measured: a first direct build and container.
	b.say("warm-up: first direct build")
	if _, _, err := directOnce(0, "direct-warm"); err != nil {
		return err
	}

	d := &deployDetail{Pairs: b.p.deployPairs, PollInterval: pollInterval.String()}
	var berthStages, directSteps []map[string]float64
	for i := 1; i <= b.p.deployPairs; i++ {
		runBerth := func() error {
			took, stages, err := berthOnce(fmt.Sprintf("overhead-%d", i))
			if err != nil {
				return fmt.Errorf("berth redeploy %d: %w", i, err)
			}
			d.BerthS = append(d.BerthS, took.Seconds())
			berthStages = append(berthStages, stages)
			b.say("pair %d: berth redeploy %.2f s", i, took.Seconds())
			return nil
		}
		runDirect := func() error {
			took, steps, err := directOnce(i, fmt.Sprintf("direct-%d", i))
			if err != nil {
				return fmt.Errorf("direct deploy %d: %w", i, err)
			}
			d.DirectS = append(d.DirectS, took.Seconds())
			directSteps = append(directSteps, steps)
			b.say("pair %d: direct        %.2f s", i, took.Seconds())
			return nil
		}
		// Alternate which side goes first.
		first, second := runBerth, runDirect
		if i%2 == 0 {
			first, second = runDirect, runBerth
		}
		if err := first(); err != nil {
			return err
		}
		if err := second(); err != nil {
			return err
		}
	}
	d.BerthMedianS, d.DirectMedianS = median(d.BerthS), median(d.DirectS)
	d.BerthMinS, d.BerthMaxS = spread(d.BerthS)
	d.DirectMinS, d.DirectMaxS = spread(d.DirectS)
	d.BerthStagesS, d.DirectStepsS = medianStages(berthStages), medianStages(directSteps)
	b.res.Deploy = d
	b.res.DeployOverheadRatio = ratio(d.BerthMedianS, d.DirectMedianS)
	return nil
}

// writeContext writes a build context into a new directory.
func writeContext(dir string, files []ctxFile) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.body, os.FileMode(f.mode)); err != nil {
			return err
		}
	}
	return nil
}
