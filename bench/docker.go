package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/moby/moby/client"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/docker"
)

// Labels on every Docker object the benchmark itself creates (the berth
// server's objects carry its instance label instead).
const (
	labelBench = "berth.bench" // the run's ID
	labelTest  = "berth.test"  // "1", as on every test object
)

// removeInstance removes every Docker object of the berth server whose
// proxy publishes proxyAddr, then its network. The proxy image may be
// shared with other berth servers of the same binary: a refusal to remove
// it is fine.
func removeInstance(ctx context.Context, dk *docker.Engine, s *server) error {
	var errs []error
	inst := s.instance
	if inst == "" {
		proxies, err := dk.Containers(ctx, map[string]string{berth.LabelRole: "proxy", "berth.proxy.listen": s.proxy})
		errs = append(errs, err)
		for _, p := range proxies {
			inst = p.Labels[berth.LabelInstance]
		}
	}
	if inst != "" {
		errs = append(errs, dk.RemoveLabelled(ctx, map[string]string{berth.LabelInstance: inst}))
	}
	errs = append(errs, dk.RemoveNetwork(ctx, s.network))
	return errors.Join(errs...)
}

// proxyContainer finds the proxy container of server s.
func proxyContainer(ctx context.Context, dk *docker.Engine, s *server) (berth.Container, error) {
	cs, err := dk.Containers(ctx, map[string]string{berth.LabelRole: "proxy", "berth.proxy.listen": s.proxy})
	if err != nil {
		return berth.Container{}, err
	}
	for _, c := range cs {
		if c.Running() {
			return c, nil
		}
	}
	return berth.Container{}, fmt.Errorf("no running proxy container publishes %s", s.proxy)
}

// containerPID returns the host PID of a container's main process.
func containerPID(ctx context.Context, dk *docker.Engine, id string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := dk.Client().ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return 0, fmt.Errorf("inspect container %s: %w", id, err)
	}
	if res.Container.State == nil || res.Container.State.Pid == 0 {
		return 0, fmt.Errorf("container %s is not running", id)
	}
	return res.Container.State.Pid, nil
}

// importAppImage makes a FROM scratch image holding the static binary bin
// as /app, its entrypoint, with one Engine API import: unlike a build, it
// runs no intermediate container per instruction.
func importAppImage(ctx context.Context, dk *docker.Engine, bin, tag string, labels map[string]string) error {
	exe, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	rootfs, err := tarContext([]ctxFile{{"app", 0o755, exe}})
	if err != nil {
		return err
	}
	changes := []string{`ENTRYPOINT ["/app"]`}
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		changes = append(changes, fmt.Sprintf("LABEL %q=%q", k, labels[k]))
	}
	if err := dk.ImportImage(ctx, bytes.NewReader(rootfs), tag, changes); err != nil {
		return err
	}
	if ok, err := dk.ImageExists(ctx, tag); err != nil || !ok {
		return fmt.Errorf("image %s missing after import (err %v)", tag, err)
	}
	return nil
}

// removeImages removes images by reference; a missing one is fine (as
// RemoveImage has it).
func removeImages(ctx context.Context, dk *docker.Engine, refs []string) error {
	var errs []error
	for _, ref := range refs {
		errs = append(errs, dk.RemoveImage(ctx, ref))
	}
	return errors.Join(errs...)
}
