package auth

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berthhq/berth"
)

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=2$") {
		t.Errorf("hash %q is not an argon2id PHC string", h)
	}
	if !CheckPassword(h, "correct horse battery") {
		t.Error("the right password does not match")
	}
	for _, bad := range []string{"", "correct horse batterY", "correct horse battery ", strings.Repeat("x", 300)} {
		if CheckPassword(h, bad) {
			t.Errorf("%q matches", bad)
		}
	}
	h2, _ := HashPassword("correct horse battery")
	if h == h2 {
		t.Error("two hashes of one password are equal: no salt")
	}
	// Malformed or hostile stored hashes never match and never panic.
	for _, stored := range []string{"", "$argon2id$", "$argon2i$v=19$m=65536,t=3,p=2$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=4294967295,t=3,p=2$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=65536,t=1000,p=2$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=65536,t=3,p=0$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=65536,t=3,p=2$!!$a2V5"} {
		if CheckPassword(stored, "correct horse battery") {
			t.Errorf("stored %q matches", stored)
		}
	}
	for _, weak := range []string{"", "short", "\xff\xfe invalid utf8", strings.Repeat("p", 257)} {
		if _, err := HashPassword(weak); !berth.IsKind(err, berth.Invalid) {
			t.Errorf("HashPassword(%.20q) = %v, want Invalid", weak, err)
		}
	}
}

func TestRoleScopes(t *testing.T) {
	team, user := &berth.Team{ID: "team_a"}, &berth.User{ID: "user_a"}
	all := []berth.Scope{berth.ScopeRead, berth.ScopeReadSecrets, berth.ScopeDeploy, berth.ScopeWrite, berth.ScopeAdmin}
	want := map[berth.Role][]berth.Scope{
		berth.RoleOwner:     all,
		berth.RoleAdmin:     all,
		berth.RoleDeveloper: {berth.ScopeRead, berth.ScopeReadSecrets, berth.ScopeDeploy, berth.ScopeWrite},
		berth.RoleViewer:    {berth.ScopeRead},
		"":                  nil,
		"root":              nil,
	}
	for role, scopes := range want {
		p := &Principal{Team: team, User: user, Role: role}
		for _, s := range all {
			has := false
			for _, w := range scopes {
				has = has || w == s
			}
			if p.Can(s) != has {
				t.Errorf("role %q: Can(%s) = %v, want %v", role, s, p.Can(s), has)
			}
		}
	}
	// A token never gives more than its user's role, nor a role more than
	// the token.
	p := &Principal{Team: team, User: user, Role: berth.RoleViewer, Token: &berth.Token{Scopes: []berth.Scope{berth.ScopeAdmin}}}
	if p.Can(berth.ScopeWrite) || !p.Can(berth.ScopeRead) {
		t.Error("an admin token of a viewer must only read")
	}
	p = &Principal{Team: team, User: user, Role: berth.RoleOwner, Token: &berth.Token{Scopes: []berth.Scope{berth.ScopeDeploy}}}
	if p.Can(berth.ScopeWrite) || p.Can(berth.ScopeReadSecrets) || !p.Can(berth.ScopeDeploy) {
		t.Error("a deploy token of an owner must only read and deploy")
	}
	var nobody *Principal
	if nobody.Can(berth.ScopeRead) {
		t.Error("a nil principal can read")
	}
}

func TestClientAddr(t *testing.T) {
	trusted, err := ParseTrustedProxies("10.0.0.0/8, 192.168.1.10")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseTrustedProxies("10.0.0.0/8, not-an-ip"); err == nil {
		t.Error("a malformed trusted proxy is accepted")
	}
	for _, c := range []struct {
		remote, xff string
		policy      AddrPolicy
		want        string
	}{
		{"203.0.113.5:1234", "", AddrPolicy{}, "203.0.113.5"},
		{"203.0.113.5:1234", "1.2.3.4", AddrPolicy{}, "203.0.113.5"},                          // untrusted peer: header ignored
		{"10.1.2.3:1234", "1.2.3.4", AddrPolicy{TrustedProxies: trusted}, "1.2.3.4"},          // trusted proxy
		{"10.1.2.3:1234", "6.6.6.6, 1.2.3.4", AddrPolicy{TrustedProxies: trusted}, "1.2.3.4"}, // left-most is the client's claim
		{"10.1.2.3:1234", "1.2.3.4, 192.168.1.10", AddrPolicy{TrustedProxies: trusted}, "1.2.3.4"},
		{"10.1.2.3:1234", "garbage", AddrPolicy{TrustedProxies: trusted}, "10.1.2.3"},
		{"[::ffff:203.0.113.9]:80", "", AddrPolicy{}, "203.0.113.9"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := c.policy.Client(r).String(); got != c.want {
			t.Errorf("remote %s xff %q: client %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
}
