package main

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/api"
	"github.com/berthhq/berth/git"
)

func TestWebhooks(t *testing.T) {
	c := newCLI(t)
	c.login()
	// The repository the push fixture names: a delivery about another
	// one is refused.
	c.ok("apps", "create", "web", "--git", "https://github.com/octo-org/shop.git")

	out := c.ok("webhooks", "show", "web")
	if !strings.Contains(out, "Secret:   not set") || !strings.Contains(out, "Branches: main (the app's branch)") || !strings.Contains(out, c.url+"/api/v1/hooks/app_") {
		t.Errorf("show:\n%s", out)
	}
	sec := jsonOf[api.WebhookSecret](t, c.ok("webhooks", "secret", "web", "-o", "json"))
	if len(sec.Secret) != 64 || !strings.HasPrefix(sec.URL, c.url+"/api/v1/hooks/app_") {
		t.Fatalf("secret %+v", sec)
	}
	if out := c.ok("webhooks", "secret", "web"); !strings.Contains(out, "shown this once") || strings.Contains(out, sec.Secret) {
		t.Errorf("secret again:\n%s", out)
	}

	// A user's own secret, from the environment.
	c.env["BERTH_WEBHOOK_SECRET"] = "my-own-webhook-secret"
	out = c.ok("webhooks", "set", "web", "--branch", "main", "--branch", "release/*", "--path", "services/api", "--secret")
	if !strings.Contains(out, "Branches: main, release/*") || !strings.Contains(out, "Paths:    services/api") || !strings.Contains(out, "Secret:   set") {
		t.Errorf("set:\n%s", out)
	}
	// Lists not named keep their value.
	out = c.ok("webhooks", "set", "web", "--clear-paths")
	if !strings.Contains(out, "Branches: main, release/*") || !strings.Contains(out, "Paths:    all") {
		t.Errorf("clear paths:\n%s", out)
	}
	if msg := c.fail("webhooks", "set", "web", "--branch", "-x;y"); !strings.Contains(msg, "branch") {
		t.Errorf("bad branch: %q", msg)
	}

	// A signed push deploys; the deliveries list shows it.
	body, err := os.ReadFile(filepath.Join("..", "..", "git", "testdata", "webhooks", "github-push.json"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", sec.URL, bytes.NewReader(body))
	name, value := git.Sign(berth.GitHub, body, "my-own-webhook-secret")
	req.Header.Set(name, value)
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", "cli-1")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push: %d", resp.StatusCode)
	}
	table := c.ok("webhooks", "deliveries", "web")
	if r := rows(table); len(r) != 2 || r[0][0] != "RECEIVED" || !strings.Contains(table, "github") || !strings.Contains(table, "deployed") || !strings.Contains(table, "#1") || !strings.Contains(table, "9f4c7b0d2e1a") {
		t.Errorf("deliveries:\n%s", table)
	}
	ds := jsonOf[[]berth.WebhookDelivery](t, c.ok("webhooks", "deliveries", "web", "-o", "json"))
	if len(ds) != 1 || ds[0].DeliveryID != "cli-1" || ds[0].Outcome != berth.DeliveryDeployed {
		t.Errorf("deliveries -o json: %+v", ds)
	}

	out = c.ok("webhooks", "set", "web", "--remove-secret")
	if !strings.Contains(out, "Secret:   not set") {
		t.Errorf("remove secret:\n%s", out)
	}
	delete(c.env, "BERTH_WEBHOOK_SECRET")
	if msg := c.fail("webhooks", "set", "web", "--secret"); !strings.Contains(msg, "BERTH_WEBHOOK_SECRET") {
		t.Errorf("secret without a source: %q", msg)
	}
	if msg := c.fail("webhooks", "show", "nope"); !strings.Contains(msg, "nope") {
		t.Errorf("missing app: %q", msg)
	}
}
