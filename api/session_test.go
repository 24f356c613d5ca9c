package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/auth"
	"github.com/berthhq/berth/auth/oidctest"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

const adminEmail, adminPassword = "admin@example.com", "correct horse battery"

// withConfig serves the env's store and engine through a Server made with
// cfg (Store, Engine and Log filled in), at a URL known before it is made.
func (e *testEnv) withConfig(cfg func(url string) Config) {
	e.t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	url := "http://" + srv.Listener.Addr().String()
	c := cfg(url)
	c.Store, c.Engine, c.Log = e.st, e.api.engine, slog.New(slog.NewTextHandler(e.logs, nil))
	e.api = New(c)
	srv.Config.Handler = e.api.Handler()
	srv.Start()
	e.t.Cleanup(srv.Close)
	e.srv = srv
}

// setAdminPassword gives the bootstrap admin an e-mail and a password
// through the API, as `berth passwd` does.
func (e *testEnv) setAdminPassword() PasswordResponse {
	e.t.Helper()
	return decode[PasswordResponse](e.t, e.do(e.tokens[berth.ScopeAdmin], "PUT", "/api/v1/me/password",
		map[string]string{"new_password": adminPassword, "email": adminEmail}), http.StatusOK)
}

// session is a browser session: its cookie and CSRF token.
type session struct{ cookie, csrf string }

func (e *testEnv) login(body map[string]string) (response, session) {
	e.t.Helper()
	r := e.do("", "POST", "/api/v1/login", body)
	var s session
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == auth.SessionCookie {
			s.cookie = c.Value
		}
	}
	if r.status == http.StatusOK {
		s.csrf = decode[LoginResponse](e.t, r, http.StatusOK).CSRFToken
	}
	return r, s
}

// as sends a request in a session; csrf adds its CSRF token.
func (e *testEnv) as(s session, csrf bool, method, path string, body any) response {
	e.t.Helper()
	h := []string{"Cookie", auth.SessionCookie + "=" + s.cookie}
	if csrf {
		h = append(h, auth.CSRFHeader, s.csrf)
	}
	return e.do("", method, path, body, h...)
}

func TestLoginSessionsCSRFAndRevocation(t *testing.T) {
	e := newEnv(t)
	// The bootstrap admin sets a password and e-mail with its token; every
	// token of the user goes, the one used included.
	pw := e.setAdminPassword()
	if pw.RevokedTokens != 5 || !strings.Contains(pw.Message, "including the one this request used") {
		t.Fatalf("password response %+v", pw)
	}
	if r := e.do(e.tokens[berth.ScopeAdmin], "GET", "/api/v1/me", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("the bootstrap token after the password change: %d", r.status)
	}

	if r, _ := e.login(map[string]string{"email": adminEmail, "password": "wrong horse battery"}); r.status != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d %s", r.status, r.body)
	}
	r, s1 := e.login(map[string]string{"email": "ADMIN@example.com", "password": adminPassword})
	if r.status != http.StatusOK || s1.cookie == "" || s1.csrf == "" {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	sc := r.header.Get("Set-Cookie")
	for _, attr := range []string{"HttpOnly", "Secure", "SameSite=Lax", "Path=/"} {
		if !strings.Contains(sc, attr) {
			t.Errorf("Set-Cookie %q lacks %s", sc, attr)
		}
	}
	lr := decode[LoginResponse](t, r, http.StatusOK)
	if lr.Role != berth.RoleOwner || lr.Team.Name != "main" || lr.Token != "" {
		t.Errorf("login response %+v", lr)
	}
	if me := decode[Me](t, e.as(s1, false, "GET", "/api/v1/me", nil), http.StatusOK); me.User.Email != adminEmail {
		t.Errorf("me = %+v", me)
	}
	// CSRF on a mutation: missing and wrong are refused, right passes.
	if r := e.as(s1, false, "POST", "/api/v1/apps", gitApp("web")); r.status != http.StatusForbidden || !strings.Contains(r.problem(t).Detail, "CSRF") {
		t.Errorf("no CSRF token: %d %s", r.status, r.body)
	}
	wrong := s1
	wrong.csrf = strings.Repeat("A", len(s1.csrf))
	if r := e.as(wrong, true, "POST", "/api/v1/apps", gitApp("web")); r.status != http.StatusForbidden {
		t.Errorf("wrong CSRF token: %d", r.status)
	}
	decode[berth.App](t, e.as(s1, true, "POST", "/api/v1/apps", gitApp("web")), http.StatusCreated)

	// A CLI sign-in gets a token with the role's scopes, and no cookie.
	r, _ = e.login(map[string]string{"email": adminEmail, "password": adminPassword, "token_name": "cli"})
	cli := decode[LoginResponse](t, r, http.StatusOK)
	if !strings.HasPrefix(cli.Token, auth.TokenPrefix) || r.header.Get("Set-Cookie") != "" || len(cli.Scopes) != 5 {
		t.Fatalf("token login: %+v", cli)
	}
	decode[[]berth.App](t, e.do(cli.Token, "GET", "/api/v1/apps", nil), http.StatusOK)
	_, s2 := e.login(map[string]string{"email": adminEmail, "password": adminPassword})

	// Changing the password in session 1 ends session 2 and the token.
	if r := e.as(s1, true, "PUT", "/api/v1/me/password", map[string]string{"current_password": "wrong horse battery", "new_password": "new horse battery"}); r.status != http.StatusForbidden {
		t.Fatalf("wrong current password: %d %s", r.status, r.body)
	}
	pw = decode[PasswordResponse](t, e.as(s1, true, "PUT", "/api/v1/me/password",
		map[string]string{"current_password": adminPassword, "new_password": "new horse battery"}), http.StatusOK)
	if pw.RevokedSessions != 1 || pw.RevokedTokens != 1 {
		t.Errorf("revoked %+v, want 1 session and 1 token", pw)
	}
	if r := e.as(s2, false, "GET", "/api/v1/me", nil); r.status != http.StatusUnauthorized {
		t.Errorf("session 2 after the change: %d", r.status)
	}
	if r := e.do(cli.Token, "GET", "/api/v1/me", nil); r.status != http.StatusUnauthorized {
		t.Errorf("the CLI token after the change: %d", r.status)
	}
	decode[Me](t, e.as(s1, false, "GET", "/api/v1/me", nil), http.StatusOK)

	// Sign-out needs the CSRF token too, then the cookie is dead.
	if r := e.as(s1, false, "POST", "/api/v1/logout", nil); r.status != http.StatusForbidden {
		t.Errorf("logout without CSRF: %d", r.status)
	}
	if r := e.as(s1, true, "POST", "/api/v1/logout", nil); r.status != http.StatusNoContent || !strings.Contains(r.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("logout: %d %q", r.status, r.header.Get("Set-Cookie"))
	}
	if r := e.as(s1, false, "GET", "/api/v1/me", nil); r.status != http.StatusUnauthorized {
		t.Errorf("after logout: %d", r.status)
	}

	// Five failures lock the account: 429 with Retry-After, even for the
	// right password.
	for range auth.LoginFailsPerUser {
		e.login(map[string]string{"email": adminEmail, "password": "wrong horse battery"})
	}
	r, _ = e.login(map[string]string{"email": adminEmail, "password": "new horse battery"})
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" || r.problem(t).Type != ProblemTypePrefix+"too_many" {
		t.Errorf("after five failures: %d %q %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	// Hostile bodies get a 400.
	for _, body := range []string{`{"email": 1}`, `{"email":"a","password":"b","x":1}`, `nope`} {
		if r := e.do("", "POST", "/api/v1/login", body); r.status != http.StatusBadRequest {
			t.Errorf("login body %s: %d", body, r.status)
		}
	}
}

func totpCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRequire2FAGate(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.setAdminPassword()
	_, owner := e.login(map[string]string{"email": adminEmail, "password": adminPassword})
	if r := e.as(owner, true, "PUT", "/api/v1/team/require-2fa", map[string]bool{"require_2fa": true}); r.status != http.StatusConflict {
		t.Fatalf("require 2FA without own TOTP: %d %s", r.status, r.body)
	}
	enrol := decode[TOTPEnrolment](t, e.as(owner, true, "POST", "/api/v1/me/totp", map[string]string{"password": adminPassword}), http.StatusOK)
	codes := decode[RecoveryCodes](t, e.as(owner, true, "POST", "/api/v1/me/totp/confirm", map[string]string{"code": totpCode(t, enrol.Secret, time.Now())}), http.StatusOK)
	if len(codes.RecoveryCodes) != 10 {
		t.Fatalf("recovery codes %v", codes)
	}
	decode[Require2FA](t, e.as(owner, true, "PUT", "/api/v1/team/require-2fa", map[string]bool{"require_2fa": true}), http.StatusOK)

	// The owner now needs a second factor to sign in.
	if r, _ := e.login(map[string]string{"email": adminEmail, "password": adminPassword}); r.status != http.StatusUnauthorized {
		t.Errorf("owner without code: %d", r.status)
	}
	if r, _ := e.login(map[string]string{"email": adminEmail, "password": adminPassword, "recovery_code": codes.RecoveryCodes[0]}); r.status != http.StatusOK {
		t.Errorf("owner with a recovery code: %d %s", r.status, r.body)
	}

	// Members without TOTP: an admin (not an owner) and a developer.
	main, err := e.st.UserTeams(ctx, ownerID(t, e, owner))
	if err != nil || len(main) != 1 {
		t.Fatal(err)
	}
	member := func(name string, role berth.Role) session {
		u := &berth.User{Name: name, Email: name + "@example.com", CreatedAt: time.Now()}
		if err := e.st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		if err := e.st.AddMember(ctx, main[0].ID, u.ID, role); err != nil {
			t.Fatal(err)
		}
		h, _ := auth.HashPassword(adminPassword)
		if err := e.st.SetPassword(ctx, u.ID, h, time.Now()); err != nil {
			t.Fatal(err)
		}
		r, s := e.login(map[string]string{"email": u.Email, "password": adminPassword})
		if r.status != http.StatusOK {
			t.Fatalf("login %s: %d %s", name, r.status, r.body)
		}
		return s
	}
	dev := member("dev", berth.RoleDeveloper)
	for _, rq := range []struct{ method, path string }{
		{"GET", "/api/v1/apps"}, {"POST", "/api/v1/apps"}, {"PUT", "/api/v1/me/password"}, {"GET", "/api/v1/openapi.json"},
	} {
		r := e.as(dev, true, rq.method, rq.path, gitApp("x"))
		if r.status != http.StatusForbidden || !strings.Contains(r.problem(t).Detail, "two-factor") {
			t.Errorf("gated %s %s: %d %s", rq.method, rq.path, r.status, r.body)
		}
	}
	decode[Me](t, e.as(dev, false, "GET", "/api/v1/me", nil), http.StatusOK)
	devEnrol := decode[TOTPEnrolment](t, e.as(dev, true, "POST", "/api/v1/me/totp", map[string]string{"password": adminPassword}), http.StatusOK)
	decode[RecoveryCodes](t, e.as(dev, true, "POST", "/api/v1/me/totp/confirm", map[string]string{"code": totpCode(t, devEnrol.Secret, time.Now())}), http.StatusOK)
	decode[[]berth.App](t, e.as(dev, false, "GET", "/api/v1/apps", nil), http.StatusOK)

	// Only an owner changes the setting; an admin holds the scope but not the role.
	adm := member("adm", berth.RoleAdmin)
	admEnrol := decode[TOTPEnrolment](t, e.as(adm, true, "POST", "/api/v1/me/totp", map[string]string{"password": adminPassword}), http.StatusOK)
	decode[RecoveryCodes](t, e.as(adm, true, "POST", "/api/v1/me/totp/confirm", map[string]string{"code": totpCode(t, admEnrol.Secret, time.Now())}), http.StatusOK)
	if r := e.as(adm, true, "PUT", "/api/v1/team/require-2fa", map[string]bool{"require_2fa": false}); r.status != http.StatusForbidden {
		t.Errorf("admin turning 2FA off: %d %s", r.status, r.body)
	}
	if r := e.as(dev, true, "PUT", "/api/v1/team/require-2fa", map[string]bool{"require_2fa": false}); r.status != http.StatusForbidden {
		t.Errorf("developer turning 2FA off: %d", r.status)
	}
	if on, _, _ := e.st.TwoFactor(ctx, main[0].ID, ownerID(t, e, owner)); !on {
		t.Error("the setting changed")
	}
	// Turning TOTP off needs the password, and gates the member again.
	if r := e.as(dev, true, "DELETE", "/api/v1/me/totp", map[string]string{"password": "wrong horse battery"}); r.status != http.StatusForbidden {
		t.Errorf("disable with a wrong password: %d", r.status)
	}
	if r := e.as(dev, true, "DELETE", "/api/v1/me/totp", map[string]string{"password": adminPassword}); r.status != http.StatusNoContent {
		t.Errorf("disable: %d %s", r.status, r.body)
	}
	if r := e.as(dev, false, "GET", "/api/v1/apps", nil); r.status != http.StatusForbidden {
		t.Errorf("after turning TOTP off: %d", r.status)
	}
}

func ownerID(t *testing.T, e *testEnv, s session) string {
	t.Helper()
	return decode[Me](t, e.as(s, false, "GET", "/api/v1/me", nil), http.StatusOK).User.ID
}

// TestOIDC signs in through a real OpenID Connect provider run in the test.
func TestOIDC(t *testing.T) {
	e := newEnv(t)
	var idp *oidctest.Provider
	e.withConfig(func(url string) Config {
		idp = oidctest.Start(t, "berth-api-test", url+"/api/v1/oidc/callback")
		return Config{PublicURL: url, InsecureCookies: true,
			OIDC: &auth.OIDCConfig{Issuer: idp.Issuer, ClientID: idp.ClientID, ClientSecret: idp.ClientSecret}}
	})
	e.setAdminPassword()
	ctx := context.Background()
	// The admin's e-mail equals the provider user's: that must not matter.
	u, err := e.st.UserByEmail(ctx, adminEmail)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.SetUserEmail(ctx, u.ID, oidctest.User1Email); err != nil {
		t.Fatal(err)
	}
	browser := func() *http.Client {
		jar, _ := cookiejar.New(nil)
		return &http.Client{Jar: jar}
	}
	// signIn(b)(b.Get(url)) completes the provider's login page in b.
	signIn := func(b *http.Client) func(*http.Response, error) *http.Response {
		return func(start *http.Response, err error) *http.Response {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
			resp := oidctest.SignIn(t, b, start, oidctest.User1, oidctest.Password)
			t.Cleanup(func() { resp.Body.Close() })
			return resp
		}
	}
	hasSession := func(b *http.Client) bool {
		req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/me", nil)
		resp, err := b.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}

	// 1. An unlinked identity cannot sign in, even with the account's e-mail.
	b := browser()
	resp := signIn(b)(b.Get(e.srv.URL + "/api/v1/oidc/login"))
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "not linked") || hasSession(b) {
		t.Fatalf("unlinked sign-in: %d %s", resp.StatusCode, body)
	}

	// 2. The signed-in user links it explicitly.
	b = browser()
	req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/login", strings.NewReader(`{"email":"`+oidctest.User1Email+`","password":"`+adminPassword+`"}`))
	req.Header.Set("Content-Type", "application/json")
	lresp, err := b.Do(req)
	if err != nil || lresp.StatusCode != http.StatusOK {
		t.Fatalf("password login: %v %v", lresp.Status, err)
	}
	var lr LoginResponse
	json.NewDecoder(lresp.Body).Decode(&lr)
	lresp.Body.Close()
	req, _ = http.NewRequest("POST", e.srv.URL+"/api/v1/me/oidc/link", nil)
	req.Header.Set(auth.CSRFHeader, lr.CSRFToken)
	linkResp, err := b.Do(req)
	if err != nil || linkResp.StatusCode != http.StatusOK {
		t.Fatalf("start link: %v %v", linkResp.Status, err)
	}
	var link OIDCLink
	json.NewDecoder(linkResp.Body).Decode(&link)
	linkResp.Body.Close()
	resp = signIn(b)(b.Get(link.URL))
	if resp.Request.URL.RawQuery != "oidc=linked" {
		t.Fatalf("link flow ended at %s (%d)", resp.Request.URL, resp.StatusCode)
	}
	ids, err := e.st.Identities(ctx, u.ID)
	if err != nil || len(ids) != 1 || ids[0].Subject != oidctest.User1Subject || ids[0].Issuer != idp.Issuer {
		t.Fatalf("identities %+v %v", ids, err)
	}

	// 3. Now the identity signs in, in a fresh browser.
	b = browser()
	resp = signIn(b)(b.Get(e.srv.URL + "/api/v1/oidc/login"))
	if resp.Request.URL.Path != "/" || !hasSession(b) {
		t.Fatalf("linked sign-in ended at %s (%d) without a session", resp.Request.URL, resp.StatusCode)
	}

	// 4. A wrong state, or a callback in a browser that did not start the
	// flow, is refused.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	start, err := noFollow.Get(e.srv.URL + "/api/v1/oidc/login")
	if err != nil || start.StatusCode != http.StatusFound {
		t.Fatalf("start: %v %v", start.Status, err)
	}
	start.Body.Close()
	loc, _ := start.Location()
	state := loc.Query().Get("state")
	for name, path := range map[string]string{
		"wrong state":     "/api/v1/oidc/callback?state=bogus&code=abc",
		"another browser": "/api/v1/oidc/callback?state=" + state + "&code=abc",
	} {
		if r := e.do("", "GET", path, nil); r.status != http.StatusUnauthorized {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
	// Linking needs a browser session, not a token.
	r, _ := e.login(map[string]string{"email": oidctest.User1Email, "password": adminPassword, "token_name": "cli"})
	tok := decode[LoginResponse](t, r, http.StatusOK).Token
	if r := e.do(tok, "POST", "/api/v1/me/oidc/link", nil); r.status != http.StatusBadRequest {
		t.Errorf("link with a token: %d", r.status)
	}
}

func TestOIDCNotConfigured(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/api/v1/oidc/login", "/api/v1/oidc/callback?state=x&code=y"} {
		if r := e.do("", "GET", path, nil); r.status != http.StatusNotFound {
			t.Errorf("%s: %d", path, r.status)
		}
	}
}

// TestRemovedMemberLosesSessions: removing a member ends their browser
// sessions as well as their tokens in the team.
func TestRemovedMemberLosesSessions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin := e.principal(e.tokens[berth.ScopeAdmin])
	u := &berth.User{Name: "leaver", Email: "leaver@example.com", CreatedAt: time.Now()}
	if err := e.st.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := e.st.AddMember(ctx, admin.Team.ID, u.ID, berth.RoleDeveloper); err != nil {
		t.Fatal(err)
	}
	h, _ := auth.HashPassword(adminPassword)
	if err := e.st.SetPassword(ctx, u.ID, h, time.Now()); err != nil {
		t.Fatal(err)
	}
	r, s := e.login(map[string]string{"email": u.Email, "password": adminPassword})
	if r.status != http.StatusOK {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	decode[Me](t, e.as(s, false, "GET", "/api/v1/me", nil), http.StatusOK)
	if r := e.do(e.tokens[berth.ScopeAdmin], "DELETE", "/api/v1/members/"+u.ID, nil); r.status != http.StatusNoContent {
		t.Fatalf("remove member: %d %s", r.status, r.body)
	}
	if r := e.as(s, false, "GET", "/api/v1/me", nil); r.status != http.StatusUnauthorized {
		t.Errorf("session of a removed member: %d, want 401", r.status)
	}
	if n, err := e.st.DeleteUserSessions(ctx, u.ID, nil); err != nil || n != 0 {
		t.Errorf("sessions left after removal: %d, %v", n, err)
	}
}
