package main

import (
	"strings"
	"testing"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/api"
)

func TestTeamCommands(t *testing.T) {
	c := newCLI(t)
	c.login()

	// Projects.
	if out := c.ok("projects"); !strings.Contains(out, "default") {
		t.Errorf("projects:\n%s", out)
	}
	p := jsonOf[berth.Project](t, c.ok("projects", "create", "shop", "-o", "json"))
	if p.Name != "shop" {
		t.Errorf("created %+v", p)
	}

	// Invite, accept as a new account, list.
	inv := jsonOf[api.InvitationCreated](t, c.ok("invite", "ann@example.com", "--role", "viewer", "--projects", "shop", "-o", "json"))
	if inv.Invitation.Role != berth.RoleViewer || inv.Secret == "" {
		t.Fatalf("invitation %+v", inv)
	}
	if msg := c.fail("invite", "bob@example.com", "--role", "emperor"); !strings.Contains(msg, "unknown role") {
		t.Errorf("bad role: %s", msg)
	}
	out := c.ok("accept", inv.Secret, "--name", "ann", "--server", c.url, "--token", "")
	if !strings.Contains(out, "Joined team main as viewer") {
		t.Errorf("accept:\n%s", out)
	}
	if msg := c.fail("accept", inv.Secret, "--name", "ann", "--server", c.url); !strings.Contains(msg, "not found") {
		t.Errorf("second accept: %s", msg)
	}
	if out := c.ok("invitations"); !strings.Contains(out, "accepted") || !strings.Contains(out, "ann@example.com") {
		t.Errorf("invitations:\n%s", out)
	}

	// Members: the viewer is narrowed; set-role and remove.
	ms := jsonOf[[]berth.Member](t, c.ok("members", "-o", "json"))
	var ann berth.Member
	for _, m := range ms {
		if m.User.Name == "ann" {
			ann = m
		}
	}
	if ann.Role != berth.RoleViewer || len(ann.Projects) != 1 || ann.Projects[0] != p.ID {
		t.Fatalf("ann %+v", ann)
	}
	if out := c.ok("members"); !rowsContain(rows(out), "ann", "viewer", p.ID) {
		t.Errorf("members:\n%s", out)
	}
	c.ok("members", "set-role", ann.User.ID, "developer")
	c.ok("members", "set-projects", ann.User.ID)
	if msg := c.fail("members", "set-role", principal(t, c).User.ID, "viewer"); !strings.Contains(msg, "last owner") {
		t.Errorf("demote the last owner: %s", msg)
	}
	c.ok("members", "remove", ann.User.ID)
	if out := c.ok("members"); strings.Contains(out, "ann") {
		t.Errorf("ann still a member:\n%s", out)
	}

	// Tokens.
	tc := jsonOf[api.TokenCreated](t, c.ok("tokens", "create", "ci", "--scopes", "deploy,read", "--expires", "720h", "-o", "json"))
	if tc.Token.ExpiresAt == nil || len(tc.Token.Scopes) != 2 {
		t.Fatalf("token %+v", tc)
	}
	if out := c.ok("tokens"); !rowsContain(rows(out), "ci", "deploy,read", tc.Token.ID) {
		t.Errorf("tokens:\n%s", out)
	}
	c.ok("tokens", "revoke", tc.Token.ID)
	if msg := c.fail("tokens", "revoke", tc.Token.ID); !strings.Contains(msg, "no token") {
		t.Errorf("revoke twice: %s", msg)
	}

	// Teams.
	created := jsonOf[api.TeamCreated](t, c.ok("teams", "create", "second", "-o", "json"))
	if created.Role != berth.RoleOwner || created.Token.Secret == "" {
		t.Fatalf("team %+v", created)
	}
	if out := c.ok("teams"); !rowsContain(rows(out), "*", "main", "owner") || !rowsContain(rows(out), "second", "owner") {
		t.Errorf("teams:\n%s", out)
	}

	// Audit.
	out = c.ok("audit", "--action", "member.")
	if !strings.Contains(out, "member.remove") || !strings.Contains(out, "member.set_role") || strings.Contains(out, "token.") {
		t.Errorf("audit --action member.:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(c.ok("audit", "--jsonl", "--since", "1h")), "\n")
	events := jsonOf[[]berth.AuditEvent](t, c.ok("audit", "-o", "json"))
	if len(lines) != len(events) || len(events) < 8 {
		t.Errorf("%d jsonl lines, %d events", len(lines), len(events))
	}
	if msg := c.fail("audit", "--outcome", "meh"); !strings.Contains(msg, "outcome") {
		t.Errorf("bad outcome: %s", msg)
	}
}

// rowsContain reports whether a row holds all the fields, in order.
func rowsContain(rs [][]string, fields ...string) bool {
	for _, r := range rs {
		i := 0
		for _, f := range r {
			if i < len(fields) && f == fields[i] {
				i++
			}
		}
		if i == len(fields) {
			return true
		}
	}
	return false
}
