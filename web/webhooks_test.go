package web_test

import (
	"bytes"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/git"
)

func TestWebhooksPage(t *testing.T) {
	e := newEnv(t)
	b := e.login(ownerEmail)
	if p := b.post("/apps/new", "/apps/new", url.Values{"name": {"web"}, "git": {"https://github.com/octo-org/shop.git"}, "ref": {"main"}, "port": {"8080"}}); p.status != http.StatusSeeOther {
		t.Fatalf("create app: %d %s", p.status, p.body)
	}
	want(t, b.get("/apps/web"), 200, `id="webhooks-link"`, `href="/apps/web/webhooks"`)
	host := strings.TrimPrefix(e.srv.URL, "http://")
	page := b.get("/apps/web/webhooks")
	want(t, page, 200, `id="webhook-url"`, "http://"+host+"/api/v1/hooks/app_", `id="secret-state"`, "not set", `id="no-deliveries"`, "(main)")
	hookURL := regexp.MustCompile(`id="webhook-url">([^<]+)<`).FindStringSubmatch(page.body)[1]

	// A new secret is shown on the page the form leads to, and never again.
	p := b.submit("/apps/web/webhooks", "/apps/web/webhooks/secret", url.Values{}, "/apps/web/webhooks")
	want(t, p, 200, `id="webhook-secret-code"`, "shown once")
	secret := regexp.MustCompile(`id="webhook-secret-code">([0-9a-f]{64})<`).FindStringSubmatch(p.body)
	if secret == nil {
		t.Fatalf("no secret on the page:\n%s", p.body)
	}
	again := b.get("/apps/web/webhooks")
	want(t, again, 200, `class="status s-live" id="secret-state"`, `id="remove-secret"`)
	if strings.Contains(again.body, secret[1]) {
		t.Error("the secret is shown again")
	}

	// Settings: saved, and a refusal keeps what was typed.
	p = b.post("/apps/web/webhooks", "/apps/web/webhooks", url.Values{"branches": {"main\r\nrelease/*\r\n"}, "paths": {"services/api\n"}})
	if p.status != http.StatusSeeOther || p.location != "/apps/web/webhooks" {
		t.Fatalf("save: %d → %q: %s", p.status, p.location, p.body)
	}
	want(t, b.get("/apps/web/webhooks"), 200, ">main\nrelease/*</textarea>", ">services/api</textarea>")
	want(t, b.post("/apps/web/webhooks", "/apps/web/webhooks", url.Values{"branches": {"-bad;branch"}, "paths": {"../up"}}), http.StatusBadRequest,
		"branch", "-bad;branch</textarea>")

	// A signed push shows up as a delivery, with its deployment.
	body, err := os.ReadFile(filepath.Join("..", "git", "testdata", "webhooks", "github-push.json"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", hookURL, bytes.NewReader(body))
	name, value := git.Sign(berth.GitHub, body, secret[1])
	req.Header.Set(name, value)
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", "web-1")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push: %d", resp.StatusCode)
	}
	want(t, b.get("/apps/web/webhooks"), 200, `data-delivery="web-1"`, `class="status d-deployed"`, `href="/apps/web/deployments/1"`,
		"9f4c7b0d2e1a", "changed services/api/")
	// Removing the secret turns the webhook off.
	if p := b.post("/apps/web/webhooks", "/apps/web/webhooks/secret/remove", url.Values{}); p.status != http.StatusSeeOther {
		t.Fatalf("remove: %d %s", p.status, p.body)
	}
	want(t, b.get("/apps/web/webhooks"), 200, "not set")
	want(t, b.get("/apps/nope/webhooks"), http.StatusNotFound)
}
