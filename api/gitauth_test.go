package api

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/berthhq/berth"
)

// TestDeployKeyRoutes: a deploy key is generated, shown (public half
// only), rotated only when asked (the old one gone) and deleted, with the
// write scope.
func TestDeployKeyRoutes(t *testing.T) {
	e := newEnv(t)
	e.createApp(gitApp("web"))
	w, rd := e.tokens[berth.ScopeWrite], e.tokens[berth.ScopeRead]
	const path = "/api/v1/apps/web/deploy-key"
	if r := e.do(rd, "GET", path, nil); r.status != http.StatusNotFound || !strings.Contains(r.problem(t).Detail, "no deploy key") {
		t.Errorf("before one is made: %d %s", r.status, r.body)
	}
	for _, tok := range []string{rd, e.tokens[berth.ScopeDeploy], e.tokens[berth.ScopeReadSecrets]} {
		if r := e.do(tok, "POST", path, nil); r.status != http.StatusForbidden {
			t.Errorf("POST without the write scope: %d", r.status)
		}
	}
	k := decode[berth.DeployKey](t, e.do(w, "POST", path, nil), http.StatusCreated)
	pub, comment, _, _, err := ssh.ParseAuthorizedKey([]byte(k.PublicKey))
	if err != nil || pub.Type() != ssh.KeyAlgoED25519 || comment != "berth:web" || k.Fingerprint != ssh.FingerprintSHA256(pub) || k.CreatedAt.IsZero() {
		t.Errorf("created key %+v (%v)", k, err)
	}
	// The stored private half is that key's.
	a := e.principal(w)
	app, err := e.st.App(context.Background(), a.Team.ID, "web")
	if err != nil {
		t.Fatal(err)
	}
	private := func() ssh.Signer {
		auth, err := e.st.GitAuth(context.Background(), a.Team.ID, app.ID)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ssh.ParsePrivateKey(auth.DeployKey)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if got := ssh.FingerprintSHA256(private().PublicKey()); got != k.Fingerprint {
		t.Errorf("stored private key is %s, shown public key %s", got, k.Fingerprint)
	}
	if got := decode[berth.DeployKey](t, e.do(rd, "GET", path, nil), http.StatusOK); got.PublicKey != k.PublicKey {
		t.Errorf("GET shows %q, want %q", got.PublicKey, k.PublicKey)
	}
	// A second POST does not replace the key unless asked to.
	if r := e.do(w, "POST", path, map[string]any{}); r.status != http.StatusConflict || !strings.Contains(r.problem(t).Detail, "--rotate") {
		t.Errorf("second POST: %d %s", r.status, r.body)
	}
	if r := e.do(w, "POST", path, map[string]any{"rotate": "yes"}); r.status != http.StatusBadRequest {
		t.Errorf("bad body: %d", r.status)
	}
	rotated := decode[berth.DeployKey](t, e.do(w, "POST", path, DeployKeyRequest{Rotate: true}), http.StatusCreated)
	if rotated.PublicKey == k.PublicKey || ssh.FingerprintSHA256(private().PublicKey()) != rotated.Fingerprint {
		t.Errorf("rotation kept the old key: %+v", rotated)
	}
	if r := e.do(rd, "DELETE", path, nil); r.status != http.StatusForbidden {
		t.Errorf("DELETE with read: %d", r.status)
	}
	if r := e.do(w, "DELETE", path, nil); r.status != http.StatusNoContent {
		t.Errorf("DELETE: %d %s", r.status, r.body)
	}
	if r := e.do(w, "DELETE", path, nil); r.status != http.StatusNotFound {
		t.Errorf("second DELETE: %d", r.status)
	}
	if r := e.do(rd, "GET", path, nil); r.status != http.StatusNotFound {
		t.Errorf("GET after DELETE: %d", r.status)
	}
}

// TestGitCredentialRoutes: a token is set, replaced and deleted, and
// the API only ever says whether one is set.
func TestGitCredentialRoutes(t *testing.T) {
	e := newEnv(t)
	e.createApp(gitApp("web"))
	w, rd := e.tokens[berth.ScopeWrite], e.tokens[berth.ScopeRead]
	const path = "/api/v1/apps/web/git-credentials"
	const token = "ghp_R0utesT3stS3cretToken"
	if c := decode[berth.GitCredentials](t, e.do(rd, "GET", path, nil), http.StatusOK); c.Set || c.UpdatedAt != nil {
		t.Errorf("before any: %+v", c)
	}
	if r := e.do(e.tokens[berth.ScopeDeploy], "PUT", path, GitCredentialsRequest{Token: token}); r.status != http.StatusForbidden {
		t.Errorf("PUT with deploy: %d", r.status)
	}
	r := e.do(w, "PUT", path, GitCredentialsRequest{Username: "oauth2", Token: token})
	c := decode[berth.GitCredentials](t, r, http.StatusOK)
	if !c.Set || c.Username != "oauth2" || c.UpdatedAt == nil || strings.Contains(string(r.body), token) {
		t.Errorf("PUT: %s", r.body)
	}
	if c := decode[berth.GitCredentials](t, e.do(rd, "GET", path, nil), http.StatusOK); !c.Set || c.Username != "oauth2" {
		t.Errorf("GET: %+v", c)
	}
	for _, bad := range []any{
		map[string]any{"token": ""},
		map[string]any{"username": "a:b", "token": token},
		map[string]any{"token": token + " with space"},
		map[string]any{"token": token + "\n"},
		map[string]any{"token": token, "password": "x"},
		map[string]any{"token": 42},
	} {
		r := e.do(w, "PUT", path, bad)
		if r.status != http.StatusBadRequest || strings.Contains(string(r.body), token) {
			t.Errorf("PUT %v: %d %s", bad, r.status, r.body)
		}
	}
	if c := decode[berth.GitCredentials](t, e.do(rd, "GET", path, nil), http.StatusOK); c.Username != "oauth2" {
		t.Errorf("a refused PUT changed the credentials: %+v", c)
	}
	decode[berth.GitCredentials](t, e.do(w, "PUT", path, GitCredentialsRequest{Token: "second-token"}), http.StatusOK)
	if c := decode[berth.GitCredentials](t, e.do(rd, "GET", path, nil), http.StatusOK); !c.Set || c.Username != "" {
		t.Errorf("replaced: %+v", c)
	}
	if r := e.do(w, "DELETE", path, nil); r.status != http.StatusNoContent {
		t.Errorf("DELETE: %d", r.status)
	}
	if r := e.do(w, "DELETE", path, nil); r.status != http.StatusNotFound || !strings.Contains(r.problem(t).Detail, "no access token") {
		t.Errorf("second DELETE: %d %s", r.status, r.body)
	}
	if c := decode[berth.GitCredentials](t, e.do(rd, "GET", path, nil), http.StatusOK); c.Set {
		t.Errorf("after DELETE: %+v", c)
	}
}

func TestHostKeyRoutes(t *testing.T) {
	e := newEnv(t)
	e.createApp(gitApp("web"))
	w, rd := e.tokens[berth.ScopeWrite], e.tokens[berth.ScopeRead]
	const path = "/api/v1/apps/web/host-keys"
	const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
	if keys := decode[[]berth.HostKey](t, e.do(rd, "GET", path, nil), http.StatusOK); len(keys) != 0 {
		t.Errorf("before any: %+v", keys)
	}
	keys := decode[[]berth.HostKey](t, e.do(w, "PUT", path, HostKeysRequest{KnownHosts: "# git.example.com:22 SSH-2.0-OpenSSH\ngit.example.com " + key + " comment\n"}), http.StatusOK)
	if len(keys) != 1 || keys[0].Host != "git.example.com" || keys[0].Key != key || keys[0].Source != berth.HostKeyUser ||
		keys[0].Fingerprint != "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU" {
		t.Errorf("PUT: %+v", keys)
	}
	for _, bad := range []string{"", "junk", "|1|x=|y= " + key, "@cert-authority * " + key, "a$(b) " + key} {
		r := e.do(w, "PUT", path, HostKeysRequest{KnownHosts: bad})
		if r.status != http.StatusBadRequest || r.problem(t).Detail == "" {
			t.Errorf("PUT %q: %d %s", bad, r.status, r.body)
		}
	}
	if keys := decode[[]berth.HostKey](t, e.do(rd, "GET", path, nil), http.StatusOK); len(keys) != 1 {
		t.Errorf("after refused PUTs: %+v", keys)
	}
	if r := e.do(rd, "DELETE", path, nil); r.status != http.StatusForbidden {
		t.Errorf("DELETE with read: %d", r.status)
	}
	if r := e.do(w, "DELETE", path, nil); r.status != http.StatusNoContent {
		t.Errorf("DELETE: %d", r.status)
	}
	if keys := decode[[]berth.HostKey](t, e.do(rd, "GET", path, nil), http.StatusOK); len(keys) != 0 {
		t.Errorf("after reset: %+v", keys)
	}
}

// TestCredentialsNeverReturned sets every credential of an app, then walks
// every GET route of the API, with the most powerful token, and the audit
// log and the server's log: the token and the private key appear nowhere.
func TestCredentialsNeverReturned(t *testing.T) {
	w := newWalkEnv(t)
	admin := w.tokens[berth.ScopeAdmin]
	const token = "glpat-N3verReturnedS3cret"
	decode[berth.DeployKey](t, w.do(admin, "POST", "/api/v1/apps/web/deploy-key", nil), http.StatusCreated)
	decode[berth.GitCredentials](t, w.do(admin, "PUT", "/api/v1/apps/web/git-credentials", GitCredentialsRequest{Username: "oauth2", Token: token}), http.StatusOK)
	w.do(admin, "PUT", "/api/v1/apps/web/git-credentials", GitCredentialsRequest{Token: token + " bad"}) // refused: its message is audited
	p := w.principal(admin)
	app, err := w.st.App(context.Background(), p.Team.ID, "web")
	if err != nil {
		t.Fatal(err)
	}
	auth, err := w.st.GitAuth(context.Background(), p.Team.ID, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	secrets := auth.Secrets()
	if len(secrets) < 4 || auth.Token != token {
		t.Fatalf("secrets %d, token set %v", len(secrets), auth.Token == token)
	}
	leaks := func(where, s string) {
		t.Helper()
		for _, x := range secrets {
			if strings.Contains(s, x) {
				t.Errorf("%s shows a secret (%.12s…)", where, x)
			}
		}
	}
	n := 0
	for _, rt := range routes() {
		if rt.method != "GET" || strings.HasSuffix(rt.pattern, "/log") || strings.HasSuffix(rt.pattern, "/logs") || strings.Contains(rt.pattern, "/stream") {
			continue
		}
		for _, tok := range []string{admin, w.tokens[berth.ScopeReadSecrets]} {
			r := w.do(tok, "GET", w.path(rt.pattern, w.objects), nil)
			leaks(rt.pattern, string(r.body))
			n++
		}
	}
	if n < 20 {
		t.Errorf("walked %d routes", n)
	}
	var events strings.Builder
	if err := w.st.AuditEvents(context.Background(), p.Team.ID, berth.AuditFilter{}, func(e *berth.AuditEvent) error {
		events.WriteString(e.Action + " " + e.Target + " " + e.Detail + "\n")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(events.String(), "deploykey.create app=web") || !strings.Contains(events.String(), "gittoken.set app=web") {
		t.Errorf("audit log lacks the credential changes:\n%s", events.String())
	}
	leaks("the audit log", events.String())
	leaks("the server log", w.logs.String())
}
