package auth

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/auth/oidctest"
)

// TestOIDCFinish runs flows against a real provider and checks what Finish
// accepts: the right state, binding and nonce, once.
func TestOIDCFinish(t *testing.T) {
	ctx := context.Background()
	// The callback only records the provider's redirect: the test calls
	// Finish itself.
	type cb struct{ state, code string }
	got := make(chan cb, 1)
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- cb{r.URL.Query().Get("state"), r.URL.Query().Get("code")}
	}))
	t.Cleanup(rp.Close)
	idp := oidctest.Start(t, "berth-auth-test", rp.URL+"/callback")
	o := NewOIDC(OIDCConfig{Issuer: idp.Issuer, ClientID: idp.ClientID, ClientSecret: idp.ClientSecret, RedirectURL: rp.URL + "/callback"})

	flow := func(linkUser string) (binding string, c cb) {
		t.Helper()
		url, binding, err := o.Start(ctx, linkUser, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(url, "code_challenge_method=S256") || !strings.Contains(url, "nonce=") {
			t.Fatalf("authorization URL without PKCE or nonce: %s", url)
		}
		jar, _ := cookiejar.New(nil)
		browser := &http.Client{Jar: jar}
		page, err := browser.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp := oidctest.SignIn(t, browser, page, oidctest.User2, oidctest.Password)
		resp.Body.Close()
		select {
		case c = <-got:
		default:
			t.Fatalf("the provider did not redirect back (status %d at %s)", resp.StatusCode, resp.Request.URL)
		}
		return binding, c
	}

	binding, c := flow("user_x")
	res, err := o.Finish(ctx, c.state, c.code, binding, time.Now())
	if err != nil {
		t.Fatalf("finish: %v", err)
	}
	if res.Issuer != idp.Issuer || res.Subject != oidctest.User2Subject || res.LinkUser != "user_x" {
		t.Fatalf("result %+v", res)
	}
	// A state works once.
	if _, err := o.Finish(ctx, c.state, c.code, binding, time.Now()); !berth.IsKind(err, berth.Unauthorized) {
		t.Errorf("state reused: %v", err)
	}
	// Another browser (wrong binding) and an unknown state are refused.
	binding, c = flow("")
	if _, err := o.Finish(ctx, c.state, c.code, binding+"x", time.Now()); !berth.IsKind(err, berth.Unauthorized) {
		t.Errorf("wrong binding: %v", err)
	}
	if _, err := o.Finish(ctx, "bogus", c.code, binding, time.Now()); !berth.IsKind(err, berth.Unauthorized) {
		t.Errorf("unknown state: %v", err)
	}
	// An ID token whose nonce is not the flow's is refused.
	binding, c = flow("")
	o.mu.Lock()
	o.flows[c.state].nonce = "not-the-nonce-sent"
	o.mu.Unlock()
	if _, err := o.Finish(ctx, c.state, c.code, binding, time.Now()); !berth.IsKind(err, berth.Unauthorized) || !strings.Contains(berth.ErrorMessage(err), "nonce") {
		t.Errorf("wrong nonce: %v", err)
	}
	// A code is bound to its flow's PKCE verifier: exchanging it with another flow's fails.
	binding, c = flow("")
	o.mu.Lock()
	o.flows[c.state].verifier = "another-verifier-another-verifier-another-verifier"
	o.mu.Unlock()
	if _, err := o.Finish(ctx, c.state, c.code, binding, time.Now()); !berth.IsKind(err, berth.Unauthorized) {
		t.Errorf("wrong PKCE verifier: %v", err)
	}
	// Flows expire.
	binding, c = flow("")
	if _, err := o.Finish(ctx, c.state, c.code, binding, time.Now().Add(oidcFlowTTL)); !berth.IsKind(err, berth.Unauthorized) {
		t.Errorf("expired flow: %v", err)
	}
}
