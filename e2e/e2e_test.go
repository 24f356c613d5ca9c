// Package e2e tests berth from the outside: the real binary, the real
// Docker engine, real git over smart HTTP, and the proxy in its container.
package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/docker"
	"github.com/berthhq/berth/docker/dockertest"
	"github.com/berthhq/berth/git/gittest"
	_ "github.com/jackc/pgx/v5/stdlib"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds berth and the test app once per test binary.
func binaries(t *testing.T) (berthBin, appBin string) {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "berth-e2e-bin")
		if buildErr != nil {
			return
		}
		for _, b := range []struct{ out, pkg, ldflags string }{
			{"berth", "github.com/berthhq/berth/cmd/berth", ""},
			// The same source built again as another version: an upgrade.
			{"berth-upgrade", "github.com/berthhq/berth/cmd/berth", "-X main.version=e2e-upgrade"},
			{"app", "github.com/berthhq/berth/e2e/testdata/app", ""},
		} {
			cmd := exec.Command("go", "build", "-trimpath", "-ldflags", b.ldflags, "-o", filepath.Join(binDir, b.out), b.pkg)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "berth"), filepath.Join(binDir, "app")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// upgradeBinary is berth built as another version, for upgrade tests.
func upgradeBinary(t *testing.T) string {
	binaries(t)
	return filepath.Join(binDir, "berth-upgrade")
}

// server is a running `berth server` with its own data, ports and network.
type server struct {
	t         *testing.T
	bin       string
	data      string
	config    string // XDG_CONFIG_HOME of the CLI
	api       string // http://127.0.0.1:port
	proxy     string // 127.0.0.1:port
	network   string
	extraArgs []string
	cmd       *exec.Cmd
	logs      *bytes.Buffer
	logsMu    *sync.Mutex
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startServer starts berth server and removes every Docker object of its
// instance when the test ends, whether it passed or not.
func startServer(t *testing.T, bin string, extraArgs ...string) *server {
	t.Helper()
	dk := dockertest.Engine(t)
	dir, err := os.MkdirTemp("", "be2e")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{
		t: t, bin: bin, data: filepath.Join(dir, "data"), config: filepath.Join(dir, "config"),
		api:     fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
		proxy:   fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		network: "berth-e2e-" + strings.ToLower(berth.NewID("n")[2:10]),
		logs:    &bytes.Buffer{}, logsMu: &sync.Mutex{}, extraArgs: extraArgs,
	}
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("server log:\n%s", s.serverLog())
		}
		cleanupDocker(t, dk, s.proxy, s.network)
		os.RemoveAll(dir)
	})
	s.start()
	return s
}

func (s *server) start() {
	t := s.t
	args := append([]string{"server", "--data", s.data, "--listen", strings.TrimPrefix(s.api, "http://"),
		"--proxy-listen", s.proxy, "--network", s.network,
		// The tests serve git from 127.0.0.1.
		"--allow-private-egress"}, s.extraArgs...)
	s.cmd = exec.Command(s.bin, args...)
	w := &lockedWriter{mu: s.logsMu, w: s.logs}
	s.cmd.Stdout, s.cmd.Stderr = w, w
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get(s.api + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not become healthy in 90s; log:\n%s", s.serverLog())
		}
		if s.cmd.ProcessState != nil {
			t.Fatalf("server exited; log:\n%s", s.serverLog())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for the server to exit.
func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
}

func (s *server) serverLog() string {
	s.logsMu.Lock()
	defer s.logsMu.Unlock()
	return s.logs.String()
}

// berth runs the CLI and returns its stdout; it fails the test on a
// non-zero exit unless the caller expects one (see berthErr).
func (s *server) berth(args ...string) string {
	s.t.Helper()
	out, errOut, err := s.run(args...)
	if err != nil {
		s.t.Fatalf("berth %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// berthErr runs the CLI, expecting it to fail, and returns its stderr.
func (s *server) berthErr(args ...string) string {
	s.t.Helper()
	out, errOut, err := s.run(args...)
	if err == nil {
		s.t.Fatalf("berth %s succeeded, want an error\nstdout:\n%s", strings.Join(args, " "), out)
	}
	return errOut
}

func (s *server) run(args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+s.config, "BERTH_SERVER=", "BERTH_TOKEN=")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// get fetches path through the proxy with the given Host header.
func (s *server) get(host, path string) (int, string) {
	s.t.Helper()
	code, body, err := s.tryGet(host, path)
	if err != nil {
		s.t.Fatalf("GET %s%s through the proxy: %v", host, path, err)
	}
	return code, body
}

// tryGet is get that returns the error.
func (s *server) tryGet(host, path string) (int, string, error) {
	req, _ := http.NewRequest("GET", "http://"+s.proxy+path, nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// wantAnswer checks the app's answer through the proxy contains want.
func (s *server) wantAnswer(host, want string) {
	s.t.Helper()
	code, body := s.get(host, "/")
	if code != 200 || !strings.Contains(body, want) {
		s.t.Fatalf("GET %s: %d %q, want 200 containing %q", host, code, body, want)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// cleanupDocker removes every object of the berth instance whose proxy
// published proxyAddr, and the test's network.
func cleanupDocker(t *testing.T, dk *docker.Engine, proxyAddr, network string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	proxies, err := dk.Containers(ctx, map[string]string{berth.LabelRole: "proxy", "berth.proxy.listen": proxyAddr})
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	for _, p := range proxies {
		// The proxy image may be shared with other servers of this binary;
		// RemoveLabelled leaves an image in use to them.
		if err := dk.RemoveLabelled(ctx, map[string]string{berth.LabelInstance: p.Labels[berth.LabelInstance]}); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
	if err := dk.RemoveNetwork(ctx, network); err != nil {
		t.Errorf("cleanup network: %v", err)
	}
}

// freshDatabase creates an empty PostgreSQL database on the server of dsn
// for one test, drops it when the test ends, and returns its DSN.
func freshDatabase(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("BERTH_TEST_POSTGRES: %v", err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	name := "berth_e2e_" + berth.NewID("db")[3:]
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return
		}
		defer db.Close()
		if _, err := db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("drop database: %v", err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// appDockerfile builds the test app into an image of its own.
const appDockerfile = "FROM scratch\nCOPY app /app\nCOPY message.txt /message.txt\nENTRYPOINT [\"/app\"]\n"

// appRepo makes a git repository holding the test app binary, the
// Dockerfile and message.txt, commits it, serves it over smart HTTP as
// <name>.git and returns the repository and its clone URL.
func appRepo(t *testing.T, appBin, name, dockerfile, message string) (*gittest.Repo, string) {
	t.Helper()
	app, err := os.ReadFile(appBin)
	if err != nil {
		t.Fatal(err)
	}
	repo := gittest.NewRepo(t)
	repo.Write("Dockerfile", dockerfile)
	repo.Write("app", string(app))
	// The app is the image's entrypoint: git records the executable bit.
	if err := os.Chmod(filepath.Join(repo.Dir(), "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	repo.Write("message.txt", message+"\n")
	repo.Commit("v1")
	base := gittest.Serve(t, map[string]*gittest.Repo{name: repo})
	return repo, base + "/" + name + ".git"
}

// login signs the CLI in with the server's bootstrap token.
func (s *server) login() {
	s.t.Helper()
	token, err := os.ReadFile(filepath.Join(s.data, "bootstrap-token"))
	if err != nil {
		s.t.Fatalf("bootstrap token: %v", err)
	}
	s.berth("login", s.api, "--token", strings.TrimSpace(string(token)))
}
