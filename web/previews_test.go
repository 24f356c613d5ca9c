package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/auth"
)

// apiDo calls the API with an admin token of the owner.
func (e *env) apiDo(method, path string, body any) *http.Response {
	e.t.Helper()
	ctx := context.Background()
	owner, err := e.st.UserByEmail(ctx, ownerEmail)
	if err != nil {
		e.t.Fatal(err)
	}
	teams, err := e.st.TeamsOf(ctx, owner.ID)
	if err != nil || len(teams) == 0 {
		e.t.Fatalf("teams: %v", err)
	}
	tok, _, err := auth.IssueToken(ctx, e.st, teams[0].Team.ID, owner.ID, "test", []berth.Scope{berth.ScopeAdmin}, nil, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestPreviewsPage(t *testing.T) {
	e := newEnv(t)
	e.addUser("vera", berth.RoleViewer, "")
	b := e.login(ownerEmail)
	if r := e.apiDo("POST", "/api/v1/apps", map[string]any{"name": "web", "source": map[string]any{"git": "https://git.example.com/web.git"}}); r.StatusCode != http.StatusCreated {
		t.Fatalf("create app: %d", r.StatusCode)
	}
	e.apiDo("POST", "/api/v1/apps/web/domains", map[string]string{"host": "web.example.com"})
	want(t, b.get("/apps/web"), 200, `href="/apps/web/previews"`)
	want(t, b.get("/apps/web/previews"), 200, `id="no-previews"`, "Previews are off")

	// Settings from the form; the token is write-only.
	p := b.post("/apps/web/previews", "/apps/web/previews/settings", url.Values{"enabled": {"on"}, "max_previews": {"4"},
		"ttl": {"3d"}, "status_token": {"tok-from-the-form"}})
	if p.status != http.StatusSeeOther || p.location != "/apps/web/previews" {
		t.Fatalf("save settings = %d → %q: %s", p.status, p.location, p.body)
	}
	page := b.get("/apps/web/previews")
	want(t, page, 200, `name="enabled" checked`, `value="4"`, `value="72h0m0s"`, "set; leave empty to keep it")
	if strings.Contains(page.body, "tok-from-the-form") {
		t.Error("the status token is shown")
	}
	want(t, b.post("/apps/web/previews", "/apps/web/previews/settings", url.Values{"enabled": {"on"}, "ttl": {"forever"}}),
		http.StatusBadRequest, `id="error"`, "ttl")

	// A fork's pull request, with a title built to break the page.
	const evil = `<script>alert(1)</script>`
	head := strings.Repeat("a", 40)
	ev := map[string]any{"provider": "github", "repo": "acme/web", "number": 7, "action": "opened", "title": evil,
		"base_ref": "main", "head_ref": "feature", "head_sha": head, "fetch_ref": "refs/pull/7/head", "fork": true}
	if r := e.apiDo("POST", "/api/v1/apps/web/previews", ev); r.StatusCode != http.StatusOK {
		t.Fatalf("event: %d", r.StatusCode)
	}
	deadline := time.Now().Add(20 * time.Second)
	for page = b.get("/apps/web/previews"); !strings.Contains(page.body, `s-live`) && time.Now().Before(deadline); page = b.get("/apps/web/previews") {
		time.Sleep(20 * time.Millisecond)
	}
	want(t, page, 200, `data-number="7"`, `href="https://pr-7.web.example.com"`, "not approved: no secrets",
		`action="/apps/web/previews/7/approve"`, `value="`+head+`"`, `href="/apps/web-pr-7"`, "&lt;script&gt;")
	if strings.Contains(page.body, evil) {
		t.Error("the pull request's title is not escaped")
	}
	// The preview's app follows web and the pull request: its settings
	// form is refused with the reason.
	want(t, b.post("/apps/web-pr-7", "/apps/web-pr-7/settings", url.Values{"kind": {"git"}, "git": {"https://git.example.com/web.git"},
		"ref": {"refs/pull/7/head"}, "replicas": {"3"}}),
		http.StatusConflict, `id="error"`, "web-pr-7 is the preview of pull request #7 of web: change web or the pull request")

	// A viewer sees no approve button, and the API refuses the form anyway.
	v := e.login("vera@example.com")
	vp := v.get("/apps/web/previews")
	want(t, vp, 200, `data-number="7"`)
	if strings.Contains(vp.body, "/previews/7/approve") {
		t.Error("a viewer is offered the approve button")
	}
	want(t, v.post("/apps/web/previews", "/apps/web/previews/7/approve", url.Values{"sha": {head}}), http.StatusForbidden, "permission")

	// The owner approves the commit shown.
	if p := b.post("/apps/web/previews", "/apps/web/previews/7/approve", url.Values{"sha": {head}}); p.status != http.StatusSeeOther {
		t.Fatalf("approve = %d: %s", p.status, p.body)
	}
	want(t, b.get("/apps/web/previews"), 200, `class="approved"`)
	// An approval of another commit is refused with the reason.
	e.apiDo("POST", "/api/v1/apps/web/previews", map[string]any{"provider": "github", "repo": "acme/web", "number": 7, "action": "updated",
		"base_ref": "main", "head_ref": "feature", "head_sha": strings.Repeat("b", 40), "fetch_ref": "refs/pull/7/head", "fork": true})
	want(t, b.post("/apps/web/previews", "/apps/web/previews/7/approve", url.Values{"sha": {head}}), http.StatusConflict, "review the new commits")

	// Tear down.
	if p := b.post("/apps/web/previews", "/apps/web/previews/7/delete", url.Values{}); p.status != http.StatusSeeOther {
		t.Fatalf("tear down = %d: %s", p.status, p.body)
	}
	deadline = time.Now().Add(20 * time.Second)
	for page = b.get("/apps/web/previews"); !strings.Contains(page.body, `id="no-previews"`) && time.Now().Before(deadline); page = b.get("/apps/web/previews") {
		time.Sleep(20 * time.Millisecond)
	}
	want(t, page, 200, `id="no-previews"`)
	want(t, b.get("/apps/other/previews"), http.StatusNotFound)
}
