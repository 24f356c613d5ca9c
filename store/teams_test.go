package store

import (
	"sync"
	"testing"
	"time"

	"github.com/berthhq/berth"
)

func TestProjects(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme")
		other := newFixture(t, s, "other")
		def, err := s.Project(ctx, f.team.ID, berth.DefaultProject)
		must(t, err)
		if f.app.ProjectID != def.ID {
			t.Fatalf("app without a project went to %q, want the default project %q", f.app.ProjectID, def.ID)
		}
		got, err := s.App(ctx, f.team.ID, "web")
		must(t, err)
		if got.ProjectID != def.ID {
			t.Fatalf("stored app project %q, want %q", got.ProjectID, def.ID)
		}
		shop := &berth.Project{TeamID: f.team.ID, Name: "shop", CreatedAt: t0}
		must(t, s.CreateProject(ctx, shop))
		wantKind(t, s.CreateProject(ctx, &berth.Project{TeamID: f.team.ID, Name: "shop"}), berth.Conflict)
		must(t, s.CreateProject(ctx, &berth.Project{TeamID: other.team.ID, Name: "shop"}))

		// An app cannot be put into another team's project.
		otherDef, err := s.Project(ctx, other.team.ID, berth.DefaultProject)
		must(t, err)
		a := newApp(f.team.ID, "api")
		a.ProjectID = otherDef.ID
		wantKind(t, s.CreateApp(ctx, a), berth.NotFound)
		a.ProjectID = shop.ID
		must(t, s.CreateApp(ctx, a))

		counts, err := s.ProjectAppCounts(ctx, f.team.ID)
		must(t, err)
		if len(counts) != 2 || counts[def.ID] != 1 || counts[shop.ID] != 1 {
			t.Fatalf("ProjectAppCounts = %v, want 1 app in default and 1 in shop", counts)
		}
		must(t, s.CreateApp(ctx, newApp(f.team.ID, "worker")))
		if counts, err = s.ProjectAppCounts(ctx, f.team.ID); err != nil || counts[def.ID] != 2 {
			t.Fatalf("ProjectAppCounts after a second default app = %v, %v", counts, err)
		}
		if counts, err = s.ProjectAppCounts(ctx, other.team.ID); err != nil || len(counts) != 1 || counts[otherDef.ID] != 1 {
			t.Fatalf("ProjectAppCounts of the other team = %v, %v; want only its own app", counts, err)
		}

		list, err := s.Projects(ctx, f.team.ID)
		must(t, err)
		if len(list) != 2 || list[0].Name != "default" || list[1].Name != "shop" || !list[1].CreatedAt.Equal(us(t0)) {
			t.Fatalf("Projects = %+v", list)
		}
		if p, err := s.Project(ctx, f.team.ID, shop.ID); err != nil || p.Name != "shop" {
			t.Fatalf("Project by ID = %+v, %v", p, err)
		}
		_, err = s.Project(ctx, other.team.ID, shop.ID)
		wantKind(t, err, berth.NotFound)

		wantKind(t, s.DeleteProject(ctx, f.team.ID, shop.ID), berth.Conflict) // has "api"
		wantKind(t, s.DeleteProject(ctx, f.team.ID, def.ID), berth.Conflict)  // the default
		wantKind(t, s.DeleteProject(ctx, other.team.ID, shop.ID), berth.NotFound)
		must(t, s.DeleteApp(ctx, f.team.ID, a.ID))
		must(t, s.DeleteProject(ctx, f.team.ID, shop.ID))
		wantKind(t, s.DeleteProject(ctx, f.team.ID, shop.ID), berth.NotFound)
	})
}

// addUser creates a user and makes them a member of f's team.
func addUser(t *testing.T, s *Store, f fixture, name string, role berth.Role) *berth.User {
	t.Helper()
	u := &berth.User{Name: name, Email: name + "@example.com", CreatedAt: t0}
	must(t, s.CreateUser(ctxT(t), u))
	must(t, s.AddMember(ctxT(t), f.team.ID, u.ID, role))
	return u
}

func TestMembers(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme")
		other := newFixture(t, s, "other")
		dev := addUser(t, s, f, "dev", berth.RoleDeveloper)
		wantKind(t, s.AddMember(ctx, f.team.ID, dev.ID, "emperor"), berth.Invalid)
		shop := &berth.Project{TeamID: f.team.ID, Name: "shop"}
		must(t, s.CreateProject(ctx, shop))
		otherDef, err := s.Project(ctx, other.team.ID, berth.DefaultProject)
		must(t, err)

		// Grants: only the team's projects, only for developers and viewers.
		wantKind(t, s.SetMemberProjects(ctx, f.team.ID, dev.ID, []string{otherDef.ID}), berth.NotFound)
		wantKind(t, s.SetMemberProjects(ctx, f.team.ID, f.user.ID, []string{shop.ID}), berth.Invalid)
		wantKind(t, s.SetMemberProjects(ctx, other.team.ID, dev.ID, nil), berth.NotFound)
		must(t, s.SetMemberProjects(ctx, f.team.ID, dev.ID, []string{shop.ID, shop.ID}))
		if p, err := s.MemberProjects(ctx, f.team.ID, dev.ID); err != nil || len(p) != 1 || p[0] != shop.ID {
			t.Fatalf("MemberProjects = %v, %v", p, err)
		}
		if p, err := s.MemberProjects(ctx, f.team.ID, f.user.ID); err != nil || p != nil {
			t.Fatalf("owner's MemberProjects = %v, %v; want nil", p, err)
		}
		ms, err := s.Members(ctx, f.team.ID)
		must(t, err)
		if len(ms) != 2 || ms[0].User.Name != "acme-user" || ms[0].Role != berth.RoleOwner || ms[1].User.ID != dev.ID ||
			len(ms[1].Projects) != 1 || ms[0].Projects != nil {
			t.Fatalf("Members = %+v", ms)
		}

		// The last owner can be neither demoted nor removed.
		wantKind(t, s.SetMemberRole(ctx, f.team.ID, f.user.ID, berth.RoleAdmin), berth.Conflict)
		wantKind(t, s.RemoveMember(ctx, f.team.ID, f.user.ID), berth.Conflict)
		wantKind(t, s.SetMemberRole(ctx, f.team.ID, "user_nope", berth.RoleAdmin), berth.NotFound)
		// Promotion to admin drops the grants.
		must(t, s.SetMemberRole(ctx, f.team.ID, dev.ID, berth.RoleOwner))
		if p, _ := s.MemberProjects(ctx, f.team.ID, dev.ID); p != nil {
			t.Fatalf("an owner keeps grants %v", p)
		}
		must(t, s.SetMemberRole(ctx, f.team.ID, f.user.ID, berth.RoleViewer)) // another owner exists now
		if role, _ := s.Member(ctx, f.team.ID, f.user.ID); role != berth.RoleViewer {
			t.Fatalf("role = %q", role)
		}

		// Removal takes the member's tokens in that team, not elsewhere.
		must(t, s.AddMember(ctx, other.team.ID, dev.ID, berth.RoleViewer))
		must(t, s.CreateToken(ctx, &berth.Token{TeamID: f.team.ID, UserID: dev.ID, Name: "a", Hash: []byte("a")}))
		must(t, s.CreateToken(ctx, &berth.Token{TeamID: other.team.ID, UserID: dev.ID, Name: "b", Hash: []byte("b")}))
		must(t, s.SetMemberRole(ctx, f.team.ID, f.user.ID, berth.RoleOwner))
		must(t, s.RemoveMember(ctx, f.team.ID, dev.ID))
		wantKind(t, s.RemoveMember(ctx, f.team.ID, dev.ID), berth.NotFound)
		if _, err := s.TokenByHash(ctx, []byte("a")); !berth.IsKind(err, berth.NotFound) {
			t.Fatalf("the removed member's token survives: %v", err)
		}
		if _, err := s.TokenByHash(ctx, []byte("b")); err != nil {
			t.Fatalf("the token in another team went too: %v", err)
		}

		teams, err := s.TeamsOf(ctx, dev.ID)
		must(t, err)
		if len(teams) != 1 || teams[0].Team.ID != other.team.ID || teams[0].Role != berth.RoleViewer {
			t.Fatalf("TeamsOf = %+v", teams)
		}
		nt := &berth.Team{Name: "new"}
		must(t, s.CreateTeamWithOwner(ctx, nt, dev.ID))
		wantKind(t, s.CreateTeamWithOwner(ctx, &berth.Team{Name: "new"}, dev.ID), berth.Conflict)
		wantKind(t, s.CreateTeamWithOwner(ctx, &berth.Team{Name: "newer"}, "user_nope"), berth.NotFound)
		if _, err := s.TeamByName(ctx, "newer"); !berth.IsKind(err, berth.NotFound) {
			t.Fatalf("a failed CreateTeamWithOwner left its team: %v", err)
		}
		if role, err := s.Member(ctx, nt.ID, dev.ID); err != nil || role != berth.RoleOwner {
			t.Fatalf("creator's role = %q, %v", role, err)
		}
		if _, err := s.Project(ctx, nt.ID, berth.DefaultProject); err != nil {
			t.Fatalf("new team's default project: %v", err)
		}
	})
}

// TestLastOwnerRace demotes two owners at once: one must stay.
func TestLastOwnerRace(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme")
		second := addUser(t, s, f, "second", berth.RoleOwner)
		for range 5 {
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i, u := range []string{f.user.ID, second.ID} {
				wg.Go(func() { errs[i] = s.SetMemberRole(ctx, f.team.ID, u, berth.RoleAdmin) })
			}
			wg.Wait()
			owners := 0
			for _, u := range []string{f.user.ID, second.ID} {
				if r, _ := s.Member(ctx, f.team.ID, u); r == berth.RoleOwner {
					owners++
				}
			}
			if owners != 1 || (errs[0] == nil) == (errs[1] == nil) {
				t.Fatalf("after two concurrent demotions: %d owners, errors %v", owners, errs)
			}
			must(t, s.SetMemberRole(ctx, f.team.ID, f.user.ID, berth.RoleOwner))
			must(t, s.SetMemberRole(ctx, f.team.ID, second.ID, berth.RoleOwner))
		}
	})
}

func TestInvitations(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme")
		other := newFixture(t, s, "other")
		shop := &berth.Project{TeamID: f.team.ID, Name: "shop"}
		must(t, s.CreateProject(ctx, shop))
		inv := &berth.Invitation{TeamID: f.team.ID, Email: "ann@example.com", Role: berth.RoleDeveloper, Projects: []string{shop.ID},
			Hash: []byte("secret-1"), InvitedBy: f.user.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
		must(t, s.CreateInvitation(ctx, inv))
		otherDef, _ := s.Project(ctx, other.team.ID, berth.DefaultProject)
		wantKind(t, s.CreateInvitation(ctx, &berth.Invitation{TeamID: f.team.ID, Email: "x@example.com", Role: berth.RoleViewer,
			Projects: []string{otherDef.ID}, Hash: []byte("x"), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}), berth.NotFound)
		list, err := s.Invitations(ctx, f.team.ID)
		must(t, err)
		if len(list) != 1 || list[0].Email != "ann@example.com" || len(list[0].Projects) != 1 || list[0].AcceptedAt != nil {
			t.Fatalf("Invitations = %+v", list)
		}
		if l, _ := s.Invitations(ctx, other.team.ID); len(l) != 0 {
			t.Fatalf("other team sees %d invitations", len(l))
		}

		// Wrong e-mail, wrong secret, expired: all NotFound, nothing created.
		_, err = s.AcceptInvitation(ctx, []byte("secret-1"), Acceptance{User: &berth.User{Name: "eve", Email: "eve@example.com"}, NewUser: true}, t0)
		wantKind(t, err, berth.NotFound)
		_, err = s.AcceptInvitation(ctx, []byte("nope"), Acceptance{User: &berth.User{Name: "ann", Email: "ann@example.com"}, NewUser: true}, t0)
		wantKind(t, err, berth.NotFound)
		_, err = s.AcceptInvitation(ctx, []byte("secret-1"), Acceptance{User: &berth.User{Name: "ann", Email: "ann@example.com"}, NewUser: true}, t0.Add(time.Hour))
		wantKind(t, err, berth.NotFound)
		// An existing account's e-mail cannot be taken by a new account.
		_, err = s.AcceptInvitation(ctx, []byte("secret-1"), Acceptance{User: &berth.User{Name: "ann", Email: "ANN@example.com"}, NewUser: true}, t0)
		if err != nil {
			t.Fatalf("accept with the e-mail in another case: %v", err)
		}
		ms, _ := s.Members(ctx, f.team.ID)
		if len(ms) != 2 || ms[0].User.Name != "acme-user" || ms[1].User.Name != "ann" || ms[1].Role != berth.RoleDeveloper || len(ms[1].Projects) != 1 {
			t.Fatalf("members after accepting = %+v", ms)
		}
		_, err = s.AcceptInvitation(ctx, []byte("secret-1"), Acceptance{User: &ms[1].User}, t0)
		wantKind(t, err, berth.NotFound) // single use

		// An existing user accepts an invitation to their own e-mail.
		inv2 := &berth.Invitation{TeamID: other.team.ID, Email: "ann@example.com", Role: berth.RoleViewer,
			Hash: []byte("secret-2"), InvitedBy: other.user.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
		must(t, s.CreateInvitation(ctx, inv2))
		_, err = s.AcceptInvitation(ctx, []byte("secret-2"), Acceptance{User: &berth.User{Name: "ann2", Email: "ann@example.com"}, NewUser: true}, t0)
		wantKind(t, err, berth.Conflict)
		got, err := s.AcceptInvitation(ctx, []byte("secret-2"), Acceptance{User: &ms[1].User}, t0)
		must(t, err)
		if got.TeamID != other.team.ID || got.AcceptedBy != ms[1].User.ID {
			t.Fatalf("accepted %+v", got)
		}
		wantKind(t, s.DeleteInvitation(ctx, other.team.ID, inv.ID), berth.NotFound)
		must(t, s.DeleteInvitation(ctx, f.team.ID, inv.ID))
	})
}

// TestInvitationAcceptedTwiceConcurrently accepts one invitation from many
// goroutines at once: exactly one succeeds.
func TestInvitationAcceptedTwiceConcurrently(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme")
		for round := range 3 {
			email := "ann" + string(rune('a'+round)) + "@example.com"
			hash := []byte("secret-" + email)
			must(t, s.CreateInvitation(ctx, &berth.Invitation{TeamID: f.team.ID, Email: email, Role: berth.RoleViewer,
				Hash: hash, InvitedBy: f.user.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
			// Round 0: new accounts race; round 1: the existing account
			// races itself; round 2: both at once.
			existing := &berth.User{Name: "existing", Email: email, CreatedAt: t0}
			if round > 0 {
				must(t, s.CreateUser(ctx, existing))
			}
			const n = 8
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i := range n {
				a := Acceptance{User: &berth.User{Name: "ann", Email: email}, NewUser: true}
				if round == 1 || round == 2 && i%2 == 1 {
					a = Acceptance{User: existing}
				}
				wg.Go(func() { _, errs[i] = s.AcceptInvitation(ctx, hash, a, t0) })
			}
			wg.Wait()
			ok := 0
			for _, err := range errs {
				if err == nil {
					ok++
				} else if !berth.IsKind(err, berth.NotFound) && !berth.IsKind(err, berth.Conflict) {
					t.Errorf("unexpected error: %v", err)
				}
			}
			if ok != 1 {
				t.Fatalf("round %d: %d acceptances succeeded, want exactly 1: %v", round, ok, errs)
			}
		}
	})
}

func TestAuditEvents(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme")
		add := func(team, action string, at time.Time, outcome berth.Outcome) {
			must(t, s.AddAuditEvent(ctx, &berth.AuditEvent{TeamID: team, At: at, ActorID: f.user.ID, ActorName: "acme-user",
				Action: action, Target: "app=web", ClientAddr: "192.0.2.1", Outcome: outcome, Status: 201}))
		}
		add(f.team.ID, "app.create", t0, berth.OutcomeSuccess)
		add(f.team.ID, "app.delete", t0.Add(time.Minute), berth.OutcomeDenied)
		add(f.team.ID, "member.remove", t0.Add(2*time.Minute), berth.OutcomeSuccess)
		add("", "app.create", t0, berth.OutcomeDenied)
		add("team_other", "app.create", t0, berth.OutcomeSuccess)
		list := func(fl berth.AuditFilter) []string {
			var out []string
			must(t, s.AuditEvents(ctx, f.team.ID, fl, func(e *berth.AuditEvent) error {
				out = append(out, e.Action)
				return nil
			}))
			return out
		}
		for name, c := range map[string]struct {
			f    berth.AuditFilter
			want []string
		}{
			"all":     {berth.AuditFilter{}, []string{"member.remove", "app.delete", "app.create"}},
			"prefix":  {berth.AuditFilter{Action: "app."}, []string{"app.delete", "app.create"}},
			"exact":   {berth.AuditFilter{Action: "app"}, nil},
			"since":   {berth.AuditFilter{Since: t0.Add(time.Minute)}, []string{"member.remove", "app.delete"}},
			"until":   {berth.AuditFilter{Until: t0.Add(time.Minute)}, []string{"app.create"}},
			"outcome": {berth.AuditFilter{Outcome: berth.OutcomeDenied}, []string{"app.delete"}},
			"limit":   {berth.AuditFilter{Limit: 1}, []string{"member.remove"}},
			"actor":   {berth.AuditFilter{ActorID: "user_nope"}, nil},
		} {
			if got := list(c.f); len(got) != len(c.want) || (len(got) > 0 && got[0] != c.want[0]) || (len(got) > 1 && got[1] != c.want[1]) {
				t.Errorf("%s: %v, want %v", name, got, c.want)
			}
		}
		var one *berth.AuditEvent
		must(t, s.AuditEvents(ctx, f.team.ID, berth.AuditFilter{Limit: 1}, func(e *berth.AuditEvent) error { one = e; return nil }))
		if one.ClientAddr != "192.0.2.1" || one.Status != 201 || !one.At.Equal(us(t0.Add(2*time.Minute))) || one.TeamID != f.team.ID {
			t.Errorf("event = %+v", one)
		}
	})
}
