package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/api"
	"github.com/berthhq/berth/git"
)

// TestWebhookDeploysPushedCommit is push to deploy from the outside: the
// real binary, git over smart HTTP, Docker and the proxy. A GitHub-shaped
// push webhook, signed with the secret berth generated, deploys exactly
// the pushed commit — not the branch's newer head — and the app answers
// with it through the proxy; a bad signature deploys nothing.
func TestWebhookDeploysPushedCommit(t *testing.T) {
	berthBin, appBin := binaries(t)
	repo, url := appRepo(t, appBin, "hooked", appDockerfile, "hooked-v1")
	v1 := repo.Head()
	s := startServer(t, berthBin)
	s.login()
	s.berth("apps", "create", "hooked", "--git", url, "--branch", "main", "--port", "8080")
	s.berth("domains", "add", "hooked", "hooked.localhost")

	var sec api.WebhookSecret
	mustJSON(t, s.berth("webhooks", "secret", "hooked", "-o", "json"), &sec)
	if !strings.HasPrefix(sec.URL, s.api+"/api/v1/hooks/app_") || len(sec.Secret) != 64 {
		t.Fatalf("webhook secret %+v", sec)
	}

	// Two commits; the webhook names the first of them.
	repo.Write("message.txt", "hooked-v2\n")
	v2 := repo.Commit("v2")
	repo.Write("message.txt", "hooked-v3\n")
	repo.Commit("v3")

	body := pushPayload(t, url, v1, v2)
	post := func(secret, delivery string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest("POST", sec.URL, bytes.NewReader(body))
		name, value := git.Sign(berth.GitHub, body, secret)
		req.Header.Set(name, value)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-GitHub-Delivery", delivery)
		req.Header.Set("User-Agent", "GitHub-Hookshot/e2e")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, b := post(strings.Repeat("x", 32), "forged"); code != http.StatusUnauthorized {
		t.Fatalf("forged delivery: %d %s", code, b)
	}
	code, b := post(sec.Secret, "e2e-1")
	if code != http.StatusAccepted {
		t.Fatalf("signed delivery: %d %s", code, b)
	}
	var res api.HookResult
	mustJSON(t, string(b), &res)
	s.waitStatus("hooked", res.Deployment, berth.StatusLive)
	s.wantAnswer("hooked.localhost", "hooked-v2 greeting= release=v1")
	if d := s.deployment("hooked", res.Deployment); d.Commit != v2 || d.Ref != v2 {
		t.Errorf("deployment ref %s commit %s, want the pushed %s", d.Ref, d.Commit, v2)
	}
	// The redelivery does nothing.
	if code, b := post(sec.Secret, "e2e-1"); code != http.StatusOK || !strings.Contains(string(b), "already received") {
		t.Errorf("redelivery: %d %s", code, b)
	}
	var ds []berth.WebhookDelivery
	mustJSON(t, s.berth("webhooks", "deliveries", "hooked", "-o", "json"), &ds)
	if len(ds) != 2 || ds[0].Outcome != berth.DeliveryDeployed || ds[0].DeploymentNumber != 1 || ds[1].Outcome != berth.DeliveryRejected {
		t.Errorf("deliveries %+v", ds)
	}
	var deps []berth.Deployment
	mustJSON(t, s.berth("deployments", "hooked", "-o", "json"), &deps)
	if len(deps) != 1 {
		t.Errorf("%d deployments, want 1", len(deps))
	}
}

// pushPayload is GitHub's documented push payload (the fixture of package
// git) for a push of main from before to after, to the repository at url.
func pushPayload(t *testing.T, url, before, after string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "git", "testdata", "webhooks", "github-push.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["ref"], m["before"], m["after"] = "refs/heads/main", before, after
	m["repository"] = map[string]any{"full_name": "e2e/hooked", "clone_url": url, "html_url": strings.TrimSuffix(url, ".git")}
	commits := m["commits"].([]any)
	last := commits[len(commits)-1].(map[string]any)
	last["id"] = after
	m["head_commit"].(map[string]any)["id"] = after
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
