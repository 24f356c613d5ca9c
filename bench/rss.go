package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/api"
)

// rssDetail is how the idle memory was measured.
type rssDetail struct {
	AppsDefined int        `json:"apps_defined"`
	AppsRunning int        `json:"apps_running"`
	SettleS     float64    `json:"settle_s"`
	Server      procStatus `json:"server_kb"`
	Proxy       procStatus `json:"proxy_kb"`
}

// idleRSS defines rssApps apps on the server and runs rssRunning of them,
// one replica each: the first deploy of the deploy comparison's
// Dockerfile-built app, and prebuilt-image apps for the others, all at
// once. Then it lets everything settle and reads the resident memory of
// the server process and of the proxy container.
func (b *bench) idleRSS(ctx context.Context, s *server) error {
	d := &rssDetail{AppsDefined: b.p.rssApps, AppsRunning: b.p.rssRunning, SettleS: b.p.rssSettle.Seconds()}
	// Whatever happens here, the first deploy has ended when this returns.
	var firstErr error
	var first sync.WaitGroup
	first.Go(func() { firstErr = b.overheadFirstDeploy(ctx, s) })
	defer first.Wait()
	images := b.p.rssRunning - 1
	for i := range b.p.rssApps - 1 {
		a := &berth.App{Name: fmt.Sprintf("idle-%02d", i), Port: 8080, Replicas: 1}
		if i < images {
			a.Source = berth.Source{Kind: berth.SourceImage, Image: b.appImage}
		} else {
			a.Source = berth.Source{Kind: berth.SourceUpload}
		}
		if _, err := s.client.CreateApp(ctx, a); err != nil {
			return fmt.Errorf("create app %s: %w", a.Name, err)
		}
		if _, err := s.client.AddDomain(ctx, a.Name, a.Name+".idle.bench.localhost"); err != nil {
			return fmt.Errorf("add domain to %s: %w", a.Name, err)
		}
	}
	// Deploy the running ones at once: the queue runs them side by side.
	errs := make([]error, images+1)
	var wg sync.WaitGroup
	for i := range images {
		wg.Go(func() {
			name := fmt.Sprintf("idle-%02d", i)
			dep, err := s.client.Deploy(ctx, name, api.DeployRequest{})
			if err != nil {
				errs[i] = fmt.Errorf("deploy %s: %w", name, err)
				return
			}
			dep, err = s.waitDone(ctx, name, dep.ID, 3*time.Minute)
			if err != nil {
				errs[i] = err
				return
			}
			if dep.Status != berth.StatusLive {
				errs[i] = fmt.Errorf("deploy %s ended %s: %s", name, dep.Status, clip(dep.Error))
			}
		})
	}
	wg.Wait()
	first.Wait()
	if firstErr != nil {
		errs[images] = fmt.Errorf("deploy comparison app: %w", firstErr)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	b.say("%d apps defined, %d running; settling %s", b.p.rssApps, b.p.rssRunning, b.p.rssSettle)
	if err := sleep(ctx, b.p.rssSettle); err != nil {
		return err
	}
	srv, err := readProcStatus(s.proc.pid())
	if err != nil {
		return fmt.Errorf("server memory: %w", err)
	}
	pc, err := proxyContainer(ctx, b.dk, s)
	if err != nil {
		return err
	}
	pid, err := containerPID(ctx, b.dk, pc.ID)
	if err != nil {
		return err
	}
	px, err := readProcStatus(pid)
	if err != nil {
		return fmt.Errorf("proxy memory: %w", err)
	}
	d.Server, d.Proxy = srv, px
	b.res.RSS = d
	b.res.IdleRSSMBServer = num(float64(srv.VmRSS) / 1024)
	b.res.IdleRSSMBProxy = num(float64(px.VmRSS) / 1024)
	return nil
}
