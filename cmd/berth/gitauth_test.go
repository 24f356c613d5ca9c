package main

import (
	"context"
	"strings"
	"testing"

	"github.com/berthhq/berth"
)

// TestAppsCredentials drives deploy-key, git-credentials and host-keys
// through the real API: the public key is shown and rotated, the token is
// read from stdin and never printed, host keys are pinned and reset.
func TestAppsCredentials(t *testing.T) {
	c := newCLI(t)
	c.login()
	c.ok("apps", "create", "web", "--git", "ssh://git@git.example.com/web.git")

	first, errOut, err := c.run("apps", "deploy-key", "web")
	if err != nil || !strings.HasPrefix(first, "ssh-ed25519 AAAA") || !strings.HasSuffix(first, " berth:web\n") || strings.Count(first, "\n") != 1 {
		t.Fatalf("deploy-key: %q %v", first, err)
	}
	if !strings.Contains(errOut, "Created a deploy key for web") {
		t.Errorf("stderr %q", errOut)
	}
	if again := c.ok("apps", "deploy-key", "web"); again != first {
		t.Errorf("second deploy-key %q, want the same key %q", again, first)
	}
	k := jsonOf[berth.DeployKey](t, c.ok("apps", "deploy-key", "web", "-o", "json"))
	if k.PublicKey+"\n" != first || k.Fingerprint != berth.KeyFingerprint(k.PublicKey) {
		t.Errorf("json %+v", k)
	}
	rotated := c.ok("apps", "deploy-key", "web", "--rotate")
	if rotated == first || !strings.HasPrefix(rotated, "ssh-ed25519 ") {
		t.Errorf("rotated %q", rotated)
	}
	if msg := c.fail("apps", "deploy-key", "web", "--rotate", "--delete"); !strings.Contains(msg, "either") {
		t.Errorf("both flags: %s", msg)
	}
	c.ok("apps", "deploy-key", "web", "--delete")
	if msg := c.fail("apps", "deploy-key", "web", "--delete"); !strings.Contains(msg, "no deploy key") {
		t.Errorf("second delete: %s", msg)
	}
	if msg := c.fail("apps", "deploy-key", "nope"); !strings.Contains(msg, "nope") {
		t.Errorf("missing app: %s", msg)
	}

	const token = "ghp_CliT0kenFromStdin123"
	if msg := c.fail("apps", "git-credentials", "set", "web"); !strings.Contains(msg, "--token-stdin") {
		t.Errorf("set without --token-stdin: %s", msg)
	}
	c.stdin = "\n"
	if msg := c.fail("apps", "git-credentials", "set", "web", "--token-stdin"); !strings.Contains(msg, "no token") {
		t.Errorf("empty stdin: %s", msg)
	}
	c.stdin = token + "\n"
	out, errOut, err := c.run("apps", "git-credentials", "set", "web", "--username", "oauth2", "--token-stdin")
	if err != nil || !strings.Contains(out, "user name oauth2") || strings.Contains(out+errOut, token) {
		t.Errorf("set: %q %q %v", out, errOut, err)
	}
	c.stdin = ""
	show := c.ok("apps", "git-credentials", "show", "web")
	if !strings.Contains(show, "set (never shown)") || !strings.Contains(show, "oauth2") || strings.Contains(show, token) {
		t.Errorf("show:\n%s", show)
	}
	if cr := jsonOf[berth.GitCredentials](t, c.ok("apps", "git-credentials", "show", "web", "-o", "json")); !cr.Set || cr.Username != "oauth2" {
		t.Errorf("show json %+v", cr)
	}
	apps, err := c.st.AllApps(context.Background())
	if err != nil || len(apps) != 1 {
		t.Fatal(apps, err)
	}
	a := apps[0]
	if auth, err := c.st.GitAuth(context.Background(), a.TeamID, a.ID); err != nil || auth.Token != token {
		t.Errorf("stored token: %v, %v (want the stdin token without its newline)", auth.Token == token, err)
	}
	c.stdin = "bad token"
	if msg := c.fail("apps", "git-credentials", "set", "web", "--token-stdin"); !strings.Contains(msg, "spaces") || strings.Contains(msg, "bad token") {
		t.Errorf("bad token: %s", msg)
	}
	c.ok("apps", "git-credentials", "delete", "web")
	if out := c.ok("apps", "git-credentials", "show", "web"); !strings.Contains(out, "no access token") {
		t.Errorf("after delete: %s", out)
	}

	if out := c.ok("apps", "host-keys", "list", "web"); !strings.Contains(out, "first use") {
		t.Errorf("no host keys: %s", out)
	}
	c.stdin = "# from ssh-keyscan\ngit.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
	out = c.ok("apps", "host-keys", "set", "web", "--file", "-")
	c.stdin = ""
	got := rows(out)
	if len(got) != 2 || strings.Join(got[1][:4], " ") != "git.example.com ssh-ed25519 SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU user" {
		t.Errorf("set:\n%s", out)
	}
	if msg := c.fail("apps", "host-keys", "set", "web"); !strings.Contains(msg, "--file") {
		t.Errorf("set without --file: %s", msg)
	}
	c.stdin = "not a key line"
	if msg := c.fail("apps", "host-keys", "set", "web", "--file", "-"); !strings.Contains(msg, "known_hosts") {
		t.Errorf("bad line: %s", msg)
	}
	c.stdin = ""
	if keys := jsonOf[[]berth.HostKey](t, c.ok("apps", "host-keys", "list", "web", "-o", "json")); len(keys) != 1 {
		t.Errorf("list json: %+v", keys)
	}
	c.ok("apps", "host-keys", "reset", "web")
	if keys := jsonOf[[]berth.HostKey](t, c.ok("apps", "host-keys", "list", "web", "-o", "json")); len(keys) != 0 {
		t.Errorf("after reset: %+v", keys)
	}
}
