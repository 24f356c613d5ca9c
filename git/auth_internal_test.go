package git

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/egress"
)

// TestSSHSetupFiles: the deploy key and ssh's files live in the fetch's
// private directory, readable by the server's user only, and go with it;
// GIT_SSH_COMMAND holds nothing but the quoted path of berth's ssh
// configuration, and that configuration never names the machine's keys or
// agent.
func TestSSHSetupFiles(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	priv, _, err := NewDeployKey("berth:web")
	if err != nil {
		t.Fatal(err)
	}
	f := &Fetcher{Egress: egress.Policy{AllowPrivate: true}}
	host := berth.HostKey{Host: "[127.0.0.1]:2222", Key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGhvc3Qta2V5LW1hdGVyaWFsLWZvci10ZXN0cy0xMjM0"}
	r, err := f.prepare(context.Background(), "ssh://git@127.0.0.1:2222/app.git", nil, berth.GitAuth{DeployKey: priv, HostKeys: []berth.HostKey{host}})
	if err != nil {
		t.Fatal(err)
	}
	mode := func(p string) os.FileMode {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return st.Mode().Perm()
	}
	if m := mode(r.home); m != 0o700 {
		t.Errorf("fetch directory mode %o", m)
	}
	for _, name := range []string{"deploy_key", "known_hosts", "ssh_config"} {
		if m := mode(filepath.Join(r.home, name)); m != 0o600 {
			t.Errorf("%s mode %o", name, m)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(r.home, "deploy_key")); string(b) != string(priv) {
		t.Error("the key file does not hold the key")
	}
	if b, _ := os.ReadFile(filepath.Join(r.home, "known_hosts")); string(b) != host.Line()+"\n" {
		t.Errorf("known_hosts: %q", b)
	}
	cfg, _ := os.ReadFile(filepath.Join(r.home, "ssh_config"))
	for _, want := range []string{"IdentityFile " + filepath.Join(r.home, "deploy_key") + "\n", "IdentitiesOnly yes\n", "BatchMode yes\n", "IdentityAgent none\n",
		"StrictHostKeyChecking accept-new\n", "GlobalKnownHostsFile /dev/null\n"} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("ssh config lacks %q:\n%s", want, cfg)
		}
	}
	want := "GIT_SSH_COMMAND=ssh -F '" + filepath.Join(r.home, "ssh_config") + "'"
	if !slices.Contains(r.env, want) {
		t.Errorf("env %q lacks %q", r.env, want)
	}
	for _, e := range r.env {
		if strings.Contains(e, "PRIVATE KEY") {
			t.Errorf("the key is in the environment: %q", e)
		}
	}
	r.close()
	if _, err := os.Stat(r.home); !os.IsNotExist(err) {
		t.Errorf("fetch directory left: %v", err)
	}

	// No deploy key: ssh is told to use none, not the server user's own.
	r, err = f.prepare(context.Background(), "git@127.0.0.1:app.git", nil, berth.GitAuth{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	cfg, _ = os.ReadFile(filepath.Join(r.home, "ssh_config"))
	if !strings.Contains(string(cfg), "IdentityFile none\n") {
		t.Errorf("ssh config without a key:\n%s", cfg)
	}
	if _, err := os.Stat(filepath.Join(r.home, "deploy_key")); !os.IsNotExist(err) {
		t.Errorf("a key file without a key: %v", err)
	}

	// A deploy key is not written for an https URL.
	r2, err := f.prepare(context.Background(), "https://127.0.0.1/app.git", nil, berth.GitAuth{DeployKey: priv})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.close()
	if _, err := os.Stat(filepath.Join(r2.home, "deploy_key")); !os.IsNotExist(err) {
		t.Errorf("a key file for an https URL: %v", err)
	}

	// A temporary directory whose path a shell would interpret is refused.
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "a b'$(x)"))
	if err := os.MkdirAll(os.Getenv("TMPDIR"), 0o700); err != nil {
		t.Fatal(err)
	}
	if r, err := f.prepare(context.Background(), "ssh://git@127.0.0.1/app.git", nil, berth.GitAuth{}); err == nil {
		r.close()
		t.Error("a temporary directory with shell characters was used")
	}
}
