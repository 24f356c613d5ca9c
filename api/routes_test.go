package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/berthhq/berth"
)

// concrete fills a route pattern's wildcards with values of objects that
// exist (app "web", deployment 1).
func concrete(pattern string) string {
	return strings.NewReplacer("{app}", "web", "{id}", "1", "{host}", "web.example.com").Replace(pattern)
}

func TestRouteTable(t *testing.T) {
	seen := map[string]bool{}
	actionsSeen := map[string]string{}
	for _, rt := range routes() {
		key := rt.method + " " + rt.pattern
		if rt.scope != public && rt.scope != self && !berth.ValidScope(rt.scope) {
			t.Errorf("%s: scope %q; every route must declare a valid scope", key, rt.scope)
		}
		if rt.handler == nil {
			t.Errorf("%s: no handler", key)
		}
		if seen[key] {
			t.Errorf("%s: listed twice", key)
		}
		seen[key] = true
		if !strings.HasPrefix(rt.pattern, "/api/v1/") {
			t.Errorf("%s: not under /api/v1/", key)
		}
		if rt.method != "GET" && rt.scope == berth.ScopeRead {
			t.Errorf("%s: a mutating route needs more than the read scope", key)
		}
		switch {
		case rt.method == "GET" && rt.action != "":
			t.Errorf("%s: a read declares audit action %q; only mutating routes are audited", key, rt.action)
		case rt.method != "GET" && !actionRE.MatchString(rt.action):
			t.Errorf("%s: a mutating route needs an audit action named noun.verb, not %q", key, rt.action)
		case rt.action != "" && actionsSeen[rt.action] != "":
			t.Errorf("%s: audit action %q is also %s's", key, rt.action, actionsSeen[rt.action])
		}
		actionsSeen[rt.action] = key
	}
}

var actionRE = regexp.MustCompile(`^[a-z]+\.[a-z_]+$`)

// TestOpenAPIMatchesRoutes checks that the OpenAPI document describes
// exactly the routes the server serves, with the same scopes.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
	var documented []string
	scopes := map[string]berth.Scope{}
	conflicts := map[string]bool{} // documents a 409
	for path, ops := range doc.Paths {
		for method, raw := range ops {
			if method == "parameters" {
				continue
			}
			key := strings.ToUpper(method) + " " + path
			documented = append(documented, key)
			var op struct {
				Scope     berth.Scope                `json:"x-berth-scope"`
				Responses map[string]json.RawMessage `json:"responses"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			scopes[key] = op.Scope
			conflicts[key] = op.Responses["409"] != nil
		}
	}
	served := []string{"GET /healthz"}
	for _, rt := range routes() {
		key := rt.method + " " + rt.pattern
		served = append(served, key)
		if scopes[key] != rt.scope {
			t.Errorf("%s: OpenAPI says scope %q, the route table %q", key, scopes[key], rt.scope)
		}
		if refusesPreview(rt) && !conflicts[key] {
			t.Errorf("%s: refuses a preview's app with 409, which OpenAPI does not document", key)
		}
	}
	sort.Strings(documented)
	sort.Strings(served)
	if !slices.Equal(documented, served) {
		t.Errorf("OpenAPI paths and the route table differ:\ndocumented: %q\nserved:     %q", documented, served)
	}
	// Every $ref points at something that exists.
	var all map[string]any
	if err := json.Unmarshal(openAPI, &all); err != nil {
		t.Fatal(err)
	}
	for _, ref := range refs(all) {
		parts := strings.Split(strings.TrimPrefix(ref, "#/"), "/")
		var node any = all
		for _, p := range parts {
			m, _ := node.(map[string]any)
			node = m[p]
		}
		if node == nil {
			t.Errorf("dangling $ref %s", ref)
		}
	}
}

func refs(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "$ref" {
				out = append(out, s)
			}
			out = append(out, refs(x)...)
		}
	case []any:
		for _, x := range v {
			out = append(out, refs(x)...)
		}
	}
	return out
}

func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t)
	if r := e.do("", "GET", "/api/v1/openapi.json", nil); r.status != http.StatusUnauthorized {
		t.Errorf("without a token: %d, want 401", r.status)
	}
	r := e.do(e.tokens[berth.ScopeRead], "GET", "/api/v1/openapi.json", nil)
	if r.status != http.StatusOK || !bytes.Equal(r.body, openAPI) {
		t.Errorf("GET openapi.json: %d, body equal to the embedded document: %v", r.status, bytes.Equal(r.body, openAPI))
	}
}

// TestEveryRouteNeedsAToken walks the route table without a token, and with
// tokens that are malformed, unknown or expired.
func TestEveryRouteNeedsAToken(t *testing.T) {
	e := newEnv(t)
	bad := map[string]string{
		"none":      "",
		"garbage":   "nonsense",
		"unknown":   "berth_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"no prefix": strings.TrimPrefix(e.tokens[berth.ScopeAdmin], "berth_"),
	}
	for _, rt := range routes() {
		if rt.scope == public {
			continue // login and the OIDC redirects: tested in session_test.go
		}
		for name, tok := range bad {
			t.Run(rt.method+" "+rt.pattern+"/"+name, func(t *testing.T) {
				r := e.do(tok, rt.method, concrete(rt.pattern), nil)
				if r.status != http.StatusUnauthorized {
					t.Fatalf("status %d, want 401: %s", r.status, r.body)
				}
				p := r.problem(t)
				if p.Type != ProblemTypePrefix+"unauthorized" {
					t.Errorf("type %q", p.Type)
				}
				if r.header.Get("WWW-Authenticate") == "" {
					t.Error("no WWW-Authenticate header")
				}
			})
		}
	}
}

// TestScopes checks every route against a token of every scope: a token
// without the route's scope gets 403 before anything happens; reads with
// the scope succeed.
func TestScopes(t *testing.T) {
	e := newEnv(t)
	e.createApp(gitApp("web"))
	e.deployLive("web")
	// An app without a deploy key answers GET deploy-key with 404.
	decode[berth.DeployKey](t, e.do(e.tokens[berth.ScopeWrite], "POST", "/api/v1/apps/web/deploy-key", nil), http.StatusCreated)
	for _, rt := range routes() {
		if rt.scope == public || rt.scope == self {
			continue // no scope to check: tested in session_test.go
		}
		for _, scope := range []berth.Scope{berth.ScopeRead, berth.ScopeReadSecrets, berth.ScopeDeploy, berth.ScopeWrite, berth.ScopeAdmin} {
			allowed := berth.Allows([]berth.Scope{scope}, rt.scope)
			if allowed && rt.method != "GET" {
				continue // mutations are tested route by route
			}
			t.Run(rt.method+" "+rt.pattern+"/"+string(scope), func(t *testing.T) {
				r := e.do(e.tokens[scope], rt.method, concrete(rt.pattern), map[string]any{})
				switch {
				case !allowed && r.status != http.StatusForbidden:
					t.Fatalf("status %d, want 403: %s", r.status, r.body)
				case !allowed:
					if p := r.problem(t); !strings.Contains(p.Detail, string(rt.scope)) {
						t.Errorf("detail %q does not name the scope %s", p.Detail, rt.scope)
					}
				case r.status != http.StatusOK:
					t.Fatalf("status %d, want 200: %s", r.status, r.body)
				}
			})
		}
	}
	// Nothing changed: the read-only token could not delete the app.
	if r := e.do(e.tokens[berth.ScopeRead], "GET", "/api/v1/apps/web", nil); r.status != http.StatusOK {
		t.Errorf("app after the forbidden requests: %d", r.status)
	}
}

// TestTenancy checks that a token of team B sees none of team A's objects,
// on any route, even with their IDs.
func TestTenancy(t *testing.T) {
	e := newEnv(t)
	a := e.createApp(gitApp("web"))
	d := e.deployLive("web")
	for _, rt := range routes() {
		if !strings.Contains(rt.pattern, "{app}") {
			continue
		}
		t.Run(rt.method+" "+rt.pattern, func(t *testing.T) {
			r := e.do(e.teamB, rt.method, concrete(rt.pattern), map[string]any{})
			if r.status != http.StatusNotFound {
				t.Fatalf("status %d, want 404: %s", r.status, r.body)
			}
			r.problem(t)
		})
	}
	if got := decode[[]berth.App](t, e.do(e.teamB, "GET", "/api/v1/apps", nil), http.StatusOK); len(got) != 0 {
		t.Errorf("team B lists %d apps, want 0", len(got))
	}
	// Team B may have its own "web"; A's IDs stay invisible through it.
	b := decode[berth.App](t, e.do(e.teamB, "POST", "/api/v1/apps", gitApp("web")), http.StatusCreated)
	if b.ID == a.ID {
		t.Fatal("team B's app has team A's ID")
	}
	for _, path := range []string{
		"/api/v1/apps/web/deployments/" + d.ID,
		"/api/v1/apps/web/deployments/" + d.ID + "/log",
		"/api/v1/apps/web/deployments/1",
	} {
		if r := e.do(e.teamB, "GET", path, nil); r.status != http.StatusNotFound {
			t.Errorf("GET %s as team B: %d, want 404", path, r.status)
		}
	}
	if r := e.do(e.teamB, "POST", "/api/v1/apps/web/deployments/"+d.ID+"/cancel", nil); r.status != http.StatusNotFound {
		t.Errorf("cancel A's deployment as team B: %d, want 404", r.status)
	}
	if r := e.do(e.teamB, "POST", "/api/v1/apps/web/rollback", map[string]string{"release": d.ReleaseID}); r.status != http.StatusNotFound {
		t.Errorf("roll back to A's release as team B: %d, want 404: %s", r.status, r.body)
	}
	// Team A's app is intact.
	if got := decode[berth.App](t, e.do(e.tokens[berth.ScopeRead], "GET", "/api/v1/apps/web", nil), http.StatusOK); got.ID != a.ID {
		t.Errorf("team A's web has ID %s, want %s", got.ID, a.ID)
	}
}
