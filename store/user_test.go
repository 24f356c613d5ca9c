package store

import (
	"bytes"
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthhq/berth"
)

func hash32(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

func TestPasswordsAndEmail(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme")
		u, err := s.UserByEmail(ctx, "  ACME@Example.COM ")
		must(t, err)
		if u.ID != f.user.ID {
			t.Fatalf("UserByEmail found %s, want %s", u.ID, f.user.ID)
		}
		for _, e := range []string{"", "other@example.com", "acme@example.co"} {
			_, err := s.UserByEmail(ctx, e)
			wantKind(t, err, berth.NotFound)
		}
		// Another user may not take the address in another case.
		other := &berth.User{Name: "other", Email: "other@example.com", CreatedAt: t0}
		must(t, s.CreateUser(ctx, other))
		wantKind(t, s.SetUserEmail(ctx, other.ID, "Acme@example.com"), berth.Conflict)
		wantKind(t, s.CreateUser(ctx, &berth.User{Name: "x", Email: "ACME@EXAMPLE.COM", CreatedAt: t0}), berth.Conflict)
		must(t, s.SetUserEmail(ctx, other.ID, "Other2@example.com"))
		wantKind(t, s.SetUserEmail(ctx, "user_nope", "z@example.com"), berth.NotFound)

		h, err := s.PasswordHash(ctx, f.user.ID)
		must(t, err)
		if h != "" {
			t.Fatalf("new user has password hash %q", h)
		}
		must(t, s.SetPassword(ctx, f.user.ID, "$argon2id$x", t0))
		if h, _ := s.PasswordHash(ctx, f.user.ID); h != "$argon2id$x" {
			t.Fatalf("hash %q", h)
		}
		wantKind(t, s.SetPassword(ctx, "user_nope", "h", t0), berth.NotFound)
		_, err = s.PasswordHash(ctx, "user_nope")
		wantKind(t, err, berth.NotFound)

		teams, err := s.UserTeams(ctx, f.user.ID)
		must(t, err)
		if len(teams) != 1 || teams[0].ID != f.team.ID {
			t.Fatalf("UserTeams = %+v", teams)
		}
		if teams, _ := s.UserTeams(ctx, other.ID); len(teams) != 0 {
			t.Fatalf("a user of no team has teams %+v", teams)
		}
	})
}

func TestSessions(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme")
		mk := func(secret string) *berth.Session {
			ss := &berth.Session{ID: hash32(secret), UserID: f.user.ID, TeamID: f.team.ID, CSRF: "csrf-" + secret,
				CreatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour), LastSeenAt: t0, ClientAddr: "192.0.2.1", UserAgent: "test"}
			must(t, s.CreateSession(ctx, ss))
			return ss
		}
		a, b, c := mk("a"), mk("b"), mk("c")
		wantKind(t, s.CreateSession(ctx, a), berth.Conflict)
		wantKind(t, s.CreateSession(ctx, &berth.Session{ID: []byte("short")}), berth.Invalid)
		wantKind(t, s.CreateSession(ctx, &berth.Session{ID: hash32("z"), UserID: "user_nope", TeamID: f.team.ID, CreatedAt: t0, ExpiresAt: t0, LastSeenAt: t0}), berth.NotFound)

		got, err := s.SessionByHash(ctx, a.ID)
		must(t, err)
		if got.UserID != f.user.ID || got.TeamID != f.team.ID || got.CSRF != "csrf-a" || !got.ExpiresAt.Equal(us(t0.Add(24*time.Hour))) ||
			!got.LastSeenAt.Equal(us(t0)) || got.ClientAddr != "192.0.2.1" || got.UserAgent != "test" {
			t.Fatalf("session = %+v", got)
		}
		must(t, s.TouchSession(ctx, a.ID, t0.Add(time.Hour)))
		got, _ = s.SessionByHash(ctx, a.ID)
		if !got.LastSeenAt.Equal(us(t0.Add(time.Hour))) {
			t.Fatalf("last seen %v", got.LastSeenAt)
		}
		wantKind(t, s.TouchSession(ctx, hash32("nope"), t0), berth.NotFound)

		// A session moves to another team of its user; never to a team
		// that does not exist, nor someone else's session.
		second := newFixture(t, s, "second")
		must(t, s.SetSessionTeam(ctx, a.ID, f.user.ID, second.team.ID))
		if got, err := s.SessionByHash(ctx, a.ID); err != nil || got.TeamID != second.team.ID || got.CSRF != "csrf-a" {
			t.Fatalf("after switching, session = %+v, %v", got, err)
		}
		wantKind(t, s.SetSessionTeam(ctx, a.ID, second.user.ID, f.team.ID), berth.NotFound)
		wantKind(t, s.SetSessionTeam(ctx, hash32("nope"), f.user.ID, f.team.ID), berth.NotFound)
		wantKind(t, s.SetSessionTeam(ctx, a.ID, f.user.ID, "team_nope"), berth.NotFound)
		must(t, s.SetSessionTeam(ctx, a.ID, f.user.ID, f.team.ID))

		// Every other session of the user goes; the kept one stays.
		n, err := s.DeleteUserSessions(ctx, f.user.ID, b.ID)
		must(t, err)
		if n != 2 {
			t.Fatalf("deleted %d sessions, want 2", n)
		}
		for _, gone := range [][]byte{a.ID, c.ID} {
			_, err := s.SessionByHash(ctx, gone)
			wantKind(t, err, berth.NotFound)
		}
		_, err = s.SessionByHash(ctx, b.ID)
		must(t, err)
		must(t, s.DeleteSession(ctx, b.ID))
		must(t, s.DeleteSession(ctx, b.ID))
		_, err = s.SessionByHash(ctx, b.ID)
		wantKind(t, err, berth.NotFound)

		// nil keeps none.
		mk("d")
		mk("e")
		if n, err := s.DeleteUserSessions(ctx, f.user.ID, nil); err != nil || n != 2 {
			t.Fatalf("delete all: %d, %v", n, err)
		}

		// Expired and idle sessions are collected.
		old := mk("old")
		must(t, s.TouchSession(ctx, old.ID, t0))
		fresh := mk("fresh")
		must(t, s.TouchSession(ctx, fresh.ID, t0.Add(2*time.Hour)))
		if n, err := s.DeleteExpiredSessions(ctx, t0.Add(2*time.Hour), t0.Add(time.Hour)); err != nil || n != 1 {
			t.Fatalf("collect: %d, %v", n, err)
		}
		if _, err := s.SessionByHash(ctx, fresh.ID); err != nil {
			t.Fatal(err)
		}

		// Sessions go with their user.
		_, err = s.writer().exec(ctx, `DELETE FROM users WHERE id = ?`, f.user.ID)
		must(t, err)
		_, err = s.SessionByHash(ctx, fresh.ID)
		wantKind(t, err, berth.NotFound)
	})
}

// TestLastTeam checks that the team a user signed in to or switched to
// last is remembered, and forgotten with the team.
func TestLastTeam(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme")
		last := func(want string) {
			t.Helper()
			if got, err := s.LastTeam(ctx, f.user.ID); err != nil || got != want {
				t.Fatalf("LastTeam = %q, %v; want %q", got, err, want)
			}
		}
		last("")
		_, err := s.LastTeam(ctx, "user_nope")
		wantKind(t, err, berth.NotFound)

		sea := &berth.Team{Name: "sea", CreatedAt: t0}
		must(t, s.CreateTeam(ctx, sea))
		ss := &berth.Session{ID: hash32("a"), UserID: f.user.ID, TeamID: sea.ID, CSRF: "c", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), LastSeenAt: t0}
		must(t, s.CreateSession(ctx, ss))
		last(sea.ID)
		must(t, s.SetSessionTeam(ctx, ss.ID, f.user.ID, f.team.ID))
		last(f.team.ID)
		// A refused switch changes nothing.
		wantKind(t, s.SetSessionTeam(ctx, ss.ID, f.user.ID, "team_nope"), berth.NotFound)
		wantKind(t, s.SetSessionTeam(ctx, hash32("nope"), f.user.ID, sea.ID), berth.NotFound)
		last(f.team.ID)
		wantKind(t, s.CreateSession(ctx, &berth.Session{ID: hash32("b"), UserID: f.user.ID, TeamID: "team_nope", CreatedAt: t0, ExpiresAt: t0, LastSeenAt: t0}), berth.NotFound)
		last(f.team.ID)

		// Another user's last team is their own.
		other := newFixture(t, s, "other")
		must(t, s.CreateSession(ctx, &berth.Session{ID: hash32("c"), UserID: other.user.ID, TeamID: sea.ID, CSRF: "c", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), LastSeenAt: t0}))
		last(f.team.ID)

		// A deleted team is forgotten.
		must(t, s.SetSessionTeam(ctx, ss.ID, f.user.ID, sea.ID))
		last(sea.ID)
		_, err = s.writer().exec(ctx, `DELETE FROM teams WHERE id = ?`, sea.ID)
		must(t, err)
		last("")
	})
}

func TestDeleteUserTokens(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme")
		g := newFixture(t, s, "globex")
		for i, u := range []string{f.user.ID, f.user.ID, g.user.ID} {
			team := f.team.ID
			if u == g.user.ID {
				team = g.team.ID
			}
			must(t, s.CreateToken(ctx, &berth.Token{TeamID: team, UserID: u, Name: "t", Scopes: []berth.Scope{berth.ScopeRead}, Hash: []byte{byte(i)}, CreatedAt: t0}))
		}
		n, err := s.DeleteUserTokens(ctx, f.user.ID)
		must(t, err)
		if n != 2 {
			t.Fatalf("deleted %d, want 2", n)
		}
		if toks, _ := s.Tokens(ctx, g.team.ID); len(toks) != 1 {
			t.Fatalf("the other user's tokens: %d, want 1", len(toks))
		}
	})
}

func TestTOTPAndRecoveryCodes(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme")
		sec, on, err := s.TOTP(ctx, f.user.ID)
		if err != nil || sec != "" || on {
			t.Fatalf("fresh user TOTP = %q %v %v", sec, on, err)
		}
		wantKind(t, s.EnableTOTP(ctx, f.user.ID), berth.Conflict)
		must(t, s.SetTOTPSecret(ctx, f.user.ID, "JBSWY3DPEHPK3PXP"))
		sec, on, err = s.TOTP(ctx, f.user.ID)
		if err != nil || sec != "JBSWY3DPEHPK3PXP" || on {
			t.Fatalf("TOTP = %q %v %v", sec, on, err)
		}
		// Sealed at rest, bound to the user.
		var raw []byte
		must(t, s.r.QueryRowContext(ctx, s.reader().bind(`SELECT totp_secret FROM users WHERE id = ?`), f.user.ID).Scan(&raw))
		if bytes.Contains(raw, []byte("JBSWY3DPEHPK3PXP")) {
			t.Fatal("the TOTP secret is stored in clear")
		}
		must(t, s.EnableTOTP(ctx, f.user.ID))
		if _, on, _ := s.TOTP(ctx, f.user.ID); !on {
			t.Fatal("not enabled")
		}
		wantKind(t, s.SetTOTPSecret(ctx, "user_nope", "x"), berth.NotFound)

		// Steps only move forward; two racers with one step: one wins.
		for _, tc := range []struct {
			step int64
			want bool
		}{{100, true}, {100, false}, {99, false}, {101, true}} {
			ok, err := s.UseTOTPStep(ctx, f.user.ID, tc.step)
			must(t, err)
			if ok != tc.want {
				t.Errorf("step %d: %v, want %v", tc.step, ok, tc.want)
			}
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if ok, err := s.UseTOTPStep(ctx, f.user.ID, 200); err == nil && ok {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Errorf("%d racers used step 200, want 1", wins.Load())
		}

		codes := [][]byte{hash32("r1"), hash32("r2"), hash32("r3")}
		must(t, s.ReplaceRecoveryCodes(ctx, f.user.ID, codes))
		wantKind(t, s.ReplaceRecoveryCodes(ctx, f.user.ID, [][]byte{hash32("x"), hash32("x")}), berth.Invalid)
		if n, _ := s.RecoveryCodesLeft(ctx, f.user.ID); n != 3 {
			t.Fatalf("left %d after a refused replace, want 3", n)
		}
		ok, err := s.ConsumeRecoveryCode(ctx, f.user.ID, hash32("r2"), t0)
		must(t, err)
		if !ok {
			t.Fatal("r2 refused")
		}
		if ok, _ := s.ConsumeRecoveryCode(ctx, f.user.ID, hash32("r2"), t0); ok {
			t.Fatal("r2 accepted twice")
		}
		if ok, _ := s.ConsumeRecoveryCode(ctx, f.user.ID, hash32("nope"), t0); ok {
			t.Fatal("an unknown code accepted")
		}
		g := newFixture(t, s, "globex")
		if ok, _ := s.ConsumeRecoveryCode(ctx, g.user.ID, hash32("r1"), t0); ok {
			t.Fatal("another user's code accepted")
		}
		var wg2 sync.WaitGroup
		wins.Store(0)
		for range 8 {
			wg2.Go(func() {
				if ok, err := s.ConsumeRecoveryCode(ctx, f.user.ID, hash32("r3"), t0); err == nil && ok {
					wins.Add(1)
				}
			})
		}
		wg2.Wait()
		if wins.Load() != 1 {
			t.Errorf("%d racers used r3, want 1", wins.Load())
		}
		if n, _ := s.RecoveryCodesLeft(ctx, f.user.ID); n != 1 {
			t.Fatalf("left %d, want 1", n)
		}
		// Replacing gives fresh codes; disabling forgets everything.
		must(t, s.ReplaceRecoveryCodes(ctx, f.user.ID, codes))
		if n, _ := s.RecoveryCodesLeft(ctx, f.user.ID); n != 3 {
			t.Fatalf("left %d after replace, want 3", n)
		}
		must(t, s.DisableTOTP(ctx, f.user.ID))
		sec, on, err = s.TOTP(ctx, f.user.ID)
		if err != nil || sec != "" || on {
			t.Fatalf("after disable TOTP = %q %v %v", sec, on, err)
		}
		if n, _ := s.RecoveryCodesLeft(ctx, f.user.ID); n != 0 {
			t.Fatalf("left %d after disable, want 0", n)
		}
		wantKind(t, s.DisableTOTP(ctx, "user_nope"), berth.NotFound)
	})
}

func TestIdentities(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme")
		g := newFixture(t, s, "globex")
		id := &berth.Identity{Issuer: "https://idp.example.com", Subject: "sub-1", UserID: f.user.ID, CreatedAt: t0}
		must(t, s.LinkIdentity(ctx, id))
		wantKind(t, s.LinkIdentity(ctx, &berth.Identity{Issuer: id.Issuer, Subject: id.Subject, UserID: g.user.ID, CreatedAt: t0}), berth.Conflict)
		wantKind(t, s.LinkIdentity(ctx, &berth.Identity{Issuer: id.Issuer, Subject: "sub-2", UserID: "user_nope", CreatedAt: t0}), berth.NotFound)
		wantKind(t, s.LinkIdentity(ctx, &berth.Identity{Issuer: "", Subject: "x", UserID: f.user.ID}), berth.Invalid)
		// The same subject at another issuer is another identity.
		must(t, s.LinkIdentity(ctx, &berth.Identity{Issuer: "https://other.example.com", Subject: "sub-1", UserID: g.user.ID, CreatedAt: t0}))

		u, err := s.IdentityUser(ctx, id.Issuer, "sub-1")
		must(t, err)
		if u != f.user.ID {
			t.Fatalf("identity user %s, want %s", u, f.user.ID)
		}
		_, err = s.IdentityUser(ctx, id.Issuer, "SUB-1")
		wantKind(t, err, berth.NotFound)
		ids, err := s.Identities(ctx, f.user.ID)
		must(t, err)
		if len(ids) != 1 || ids[0].Subject != "sub-1" || !ids[0].CreatedAt.Equal(us(t0)) {
			t.Fatalf("identities %+v", ids)
		}
		// A user cannot unlink another user's identity.
		wantKind(t, s.UnlinkIdentity(ctx, g.user.ID, id.Issuer, "sub-1"), berth.NotFound)
		must(t, s.UnlinkIdentity(ctx, f.user.ID, id.Issuer, "sub-1"))
		_, err = s.IdentityUser(ctx, id.Issuer, "sub-1")
		wantKind(t, err, berth.NotFound)
	})
}

func TestTwoFactor(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme")
		g := newFixture(t, s, "globex")
		state := func(team, user string) (bool, bool) {
			t.Helper()
			required, enabled, err := s.TwoFactor(ctx, team, user)
			must(t, err)
			return required, enabled
		}
		if r, e := state(f.team.ID, f.user.ID); r || e {
			t.Fatalf("default: required %v, enabled %v", r, e)
		}
		must(t, s.SetTeamRequire2FA(ctx, f.team.ID, true))
		if r, _ := state(f.team.ID, f.user.ID); !r {
			t.Fatal("not set")
		}
		if r, _ := state(g.team.ID, g.user.ID); r {
			t.Fatal("another team changed")
		}
		must(t, s.SetTOTPSecret(ctx, f.user.ID, "JBSWY3DPEHPK3PXP"))
		if _, e := state(f.team.ID, f.user.ID); e {
			t.Fatal("enabled before it was confirmed")
		}
		must(t, s.EnableTOTP(ctx, f.user.ID))
		if _, e := state(f.team.ID, f.user.ID); !e {
			t.Fatal("not enabled")
		}
		must(t, s.SetTeamRequire2FA(ctx, f.team.ID, false))
		if r, _ := state(f.team.ID, f.user.ID); r {
			t.Fatal("not cleared")
		}
		wantKind(t, s.SetTeamRequire2FA(ctx, "team_nope", true), berth.NotFound)
		_, _, err := s.TwoFactor(ctx, "team_nope", f.user.ID)
		wantKind(t, err, berth.NotFound)
		_, _, err = s.TwoFactor(ctx, f.team.ID, "user_nope")
		wantKind(t, err, berth.NotFound)
	})
}
