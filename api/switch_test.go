package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/auth"
	"github.com/berthhq/berth/engine"
	"github.com/berthhq/berth/engine/enginetest"
)

func TestSwitchTeam(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.setAdminPassword()
	_, s := e.login(map[string]string{"email": adminEmail, "password": adminPassword})
	main := decode[Me](t, e.as(s, false, "GET", "/api/v1/me", nil), http.StatusOK)
	if main.Team.Name != "main" || main.TOTPEnabled || main.TeamRequires2FA || main.MustEnrol2FA {
		t.Fatalf("me = %+v", main)
	}
	decode[berth.App](t, e.as(s, true, "POST", "/api/v1/apps", gitApp("web")), http.StatusCreated)
	blue := decode[TeamCreated](t, e.as(s, true, "POST", "/api/v1/teams", map[string]string{"name": "blue"}), http.StatusCreated)
	appNames := func() []string {
		t.Helper()
		var names []string
		for _, a := range decode[[]berth.App](t, e.as(s, false, "GET", "/api/v1/apps", nil), http.StatusOK) {
			names = append(names, a.Name)
		}
		return names
	}

	t.Run("switch by name and back by ID", func(t *testing.T) {
		got := decode[Me](t, e.as(s, true, "POST", "/api/v1/session/team", map[string]string{"team": "blue"}), http.StatusOK)
		if got.Team.ID != blue.Team.ID || got.Role != berth.RoleOwner || got.CSRFToken != s.csrf || len(got.Scopes) != 5 {
			t.Fatalf("switched: %+v", got)
		}
		if me := decode[Me](t, e.as(s, false, "GET", "/api/v1/me", nil), http.StatusOK); me.Team.Name != "blue" {
			t.Fatalf("the session acts in %q after switching to blue", me.Team.Name)
		}
		if names := appNames(); len(names) != 0 {
			t.Errorf("blue lists main's apps %v", names)
		}
		// The team entered records the switch.
		var actions []string
		if err := e.st.AuditEvents(ctx, blue.Team.ID, berth.AuditFilter{}, func(ev *berth.AuditEvent) error {
			actions = append(actions, ev.Action+" "+ev.ActorName)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(actions, "session.switch_team admin") {
			t.Errorf("blue's audit log %q lacks the switch", actions)
		}
		decode[Me](t, e.as(s, true, "POST", "/api/v1/session/team", map[string]string{"team": main.Team.ID}), http.StatusOK)
		if names := appNames(); !slices.Equal(names, []string{"web"}) {
			t.Errorf("back in main, apps %v", names)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			csrf   bool
			body   any
			status int
			detail string
		}{
			{"another team's", true, map[string]string{"team": "other"}, http.StatusNotFound, "not a member"},
			{"no such team", true, map[string]string{"team": "nope"}, http.StatusNotFound, "not a member"},
			{"no team", true, map[string]string{"team": " "}, http.StatusBadRequest, "name the team"},
			{"unknown field", true, map[string]string{"team": "blue", "role": "owner"}, http.StatusBadRequest, "unknown field"},
			{"no CSRF token", false, map[string]string{"team": "blue"}, http.StatusForbidden, "CSRF"},
		} {
			r := e.as(s, tc.csrf, "POST", "/api/v1/session/team", tc.body)
			if r.status != tc.status || !strings.Contains(r.problem(t).Detail, tc.detail) {
				t.Errorf("%s: %d %s, want %d with %q", tc.name, r.status, r.body, tc.status, tc.detail)
			}
		}
		if me := decode[Me](t, e.as(s, false, "GET", "/api/v1/me", nil), http.StatusOK); me.Team.Name != "main" {
			t.Errorf("after refusals the session acts in %q, want main", me.Team.Name)
		}
		// A token belongs to its team.
		r, _ := e.login(map[string]string{"email": adminEmail, "password": adminPassword, "token_name": "cli"})
		tok := decode[LoginResponse](t, r, http.StatusOK).Token
		r = e.do(tok, "POST", "/api/v1/session/team", map[string]string{"team": "blue"})
		if r.status != http.StatusBadRequest || !strings.Contains(r.problem(t).Detail, "token belongs to its team") {
			t.Errorf("switch with a token: %d %s", r.status, r.body)
		}
	})

	t.Run("a team that requires 2FA needs TOTP first", func(t *testing.T) {
		if err := e.st.SetTeamRequire2FA(ctx, blue.Team.ID, true); err != nil {
			t.Fatal(err)
		}
		r := e.as(s, true, "POST", "/api/v1/session/team", map[string]string{"team": "blue"})
		if r.status != http.StatusForbidden || !strings.Contains(r.problem(t).Detail, "two-factor") {
			t.Fatalf("switch to blue without TOTP: %d %s", r.status, r.body)
		}
		enrol := decode[TOTPEnrolment](t, e.as(s, true, "POST", "/api/v1/me/totp", map[string]string{"password": adminPassword}), http.StatusOK)
		decode[RecoveryCodes](t, e.as(s, true, "POST", "/api/v1/me/totp/confirm", map[string]string{"code": totpCode(t, enrol.Secret, time.Now())}), http.StatusOK)
		got := decode[Me](t, e.as(s, true, "POST", "/api/v1/session/team", map[string]string{"team": "blue"}), http.StatusOK)
		if got.Team.Name != "blue" || !got.TOTPEnabled || !got.TeamRequires2FA {
			t.Errorf("switched with TOTP: %+v", got)
		}
	})

	t.Run("a member who must enrol may still switch away", func(t *testing.T) {
		u := &berth.User{Name: "dev", Email: "dev@example.com", CreatedAt: time.Now()}
		h, _ := auth.HashPassword(adminPassword)
		for _, err := range []error{e.st.CreateUser(ctx, u), e.st.SetPassword(ctx, u.ID, h, time.Now()),
			e.st.AddMember(ctx, blue.Team.ID, u.ID, berth.RoleDeveloper), e.st.AddMember(ctx, main.Team.ID, u.ID, berth.RoleViewer)} {
			if err != nil {
				t.Fatal(err)
			}
		}
		_, dev := e.login(map[string]string{"email": u.Email, "password": adminPassword, "team": "blue"})
		if me := decode[Me](t, e.as(dev, false, "GET", "/api/v1/me", nil), http.StatusOK); !me.MustEnrol2FA {
			t.Fatalf("dev in blue: %+v, want must_enrol_2fa", me)
		}
		if r := e.as(dev, false, "GET", "/api/v1/apps", nil); r.status != http.StatusForbidden {
			t.Fatalf("gated dev lists apps: %d", r.status)
		}
		if teams := decode[[]berth.Membership](t, e.as(dev, false, "GET", "/api/v1/teams", nil), http.StatusOK); len(teams) != 2 {
			t.Errorf("dev's teams %+v", teams)
		}
		got := decode[Me](t, e.as(dev, true, "POST", "/api/v1/session/team", map[string]string{"team": "main"}), http.StatusOK)
		if got.Team.Name != "main" || got.Role != berth.RoleViewer || got.MustEnrol2FA {
			t.Errorf("dev switched: %+v", got)
		}
		decode[[]berth.App](t, e.as(dev, false, "GET", "/api/v1/apps", nil), http.StatusOK)
	})
}

func TestProjectAppCountsAndKeptReleases(t *testing.T) {
	e := newEnv(t)
	admin := e.tokens[berth.ScopeAdmin]
	decode[berth.Project](t, e.do(admin, "POST", "/api/v1/projects", map[string]string{"name": "shop"}), http.StatusCreated)
	e.createApp(gitApp("web"))
	shopApp := gitApp("cart")
	shopApp["project"] = "shop"
	e.createApp(shopApp)
	e.createApp(gitApp("api"))
	counts := map[string]int{}
	for _, p := range decode[[]Project](t, e.do(admin, "GET", "/api/v1/projects", nil), http.StatusOK) {
		counts[p.Name] = p.Apps
	}
	if counts["default"] != 2 || counts["shop"] != 1 || len(counts) != 2 {
		t.Errorf("app counts %v, want default 2, shop 1", counts)
	}
	if ps := decode[[]Project](t, e.do(e.teamB, "GET", "/api/v1/projects", nil), http.StatusOK); len(ps) != 1 || ps[0].Apps != 0 {
		t.Errorf("the other team's projects %+v", ps)
	}

	// Three releases; the engine keeps the images of the newest 10, so
	// all are kept.
	for range 3 {
		e.deployLive("web")
	}
	rels := decode[[]Release](t, e.do(admin, "GET", "/api/v1/apps/web/releases", nil), http.StatusOK)
	if len(rels) != 3 {
		t.Fatalf("%d releases", len(rels))
	}
	for _, r := range rels {
		if !r.Kept {
			t.Errorf("v%d not kept", r.Number)
		}
	}
	// A server that keeps 2 releases marks the oldest one as gone.
	eng, _ := enginetest.NewWithFakes(t, e.st, func(c *engine.Config) { c.KeepReleases = 2 })
	srv := httptest.NewServer(New(Config{Store: e.st, Engine: eng}).Handler())
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/apps/web/releases", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rels = nil
	if err := json.NewDecoder(resp.Body).Decode(&rels); err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, r := range rels {
		kept = append(kept, fmt.Sprintf("v%d:%v", r.Number, r.Kept))
	}
	if !slices.Equal(kept, []string{"v3:true", "v2:true", "v1:false"}) {
		t.Errorf("kept with --keep-releases 2: %v", kept)
	}
}
