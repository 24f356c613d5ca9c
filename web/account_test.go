package web_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/berthhq/berth"
)

func TestAccountPassword(t *testing.T) {
	e := newEnv(t)
	b := e.login(ownerEmail)
	other := e.login(ownerEmail) // a second browser of the same person
	want(t, b.get("/account"), 200, `id="password-change"`, `id="account-email">`+ownerEmail, `id="totp-status" class="status s-not">off`, `id="require-2fa"`)

	for _, tc := range []struct {
		name    string
		form    url.Values
		status  int
		message string
	}{
		{"confirmation differs", url.Values{"current_password": {ownerPassword}, "new_password": {"new horse battery"}, "confirm_password": {"new horse batter"}}, http.StatusBadRequest, "differ"},
		{"wrong current password", url.Values{"current_password": {"wrong"}, "new_password": {"new horse battery"}, "confirm_password": {"new horse battery"}}, http.StatusForbidden, "current password is wrong"},
		{"too short", url.Values{"current_password": {ownerPassword}, "new_password": {"short"}, "confirm_password": {"short"}}, http.StatusBadRequest, "password"},
	} {
		p := b.post("/account", "/account/password", tc.form)
		want(t, p, tc.status, tc.message)
		if !errorIn(p.body, "password") {
			t.Errorf("%s: the refusal is not next to the password form", tc.name)
		}
		if strings.Contains(p.body, "new horse battery") || strings.Contains(p.body, ownerPassword) {
			t.Errorf("%s: a password is written back into the page", tc.name)
		}
	}
	want(t, other.get("/apps"), 200) // refusals changed nothing

	p := b.post("/account", "/account/password", url.Values{"current_password": {ownerPassword}, "new_password": {"new horse battery"}, "confirm_password": {"new horse battery"}})
	if p.status != http.StatusSeeOther || p.location != "/account?done=password" {
		t.Fatalf("change password = %d → %q: %s", p.status, p.location, p.body)
	}
	want(t, b.get(p.location), 200, `id="notice"`, "Password changed")
	// This browser stays signed in; the other one is out.
	want(t, b.get("/apps"), 200)
	if p := other.get("/apps"); p.status != http.StatusSeeOther || p.location != "/login" {
		t.Errorf("the other session after the change: %d → %q", p.status, p.location)
	}
	if p := e.browser().do("POST", "/login", url.Values{"email": {ownerEmail}, "password": {ownerPassword}}); p.status != http.StatusUnauthorized {
		t.Errorf("the old password signs in: %d", p.status)
	}
	if p := e.browser().do("POST", "/login", url.Values{"email": {ownerEmail}, "password": {"new horse battery"}}); p.status != http.StatusSeeOther {
		t.Errorf("the new password: %d %s", p.status, p.body)
	}
	want(t, b.get("/audit"), 200, "user.password")
}

var (
	secretRE = regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`)
	codesRE  = regexp.MustCompile(`<li>([a-z0-9-]{8,})</li>`)
)

func TestAccountTOTPAndRequire2FA(t *testing.T) {
	e := newEnv(t)
	e.addUser("dave", berth.RoleDeveloper, "")
	b := e.login(ownerEmail)

	// Requiring 2FA needs the owner's own first: the API's refusal shows
	// next to the switch.
	p := b.post("/account", "/account/require-2fa", url.Values{"require_2fa": {"on"}})
	want(t, p, http.StatusConflict, "turn on two-factor authentication for yourself first")
	if !errorIn(p.body, "team-security") {
		t.Error("the refusal is not next to the team's switch")
	}

	want(t, b.post("/account", "/account/totp", url.Values{"password": {"wrong horse battery"}}), http.StatusForbidden, "password is wrong")
	p = b.submit("/account", "/account/totp", url.Values{"password": {ownerPassword}}, "/account")
	want(t, p, 200, `id="enrolment"`, `<svg xmlns="http://www.w3.org/2000/svg" class="qr"`, `id="totp-uri">otpauth://totp/`, `id="totp-confirm"`)
	m := secretRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no secret on the enrolment page:\n%s", p.body)
	}
	// A wrong code keeps the confirm form, with the error next to it.
	p = b.post("/account", "/account/totp/confirm", url.Values{"code": {"000000"}})
	want(t, p, http.StatusBadRequest, `id="totp-confirm"`, "wrong code")
	if !errorIn(p.body, "totp") || strings.Contains(p.body, m[1]) {
		t.Errorf("wrong code: error not next to the form, or the secret shown again:\n%s", p.body)
	}
	code, err := totp.GenerateCode(m[1], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p = b.submit("/account", "/account/totp/confirm", url.Values{"code": {code[:3] + " " + code[3:]}}, "/account")
	want(t, p, 200, `id="recovery-codes"`, "Two-factor authentication is on", `class="status s-ok">on`, `id="totp-disable"`)
	if n := len(codesRE.FindAllString(p.body, -1)); n != 10 {
		t.Errorf("%d recovery codes shown, want 10", n)
	}
	if strings.Contains(b.get("/account").body, `id="recovery-codes"`) {
		t.Error("the recovery codes are shown again")
	}

	// The owner requires 2FA: dave, without it, can only enrol.
	if p := b.post("/account", "/account/require-2fa", url.Values{"require_2fa": {"on"}}); p.status != http.StatusSeeOther || p.location != "/account?done=require-on" {
		t.Fatalf("require 2FA = %d → %q: %s", p.status, p.location, p.body)
	}
	want(t, b.get("/account"), 200, `id="require_2fa" name="require_2fa" checked`)
	d := e.browser()
	if p := d.do("POST", "/login", url.Values{"email": {"dave@example.com"}, "password": {ownerPassword}}); p.status != http.StatusSeeOther {
		t.Fatalf("dave signs in: %d %s", p.status, p.body)
	}
	if p := d.get("/apps"); p.status != http.StatusSeeOther || p.location != "/account" {
		t.Errorf("dave without TOTP sees /apps: %d → %q", p.status, p.location)
	}
	acct := d.get("/account")
	want(t, acct, 200, `id="must-enrol"`, `id="totp-start"`)
	if strings.Contains(acct.body, `id="require-2fa"`) {
		t.Error("a developer sees the team's 2FA switch")
	}
	want(t, d.post("/account", "/account/require-2fa", url.Values{}), http.StatusForbidden)

	// Off again, then TOTP off with the password.
	if p := b.post("/account", "/account/require-2fa", url.Values{}); p.status != http.StatusSeeOther || p.location != "/account?done=require-off" {
		t.Fatalf("require 2FA off = %d → %q: %s", p.status, p.location, p.body)
	}
	want(t, b.post("/account", "/account/totp/disable", url.Values{"password": {"wrong horse battery"}}), http.StatusForbidden, "password is wrong")
	if p := b.post("/account", "/account/totp/disable", url.Values{"password": {ownerPassword}}); p.status != http.StatusSeeOther {
		t.Fatalf("TOTP off = %d: %s", p.status, p.body)
	}
	want(t, b.get("/account?done=totp-off"), 200, "Two-factor authentication is off", `class="status s-not">off`, `id="totp-start"`)
}
