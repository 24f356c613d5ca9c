// Package oidctest runs a real OpenID Connect provider inside a test: the
// zitadel/oidc OP with its example in-memory storage (discovery, JWKS,
// authorization code flow with PKCE, RS256 ID tokens, a username/password
// login page), on an httptest server. Its users are the example's:
// "test-user@127.0.0.1" (subject "id1", e-mail "test-user@zitadel.ch")
// and "test-user2" (subject "id2"), both with password "verysecure".
package oidctest

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
)

// The example users.
const (
	User1        = "test-user@127.0.0.1"
	User1Subject = "id1"
	User1Email   = "test-user@zitadel.ch"
	User2        = "test-user2"
	User2Subject = "id2"
	Password     = "verysecure"
)

// Provider is a running provider with one registered web client.
type Provider struct {
	Issuer       string
	ClientID     string
	ClientSecret string
}

// Start runs a provider until the test ends, with a confidential web
// client allowed to redirect to redirectURL.
func Start(t *testing.T, clientID, redirectURL string) *Provider {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	secret := "secret-" + clientID
	storage.RegisterClients(storage.WebClient(clientID, secret, redirectURL))
	st := storage.NewStorage(storage.NewUserStore(issuer))
	srv.Config.Handler = exampleop.SetupServer(issuer, st, slog.New(slog.DiscardHandler), false)
	srv.Start()
	t.Cleanup(srv.Close)
	return &Provider{Issuer: issuer, ClientID: clientID, ClientSecret: secret}
}

// SignIn completes the provider's login page for a browser (a client with
// a cookie jar that follows redirects) that was just sent to it: loginPage
// is the answer that ended on the page. It returns the answer after the
// provider sends the browser back to the client's redirect URL and beyond.
func SignIn(t *testing.T, browser *http.Client, loginPage *http.Response, username, password string) *http.Response {
	t.Helper()
	_, _ = io.Copy(io.Discard, loginPage.Body)
	loginPage.Body.Close()
	u := loginPage.Request.URL
	id := u.Query().Get("authRequestID")
	if !strings.HasSuffix(u.Path, "/login/username") || id == "" {
		t.Fatalf("not the provider's login page: %s (status %d)", u, loginPage.StatusCode)
	}
	form := url.Values{"username": {username}, "password": {password}, "id": {id}}
	resp, err := browser.PostForm(u.Scheme+"://"+u.Host+"/login/username", form)
	if err != nil {
		t.Fatalf("sign in at the provider: %v", err)
	}
	return resp
}
