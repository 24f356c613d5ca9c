package git_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/engine"
	"github.com/berthhq/berth/git"
	"github.com/berthhq/berth/git/gittest"
)

var _ engine.Source = (*git.Fetcher)(nil)

// history is a repository with two commits on main, a branch and tags.
type history struct {
	repo                     *gittest.Repo
	first, main, feature     string // commit IDs
	annotated, lightweighted string
}

func newHistory(t *testing.T) history {
	t.Helper()
	r := gittest.NewRepo(t)
	var h history
	h.repo = r
	r.Write("version.txt", "1")
	h.first = r.Commit("first")
	r.Tag("v1.0.0")
	h.annotated = h.first
	r.Write("version.txt", "2")
	h.main = r.Commit("second")
	r.Git("tag", "light")
	h.lightweighted = h.main
	r.Branch("feature")
	r.Write("version.txt", "feature")
	r.Write("src/app.go", "package main\n")
	h.feature = r.Commit("feature work")
	r.Branch("main")
	return h
}

// fetch runs Fetch into a new directory and returns it with the output.
func fetch(t *testing.T, f *git.Fetcher, url, ref string) (commit, dir, out string, err error) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "src")
	var buf bytes.Buffer
	res, err := f.Fetch(context.Background(), berth.FetchRequest{URL: url, Ref: ref, Dir: dir}, &buf)
	commit = res.Commit
	return commit, dir, buf.String(), err
}

func readFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFetchRefs(t *testing.T) {
	h := newHistory(t)
	base := gittest.Serve(t, map[string]*gittest.Repo{"app": h.repo})
	url := base + "/app.git"
	tests := []struct {
		ref, commit, version string
	}{
		{"main", h.main, "2"},
		{"feature", h.feature, "feature"},
		{"v1.0.0", h.annotated, "1"},
		{"light", h.lightweighted, "2"},
		{"HEAD", h.main, "2"},
		{"refs/heads/feature", h.feature, "feature"},
		{"heads/main", h.main, "2"},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			commit, dir, out, err := fetch(t, &git.Fetcher{Egress: local}, url, tt.ref)
			if err != nil {
				t.Fatalf("Fetch: %v\n%s", err, out)
			}
			if commit != tt.commit {
				t.Errorf("commit = %s, want %s", commit, tt.commit)
			}
			if got := readFile(t, dir, "version.txt"); got != tt.version {
				t.Errorf("version.txt = %q, want %q", got, tt.version)
			}
			if !strings.Contains(out, "From "+base) {
				t.Errorf("progress output lacks the fetch:\n%s", out)
			}
			if got, err := (&git.Fetcher{Egress: local}).LsRemote(context.Background(), url, tt.ref, berth.GitAuth{}); err != nil || got != tt.commit {
				t.Errorf("LsRemote = %s, %v; want %s", got, err, tt.commit)
			}
		})
	}
}

func TestFetchCommit(t *testing.T) {
	h := newHistory(t)
	tests := []struct {
		name    string
		server  gittest.Config
		shallow bool // a commit that is no branch tip can be fetched alone
	}{
		{"protocol v2", gittest.Config{}, true},
		{"v0 allowAnySHA1InWant", gittest.Config{ProtocolV0: true, AllowAnySHA1InWant: true}, true},
		{"v0 advertised refs only", gittest.Config{ProtocolV0: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := tt.server.Serve(t, map[string]*gittest.Repo{"app": h.repo}) + "/app.git"
			for want, shallow := range map[string]bool{h.first: tt.shallow, h.feature: true} {
				commit, dir, out, err := fetch(t, &git.Fetcher{Egress: local}, url, want)
				if err != nil {
					t.Fatalf("Fetch %s: %v\n%s", want, err, out)
				}
				if commit != want {
					t.Errorf("commit = %s, want %s", commit, want)
				}
				_, err = os.Stat(filepath.Join(dir, ".git", "shallow"))
				if got := err == nil; got != shallow {
					t.Errorf("%s: shallow checkout = %v, want %v", want, got, shallow)
				}
			}
			// An abbreviated ID is found among the branches.
			commit, _, out, err := fetch(t, &git.Fetcher{Egress: local}, url, h.feature[:12])
			if err != nil || commit != h.feature {
				t.Errorf("Fetch %s = %s, %v; want %s\n%s", h.feature[:12], commit, err, h.feature, out)
			}
			// A commit the server does not have.
			missing := strings.Repeat("1", 40)
			_, _, _, err = fetch(t, &git.Fetcher{Egress: local}, url, missing)
			wantMsg := `ref "` + missing + `" not found in ` + url
			if !berth.IsKind(err, berth.Invalid) || berth.ErrorMessage(err) != wantMsg {
				t.Errorf("Fetch missing commit: %v (kind %s), want %q", err, berth.ErrorKind(err), wantMsg)
			}
		})
	}
}

func TestFetchMissing(t *testing.T) {
	h := newHistory(t)
	base := gittest.Serve(t, map[string]*gittest.Repo{"app": h.repo})
	tests := []struct {
		name, url, ref, msg string
		kind                berth.Kind
	}{
		{"ref", base + "/app.git", "nope", `ref "nope" not found in ` + base + "/app.git", berth.Invalid},
		{"abbreviated commit", base + "/app.git", "abcdef1", `ref "abcdef1" not found in ` + base + "/app.git", berth.Invalid},
		{"repository", base + "/other.git", "main", "not found", berth.Invalid},
		{"http server", "http://127.0.0.1:1/app.git", "main", "127.0.0.1", berth.Unavailable},
		{"ssh server", "ssh://git@127.0.0.1:1/app.git", "main", "Connection refused", berth.Unavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, out, err := fetch(t, &git.Fetcher{Egress: local}, tt.url, tt.ref)
			if err == nil {
				t.Fatalf("Fetch = nil error, want one\n%s", out)
			}
			if k := berth.ErrorKind(err); k != tt.kind {
				t.Errorf("kind = %s, want %s (%v)", k, tt.kind, err)
			}
			if msg := berth.ErrorMessage(err); !strings.Contains(msg, tt.msg) {
				t.Errorf("message = %q, want it to contain %q", msg, tt.msg)
			}
		})
	}
	t.Run("ls-remote", func(t *testing.T) {
		_, err := (&git.Fetcher{Egress: local}).LsRemote(context.Background(), base+"/app.git", "nope", berth.GitAuth{})
		if want := `ref "nope" not found in ` + base + "/app.git"; berth.ErrorMessage(err) != want {
			t.Errorf("LsRemote: %v, want %q", err, want)
		}
	})
}

func TestFetchNewCommit(t *testing.T) {
	h := newHistory(t)
	url := gittest.Serve(t, map[string]*gittest.Repo{"app": h.repo}) + "/app.git"
	f := &git.Fetcher{Egress: local}
	commit, _, _, err := fetch(t, f, url, "main")
	if err != nil || commit != h.main {
		t.Fatalf("Fetch = %s, %v; want %s", commit, err, h.main)
	}
	h.repo.Write("version.txt", "3")
	next := h.repo.Commit("third")
	commit, dir, _, err := fetch(t, f, url, "main")
	if err != nil || commit != next {
		t.Fatalf("Fetch after a new commit = %s, %v; want %s", commit, err, next)
	}
	if got := readFile(t, dir, "version.txt"); got != "3" {
		t.Errorf("version.txt = %q, want 3", got)
	}
}

func TestFetchIntoNonEmptyDir(t *testing.T) {
	h := newHistory(t)
	url := gittest.Serve(t, map[string]*gittest.Repo{"app": h.repo}) + "/app.git"
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := (&git.Fetcher{Egress: local}).Fetch(context.Background(), berth.FetchRequest{URL: url, Ref: "main", Dir: dir}, nil); err == nil {
		t.Fatal("Fetch into a non-empty directory succeeded")
	}
}

func TestFetchLocal(t *testing.T) {
	h := newHistory(t)
	commit, dir, out, err := fetch(t, &git.Fetcher{Egress: local, AllowLocal: true}, h.repo.Dir(), "feature")
	if err != nil || commit != h.feature {
		t.Fatalf("Fetch local = %s, %v; want %s\n%s", commit, err, h.feature, out)
	}
	if got := readFile(t, dir, "src/app.go"); got != "package main\n" {
		t.Errorf("src/app.go = %q", got)
	}
	commit, _, out, err = fetch(t, &git.Fetcher{Egress: local, AllowLocal: true}, h.repo.Dir(), h.first)
	if err != nil || commit != h.first {
		t.Fatalf("Fetch local commit = %s, %v; want %s\n%s", commit, err, h.first, out)
	}
	_, _, _, err = fetch(t, &git.Fetcher{Egress: local}, h.repo.Dir(), "main")
	if !berth.IsKind(err, berth.Invalid) {
		t.Fatalf("Fetch local without AllowLocal: %v, want an invalid error", err)
	}
}

func TestFetchHidesCredentials(t *testing.T) {
	h := newHistory(t)
	base := gittest.Serve(t, map[string]*gittest.Repo{"app": h.repo})
	hostPort := strings.TrimPrefix(base, "http://")
	for _, tt := range []struct {
		name, url, ref string
		ok             bool
	}{
		{"fetched", "http://deploy:s3cr%2Fet@" + hostPort + "/app.git", "main", true},
		{"missing repository", "http://deploy:s3cr%2Fet@" + hostPort + "/other.git", "main", false},
		{"missing ref", "http://deploy:s3cr%2Fet@" + hostPort + "/app.git", "nope", false},
		{"token as user", "http://s3cr%2Fet@" + hostPort + "/other.git", "main", false},
		{"unreachable", "http://deploy:s3cr%2Fet@127.0.0.1:1/app.git", "main", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			f := &git.Fetcher{Egress: local, Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
			_, _, out, err := fetch(t, f, tt.url, tt.ref)
			if (err == nil) != tt.ok {
				t.Fatalf("Fetch: %v, want ok=%v\n%s", err, tt.ok, out)
			}
			_, lsErr := f.LsRemote(context.Background(), tt.url, tt.ref, berth.GitAuth{})
			for what, s := range map[string]string{"output": out, "log": logs.String(), "error": errString(err), "ls-remote error": errString(lsErr)} {
				if strings.Contains(s, "s3cr") {
					t.Errorf("%s shows the password: %s", what, s)
				}
			}
			if !strings.Contains(logs.String(), "***") {
				t.Errorf("log does not name the redacted URL: %s", logs.String())
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestFetchHostileInput runs inputs that would create a canary file if any
// part of them reached a shell or were taken for an option.
func TestFetchHostileInput(t *testing.T) {
	h := newHistory(t)
	base := gittest.Serve(t, map[string]*gittest.Repo{"app": h.repo})
	canary := filepath.Join(t.TempDir(), "pwned")
	touch := "touch " + canary
	ifs := "touch${IFS}" + canary
	good := base + "/app.git"
	tests := []struct{ url, ref string }{
		{"--upload-pack=" + touch, "main"},
		{"--upload-pack=" + ifs, "main"},
		{"-u" + ifs, "main"},
		{"ext::sh -c " + strings.ReplaceAll(touch, " ", "% "), "main"},
		{"ext::sh${IFS}-c${IFS}" + ifs, "main"},
		{"ext::" + ifs, "main"},
		{"fd::0", "main"},
		{"file:///etc", "main"},
		{"file://" + h.repo.Dir(), "main"},
		{"-oProxyCommand=" + touch, "main"},
		{"ssh://-oProxyCommand=" + ifs + "/y", "main"},
		{"ssh://%2doProxyCommand=" + ifs + "/y", "main"},
		{"ssh://-oProxyCommand=" + ifs + "@127.0.0.1/y", "main"},
		{"git@-oProxyCommand=" + ifs + ":y", "main"},
		{"-oProxyCommand=" + ifs + "@127.0.0.1:y", "main"},
		{"git@127.0.0.1:--upload-pack=" + ifs, "main"},
		{base + "/$(" + touch + ")", "main"},
		{base + "/$(" + ifs + ")", "main"},
		{base + "/`" + ifs + "`", "main"},
		{base + "/a;" + ifs, "main"},
		{base + "/%24(" + strings.ReplaceAll(touch, " ", "%20") + ")", "main"},
		{base + "/%60" + strings.ReplaceAll(touch, " ", "%20") + "%60", "main"},
		{"ssh://git@127.0.0.1:1/%24(" + strings.ReplaceAll(touch, " ", "%20") + ")", "main"},
		{"ssh://git@127.0.0.1:1/%27;" + strings.ReplaceAll(touch, " ", "%20") + ";%27", "main"},
		{good + "\n--upload-pack=" + touch, "main"},
		{good + " --upload-pack=" + touch, "main"},
		{good, "--upload-pack=" + touch},
		{good, "--upload-pack=" + ifs},
		{good, "$(" + touch + ")"},
		{good, "$(" + ifs + ")"},
		{good, "main;" + ifs},
		{good, "main\n" + touch},
		{good, "main:refs/heads/x"},
		{good, "-c"},
		{good, "main`" + ifs + "`"},
	}
	for _, tt := range tests {
		for _, allowLocal := range []bool{false, true} {
			_, _, out, err := fetch(t, &git.Fetcher{Egress: local, AllowLocal: allowLocal}, tt.url, tt.ref)
			if err == nil {
				t.Errorf("Fetch(%q, %q) succeeded\n%s", tt.url, tt.ref, out)
			}
		}
	}
	if _, err := os.Stat(canary); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("canary %s exists (or cannot be checked: %v): an input reached a shell", canary, err)
	}
}

// TestFetchCancel cancels a fetch from a server that never answers: Fetch
// returns the context's error, and git's helper process that holds the
// connection dies with it.
func TestFetchCancel(t *testing.T) {
	gittest.Git(t)
	started := make(chan struct{})
	gone := make(chan struct{})
	release := make(chan struct{}) // lets the handler end if the test fails
	var first atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if first.Swap(true) {
			http.NotFound(w, r)
			return
		}
		close(started)
		select {
		case <-r.Context().Done():
			close(gone)
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := (&git.Fetcher{Egress: local}).Fetch(ctx, berth.FetchRequest{URL: srv.URL + "/app.git", Ref: "main", Dir: t.TempDir()}, nil)
		errc <- err
	}()
	wait := func(what string, c <-chan struct{}) {
		t.Helper()
		select {
		case <-c:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s did not happen within 30s", what)
		}
	}
	wait("git's request", started)
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Fetch = %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Fetch did not return within 30s of cancellation")
	}
	wait("closing git's connection", gone)
}
