package docker_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/versions"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/build"
	"github.com/berthhq/berth/docker"
	"github.com/berthhq/berth/docker/dockertest"
	"github.com/berthhq/berth/engine"
)

var _ engine.Runtime = (*docker.Engine)(nil)

// runScript is the test image's program. MODE (or the first argument)
// picks what it does.
const runScript = `
MODE="${MODE:-$1}"
case "$MODE" in
lines)
	echo "err line" >&2
	sleep 0.2
	i=1
	while [ "$i" -le "${COUNT:-5}" ]; do echo "out $i"; i=$((i+1)); done
	exec sleep 3600 ;;
tick)
	i=1
	while true; do echo "tick $i"; i=$((i+1)); sleep 0.05; done ;;
term)
	trap 'echo term > /data/term; exit 7' TERM
	echo ready
	while true; do sleep 1 & wait $!; done ;;
ignore)
	trap '' TERM
	echo ready
	while true; do sleep 1; done ;;
fetch)
	until wget -q -O - "$URL"; do sleep 0.2; done
	exec sleep 3600 ;;
exit)
	echo bye
	exit "${CODE:-3}" ;;
*)
	mkdir -p /www
	printf 'greeting=%s\n' "$GREETING" > /www/index.html
	hostname > /www/host
	if [ -d /data ]; then
		echo boot >> /data/boots 2>/dev/null
		cp -r /data /www/data
	fi
	echo "serving"
	exec httpd -f -p 8080 -h /www ;;
esac
`

// testImage builds the test image on the busybox base and returns its tag.
func testImage(t *testing.T, eng *docker.Engine, labels map[string]string, extra string) string {
	t.Helper()
	base := dockertest.Busybox(t, eng)
	dir := t.TempDir()
	write(t, filepath.Join(dir, "run.sh"), runScript)
	write(t, filepath.Join(dir, "Dockerfile"), "FROM "+base+"\nCOPY run.sh /run.sh\nCMD [\"sh\", \"/run.sh\"]\n"+extra)
	tag := "berth-test/app:" + labels[dockertest.LabelRun]
	b := build.New(eng, nil, build.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out strings.Builder
	if _, err := b.Build(ctx, berth.BuildSpec{ContextDir: dir, Tag: tag, Labels: labels}, &out); err != nil {
		t.Fatalf("build test image: %v\n%s", err, out.String())
	}
	return tag
}

// managed adds berth.LabelManaged, which Run requires.
func managed(labels map[string]string) map[string]string {
	return dockertest.With(labels, map[string]string{berth.LabelManaged: "true"})
}

func write(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// eventually calls f until it returns nil, failing the test with f's last
// error after a generous deadline (a slow machine is not a failure).
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func httpGet(url string) (string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(body), nil
}

// getEventually GETs url until it answers 200 and returns the body.
func getEventually(t *testing.T, url string) string {
	t.Helper()
	var body string
	eventually(t, "GET "+url, func() (err error) {
		body, err = httpGet(url)
		return err
	})
	return body
}

func TestPingUnreachable(t *testing.T) {
	eng, err := docker.New("unix://"+filepath.Join(t.TempDir(), "no.sock"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	err = eng.Ping(t.Context())
	if !berth.IsKind(err, berth.Unavailable) || !strings.Contains(berth.ErrorMessage(err), "does not answer") {
		t.Fatalf("Ping of a missing socket = %v (kind %s), want Unavailable with a clear message", err, berth.ErrorKind(err))
	}
}

func TestPingNegotiatesAPIVersion(t *testing.T) {
	eng := dockertest.Engine(t) // pings
	res, err := eng.Client().Ping(t.Context(), client.PingOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := res.APIVersion
	if versions.LessThan(client.MaxAPIVersion, want) {
		want = client.MaxAPIVersion
	}
	if got := eng.APIVersion(); got != want {
		t.Fatalf("client speaks API %s, daemon %s: want %s", got, res.APIVersion, want)
	}
	t.Logf("API version %s", want)
}

func TestRunReplicasOnNetwork(t *testing.T) {
	eng := dockertest.Engine(t)
	labels := managed(dockertest.Cleanup(t, eng))
	img := testImage(t, eng, labels, "")
	ctx := ctxT(t)
	net := dockertest.Name("net")
	if err := eng.EnsureNetwork(ctx, net, labels); err != nil {
		t.Fatal(err)
	}
	const greeting = `hi $(id); rm -rf / ` + "`x`" + ` && echo "pwned" | cat`
	var replicas []berth.Container
	for i := range 2 {
		name := fmt.Sprintf("%s-r%d", net, i)
		c, err := eng.Run(ctx, berth.ContainerSpec{
			Name:        name,
			Image:       img,
			Env:         map[string]string{"GREETING": greeting, "ZED": "last", "ALPHA": "first"},
			Labels:      dockertest.With(labels, map[string]string{berth.LabelRole: "app", berth.LabelApp: "app_" + strconv.Itoa(i)}),
			Network:     net,
			MemoryBytes: 64 << 20,
			NanoCPUs:    500_000_000,
			StopTimeout: 3 * time.Second,
		})
		if err != nil {
			t.Fatalf("Run %s: %v", name, err)
		}
		if c.Name != name || c.ID == "" || c.Image != img || !c.Running() || c.IP == "" || c.StartedAt.IsZero() {
			t.Fatalf("Run returned %+v", c)
		}
		if c.Labels[berth.LabelManaged] != "true" || c.Labels[dockertest.LabelTest] != "1" {
			t.Fatalf("labels not set: %v", c.Labels)
		}
		replicas = append(replicas, c)
	}
	if replicas[0].IP == replicas[1].IP {
		t.Fatalf("two replicas share IP %s", replicas[0].IP)
	}
	for _, c := range replicas {
		body := getEventually(t, "http://"+c.IP+":8080/")
		if want := "greeting=" + greeting + "\n"; body != want {
			t.Errorf("replica %s serves %q, want %q (env must pass as data)", c.Name, body, want)
		}
		// The inspected configuration carries what Run was asked for.
		r, err := eng.Client().ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		hc, cfg := r.Container.HostConfig, r.Container.Config
		if hc.Memory != 64<<20 || hc.NanoCPUs != 500_000_000 {
			t.Errorf("limits: memory %d, nanocpus %d", hc.Memory, hc.NanoCPUs)
		}
		if hc.RestartPolicy.Name != "unless-stopped" {
			t.Errorf("restart policy %q", hc.RestartPolicy.Name)
		}
		if len(hc.PortBindings) != 0 || hc.PublishAllPorts {
			t.Errorf("app containers must publish no ports: %v", hc.PortBindings)
		}
		if cfg.StopTimeout == nil || *cfg.StopTimeout != 3 {
			t.Errorf("stop timeout %v", cfg.StopTimeout)
		}
		var ours []string
		for _, e := range cfg.Env {
			if k, _, _ := strings.Cut(e, "="); k == "ALPHA" || k == "GREETING" || k == "ZED" {
				ours = append(ours, k)
			}
		}
		if !slices.Equal(ours, []string{"ALPHA", "GREETING", "ZED"}) {
			t.Errorf("env order %v, want sorted", ours)
		}
		ep := r.Container.NetworkSettings.Networks[net]
		if ep == nil || !slices.Contains(ep.Aliases, c.Name) {
			t.Errorf("container %s not on %s with its name as alias: %+v", c.Name, net, ep)
		}
		if ip, err := eng.ContainerIP(ctx, c.ID, net); err != nil || ip != c.IP {
			t.Errorf("ContainerIP = %q, %v; want %s", ip, err, c.IP)
		}
	}
	// Containers on the network reach a replica by its alias.
	probe, err := eng.Run(ctx, berth.ContainerSpec{
		Name: net + "-probe", Image: img, Labels: labels, Network: net,
		Env: map[string]string{"MODE": "fetch", "URL": "http://" + replicas[0].Name + ":8080/"},
	})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "probe fetches a replica by alias", func() error {
		var sb strings.Builder
		if err := eng.Logs(ctx, probe.ID, -1, false, &sb); err != nil {
			return err
		}
		if !strings.Contains(sb.String(), "greeting=") {
			return fmt.Errorf("probe output %q", sb.String())
		}
		return nil
	})

	// Containers filters by every label given.
	got, err := eng.Containers(ctx, dockertest.With(labels, map[string]string{berth.LabelApp: "app_1"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != replicas[1].ID || got[0].IP != replicas[1].IP || !got[0].Running() || got[0].StartedAt.IsZero() {
		t.Fatalf("Containers(app_1) = %+v, want only %s", got, replicas[1].Name)
	}
	all, err := eng.Containers(ctx, dockertest.With(labels, map[string]string{berth.LabelRole: "app"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("Containers(role=app) = %d containers, want 2", len(all))
	}
	// The same name twice is a conflict.
	_, err = eng.Run(ctx, berth.ContainerSpec{Name: replicas[0].Name, Image: img, Labels: labels, Network: net})
	if !berth.IsKind(err, berth.Conflict) {
		t.Errorf("Run with a taken name: %v, want Conflict", err)
	}
}

func TestExitCodeAndHealth(t *testing.T) {
	eng := dockertest.Engine(t)
	labels := managed(dockertest.Cleanup(t, eng))
	img := testImage(t, eng, labels, "HEALTHCHECK --interval=1s --timeout=2s CMD wget -q -O /dev/null http://127.0.0.1:8080/ || exit 1\n")
	ctx := ctxT(t)
	net := dockertest.Name("net")
	if err := eng.EnsureNetwork(ctx, net, labels); err != nil {
		t.Fatal(err)
	}
	web, err := eng.Run(ctx, berth.ContainerSpec{Name: net + "-web", Image: img, Labels: dockertest.With(labels, map[string]string{"role": "web"}), Network: net})
	if err != nil {
		t.Fatal(err)
	}
	if web.Health != "starting" && web.Health != "healthy" {
		t.Errorf("health right after start = %q, want starting", web.Health)
	}
	bad, err := eng.Run(ctx, berth.ContainerSpec{Name: net + "-exit", Image: img, Labels: dockertest.With(labels, map[string]string{"role": "exit"}), Network: net,
		Env: map[string]string{"MODE": "exit", "CODE": "3"}})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "web healthy and exit code 3 reported", func() error {
		cs, err := eng.Containers(ctx, labels)
		if err != nil {
			return err
		}
		if len(cs) != 2 {
			return fmt.Errorf("%d containers", len(cs))
		}
		for _, c := range cs {
			switch c.ID {
			case web.ID:
				if c.Health != "healthy" {
					return fmt.Errorf("web health %q", c.Health)
				}
			case bad.ID:
				if c.ExitCode != 3 {
					return fmt.Errorf("exit container: state %s, exit code %d", c.State, c.ExitCode)
				}
			}
		}
		return nil
	})
}

func TestNamedVolumeSurvivesReplacement(t *testing.T) {
	eng := dockertest.Engine(t)
	labels := managed(dockertest.Cleanup(t, eng))
	img := testImage(t, eng, labels, "")
	ctx := ctxT(t)
	net, vol := dockertest.Name("net"), dockertest.Name("vol")
	if err := eng.EnsureNetwork(ctx, net, labels); err != nil {
		t.Fatal(err)
	}
	for range 2 { // idempotent
		if err := eng.EnsureVolume(ctx, vol, labels); err != nil {
			t.Fatal(err)
		}
	}
	spec := berth.ContainerSpec{Image: img, Labels: labels, Network: net, Volumes: []berth.VolumeMount{{Volume: vol, Path: "/data"}}}
	for i, want := range []string{"boot\n", "boot\nboot\n"} {
		spec.Name = fmt.Sprintf("%s-v%d", net, i)
		c, err := eng.Run(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := getEventually(t, "http://"+c.IP+":8080/data/boots"); got != want {
			t.Fatalf("generation %d: /data/boots = %q, want %q", i, got, want)
		}
		if err := eng.Remove(ctx, c.ID, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	vols, err := eng.Volumes(ctx, labels)
	if err != nil || !slices.Contains(vols, vol) {
		t.Fatalf("named volume gone after Remove: %v %v", vols, err)
	}
}

func TestRemove(t *testing.T) {
	eng := dockertest.Engine(t)
	labels := managed(dockertest.Cleanup(t, eng))
	img := testImage(t, eng, labels, "VOLUME /anon\n")
	ctx := ctxT(t)
	net, vol := dockertest.Name("net"), dockertest.Name("vol")
	if err := eng.EnsureNetwork(ctx, net, labels); err != nil {
		t.Fatal(err)
	}
	if err := eng.EnsureVolume(ctx, vol, labels); err != nil {
		t.Fatal(err)
	}
	waitLine := func(id, line string) {
		eventually(t, "container prints "+line, func() error {
			var sb strings.Builder
			if err := eng.Logs(ctx, id, -1, false, &sb); err != nil {
				return err
			}
			if !strings.Contains(sb.String(), line+"\n") {
				return fmt.Errorf("logs so far: %q", sb.String())
			}
			return nil
		})
	}

	t.Run("SIGTERM first, anonymous volume removed, named kept", func(t *testing.T) {
		c, err := eng.Run(ctx, berth.ContainerSpec{Name: net + "-term", Image: img, Labels: labels, Network: net,
			Env: map[string]string{"MODE": "term"}, Volumes: []berth.VolumeMount{{Volume: vol, Path: "/data"}}})
		if err != nil {
			t.Fatal(err)
		}
		r, err := eng.Client().ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var anon string
		for _, m := range r.Container.Mounts {
			if m.Destination == "/anon" {
				anon = m.Name
			}
		}
		if anon == "" {
			t.Fatalf("no anonymous volume at /anon: %+v", r.Container.Mounts)
		}
		waitLine(c.ID, "ready")
		if err := eng.Remove(ctx, c.ID, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		if _, err := eng.Container(ctx, c.ID); !berth.IsKind(err, berth.NotFound) {
			t.Fatalf("container still there after Remove: %v", err)
		}
		if _, err := eng.Client().VolumeInspect(ctx, anon, client.VolumeInspectOptions{}); err == nil {
			t.Errorf("anonymous volume %s survived Remove", anon)
		}
		// The handler ran: it wrote to the named volume, which survives.
		reader, err := eng.Run(ctx, berth.ContainerSpec{Name: net + "-reader", Image: img, Labels: labels, Network: net,
			Volumes: []berth.VolumeMount{{Volume: vol, Path: "/data"}}})
		if err != nil {
			t.Fatal(err)
		}
		if got := getEventually(t, "http://"+reader.IP+":8080/data/term"); got != "term\n" {
			t.Errorf("/data/term = %q: the container did not get SIGTERM before being killed", got)
		}
	})
	t.Run("SIGKILL after grace", func(t *testing.T) {
		c, err := eng.Run(ctx, berth.ContainerSpec{Name: net + "-ignore", Image: img, Labels: labels, Network: net,
			Env: map[string]string{"MODE": "ignore"}})
		if err != nil {
			t.Fatal(err)
		}
		waitLine(c.ID, "ready")
		if err := eng.Remove(ctx, c.ID, time.Second); err != nil {
			t.Fatal(err)
		}
		if _, err := eng.Container(ctx, c.ID); !berth.IsKind(err, berth.NotFound) {
			t.Fatalf("container still there after Remove: %v", err)
		}
		if err := eng.Remove(ctx, c.ID, time.Second); err != nil {
			t.Fatalf("Remove of a removed container: %v, want nil", err)
		}
	})
}

// lineRecorder records each Write and hands it to a channel.
type lineRecorder struct {
	mu     sync.Mutex
	writes []string
	ch     chan string
}

func (r *lineRecorder) Write(p []byte) (int, error) {
	s := string(p)
	r.mu.Lock()
	r.writes = append(r.writes, s)
	r.mu.Unlock()
	if r.ch != nil {
		r.ch <- s
	}
	return len(p), nil
}

func TestLogs(t *testing.T) {
	eng := dockertest.Engine(t)
	labels := managed(dockertest.Cleanup(t, eng))
	img := testImage(t, eng, labels, "")
	ctx := ctxT(t)
	net := dockertest.Name("net")
	if err := eng.EnsureNetwork(ctx, net, labels); err != nil {
		t.Fatal(err)
	}
	lines, err := eng.Run(ctx, berth.ContainerSpec{Name: net + "-lines", Image: img, Labels: labels, Network: net,
		Env: map[string]string{"MODE": "lines", "COUNT": "5"}})
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	eventually(t, "all output logged", func() error {
		rec := &lineRecorder{}
		if err := eng.Logs(ctx, lines.ID, -1, false, rec); err != nil {
			return err
		}
		all = rec.writes
		if !slices.Contains(all, "out 5\n") {
			return fmt.Errorf("logs so far: %q", all)
		}
		return nil
	})
	var stdout []string
	for _, l := range all {
		if l != "err line\n" {
			stdout = append(stdout, l)
		}
	}
	if want := []string{"out 1\n", "out 2\n", "out 3\n", "out 4\n", "out 5\n"}; !slices.Equal(stdout, want) || len(all) != 6 {
		t.Errorf("Logs(all) writes = %q, want stdout %q and the stderr line", all, want)
	}

	tail := &lineRecorder{}
	if err := eng.Logs(ctx, lines.ID, 2, false, tail); err != nil {
		t.Fatal(err)
	}
	if want := []string{"out 4\n", "out 5\n"}; !slices.Equal(tail.writes, want) {
		t.Errorf("Logs(tail 2) = %q, want %q", tail.writes, want)
	}

	ticker, err := eng.Run(ctx, berth.ContainerSpec{Name: net + "-tick", Image: img, Labels: labels, Network: net,
		Env: map[string]string{"MODE": "tick"}})
	if err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rec := &lineRecorder{ch: make(chan string)}
	done := make(chan error, 1)
	go func() {
		done <- eng.Logs(fctx, ticker.ID, 1, true, rec)
		close(rec.ch)
	}()
	var nums []int
	for len(nums) < 10 {
		var l string
		select {
		case l = <-rec.ch:
		case err := <-done:
			t.Fatalf("follow ended early: %v", err)
		}
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(l, "tick "), "\n"))
		if err != nil || !strings.HasSuffix(l, "\n") || strings.Count(l, "\n") != 1 {
			t.Fatalf("follow wrote %q, want one whole line", l)
		}
		nums = append(nums, n)
	}
	for i := 1; i < len(nums); i++ {
		if nums[i] != nums[i-1]+1 {
			t.Fatalf("follow lines out of order or missing: %v", nums)
		}
	}
	cancel()
	go func() {
		for range rec.ch { // drain until Logs returns
		}
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Logs after cancel = %v, want nil", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Logs kept following after its context ended")
	}

	if err := eng.Logs(ctx, "nosuchcontainer", -1, false, io.Discard); !berth.IsKind(err, berth.NotFound) {
		t.Errorf("Logs of a missing container = %v, want NotFound", err)
	}
}

func TestEnsureNetworkConcurrent(t *testing.T) {
	eng := dockertest.Engine(t)
	labels := managed(dockertest.Cleanup(t, eng))
	ctx := ctxT(t)
	// Separate Engines, as separate processes would be, so that only the
	// Engine API decides. The race is rare: several rounds of ten racers.
	engines := make([]*docker.Engine, 10)
	for i := range engines {
		engines[i] = dockertest.Engine(t)
	}
	for round := range 4 {
		name := dockertest.Name(fmt.Sprintf("net%d", round))
		var wg sync.WaitGroup
		errs := make([]error, len(engines))
		for i, e := range engines {
			wg.Go(func() { errs[i] = e.EnsureNetwork(ctx, name, labels) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := eng.EnsureNetwork(ctx, name, labels); err != nil {
			t.Fatal(err)
		}
		list, err := eng.Client().NetworkList(ctx, client.NetworkListOptions{Filters: client.Filters{}.Add("name", name)})
		if err != nil {
			t.Fatal(err)
		}
		var same []network.Summary
		for _, n := range list.Items {
			if n.Name == name {
				same = append(same, n)
			}
		}
		if len(same) != 1 || same[0].Driver != "bridge" || same[0].Labels[dockertest.LabelTest] != "1" {
			t.Fatalf("round %d: %d networks named %s, want one labelled bridge: %+v", round, len(same), name, same)
		}
		if err := eng.RemoveNetwork(ctx, name); err != nil {
			t.Fatal(err)
		}
		if err := eng.RemoveNetwork(ctx, name); err != nil {
			t.Fatalf("RemoveNetwork of a missing network: %v", err)
		}
	}
}

// TestConnectNetwork is an app on a private network: reachable by name from
// the containers connected to it (the proxy), not from the others on the
// shared network.
func TestConnectNetwork(t *testing.T) {
	eng := dockertest.Engine(t)
	labels := managed(dockertest.Cleanup(t, eng))
	img := testImage(t, eng, labels, "")
	ctx := ctxT(t)
	shared, private := dockertest.Name("shared"), dockertest.Name("private")
	for _, n := range []string{shared, private} {
		if err := eng.EnsureNetwork(ctx, n, labels); err != nil {
			t.Fatal(err)
		}
	}
	app, err := eng.Run(ctx, berth.ContainerSpec{Name: private + "-app", Image: img, Labels: labels, Network: private,
		Env: map[string]string{"GREETING": "private"}})
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + app.Name + ":8080/"
	proxyLabels := dockertest.With(labels, map[string]string{berth.LabelRole: "proxy"})
	fetcher := func(name string, l map[string]string) berth.Container {
		c, err := eng.Run(ctx, berth.ContainerSpec{Name: name, Image: img, Labels: l, Network: shared,
			Env: map[string]string{"MODE": "fetch", "URL": url}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	px := fetcher(shared+"-proxy", proxyLabels)
	other := fetcher(shared+"-other", labels)
	logs := func(c berth.Container) string {
		var sb strings.Builder
		if err := eng.Logs(ctx, c.ID, -1, false, &sb); err != nil {
			t.Fatal(err)
		}
		return sb.String()
	}
	for range 2 { // a second Connect changes nothing
		if err := eng.Connect(ctx, private, proxyLabels); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the connected container reaches the private app", func() error {
		if out := logs(px); !strings.Contains(out, "greeting=private") {
			return fmt.Errorf("proxy output ends %q", out[max(0, len(out)-120):])
		}
		return nil
	})
	time.Sleep(time.Second) // the other fetcher tries five times a second
	if out := logs(other); strings.Contains(out, "greeting") {
		t.Fatalf("a container only on the shared network reached the private app: %q", out)
	}

	if err := eng.Connect(ctx, private, nil); !berth.IsKind(err, berth.Invalid) {
		t.Errorf("Connect without labels = %v, want Invalid", err)
	}
	if err := eng.Connect(ctx, dockertest.Name("missing"), proxyLabels); !berth.IsKind(err, berth.NotFound) {
		t.Errorf("Connect to a missing network = %v, want NotFound", err)
	}
	if err := eng.Remove(ctx, app.ID, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := eng.RemoveNetwork(ctx, private); !berth.IsKind(err, berth.Conflict) {
		t.Fatalf("RemoveNetwork with the proxy attached = %v, want Conflict", err)
	}
	for range 2 { // a second Disconnect changes nothing
		if err := eng.Disconnect(ctx, private, proxyLabels); err != nil {
			t.Fatal(err)
		}
	}
	if err := eng.RemoveNetwork(ctx, private); err != nil {
		t.Fatal(err)
	}
	if err := eng.Disconnect(ctx, private, proxyLabels); err != nil {
		t.Errorf("Disconnect from a missing network = %v", err)
	}
}

func TestRunService(t *testing.T) {
	eng := dockertest.Engine(t)
	labels := managed(dockertest.Cleanup(t, eng))
	img := testImage(t, eng, labels, "")
	ctx := ctxT(t)
	net := dockertest.Name("net")
	if err := eng.EnsureNetwork(ctx, net, labels); err != nil {
		t.Fatal(err)
	}
	host := t.TempDir()
	write(t, filepath.Join(host, "hello.txt"), "from the host\n")
	c, err := eng.RunService(ctx, docker.ServiceSpec{
		Name: net + "-svc", Image: img, Labels: labels, Network: net,
		Cmd:   []string{"sh", "/run.sh", "serve"},
		Env:   map[string]string{"GREETING": "svc"},
		Ports: []docker.Port{{HostIP: "127.0.0.1", ContainerPort: 8080}},
		Binds: []docker.Bind{{Source: host, Target: "/data", ReadOnly: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := eng.Client().ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Container.HostConfig.RestartPolicy.Name != "always" {
		t.Errorf("restart policy %q, want always", r.Container.HostConfig.RestartPolicy.Name)
	}
	var port string
	eventually(t, "published port", func() error {
		r, err := eng.Client().ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
		if err != nil {
			return err
		}
		for p, bs := range r.Container.NetworkSettings.Ports {
			if p.Num() == 8080 && len(bs) > 0 {
				port = bs[0].HostPort
				return nil
			}
		}
		return fmt.Errorf("ports %v", r.Container.NetworkSettings.Ports)
	})
	base := "http://127.0.0.1:" + port
	if got := getEventually(t, base+"/data/hello.txt"); got != "from the host\n" {
		t.Errorf("bind-mounted file = %q", got)
	}
	if got := getEventually(t, base+"/"); got != "greeting=svc\n" {
		t.Errorf("index = %q", got)
	}
	if got := getEventually(t, "http://"+c.IP+":8080/"); got != "greeting=svc\n" {
		t.Errorf("by network IP: %q", got)
	}
}

func TestMissingImage(t *testing.T) {
	eng := dockertest.Engine(t)
	labels := managed(dockertest.Cleanup(t, eng))
	ctx := ctxT(t)
	const ref = "berth-test/never-built:1"
	ok, err := eng.ImageExists(ctx, ref)
	if err != nil || ok {
		t.Fatalf("ImageExists(%s) = %v, %v", ref, ok, err)
	}
	_, err = eng.Run(ctx, berth.ContainerSpec{Name: dockertest.Name("c"), Image: ref, Labels: labels})
	if !berth.IsKind(err, berth.NotFound) || !strings.Contains(berth.ErrorMessage(err), ref) {
		t.Fatalf("Run of a missing image = %v, want NotFound naming the image", err)
	}
	if cs, err := eng.Containers(ctx, labels); err != nil || len(cs) != 0 {
		t.Fatalf("containers left: %v %v", cs, err)
	}
	busybox := dockertest.Busybox(t, eng)
	if ok, err := eng.ImageExists(ctx, busybox); err != nil || !ok {
		t.Fatalf("ImageExists(%s) = %v, %v", busybox, ok, err)
	}
}

func TestHostileInputs(t *testing.T) {
	eng := dockertest.Engine(t)
	labels := managed(dockertest.Cleanup(t, eng))
	ctx := ctxT(t)
	img := dockertest.Busybox(t, eng)
	ok := berth.ContainerSpec{Name: dockertest.Name("c"), Image: img, Labels: labels}
	mod := func(f func(*berth.ContainerSpec)) berth.ContainerSpec {
		s := ok
		s.Labels = dockertest.With(labels, nil)
		f(&s)
		return s
	}
	runs := []struct {
		name string
		spec berth.ContainerSpec
	}{
		{"image with shell", mod(func(s *berth.ContainerSpec) { s.Image = "busybox; rm -rf /" })},
		{"image with substitution", mod(func(s *berth.ContainerSpec) { s.Image = "$(touch /tmp/pwned)" })},
		{"image as option", mod(func(s *berth.ContainerSpec) { s.Image = "--privileged" })},
		{"name with path", mod(func(s *berth.ContainerSpec) { s.Name = "../../images/x" })},
		{"name with space", mod(func(s *berth.ContainerSpec) { s.Name = "a b" })},
		{"network with shell", mod(func(s *berth.ContainerSpec) { s.Network = "net;reboot" })},
		{"volume with shell", mod(func(s *berth.ContainerSpec) {
			s.Volumes = []berth.VolumeMount{{Volume: "v$(id)", Path: "/data"}}
		})},
		{"volume path with mode", mod(func(s *berth.ContainerSpec) {
			s.Volumes = []berth.VolumeMount{{Volume: "vol", Path: "/data:rw"}}
		})},
		{"volume path relative", mod(func(s *berth.ContainerSpec) {
			s.Volumes = []berth.VolumeMount{{Volume: "vol", Path: "../etc"}}
		})},
		{"env name with =", mod(func(s *berth.ContainerSpec) { s.Env = map[string]string{"A=B": "c"} })},
		{"label key with =", mod(func(s *berth.ContainerSpec) { s.Labels["a=b"] = "c" })},
		{"not managed", mod(func(s *berth.ContainerSpec) { delete(s.Labels, berth.LabelManaged) })},
	}
	for _, tc := range runs {
		t.Run(tc.name, func(t *testing.T) {
			_, err := eng.Run(ctx, tc.spec)
			if !berth.IsKind(err, berth.Invalid) {
				t.Fatalf("Run = %v, want Invalid", err)
			}
		})
	}
	calls := []struct {
		name string
		call func() error
	}{
		{"EnsureVolume", func() error { return eng.EnsureVolume(ctx, "v`reboot`", labels) }},
		{"EnsureNetwork", func() error { return eng.EnsureNetwork(ctx, "n|sh", labels) }},
		{"Remove traversal", func() error { return eng.Remove(ctx, "../images/"+img, time.Second) }},
		{"Logs traversal", func() error { return eng.Logs(ctx, "x/../../info", 1, false, io.Discard) }},
		{"ImageExists", func() error { _, err := eng.ImageExists(ctx, "img&&id"); return err }},
		{"RemoveImage", func() error { return eng.RemoveImage(ctx, "../containers/x") }},
		{"Containers label", func() error { _, err := eng.Containers(ctx, map[string]string{"": "x"}); return err }},
		{"RunService bind", func() error {
			_, err := eng.RunService(ctx, docker.ServiceSpec{Name: "svc-x", Image: img, Binds: []docker.Bind{{Source: "relative/dir", Target: "/x"}}})
			return err
		}},
		{"RunService port", func() error {
			_, err := eng.RunService(ctx, docker.ServiceSpec{Name: "svc-x", Image: img, Ports: []docker.Port{{HostIP: "0.0.0.0; id", ContainerPort: 80}}})
			return err
		}},
	}
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !berth.IsKind(err, berth.Invalid) {
				t.Fatalf("%s = %v, want Invalid", tc.name, err)
			}
		})
	}
	if cs, err := eng.Containers(ctx, labels); err != nil || len(cs) != 0 {
		t.Fatalf("hostile input created containers: %v %v", cs, err)
	}
	if ok, _ := eng.ImageExists(ctx, img); !ok {
		t.Fatal("busybox image gone after hostile RemoveImage")
	}
}

func TestImages(t *testing.T) {
	eng := dockertest.Engine(t)
	labels := managed(dockertest.Cleanup(t, eng))
	ctx := ctxT(t)
	img := testImage(t, eng, labels, "")
	imgs, err := eng.Images(ctx, labels)
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || !slices.Contains(imgs[0].Tags, img) || imgs[0].Labels[dockertest.LabelRun] != labels[dockertest.LabelRun] || imgs[0].Created.IsZero() {
		t.Fatalf("Images = %+v, want the one test image %s", imgs, img)
	}
	if err := eng.RemoveImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	if ok, err := eng.ImageExists(ctx, img); err != nil || ok {
		t.Fatalf("image still there after RemoveImage: %v %v", ok, err)
	}
	if err := eng.RemoveImage(ctx, img); err != nil {
		t.Fatalf("RemoveImage of a missing image: %v", err)
	}
}
