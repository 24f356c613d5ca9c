package web_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth"
)

// team finds a team by name in the store.
func (e *env) team(name string) *berth.Team {
	e.t.Helper()
	tm, err := e.st.TeamByName(context.Background(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	return tm
}

// user finds a user by e-mail in the store.
func (e *env) user(email string) *berth.User {
	e.t.Helper()
	u, err := e.st.UserByEmail(context.Background(), email)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// joinTeam makes a team of that name with the owner as a member of role.
func (e *env) joinTeam(name string, role berth.Role) *berth.Team {
	e.t.Helper()
	ctx := context.Background()
	tm := &berth.Team{ID: berth.NewID("team"), Name: name, CreatedAt: time.Now()}
	if err := e.st.CreateTeam(ctx, tm); err != nil {
		e.t.Fatal(err)
	}
	if err := e.st.AddMember(ctx, tm.ID, e.user(ownerEmail).ID, role); err != nil {
		e.t.Fatal(err)
	}
	return tm
}

// errorIn reports whether the page shows its error (id="error") inside
// the element whose id attribute is section, before the next section.
func errorIn(body, section string) bool {
	i := strings.Index(body, `id="`+section+`"`)
	if i < 0 {
		return false
	}
	rest := body[i:]
	if end := strings.Index(rest[1:], "<section"); end >= 0 {
		rest = rest[:end+1]
	}
	return strings.Contains(rest, `id="error"`)
}

func TestTeamSwitcher(t *testing.T) {
	e := newEnv(t)
	e.addUser("mallory", berth.RoleOwner, "other")
	ctx := context.Background()
	blue := e.joinTeam("sea", berth.RoleViewer)
	b := e.login(ownerEmail)
	if p := b.post("/apps/new", "/apps/new", url.Values{"name": {"web"}, "image": {"nginx:1"}}); p.status != http.StatusSeeOther {
		t.Fatalf("create = %d: %s", p.status, p.body)
	}
	// The header lists both teams: main as current, blue as a switch.
	apps := b.get("/apps")
	want(t, apps, 200, `id="current-team">main`, `data-team="sea"`, `name="team" value="`+blue.ID+`"`, `data-app="web"`)
	if strings.Contains(apps.body, `data-team="other"`) {
		t.Error("the switcher lists a team the user is not in")
	}

	p := b.post("/apps", "/team", url.Values{"team": {blue.ID}})
	if p.status != http.StatusSeeOther || p.location != "/apps" {
		t.Fatalf("switch = %d → %q: %s", p.status, p.location, p.body)
	}
	apps = b.get("/apps")
	want(t, apps, 200, `id="current-team">sea`, "(viewer)", `name="team" value="`+e.team("main").ID+`"`)
	if strings.Contains(apps.body, `data-app="web"`) {
		t.Error("sea shows main's app")
	}
	want(t, b.get("/apps/web"), http.StatusNotFound)

	t.Run("not a member: 404", func(t *testing.T) {
		p := b.post("/apps", "/team", url.Values{"team": {e.team("other").ID}})
		want(t, p, http.StatusNotFound, `id="error"`, "not a member")
		want(t, b.get("/apps"), 200, `id="current-team">sea`)
	})
	t.Run("no CSRF token", func(t *testing.T) {
		want(t, b.do("POST", "/team", url.Values{"team": {e.team("main").ID}}), http.StatusForbidden, "CSRF")
		want(t, b.get("/apps"), 200, `id="current-team">sea`)
	})
	t.Run("a team that requires 2FA, without TOTP", func(t *testing.T) {
		if err := e.st.SetTeamRequire2FA(ctx, e.team("main").ID, true); err != nil {
			t.Fatal(err)
		}
		p := b.post("/apps", "/team", url.Values{"team": {e.team("main").ID}})
		want(t, p, http.StatusForbidden, `id="error"`, "requires two-factor authentication")
		want(t, b.get("/apps"), 200, `id="current-team">sea`)
	})
}

// TestSignInLandsInLastTeam checks that signing in lands in the team the
// user last switched to, and in the first of their teams by name when they
// never switched or are no longer a member of it.
func TestSignInLandsInLastTeam(t *testing.T) {
	e := newEnv(t)
	sea := e.joinTeam("sea", berth.RoleDeveloper)
	signOut := func(b *browser) {
		t.Helper()
		if p := b.post("/apps", "/logout", url.Values{}); p.status != http.StatusSeeOther || p.location != "/login" {
			t.Fatalf("sign out = %d → %q", p.status, p.location)
		}
	}

	// Never switched: the first team by name ("main" before "sea").
	b := e.login(ownerEmail)
	want(t, b.get("/apps"), 200, `id="current-team">main`)
	if p := b.post("/apps", "/team", url.Values{"team": {sea.ID}}); p.status != http.StatusSeeOther {
		t.Fatalf("switch = %d: %s", p.status, p.body)
	}
	signOut(b)
	// The last team used, in this browser and in a new one.
	want(t, e.login(ownerEmail).get("/apps"), 200, `id="current-team">sea`)
	want(t, b.get("/apps"), http.StatusSeeOther)
	b = e.login(ownerEmail)
	want(t, b.get("/apps"), 200, `id="current-team">sea`)
	// Naming a team at sign-in still wins, and is then the last one used.
	n := e.browser()
	if p := n.do("POST", "/login", url.Values{"email": {ownerEmail}, "password": {ownerPassword}, "team": {"main"}}); p.status != http.StatusSeeOther {
		t.Fatalf("sign in to main = %d: %s", p.status, p.body)
	}
	want(t, n.get("/apps"), 200, `id="current-team">main`)
	want(t, e.login(ownerEmail).get("/apps"), 200, `id="current-team">main`)

	// Removed from the last team: back to the first one left.
	if p := e.login(ownerEmail).post("/apps", "/team", url.Values{"team": {sea.ID}}); p.status != http.StatusSeeOther {
		t.Fatalf("switch = %d: %s", p.status, p.body)
	}
	if err := e.st.RemoveMember(context.Background(), sea.ID, e.user(ownerEmail).ID); err != nil {
		t.Fatal(err)
	}
	want(t, e.login(ownerEmail).get("/apps"), 200, `id="current-team">main`)
}

func TestProjectsPage(t *testing.T) {
	e := newEnv(t)
	e.addUser("vera", berth.RoleViewer, "")
	e.addUser("dave", berth.RoleDeveloper, "")
	b := e.login(ownerEmail)

	want(t, b.get("/projects"), 200, `data-project="default"`, "0 apps", `id="project-create"`, "every team keeps it")
	if p := b.post("/projects", "/projects", url.Values{"name": {"shop"}}); p.status != http.StatusSeeOther || p.location != "/projects" {
		t.Fatalf("create project = %d → %q: %s", p.status, p.location, p.body)
	}
	// Refusals show next to the create form, with the name kept, escaped.
	p := b.post("/projects", "/projects", url.Values{"name": {"shop"}})
	want(t, p, http.StatusConflict, "already exists", `value="shop"`)
	if !errorIn(p.body, "project-new") {
		t.Errorf("the refusal is not next to the create form:\n%s", p.body)
	}
	p = b.post("/projects", "/projects", url.Values{"name": {`<b>x</b>`}})
	want(t, p, http.StatusBadRequest, `value="&lt;b&gt;x&lt;/b&gt;"`)
	if strings.Contains(p.body, "<b>x</b>") {
		t.Error("unescaped project name")
	}

	// An app in shop: the new-app form offers the projects.
	want(t, b.get("/apps/new"), 200, `<option value="shop"`, `<option value="default" selected`)
	if p := b.post("/apps/new", "/apps/new", url.Values{"name": {"cart"}, "image": {"nginx:1"}, "project": {"shop"}}); p.status != http.StatusSeeOther {
		t.Fatalf("create app = %d: %s", p.status, p.body)
	}
	if p := b.post("/apps/new", "/apps/new", url.Values{"name": {"web"}, "image": {"nginx:1"}}); p.status != http.StatusSeeOther {
		t.Fatalf("create app = %d: %s", p.status, p.body)
	}
	a, err := e.st.App(context.Background(), e.team("main").ID, "cart")
	if err != nil {
		t.Fatal(err)
	}
	shop, err := e.st.Project(context.Background(), e.team("main").ID, "shop")
	if err != nil || a.ProjectID != shop.ID {
		t.Fatalf("cart is in project %q, want shop (%v)", a.ProjectID, err)
	}
	page := b.get("/projects")
	want(t, page, 200, `href="/apps?project=shop"`, ">1 app<", `href="/apps?project=default"`, "delete or move its apps first")
	if strings.Contains(page.body, `action="/projects/shop/delete`) {
		t.Error("a delete button on a project with apps")
	}
	// The API refuses to delete a project with apps, shown next to the list.
	p = b.post("/projects", "/projects/shop/delete", url.Values{})
	want(t, p, http.StatusConflict, "still has apps")
	if !errorIn(p.body, "projects-card") {
		t.Errorf("the refusal is not next to the projects:\n%s", p.body)
	}
	if p := b.post("/apps/cart", "/apps/cart/delete", url.Values{"confirm": {"cart"}}); p.status != http.StatusSeeOther {
		t.Fatalf("delete app = %d: %s", p.status, p.body)
	}
	want(t, b.get("/projects"), 200, `action="/projects/shop/delete#projects-card"`)
	if p := b.post("/projects", "/projects/shop/delete", url.Values{}); p.status != http.StatusSeeOther {
		t.Fatalf("delete project = %d: %s", p.status, p.body)
	}
	if strings.Contains(b.get("/projects").body, `data-project="shop"`) {
		t.Error("deleted project still listed")
	}

	t.Run("a viewer sees projects but no forms", func(t *testing.T) {
		v := e.login("vera@example.com")
		page := v.get("/projects")
		want(t, page, 200, `data-project="default"`)
		for _, form := range []string{`id="project-create"`, `/delete`} {
			if strings.Contains(page.body, form) {
				t.Errorf("a viewer's projects page has %s", form)
			}
		}
		want(t, v.post("/projects", "/projects", url.Values{"name": {"mine"}}), http.StatusForbidden, "permission")
	})

	t.Run("project grants on the members page", func(t *testing.T) {
		if p := b.post("/projects", "/projects", url.Values{"name": {"shop"}}); p.status != http.StatusSeeOther {
			t.Fatalf("create project = %d", p.status)
		}
		if p := b.post("/apps/new", "/apps/new", url.Values{"name": {"cart"}, "image": {"nginx:1"}, "project": {"shop"}}); p.status != http.StatusSeeOther {
			t.Fatalf("create app = %d: %s", p.status, p.body)
		}
		shop, err := e.st.Project(context.Background(), e.team("main").ID, "shop")
		if err != nil {
			t.Fatal(err)
		}
		// A sent invitation empties the form; once accepted, it is no
		// longer pending.
		inv := b.submit("/members", "/members/invite", url.Values{"email": {"new@example.com"}, "role": {"viewer"}}, "/members")
		want(t, inv, 200, `id="inv-email" name="email" type="email" required value=""`)
		want(t, b.get("/members"), 200, `id="invitations"`)
		secret := regexp.MustCompile(`berthinv_[a-z0-9]+`).FindString(inv.body)
		resp, err := http.Post(e.srv.URL+"/api/v1/invitations/accept", "application/json",
			strings.NewReader(`{"secret":"`+secret+`","name":"newbie"}`))
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("accept: %v %v", resp, err)
		}
		resp.Body.Close()
		if m := b.get("/members"); strings.Contains(m.body, `id="invitations"`) || !strings.Contains(m.body, "newbie") {
			t.Error("an accepted invitation is still pending, or its member is not listed")
		}
		dave := e.user("dave@example.com")
		members := b.get("/members")
		want(t, members, 200, `action="/members/`+dave.ID+`/projects"`, `value="`+shop.ID+`"`, "every project (owner)")
		if p := b.post("/members", "/members/"+dave.ID+"/projects", url.Values{"projects": {shop.ID}}); p.status != http.StatusSeeOther {
			t.Fatalf("set projects = %d: %s", p.status, p.body)
		}
		members = b.get("/members")
		if !regexp.MustCompile(`value="` + shop.ID + `" checked> shop`).MatchString(members.body) {
			t.Errorf("shop is not ticked for dave:\n%s", members.body)
		}
		d := e.login("dave@example.com")
		page := d.get("/projects")
		want(t, page, 200, `data-project="shop"`)
		if strings.Contains(page.body, `data-project="default"`) {
			t.Error("dave, narrowed to shop, sees the default project")
		}
		want(t, d.get("/apps/web"), http.StatusNotFound)
		want(t, d.get("/apps/cart"), 200)
		// Nothing ticked: every project again.
		if p := b.post("/members", "/members/"+dave.ID+"/projects", url.Values{}); p.status != http.StatusSeeOther {
			t.Fatalf("clear projects = %d: %s", p.status, p.body)
		}
		want(t, d.get("/apps/web"), 200)
		// An owner cannot be narrowed: the API's refusal is shown.
		owner := e.user(ownerEmail)
		want(t, b.post("/members", "/members/"+owner.ID+"/projects", url.Values{"projects": {shop.ID}}), http.StatusBadRequest, "only developers and viewers")
	})
}
