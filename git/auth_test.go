package git_test

import (
	"bytes"
	"context"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/egress"
	"github.com/berthhq/berth/git"
	"github.com/berthhq/berth/git/gittest"
)

func TestNewDeployKey(t *testing.T) {
	priv, pub, err := git.NewDeployKey("berth:web")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(priv)
	if err != nil {
		t.Fatalf("the private half does not parse: %v", err)
	}
	if !strings.HasPrefix(string(priv), "-----BEGIN OPENSSH PRIVATE KEY-----\n") {
		t.Errorf("private half is not in the OpenSSH format: %.40q", priv)
	}
	want := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))) + " berth:web"
	if pub != want || !strings.HasPrefix(pub, "ssh-ed25519 AAAA") {
		t.Errorf("public half %q, want %q", pub, want)
	}
	if berth.KeyFingerprint(pub) != ssh.FingerprintSHA256(signer.PublicKey()) {
		t.Errorf("fingerprint %q, ssh says %q", berth.KeyFingerprint(pub), ssh.FingerprintSHA256(signer.PublicKey()))
	}
	priv2, pub2, err := git.NewDeployKey("berth:web")
	if err != nil || bytes.Equal(priv, priv2) || pub == pub2 {
		t.Errorf("two keys are the same (%v)", err)
	}
	for _, bad := range []string{"a b", "a\nb", "a\x00"} {
		if _, _, err := git.NewDeployKey(bad); err == nil {
			t.Errorf("comment %q accepted", bad)
		}
	}
}

func TestParseHostKeys(t *testing.T) {
	_, key := gittest.NewKey(t)
	now := time.Now()
	good := []struct {
		in    string
		hosts []string
	}{
		{"github.com " + key, []string{"github.com"}},
		{"[git.example.com]:2222 " + key + " a comment", []string{"[git.example.com]:2222"}},
		{"# ssh-keyscan output\n\ngit.example.com,10.0.0.1 " + key + "\n", []string{"git.example.com,10.0.0.1"}},
		{"a.example.com " + key + "\nb.example.com " + key + "\na.example.com " + key, []string{"a.example.com", "b.example.com"}},
		{"*.example.com " + key, []string{"*.example.com"}},
	}
	for _, tt := range good {
		keys, err := git.ParseHostKeys(tt.in, now)
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		var hosts []string
		for _, k := range keys {
			hosts = append(hosts, k.Host)
			if k.Key != key || k.Source != berth.HostKeyUser || !k.CreatedAt.Equal(now) || k.Fingerprint != berth.KeyFingerprint(key) {
				t.Errorf("%q: key %+v", tt.in, k)
			}
		}
		if strings.Join(hosts, " ") != strings.Join(tt.hosts, " ") {
			t.Errorf("%q: hosts %v, want %v", tt.in, hosts, tt.hosts)
		}
	}
	bad := []string{
		"", "# only a comment", key, "github.com", "github.com ssh-ed25519 notbase64!",
		"|1|abc=|def= " + key,
		"@cert-authority *.example.com " + key,
		"@revoked github.com " + key,
		"github.com " + key + "\n@cert-authority * " + key,
		"git$(touch x).example.com " + key,
		"-oProxyCommand=x " + key,
		"host\x00 " + key,
		strings.Repeat("h.example.com "+key+"\n", 1) + func() string {
			var b strings.Builder
			for i := range berth.MaxHostKeys + 1 {
				b.WriteString("h" + strconv.Itoa(i) + ".example.com " + key + "\n")
			}
			return b.String()
		}(),
	}
	for _, in := range bad {
		if keys, err := git.ParseHostKeys(in, now); err == nil {
			t.Errorf("%q accepted: %+v", clipTest(in), keys)
		}
	}
}

func clipTest(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

// sshFetch fetches over ssh with auth and returns the result, the output
// and the error.
func sshFetch(t *testing.T, url string, auth berth.GitAuth) (berth.FetchResult, string, error) {
	t.Helper()
	var out bytes.Buffer
	res, err := (&git.Fetcher{Egress: local}).Fetch(context.Background(), berth.FetchRequest{URL: url, Ref: "main", Dir: filepath.Join(t.TempDir(), "src"), Auth: auth}, &out)
	return res, out.String(), err
}

// TestFetchSSHDeployKey fetches from a real OpenSSH server on loopback
// that lets in one app's deploy key: with that key the fetch works and the
// server's host key is trusted on first use; without a key, with another
// app's key, or when the server's host key changed, it fails with a clear
// Invalid error. The private key never shows in output or errors, and its
// file is gone afterwards.
func TestFetchSSHDeployKey(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where the fetch's private files go
	h := newHistory(t)
	privA, pubA, err := git.NewDeployKey("berth:a")
	if err != nil {
		t.Fatal(err)
	}
	privB, _, err := git.NewDeployKey("berth:b")
	if err != nil {
		t.Fatal(err)
	}
	srv := gittest.ServeSSH(t, map[string]*gittest.Repo{"app": h.repo}, pubA)
	url := srv.URL("app")
	secrets := func(priv []byte) []string {
		return berth.GitAuth{DeployKey: priv}.Secrets()
	}
	check := func(what, out string, err error) {
		t.Helper()
		for _, priv := range [][]byte{privA, privB} {
			for _, s := range secrets(priv) {
				if strings.Contains(out, s) || (err != nil && strings.Contains(err.Error(), s)) {
					t.Errorf("%s: private key material in the output or error", what)
				}
			}
		}
		if left, _ := filepath.Glob(filepath.Join(tmp, "berth-git-*")); len(left) != 0 {
			t.Errorf("%s: %v left behind", what, left)
		}
	}

	// First fetch with A's key: works, and the host key is trusted on
	// first use.
	res, out, err := sshFetch(t, url, berth.GitAuth{DeployKey: privA})
	check("first fetch", out, err)
	if err != nil {
		t.Fatalf("fetch with the deploy key: %v\n%s\nsshd:\n%s", err, out, srv.Log())
	}
	if res.Commit != h.main {
		t.Errorf("commit %s, want %s", res.Commit, h.main)
	}
	if len(res.NewHostKeys) != 1 || res.NewHostKeys[0].Host != srv.Host() || res.NewHostKeys[0].Key != srv.HostKey() ||
		res.NewHostKeys[0].Source != berth.HostKeyFirstUse || res.NewHostKeys[0].Fingerprint != berth.KeyFingerprint(srv.HostKey()) {
		t.Errorf("new host keys %+v, want the server's %s %s", res.NewHostKeys, srv.Host(), srv.HostKey())
	}
	pinned := res.NewHostKeys

	// With the key pinned: works, nothing new.
	res, out, err = sshFetch(t, url, berth.GitAuth{DeployKey: privA, HostKeys: pinned})
	check("pinned fetch", out, err)
	if err != nil || res.Commit != h.main || len(res.NewHostKeys) != 0 {
		t.Errorf("fetch with the pinned host key: %+v, %v\n%s", res, err, out)
	}

	// No key, another app's key: refused, saying what to do.
	for _, tt := range []struct {
		name string
		key  []byte
		want string
	}{
		{"no key", nil, "the app has no deploy key: create one"},
		{"another app's key", privB, "add the app's deploy key"},
	} {
		res, out, err := sshFetch(t, url, berth.GitAuth{DeployKey: tt.key, HostKeys: pinned})
		check(tt.name, out, err)
		t.Logf("%s: %v", tt.name, berth.ErrorMessage(err))
		if !berth.IsKind(err, berth.Invalid) || !strings.Contains(berth.ErrorMessage(err), "permission denied") || !strings.Contains(berth.ErrorMessage(err), tt.want) {
			t.Errorf("%s: %v, want Invalid naming %q", tt.name, err, tt.want)
		}
		if res.Commit != "" || res.NewHostKeys != nil {
			t.Errorf("%s: result %+v", tt.name, res)
		}
	}

	// The server's host key changes: refused, even with the right deploy
	// key, naming the host and the key it offered.
	old := srv.HostKey()
	srv.NewHostKey()
	res, out, err = sshFetch(t, url, berth.GitAuth{DeployKey: privA, HostKeys: pinned})
	check("changed host key", out, err)
	msg := berth.ErrorMessage(err)
	t.Logf("changed host key: %s\noutput: %s", msg, out)
	if !berth.IsKind(err, berth.Invalid) || !strings.Contains(msg, "host key of 127.0.0.1:"+strconv.Itoa(hostPort(t, srv))+" changed") ||
		!strings.Contains(msg, berth.KeyFingerprint(srv.HostKey())) {
		t.Errorf("changed host key: %v", err)
	}
	if res.Commit != "" || len(res.NewHostKeys) != 0 {
		t.Errorf("changed host key: result %+v", res)
	}
	// Reset (no pinned keys): trusted on first use again, the new key.
	res, out, err = sshFetch(t, url, berth.GitAuth{DeployKey: privA})
	check("after reset", out, err)
	if err != nil || len(res.NewHostKeys) != 1 || res.NewHostKeys[0].Key != srv.HostKey() || res.NewHostKeys[0].Key == old {
		t.Errorf("after reset: %+v, %v", res, err)
	}
	// A key the user pins for another host does not cover this one.
	other := berth.HostKey{Host: "git.example.com", Key: old, Source: berth.HostKeyUser}
	res, _, err = sshFetch(t, url, berth.GitAuth{DeployKey: privA, HostKeys: []berth.HostKey{other}})
	if err != nil || len(res.NewHostKeys) != 1 || res.NewHostKeys[0].Host != srv.Host() {
		t.Errorf("with another host's key pinned: %+v, %v", res, err)
	}
	// LsRemote uses the same credentials and checks.
	if got, err := (&git.Fetcher{Egress: local}).LsRemote(context.Background(), url, "feature", berth.GitAuth{DeployKey: privA}); err != nil || got != h.feature {
		t.Errorf("ls-remote with the key: %q, %v", got, err)
	}
	if _, err := (&git.Fetcher{Egress: local}).LsRemote(context.Background(), url, "feature", berth.GitAuth{DeployKey: privA, HostKeys: pinned}); !berth.IsKind(err, berth.Invalid) ||
		!strings.Contains(berth.ErrorMessage(err), "changed") {
		t.Errorf("ls-remote with a changed host key: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "berth-git-*")); len(left) != 0 {
		t.Errorf("%v left behind", left)
	}
}

func hostPort(t *testing.T, srv *gittest.SSHServer) int {
	t.Helper()
	h := strings.TrimSuffix(strings.TrimPrefix(srv.Host(), "[127.0.0.1]:"), "]")
	n, err := strconv.Atoi(h)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// procScan looks through every process's command line for any of needles,
// and through their environments for want; it returns the command lines
// that hold a needle and whether some environment held want.
func procScan(needles []string, want string) (hits []string, envSeen bool) {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		if b, err := os.ReadFile(filepath.Join(d, "cmdline")); err == nil {
			for _, n := range needles {
				if bytes.Contains(b, []byte(n)) {
					hits = append(hits, strings.ReplaceAll(string(b), "\x00", " "))
				}
			}
		}
		if b, err := os.ReadFile(filepath.Join(d, "environ")); err == nil && bytes.Contains(b, []byte(want)) {
			envSeen = true
		}
	}
	return hits, envSeen
}

// TestFetchHTTPToken fetches from a real git http-backend that wants Basic
// credentials (over http on loopback: the token may only go over plain
// http to a loopback address of a server allowing private egress). The
// right token works; a wrong one or none fails clearly; the token never
// shows in output, errors, the repository's configuration or the command
// line of any process while git runs.
func TestFetchHTTPToken(t *testing.T) {
	const token = "glpat-Zx9s3cretAccessToken42"
	h := newHistory(t)
	header := "Basic " + berth.BasicAuth("oauth2", token)
	var mu sync.Mutex
	var scans, envSeen int
	var hits []string
	base := gittest.Config{Auth: func(r *http.Request) bool {
		// While git waits for this answer, its processes are alive: none
		// may show the token on its command line.
		h, seen := procScan([]string{token, berth.BasicAuth("oauth2", token), berth.BasicAuth("", token)}, berth.BasicAuth("oauth2", token))
		mu.Lock()
		scans++
		hits = append(hits, h...)
		if seen {
			envSeen++
		}
		mu.Unlock()
		return r.Header.Get("Authorization") == header
	}}.Serve(t, map[string]*gittest.Repo{"app": h.repo})
	url := base + "/app.git"
	f := &git.Fetcher{Egress: local}
	run := func(auth berth.GitAuth) (berth.FetchResult, string, string, error) {
		dir := filepath.Join(t.TempDir(), "src")
		var out bytes.Buffer
		res, err := f.Fetch(context.Background(), berth.FetchRequest{URL: url, Ref: "main", Dir: dir, Auth: auth}, &out)
		config, _ := os.ReadFile(filepath.Join(dir, ".git", "config"))
		return res, out.String(), string(config), err
	}
	clean := func(what string, texts ...string) {
		t.Helper()
		for _, s := range texts {
			if strings.Contains(s, token) || strings.Contains(s, berth.BasicAuth("oauth2", token)) {
				t.Errorf("%s: the token shows in %q", what, s)
			}
		}
	}

	res, out, config, err := run(berth.GitAuth{Username: "oauth2", Token: token})
	clean("right token", out, config, errString(err))
	if err != nil || res.Commit != h.main {
		t.Fatalf("fetch with the token: %+v, %v\n%s", res, err, out)
	}
	if res.NewHostKeys != nil {
		t.Errorf("an https fetch trusted host keys: %+v", res.NewHostKeys)
	}
	if got, err := f.LsRemote(context.Background(), url, "feature", berth.GitAuth{Username: "oauth2", Token: token}); err != nil || got != h.feature {
		t.Errorf("ls-remote with the token: %q, %v", got, err)
	}

	for _, tt := range []struct {
		name string
		auth berth.GitAuth
		want string
	}{
		{"wrong token", berth.GitAuth{Username: "oauth2", Token: "glpat-wrong-token-0000"}, "refused the app's access token"},
		{"wrong user", berth.GitAuth{Token: token}, "refused the app's access token"},
		{"no token", berth.GitAuth{}, "set an access token"},
	} {
		res, out, config, err := run(tt.auth)
		clean(tt.name, out, config, errString(err))
		t.Logf("%s: %v", tt.name, berth.ErrorMessage(err))
		if !berth.IsKind(err, berth.Invalid) || !strings.Contains(berth.ErrorMessage(err), tt.want) {
			t.Errorf("%s: %v, want Invalid saying %q", tt.name, err, tt.want)
		}
		if res.Commit != "" {
			t.Errorf("%s: commit %s", tt.name, res.Commit)
		}
		if strings.Contains(errString(err), "glpat-wrong-token-0000") || strings.Contains(out, "glpat-wrong-token-0000") {
			t.Errorf("%s: the wrong token shows: %v %s", tt.name, err, out)
		}
	}

	mu.Lock()
	defer mu.Unlock()
	if scans < 4 {
		t.Errorf("the server saw %d requests", scans)
	}
	if len(hits) != 0 {
		t.Errorf("the token is on a command line: %q", hits)
	}
	if envSeen == 0 {
		t.Error("no process environment held the credentials: the scan sees nothing of git's processes")
	}
}

// TestTokenRefusals: a token goes over plain http only to loopback, and
// never together with credentials in the URL; git does not run.
func TestTokenRefusals(t *testing.T) {
	to := func(addr string) egress.Policy {
		return egress.Policy{AllowPrivate: true, Resolve: func(context.Context, string) ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr(addr)}, nil
		}}
	}
	auth := berth.GitAuth{Token: "s3cret-token-value"}
	for _, tt := range []struct {
		url    string
		policy egress.Policy
		want   string
	}{
		{"http://git.example.com/a.git", to("10.0.0.1"), "over plain http"},
		{"http://git.example.com/a.git", to("203.0.113.7"), "over plain http"},
		{"http://127.0.0.1:1/a.git", egress.Policy{}, "--allow-private-egress"},
		{"https://user:pw@git.example.com/a.git", to("203.0.113.7"), "carries credentials"},
		{"https://tok@git.example.com/a.git", to("203.0.113.7"), "carries credentials"},
		{"https://git.example.com/a.git", to("203.0.113.7"), "control characters"}, // checked again where used
	} {
		var out bytes.Buffer
		a := auth
		if tt.want == "control characters" {
			a.Token += "\r\nX-Injected: s3cret"
		}
		_, err := (&git.Fetcher{Egress: tt.policy}).Fetch(context.Background(), berth.FetchRequest{URL: tt.url, Ref: "main", Dir: t.TempDir(), Auth: a}, &out)
		if !berth.IsKind(err, berth.Invalid) || !strings.Contains(berth.ErrorMessage(err), tt.want) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: %v, want Invalid saying %q", tt.url, err, tt.want)
		}
		if out.Len() != 0 {
			t.Errorf("%s: git ran: %q", tt.url, out.String())
		}
	}
}
