package web_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/berthhq/berth"
)

// TestDashboardRepositoryAccess: the repository access page creates,
// shows (public half only), rotates and deletes the deploy key, sets and
// deletes the access token without ever showing it, and pins and resets
// host keys; a viewer sees the page and changes nothing.
func TestDashboardRepositoryAccess(t *testing.T) {
	e := newEnv(t)
	e.addUser("vera", berth.RoleViewer, "")
	b := e.login(ownerEmail)
	if p := b.post("/apps/new", "/apps/new", url.Values{"name": {"web"}, "git": {"git@git.example.com:web.git"}, "ref": {"main"}}); p.status != http.StatusSeeOther {
		t.Fatalf("create app = %d: %s", p.status, p.body)
	}
	want(t, b.get("/apps/web"), 200, `id="access-link"`)
	want(t, b.get("/apps/web/access"), 200, `id="no-key"`, `id="key-create"`, `id="no-token"`, `id="no-host-keys"`)

	pubRE := regexp.MustCompile(`<pre class="mono wrap" id="public-key">(ssh-ed25519 AAAA(?:[A-Za-z0-9+/=]|&#43;)+ berth:web)</pre>`)
	if p := b.post("/apps/web/access", "/apps/web/access/deploy-key", url.Values{}); p.status != http.StatusSeeOther || p.location != "/apps/web/access" {
		t.Fatalf("create key = %d → %q: %s", p.status, p.location, p.body)
	}
	page := b.get("/apps/web/access")
	first := pubRE.FindStringSubmatch(page.body)
	if first == nil || strings.Contains(page.body, "PRIVATE KEY") {
		t.Fatalf("access page after creating the key:\n%s", page.body)
	}
	if p := b.post("/apps/web/access", "/apps/web/access/deploy-key", url.Values{}); p.status != http.StatusConflict {
		t.Errorf("second create = %d, want the API's 409", p.status)
	}
	if p := b.post("/apps/web/access", "/apps/web/access/deploy-key/rotate", url.Values{}); p.status != http.StatusSeeOther {
		t.Fatalf("rotate = %d: %s", p.status, p.body)
	}
	if second := pubRE.FindStringSubmatch(b.get("/apps/web/access").body); second == nil || second[1] == first[1] {
		t.Errorf("rotation kept the key %v", second)
	}

	const token = "glpat-DashB0ardS3cretToken"
	p := b.post("/apps/web/access", "/apps/web/access/token", url.Values{"username": {"oauth2"}, "token": {token + " x"}})
	want(t, p, http.StatusBadRequest, "spaces", `value="oauth2"`)
	if strings.Contains(p.body, token) {
		t.Error("a refused token is shown back")
	}
	if p := b.post("/apps/web/access", "/apps/web/access/token", url.Values{"username": {"oauth2"}, "token": {token}}); p.status != http.StatusSeeOther {
		t.Fatalf("set token = %d: %s", p.status, p.body)
	}
	page = b.get("/apps/web/access")
	want(t, page, 200, `id="token-set"`, "oauth2", `id="token-delete"`)
	if strings.Contains(page.body, token) {
		t.Error("the access page shows the token")
	}

	const line = "git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
	if p := b.post("/apps/web/access", "/apps/web/access/host-keys", url.Values{"known_hosts": {line}}); p.status != http.StatusSeeOther {
		t.Fatalf("pin = %d: %s", p.status, p.body)
	}
	want(t, b.get("/apps/web/access"), 200, `id="host-key-list"`, "git.example.com", "DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU", `id="hosts-reset"`)
	want(t, b.post("/apps/web/access", "/apps/web/access/host-keys", url.Values{"known_hosts": {"junk"}}), http.StatusBadRequest, "known_hosts")

	t.Run("viewer", func(t *testing.T) {
		v := e.login("vera@example.com")
		want(t, v.get("/apps/web/access"), 200, `id="public-key"`, `id="token-set"`)
		for _, path := range []string{"/apps/web/access/deploy-key/rotate", "/apps/web/access/deploy-key/delete", "/apps/web/access/token/delete", "/apps/web/access/host-keys/reset"} {
			want(t, v.post("/apps/web/access", path, url.Values{}), http.StatusForbidden, "permission")
		}
		want(t, v.post("/apps/web/access", "/apps/web/access/token", url.Values{"token": {"x"}}), http.StatusForbidden)
	})

	for _, path := range []string{"/apps/web/access/host-keys/reset", "/apps/web/access/token/delete", "/apps/web/access/deploy-key/delete"} {
		if p := b.post("/apps/web/access", path, url.Values{}); p.status != http.StatusSeeOther {
			t.Fatalf("%s = %d: %s", path, p.status, p.body)
		}
	}
	want(t, b.get("/apps/web/access"), 200, `id="no-key"`, `id="no-token"`, `id="no-host-keys"`)
	want(t, b.get("/audit"), 200, "deploykey.create", "deploykey.delete", "gittoken.set", "hostkeys.reset")
	if strings.Contains(b.get("/audit").body, token) {
		t.Error("the audit page shows the token")
	}
}
