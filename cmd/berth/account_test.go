package main

import (
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// TestAccountCommands walks the account commands a person uses: give the
// bootstrap admin a password, sign in with it, turn two-factor on, sign in
// with a code, turn it off.
func TestAccountCommands(t *testing.T) {
	c := newCLI(t)
	c.login()
	const pw = "correct horse battery"

	// passwd with the bootstrap token: no current password yet.
	c.env["BERTH_NEW_PASSWORD"] = "short"
	if msg := c.fail("passwd", "--email", "admin@example.com"); !strings.Contains(msg, "at least") {
		t.Errorf("weak password: %q", msg)
	}
	c.env["BERTH_NEW_PASSWORD"] = pw
	out := c.ok("passwd", "--email", "admin@example.com")
	if !strings.Contains(out, "1 tokens") {
		t.Errorf("passwd: %q (the bootstrap token should be revoked)", out)
	}
	// The token the CLI used is gone with the password change.
	if msg := c.fail("apps", "list"); !strings.Contains(msg, "invalid token") {
		t.Errorf("old token after passwd: %q", msg)
	}
	delete(c.env, "BERTH_NEW_PASSWORD")

	// Sign in with the password.
	c.env["BERTH_PASSWORD"] = "wrong horse battery"
	if msg := c.fail("login", c.url, "--email", "admin@example.com"); !strings.Contains(strings.ToLower(msg), "e-mail or password") {
		t.Errorf("wrong password: %q", msg)
	}
	c.env["BERTH_PASSWORD"] = pw
	if out := c.ok("login", c.url, "--email", "admin@example.com"); !strings.Contains(out, "as admin (team main, role owner") {
		t.Errorf("login --email: %q", out)
	}
	c.ok("apps", "list")

	// Two-factor: enable, confirm with a real code, then sign-in needs one.
	type enrolment struct {
		Secret string `json:"secret"`
	}
	e := jsonOf[enrolment](t, c.ok("2fa", "enable", "-o", "json"))
	code, err := totp.GenerateCode(e.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	out = c.ok("2fa", "confirm", code)
	var recovery []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "  ") {
			recovery = append(recovery, strings.TrimSpace(line))
		}
	}
	if len(recovery) != 10 {
		t.Fatalf("confirm printed %q, want 10 recovery codes", out)
	}
	if msg := c.fail("login", c.url, "--email", "admin@example.com"); !strings.Contains(strings.ToLower(msg), "code") {
		t.Errorf("login without a code: %q", msg)
	}
	// The code used to confirm is spent; a recovery code works once.
	if msg := c.fail("login", c.url, "--email", "admin@example.com", "--code", code); !strings.Contains(strings.ToLower(msg), "code") {
		t.Errorf("login with a spent code: %q", msg)
	}
	if out := c.ok("login", c.url, "--email", "admin@example.com", "--recovery-code", recovery[0]); !strings.Contains(out, "Logged in") {
		t.Errorf("login with a recovery code: %q", out)
	}
	if msg := c.fail("login", c.url, "--email", "admin@example.com", "--recovery-code", recovery[0]); !strings.Contains(strings.ToLower(msg), "code") {
		t.Errorf("login with a used recovery code: %q", msg)
	}
	c.ok("2fa", "disable")
	if out := c.ok("login", c.url, "--email", "admin@example.com"); !strings.Contains(out, "Logged in") {
		t.Errorf("login after 2fa disable: %q", out)
	}
}
