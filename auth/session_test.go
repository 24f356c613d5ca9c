package auth

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/store"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

var (
	addrA = netip.MustParseAddr("192.0.2.1")
	addrB = netip.MustParseAddr("192.0.2.2")
)

func TestLimiterWindows(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l := NewLimiter()
	for i := range LoginFailsPerUser {
		if _, err := l.Check("Ann@example.com", addrA, t0); err != nil {
			t.Fatalf("failure %d refused early: %v", i, err)
		}
		l.Fail("ann@example.com", addrA, t0.Add(time.Duration(i)*time.Minute))
	}
	now := t0.Add(5 * time.Minute)
	wait, err := l.Check(" ANN@example.com", addrB, now) // any case, any address
	if !berth.IsKind(err, berth.TooMany) {
		t.Fatalf("sixth try: %v, want too many", err)
	}
	if wait != 10*time.Minute {
		t.Errorf("wait %s, want 10m (the first failure leaves the window at +15m)", wait)
	}
	// Other accounts from another address are not affected.
	if _, err := l.Check("bob@example.com", addrB, now); err != nil {
		t.Errorf("another account: %v", err)
	}
	// The window slides: the first failure leaves it at +15m.
	if _, err := l.Check("ann@example.com", addrB, t0.Add(15*time.Minute-time.Second)); err == nil {
		t.Error("allowed before the first failure left the window")
	}
	if _, err := l.Check("ann@example.com", addrB, t0.Add(15*time.Minute)); err != nil {
		t.Errorf("still refused once the first failure left the window: %v", err)
	}
	// A success clears the account, not the address.
	l.Succeed("ann@example.com")
	if _, err := l.Check("ann@example.com", addrB, now); err != nil {
		t.Errorf("after a success: %v", err)
	}

	// Per address: 20 failures over many accounts.
	l = NewLimiter()
	for i := range LoginFailsPerAddr {
		l.Fail("user"+string(rune('a'+i))+"@example.com", addrA, t0)
	}
	if _, err := l.Check("fresh@example.com", addrA, t0.Add(time.Minute)); !berth.IsKind(err, berth.TooMany) {
		t.Errorf("address after %d failures: %v, want too many", LoginFailsPerAddr, err)
	}
	if _, err := l.Check("fresh@example.com", addrB, t0.Add(time.Minute)); err != nil {
		t.Errorf("another address: %v", err)
	}
	l.Succeed("usera@example.com")
	if _, err := l.Check("fresh@example.com", addrA, t0.Add(time.Minute)); err == nil {
		t.Error("a success of one account cleared the address")
	}
	if _, err := l.Check("fresh@example.com", addrA, t0.Add(LoginWindow)); err != nil {
		t.Errorf("after the window: %v", err)
	}
}

func TestLimiterMemoryBounded(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l := NewLimiter()
	for i := range 3 * limiterPruneAtSize {
		l.Fail("u"+string(rune(i))+"@x", netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), t0.Add(time.Duration(i)*time.Second))
	}
	if n := len(l.accounts) + len(l.addrs); n > limiterMaxEntries {
		t.Errorf("%d entries, more than %d", n, limiterMaxEntries)
	}
	if n := len(l.accounts); n >= 3*limiterPruneAtSize {
		t.Errorf("%d accounts kept: windows that ended are not forgotten", n)
	}
}

func code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// account is a bootstrapped store with the admin's e-mail and password set.
func account(t *testing.T) (*store.Store, *berth.User, *berth.Team, time.Time) {
	t.Helper()
	ctx := context.Background()
	st := openStore(t)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	secret, err := Bootstrap(ctx, st, t0)
	if err != nil {
		t.Fatal(err)
	}
	p := auth(t, st, "Bearer "+secret, t0)
	if err := st.SetUserEmail(ctx, p.User.ID, "admin@example.com"); err != nil {
		t.Fatal(err)
	}
	h, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetPassword(ctx, p.User.ID, h, t0); err != nil {
		t.Fatal(err)
	}
	return st, p.User, p.Team, t0
}

func TestTOTPReplayAndRecovery(t *testing.T) {
	ctx := context.Background()
	st, user, _, t0 := account(t)
	secret, url, err := StartTOTP(ctx, st, user)
	if err != nil || !strings.HasPrefix(url, "otpauth://totp/berth:") {
		t.Fatalf("start: %q %v", url, err)
	}
	if _, err := ConfirmTOTP(ctx, st, user.ID, "000000", t0); !berth.IsKind(err, berth.Invalid) {
		t.Fatalf("confirm with a wrong code: %v", err)
	}
	codes, err := ConfirmTOTP(ctx, st, user.ID, code(t, secret, t0), t0)
	if err != nil || len(codes) != RecoveryCodeCount {
		t.Fatalf("confirm: %d codes, %v", len(codes), err)
	}
	if _, _, err := StartTOTP(ctx, st, user); !berth.IsKind(err, berth.Conflict) {
		t.Errorf("start again while on: %v", err)
	}
	lim := NewLimiter()
	login := func(c Credentials, at time.Time) error {
		c.Email, c.Password = "admin@example.com", "correct horse battery"
		_, err := Login(ctx, st, lim, c, addrA, at)
		return err
	}
	// The code used to confirm is spent.
	if err := login(Credentials{Code: code(t, secret, t0)}, t0); !berth.IsKind(err, berth.Unauthorized) {
		t.Errorf("the confirmation code again: %v", err)
	}
	if err := login(Credentials{}, t0); !berth.IsKind(err, berth.Unauthorized) || !strings.Contains(berth.ErrorMessage(err), "second factor") {
		t.Errorf("no second factor: %v", err)
	}
	t1 := t0.Add(time.Minute) // two steps later
	// A code from two steps back is outside the ±1 window.
	if err := login(Credentials{Code: code(t, secret, t1.Add(-61*time.Second))}, t1); !berth.IsKind(err, berth.Unauthorized) {
		t.Errorf("a code two steps old: %v", err)
	}
	// The next step's code (a fast clock) works once.
	if err := login(Credentials{Code: code(t, secret, t1.Add(30*time.Second))}, t1); err != nil {
		t.Fatalf("next step's code: %v", err)
	}
	if err := login(Credentials{Code: code(t, secret, t1.Add(30*time.Second))}, t1); !berth.IsKind(err, berth.Unauthorized) {
		t.Errorf("the same code twice: %v", err)
	}
	// And the current step's code is now older than the last one used.
	if err := login(Credentials{Code: code(t, secret, t1)}, t1); !berth.IsKind(err, berth.Unauthorized) {
		t.Errorf("an older code after a newer one: %v", err)
	}
	lim.Succeed("admin@example.com")
	// Recovery codes: any case and dashes, each once.
	rc := strings.ToUpper(strings.ReplaceAll(codes[3], "-", " "))
	if err := login(Credentials{RecoveryCode: rc}, t1); err != nil {
		t.Fatalf("recovery code: %v", err)
	}
	if err := login(Credentials{RecoveryCode: codes[3]}, t1); !berth.IsKind(err, berth.Unauthorized) {
		t.Errorf("a recovery code twice: %v", err)
	}
	if n, _ := st.RecoveryCodesLeft(ctx, user.ID); n != RecoveryCodeCount-1 {
		t.Errorf("%d codes left, want %d", n, RecoveryCodeCount-1)
	}
}

func TestLoginRefusals(t *testing.T) {
	ctx := context.Background()
	st, user, _, t0 := account(t)
	lim := NewLimiter()
	for name, c := range map[string]Credentials{
		"wrong password": {Email: "admin@example.com", Password: "wrong horse battery"},
		"unknown e-mail": {Email: "nobody@example.com", Password: "correct horse battery"},
	} {
		_, err := Login(ctx, st, lim, c, addrA, t0)
		if !berth.IsKind(err, berth.Unauthorized) || berth.ErrorMessage(err) != "wrong e-mail or password" {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := Login(ctx, st, lim, Credentials{Email: "admin@example.com"}, addrA, t0); !berth.IsKind(err, berth.Invalid) {
		t.Errorf("no password: %v", err)
	}
	// Case does not matter for the e-mail.
	u, err := Login(ctx, st, lim, Credentials{Email: "Admin@Example.com", Password: "correct horse battery"}, addrA, t0)
	if err != nil || u.ID != user.ID {
		t.Fatalf("login: %v", err)
	}
	// A user without a password cannot sign in with an empty one, nor any.
	other := &berth.User{Name: "nopw", Email: "nopw@example.com", CreatedAt: t0}
	if err := st.CreateUser(ctx, other); err != nil {
		t.Fatal(err)
	}
	if _, err := Login(ctx, st, lim, Credentials{Email: "nopw@example.com", Password: "anything at all"}, addrA, t0); !berth.IsKind(err, berth.Unauthorized) {
		t.Errorf("user without password: %v", err)
	}
	// Five failures lock the account, even for the right password.
	for range LoginFailsPerUser {
		Login(ctx, st, lim, Credentials{Email: "admin@example.com", Password: "wrong horse battery"}, addrB, t0)
	}
	if _, err := Login(ctx, st, lim, Credentials{Email: "admin@example.com", Password: "correct horse battery"}, addrB, t0); !berth.IsKind(err, berth.TooMany) {
		t.Errorf("after five failures: %v, want too many", err)
	}
	if _, err := Login(ctx, st, lim, Credentials{Email: "admin@example.com", Password: "correct horse battery"}, addrB, t0.Add(LoginWindow)); err != nil {
		t.Errorf("after the window: %v", err)
	}
}

func TestSessions(t *testing.T) {
	ctx := context.Background()
	st, user, team, t0 := account(t)
	secret, sess, err := StartSession(ctx, st, user.ID, team.ID, addrA, "test agent", t0)
	if err != nil {
		t.Fatal(err)
	}
	c := SessionCookieFor(secret, sess, true)
	if c.Name != "berth_session" || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || !c.Expires.Equal(t0.Add(SessionMax)) {
		t.Errorf("cookie %+v", c)
	}
	req := func(method, csrf, formCSRF string) *http.Request {
		var r *http.Request
		if formCSRF != "" {
			r = httptest.NewRequest(method, "/", strings.NewReader("csrf="+formCSRF))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			r = httptest.NewRequest(method, "/", nil)
		}
		r.AddCookie(&http.Cookie{Name: SessionCookie, Value: secret})
		if csrf != "" {
			r.Header.Set(CSRFHeader, csrf)
		}
		return r
	}
	p, err := Authenticate(ctx, st, req("GET", "", ""), t0)
	if err != nil || p.Token != nil || p.Session == nil || p.User.ID != user.ID || p.Role != berth.RoleOwner || !p.Can(berth.ScopeAdmin) {
		t.Fatalf("session principal %+v, %v", p, err)
	}
	// CSRF: missing or wrong is refused on mutations; right passes. The
	// wrong token differs from the right one in its last character only.
	wrong := sess.CSRF[:len(sess.CSRF)-1] + "A"
	if wrong == sess.CSRF {
		wrong = sess.CSRF[:len(sess.CSRF)-1] + "B"
	}
	for name, tc := range map[string]struct {
		method, header, form string
		ok                   bool
	}{
		"GET without":      {"GET", "", "", true},
		"HEAD without":     {"HEAD", "", "", true},
		"POST without":     {"POST", "", "", false},
		"DELETE without":   {"DELETE", "", "", false},
		"POST wrong":       {"POST", wrong, "", false},
		"POST prefix":      {"POST", sess.CSRF[:10], "", false},
		"POST right":       {"POST", sess.CSRF, "", true},
		"PUT right":        {"PUT", sess.CSRF, "", true},
		"form field right": {"POST", "", sess.CSRF, true},
		"form field wrong": {"POST", "", "nope", false},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Authenticate(ctx, st, req(tc.method, tc.header, tc.form), t0)
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok && !berth.IsKind(err, berth.Forbidden) {
				t.Fatalf("error %v, want forbidden", err)
			}
		})
	}
	// A bearer token needs no CSRF token, and wins over a cookie.
	tokSecret, _, err := IssueToken(ctx, st, team.ID, user.ID, "ci", []berth.Scope{berth.ScopeRead}, nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	r := req("POST", "", "")
	r.Header.Set("Authorization", "Bearer "+tokSecret)
	if p, err := Authenticate(ctx, st, r, t0); err != nil || p.Token == nil || p.Can(berth.ScopeWrite) {
		t.Fatalf("bearer with a cookie: %+v %v", p, err)
	}

	// Idle expiry: used within the idle timeout it lives on...
	at := t0
	for range 5 {
		at = at.Add(SessionIdle - time.Minute)
		if _, err := Authenticate(ctx, st, req("GET", "", ""), at); err != nil {
			t.Fatalf("at +%s: %v", at.Sub(t0), err)
		}
	}
	// ...until its absolute expiry.
	if _, err := Authenticate(ctx, st, req("GET", "", ""), t0.Add(SessionMax)); !berth.IsKind(err, berth.Unauthorized) {
		t.Errorf("past the absolute expiry: %v", err)
	}
	secret2, _, err := StartSession(ctx, st, user.ID, team.ID, addrA, "", t0)
	if err != nil {
		t.Fatal(err)
	}
	r = httptest.NewRequest("GET", "/", nil)
	r.AddCookie(&http.Cookie{Name: SessionCookie, Value: secret2})
	if _, err := Authenticate(ctx, st, r, t0.Add(SessionIdle)); !berth.IsKind(err, berth.Unauthorized) {
		t.Errorf("idle for SessionIdle: %v", err)
	}
	// Garbage cookies.
	for _, v := range []string{"x", strings.Repeat("a", 43), strings.Repeat("a", 5000)} {
		r := httptest.NewRequest("GET", "/", nil)
		r.AddCookie(&http.Cookie{Name: SessionCookie, Value: v})
		if _, err := Authenticate(ctx, st, r, t0); !berth.IsKind(err, berth.Unauthorized) {
			t.Errorf("cookie %.10q: %v", v, err)
		}
	}
}

func TestRevokeAndRequire2FA(t *testing.T) {
	ctx := context.Background()
	st, user, team, t0 := account(t)
	keep, keepSess, _ := StartSession(ctx, st, user.ID, team.ID, addrA, "", t0)
	other, _, _ := StartSession(ctx, st, user.ID, team.ID, addrA, "", t0)
	lim := NewLimiter()
	if _, _, err := ChangePassword(ctx, st, lim, user, "wrong horse battery", "new horse battery", addrA, keepSess.ID, t0); !berth.IsKind(err, berth.Forbidden) {
		t.Fatalf("wrong current password: %v", err)
	}
	if _, _, err := ChangePassword(ctx, st, lim, user, "correct horse battery", "short", addrA, keepSess.ID, t0); !berth.IsKind(err, berth.Invalid) {
		t.Fatalf("weak new password: %v", err)
	}
	sessions, tokens, err := ChangePassword(ctx, st, lim, user, "correct horse battery", "new horse battery", addrA, keepSess.ID, t0)
	if err != nil || sessions != 1 || tokens != 1 { // the bootstrap token
		t.Fatalf("change: %d sessions, %d tokens, %v", sessions, tokens, err)
	}
	withCookie := func(v string) *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		r.AddCookie(&http.Cookie{Name: SessionCookie, Value: v})
		return r
	}
	if _, err := Authenticate(ctx, st, withCookie(other), t0); !berth.IsKind(err, berth.Unauthorized) {
		t.Errorf("the other session survived: %v", err)
	}
	p, err := Authenticate(ctx, st, withCookie(keep), t0)
	if err != nil {
		t.Fatalf("the kept session: %v", err)
	}
	if p.MustEnrol2FA {
		t.Error("gated without the team requiring 2FA")
	}
	if err := st.SetTeamRequire2FA(ctx, team.ID, true); err != nil {
		t.Fatal(err)
	}
	if p, _ := Authenticate(ctx, st, withCookie(keep), t0); p == nil || !p.MustEnrol2FA {
		t.Error("not gated once the team requires 2FA")
	}
	secret, _, err := StartTOTP(ctx, st, user)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ConfirmTOTP(ctx, st, user.ID, code(t, secret, t0), t0); err != nil {
		t.Fatal(err)
	}
	if p, _ := Authenticate(ctx, st, withCookie(keep), t0); p == nil || p.MustEnrol2FA {
		t.Error("still gated with TOTP on")
	}
}

func TestCollectSessions(t *testing.T) {
	st, user, team, _ := account(t)
	ctx := context.Background()
	now := time.Now()
	addr := netip.MustParseAddr("127.0.0.1")
	_, old, err := StartSession(ctx, st, user.ID, team.ID, addr, "test", now.Add(-SessionIdle-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	_, fresh, err := StartSession(ctx, st, user.ID, team.ID, addr, "test", now)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { CollectSessions(cctx, st, time.Hour, slog.New(slog.DiscardHandler)); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := st.SessionByHash(ctx, old.ID); berth.IsKind(err, berth.NotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the idle session was not collected")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if _, err := st.SessionByHash(ctx, fresh.ID); err != nil {
		t.Errorf("the fresh session was collected: %v", err)
	}
}
