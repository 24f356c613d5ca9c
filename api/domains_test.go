package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/engine"
)

func TestDomains(t *testing.T) {
	e := newEnv(t)
	web := e.createApp(gitApp("web"))
	e.createApp(gitApp("api"))
	e.deployLive("web") // so that domain changes reach the proxy
	write := e.tokens[berth.ScopeWrite]

	r := e.do(write, "POST", "/api/v1/apps/web/domains", map[string]string{"host": " Web.Example.COM. "})
	d := decode[berth.Domain](t, r, http.StatusCreated)
	if d.Host != "web.example.com" || d.AppID != web.ID {
		t.Errorf("domain = %+v, want the normalized host on web", d)
	}
	if rt, ok := e.fakes.Router.Route(web.ID); !ok || !slices.Contains(rt.Hosts, "web.example.com") {
		t.Errorf("route after add = %+v, %v; want the host synced to the proxy", rt, ok)
	}
	decode[berth.Domain](t, e.do(write, "POST", "/api/v1/apps/web/domains", map[string]string{"host": "*.web.example.com"}), http.StatusCreated)

	// A host belongs to one app.
	for _, app := range []string{"web", "api"} {
		r := e.do(write, "POST", "/api/v1/apps/"+app+"/domains", map[string]string{"host": "web.example.com"})
		if r.status != http.StatusConflict {
			t.Errorf("host again on %s: %d, want 409", app, r.status)
		}
	}

	ds := decode[[]engine.DomainStatus](t, e.do(e.tokens[berth.ScopeRead], "GET", "/api/v1/apps/web/domains", nil), http.StatusOK)
	if len(ds) != 2 || ds[1].Certificate.Host != "web.example.com" {
		t.Errorf("domains = %+v", ds)
	}
	if ds := decode[[]engine.DomainStatus](t, e.do(e.tokens[berth.ScopeRead], "GET", "/api/v1/apps/api/domains", nil), http.StatusOK); ds == nil || len(ds) != 0 {
		t.Errorf("api domains = %#v, want []", ds)
	}

	if r := e.do(write, "DELETE", "/api/v1/apps/web/domains/WEB.example.com", nil); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if rt, _ := e.fakes.Router.Route(web.ID); slices.Contains(rt.Hosts, "web.example.com") {
		t.Errorf("route after delete still has the host: %+v", rt)
	}
	for _, host := range []string{"web.example.com", "nope.example.com", "bad host", "%2e%2e"} {
		if r := e.do(write, "DELETE", "/api/v1/apps/web/domains/"+host, nil); r.status != http.StatusNotFound {
			t.Errorf("delete %q: %d, want 404", host, r.status)
		}
	}
	// The freed host may go to another app.
	decode[berth.Domain](t, e.do(write, "POST", "/api/v1/apps/api/domains", map[string]string{"host": "web.example.com"}), http.StatusCreated)
}

func TestEnv(t *testing.T) {
	e := newEnv(t)
	e.createApp(gitApp("web"))
	write, admin := e.tokens[berth.ScopeWrite], e.tokens[berth.ScopeAdmin]

	res := decode[EnvResult](t, e.do(write, "PATCH", "/api/v1/apps/web/env", EnvPatch{Set: map[string]string{"A": "secret-a", "B": "secret-b", "EMPTY": ""}}), http.StatusOK)
	if len(res.Env) != 3 || res.Deployment != nil {
		t.Fatalf("result = %+v", res)
	}
	for _, v := range res.Env {
		if v.Value != "" || !v.Redacted {
			t.Errorf("write token sees %+v; values need read-secrets", v)
		}
	}
	for scope, wantPlain := range map[berth.Scope]bool{berth.ScopeRead: false, berth.ScopeWrite: false, berth.ScopeReadSecrets: true, berth.ScopeAdmin: true} {
		r := e.do(e.tokens[scope], "GET", "/api/v1/apps/web/env", nil)
		vars := decode[[]EnvVar](t, r, http.StatusOK)
		if len(vars) != 3 || vars[0].Key != "A" {
			t.Fatalf("%s: env = %+v", scope, vars)
		}
		if plain := vars[0].Value == "secret-a" && !vars[0].Redacted; plain != wantPlain {
			t.Errorf("%s: %+v, plain=%v want %v", scope, vars[0], plain, wantPlain)
		}
		if !wantPlain && (strings.Contains(string(r.body), "secret-a") || strings.Contains(string(r.body), "secret-b")) {
			t.Errorf("%s: a secret value leaked: %s", scope, r.body)
		}
	}

	res = decode[EnvResult](t, e.do(admin, "PATCH", "/api/v1/apps/web/env", EnvPatch{Unset: []string{"A", "MISSING"}, Set: map[string]string{"B": "new"}}), http.StatusOK)
	if len(res.Env) != 2 || res.Env[0].Key != "B" || res.Env[0].Value != "new" {
		t.Errorf("after unset: %+v", res.Env)
	}

	// deploy: true starts a deployment that runs with the new env.
	res = decode[EnvResult](t, e.do(write, "PATCH", "/api/v1/apps/web/env", EnvPatch{Set: map[string]string{"C": "3"}, Deploy: true}), http.StatusOK)
	if res.Deployment == nil || res.Deployment.Status != berth.StatusQueued {
		t.Fatalf("deployment = %+v", res.Deployment)
	}
	d := e.wait("web", res.Deployment.ID, berth.StatusLive)
	if d.CreatedBy != "admin" {
		t.Errorf("created by %q, want admin", d.CreatedBy)
	}
	rels := decode[[]Release](t, e.do(write, "GET", "/api/v1/apps/web/releases", nil), http.StatusOK)
	if len(rels) != 1 || !rels[0].Config.EnvRedacted || rels[0].Config.Env["C"] != "" || len(rels[0].Config.Env) != 3 {
		t.Errorf("release env for a write token = %+v", rels[0].Config)
	}
	rels = decode[[]Release](t, e.do(admin, "GET", "/api/v1/apps/web/releases", nil), http.StatusOK)
	if rels[0].Config.EnvRedacted || rels[0].Config.Env["C"] != "3" || rels[0].Config.Env["B"] != "new" {
		t.Errorf("release env for admin = %+v", rels[0].Config)
	}
	if len(rels) != 1 || rels[0].Config.Health != berth.DefaultHealthCheck {
		t.Errorf("release health = %+v", rels[0].Config.Health)
	}
}

// testCert returns a self-signed PEM certificate for hosts, valid from
// notBefore to notAfter, and its PEM key.
func testCert(t *testing.T, notBefore, notAfter time.Time, hosts ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: hosts[0]},
		Issuer:       pkix.Name{CommonName: "berth test CA"},
		DNSNames:     hosts,
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// keyBody is the base64 body of a PEM key: what must never be echoed.
func keyBody(keyPEM []byte) []string {
	var out []string
	for _, l := range strings.Split(string(keyPEM), "\n") {
		if l != "" && !strings.HasPrefix(l, "-----") {
			out = append(out, l)
		}
	}
	return out
}

func TestCertificates(t *testing.T) {
	e := newEnv(t)
	e.createApp(gitApp("web"))
	e.createApp(gitApp("api"))
	e.deployLive("web")
	write, read := e.tokens[berth.ScopeWrite], e.tokens[berth.ScopeRead]
	for _, h := range []string{"web.example.com", "*.web.example.com"} {
		decode[berth.Domain](t, e.do(write, "POST", "/api/v1/apps/web/domains", map[string]string{"host": h}), http.StatusCreated)
	}
	decode[berth.Domain](t, e.do(write, "POST", "/api/v1/apps/api/domains", map[string]string{"host": "api.example.com"}), http.StatusCreated)

	// Every domain comes with its certificate; api is not deployed, so not
	// routed, and says so.
	ds := decode[[]engine.DomainStatus](t, e.do(read, "GET", "/api/v1/apps/web/domains", nil), http.StatusOK)
	if len(ds) != 2 || ds[0].Certificate.Host != ds[0].Host || ds[0].Certificate.Status != berth.CertNone {
		t.Fatalf("web domains = %+v", ds)
	}
	r := e.do(read, "GET", "/api/v1/apps/api/domains", nil)
	if ds := decode[[]engine.DomainStatus](t, r, http.StatusOK); len(ds) != 1 || !strings.Contains(ds[0].Certificate.LastError, "not routed") {
		t.Errorf("api domains = %+v", ds)
	}
	if !strings.Contains(string(r.body), `"certificate": {`) || !strings.Contains(string(r.body), `"status": "none"`) {
		t.Errorf("domain JSON lacks the certificate object:\n%s", r.body)
	}

	now := time.Now()
	cert, key := testCert(t, now.Add(-time.Hour), now.Add(90*24*time.Hour), "web.example.com", "*.web.example.com")
	body := map[string]string{"cert_pem": string(cert), "key_pem": string(key)}
	r = e.do(write, "PUT", "/api/v1/apps/web/domains/Web.Example.com/certificate", body)
	got := decode[engine.DomainStatus](t, r, http.StatusOK)
	if got.Host != "web.example.com" || got.Certificate.Status != berth.CertValid || got.Certificate.Source != "custom" {
		t.Errorf("after PUT: %+v", got)
	}
	for _, l := range keyBody(key) {
		if strings.Contains(string(r.body), l) {
			t.Fatalf("the answer echoes the key:\n%s", r.body)
		}
	}
	decode[engine.DomainStatus](t, e.do(write, "PUT", "/api/v1/apps/web/domains/*.web.example.com/certificate", body), http.StatusOK)
	ds = decode[[]engine.DomainStatus](t, e.do(read, "GET", "/api/v1/apps/web/domains", nil), http.StatusOK)
	for _, d := range ds {
		if d.Certificate.Status != berth.CertValid {
			t.Errorf("%s after PUT: %+v", d.Host, d.Certificate)
		}
	}

	otherCert, otherKey := testCert(t, now.Add(-time.Hour), now.Add(time.Hour), "web.example.com")
	expired, expiredKey := testCert(t, now.Add(-48*time.Hour), now.Add(-24*time.Hour), "web.example.com")
	future, futureKey := testCert(t, now.Add(24*time.Hour), now.Add(48*time.Hour), "web.example.com")
	apiCert, apiKey := testCert(t, now.Add(-time.Hour), now.Add(time.Hour), "api.example.com")
	big := `{"cert_pem": "` + strings.Repeat("A", MaxJSONBody) + `", "key_pem": ""}`
	for _, tt := range []struct {
		name, path string
		body       any
		status     int
		detail     string
		secret     []byte // key that must not be echoed
	}{
		{"key of another cert", "web.example.com", map[string]string{"cert_pem": string(cert), "key_pem": string(otherKey)}, 400, "does not match", otherKey},
		{"other host", "web.example.com", map[string]string{"cert_pem": string(apiCert), "key_pem": string(apiKey)}, 400, "does not cover web.example.com", apiKey},
		{"wildcard route, plain cert", "*.web.example.com", map[string]string{"cert_pem": string(otherCert), "key_pem": string(otherKey)}, 400, "does not cover", otherKey},
		{"expired", "web.example.com", map[string]string{"cert_pem": string(expired), "key_pem": string(expiredKey)}, 400, "expired", expiredKey},
		{"not yet valid", "web.example.com", map[string]string{"cert_pem": string(future), "key_pem": string(futureKey)}, 400, "not valid before", futureKey},
		{"key in the cert field", "web.example.com", map[string]string{"cert_pem": string(key), "key_pem": string(key)}, 400, "certificate", key},
		{"not PEM", "web.example.com", map[string]string{"cert_pem": "hello", "key_pem": "world"}, 400, "PEM", nil},
		{"no key", "web.example.com", map[string]string{"cert_pem": string(cert)}, 400, "key_pem", nil},
		{"empty", "web.example.com", map[string]string{}, 400, "cert_pem", nil},
		{"unknown field", "web.example.com", map[string]string{"cert_pem": string(cert), "key_pem": string(key), "chain": "x"}, 400, "unknown field", key},
		{"body over 1 MiB", "web.example.com", big, 400, "larger than", nil},
		{"domain of another app", "api.example.com", map[string]string{"cert_pem": string(apiCert), "key_pem": string(apiKey)}, 404, "no domain", apiKey},
		{"no such domain", "nope.example.com", body, 404, "no domain", key},
		{"bad host", "a;b", body, 404, "no domain", key},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(write, "PUT", "/api/v1/apps/web/domains/"+urlPath(tt.path)+"/certificate", tt.body)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			p := r.problem(t)
			t.Logf("detail: %s", p.Detail)
			if !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("detail %q does not contain %q", p.Detail, tt.detail)
			}
			for _, l := range keyBody(tt.secret) {
				if strings.Contains(string(r.body), l) {
					t.Fatalf("the answer echoes the key:\n%s", r.body)
				}
			}
		})
	}
	// The refused requests changed nothing.
	ds = decode[[]engine.DomainStatus](t, e.do(read, "GET", "/api/v1/apps/web/domains", nil), http.StatusOK)
	if ds[0].Certificate.Status != berth.CertValid {
		t.Errorf("after refused PUTs: %+v", ds[0].Certificate)
	}

	// DELETE goes back to ACME (here: none).
	if r := e.do(write, "DELETE", "/api/v1/apps/web/domains/web.example.com/certificate", nil); r.status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", r.status, r.body)
	}
	ds = decode[[]engine.DomainStatus](t, e.do(read, "GET", "/api/v1/apps/web/domains", nil), http.StatusOK)
	if len(ds) != 2 || ds[0].Host != "*.web.example.com" || ds[0].Certificate.Status != berth.CertValid ||
		ds[1].Host != "web.example.com" || ds[1].Certificate.Status != berth.CertNone {
		t.Errorf("after DELETE: %+v", ds)
	}
	for _, host := range []string{"nope.example.com", "api.example.com", "bad%20host"} {
		if r := e.do(write, "DELETE", "/api/v1/apps/web/domains/"+host+"/certificate", nil); r.status != http.StatusNotFound {
			t.Errorf("DELETE %s: %d, want 404", host, r.status)
		}
	}
	if logs := e.logs.String(); logs != "" {
		for _, l := range keyBody(key) {
			if strings.Contains(logs, l) {
				t.Fatalf("the server log holds the key:\n%s", logs)
			}
		}
	}
}

func TestScrubKey(t *testing.T) {
	_, key := testCert(t, time.Now(), time.Now().Add(time.Hour), "web.example.com")
	lines := keyBody(key)
	for _, tt := range []struct {
		name  string
		err   error
		clean bool
	}{
		{"no key", berth.E("set certificate", berth.Invalid, "bad chain"), true},
		{"key quoted", berth.E("set certificate", berth.Invalid, "cannot parse %q", lines[0]), false},
		{"key deep in the chain", fmt.Errorf("proxy: %w", berth.Wrap("x", berth.Unavailable, errors.New("echo "+lines[len(lines)-1]))), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := scrubKey("set certificate", tt.err, key)
			if (got == tt.err) != tt.clean {
				t.Errorf("scrubKey(%v) = %v", tt.err, got)
			}
			if berth.ErrorKind(got) != berth.ErrorKind(tt.err) {
				t.Errorf("kind %s, want %s", berth.ErrorKind(got), berth.ErrorKind(tt.err))
			}
			for _, l := range lines {
				if strings.Contains(got.Error(), l) {
					t.Errorf("%v still quotes the key", got)
				}
			}
		})
	}
}
