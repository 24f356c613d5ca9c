// Package enginetest gives tests a real engine over a real store with fake
// adapters (git, builder, Docker, proxy) that keep their state in memory.
// It is for unit tests of the engine and of the packages above it; end-to-end
// tests use the real adapters.
package enginetest

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/engine"
	"github.com/berthhq/berth/queue"
	"github.com/berthhq/berth/store"
)

// New returns a running engine over st with fresh fakes.
func New(t testing.TB, st *store.Store) *engine.Engine {
	e, _ := NewWithFakes(t, st)
	return e
}

// NewWithFakes returns a running engine over st and the fakes behind it.
// The engine's queue works until the test ends. Each tune func may change
// the engine's configuration before it starts.
func NewWithFakes(t testing.TB, st *store.Store, tune ...func(*engine.Config)) (*engine.Engine, *Fakes) {
	t.Helper()
	e, f, stop, err := Start(st, t.TempDir(), tune...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return e, f
}

// Start is NewWithFakes for a program that is not a test (the benchmark):
// the engine keeps its work files in workDir, and its queue works until
// stop is called.
func Start(st *store.Store, workDir string, tune ...func(*engine.Config)) (e *engine.Engine, f *Fakes, stop func(), err error) {
	rt := &Runtime{containers: map[string]*berth.Container{}, images: map[string]berth.Image{}}
	f = &Fakes{Runtime: rt, Router: &Router{routes: map[string]berth.Route{}, Runtime: rt}}
	f.Builder.Runtime = rt
	q := queue.New(st, queue.Config{Poll: 20 * time.Millisecond, Lease: 3 * time.Second, BaseBackoff: 10 * time.Millisecond})
	cfg := engine.Config{
		Store: st, Queue: q, Source: &f.Source, Builder: &f.Builder, Runtime: f.Runtime, Router: f.Router,
		Proxy:   map[string]string{berth.LabelRole: "proxy"},
		WorkDir: workDir, Instance: "test", DrainDelay: time.Millisecond, CancelPoll: 20 * time.Millisecond,
	}
	for _, f := range tune {
		f(&cfg)
	}
	e, err = engine.New(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.Run(ctx); close(done) }()
	stop = func() { cancel(); <-done }
	if err := e.Prepare(ctx); err != nil {
		stop()
		return nil, nil, nil, err
	}
	return e, f, stop, nil
}

// Fakes are the adapters behind an engine from NewWithFakes.
type Fakes struct {
	Source  Source
	Builder Builder
	Runtime *Runtime
	Router  *Router
}

// Source is a fake git: it writes a Dockerfile and returns a commit derived
// from the ref. Err, when set, is returned instead. It records the
// credentials of every fetch, and reports NewHostKeys as trusted on first
// use by each successful one.
type Source struct {
	mu          sync.Mutex
	Err         error
	Block       chan struct{}   // when set, Fetch waits for it (or ctx)
	Fetches     []string        // "url@ref" of every fetch
	Auths       []berth.GitAuth // the credentials of every fetch
	NewHostKeys []berth.HostKey // returned by every successful fetch
	Output      string          // written to out before the fetch ends
	// Commit, when set, gives the commit a ref resolves to ("" for the
	// default), as a remote whose branches move would.
	Commit func(url, ref string) string
}

// SetCommit makes Fetch resolve refs with f.
func (s *Source) SetCommit(f func(url, ref string) string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Commit = f
}

// FetchLog returns "url@ref" of every fetch so far.
func (s *Source) FetchLog() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.Fetches)
}

func (s *Source) Fetch(ctx context.Context, req berth.FetchRequest, out io.Writer) (berth.FetchResult, error) {
	s.mu.Lock()
	s.Fetches = append(s.Fetches, req.URL+"@"+req.Ref)
	s.Auths = append(s.Auths, req.Auth)
	err, block, keys, output, commit := s.Err, s.Block, s.NewHostKeys, s.Output, s.Commit
	s.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return berth.FetchResult{}, ctx.Err()
		}
	}
	io.WriteString(out, output)
	if err != nil {
		return berth.FetchResult{}, err
	}
	fmt.Fprintf(out, "fetched %s\n", req.Ref)
	if err := os.WriteFile(filepath.Join(req.Dir, "Dockerfile"), []byte("FROM scratch\n"), 0o644); err != nil {
		return berth.FetchResult{}, err
	}
	c := fmt.Sprintf("%040x", len(req.Ref)+len(req.URL))
	if commit != nil {
		if got := commit(req.URL, req.Ref); got != "" {
			c = got
		}
	}
	return berth.FetchResult{Commit: c, NewHostKeys: keys}, nil
}

// SourceAuths returns the credentials of every fetch so far.
func (s *Source) SourceAuths() []berth.GitAuth {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.Auths)
}

// Builder is a fake image builder: the image ID is "sha256:" + the tag.
// Err, when set, is returned after writing Output.
type Builder struct {
	mu      sync.Mutex
	Err     error
	Output  string
	Builds  []berth.BuildSpec
	Block   chan struct{} // when set, Build waits for it (or ctx)
	Runtime *Runtime      // where built images appear
	running int
	MaxSeen int // most builds seen running at once
}

// BuildLog returns the spec of every build so far.
func (b *Builder) BuildLog() []berth.BuildSpec {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.Builds)
}

// SetBlock makes builds wait for ch (nil: no wait).
func (b *Builder) SetBlock(ch chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.Block = ch
}

func (b *Builder) Build(ctx context.Context, spec berth.BuildSpec, out io.Writer) (string, error) {
	b.mu.Lock()
	b.Builds = append(b.Builds, spec)
	err, output, block := b.Err, b.Output, b.Block
	b.running++
	b.MaxSeen = max(b.MaxSeen, b.running)
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.running--
		b.mu.Unlock()
	}()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	if _, statErr := os.Stat(filepath.Join(spec.ContextDir, "Dockerfile")); statErr != nil && spec.Dockerfile == "" {
		return "", fmt.Errorf("no Dockerfile in the build context")
	}
	io.WriteString(out, output)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(out, "Successfully tagged %s\n", spec.Tag)
	id := "sha256:" + spec.Tag
	if b.Runtime != nil {
		b.Runtime.AddImage(berth.Image{ID: id, Tags: []string{spec.Tag}, Labels: maps.Clone(spec.Labels), Created: time.Now()})
	}
	return id, nil
}

// Runtime is a fake Docker: containers are records in memory.
type Runtime struct {
	mu           sync.Mutex
	containers   map[string]*berth.Container
	n            int
	NetworkNames []string // networks, in creation order
	networks     map[string]network
	netOf        map[string]string // container ID → its network
	VolumeNames  []string          // volumes, in creation order
	volumeLabels map[string]map[string]string
	// Crash, when it returns true for an image, makes containers of that
	// image exit at once (Run succeeds, the container is "exited").
	Crash func(image string) bool
	// LogText is what Logs writes for every container.
	LogText string
	// Health, when set, gives the Docker HEALTHCHECK status of containers
	// of an image ("" for none).
	Health func(image string) string
	images map[string]berth.Image
}

// AddImage makes an image present.
func (r *Runtime) AddImage(img berth.Image) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.images[img.ID] = img
}

// Images lists the images carrying all the labels.
func (r *Runtime) Images(ctx context.Context, labels map[string]string) ([]berth.Image, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []berth.Image
	for _, img := range r.images {
		if hasLabels(img.Labels, labels) {
			img.Tags = slices.Clone(img.Tags) // the caller's copy
			out = append(out, img)
		}
	}
	slices.SortFunc(out, func(a, b berth.Image) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// RemoveImage removes a tag, or an image by ID, as Docker does: an image a
// container uses, or one with several tags named by its ID, is a Conflict;
// removing its last tag removes the image.
func (r *Runtime) RemoveImage(ctx context.Context, ref string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := ref
	for _, img := range r.images {
		if slices.Contains(img.Tags, ref) {
			id = img.ID
		}
	}
	img, ok := r.images[id]
	if !ok {
		return nil
	}
	for _, c := range r.containers {
		if c.Image == id || slices.Contains(img.Tags, c.Image) {
			return berth.E("remove image", berth.Conflict, "image %s is in use", ref)
		}
	}
	if id != ref {
		img.Tags = slices.DeleteFunc(slices.Clone(img.Tags), func(t string) bool { return t == ref })
		r.images[id] = img
		if len(img.Tags) > 0 {
			return nil
		}
	} else if len(img.Tags) > 1 {
		return berth.E("remove image", berth.Conflict, "image %s is referenced in multiple repositories", ref)
	}
	delete(r.images, id)
	return nil
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// network is a fake Docker network.
type network struct {
	labels map[string]string
	proxy  bool // the proxy is connected to it
}

func (r *Runtime) EnsureNetwork(ctx context.Context, name string, labels map[string]string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.networks[name]; !ok {
		if r.networks == nil {
			r.networks = map[string]network{}
		}
		r.NetworkNames = append(r.NetworkNames, name)
		r.networks[name] = network{labels: maps.Clone(labels)}
	}
	return nil
}

// Networks lists the networks carrying all the labels, like Docker.
func (r *Runtime) Networks(ctx context.Context, labels map[string]string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, name := range r.NetworkNames {
		if hasLabels(r.networks[name].labels, labels) {
			out = append(out, name)
		}
	}
	return out, nil
}

// RemoveNetwork removes a network that no container uses and the proxy is
// not connected to, like Docker.
func (r *Runtime) RemoveNetwork(ctx context.Context, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, ok := r.networks[name]
	if !ok {
		return nil
	}
	if n.proxy || slices.Contains(slices.Collect(maps.Values(r.netOf)), name) {
		return berth.E("remove network", berth.Conflict, "network %s still has containers attached", name)
	}
	delete(r.networks, name)
	r.NetworkNames = slices.DeleteFunc(r.NetworkNames, func(s string) bool { return s == name })
	return nil
}

// Connect and Disconnect connect the proxy (any labels but none) to a
// network.
func (r *Runtime) Connect(ctx context.Context, name string, labels map[string]string) error {
	return r.connect(name, labels, true)
}

func (r *Runtime) Disconnect(ctx context.Context, name string, labels map[string]string) error {
	return r.connect(name, labels, false)
}

func (r *Runtime) connect(name string, labels map[string]string, on bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(labels) == 0 {
		return berth.E("connect network", berth.Invalid, "select the containers by at least one label")
	}
	n, ok := r.networks[name]
	switch {
	case !ok && on:
		return berth.E("connect network", berth.NotFound, "no network named %s", name)
	case ok:
		n.proxy = on
		r.networks[name] = n
	}
	return nil
}

// NetworkOf returns the network a container was started on.
func (r *Runtime) NetworkOf(id string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.netOf[id]
}

// ProxyOn reports whether the proxy is connected to a network.
func (r *Runtime) ProxyOn(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.networks[name].proxy
}

// reachable reports whether the proxy reaches container id: it is on the
// shared network, or on an app's own network the proxy is connected to.
func (r *Runtime) reachable(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.networks[r.netOf[id]]
	return n.labels[berth.LabelRole] != "network" || n.proxy
}

func (r *Runtime) EnsureVolume(ctx context.Context, name string, labels map[string]string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Contains(r.VolumeNames, name) {
		r.VolumeNames = append(r.VolumeNames, name)
		if r.volumeLabels == nil {
			r.volumeLabels = map[string]map[string]string{}
		}
		r.volumeLabels[name] = maps.Clone(labels)
	}
	return nil
}

// Volumes lists the volumes carrying all the labels, like Docker.
func (r *Runtime) Volumes(ctx context.Context, labels map[string]string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, name := range r.VolumeNames {
		if hasLabels(r.volumeLabels[name], labels) {
			out = append(out, name)
		}
	}
	return out, nil
}

func (r *Runtime) RemoveVolume(ctx context.Context, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.VolumeNames = slices.DeleteFunc(r.VolumeNames, func(v string) bool { return v == name })
	delete(r.volumeLabels, name)
	return nil
}

func (r *Runtime) Run(ctx context.Context, spec berth.ContainerSpec) (berth.Container, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.networks[spec.Network]; !ok && spec.Network != "" { // "": Docker's default bridge
		return berth.Container{}, berth.E("run container", berth.NotFound, "network %s not found", spec.Network)
	}
	r.n++
	c := &berth.Container{
		ID: fmt.Sprintf("c%06d", r.n), Name: spec.Name, Image: spec.Image, Labels: maps.Clone(spec.Labels),
		State: "running", IP: fmt.Sprintf("10.0.0.%d", r.n%250+2), StartedAt: time.Now(),
	}
	if r.Crash != nil && r.Crash(spec.Image) {
		c.State, c.ExitCode = "exited", 1
	}
	if r.Health != nil {
		c.Health = r.Health(spec.Image)
	}
	r.containers[c.ID] = c
	if r.netOf == nil {
		r.netOf = map[string]string{}
	}
	r.netOf[c.ID] = spec.Network
	return *c, nil
}

func (r *Runtime) Containers(ctx context.Context, labels map[string]string) ([]berth.Container, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []berth.Container
	for _, c := range r.containers {
		if hasLabels(c.Labels, labels) {
			out = append(out, *c)
		}
	}
	slices.SortFunc(out, func(a, b berth.Container) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (r *Runtime) Remove(ctx context.Context, id string, grace time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.containers, id)
	delete(r.netOf, id)
	return nil
}

func (r *Runtime) Logs(ctx context.Context, id string, tail int, follow bool, w io.Writer) error {
	r.mu.Lock()
	text := r.LogText
	r.mu.Unlock()
	_, err := io.WriteString(w, text)
	return err
}

// ImageExists reports whether an image is present: built ones until they
// are removed, and every other reference (a fake registry has them all).
func (r *Runtime) ImageExists(ctx context.Context, ref string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if strings.HasPrefix(ref, "sha256:") {
		_, ok := r.images[ref]
		return ok, nil
	}
	return true, nil
}

// SetState changes a container's state, as a crash or `docker stop` would.
func (r *Runtime) SetState(id, state string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.containers[id]; ok {
		c.State = state
	}
}

// Running returns the running containers, by ID.
func (r *Runtime) Running() []berth.Container {
	cs, _ := r.Containers(context.Background(), nil)
	return slices.DeleteFunc(cs, func(c berth.Container) bool { return !c.Running() })
}

// Router is a fake proxy. Check fails at once for every target when
// Unhealthy is set, and probes a target whose container the fake runtime
// reports as not running until ctx ends, as a real proxy would.
type Router struct {
	mu        sync.Mutex
	routes    map[string]berth.Route
	Runtime   *Runtime
	Unhealthy error
	Checks    int
	Drained   []string          // targets drained, in order
	custom    map[string]string // host → custom certificate PEM
}

func (r *Router) Check(ctx context.Context, p berth.Probe) error {
	r.mu.Lock()
	r.Checks++
	err, rt := r.Unhealthy, r.Runtime
	r.mu.Unlock()
	if err != nil {
		return err
	}
	if rt == nil {
		return nil
	}
	cs, _ := rt.Containers(ctx, nil)
	for _, t := range p.Targets {
		name, _, _ := strings.Cut(t, ":")
		found := false
		for _, c := range cs {
			if c.Name == name && rt.reachable(c.ID) {
				found = true
				if !c.Running() {
					// A real proxy keeps probing a dead target until its
					// deadline or until the engine gives up.
					<-ctx.Done()
					return fmt.Errorf("%s: connection refused until %w", t, ctx.Err())
				}
			}
		}
		if !found {
			return fmt.Errorf("%s: no such host", t)
		}
	}
	return nil
}

func (r *Router) SetRoute(ctx context.Context, rt berth.Route) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for app, other := range r.routes {
		if app == rt.App {
			continue
		}
		for _, h := range rt.Hosts {
			if slices.Contains(other.Hosts, h) {
				return berth.E("set route", berth.Conflict, "host %s is routed to another app", h)
			}
		}
	}
	r.routes[rt.App] = rt
	return nil
}

func (r *Router) RemoveRoute(ctx context.Context, app string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.routes, app)
	return nil
}

// Lock and Unlock guard the exported fields while the engine runs.
func (r *Router) Lock()   { r.mu.Lock() }
func (r *Router) Unlock() { r.mu.Unlock() }

// Route returns the route of an app.
func (r *Router) Route(app string) (berth.Route, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rt, ok := r.routes[app]
	return rt, ok
}

func (r *Router) Drain(ctx context.Context, targets []string, timeout time.Duration) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Drained = append(r.Drained, targets...)
	return 0, nil
}

func (r *Router) Certificates(ctx context.Context) ([]berth.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []berth.Certificate
	for _, rt := range r.routes {
		for _, h := range rt.Hosts {
			c := berth.Certificate{Host: h, Status: berth.CertNone}
			if pem, ok := r.custom[h]; ok && pem != "" {
				c.Status, c.Source = berth.CertValid, "custom"
			}
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b berth.Certificate) int { return strings.Compare(a.Host, b.Host) })
	return out, nil
}

// CustomCertificate returns the custom certificate PEM of host, "" for
// none.
func (r *Router) CustomCertificate(host string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.custom[host]
}

func (r *Router) SetCertificate(ctx context.Context, host string, certPEM, keyPEM []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.custom == nil {
		r.custom = map[string]string{}
	}
	if len(certPEM) == 0 {
		delete(r.custom, host)
		return nil
	}
	r.custom[host] = string(certPEM)
	return nil
}
