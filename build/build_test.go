package build_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/build"
	"github.com/berthhq/berth/docker"
	"github.com/berthhq/berth/docker/dockertest"
	"github.com/berthhq/berth/engine"
)

var _ engine.Builder = (*build.Builder)(nil)

func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

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

// runLogs runs image on a fresh network and returns its output once it
// contains marker.
func runLogs(t *testing.T, eng *docker.Engine, labels map[string]string, image, marker string) string {
	t.Helper()
	ctx := ctxT(t)
	name := dockertest.Name("run")
	if err := eng.EnsureNetwork(ctx, name, labels); err != nil {
		t.Fatal(err)
	}
	c, err := eng.Run(ctx, berth.ContainerSpec{Name: name, Image: image, Network: name,
		Labels: dockertest.With(labels, map[string]string{berth.LabelManaged: "true"})})
	if err != nil {
		t.Fatal(err)
	}
	var out string
	eventually(t, "container output", func() error {
		var sb strings.Builder
		if err := eng.Logs(ctx, c.ID, -1, false, &sb); err != nil {
			return err
		}
		out = sb.String()
		if !strings.Contains(out, marker) {
			return fmt.Errorf("output so far %q", out)
		}
		return nil
	})
	return out
}

func TestBuild(t *testing.T) {
	eng := dockertest.Engine(t)
	labels := dockertest.Cleanup(t, eng)
	base := dockertest.Busybox(t, eng)
	b := build.New(eng, nil, build.Options{})
	ctx := ctxT(t)

	dir := t.TempDir()
	write(t, dir, map[string]string{
		"deploy/app.Dockerfile": `FROM ` + base + ` AS base
ARG GREETING=default
RUN echo "greeting=$GREETING" > /greeting
RUN (cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes) | sed 's/^/memory limit: /'
COPY . /ctx
CMD ["sh", "-c", "cat /greeting /stage; cd /ctx && find . | sort; echo end; exec sleep 3600"]

FROM base AS wanted
RUN echo wanted > /stage

FROM base AS last
RUN echo last > /stage
`,
		".dockerignore":           "*.env\nnode_modules\n**/*.log\n!keep.log\n",
		"main.go":                 "package main\n",
		"secret.env":              "TOKEN=hunter2\n",
		"node_modules/x/index.js": "x\n",
		"logs/a/b.log":            "log\n",
		"keep.log":                "kept\n",
	})
	var out strings.Builder
	tag := "berth-test/build:" + labels[dockertest.LabelRun]
	id, err := b.Build(ctx, berth.BuildSpec{
		ContextDir:  dir,
		Dockerfile:  "deploy/app.Dockerfile",
		Args:        map[string]string{"GREETING": `hello "world" $(id)`},
		Target:      "wanted",
		Tag:         tag,
		Labels:      dockertest.With(labels, map[string]string{berth.LabelApp: "app_x"}),
		MemoryBytes: 256 << 20,
		NanoCPUs:    1_000_000_000,
	}, &out)
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, out.String())
	}
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("image ID %q", id)
	}
	if !strings.Contains(out.String(), "Step 1/") || !strings.Contains(out.String(), "memory limit: 268435456\n") {
		t.Errorf("build output lacks the steps or the memory limit:\n%s", out.String())
	}
	img, err := eng.Client().ImageInspect(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	if img.ID != id || img.Config.Labels[berth.LabelApp] != "app_x" || img.Config.Labels[dockertest.LabelTest] != "1" {
		t.Fatalf("tag %s is %s with labels %v; want %s with the build's labels", tag, img.ID, img.Config.Labels, id)
	}
	got := runLogs(t, eng, labels, tag, "end\n")
	want := `greeting=hello "world" $(id)
wanted
.
./.dockerignore
./deploy
./deploy/app.Dockerfile
./keep.log
./logs
./logs/a
./main.go
end
`
	if got != want {
		t.Errorf("image content:\n%s\nwant (build arg as data, target stage, .dockerignore honoured; like Docker, it is itself copied unless it lists itself):\n%s", got, want)
	}
}

// stepContainers returns the containers whose command holds token.
func stepContainers(t *testing.T, eng *docker.Engine, token string) []string {
	t.Helper()
	list, err := eng.Client().ContainerList(t.Context(), client.ContainerListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range list.Items {
		if strings.Contains(c.Command, token) {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

func TestBuildFailure(t *testing.T) {
	eng := dockertest.Engine(t)
	labels := dockertest.Cleanup(t, eng)
	base := dockertest.Busybox(t, eng)
	b := build.New(eng, nil, build.Options{})
	ctx := ctxT(t)
	token := "fail" + labels[dockertest.LabelRun]
	dir := t.TempDir()
	write(t, dir, map[string]string{"Dockerfile": "FROM " + base + "\nRUN echo 'about to fail' >&2 && echo " + token + " && exit 3\n"})
	var out strings.Builder
	_, err := b.Build(ctx, berth.BuildSpec{ContextDir: dir, Tag: "berth-test/fail:" + labels[dockertest.LabelRun], Labels: labels}, &out)
	if !berth.IsKind(err, berth.Invalid) || !strings.Contains(berth.ErrorMessage(err), "build failed: ") ||
		!strings.Contains(berth.ErrorMessage(err), "returned a non-zero code: 3") {
		t.Fatalf("Build = %v, want Invalid \"build failed: … returned a non-zero code: 3\"", err)
	}
	for _, line := range []string{"about to fail\n", token + "\n", berth.ErrorMessage(err)[len("build failed: "):] + "\n"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, out.String())
		}
	}
	if ids := stepContainers(t, eng, token); len(ids) != 0 {
		t.Errorf("failed step left containers %v", ids)
	}
}

// syncWriter hands each line to a channel as well.
type syncWriter struct {
	mu sync.Mutex
	sb strings.Builder
	ch chan string
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.sb.Write(p)
	w.mu.Unlock()
	select {
	case w.ch <- string(p):
	default:
	}
	return len(p), nil
}

func TestBuildCancel(t *testing.T) {
	eng := dockertest.Engine(t)
	labels := dockertest.Cleanup(t, eng)
	base := dockertest.Busybox(t, eng)
	b := build.New(eng, nil, build.Options{})
	token := "cancel" + labels[dockertest.LabelRun]
	dir := t.TempDir()
	write(t, dir, map[string]string{"Dockerfile": "FROM " + base + "\nRUN echo " + token + " && sleep 600\n"})

	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	w := &syncWriter{ch: make(chan string, 100)}
	done := make(chan error, 1)
	go func() {
		_, err := b.Build(ctx, berth.BuildSpec{ContextDir: dir, Tag: "berth-test/cancel:" + labels[dockertest.LabelRun], Labels: labels}, w)
		done <- err
	}()
	// Wait until the step runs: its container exists.
	for running := false; !running; {
		select {
		case line := <-w.ch:
			running = line == token+"\n" // the step's output, not its title
		case err := <-done:
			t.Fatalf("build ended before it was cancelled: %v", err)
		case <-time.After(2 * time.Minute):
			t.Fatal("the RUN step never started")
		}
	}
	if ids := stepContainers(t, eng, token); len(ids) != 1 {
		t.Fatalf("step containers while running: %v", ids)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Build = %v, want context.Canceled", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("Build did not return after cancellation")
	}
	eventually(t, "step container removed after cancellation", func() error {
		if ids := stepContainers(t, eng, token); len(ids) != 0 {
			return fmt.Errorf("containers left: %v", ids)
		}
		return nil
	})
}

const helloServer = `package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from go, args %q\n", os.Args[1:])
	})
	if err := http.ListenAndServe(":8080", nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
`

func TestBinaryImage(t *testing.T) {
	eng := dockertest.Engine(t)
	labels := dockertest.Cleanup(t, eng)
	b := build.New(eng, nil, build.Options{})
	ctx := ctxT(t)
	tag := "berth-test/hello:" + labels[dockertest.LabelRun]
	id := dockertest.GoImage(t, b, helloServer, tag, labels)
	img, err := eng.Client().ImageInspect(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	if img.ID != id || !slices.Equal(img.Config.Entrypoint, []string{"/berth"}) || img.Config.Labels[dockertest.LabelRun] != labels[dockertest.LabelRun] {
		t.Fatalf("image %s: entrypoint %v labels %v", img.ID, img.Config.Entrypoint, img.Config.Labels)
	}
	name := dockertest.Name("hello")
	if err := eng.EnsureNetwork(ctx, name, labels); err != nil {
		t.Fatal(err)
	}
	c, err := eng.RunService(ctx, docker.ServiceSpec{Name: name, Image: tag, Labels: labels, Network: name, Cmd: []string{"proxy", "--flag"}})
	if err != nil {
		t.Fatal(err)
	}
	var body string
	eventually(t, "GET the Go server", func() error {
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + c.IP + ":8080/")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		body = string(b)
		return err
	})
	if want := "hello from go, args [\"proxy\" \"--flag\"]\n"; body != want {
		t.Fatalf("body %q, want %q", body, want)
	}
}

func TestBuildRejects(t *testing.T) {
	eng, err := docker.New("unix://"+filepath.Join(t.TempDir(), "unused.sock"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	b := build.New(eng, nil, build.Options{})
	dir := t.TempDir()
	outside := t.TempDir()
	write(t, dir, map[string]string{"Dockerfile": "FROM scratch\n"})
	write(t, outside, map[string]string{"Dockerfile": "FROM scratch\n"})
	if err := os.Symlink(filepath.Join(outside, "Dockerfile"), filepath.Join(dir, "escape.Dockerfile")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "linked")); err != nil {
		t.Fatal(err)
	}
	ok := berth.BuildSpec{ContextDir: dir, Tag: "berth-test/x:1"}
	mod := func(f func(*berth.BuildSpec)) berth.BuildSpec { s := ok; f(&s); return s }
	tests := []struct {
		name string
		spec berth.BuildSpec
	}{
		{"dockerfile above the context", mod(func(s *berth.BuildSpec) { s.Dockerfile = "../Dockerfile" })},
		{"absolute dockerfile", mod(func(s *berth.BuildSpec) { s.Dockerfile = filepath.Join(outside, "Dockerfile") })},
		{"dockerfile symlink out", mod(func(s *berth.BuildSpec) { s.Dockerfile = "escape.Dockerfile" })},
		{"dockerfile through linked dir", mod(func(s *berth.BuildSpec) { s.Dockerfile = "linked/Dockerfile" })},
		{"missing dockerfile", mod(func(s *berth.BuildSpec) { s.Dockerfile = "nope" })},
		{"dockerfile as option", mod(func(s *berth.BuildSpec) { s.Dockerfile = "-f" })},
		{"missing context", mod(func(s *berth.BuildSpec) { s.ContextDir = filepath.Join(dir, "missing") })},
		{"tag with shell", mod(func(s *berth.BuildSpec) { s.Tag = "app:1;reboot" })},
		{"target with shell", mod(func(s *berth.BuildSpec) { s.Target = "x$(id)" })},
		{"build arg name", mod(func(s *berth.BuildSpec) { s.Args = map[string]string{"A B": "x"} })},
		{"tiny memory", mod(func(s *berth.BuildSpec) { s.MemoryBytes = 1024 })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.Build(t.Context(), tc.spec, io.Discard)
			if !berth.IsKind(err, berth.Invalid) {
				t.Fatalf("Build = %v, want Invalid", err)
			}
		})
	}
	if _, err := b.BinaryImage(t.Context(), filepath.Join(dir, "missing-binary"), "berth-test/x:1", nil); !berth.IsKind(err, berth.Invalid) {
		t.Fatalf("BinaryImage of a missing file = %v, want Invalid", err)
	}
}

// Without a target stage, every label lands in one LABEL step (the classic
// builder makes a step of each label of a request), and a rebuild of the
// same source is served from the cache, labels included.
func TestBuildLabelsInOneStep(t *testing.T) {
	eng := dockertest.Engine(t)
	labels := dockertest.Cleanup(t, eng)
	base := dockertest.Busybox(t, eng)
	b := build.New(eng, nil, build.Options{})
	ctx := ctxT(t)
	dir := t.TempDir()
	write(t, dir, map[string]string{"Dockerfile": "FROM " + base + "\nRUN echo built > /built"})
	spec := berth.BuildSpec{ContextDir: dir, Tag: "berth-test/labels:" + labels[dockertest.LabelRun],
		Labels: dockertest.With(labels, map[string]string{berth.LabelApp: "app_x", berth.LabelAppName: `we"ird`, berth.LabelManaged: "true"})}
	var out strings.Builder
	id, err := b.Build(ctx, spec, &out)
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, out.String())
	}
	if n := strings.Count(out.String(), " : LABEL"); n != 1 {
		t.Errorf("%d LABEL steps, want 1:\n%s", n, out.String())
	}
	img, err := eng.Client().ImageInspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range spec.Labels {
		if img.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, img.Config.Labels[k], v)
		}
	}
	out.Reset()
	again, err := b.Build(ctx, spec, &out)
	if err != nil {
		t.Fatal(err)
	}
	if again != id || !strings.Contains(out.String(), "Using cache") {
		t.Errorf("rebuild of the same source: %s (first %s), want the cached image\n%s", again, id, out.String())
	}
}
