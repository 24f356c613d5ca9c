package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/api"
)

// steadyDetail is how failed_requests was measured.
type steadyDetail struct {
	Replicas          int        `json:"replicas"`
	App               string     `json:"app"` // "Dockerfile-built" or "prebuilt image"
	KeepAliveRPS      int        `json:"keepalive_rps"`
	FreshRPS          int        `json:"fresh_rps"`
	DurationS         float64    `json:"duration_s"`
	Plan              []string   `json:"plan"`
	Redeploys         int        `json:"redeploys"`
	Rollbacks         int        `json:"rollbacks"`
	Restarts          int        `json:"restarts"`
	Kills             int        `json:"kills"`
	KilledIn          []string   `json:"killed_in"`          // the deployment stage at each kill -9 ("idle": none running)
	DeployProblems    []string   `json:"deploy_problems"`    // deployments that should have gone live and did not
	KilledDeployments []string   `json:"killed_deployments"` // how each deployment interrupted by a kill -9 ended
	Load              loadResult `json:"load"`
}

// op is one operation of the steady-load run.
type op struct {
	kind  string // "redeploy", "rollback", "restart", "kill"
	stage string // for "kill": the deployment stage to kill in, or "idle"
}

func (o op) String() string {
	if o.kind == "kill" {
		return "kill -9 (" + o.stage + ")"
	}
	return o.kind
}

// steadyPlan spreads the rollbacks, restarts and kills evenly between the
// redeploys; it never starts with a rollback (there must be a release to
// go back to). The kills take their stages from killStages in turn.
func steadyPlan(redeploys, rollbacks, restarts, kills int, killStages []string) []op {
	var plan []op
	extra := make([][]op, redeploys+1)
	place := func(n int, mk func(j int) op) {
		for j := range n {
			at := max(1, min(redeploys, (2*j+1)*redeploys/(2*n)+1))
			extra[at] = append(extra[at], mk(j))
		}
	}
	place(rollbacks, func(int) op { return op{kind: "rollback"} })
	place(restarts, func(int) op { return op{kind: "restart"} })
	place(kills, func(j int) op {
		st := "idle"
		if len(killStages) > 0 {
			st = killStages[j%len(killStages)]
		}
		return op{kind: "kill", stage: st}
	})
	for i := 1; i <= redeploys; i++ {
		plan = append(plan, op{kind: "redeploy"})
		plan = append(plan, extra[i]...)
	}
	return plan
}

// steady deploys a 2-replica app, puts a steady load on it through the
// proxy and runs the plan's redeploys, rollbacks, restarts and kill -9s of
// the control plane, counting every request that fails.
func (b *bench) steady(ctx context.Context, s *server) error {
	const app, host = "steady", "steady.bench.localhost"
	const replicas = 2
	src := berth.Source{Kind: berth.SourceUpload}
	if b.p.steadyImage {
		src = berth.Source{Kind: berth.SourceImage, Image: b.appImage}
	}
	if _, err := s.client.CreateApp(ctx, &berth.App{Name: app, Source: src, Port: 8080, Replicas: replicas}); err != nil {
		return fmt.Errorf("create app: %w", err)
	}
	if _, err := s.client.AddDomain(ctx, app, host); err != nil {
		return err
	}
	appBin, err := os.ReadFile(b.appBin)
	if err != nil {
		return err
	}
	plan := steadyPlan(b.p.redeploys, b.p.rollbacks, b.p.restarts, b.p.kills, b.p.killStages)
	d := &steadyDetail{Replicas: replicas, App: "Dockerfile-built", KeepAliveRPS: b.p.loadKeepAlive, FreshRPS: b.p.loadFresh}
	if b.p.steadyImage {
		d.App = "prebuilt image"
	}
	for _, o := range plan {
		d.Plan = append(d.Plan, o.String())
	}
	b.res.Steady = d
	hc := &http.Client{Timeout: 5 * time.Second}
	proxyURL := "http://" + s.proxy + "/"

	n := 0
	// settle waits for a deployment to end, then checks that the live
	// release is what the proxy serves.
	settle := func(dep *berth.Deployment) (*berth.Deployment, error) {
		dep, err := s.waitDone(ctx, app, dep.ID, 3*time.Minute)
		if err != nil {
			return nil, err
		}
		rel, err := s.liveRelease(ctx, app)
		if err != nil {
			return nil, err
		}
		_, err = waitAnswer(ctx, hc, proxyURL, host, fmt.Sprintf("release=v%d\n", rel), pollInterval, 30*time.Second)
		return dep, err
	}
	// live settles a deployment that should go live.
	live := func(dep *berth.Deployment) error {
		dep, err := settle(dep)
		if err != nil {
			return err
		}
		if dep.Status != berth.StatusLive {
			d.DeployProblems = append(d.DeployProblems, fmt.Sprintf("#%d ended %s: %s", dep.Number, dep.Status, clip(dep.Error)))
		}
		return nil
	}
	// deploy starts a redeploy with a new message: a new build context for
	// the Dockerfile-built app, a new env var (berth env set --deploy) for
	// the prebuilt-image app.
	deploy := func() (*berth.Deployment, error) {
		n++
		msg := fmt.Sprintf("steady-%d", n)
		if !b.p.steadyImage {
			return s.deployUpload(ctx, app, appContext(appBin, msg))
		}
		r, err := s.client.UpdateEnv(ctx, app, api.EnvPatch{Set: map[string]string{"BENCH_MESSAGE": msg}, Deploy: true})
		if err != nil {
			return nil, err
		}
		if r.Deployment == nil {
			return nil, errors.New("the env change started no deployment")
		}
		return r.Deployment, nil
	}
	b.say("first deploy of the %d-replica app", replicas)
	dep, err := deploy()
	if err != nil {
		return err
	}
	if err := live(dep); err != nil {
		return err
	}
	if len(d.DeployProblems) > 0 {
		return fmt.Errorf("first deploy: %s", d.DeployProblems[0])
	}

	var current atomic.Value
	current.Store("idle")
	rate := b.p.loadKeepAlive + b.p.loadFresh
	l, err := startLoad(ctx, loadConfig{
		URL: proxyURL, Host: host, KeepAliveRPS: b.p.loadKeepAlive, FreshRPS: b.p.loadFresh,
		MaxDuration: b.p.loadMax,
		Check: func(status int, body []byte) error {
			if status != http.StatusOK || !bytes.HasPrefix(body, []byte("berth-bench steady-")) {
				return fmt.Errorf("status %d, body %q", status, clip(string(body)))
			}
			return nil
		},
		Op: func() string { return current.Load().(string) },
	})
	if err != nil {
		return err
	}
	loadStopped := false
	defer func() {
		if !loadStopped {
			d.Load = l.stop()
		}
	}()
	b.say("steady load: %d req/s (%d keep-alive, %d fresh connections)", rate, b.p.loadKeepAlive, b.p.loadFresh)
	if err := sleep(ctx, 2*time.Second); err != nil {
		return err
	}

	counts := map[string]int{}
	for i, o := range plan {
		counts[o.kind]++
		label := fmt.Sprintf("%s %d", o, counts[o.kind])
		current.Store(label)
		opStart := time.Now()
		switch o.kind {
		case "redeploy":
			dep, err := deploy()
			if err != nil {
				return fmt.Errorf("%s: %w", label, err)
			}
			if err := live(dep); err != nil {
				return fmt.Errorf("%s: %w", label, err)
			}
			d.Redeploys++
		case "rollback":
			dep, err := s.client.Rollback(ctx, app, "")
			if err != nil {
				return fmt.Errorf("%s: %w", label, err)
			}
			if err := live(dep); err != nil {
				return fmt.Errorf("%s: %w", label, err)
			}
			d.Rollbacks++
		case "restart":
			if err := s.waitSettled(ctx, app, replicas, time.Minute); err != nil {
				b.note("before a restart: " + err.Error())
			}
			if err := s.stop(); err != nil {
				return fmt.Errorf("%s: %w", label, err)
			}
			if err := sleep(ctx, time.Second); err != nil {
				return err
			}
			if err := s.start(ctx); err != nil {
				return fmt.Errorf("%s: %w", label, err)
			}
			d.Restarts++
		case "kill":
			stage, dep, err := b.killDuring(ctx, s, app, o.stage, deploy, settle)
			if err != nil {
				return fmt.Errorf("%s: %w", label, err)
			}
			d.Kills++
			d.KilledIn = append(d.KilledIn, stage)
			if dep != nil {
				d.KilledDeployments = append(d.KilledDeployments, fmt.Sprintf("#%d killed while %s ended %s: %s", dep.Number, stage, dep.Status, clip(dep.Error)))
			}
		}
		current.Store("idle")
		total, failed := l.snapshot()
		b.say("op %d/%d %-22s %5.1f s   requests %d, failed %d", i+1, len(plan), label, time.Since(opStart).Seconds(), total, failed)
	}
	if err := sleep(ctx, 2*time.Second); err != nil {
		return err
	}
	d.Load = l.stop()
	loadStopped = true
	d.DurationS = d.Load.Duration.Seconds()
	if d.Load.Total < int64(rate)*int64(d.DurationS)/2 {
		b.note(fmt.Sprintf("the load sent %d requests in %.0f s, under half its rate: the machine could not keep up", d.Load.Total, d.DurationS))
	}
	b.res.FailedRequests, b.res.TotalRequests = &d.Load.Failed, &d.Load.Total
	return nil
}

// stageRank orders deployment statuses along the happy path.
func stageRank(s berth.Status) int {
	return slices.Index(berth.Statuses, s)
}

// killDuring kills the control plane with SIGKILL, either idle or while a
// new deployment is in the given stage (or, if it went past that stage
// between two looks, the first one seen after it), starts it again and
// waits for that deployment to end. It returns where the kill landed and
// how the interrupted deployment ended.
func (b *bench) killDuring(ctx context.Context, s *server, app, stage string,
	deploy func() (*berth.Deployment, error), settle func(*berth.Deployment) (*berth.Deployment, error)) (string, *berth.Deployment, error) {
	if stage == "idle" {
		if err := s.waitSettled(ctx, app, 2, time.Minute); err != nil {
			b.note("before a kill -9: " + err.Error())
		}
		if err := s.kill9(); err != nil {
			return "", nil, err
		}
		if err := sleep(ctx, time.Second); err != nil {
			return "", nil, err
		}
		return "idle", nil, s.start(ctx)
	}
	dep, err := deploy()
	if err != nil {
		return "", nil, err
	}
	want := stageRank(berth.Status(stage))
	landed := ""
	deadline := time.Now().Add(3 * time.Minute)
	for landed == "" {
		cur, err := s.client.Deployment(ctx, app, dep.ID)
		switch {
		case err != nil:
		case !cur.Status.Active():
			landed = "after it ended " + string(cur.Status)
		case stageRank(cur.Status) >= want:
			landed = string(cur.Status)
		}
		if landed == "" && time.Now().After(deadline) {
			return "", nil, fmt.Errorf("deployment never reached %s", stage)
		}
		if landed == "" {
			if err := sleep(ctx, 5*time.Millisecond); err != nil {
				return "", nil, err
			}
		}
	}
	if err := s.kill9(); err != nil {
		return "", nil, err
	}
	if err := sleep(ctx, time.Second); err != nil {
		return "", nil, err
	}
	if err := s.start(ctx); err != nil {
		return "", nil, err
	}
	// The interrupted deployment must end (failed, most likely) and the
	// live release keep serving.
	end, err := settle(dep)
	return landed, end, err
}
