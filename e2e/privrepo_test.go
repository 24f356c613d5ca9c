package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/git/gittest"
)

// TestPrivateRepoOverSSH deploys from a private repository served by a real
// OpenSSH server on loopback, through the real binary and Docker: without a
// deploy key the deploy fails saying so; with the app's key (made by berth,
// added to the server) it goes live and the server's host key is trusted
// on first use; a changed host key is refused while the live release keeps
// serving; after a reset the deploy works again.
func TestPrivateRepoOverSSH(t *testing.T) {
	berthBin, appBin := binaries(t)
	app, err := os.ReadFile(appBin)
	if err != nil {
		t.Fatal(err)
	}
	repo := gittest.NewRepo(t)
	repo.Write("Dockerfile", appDockerfile)
	repo.Write("app", string(app))
	if err := os.Chmod(filepath.Join(repo.Dir(), "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	repo.Write("message.txt", "private-v1\n")
	repo.Commit("v1")
	srv := gittest.ServeSSH(t, map[string]*gittest.Repo{"private": repo}) // lets nobody in yet

	s := startServer(t, berthBin)
	s.login()
	s.berth("apps", "create", "priv", "--git", srv.URL("private"), "--branch", "main", "--port", "8080")
	s.berth("domains", "add", "priv", "priv.localhost")

	if errOut := s.berthErr("deploy", "priv"); !strings.Contains(errOut, "no deploy key") {
		t.Errorf("deploy without a deploy key: %s", errOut)
	}

	pub := strings.TrimSpace(s.berth("apps", "deploy-key", "priv"))
	if !strings.HasPrefix(pub, "ssh-ed25519 ") || !strings.HasSuffix(pub, " berth:priv") {
		t.Fatalf("deploy key %q", pub)
	}
	srv.Authorize(pub)
	out := s.berth("deploy", "priv")
	s.wantAnswer("priv.localhost", "private-v1 greeting= release=v1")
	if !strings.Contains(out, "trusting the ssh host key of "+srv.Host()+" on first use") {
		t.Errorf("the deploy does not say it trusted the host key:\n%s", out)
	}
	var keys []berth.HostKey
	mustJSON(t, s.berth("apps", "host-keys", "list", "priv", "-o", "json"), &keys)
	if len(keys) != 1 || keys[0].Host != srv.Host() || keys[0].Key != srv.HostKey() || keys[0].Source != berth.HostKeyFirstUse {
		t.Errorf("host keys %+v, want the server's %s", keys, srv.HostKey())
	}
	for _, text := range []string{out, s.serverLog()} {
		if strings.Contains(text, "PRIVATE KEY") || strings.Contains(text, "deploy_key") {
			t.Errorf("key material or its file named in:\n%s", text)
		}
	}

	// The server's host key changes: refused, the live release serves on.
	srv.NewHostKey()
	repo.Write("message.txt", "private-v2\n")
	repo.Commit("v2")
	if errOut := s.berthErr("deploy", "priv"); !strings.Contains(errOut, "host key of 127.0.0.1:") || !strings.Contains(errOut, "changed") {
		t.Errorf("deploy with a changed host key: %s", errOut)
	}
	s.wantAnswer("priv.localhost", "private-v1 greeting= release=v1")

	// Reset: trusted on first use again, and the deploy goes through.
	s.berth("apps", "host-keys", "reset", "priv")
	s.berth("deploy", "priv")
	s.wantAnswer("priv.localhost", "private-v2 greeting= release=v2")
	mustJSON(t, s.berth("apps", "host-keys", "list", "priv", "-o", "json"), &keys)
	if len(keys) != 1 || keys[0].Key != srv.HostKey() {
		t.Errorf("host keys after reset %+v, want the new %s", keys, srv.HostKey())
	}
}
