package engine_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/engine"
	"github.com/berthhq/berth/engine/enginetest"
	"github.com/berthhq/berth/store"
)

type fixture struct {
	t   *testing.T
	st  *store.Store
	e   *engine.Engine
	f   *enginetest.Fakes
	app *berth.App
}

func newFixture(t *testing.T, mutate func(*berth.App), tune ...func(*engine.Config)) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "berth.db"), bytes.Repeat([]byte{7}, 32), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Now()
	team := &berth.Team{ID: berth.NewID("team"), Name: "main", CreatedAt: now}
	if err := st.CreateTeam(ctx, team); err != nil {
		t.Fatal(err)
	}
	app := &berth.App{ID: berth.NewID("app"), TeamID: team.ID, Name: "hello",
		Source: berth.Source{Git: "https://git.example.com/hello.git"}, Replicas: 2, CreatedAt: now, UpdatedAt: now}
	if mutate != nil {
		mutate(app)
	}
	app.SetDefaults()
	if err := app.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	if err := st.AddDomain(ctx, &berth.Domain{ID: berth.NewID("dom"), TeamID: team.ID, AppID: app.ID, Host: "hello.example.com", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	e, f := enginetest.NewWithFakes(t, st, tune...)
	return &fixture{t: t, st: st, e: e, f: f, app: app}
}

// wait polls deployment id until it leaves the active statuses.
func (x *fixture) wait(id string) *berth.Deployment {
	x.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		d, err := x.st.Deployment(context.Background(), x.app.TeamID, id)
		if err != nil {
			x.t.Fatal(err)
		}
		if !d.Status.Active() {
			// A live deployment's job goes on to retire the old replicas:
			// the test looks once that is done.
			x.waitIdle()
			d, err = x.st.Deployment(context.Background(), x.app.TeamID, id)
			if err != nil {
				x.t.Fatal(err)
			}
			return d
		}
		time.Sleep(10 * time.Millisecond)
	}
	x.t.Fatalf("deployment %s still active after 20s", id)
	return nil
}

func (x *fixture) deploy(req engine.DeployRequest) *berth.Deployment {
	x.t.Helper()
	d, err := x.e.Deploy(context.Background(), x.app, req)
	if err != nil {
		x.t.Fatal(err)
	}
	if d.Status != berth.StatusQueued {
		x.t.Fatalf("new deployment status %s, want queued", d.Status)
	}
	return x.wait(d.ID)
}

func (x *fixture) log(d *berth.Deployment) string {
	lines, err := x.st.Logs(context.Background(), x.app.TeamID, d.ID, 0, 10000)
	if err != nil {
		x.t.Fatal(err)
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.Text + "\n")
	}
	return b.String()
}

func (x *fixture) wantRoute(release string) berth.Route {
	x.t.Helper()
	r, ok := x.f.Router.Route(x.app.ID)
	if !ok {
		x.t.Fatal("no route for the app")
	}
	if len(r.Hosts) != 1 || r.Hosts[0] != "hello.example.com" {
		x.t.Errorf("route hosts %v", r.Hosts)
	}
	cs := x.f.Runtime.Running()
	if len(r.Targets) != x.app.Replicas {
		x.t.Errorf("route targets %v, want %d", r.Targets, x.app.Replicas)
	}
	for _, target := range r.Targets {
		found := false
		for _, c := range cs {
			if c.Name+":8080" == target && c.Labels[berth.LabelRelease] == release {
				found = true
			}
		}
		if !found {
			x.t.Errorf("route target %s is not a running container of release %s", target, release)
		}
	}
	return r
}

func TestDeployGoesLive(t *testing.T) {
	x := newFixture(t, nil)
	ctx := context.Background()
	if err := x.st.SetEnv(ctx, x.app.TeamID, x.app.ID, map[string]string{"GREETING": "hi"}); err != nil {
		t.Fatal(err)
	}
	d := x.deploy(engine.DeployRequest{CreatedBy: "ann"})
	if d.Status != berth.StatusLive {
		t.Fatalf("status %s (%s), want live\n%s", d.Status, d.Error, x.log(d))
	}
	var stages []berth.Status
	for _, s := range d.Stages {
		stages = append(stages, s.Stage)
		if s.EndedAt == nil {
			t.Errorf("stage %s has no end", s.Stage)
		}
	}
	want := []berth.Status{berth.StatusQueued, berth.StatusFetching, berth.StatusBuilding, berth.StatusStarting, berth.StatusVerifying, berth.StatusSwitching}
	if !equal(stages, want) {
		t.Errorf("stages %v, want %v", stages, want)
	}
	if d.Commit == "" || d.ReleaseID == "" || d.FinishedAt == nil || d.CreatedBy != "ann" {
		t.Errorf("deployment lacks commit, release, finish time or author: %+v", d)
	}
	rel, err := x.st.Release(ctx, x.app.TeamID, d.ReleaseID)
	if err != nil {
		t.Fatal(err)
	}
	if rel.Config.Env["GREETING"] != "hi" || rel.Number != 1 || rel.Config.Replicas != 2 {
		t.Errorf("release snapshot %+v", rel)
	}
	x.wantRoute(rel.ID)
	for _, c := range x.f.Runtime.Running() {
		for _, l := range []string{berth.LabelManaged, berth.LabelApp, berth.LabelRelease, berth.LabelDeployment, berth.LabelInstance} {
			if c.Labels[l] == "" {
				t.Errorf("container %s lacks label %s", c.Name, l)
			}
		}
	}
	log := x.log(d)
	for _, s := range []string{"==> fetching https://git.example.com/hello.git at main", "Successfully tagged", "==> live"} {
		if !strings.Contains(log, s) {
			t.Errorf("log lacks %q:\n%s", s, log)
		}
	}
}

func TestRedeploySupersedesAndRetires(t *testing.T) {
	x := newFixture(t, nil)
	first := x.deploy(engine.DeployRequest{})
	second := x.deploy(engine.DeployRequest{Ref: "v2"})
	if second.Status != berth.StatusLive {
		t.Fatalf("second: %s %s", second.Status, second.Error)
	}
	first, _ = x.st.Deployment(context.Background(), x.app.TeamID, first.ID)
	if first.Status != berth.StatusSuperseded {
		t.Errorf("first: %s, want superseded", first.Status)
	}
	// The old replicas are retired after the drain delay that follows the switch.
	deadline := time.Now().Add(10 * time.Second)
	for len(x.f.Runtime.Running()) != 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := len(x.f.Runtime.Running()); n != 2 {
		t.Errorf("%d containers run, want the 2 of the new release", n)
	}
	x.wantRoute(second.ReleaseID)
}

func TestFailedDeployKeepsLiveRelease(t *testing.T) {
	cases := []struct {
		name    string
		break_  func(f *enginetest.Fakes)
		wantErr string
	}{
		{"unhealthy", func(f *enginetest.Fakes) { f.Router.Unhealthy = errors.New("GET / answered 500") }, "health check: GET / answered 500"},
		{"crashing", func(f *enginetest.Fakes) { f.Runtime.Crash = func(string) bool { return true } }, "stopped (exited, exit code 1)"},
		{"build", func(f *enginetest.Fakes) {
			f.Builder.Output = "Step 2/3 : RUN make\nmake: *** no rule\n"
			f.Builder.Err = errors.New("The command '/bin/sh -c make' returned a non-zero code: 2")
		}, "build: The command"},
		{"fetch", func(f *enginetest.Fakes) { f.Source.Err = berth.E("fetch", berth.Invalid, `ref "nope" not found`) }, `ref "nope" not found`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := newFixture(t, nil)
			live := x.deploy(engine.DeployRequest{})
			tc.break_(x.f)
			d := x.deploy(engine.DeployRequest{})
			if d.Status != berth.StatusFailed || !strings.Contains(d.Error, tc.wantErr) {
				t.Fatalf("status %s error %q, want failed with %q", d.Status, d.Error, tc.wantErr)
			}
			if !strings.Contains(x.log(d), "==> deploy failed") {
				t.Errorf("log lacks the failure:\n%s", x.log(d))
			}
			if cur, _ := x.st.Deployment(context.Background(), x.app.TeamID, live.ID); cur.Status != berth.StatusLive {
				t.Errorf("previous deployment is %s, want still live", cur.Status)
			}
			x.wantRoute(live.ReleaseID)
			if n := len(x.f.Runtime.Running()); n != 2 {
				t.Errorf("%d running containers, want the 2 of the live release", n)
			}
		})
	}
}

func TestFailedContainerLogIsInTheReason(t *testing.T) {
	x := newFixture(t, nil)
	x.f.Runtime.Crash = func(string) bool { return true }
	x.f.Runtime.LogText = "panic: cannot open database\n"
	d := x.deploy(engine.DeployRequest{})
	if d.Status != berth.StatusFailed || !strings.Contains(d.Error, "panic: cannot open database") {
		t.Fatalf("status %s, error %q: want the container's last log lines", d.Status, d.Error)
	}
}

func TestRollbackReusesRelease(t *testing.T) {
	x := newFixture(t, nil)
	ctx := context.Background()
	first := x.deploy(engine.DeployRequest{})
	second := x.deploy(engine.DeployRequest{Ref: "v2"})
	builds := len(x.f.Builder.Builds)
	rb, err := x.e.Rollback(ctx, x.app, "", "bob")
	if err != nil {
		t.Fatal(err)
	}
	rb = x.wait(rb.ID)
	if rb.Status != berth.StatusLive || rb.Kind != berth.KindRollback || rb.ReleaseID != first.ReleaseID {
		t.Fatalf("rollback: %+v", rb)
	}
	if len(x.f.Builder.Builds) != builds {
		t.Error("a rollback rebuilt the image")
	}
	second, _ = x.st.Deployment(ctx, x.app.TeamID, second.ID)
	if second.Status != berth.StatusRolledBack {
		t.Errorf("rolled-back deployment is %s", second.Status)
	}
	x.wantRoute(first.ReleaseID)

	// To a named release, forwards again.
	fwd, err := x.e.Rollback(ctx, x.app, second.ReleaseID, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if fwd = x.wait(fwd.ID); fwd.Status != berth.StatusLive {
		t.Fatalf("rollback to a named release: %s %s", fwd.Status, fwd.Error)
	}
	x.wantRoute(second.ReleaseID)

	if _, err := x.e.Rollback(ctx, x.app, "rel_nosuchreleaseaaaa", "bob"); !berth.IsKind(err, berth.NotFound) {
		t.Errorf("rollback to a missing release: %v, want NotFound", err)
	}
}

func TestRollbackWithoutHistory(t *testing.T) {
	x := newFixture(t, nil)
	if _, err := x.e.Rollback(context.Background(), x.app, "", "bob"); !berth.IsKind(err, berth.Conflict) {
		t.Errorf("rollback with nothing live: %v, want Conflict", err)
	}
	x.deploy(engine.DeployRequest{})
	if _, err := x.e.Rollback(context.Background(), x.app, "", "bob"); !berth.IsKind(err, berth.Conflict) {
		t.Errorf("rollback with one release: %v, want Conflict", err)
	}
}

func TestCancel(t *testing.T) {
	x := newFixture(t, nil)
	ctx := context.Background()
	block := make(chan struct{})
	x.f.Source.Block = block
	running, err := x.e.Deploy(ctx, x.app, engine.DeployRequest{})
	if err != nil {
		t.Fatal(err)
	}
	queued, err := x.e.Deploy(ctx, x.app, engine.DeployRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// The second waits behind the first (one deploy per app at a time).
	waitStatus(t, x, running.ID, berth.StatusFetching)
	if d, err := x.e.Cancel(ctx, x.app, queued.ID); err != nil || d.Status != berth.StatusCancelled {
		t.Fatalf("cancel queued: %v %+v", err, d)
	}
	if _, err := x.e.Cancel(ctx, x.app, ""); err != nil {
		t.Fatalf("cancel the active one: %v", err)
	}
	d := x.wait(running.ID)
	if d.Status != berth.StatusCancelled {
		t.Fatalf("running deployment ended %s (%s), want cancelled", d.Status, d.Error)
	}
	if n := len(x.f.Runtime.Running()); n != 0 {
		t.Errorf("%d containers left", n)
	}
	if _, err := x.e.Cancel(ctx, x.app, d.ID); !berth.IsKind(err, berth.Conflict) {
		t.Errorf("cancel a finished deployment: %v, want Conflict", err)
	}
	close(block)
}

func waitStatus(t *testing.T, x *fixture, id string, want berth.Status) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		d, _ := x.st.Deployment(context.Background(), x.app.TeamID, id)
		if d != nil && d.Status == want {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("deployment never reached %s", want)
}

func TestImageAppSkipsBuild(t *testing.T) {
	x := newFixture(t, func(a *berth.App) { a.Source = berth.Source{Image: "registry.example.com/hello:1.0"} })
	d := x.deploy(engine.DeployRequest{})
	if d.Status != berth.StatusLive {
		t.Fatalf("%s %s", d.Status, d.Error)
	}
	if len(x.f.Builder.Builds) != 0 || len(x.f.Source.Fetches) != 0 {
		t.Error("an image app was fetched or built")
	}
	rel, _ := x.st.Release(context.Background(), x.app.TeamID, d.ReleaseID)
	if rel.Image != "registry.example.com/hello:1.0" {
		t.Errorf("release image %q", rel.Image)
	}
}

func TestUpload(t *testing.T) {
	x := newFixture(t, func(a *berth.App) { a.Source = berth.Source{Kind: berth.SourceUpload} })
	ctx := context.Background()
	if _, err := x.e.Deploy(ctx, x.app, engine.DeployRequest{}); !berth.IsKind(err, berth.Invalid) {
		t.Errorf("upload app without an upload: %v, want Invalid", err)
	}
	good := tarOf(t, map[string]string{"Dockerfile": "FROM scratch\n", "sub/file.txt": "x"})
	d := x.deploy(engine.DeployRequest{Upload: bytes.NewReader(good)})
	if d.Status != berth.StatusLive {
		t.Fatalf("%s %s\n%s", d.Status, d.Error, x.log(d))
	}
	evil := tarOf(t, map[string]string{"../../escape": "x"})
	d = x.deploy(engine.DeployRequest{Upload: bytes.NewReader(evil)})
	if d.Status != berth.StatusFailed || !strings.Contains(d.Error, "outside its root") {
		t.Errorf("traversal upload: %s %q", d.Status, d.Error)
	}
}

// TestPush deploys a push app: the caller hands over the archive of the
// pushed commit, which the deployment and its release record.
func TestPush(t *testing.T) {
	x := newFixture(t, func(a *berth.App) { a.Source = berth.Source{Kind: berth.SourcePush, Ref: "prod"} })
	ctx := context.Background()
	commit := strings.Repeat("c0ffee", 6) + "0123"
	for _, req := range []engine.DeployRequest{
		{},
		{Commit: commit},
		{Upload: strings.NewReader("x")},
		{Upload: strings.NewReader("x"), Commit: "HEAD"},
		{Upload: strings.NewReader("x"), Commit: commit, Ref: "--upload-pack=x"},
		{Upload: strings.NewReader("x"), Commit: commit, Image: "nginx"},
	} {
		if _, err := x.e.Deploy(ctx, x.app, req); !berth.IsKind(err, berth.Invalid) {
			t.Errorf("push deploy %+v: %v, want Invalid", req, err)
		}
	}
	good := tarOf(t, map[string]string{"Dockerfile": "FROM scratch\n"})
	d := x.deploy(engine.DeployRequest{Upload: bytes.NewReader(good), Commit: commit, CreatedBy: "alice"})
	if d.Status != berth.StatusLive || d.Commit != commit || d.Ref != "prod" {
		t.Fatalf("push deployment: %s %q commit %q ref %q\n%s", d.Status, d.Error, d.Commit, d.Ref, x.log(d))
	}
	if !strings.Contains(x.log(d), "==> commit "+commit+", pushed to prod") {
		t.Errorf("log does not name the pushed commit:\n%s", x.log(d))
	}
	rel, err := x.st.Release(ctx, x.app.TeamID, d.ReleaseID)
	if err != nil || rel.Commit != commit {
		t.Errorf("release %+v, %v: want commit %s", rel, err, commit)
	}
	if len(x.f.Source.Fetches) != 0 {
		t.Errorf("a push app was fetched with git: %v", x.f.Source.Fetches)
	}
	// A commit applies to push apps only.
	y := newFixture(t, func(a *berth.App) { a.Source = berth.Source{Kind: berth.SourceUpload} })
	if _, err := y.e.Deploy(ctx, y.app, engine.DeployRequest{Upload: bytes.NewReader(good), Commit: commit}); !berth.IsKind(err, berth.Invalid) {
		t.Errorf("upload app with a commit: %v, want Invalid", err)
	}
}

// TestUploadLinks keeps symbolic links of an upload (a pushed commit has
// them, like a checkout) but refuses a build context that a link leads out
// of the source, and a link that would lead a later entry outside.
func TestUploadLinks(t *testing.T) {
	x := newFixture(t, func(a *berth.App) { a.Source = berth.Source{Kind: berth.SourceUpload} })
	outside := t.TempDir()
	archive := func(entries ...tar.Header) []byte {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, h := range entries {
			body := ""
			if h.Typeflag == tar.TypeReg {
				body = "FROM scratch\n"
				h.Size, h.Mode = int64(len(body)), 0o644
			}
			if err := tw.WriteHeader(&h); err != nil {
				t.Fatal(err)
			}
			tw.Write([]byte(body))
		}
		tw.Close()
		return b.Bytes()
	}
	reg := func(name string) tar.Header { return tar.Header{Name: name, Typeflag: tar.TypeReg} }
	link := func(name, target string) tar.Header {
		return tar.Header{Name: name, Linkname: target, Typeflag: tar.TypeSymlink, Mode: 0o777}
	}

	d := x.deploy(engine.DeployRequest{Upload: bytes.NewReader(archive(reg("real/Dockerfile"), link("Dockerfile", "real/Dockerfile")))})
	if d.Status != berth.StatusLive || !strings.Contains(x.log(d), "==> 2 files") {
		t.Fatalf("upload with an inner link: %s %q\n%s", d.Status, d.Error, x.log(d))
	}

	// A later entry written through a link to outside lands nowhere.
	d = x.deploy(engine.DeployRequest{Upload: bytes.NewReader(archive(link("out", outside), reg("out/Dockerfile")))})
	if d.Status != berth.StatusFailed || !strings.Contains(d.Error, "unpack upload") {
		t.Errorf("write through an outside link: %s %q", d.Status, d.Error)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("the upload wrote %d file(s) outside its root", len(entries))
	}

	// A build context that is a link to outside the source is refused.
	if err := os.WriteFile(filepath.Join(outside, "Dockerfile"), []byte("FROM scratch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	x.app.Build.Context = "ctx"
	if err := x.st.UpdateApp(context.Background(), x.app); err != nil {
		t.Fatal(err)
	}
	before := len(x.f.Builder.Builds)
	d = x.deploy(engine.DeployRequest{Upload: bytes.NewReader(archive(reg("Dockerfile"), link("ctx", outside)))})
	if d.Status != berth.StatusFailed || !strings.Contains(d.Error, "outside the source") {
		t.Errorf("context linked outside: %s %q", d.Status, d.Error)
	}
	if len(x.f.Builder.Builds) != before {
		t.Error("a context leading outside the source was built")
	}
}

func TestDeployRejectsBadRequests(t *testing.T) {
	x := newFixture(t, nil)
	ctx := context.Background()
	for _, req := range []engine.DeployRequest{
		{Ref: "--upload-pack=touch /tmp/pwned"},
		{Ref: "main;rm -rf /"},
		{Image: "nginx"},
		{Upload: strings.NewReader("x")},
	} {
		if _, err := x.e.Deploy(ctx, x.app, req); !berth.IsKind(err, berth.Invalid) {
			t.Errorf("deploy %+v: %v, want Invalid", req, err)
		}
	}
	ds, _ := x.st.Deployments(ctx, x.app.TeamID, x.app.ID, 10)
	if len(ds) != 0 {
		t.Errorf("rejected requests left %d deployments", len(ds))
	}
}

func TestDeleteApp(t *testing.T) {
	x := newFixture(t, nil)
	ctx := context.Background()
	x.deploy(engine.DeployRequest{})
	x.deploy(engine.DeployRequest{})
	if err := x.e.SetCertificate(ctx, x.app, "hello.example.com", []byte("CERT"), []byte("KEY")); err != nil {
		t.Fatal(err)
	}
	mine := map[string]string{berth.LabelApp: x.app.ID}
	if imgs, _ := x.f.Runtime.Images(ctx, mine); len(imgs) != 2 {
		t.Fatalf("%d images before the delete, want 2", len(imgs))
	}
	if err := x.e.DeleteApp(ctx, x.app, false); err != nil {
		t.Fatal(err)
	}
	if imgs, _ := x.f.Runtime.Images(ctx, mine); len(imgs) != 0 {
		t.Errorf("%d images left", len(imgs))
	}
	if x.f.Router.CustomCertificate("hello.example.com") != "" {
		t.Error("custom certificate left")
	}
	if n := len(x.f.Runtime.Running()); n != 0 {
		t.Errorf("%d containers left", n)
	}
	if _, ok := x.f.Router.Route(x.app.ID); ok {
		t.Error("route left")
	}
	if _, err := x.st.AppByID(context.Background(), x.app.TeamID, x.app.ID); !berth.IsKind(err, berth.NotFound) {
		t.Errorf("app still in the store: %v", err)
	}
}

// TestDeleteAppVolumes: volumes are kept by default and removed on
// request, and only the app's own.
func TestDeleteAppVolumes(t *testing.T) {
	ctx := context.Background()
	for _, remove := range []bool{false, true} {
		x := newFixture(t, func(a *berth.App) { a.Volumes = []berth.Volume{{Name: "data", Path: "/data"}} })
		x.deploy(engine.DeployRequest{})
		// A volume of something else: never touched.
		if err := x.f.Runtime.EnsureVolume(ctx, "not-berths", map[string]string{"other": "x"}); err != nil {
			t.Fatal(err)
		}
		if n := len(x.f.Runtime.VolumeNames); n != 2 {
			t.Fatalf("%d volumes before delete, want 2", n)
		}
		if err := x.e.DeleteApp(ctx, x.app, remove); err != nil {
			t.Fatal(err)
		}
		got := slices.Clone(x.f.Runtime.VolumeNames)
		slices.Sort(got)
		switch {
		case remove && !slices.Equal(got, []string{"not-berths"}):
			t.Errorf("delete with volumes left %q, want only the foreign volume", got)
		case !remove && len(got) != 2:
			t.Errorf("delete without volumes left %q, want both", got)
		}
	}
}

func TestStatusAndLogs(t *testing.T) {
	x := newFixture(t, nil)
	x.f.Runtime.LogText = "GET / 200\n"
	d := x.deploy(engine.DeployRequest{})
	st, err := x.e.Status(context.Background(), x.app)
	if err != nil {
		t.Fatal(err)
	}
	if st.Live == nil || st.Live.ID != d.ID || st.Release == nil || len(st.Containers) != 2 || st.Domains[0] != "hello.example.com" {
		t.Errorf("status %+v", st)
	}
	if st.Release.Config.Env != nil {
		t.Error("status carries env values")
	}
	var b bytes.Buffer
	if err := x.e.Logs(context.Background(), x.app, engine.LogOptions{Tail: 10}, &b); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(b.String(), "| GET / 200\n"); got != 2 {
		t.Errorf("logs of 2 replicas:\n%s", b.String())
	}
}

func tarOf(t *testing.T, files map[string]string) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	return b.Bytes()
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A deployment whose worker died mid-stage is failed by the next worker,
// and what it half-created is removed.
func TestInterruptedDeploymentIsFailed(t *testing.T) {
	x := newFixture(t, nil)
	ctx := context.Background()
	now := time.Now()
	d := &berth.Deployment{ID: berth.NewID("dep"), TeamID: x.app.TeamID, AppID: x.app.ID, Kind: berth.KindDeploy,
		Status: berth.StatusQueued, Ref: "main", CreatedAt: now, UpdatedAt: now}
	if err := x.st.CreateDeployment(ctx, d); err != nil {
		t.Fatal(err)
	}
	for _, to := range []berth.Status{berth.StatusFetching, berth.StatusBuilding, berth.StatusStarting} {
		if err := x.st.MoveDeployment(ctx, d.TeamID, d.ID, d.Status, to, now, ""); err != nil {
			t.Fatal(err)
		}
		d.Status = to
	}
	if _, err := x.f.Runtime.Run(ctx, berth.ContainerSpec{Name: "berth-hello-d1-r1-half", Labels: map[string]string{
		berth.LabelManaged: "true", berth.LabelInstance: "test", berth.LabelApp: x.app.ID, berth.LabelDeployment: d.ID,
	}}); err != nil {
		t.Fatal(err)
	}
	job := &berth.Job{ID: berth.NewID("job"), Kind: engine.JobDeploy, Key: x.app.ID, Payload: d.ID, TeamID: d.TeamID,
		Status: berth.JobQueued, MaxAttempts: 3, RunAt: now, Deadline: now.Add(time.Hour), CreatedAt: now}
	if err := x.st.EnqueueJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	got := x.wait(d.ID)
	if got.Status != berth.StatusFailed || !strings.Contains(got.Error, "interrupted while starting") {
		t.Fatalf("%s %q, want failed: interrupted while starting", got.Status, got.Error)
	}
	if n := len(x.f.Runtime.Running()); n != 0 {
		t.Errorf("%d half-created containers left", n)
	}
}

// Builds queue for a build slot: with the default of one, two apps never
// build at once, and the waiting one says so in its log.
func TestBuildSlots(t *testing.T) {
	x := newFixture(t, nil)
	ctx := context.Background()
	other := &berth.App{ID: berth.NewID("app"), TeamID: x.app.TeamID, Name: "other",
		Source: berth.Source{Git: "https://git.example.com/other.git"}, CreatedAt: time.Now(), UpdatedAt: time.Now()}
	other.SetDefaults()
	if err := x.st.CreateApp(ctx, other); err != nil {
		t.Fatal(err)
	}
	block := make(chan struct{})
	x.f.Builder.Block = block
	a, err := x.e.Deploy(ctx, x.app, engine.DeployRequest{})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, x, a.ID, berth.StatusBuilding)
	b, err := x.e.Deploy(ctx, other, engine.DeployRequest{})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(x.log(b), "waiting for a build slot") {
		if time.Now().After(deadline) {
			t.Fatalf("second build never waited for a slot:\n%s", x.log(b))
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(block)
	if d := x.wait(a.ID); d.Status != berth.StatusLive {
		t.Fatalf("first: %s %s", d.Status, d.Error)
	}
	if d := x.wait(b.ID); d.Status != berth.StatusLive {
		t.Fatalf("second: %s %s", d.Status, d.Error)
	}
	if x.f.Builder.MaxSeen != 1 {
		t.Errorf("%d builds ran at once, want 1", x.f.Builder.MaxSeen)
	}
}

func TestBuildTimeout(t *testing.T) {
	x := newFixture(t, nil, func(c *engine.Config) { c.BuildTimeout = 50 * time.Millisecond })
	x.f.Builder.Block = make(chan struct{})
	d := x.deploy(engine.DeployRequest{})
	if d.Status != berth.StatusFailed || !strings.Contains(d.Error, "build took longer than 50ms") {
		t.Fatalf("%s %q, want failed: build took longer than 50ms", d.Status, d.Error)
	}
}

// Old replicas are drained through the proxy before they are stopped.
func TestSwitchDrainsOldReplicas(t *testing.T) {
	x := newFixture(t, nil)
	x.deploy(engine.DeployRequest{})
	old := x.f.Runtime.Running()
	x.deploy(engine.DeployRequest{})
	deadline := time.Now().Add(10 * time.Second)
	for len(x.f.Runtime.Running()) != 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	x.f.Router.Lock()
	drained := append([]string(nil), x.f.Router.Drained...)
	x.f.Router.Unlock()
	if len(drained) != 2 {
		t.Fatalf("drained %v, want the 2 old replicas", drained)
	}
	for _, c := range old {
		if !slices.Contains(drained, c.Name+":8080") {
			t.Errorf("old replica %s was not drained (drained %v)", c.Name, drained)
		}
	}
}

// A switch interrupted by a crash is finished by the next worker when the
// new replicas still run: the release they passed the health check for goes
// live, and the previous one is superseded.
func TestInterruptedSwitchRollsForward(t *testing.T) {
	x := newFixture(t, nil)
	ctx := context.Background()
	x.deploy(engine.DeployRequest{})
	d := x.deploy(engine.DeployRequest{})
	rel, _ := x.st.Release(ctx, x.app.TeamID, d.ReleaseID)
	// Rebuild the state a crash mid-switch leaves: a deployment in
	// switching whose replicas run, the previous one still live.
	now := time.Now()
	nd := &berth.Deployment{ID: berth.NewID("dep"), TeamID: x.app.TeamID, AppID: x.app.ID, Kind: berth.KindRollback,
		Status: berth.StatusQueued, TargetReleaseID: rel.ID, CreatedAt: now, UpdatedAt: now}
	if err := x.st.CreateDeployment(ctx, nd); err != nil {
		t.Fatal(err)
	}
	for _, to := range []berth.Status{berth.StatusStarting, berth.StatusVerifying, berth.StatusSwitching} {
		if err := x.st.MoveDeployment(ctx, nd.TeamID, nd.ID, nd.Status, to, now, ""); err != nil {
			t.Fatal(err)
		}
		nd.Status = to
	}
	if err := x.st.SetDeploymentRelease(ctx, nd.TeamID, nd.ID, rel.ID); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := x.f.Runtime.Run(ctx, berth.ContainerSpec{Name: fmt.Sprintf("berth-hello-d9-r%d-x", i+1), Image: rel.Image, Labels: map[string]string{
			berth.LabelManaged: "true", berth.LabelInstance: "test", berth.LabelApp: x.app.ID, berth.LabelRole: "app",
			berth.LabelDeployment: nd.ID, berth.LabelRelease: rel.ID}}); err != nil {
			t.Fatal(err)
		}
	}
	job := &berth.Job{ID: berth.NewID("job"), Kind: engine.JobDeploy, Key: x.app.ID, Payload: nd.ID, TeamID: nd.TeamID,
		Status: berth.JobQueued, MaxAttempts: 3, RunAt: now, Deadline: now.Add(time.Hour), CreatedAt: now}
	if err := x.st.EnqueueJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	got := x.wait(nd.ID)
	if got.Status != berth.StatusLive {
		t.Fatalf("interrupted switch ended %s (%s), want live", got.Status, got.Error)
	}
	if p, _ := x.st.Deployment(ctx, x.app.TeamID, d.ID); p.Status != berth.StatusRolledBack {
		t.Errorf("the deployment live before is %s, want rolled_back", p.Status)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(x.f.Runtime.Running()) != 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	for _, c := range x.f.Runtime.Running() {
		if c.Labels[berth.LabelDeployment] != nd.ID {
			t.Errorf("%s of another deployment still runs", c.Name)
		}
	}
}

// Only the images of the last KeepReleases releases (and of running
// containers) are kept; a rollback to a collected release says why it
// cannot happen.
func TestImageCollection(t *testing.T) {
	x := newFixture(t, nil, func(c *engine.Config) { c.KeepReleases = 2 })
	ctx := context.Background()
	var ds []*berth.Deployment
	for range 4 {
		ds = append(ds, x.deploy(engine.DeployRequest{}))
	}
	imgs, _ := x.f.Runtime.Images(ctx, nil)
	if len(imgs) != 2 {
		t.Fatalf("%d images kept, want 2", len(imgs))
	}

	first, _ := x.st.Release(ctx, x.app.TeamID, ds[0].ReleaseID)
	if _, err := x.e.Rollback(ctx, x.app, first.ID, "bob"); !berth.IsKind(err, berth.Conflict) || !strings.Contains(err.Error(), "no longer on this server") {
		t.Errorf("rollback to a collected release: %v", err)
	}
	third, _ := x.st.Release(ctx, x.app.TeamID, ds[2].ReleaseID)
	rb, err := x.e.Rollback(ctx, x.app, third.ID, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if rb = x.wait(rb.ID); rb.Status != berth.StatusLive {
		t.Errorf("rollback to a kept release: %s %s", rb.Status, rb.Error)
	}
	// An image of the app with two tags (a cached rebuild of the same
	// source) and no kept release goes too; one berth did not label stays.
	x.f.Runtime.AddImage(berth.Image{ID: "sha256:twice", Tags: []string{"berth/" + x.app.ID + ":d90", "berth/" + x.app.ID + ":d91"},
		Labels: map[string]string{berth.LabelManaged: "true", berth.LabelInstance: "test", berth.LabelApp: x.app.ID}})
	x.f.Runtime.AddImage(berth.Image{ID: "sha256:foreign", Tags: []string{"nginx:1"}})
	x.deploy(engine.DeployRequest{})
	imgs, _ = x.f.Runtime.Images(ctx, nil)
	ids := []string{}
	for _, img := range imgs {
		ids = append(ids, img.ID)
	}
	if len(imgs) != 3 || slices.Contains(ids, "sha256:twice") || !slices.Contains(ids, "sha256:foreign") {
		t.Errorf("images after collection %v: want the 2 kept releases' and the unlabelled one", ids)
	}
}

// An image's own HEALTHCHECK must report healthy too.
func TestDockerHealthcheckHonoured(t *testing.T) {
	x := newFixture(t, nil, func(c *engine.Config) {})
	x.app.Health.Deadline = time.Second
	if err := x.st.UpdateApp(context.Background(), x.app); err != nil {
		t.Fatal(err)
	}
	x.f.Runtime.Health = func(string) string { return "unhealthy" }
	d := x.deploy(engine.DeployRequest{})
	if d.Status != berth.StatusFailed || !strings.Contains(d.Error, "HEALTHCHECK reports") {
		t.Fatalf("%s %q, want failed by the image's HEALTHCHECK", d.Status, d.Error)
	}
	x.f.Runtime.Health = func(string) string { return "starting" }
	d = x.deploy(engine.DeployRequest{})
	if d.Status != berth.StatusFailed || !strings.Contains(d.Error, "did not report healthy within 1s") {
		t.Fatalf("%s %q, want failed: not healthy within the deadline", d.Status, d.Error)
	}
	x.f.Runtime.Health = func(string) string { return "healthy" }
	if d = x.deploy(engine.DeployRequest{}); d.Status != berth.StatusLive {
		t.Fatalf("%s %q, want live", d.Status, d.Error)
	}
}

// Only the build logs of the newest KeepLogs deployments are kept, failed
// ones included; the deployments themselves stay.
func TestLogsPruned(t *testing.T) {
	x := newFixture(t, nil, func(c *engine.Config) { c.KeepLogs = 2 })
	ctx := context.Background()
	var ds []*berth.Deployment
	for range 3 {
		ds = append(ds, x.deploy(engine.DeployRequest{}))
	}
	x.f.Router.Unhealthy = errors.New("refused")
	ds = append(ds, x.deploy(engine.DeployRequest{}))
	if ds[3].Status != berth.StatusFailed {
		t.Fatalf("last deployment %s, want failed", ds[3].Status)
	}
	for i, d := range ds {
		logs, err := x.st.Logs(ctx, x.app.TeamID, d.ID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if kept := i >= 2; kept != (len(logs) > 0) {
			t.Errorf("deployment #%d has %d log lines; kept %v", d.Number, len(logs), kept)
		}
	}
	if all, err := x.st.Deployments(ctx, x.app.TeamID, x.app.ID, 0); err != nil || len(all) != 4 {
		t.Errorf("deployments after pruning: %d, %v", len(all), err)
	}
}
