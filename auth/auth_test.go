package auth

import (
	"bytes"
	"context"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/store"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "berth.db"), bytes.Repeat([]byte{1}, 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestNewToken(t *testing.T) {
	re := regexp.MustCompile(`^berth_[a-z2-7]{52}$`)
	seen := map[string]bool{}
	for range 100 {
		secret, hash, err := NewToken()
		if err != nil {
			t.Fatal(err)
		}
		if !re.MatchString(secret) {
			t.Fatalf("secret %q does not match %s", secret, re)
		}
		if !bytes.Equal(hash, HashToken(secret)) || len(hash) != 32 {
			t.Fatalf("hash of %q is not its SHA-256", secret)
		}
		if seen[secret] {
			t.Fatal("a secret repeated")
		}
		seen[secret] = true
	}
}

func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	admin, err := Bootstrap(ctx, st, t0)
	if err != nil || admin == "" {
		t.Fatalf("bootstrap: %q, %v", admin, err)
	}
	if again, err := Bootstrap(ctx, st, t0); err != nil || again != "" {
		t.Fatalf("second bootstrap: %q, %v; want nothing", again, err)
	}
	p := auth(t, st, "Bearer "+admin, t0)
	if p.Team.Name != "main" || p.User.Name != "admin" || p.Token.Name != "bootstrap" || !p.Can(berth.ScopeAdmin) || !p.Can(berth.ScopeReadSecrets) {
		t.Fatalf("principal = %+v %+v %+v", p.Team, p.User, p.Token)
	}
	expires := t0.Add(time.Hour)
	readOnly, _, err := IssueToken(ctx, st, p.Team.ID, p.User.ID, "ci", []berth.Scope{berth.ScopeRead}, &expires, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := IssueToken(ctx, st, p.Team.ID, p.User.ID, "x", []berth.Scope{"root"}, nil, t0); !berth.IsKind(err, berth.Invalid) {
		t.Errorf("unknown scope: %v, want invalid", err)
	}
	ro := auth(t, st, "Bearer "+readOnly, t0)
	if !ro.Can(berth.ScopeRead) || ro.Can(berth.ScopeDeploy) || ro.Can(berth.ScopeReadSecrets) || ro.Can(berth.ScopeWrite) {
		t.Errorf("read-only token scopes wrong")
	}
	if (*Principal)(nil).Can(berth.ScopeRead) {
		t.Error("nil principal can read")
	}

	for name, header := range map[string]string{
		"missing":       "",
		"basic":         "Basic " + admin,
		"no secret":     "Bearer ",
		"unknown":       "Bearer berth_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"truncated":     "Bearer " + admin[:len(admin)-1],
		"no prefix":     "Bearer " + admin[len("berth_"):],
		"huge":          "Bearer berth_" + string(bytes.Repeat([]byte{'a'}, 4096)),
		"twice":         "Bearer " + admin + " " + admin,
		"case of token": "Bearer " + "BERTH_" + admin[6:],
	} {
		t.Run(name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/", nil)
			if header != "" {
				req.Header.Set("Authorization", header)
			}
			if _, err := Authenticate(ctx, st, req, t0); !berth.IsKind(err, berth.Unauthorized) {
				t.Errorf("error %v, want unauthorized", err)
			}
		})
	}
	// Expiry.
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer "+readOnly)
	if _, err := Authenticate(ctx, st, req, expires); !berth.IsKind(err, berth.Unauthorized) || berth.ErrorMessage(err) != "token expired" {
		t.Errorf("expired token: %v", err)
	}
}

func auth(t *testing.T, st *store.Store, header string, now time.Time) *Principal {
	t.Helper()
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", header)
	p, err := Authenticate(context.Background(), st, req, now)
	if err != nil {
		t.Fatalf("authenticate %q: %v", header, err)
	}
	return p
}

func TestLastUsedAtOncePerMinute(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	secret, err := Bootstrap(ctx, st, t0)
	if err != nil {
		t.Fatal(err)
	}
	lastUsed := func() time.Time {
		t.Helper()
		p := auth(t, st, "Bearer "+secret, t0) // any time: only to find the team
		toks, err := st.Tokens(ctx, p.Team.ID)
		if err != nil || len(toks) != 1 || toks[0].LastUsedAt == nil {
			t.Fatalf("tokens = %+v, %v", toks, err)
		}
		return toks[0].LastUsedAt.UTC()
	}
	steps := []struct {
		at   time.Duration
		want time.Duration
	}{
		{10 * time.Minute, 10 * time.Minute}, // the first use
		{10*time.Minute + 30*time.Second, 10 * time.Minute},
		{10*time.Minute + 59*time.Second, 10 * time.Minute},
		{11 * time.Minute, 11 * time.Minute},
	}
	for _, s := range steps {
		auth(t, st, "Bearer "+secret, t0.Add(s.at))
		if got := lastUsed(); !got.Equal(t0.Add(s.want)) {
			t.Errorf("after a use at +%s: last used at +%s, want +%s", s.at, got.Sub(t0), s.want)
		}
	}
}
