package git_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/git"
	"github.com/berthhq/berth/git/gittest"
)

// TestMain runs the test binary as the pre-receive hook when receive-pack
// starts it under that name, as the berth binary does.
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == git.HookName {
		os.Exit(git.RunHook(context.Background(), os.Stdin, os.Stdout, os.Getenv))
	}
	os.Exit(m.Run())
}

// hookProgram is this test binary, which runs the hook under its name.
func hookProgram(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// remote serves one hosted repository over smart HTTP like berth does,
// with decide as the judge of every push (through the real hook).
type remote struct {
	t      *testing.T
	repos  *git.Repos
	app    string
	decide func(c *git.HookConn) bool
	mu     sync.Mutex
	seen   []git.HookRequest
}

func (rm *remote) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	svc := git.Service(r.URL.Query().Get("service"))
	advertise := strings.HasSuffix(r.URL.Path, "/info/refs")
	if !advertise {
		svc = git.Service(r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:])
	}
	req := git.ServiceRequest{Service: svc, AppID: rm.app, Advertise: advertise, Protocol: r.Header.Get("Git-Protocol"), Stdout: flusher{w}}
	if !advertise {
		req.Stdin = r.Body
	}
	w.Header().Set("Content-Type", "application/x-"+string(svc)+map[bool]string{true: "-advertisement", false: "-result"}[advertise])
	if svc == git.ReceivePack && !advertise {
		sess, err := git.NewHookSession(hookProgram(rm.t))
		if err != nil {
			rm.t.Error(err)
			return
		}
		defer sess.Close()
		req.Hooks, req.Env = sess.HooksDir(), sess.Env()
		hctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() {
			c, err := sess.Accept(hctx)
			if err != nil {
				return
			}
			rm.mu.Lock()
			rm.seen = append(rm.seen, c.Request)
			rm.mu.Unlock()
			c.Finish(rm.decide(c))
		})
		defer wg.Wait()
		defer stop()
	}
	if err := rm.repos.Serve(ctx, req); err != nil {
		rm.t.Logf("serve %s: %v", svc, err)
	}
}

type flusher struct{ w http.ResponseWriter }

func (f flusher) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	http.NewResponseController(f.w).Flush()
	return n, err
}

// tarNames lists the files of a tar archive.
func tarNames(t *testing.T, b []byte) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Fatalf("archive: %v", err)
		}
		if h.Typeflag != tar.TypeDir && h.Typeflag != tar.TypeXGlobalHeader {
			names = append(names, h.Name)
		}
	}
}

// TestHostedRemote pushes to and clones from a hosted repository with the
// real git client, through the real pre-receive hook: the judge reads the
// pushed commit from quarantine, its lines reach the pusher as they are
// sent, and a refusal fails git push and leaves the branch where it was.
func TestHostedRemote(t *testing.T) {
	ctx := context.Background()
	repos := &git.Repos{Dir: filepath.Join(t.TempDir(), "repos")}
	app := berth.NewID("app")
	if _, err := repos.Init(ctx, app, "main"); err != nil {
		t.Fatal(err)
	}
	rm := &remote{t: t, repos: repos, app: app}
	rm.decide = func(c *git.HookConn) bool {
		ok := true
		for _, u := range c.Request.Updates {
			if u.Deletes() {
				c.Say("no deleting " + u.Ref)
				ok = false
				continue
			}
			var b bytes.Buffer
			if err := repos.Archive(ctx, app, u.New, c.Request.Quarantine, &b); err != nil {
				c.Say("archive: " + err.Error())
				return false
			}
			names := tarNames(t, b.Bytes())
			c.Say("files of " + u.Ref + ": " + strings.Join(names, ","))
			ok = ok && !slices.Contains(names, "bad")
		}
		return ok
	}
	srv := httptest.NewServer(rm)
	t.Cleanup(srv.Close)
	url := srv.URL + "/app.git"

	r := gittest.NewRepo(t)
	r.Write("Dockerfile", "FROM scratch\n")
	first := r.Commit("first")
	_, stderr, err := r.Try(nil, "push", url, "main")
	if err != nil {
		t.Fatalf("push: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "remote: files of refs/heads/main: Dockerfile") {
		t.Errorf("the judge's line is not in the push output:\n%s", stderr)
	}
	if got, err := repos.Resolve(ctx, app, "main"); err != nil || got != first {
		t.Errorf("main = %s, %v; want %s", got, err, first)
	}
	if len(rm.seen) != 1 || rm.seen[0].Quarantine == "" || rm.seen[0].Updates[0].New != first || !zero(rm.seen[0].Updates[0].Old) {
		t.Errorf("hook requests %+v", rm.seen)
	}

	// A refused push: git push fails, main stays, nothing is left in
	// quarantine.
	r.Write("bad", "x")
	second := r.Commit("second")
	_, stderr, err = r.Try(nil, "push", url, "main")
	if err == nil || !strings.Contains(stderr, "pre-receive hook declined") || !strings.Contains(stderr, "remote: files of refs/heads/main: Dockerfile,bad") {
		t.Errorf("refused push: %v\n%s", err, stderr)
	}
	if got, _ := repos.Resolve(ctx, app, "main"); got != first {
		t.Errorf("main moved to %s after a refused push", got)
	}
	if _, err := repos.Resolve(ctx, app, second); err == nil {
		t.Error("the refused commit is in the repository")
	}
	dir, _ := repos.Path(app)
	entries, _ := os.ReadDir(filepath.Join(dir, "objects"))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "tmp_objdir") {
			t.Errorf("quarantine left behind: %s", e.Name())
		}
	}
	// Deleting is up to the judge too.
	r.Git("reset", "-q", "--hard", first)
	if _, stderr, err := r.Try(nil, "push", url, ":main"); err == nil || !strings.Contains(stderr, "remote: no deleting refs/heads/main") {
		t.Errorf("delete: %v\n%s", err, stderr)
	}

	// Clone with protocol v2 and v0: the pushed commit comes back.
	for _, v := range []string{"2", "0"} {
		dst := filepath.Join(t.TempDir(), "clone")
		if _, stderr, err := r.Try(nil, "-c", "protocol.version="+v, "clone", "-q", url, dst); err != nil {
			t.Fatalf("clone (protocol v%s): %v\n%s", v, err, stderr)
		}
		c := exec(t, dst, "rev-parse", "HEAD")
		if c != first {
			t.Errorf("clone (protocol v%s) HEAD = %s, want %s", v, c, first)
		}
	}
}

func zero(s string) bool { return strings.Trim(s, "0") == "" }

// exec runs git in dir and returns its trimmed output.
func exec(t *testing.T, dir string, args ...string) string {
	t.Helper()
	r := gittest.NewRepo(t)
	out, stderr, err := r.Try(nil, append([]string{"-C", dir}, args...)...)
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, stderr)
	}
	return strings.TrimSpace(out)
}

func TestReposRefuseBadInput(t *testing.T) {
	ctx := context.Background()
	repos := &git.Repos{Dir: t.TempDir()}
	app := berth.NewID("app")
	for _, id := range []string{"", "../x", "app_../../etc", "web", "app_" + strings.Repeat("a", 17)} {
		if _, err := repos.Path(id); err == nil {
			t.Errorf("Path(%q) accepted", id)
		}
	}
	if _, err := repos.Init(ctx, app, "--upload-pack=x"); !berth.IsKind(err, berth.Invalid) {
		t.Errorf("init with a bad branch: %v", err)
	}
	if _, err := repos.Resolve(ctx, app, "main"); !berth.IsKind(err, berth.Invalid) {
		t.Errorf("resolve before any push: %v", err)
	}
	dir, err := repos.Init(ctx, app, "prod")
	if err != nil {
		t.Fatal(err)
	}
	if head, _ := os.ReadFile(filepath.Join(dir, "HEAD")); strings.TrimSpace(string(head)) != "ref: refs/heads/prod" {
		t.Errorf("HEAD = %q", head)
	}
	if again, err := repos.Init(ctx, app, "prod"); err != nil || again != dir {
		t.Errorf("second init: %s, %v", again, err)
	}
	for _, ref := range []string{"--output=/tmp/x", "main;id", "a..b"} {
		if _, err := repos.Resolve(ctx, app, ref); !berth.IsKind(err, berth.Invalid) {
			t.Errorf("resolve %q: %v", ref, err)
		}
	}
	sha := strings.Repeat("a", 40)
	for _, q := range []string{"/tmp", filepath.Join(dir, "objects"), filepath.Join(dir, "objects", "tmp_objdir-incoming-x", ".."), filepath.Join(t.TempDir(), "tmp_objdir-incoming-x")} {
		if err := repos.Archive(ctx, app, sha, q, io.Discard); !berth.IsKind(err, berth.Invalid) {
			t.Errorf("archive from quarantine %q: %v", q, err)
		}
	}
	for _, c := range []string{"HEAD", "main", "--remote=x", strings.Repeat("g", 40)} {
		if err := repos.Archive(ctx, app, c, "", io.Discard); !berth.IsKind(err, berth.Invalid) {
			t.Errorf("archive %q: %v", c, err)
		}
	}
	if err := repos.Serve(ctx, git.ServiceRequest{Service: "git-upload-archive", AppID: app, Stdout: io.Discard}); !berth.IsKind(err, berth.Invalid) {
		t.Errorf("unknown service: %v", err)
	}
	if err := repos.Serve(ctx, git.ServiceRequest{Service: git.UploadPack, AppID: app, Protocol: "version=2\nX=1", Stdout: io.Discard}); !berth.IsKind(err, berth.Invalid) {
		t.Errorf("hostile Git-Protocol: %v", err)
	}
	// A malformed request body is git's to refuse, as an Invalid error.
	if err := repos.Serve(ctx, git.ServiceRequest{Service: git.ReceivePack, AppID: app, Stdin: strings.NewReader("garbage"), Stdout: io.Discard}); !berth.IsKind(err, berth.Invalid) {
		t.Errorf("garbage body: %v", err)
	}

	// Quarantine left by a killed push is cleared; nothing else is.
	stale := filepath.Join(dir, "objects", "tmp_objdir-incoming-abc123")
	if err := os.MkdirAll(filepath.Join(stale, "pack"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := repos.ClearQuarantine(app); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale quarantine still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "objects", "info")); err != nil && !os.IsNotExist(err) {
		t.Error(err)
	}
	if err := repos.Remove(app); err != nil || repos.Exists(app) {
		t.Errorf("remove: %v, exists %v", err, repos.Exists(app))
	}
}

func TestParseHookUpdates(t *testing.T) {
	a, b := strings.Repeat("a", 40), strings.Repeat("b", 40)
	good := a + " " + b + " refs/heads/main\n" + strings.Repeat("0", 40) + " " + b + " refs/tags/v1\n"
	us, err := git.ParseHookUpdates(strings.NewReader(good))
	if err != nil || len(us) != 2 || us[0].Ref != "refs/heads/main" || us[1].Deletes() {
		t.Fatalf("%+v, %v", us, err)
	}
	for _, bad := range []string{
		a + " " + b,
		a + " " + b + " ",
		"x " + b + " refs/heads/main",
		a + " " + strings.Repeat("b", 64) + " refs/heads/main",
		a + " " + b + " refs/heads/ma in",
		a + " " + b + " refs/heads/\x01",
		strings.Repeat(a+" "+b+" refs/heads/x\n", 1001),
	} {
		if _, err := git.ParseHookUpdates(strings.NewReader(bad)); err == nil {
			t.Errorf("accepted %q", bad[:min(len(bad), 100)])
		}
	}
}

// TestHookSession checks the hook's channel: a caller without the token is
// hung up on, the hook prints what the server says and exits with its
// verdict, and without its environment it refuses to run.
func TestHookSession(t *testing.T) {
	ctx := context.Background()
	var out bytes.Buffer
	if code := git.RunHook(ctx, strings.NewReader(""), &out, func(string) string { return "" }); code != 1 || !strings.Contains(out.String(), "only runs inside a push") {
		t.Errorf("hook without environment: %d %q", code, out.String())
	}
	for _, ok := range []bool{true, false} {
		sess, err := git.NewHookSession(hookProgram(t))
		if err != nil {
			t.Fatal(err)
		}
		env := map[string]string{}
		for _, kv := range sess.Env() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		if fi, err := os.Lstat(filepath.Join(sess.HooksDir(), git.HookName)); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("hook link: %v", err)
		}
		// An impostor with a wrong token is hung up on.
		conn, err := net.Dial("unix", env[git.HookSocketEnv])
		if err != nil {
			t.Fatal(err)
		}
		json.NewEncoder(conn).Encode(git.HookRequest{Token: strings.Repeat("0", 64)})
		done := make(chan *git.HookConn, 1)
		go func() {
			c, err := sess.Accept(ctx)
			if err != nil {
				t.Error(err)
			}
			done <- c
		}()
		if line, err := bufio.NewReader(conn).ReadString('\n'); err == nil {
			t.Errorf("impostor got an answer: %q", line)
		}
		conn.Close()

		code := make(chan int, 1)
		out.Reset()
		update := strings.Repeat("a", 40) + " " + strings.Repeat("b", 40) + " refs/heads/main\n"
		go func() {
			code <- git.RunHook(ctx, strings.NewReader(update), &out, func(k string) string { return env[k] })
		}()
		c := <-done
		if c == nil {
			t.Fatal("no hook accepted")
		}
		if len(c.Request.Updates) != 1 || c.Request.Updates[0].Ref != "refs/heads/main" {
			t.Errorf("request %+v", c.Request)
		}
		c.Say("line one\nline two")
		c.Finish(ok)
		want := map[bool]int{true: 0, false: 1}[ok]
		if got := <-code; got != want || out.String() != "line one\nline two\n" {
			t.Errorf("verdict %v: exit %d, output %q", ok, got, out.String())
		}
		sess.Close()
		if _, err := os.Stat(env[git.HookSocketEnv]); !os.IsNotExist(err) {
			t.Errorf("session directory left behind: %v", err)
		}
	}
	// A session nobody calls ends with its context.
	sess, err := git.NewHookSession(hookProgram(t))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := sess.Accept(cctx); !errors.Is(err, git.ErrNoHook) {
		t.Errorf("accept after the end: %v", err)
	}
}
