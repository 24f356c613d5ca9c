package api

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/auth"
)

// walkEnv is team A with one object of every kind a route names, a viewer,
// a developer narrowed to project "p", and team B's owner (e.teamB).
type walkEnv struct {
	*testEnv
	viewer, narrowed string // tokens (admin-scoped: the role caps them)
	objects          map[string]string
	missing          map[string]string
}

func newWalkEnv(t *testing.T) *walkEnv {
	t.Helper()
	e := newEnv(t)
	ctx := context.Background()
	admin := e.principal(e.tokens[berth.ScopeAdmin])
	w := &walkEnv{testEnv: e}
	e.createApp(gitApp("web")) // in the default project
	e.deployLive("web")
	decode[berth.Domain](t, e.do(e.tokens[berth.ScopeAdmin], "POST", "/api/v1/apps/web/domains", map[string]string{"host": "web.example.com"}), http.StatusCreated)
	decode[berth.Project](t, e.do(e.tokens[berth.ScopeAdmin], "POST", "/api/v1/projects", map[string]string{"name": "p"}), http.StatusCreated)
	member := func(name string, role berth.Role) (*berth.User, string) {
		u := &berth.User{ID: berth.NewID("user"), Name: name, Email: name + "@example.com", CreatedAt: time.Now()}
		if err := e.st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		if err := e.st.AddMember(ctx, admin.Team.ID, u.ID, role); err != nil {
			t.Fatal(err)
		}
		secret, _, err := auth.IssueToken(ctx, e.st, admin.Team.ID, u.ID, name, []berth.Scope{berth.ScopeAdmin}, nil, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return u, secret
	}
	viewer, vt := member("vera", berth.RoleViewer)
	w.viewer = vt
	dev, nt := member("dave", berth.RoleDeveloper)
	w.narrowed = nt
	decode[berth.Member](t, e.do(e.tokens[berth.ScopeAdmin], "PUT", "/api/v1/members/"+dev.ID+"/projects", map[string]any{"projects": []string{"p"}}), http.StatusOK)
	decode[berth.App](t, e.do(nt, "POST", "/api/v1/apps", map[string]any{"name": "papp", "project": "p", "source": map[string]any{"image": "nginx:1"}}), http.StatusCreated)
	inv := decode[InvitationCreated](t, e.do(e.tokens[berth.ScopeAdmin], "POST", "/api/v1/invitations", map[string]any{"email": "new@example.com", "role": "viewer"}), http.StatusCreated)
	tok := decode[TokenCreated](t, e.do(e.tokens[berth.ScopeAdmin], "POST", "/api/v1/tokens", map[string]any{"name": "ci", "scopes": []string{"deploy"}}), http.StatusCreated)
	w.objects = map[string]string{"app": "web", "host": "web.example.com", "user": viewer.ID, "project": "p",
		"deployment": "1", "invitation": inv.Invitation.ID, "token": tok.Token.ID}
	w.missing = map[string]string{"app": "ghostapp", "host": "nohost.example.com", "user": berth.NewID("user"), "project": "ghostproj",
		"deployment": "99", "invitation": berth.NewID("inv"), "token": berth.NewID("tok")}
	return w
}

// freshViewer issues another token of the viewer, for routes that may end
// the token they are called with (sign-out, password change).
func (w *walkEnv) freshViewer(t *testing.T) string {
	t.Helper()
	v := w.principal(w.viewer)
	secret, _, err := auth.IssueToken(context.Background(), w.st, v.Team.ID, v.User.ID, "fresh", []berth.Scope{berth.ScopeAdmin}, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// path fills pattern's wildcards from values; {id} means a deployment,
// an invitation or a token depending on the route.
func (w *walkEnv) path(pattern string, values map[string]string) string {
	id := values["deployment"]
	switch {
	case strings.HasPrefix(pattern, "/api/v1/invitations/"):
		id = values["invitation"]
	case strings.HasPrefix(pattern, "/api/v1/tokens/"):
		id = values["token"]
	}
	return strings.NewReplacer("{app}", values["app"], "{host}", values["host"], "{user}", values["user"],
		"{project}", values["project"], "{id}", id, "{n}", "7").Replace(pattern)
}

// body is a plausible body for any route, so that refusals come from
// permissions and lookups, not from validation.
var walkBody = map[string]any{}

func names(pattern string) bool { return strings.Contains(pattern, "{") }

// TestRouteWalk walks every route of routes() — including routes added
// later — as an anonymous caller, a viewer, an owner of another team and a
// member narrowed to another project.
func TestRouteWalk(t *testing.T) {
	w := newWalkEnv(t)
	for _, rt := range routes() {
		mutating := rt.method != "GET" && rt.method != "HEAD"
		key := rt.method + " " + rt.pattern
		t.Run(key, func(t *testing.T) {
			path := w.path(rt.pattern, w.objects)
			if rt.scope != public {
				if r := w.do("", rt.method, path, walkBody); r.status != http.StatusUnauthorized {
					t.Errorf("anonymous: %d, want 401: %s", r.status, r.body)
				}
			}
			switch {
			case mutating && rt.scope == self:
				// A viewer still manages their own account (password,
				// two-factor, sign-out): allowed, whatever else refuses.
				r := w.do(w.freshViewer(t), rt.method, path, walkBody)
				if r.status == http.StatusForbidden || r.status == http.StatusUnauthorized {
					t.Errorf("viewer, own account: %d, want it allowed: %s", r.status, r.body)
				}
			case mutating && rt.scope != public:
				r := w.do(w.viewer, rt.method, path, walkBody)
				if r.status != http.StatusForbidden {
					t.Errorf("viewer: %d, want 403: %s", r.status, r.body)
				}
			}
			if names(rt.pattern) && rt.scope != public {
				// Team B's owner: A's objects are missing objects, to the
				// byte once the names are swapped.
				got := w.do(w.teamB, rt.method, path, walkBody)
				miss := w.do(w.teamB, rt.method, w.path(rt.pattern, w.missing), walkBody)
				if got.status != http.StatusNotFound {
					t.Errorf("other team: %d, want 404: %s", got.status, got.body)
				} else if w.unswap(miss.body) != string(got.body) {
					t.Errorf("other team's 404 differs from a missing object's:\n%s\n%s", got.body, miss.body)
				}
			}
			if strings.Contains(rt.pattern, "{app}") {
				got := w.do(w.narrowed, rt.method, path, walkBody)
				miss := w.do(w.narrowed, rt.method, w.path(rt.pattern, w.missing), walkBody)
				if got.status != http.StatusNotFound {
					t.Errorf("narrowed member, app of another project: %d, want 404: %s", got.status, got.body)
				} else if w.unswap(miss.body) != string(got.body) {
					t.Errorf("narrowed member's 404 differs from a missing app's:\n%s\n%s", got.body, miss.body)
				}
			}
		})
	}
	// The walk can fail: the narrowed member sees its own project's app,
	// and only it.
	if r := w.do(w.narrowed, "GET", "/api/v1/apps/papp", nil); r.status != http.StatusOK {
		t.Errorf("narrowed member, app of its project: %d", r.status)
	}
	if got := decode[[]berth.App](t, w.do(w.narrowed, "GET", "/api/v1/apps", nil), http.StatusOK); len(got) != 1 || got[0].Name != "papp" {
		t.Errorf("narrowed member lists %+v", got)
	}
	if got := decode[[]berth.Deployment](t, w.do(w.narrowed, "GET", "/api/v1/deployments", nil), http.StatusOK); len(got) != 0 {
		t.Errorf("narrowed member sees the latest deployments %+v of apps outside its project", got)
	}
	if got := decode[[]berth.Deployment](t, w.do(w.tokens[berth.ScopeAdmin], "GET", "/api/v1/deployments", nil), http.StatusOK); len(got) != 1 || got[0].Status != berth.StatusLive {
		t.Errorf("owner's latest deployments: %+v, want web's live one", got)
	}
	if got := decode[[]berth.Deployment](t, w.do(w.teamB, "GET", "/api/v1/deployments", nil), http.StatusOK); len(got) != 0 {
		t.Errorf("another team sees latest deployments %+v", got)
	}
	if got := decode[[]berth.Project](t, w.do(w.narrowed, "GET", "/api/v1/projects", nil), http.StatusOK); len(got) != 1 || got[0].Name != "p" {
		t.Errorf("narrowed member's projects %+v", got)
	}
	if r := w.do(w.narrowed, "POST", "/api/v1/apps", gitApp("nowhere")); r.status != http.StatusBadRequest {
		t.Errorf("narrowed member creates an app without a project: %d, want 400", r.status)
	}
	if r := w.do(w.narrowed, "POST", "/api/v1/apps", map[string]any{"name": "x", "project": "default", "source": map[string]any{"image": "nginx:1"}}); r.status != http.StatusNotFound {
		t.Errorf("narrowed member creates an app in a project it is not granted: %d, want 404", r.status)
	}
}

// unswap replaces the missing objects' names in b by the real ones.
func (w *walkEnv) unswap(b []byte) string {
	s := string(b)
	for k, v := range w.missing {
		s = strings.ReplaceAll(s, v, w.objects[k])
	}
	return s
}

// TestAuditEveryMutatingRoute checks that every mutating route writes one
// audit event, with its action, whatever the outcome.
func TestAuditEveryMutatingRoute(t *testing.T) {
	w := newWalkEnv(t)
	a := w.principal(w.tokens[berth.ScopeAdmin])
	viewer := w.principal(w.viewer)
	count := func(team string) int {
		n := 0
		if err := w.st.AuditEvents(context.Background(), team, berth.AuditFilter{}, func(*berth.AuditEvent) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, rt := range routes() {
		if rt.method == "GET" || rt.method == "HEAD" {
			continue
		}
		key := rt.method + " " + rt.pattern
		path := w.path(rt.pattern, w.objects)
		before, anonBefore := count(a.Team.ID), count("")
		tok := w.viewer
		switch rt.scope {
		case public:
			tok = ""
		case self:
			tok = w.freshViewer(t)
		}
		r := w.do(tok, rt.method, path, walkBody, "X-Forwarded-For", "203.0.113.9")
		var last *berth.AuditEvent
		team := a.Team.ID
		if rt.scope == public {
			team = ""
		}
		_ = w.st.AuditEvents(context.Background(), team, berth.AuditFilter{Limit: 1}, func(e *berth.AuditEvent) error { last = e; return nil })
		switch {
		case rt.scope != public && count(a.Team.ID) != before+1:
			t.Errorf("%s: %d events written, want 1", key, count(a.Team.ID)-before)
		case rt.scope == public && count("") != anonBefore+1:
			t.Errorf("%s: %d anonymous events written, want 1", key, count("")-anonBefore)
		case last.Action != rt.action || last.Status != r.status || last.ClientAddr != "127.0.0.1":
			t.Errorf("%s: event %+v (response %d)", key, last, r.status)
		case rt.scope != public && last.ActorID != viewer.User.ID:
			t.Errorf("%s: event %+v, want the viewer", key, last)
		case rt.scope != public && rt.scope != self && last.Outcome != berth.OutcomeDenied:
			t.Errorf("%s: event %+v, want the viewer, denied", key, last)
		}
		if strings.Contains(rt.pattern, "{app}") && !strings.Contains(last.Target, "app=web") {
			t.Errorf("%s: target %q", key, last.Target)
		}
		// No secret reaches an event.
		j, _ := json.Marshal(last)
		if strings.Contains(string(j), "berth_") {
			t.Errorf("%s: event holds a secret: %s", key, j)
		}
	}
	// Anonymous failures are recorded too.
	before := count("")
	w.do("", "DELETE", "/api/v1/apps/web", nil)
	if count("") != before+1 {
		t.Error("an anonymous DELETE left no audit event")
	}
}

// TestRouteWalkPreview walks every mutating app route — including routes
// added later — against an app that runs a preview, as the team's owner:
// each refuses it with 409 and says why, and changes nothing, unless
// onPreview lists it, and then it acts on the preview.
func TestRouteWalkPreview(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *testEnv) {
		admin := e.tokens[berth.ScopeAdmin]
		ctx := context.Background()
		e.createApp(gitApp("web"))
		decode[berth.Domain](t, e.do(admin, "POST", "/api/v1/apps/web/domains", map[string]string{"host": "web.example.com"}), http.StatusCreated)
		decode[PreviewSettings](t, e.do(admin, "PUT", "/api/v1/apps/web/previews/settings", map[string]any{"enabled": true}), http.StatusOK)
		decode[EventResult](t, e.do(admin, "POST", "/api/v1/apps/web/previews", map[string]any{"provider": "github", "repo": "acme/web",
			"number": 7, "action": "opened", "base_ref": "main", "head_ref": "feature", "head_sha": strings.Repeat("a", 40),
			"fetch_ref": "refs/pull/7/head"}), http.StatusOK)
		waitUntil(t, "the preview to go live", func() bool {
			p, err := e.client(berth.ScopeRead).Preview(ctx, "web", 7)
			return err == nil && p.Status == berth.PreviewLive
		})
		path := strings.NewReplacer("{app}", "web-pr-7", "{host}", "pr-7.web.example.com", "{id}", "1", "{n}", "7").Replace
		const refusal = "web-pr-7 is the preview of pull request #7 of web: change web or the pull request"
		refused := func(r response) bool {
			return r.status == http.StatusConflict && r.problem(t).Detail == refusal
		}
		// What a refusal must leave as it was.
		state := func() string {
			var b strings.Builder
			for _, p := range []string{"", "/env", "/domains", "/webhook", "/previews/settings", "/deploy-key", "/git-credentials", "/host-keys", "/releases"} {
				r := e.do(admin, "GET", "/api/v1/apps/web-pr-7"+p, nil)
				fmt.Fprintf(&b, "%s %d %s\n", p, r.status, r.body)
			}
			return b.String()
		}
		before := state()

		var allowed []route
		for _, rt := range routes() {
			if rt.method == "GET" || !strings.HasPrefix(rt.pattern, appPrefix) {
				continue
			}
			key := rt.method + " " + rt.pattern
			if onPreview[key] != "" {
				allowed = append(allowed, rt)
				continue
			}
			if r := e.do(admin, rt.method, path(rt.pattern), walkBody); !refused(r) {
				t.Errorf("%s on a preview: %d %s, want 409 %q", key, r.status, r.body, refusal)
			}
		}
		if after := state(); after != before {
			t.Errorf("the refusals changed the preview's app:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		if len(allowed) != len(onPreview) {
			t.Errorf("onPreview lists %d routes, %d of them mutating app routes", len(onPreview), len(allowed))
		}
		// A deployment names no other ref than the pull request's.
		r := e.do(admin, "POST", "/api/v1/apps/web-pr-7/deployments", map[string]string{"ref": "main"})
		if r.status != http.StatusConflict || !strings.Contains(r.problem(t).Detail, "deploys the pull request's head") {
			t.Errorf("deploy a preview at another ref: %d %s", r.status, r.body)
		}

		// The routes that act on a preview do; deletions last.
		last := func(rt route) int {
			if rt.method == "DELETE" {
				return 1
			}
			return 0
		}
		slices.SortStableFunc(allowed, func(a, b route) int { return cmp.Compare(last(a), last(b)) })
		for _, rt := range allowed {
			r := e.do(admin, rt.method, path(rt.pattern), walkBody)
			if refused(r) || r.status >= 500 {
				t.Errorf("%s %s on a preview: %d %s, want it to act", rt.method, rt.pattern, r.status, r.body)
			}
			waitUntil(t, "the preview's deployments to end", func() bool {
				r := e.do(admin, "GET", "/api/v1/apps/web-pr-7/deployments", nil)
				var ds []berth.Deployment
				_ = json.Unmarshal(r.body, &ds)
				return r.status == http.StatusNotFound || !slices.ContainsFunc(ds, func(d berth.Deployment) bool { return d.Status.Active() })
			})
		}
		if r := e.do(admin, "GET", "/api/v1/apps/web-pr-7", nil); r.status != http.StatusNotFound {
			t.Errorf("the preview's app after DELETE: %d, want it gone", r.status)
		}
	})
}
