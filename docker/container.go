package docker

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/berthhq/berth"
)

// ServiceSpec describes one of berth's own infrastructure containers (the
// proxy, for instance): unlike an app replica it may publish ports on the
// host and bind-mount host directories, and Docker always restarts it.
type ServiceSpec struct {
	Name        string
	Image       string
	Cmd         []string // arguments to the image's entrypoint
	Env         map[string]string
	Labels      map[string]string
	Network     string // network to attach to, with Name as alias; "" = Docker's default bridge
	Ports       []Port
	Binds       []Bind
	StopTimeout time.Duration
}

// Port publishes a container port on the host.
type Port struct {
	HostIP        string // "" = every interface
	HostPort      int    // 0 = a free port chosen by Docker
	ContainerPort int
	Proto         string // "tcp" (default) or "udp"
}

// Bind mounts a host path into a container.
type Bind struct {
	Source   string // absolute host path
	Target   string // absolute container path
	ReadOnly bool
}

// runSpec is what Run and RunService have in common.
type runSpec struct {
	name, image string
	cmd         []string
	env         map[string]string
	labels      map[string]string
	network     string
	restart     container.RestartPolicyMode
	memory      int64
	nanoCPUs    int64
	mounts      []mount.Mount
	ports       []Port
	stopTimeout time.Duration
}

// Run creates and starts one replica of an app: restart policy
// unless-stopped, attached to spec.Network with spec.Name as its alias, no
// published ports. spec.Labels must hold berth.LabelManaged=true. The image
// must be present locally: nothing is pulled.
func (e *Engine) Run(ctx context.Context, spec berth.ContainerSpec) (berth.Container, error) {
	const op = "run container"
	var mounts []mount.Mount
	for _, v := range spec.Volumes {
		if err := checkObject(op, "volume", v.Volume); err != nil {
			return berth.Container{}, err
		}
		if err := checkMountPath(op, v.Path); err != nil {
			return berth.Container{}, err
		}
		mounts = append(mounts, mount.Mount{Type: mount.TypeVolume, Source: v.Volume, Target: v.Path})
	}
	if spec.Labels[berth.LabelManaged] != "true" {
		return berth.Container{}, berth.E(op, berth.Invalid, "container %s lacks the label %s=true", clip(spec.Name), berth.LabelManaged)
	}
	if spec.MemoryBytes < 0 || spec.NanoCPUs < 0 {
		return berth.Container{}, berth.E(op, berth.Invalid, "negative resource limit")
	}
	return e.run(ctx, op, runSpec{
		name: spec.Name, image: spec.Image, env: spec.Env, labels: spec.Labels,
		network: spec.Network, restart: container.RestartPolicyUnlessStopped,
		memory: spec.MemoryBytes, nanoCPUs: spec.NanoCPUs, mounts: mounts,
		stopTimeout: spec.StopTimeout,
	})
}

// RunService creates and starts one of berth's infrastructure containers
// (restart policy always).
func (e *Engine) RunService(ctx context.Context, spec ServiceSpec) (berth.Container, error) {
	const op = "run service container"
	var mounts []mount.Mount
	for _, b := range spec.Binds {
		if !path.IsAbs(b.Source) || path.Clean(b.Source) != b.Source || strings.ContainsRune(b.Source, 0) {
			return berth.Container{}, berth.E(op, berth.Invalid, "bind source %q: must be a clean absolute path", clip(b.Source))
		}
		if err := checkMountPath(op, b.Target); err != nil {
			return berth.Container{}, err
		}
		mounts = append(mounts, mount.Mount{Type: mount.TypeBind, Source: b.Source, Target: b.Target, ReadOnly: b.ReadOnly})
	}
	for _, p := range spec.Ports {
		if p.ContainerPort < 1 || p.ContainerPort > 65535 || p.HostPort < 0 || p.HostPort > 65535 {
			return berth.Container{}, berth.E(op, berth.Invalid, "port %d:%d: out of range", p.HostPort, p.ContainerPort)
		}
		if p.Proto != "" && p.Proto != "tcp" && p.Proto != "udp" {
			return berth.Container{}, berth.E(op, berth.Invalid, "port protocol %q: use tcp or udp", clip(p.Proto))
		}
		if p.HostIP != "" {
			if _, err := netip.ParseAddr(p.HostIP); err != nil {
				return berth.Container{}, berth.E(op, berth.Invalid, "host IP %q is not an IP address", clip(p.HostIP))
			}
		}
	}
	for _, a := range spec.Cmd {
		if strings.ContainsRune(a, 0) {
			return berth.Container{}, berth.E(op, berth.Invalid, "command argument contains NUL")
		}
	}
	return e.run(ctx, op, runSpec{
		name: spec.Name, image: spec.Image, cmd: spec.Cmd, env: spec.Env, labels: spec.Labels,
		network: spec.Network, restart: container.RestartPolicyAlways, mounts: mounts,
		ports: spec.Ports, stopTimeout: spec.StopTimeout,
	})
}

func checkMountPath(op, p string) error {
	if !path.IsAbs(p) || path.Clean(p) != p || p == "/" || strings.ContainsAny(p, ":\x00") {
		return berth.E(op, berth.Invalid, "mount path %q: must be a clean absolute path other than /", clip(p))
	}
	return nil
}

func (e *Engine) run(ctx context.Context, op string, s runSpec) (berth.Container, error) {
	if err := checkObject(op, "container name", s.name); err != nil {
		return berth.Container{}, err
	}
	if err := checkImage(op, s.image); err != nil {
		return berth.Container{}, err
	}
	if s.network != "" {
		if err := checkObject(op, "network", s.network); err != nil {
			return berth.Container{}, err
		}
	}
	if err := checkLabels(op, s.labels); err != nil {
		return berth.Container{}, err
	}
	env := make([]string, 0, len(s.env))
	for _, k := range slices.Sorted(maps.Keys(s.env)) {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(s.env[k], 0) {
			return berth.Container{}, berth.E(op, berth.Invalid, "environment variable %q: names cannot be empty or contain '=', values cannot contain NUL", clip(k))
		}
		env = append(env, k+"="+s.env[k])
	}
	if _, err := e.cli.ImageInspect(ctx, s.image); err != nil {
		if berth.IsKind(wrap(op, err), berth.NotFound) {
			return berth.Container{}, &berth.Error{Op: op, Kind: berth.NotFound,
				Msg: fmt.Sprintf("image %q is not present on this Docker engine (berth never pulls it implicitly)", s.image), Err: err}
		}
		return berth.Container{}, wrap(op, fmt.Errorf("inspect image %s: %w", s.image, err))
	}

	cfg := &container.Config{Image: s.image, Env: env, Labels: s.labels, Cmd: s.cmd}
	if s.stopTimeout > 0 {
		secs := seconds(s.stopTimeout)
		cfg.StopTimeout = &secs
	}
	hc := &container.HostConfig{
		RestartPolicy: container.RestartPolicy{Name: s.restart},
		Resources:     container.Resources{Memory: s.memory, NanoCPUs: s.nanoCPUs},
		Mounts:        s.mounts,
	}
	if s.memory > 0 {
		hc.MemorySwap = s.memory // no swap beyond the limit
	}
	if len(s.ports) > 0 {
		cfg.ExposedPorts = network.PortSet{}
		hc.PortBindings = network.PortMap{}
		for _, p := range s.ports {
			proto := network.IPProtocol(p.Proto)
			if proto == "" {
				proto = network.TCP
			}
			cp, _ := network.PortFrom(uint16(p.ContainerPort), proto)
			b := network.PortBinding{}
			if p.HostIP != "" {
				b.HostIP = netip.MustParseAddr(p.HostIP)
			}
			if p.HostPort > 0 {
				b.HostPort = strconv.Itoa(p.HostPort)
			}
			cfg.ExposedPorts[cp] = struct{}{}
			hc.PortBindings[cp] = append(hc.PortBindings[cp], b)
		}
	}
	var nc *network.NetworkingConfig
	if s.network != "" {
		hc.NetworkMode = container.NetworkMode(s.network)
		nc = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			s.network: {Aliases: []string{s.name}},
		}}
	}
	created, err := e.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: s.name, Config: cfg, HostConfig: hc, NetworkingConfig: nc,
	})
	if err != nil {
		return berth.Container{}, wrap(op, fmt.Errorf("create container %s: %w", s.name, err))
	}
	for _, w := range created.Warnings {
		e.log.Warn("docker warning on container create", "container", s.name, "warning", w)
	}
	if _, err := e.cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		e.discard(created.ID)
		return berth.Container{}, wrap(op, fmt.Errorf("start container %s: %w", s.name, err))
	}
	c, err := e.inspect(ctx, created.ID, s.network)
	if err != nil {
		return berth.Container{}, wrap(op, err)
	}
	return c, nil
}

// discard force-removes a container that could not be started, so that a
// failed Run leaves nothing behind. It uses its own context: the caller's
// may be what failed.
func (e *Engine) discard(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := e.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
		e.log.Warn("remove container that failed to start", "container", id, "err", err)
	}
}

// Container inspects one container. A missing one is a berth.NotFound error.
func (e *Engine) Container(ctx context.Context, id string) (berth.Container, error) {
	const op = "inspect container"
	if err := checkObject(op, "container", id); err != nil {
		return berth.Container{}, err
	}
	c, err := e.inspect(ctx, id, "")
	return c, wrap(op, err)
}

// ContainerIP returns a container's address on the named network, or "" if
// it is not attached to it.
func (e *Engine) ContainerIP(ctx context.Context, id, networkName string) (string, error) {
	const op = "container IP"
	if err := checkObject(op, "container", id); err != nil {
		return "", err
	}
	r, err := e.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return "", wrap(op, fmt.Errorf("inspect container %s: %w", id, err))
	}
	if ns := r.Container.NetworkSettings; ns != nil {
		if ep := ns.Networks[networkName]; ep != nil && ep.IPAddress.IsValid() {
			return ep.IPAddress.String(), nil
		}
	}
	return "", nil
}

// Containers lists the containers, in any state, that carry all the labels.
func (e *Engine) Containers(ctx context.Context, labels map[string]string) ([]berth.Container, error) {
	const op = "list containers"
	if err := checkLabels(op, labels); err != nil {
		return nil, err
	}
	list, err := e.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: labelFilter(labels)})
	if err != nil {
		return nil, wrap(op, err)
	}
	out := make([]berth.Container, 0, len(list.Items))
	for _, s := range list.Items {
		// The list lacks exit code, start time and (on API 1.41) health.
		c, err := e.inspect(ctx, s.ID, "")
		if berth.IsKind(wrap(op, err), berth.NotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, wrap(op, err)
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b berth.Container) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// inspect reads one container, reporting its IP on networkName, or when that
// is empty on its first user-defined network.
func (e *Engine) inspect(ctx context.Context, id, networkName string) (berth.Container, error) {
	r, err := e.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return berth.Container{}, fmt.Errorf("inspect container %s: %w", id, err)
	}
	ci := r.Container
	c := berth.Container{ID: ci.ID, Name: strings.TrimPrefix(ci.Name, "/")}
	if ci.Config != nil {
		c.Image = ci.Config.Image
		c.Labels = ci.Config.Labels
	}
	if st := ci.State; st != nil {
		c.State = string(st.Status)
		c.ExitCode = st.ExitCode
		if t, err := time.Parse(time.RFC3339Nano, st.StartedAt); err == nil && t.Year() > 1 {
			c.StartedAt = t
		}
		if st.Health != nil {
			c.Health = string(st.Health.Status)
		}
	}
	if ns := ci.NetworkSettings; ns != nil {
		c.IP = pickIP(ns.Networks, networkName)
	}
	return c, nil
}

// pickIP returns the address on the named network, or else on the first
// user-defined network by name, or else on Docker's default bridge.
func pickIP(nets map[string]*network.EndpointSettings, name string) string {
	ip := func(n string) string {
		if ep := nets[n]; ep != nil && ep.IPAddress.IsValid() {
			return ep.IPAddress.String()
		}
		return ""
	}
	if name != "" {
		return ip(name)
	}
	for _, n := range slices.Sorted(maps.Keys(nets)) {
		if n != "bridge" {
			if a := ip(n); a != "" {
				return a
			}
		}
	}
	return ip("bridge")
}

// Remove stops a container (SIGTERM, then SIGKILL after grace) and removes
// it with its anonymous volumes; named volumes are kept. A container that is
// already gone is not an error.
func (e *Engine) Remove(ctx context.Context, id string, grace time.Duration) error {
	const op = "remove container"
	if err := checkObject(op, "container", id); err != nil {
		return err
	}
	timeout := 0
	if grace > 0 {
		timeout = seconds(grace)
	}
	if _, err := e.cli.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &timeout}); err != nil {
		werr := wrap(op, err)
		if berth.IsKind(werr, berth.NotFound) {
			return nil
		}
		if ctx.Err() != nil {
			return wrap(op, fmt.Errorf("stop container %s: %w", id, err))
		}
		// Force removal below kills it anyway.
		e.log.Warn("stop container", "container", id, "err", err)
	}
	_, err := e.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	switch werr := wrap(op, err); {
	case err == nil, berth.IsKind(werr, berth.NotFound):
		return nil
	case berth.IsKind(werr, berth.Conflict) && strings.Contains(err.Error(), "already in progress"):
		return nil
	default:
		return wrap(op, fmt.Errorf("remove container %s: %w", id, err))
	}
}

// seconds rounds d up to whole seconds.
func seconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}
