package web_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// TestFormsRedirectAfterSuccess checks that every form that shows a secret
// once answers its success with a 303 (POST/redirect/GET): the page it
// leads to shows the secret, and reloading that page shows it no more and
// sends nothing again. A refusal still shows the form again with what was
// typed.
func TestFormsRedirectAfterSuccess(t *testing.T) {
	e := newEnv(t)
	b := e.login(ownerEmail)
	b.createApp("web")
	for _, tc := range []struct {
		name, from, path string
		form             url.Values
		next             string
		secret           *regexp.Regexp
		once             string // what the page shows once, beside the secret
		after            string // what the page shows after the reload, once
	}{
		{"TOTP", "/account", "/account/totp", url.Values{"password": {ownerPassword}}, "/account",
			secretRE, `id="totp-confirm"`, `id="totp-start"`},
		{"invitation", "/members", "/members/invite", url.Values{"email": {"new@example.com"}, "role": {"developer"}}, "/members",
			regexp.MustCompile(`berthinv_[a-z0-9]+`), "Invitation created.", "new@example.com"},
		{"token", "/tokens", "/tokens", url.Values{"name": {"ci"}, "scopes": {"read"}}, "/tokens",
			regexp.MustCompile(`berth_[A-Za-z0-9_]+`), "Token created.", `data-token="ci"`},
		{"webhook secret", "/apps/web/webhooks", "/apps/web/webhooks/secret", url.Values{}, "/apps/web/webhooks",
			regexp.MustCompile(`id="webhook-secret-code">([0-9a-f]{64})<`), "New webhook secret generated.", `id="remove-secret"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := b.post(tc.from, tc.path, tc.form)
			if p.status != http.StatusSeeOther || p.location != tc.next {
				t.Fatalf("POST = %d → %q, want 303 → %s: %s", p.status, p.location, tc.next, p.body)
			}
			if tc.secret.MatchString(p.body) {
				t.Error("the redirect carries the secret")
			}
			// Another page first (the browser went elsewhere): the secret
			// waits for its own page.
			if got := b.get("/apps"); tc.secret.MatchString(got.body) || strings.Contains(got.body, tc.once) {
				t.Error("another page shows the secret")
			}
			shown := b.get(tc.next)
			want(t, shown, 200, tc.once, `id="notice"`)
			secret := tc.secret.FindString(shown.body)
			if secret == "" {
				t.Fatalf("the page after the redirect shows no secret:\n%s", shown.body)
			}
			reload := b.get(tc.next)
			want(t, reload, 200, tc.after)
			if strings.Contains(reload.body, secret) || strings.Contains(reload.body, tc.once) || strings.Contains(reload.body, `id="notice"`) {
				t.Errorf("the reload shows the secret or the notice again:\n%s", reload.body)
			}
		})
	}

	// The reloads sent nothing again: one token, one invitation.
	if n := strings.Count(b.get("/tokens").body, `data-token="ci"`); n != 1 {
		t.Errorf("%d tokens named ci, want 1", n)
	}
	if n := strings.Count(b.get("/members").body, "<li>new@example.com "); n != 1 {
		t.Errorf("%d invitations of new@example.com, want 1", n)
	}

	t.Run("the flash is for the session that sent the form", func(t *testing.T) {
		other := e.login(ownerEmail)
		p := b.post("/tokens", "/tokens", url.Values{"name": {"ci2"}, "scopes": {"read"}})
		if p.status != http.StatusSeeOther {
			t.Fatalf("POST = %d", p.status)
		}
		u, _ := url.Parse(e.srv.URL)
		var id string
		for _, c := range b.c.Jar.Cookies(u) {
			if c.Name == "berth_flash" {
				id = c.Value
			}
		}
		if id == "" {
			t.Fatal("no flash cookie after the POST")
		}
		other.c.Jar.SetCookies(u, []*http.Cookie{{Name: "berth_flash", Value: id, Path: "/"}})
		if got := other.get("/tokens"); strings.Contains(got.body, "Token created.") {
			t.Error("another session is shown the flash")
		}
		want(t, b.get("/tokens"), 200, "Token created.", `id="token-secret"`)
	})

	t.Run("TOTP confirmed with the secret shown before the reload", func(t *testing.T) {
		shown := b.submit("/account", "/account/totp", url.Values{"password": {ownerPassword}}, "/account")
		m := secretRE.FindStringSubmatch(shown.body)
		if m == nil {
			t.Fatalf("no secret:\n%s", shown.body)
		}
		b.get("/account") // the reload
		code, err := totp.GenerateCode(m[1], time.Now())
		if err != nil {
			t.Fatal(err)
		}
		p := b.submit("/account", "/account/totp/confirm", url.Values{"code": {code}}, "/account")
		want(t, p, 200, `id="recovery-codes"`, "Two-factor authentication is on")
		if reload := b.get("/account"); strings.Contains(reload.body, `id="recovery-codes"`) {
			t.Error("the recovery codes are shown again on a reload")
		}
	})

	t.Run("a refusal shows the form again with what was typed", func(t *testing.T) {
		p := b.post("/tokens", "/tokens", url.Values{"name": {"typed-name"}, "scopes": {"everything"}})
		want(t, p, http.StatusBadRequest, `value="typed-name"`, `id="error"`)
	})

}
