// Package gittest gives tests of any package a real git repository and a real
// git server: repositories are worked on with the git binary, isolated from
// the machine's git configuration, and served over smart HTTP by
// `git http-backend` on a loopback test server.
package gittest

import (
	"bytes"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Repo is a non-bare working repository in a test's temporary directory.
// Commits are visible to a server from Serve as soon as they are made.
type Repo struct {
	t    testing.TB
	git  string
	dir  string
	home string
}

// NewRepo creates an empty repository on branch main with a configured
// author. It skips the test when git is not installed, unless env CI is
// "true", where it fails.
func NewRepo(t testing.TB) *Repo {
	t.Helper()
	bin := Git(t)
	r := &Repo{t: t, git: bin, dir: t.TempDir(), home: t.TempDir()}
	r.Git("init", "-q", "--initial-branch=main")
	r.Git("config", "user.name", "berth test")
	r.Git("config", "user.email", "test@berth.invalid")
	r.Git("config", "commit.gpgsign", "false")
	r.Git("config", "tag.gpgsign", "false")
	return r
}

// Git returns the path of the git binary. It skips the test when git is not
// installed, unless env CI is "true", where it fails.
func Git(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("git")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("git is required under CI=true: %v", err)
		}
		t.Skipf("git not installed: %v", err)
	}
	return bin
}

// Dir is the repository's working directory.
func (r *Repo) Dir() string { return r.dir }

// Git runs git with args in the repository and returns its trimmed standard
// output; the test fails if git does.
func (r *Repo) Git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command(r.git, args...)
	cmd.Dir = r.dir
	cmd.Env = isolatedEnv(r.home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

// Write writes content to the file at path (slash-separated, relative to the
// working directory), creating parent directories.
func (r *Repo) Write(path, content string) {
	r.t.Helper()
	full := filepath.Join(r.dir, filepath.FromSlash(path))
	if !strings.HasPrefix(full, r.dir+string(filepath.Separator)) {
		r.t.Fatalf("write %q: outside the repository", path)
	}
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// Commit stages every change and commits it (an empty commit when nothing
// changed) and returns the commit ID.
func (r *Repo) Commit(msg string) string {
	r.t.Helper()
	r.Git("add", "-A")
	r.Git("commit", "-q", "--allow-empty", "-m", msg)
	return r.Git("rev-parse", "HEAD")
}

// Tag creates an annotated tag name at HEAD.
func (r *Repo) Tag(name string) {
	r.t.Helper()
	r.Git("tag", "-a", "-m", "tag "+name, "--", name)
}

// Branch switches to branch name, creating it at HEAD if it does not exist.
func (r *Repo) Branch(name string) {
	r.t.Helper()
	if r.Git("branch", "--list", "--", name) == "" {
		r.Git("branch", "--", name)
	}
	r.Git("checkout", "-q", name, "--")
}

// Head returns the commit ID of HEAD.
func (r *Repo) Head() string {
	r.t.Helper()
	return r.Git("rev-parse", "HEAD")
}

// Config configures a server from Serve.
type Config struct {
	// AllowAnySHA1InWant lets clients fetch any object by ID
	// (uploadpack.allowAnySHA1InWant); by default only advertised refs can be
	// asked for, as on a server that forbids fetching by commit ID.
	AllowAnySHA1InWant bool
	// ProtocolV0 makes the server ignore the client's request for protocol
	// version 2 and speak the original protocol.
	ProtocolV0 bool
	// Auth, when set, sees every request first and lets it through only
	// when it returns true; others get 401 with a Basic challenge, as a
	// Git host answers a request without valid credentials.
	Auth func(r *http.Request) bool
}

var repoNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// Serve serves repos with the default Config; see Config.Serve.
func Serve(t testing.TB, repos map[string]*Repo) string {
	t.Helper()
	return Config{}.Serve(t, repos)
}

// Serve serves repos over smart HTTP (fetch only) on 127.0.0.1 until the
// test ends, and returns the base URL: repository name is at
// <base>/<name>.git. Names use letters, digits, '.', '_' and '-'.
func (c Config) Serve(t testing.TB, repos map[string]*Repo) string {
	t.Helper()
	bin := Git(t)
	root := t.TempDir()
	for name, r := range repos {
		if !repoNameRE.MatchString(name) || strings.Contains(name, "..") {
			t.Fatalf("serve: bad repository name %q", name)
		}
		if err := os.Symlink(filepath.Join(r.dir, ".git"), filepath.Join(root, name+".git")); err != nil {
			t.Fatal(err)
		}
	}
	env := append(isolatedEnv(t.TempDir()),
		"GIT_PROJECT_ROOT="+root,
		"GIT_HTTP_EXPORT_ALL=1",
		"GIT_CONFIG_COUNT=2",
		"GIT_CONFIG_KEY_0=uploadpack.allowAnySHA1InWant",
		"GIT_CONFIG_VALUE_0="+boolString(c.AllowAnySHA1InWant),
		"GIT_CONFIG_KEY_1=http.receivepack",
		"GIT_CONFIG_VALUE_1=false",
	)
	backend := &cgi.Handler{Path: bin, Args: []string{"http-backend"}, Root: "/", Env: env, Stderr: logWriter{t}}
	var h http.Handler = backend
	if c.ProtocolV0 {
		h = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			req.Header.Del("Git-Protocol")
			backend.ServeHTTP(w, req)
		})
	}
	if c.Auth != nil {
		next := h
		h = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if !c.Auth(req) {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, req)
		})
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// logWriter sends the server's error output to the test log.
type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Logf("git http-backend: %s", bytes.TrimSpace(p))
	return len(p), nil
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// isolatedEnv is an environment that keeps git away from the machine's and
// the user's configuration.
func isolatedEnv(home string) []string {
	return []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=" + home,
		"LC_ALL=C",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=berth test",
		"GIT_AUTHOR_EMAIL=test@berth.invalid",
		"GIT_COMMITTER_NAME=berth test",
		"GIT_COMMITTER_EMAIL=test@berth.invalid",
	}
}
