package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/berthhq/berth"
)

func TestInvitationFlow(t *testing.T) {
	w := newWalkEnv(t)
	admin := w.tokens[berth.ScopeAdmin]
	inv := decode[InvitationCreated](t, w.do(admin, "POST", "/api/v1/invitations",
		map[string]any{"email": "Ann@Example.com", "role": "developer", "projects": []string{"p"}}), http.StatusCreated)
	if !strings.HasPrefix(inv.Secret, invitationPrefix) || inv.Invitation.Email != "ann@example.com" ||
		!strings.HasSuffix(inv.AcceptURL, "/api/v1/invitations/accept") || len(inv.Invitation.Projects) != 1 {
		t.Fatalf("invitation %+v", inv)
	}
	for _, bad := range []map[string]any{
		{"email": "not an email", "role": "viewer"},
		{"email": "x@example.com", "role": "emperor"},
		{"email": "x@example.com", "role": "viewer", "expires_in": "9999h"},
		{"email": "x@example.com", "role": "admin", "projects": []string{"p"}},
	} {
		if r := w.do(admin, "POST", "/api/v1/invitations", bad); r.status != http.StatusBadRequest {
			t.Errorf("invite %v: %d, want 400", bad, r.status)
		}
	}
	if r := w.do(admin, "POST", "/api/v1/invitations", map[string]any{"email": "x@example.com", "role": "viewer", "projects": []string{"ghost"}}); r.status != http.StatusNotFound {
		t.Errorf("invite into a missing project: %d", r.status)
	}
	// The secret is never listed.
	if r := w.do(admin, "GET", "/api/v1/invitations", nil); bytes.Contains(r.body, []byte(inv.Secret)) || bytes.Contains(r.body, []byte("hash")) {
		t.Errorf("invitation list shows the secret: %s", r.body)
	}

	// A new account accepts once; the token it gets acts in the team as a
	// narrowed developer.
	// A weak password is refused before the invitation is used.
	if r := w.do("", "POST", "/api/v1/invitations/accept", map[string]any{"secret": inv.Secret, "name": "ann", "password": "short"}); r.status != http.StatusBadRequest {
		t.Errorf("weak password: %d, want 400", r.status)
	}
	acc := decode[Accepted](t, w.do("", "POST", "/api/v1/invitations/accept", map[string]any{"secret": inv.Secret, "name": "ann", "password": "hunter2hunter2"}), http.StatusOK)
	if acc.Role != berth.RoleDeveloper || acc.User.Email != "ann@example.com" || acc.Token.Secret == "" {
		t.Fatalf("accepted %+v", acc)
	}
	// The password was stored with the account: ann signs in with it.
	if r := w.do("", "POST", "/api/v1/login", map[string]any{"email": "ann@example.com", "password": "hunter2hunter2"}); r.status != http.StatusOK {
		t.Errorf("sign-in with the password chosen at acceptance: %d: %s", r.status, r.body)
	}
	if r := w.do("", "POST", "/api/v1/invitations/accept", map[string]any{"secret": inv.Secret, "name": "ann2"}); r.status != http.StatusNotFound {
		t.Errorf("second acceptance: %d, want 404", r.status)
	}
	if got := decode[[]berth.App](t, w.do(acc.Token.Secret, "GET", "/api/v1/apps", nil), http.StatusOK); len(got) != 1 || got[0].Name != "papp" {
		t.Errorf("ann sees %+v", got)
	}

	// An existing account accepts with its own credentials, and only for
	// its own e-mail.
	inv2 := decode[InvitationCreated](t, w.do(w.teamB, "POST", "/api/v1/invitations", map[string]any{"email": "ann@example.com", "role": "viewer"}), http.StatusCreated)
	inv3 := decode[InvitationCreated](t, w.do(w.teamB, "POST", "/api/v1/invitations", map[string]any{"email": "bob@example.com", "role": "viewer"}), http.StatusCreated)
	if r := w.do(acc.Token.Secret, "POST", "/api/v1/invitations/accept", map[string]any{"secret": inv3.Secret}); r.status != http.StatusNotFound {
		t.Errorf("accept another e-mail's invitation: %d, want 404", r.status)
	}
	acc2 := decode[Accepted](t, w.do(acc.Token.Secret, "POST", "/api/v1/invitations/accept", map[string]any{"secret": inv2.Secret}), http.StatusOK)
	if acc2.Team.Name != "other" || acc2.User.ID != acc.User.ID {
		t.Errorf("accepted %+v", acc2)
	}
	teams := decode[[]berth.Membership](t, w.do(acc.Token.Secret, "GET", "/api/v1/teams", nil), http.StatusOK)
	if len(teams) != 2 {
		t.Errorf("ann's teams %+v", teams)
	}
	// Revoked invitations cannot be accepted.
	decode[map[string]any](t, w.do(w.teamB, "POST", "/api/v1/invitations", map[string]any{"email": "c@example.com", "role": "viewer"}), http.StatusCreated)
	if r := w.do(w.teamB, "DELETE", "/api/v1/invitations/"+inv3.Invitation.ID, nil); r.status != http.StatusNoContent {
		t.Errorf("revoke: %d", r.status)
	}
	if r := w.do("", "POST", "/api/v1/invitations/accept", map[string]any{"secret": inv3.Secret, "name": "bob"}); r.status != http.StatusNotFound {
		t.Errorf("accept a revoked invitation: %d", r.status)
	}
}

func TestMemberRules(t *testing.T) {
	w := newWalkEnv(t)
	owner := w.tokens[berth.ScopeAdmin]
	me := w.principal(owner)
	members := decode[[]berth.Member](t, w.do(owner, "GET", "/api/v1/members", nil), http.StatusOK)
	var vera, dave string
	for _, m := range members {
		switch m.User.Name {
		case "vera":
			vera = m.User.ID
		case "dave":
			dave = m.User.ID
		}
	}
	// The last owner can neither be demoted nor leave.
	if r := w.do(owner, "PATCH", "/api/v1/members/"+me.User.ID, map[string]string{"role": "admin"}); r.status != http.StatusConflict {
		t.Errorf("demote the last owner: %d", r.status)
	}
	if r := w.do(owner, "DELETE", "/api/v1/members/"+me.User.ID, nil); r.status != http.StatusConflict {
		t.Errorf("the last owner leaves: %d", r.status)
	}
	// An admin grants at most admin, and touches no owner.
	decode[berth.Member](t, w.do(owner, "PATCH", "/api/v1/members/"+vera, map[string]string{"role": "admin"}), http.StatusOK)
	for _, c := range []struct{ path, role string }{{dave, "owner"}, {me.User.ID, "viewer"}} {
		if r := w.do(w.viewer, "PATCH", "/api/v1/members/"+c.path, map[string]string{"role": c.role}); r.status != http.StatusForbidden {
			t.Errorf("admin sets %s to %s: %d, want 403", c.path, c.role, r.status)
		}
	}
	if r := w.do(w.viewer, "DELETE", "/api/v1/members/"+me.User.ID, nil); r.status != http.StatusForbidden {
		t.Errorf("admin removes the owner: %d", r.status)
	}
	// Promoting dave to admin drops his narrowing.
	m := decode[berth.Member](t, w.do(w.viewer, "PATCH", "/api/v1/members/"+dave, map[string]string{"role": "admin"}), http.StatusOK)
	if m.Projects != nil {
		t.Errorf("admin keeps grants %v", m.Projects)
	}
	// Removing a member kills their tokens.
	if r := w.do(owner, "DELETE", "/api/v1/members/"+dave, nil); r.status != http.StatusNoContent {
		t.Errorf("remove: %d", r.status)
	}
	if r := w.do(w.narrowed, "GET", "/api/v1/me", nil); r.status != http.StatusUnauthorized {
		t.Errorf("a removed member's token: %d, want 401", r.status)
	}
}

func TestTokens(t *testing.T) {
	w := newWalkEnv(t)
	dev := w.tokens[berth.ScopeWrite] // the owner's write-scoped token
	created := decode[TokenCreated](t, w.do(dev, "POST", "/api/v1/tokens", map[string]any{"name": "ci", "scopes": []string{"deploy"}, "expires_in": "720h"}), http.StatusCreated)
	if created.Token.ExpiresAt == nil || !strings.HasPrefix(created.Secret, "berth_") {
		t.Fatalf("token %+v", created)
	}
	if r := w.do(created.Secret, "GET", "/api/v1/apps/web", nil); r.status != http.StatusOK {
		t.Errorf("new token reads: %d", r.status)
	}
	for _, bad := range []map[string]any{
		{"name": "x", "scopes": []string{"admin"}},
		{"name": "x", "scopes": []string{"read-secrets"}},
	} {
		if r := w.do(dev, "POST", "/api/v1/tokens", bad); r.status != http.StatusForbidden {
			t.Errorf("a write token creates %v: %d, want 403", bad, r.status)
		}
	}
	for _, bad := range []map[string]any{
		{"name": "x", "scopes": []string{"root"}},
		{"name": "", "scopes": []string{"read"}},
		{"name": "x", "scopes": []string{"read"}, "expires_in": "2001-01-01T00:00:00Z"},
		{"name": "x", "scopes": []string{"read"}, "expires_in": "soon"},
	} {
		if r := w.do(dev, "POST", "/api/v1/tokens", bad); r.status != http.StatusBadRequest {
			t.Errorf("create %v: %d, want 400", bad, r.status)
		}
	}
	// A member lists their own tokens only; an admin sees all.
	mine := decode[[]berth.Token](t, w.do(w.narrowed, "GET", "/api/v1/tokens", nil), http.StatusOK)
	if len(mine) != 1 || mine[0].Name != "dave" {
		t.Errorf("dave's tokens %+v", mine)
	}
	all := decode[[]berth.Token](t, w.do(w.tokens[berth.ScopeAdmin], "GET", "/api/v1/tokens", nil), http.StatusOK)
	if len(all) < 8 {
		t.Errorf("admin sees %d tokens", len(all))
	}
	if r := w.do(w.narrowed, "DELETE", "/api/v1/tokens/"+created.Token.ID, nil); r.status != http.StatusNotFound {
		t.Errorf("dave revokes another's token: %d, want 404", r.status)
	}
	if r := w.do(dev, "DELETE", "/api/v1/tokens/"+created.Token.ID, nil); r.status != http.StatusNoContent {
		t.Errorf("revoke: %d", r.status)
	}
	if r := w.do(created.Secret, "GET", "/api/v1/me", nil); r.status != http.StatusUnauthorized {
		t.Errorf("revoked token: %d", r.status)
	}
	// Switching team: a token in another team of the caller, within their
	// role there.
	tc := decode[TeamCreated](t, w.do(w.tokens[berth.ScopeAdmin], "POST", "/api/v1/teams", map[string]string{"name": "second"}), http.StatusCreated)
	if tc.Role != berth.RoleOwner || tc.Token.Token.TeamID != tc.Team.ID {
		t.Fatalf("team created %+v", tc)
	}
	sw := decode[TokenCreated](t, w.do(w.tokens[berth.ScopeAdmin], "POST", "/api/v1/tokens", map[string]any{"name": "s", "scopes": []string{"read"}, "team": "second"}), http.StatusCreated)
	me := decode[Me](t, w.do(sw.Secret, "GET", "/api/v1/me", nil), http.StatusOK)
	if me.Team.Name != "second" {
		t.Errorf("switched token acts in %q", me.Team.Name)
	}
	if r := w.do(w.tokens[berth.ScopeAdmin], "POST", "/api/v1/tokens", map[string]any{"name": "s", "scopes": []string{"read"}, "team": "other"}); r.status != http.StatusNotFound {
		t.Errorf("token in a team one is not in: %d", r.status)
	}
}

func TestAuditList(t *testing.T) {
	w := newWalkEnv(t)
	admin := w.tokens[berth.ScopeAdmin]
	w.do(w.viewer, "DELETE", "/api/v1/apps/web", nil)
	all := decode[[]berth.AuditEvent](t, w.do(admin, "GET", "/api/v1/audit", nil), http.StatusOK)
	if len(all) < 5 || all[0].Action != "app.delete" || all[0].Outcome != berth.OutcomeDenied || all[0].Status != 403 || all[0].ActorName != "vera" {
		t.Fatalf("audit %+v", all[:1])
	}
	apps := decode[[]berth.AuditEvent](t, w.do(admin, "GET", "/api/v1/audit?action=app.&outcome=success", nil), http.StatusOK)
	for _, e := range apps {
		if !strings.HasPrefix(e.Action, "app.") || e.Outcome != berth.OutcomeSuccess {
			t.Errorf("filtered event %+v", e)
		}
	}
	if len(apps) != 2 { // web and papp
		t.Errorf("%d app.* successes, want 2", len(apps))
	}
	r := w.do(admin, "GET", "/api/v1/audit?format=jsonl&since=1h", nil)
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/jsonl" {
		t.Fatalf("jsonl: %d %s", r.status, r.header.Get("Content-Type"))
	}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	for sc.Scan() {
		var e berth.AuditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action == "" {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		n++
	}
	if n != len(all) {
		t.Errorf("jsonl has %d lines, json %d events", n, len(all))
	}
	for _, q := range []string{"since=yesterday", "outcome=meh", "limit=0", "format=xml"} {
		if r := w.do(admin, "GET", "/api/v1/audit?"+q, nil); r.status != http.StatusBadRequest {
			t.Errorf("?%s: %d, want 400", q, r.status)
		}
	}
}
