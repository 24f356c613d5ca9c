package proxy_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/proxy"
)

func slogToStderr() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// certOf returns the status of host.
func certOf(t *testing.T, c *proxy.Client, host string) berth.Certificate {
	t.Helper()
	all, err := c.Certificates(context.Background())
	if err != nil {
		t.Fatalf("certificates: %v", err)
	}
	for _, crt := range all {
		if crt.Host == host {
			return crt
		}
	}
	return berth.Certificate{}
}

// echoProto is a target answering its name and the X-Forwarded-Proto it
// got.
func echoProto(t *testing.T, name string) string {
	return serveBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", name, r.Header.Get("X-Forwarded-Proto"))
	}))
}

// selfSigned returns a PEM certificate and key for hosts, valid from
// notBefore to notAfter.
func selfSigned(t *testing.T, cn string, hosts []string, notBefore, notAfter time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"berth test"}},
		DNSNames:              hosts,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// TestACME runs the proxy against Pebble: routed hosts get certificates
// from a real ACME exchange (HTTP-01 or TLS-ALPN-01 validated on the
// proxy's own listeners), HTTPS serves them over HTTP/2 and HTTP/1.1,
// plain HTTP redirects, refusals show in the status, uploaded certificates
// take precedence, and a restart serves the stored certificates without a
// new issuance.
func TestACME(t *testing.T) {
	httpAddr, httpsAddr := freeAddr(t), freeAddr(t)
	pb := startPebble(t, pebbleOptions{
		httpPort: port(t, httpAddr),
		tlsPort:  port(t, httpsAddr),
		blocked:  []string{"blocked.example.com"},
	})
	state := t.TempDir()
	// HTTP-01 only, so that the challenges go through the HTTP listener
	// (TestACMERenewal takes TLS-ALPN-01).
	cfg := proxy.Config{StateDir: state, ACME: proxy.ACMEConfig{
		CA: pb.dir, CARoot: pb.caRoot, Email: "ops@example.com", DisableTLSALPNChallenge: true,
	}}
	e := startEdge(t, cfg, httpAddr, httpsAddr)
	outer := t // the restarted proxy lives as long as the whole test
	ctx := context.Background()
	web := echoProto(t, "web")
	shop := echoProto(t, "shop")
	hosts := []string{"app.example.com", "blocked.example.com", "dev.localhost", "*.wild.example.com", "10.1.2.3", "site.test"}
	if err := e.client.SetRoute(ctx, berth.Route{App: "web", Hosts: hosts, Targets: []string{web}}); err != nil {
		t.Fatal(err)
	}
	if err := e.client.SetRoute(ctx, berth.Route{App: "shop", Hosts: []string{"shop.example.com"}, Targets: []string{shop}}); err != nil {
		t.Fatal(err)
	}

	var issued berth.Certificate
	waitFor(t, 60*time.Second, "certificates for app.example.com and shop.example.com", func() bool {
		issued = certOf(t, e.client, "app.example.com")
		return issued.Status == berth.CertValid && certOf(t, e.client, "shop.example.com").Status == berth.CertValid
	})
	t.Run("status", func(t *testing.T) {
		if issued.Source != "acme" || !strings.Contains(issued.Issuer, "Pebble") || issued.NotAfter == nil ||
			issued.NotAfter.Before(time.Now().Add(80*24*time.Hour)) || issued.UpdatedAt.IsZero() || issued.LastError != "" {
			t.Fatalf("app.example.com: %+v", issued)
		}
		waitFor(t, 30*time.Second, "the refusal of blocked.example.com", func() bool {
			return certOf(t, e.client, "blocked.example.com").Status == berth.CertError
		})
		if b := certOf(t, e.client, "blocked.example.com"); !contains(b.LastError, "forbidden by policy") || b.NotAfter != nil {
			t.Errorf("blocked.example.com: %+v, want the CA's refusal", b)
		}
		for host, reason := range map[string]string{
			"dev.localhost":      "localhost",
			"*.wild.example.com": "wildcard",
			"10.1.2.3":           "IP address",
			"site.test":          ".test",
		} {
			if c := certOf(t, e.client, host); c.Status != berth.CertNone || !contains(c.LastError, reason) {
				t.Errorf("%s: %+v, want none with a reason about %q", host, c, reason)
			}
		}
	})

	t.Run("HTTPS", func(t *testing.T) {
		for _, h2 := range []bool{true, false} {
			c := httpsClient(pb.roots, httpsAddr, h2)
			resp, err := c.Get("https://app.example.com/x")
			if err != nil {
				t.Fatalf("h2=%v: %v", h2, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := "HTTP/1.1"
			if h2 {
				want = "HTTP/2.0"
			}
			if resp.StatusCode != 200 || string(body) != "web https" || resp.Proto != want {
				t.Errorf("h2=%v: %s %d %q, want %s 200 %q", h2, resp.Proto, resp.StatusCode, body, want, "web https")
			}
			if na := resp.TLS.PeerCertificates[0].NotAfter; !na.Equal(*issued.NotAfter) {
				t.Errorf("served certificate expires %s, status says %s", na, issued.NotAfter)
			}
		}
	})

	t.Run("redirect", func(t *testing.T) {
		plain := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		tests := []struct {
			host, path string
			code       int
			location   string
		}{
			{"app.example.com", "/a/b?q=1", 308, fmt.Sprintf("https://app.example.com:%d/a/b?q=1", port(t, httpsAddr))},
			{"App.Example.com:80", "/", 308, fmt.Sprintf("https://app.example.com:%d/", port(t, httpsAddr))},
			{"app.example.com", "/.well-known/acme-challenge/unknown-token", 200, ""}, // not redirected: forwarded
			{"dev.localhost", "/", 200, ""},       // no certificate: served over HTTP
			{"blocked.example.com", "/", 200, ""}, // no certificate yet
		}
		for _, tt := range tests {
			req, _ := http.NewRequest(http.MethodGet, "http://"+httpAddr+tt.path, nil)
			req.Host = tt.host
			resp, err := plain.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.code || resp.Header.Get("Location") != tt.location {
				t.Errorf("http://%s%s: %d %q, want %d %q", tt.host, tt.path, resp.StatusCode, resp.Header.Get("Location"), tt.code, tt.location)
			}
		}
	})

	t.Run("uploaded certificate", func(t *testing.T) {
		now := time.Now()
		certPEM, keyPEM := selfSigned(t, "berth test shop", []string{"shop.example.com"}, now.Add(-time.Hour), now.Add(30*24*time.Hour))
		otherCert, otherKey := selfSigned(t, "other", []string{"other.example.com"}, now.Add(-time.Hour), now.Add(time.Hour))
		oldCert, oldKey := selfSigned(t, "old", []string{"shop.example.com"}, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
		bad := []struct {
			name, host  string
			cert, key   []byte
			wantMessage string
		}{
			{"key of another certificate", "shop.example.com", certPEM, otherKey, "does not match"},
			{"host not covered", "shop.example.com", otherCert, otherKey, "does not cover"},
			{"expired", "shop.example.com", oldCert, oldKey, "expired"},
			{"no certificate", "shop.example.com", keyPEM, keyPEM, "no PEM certificate"},
			{"garbage key", "shop.example.com", certPEM, []byte("-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n"), "private key"},
			{"bad host", "Shop.Example.com", certPEM, keyPEM, "lowercase"},
		}
		for _, tt := range bad {
			err := e.client.SetCertificate(ctx, tt.host, tt.cert, tt.key)
			if !berth.IsKind(err, berth.Invalid) || !contains(err.Error(), tt.wantMessage) {
				t.Errorf("%s: %v, want Invalid saying %q", tt.name, err, tt.wantMessage)
			}
			if err != nil && (contains(err.Error(), "PRIVATE KEY") || contains(err.Error(), "c2VjcmV0")) {
				t.Errorf("%s: the error quotes the key: %v", tt.name, err)
			}
		}

		if err := e.client.SetCertificate(ctx, "shop.example.com", certPEM, keyPEM); err != nil {
			t.Fatalf("upload: %v", err)
		}
		c := certOf(t, e.client, "shop.example.com")
		if c.Status != berth.CertValid || c.Source != "custom" || c.Issuer != "berth test shop" || c.NotAfter == nil {
			t.Fatalf("status after upload: %+v", c)
		}
		fi, err := os.Stat(filepath.Join(state, "custom", "shop.example.com.pem"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("stored certificate: %v %v, want mode 0600", fi, err)
		}
		leaf, err := servedCert(httpsAddr, "shop.example.com")
		if err != nil || leaf.Subject.CommonName != "berth test shop" {
			t.Fatalf("served certificate: %v %v, want the uploaded one", leaf, err)
		}
		// An uploaded certificate also serves a host ACME cannot.
		devCert, devKey := selfSigned(t, "berth test dev", []string{"dev.localhost"}, now.Add(-time.Hour), now.Add(time.Hour))
		if err := e.client.SetCertificate(ctx, "dev.localhost", devCert, devKey); err != nil {
			t.Fatal(err)
		}
		roots := x509NewPool(t, devCert)
		resp, err := httpsClient(roots, httpsAddr, true).Get("https://dev.localhost/")
		if err != nil {
			t.Fatalf("HTTPS with an uploaded certificate: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "web https" {
			t.Fatalf("HTTPS with an uploaded certificate: %q", body)
		}
		if c := certOf(t, e.client, "dev.localhost"); c.Status != berth.CertValid || c.Source != "custom" {
			t.Fatalf("dev.localhost: %+v", c)
		}

		// Removing it hands the host back to ACME, whose certificate is
		// still in storage.
		if err := e.client.SetCertificate(ctx, "shop.example.com", nil, nil); err != nil {
			t.Fatalf("remove: %v", err)
		}
		if _, err := os.Stat(filepath.Join(state, "custom", "shop.example.com.pem")); !os.IsNotExist(err) {
			t.Fatalf("removed certificate still stored: %v", err)
		}
		waitFor(t, 30*time.Second, "ACME to serve shop.example.com again", func() bool {
			c := certOf(t, e.client, "shop.example.com")
			return c.Status == berth.CertValid && c.Source == "acme"
		})
		if leaf, err := servedCert(httpsAddr, "shop.example.com"); err != nil || !strings.Contains(leaf.Issuer.CommonName, "Pebble") {
			t.Fatalf("served certificate after removal: %v %v", leaf, err)
		}
	})

	t.Run("restart", func(t *testing.T) {
		before, err := servedCert(httpsAddr, "app.example.com")
		if err != nil {
			t.Fatal(err)
		}
		issuedBefore := pb.finalized.Load()
		e.stop()
		e = startEdge(outer, cfg, httpAddr, httpsAddr)
		// Served at once: the certificate comes from storage.
		after, err := servedCert(httpsAddr, "app.example.com")
		if err != nil || after.SerialNumber.Cmp(before.SerialNumber) != 0 {
			t.Fatalf("after restart: %v %v, want serial %s", after, err, before.SerialNumber)
		}
		if c := certOf(t, e.client, "app.example.com"); c.Status != berth.CertValid || !c.NotAfter.Equal(before.NotAfter) {
			t.Fatalf("status after restart: %+v", c)
		}
		if leaf, err := servedCert(httpsAddr, "dev.localhost"); err != nil || leaf.Subject.CommonName != "berth test dev" {
			t.Fatalf("uploaded certificate after restart: %v %v", leaf, err)
		}
		time.Sleep(500 * time.Millisecond) // give a wrong re-issuance the chance to show
		if n := pb.finalized.Load(); n != issuedBefore {
			t.Fatalf("restart issued %d certificates, want none", n-issuedBefore)
		}
	})

	t.Run("unrouted host", func(t *testing.T) {
		if err := e.client.RemoveRoute(ctx, "shop"); err != nil {
			t.Fatal(err)
		}
		if c := certOf(t, e.client, "shop.example.com"); c.Host != "" {
			t.Fatalf("status of an unrouted host: %+v", c)
		}
		if _, err := servedCert(httpsAddr, "shop.example.com"); err == nil {
			t.Fatal("a certificate is still served for an unrouted host")
		}
	})
}

func x509NewPool(t *testing.T, certPEM []byte) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(certPEM) {
		t.Fatal("bad PEM")
	}
	return pool
}

// TestACMEUnreachable records a CA that cannot be reached as the host's
// error, and keeps serving it over plain HTTP.
func TestACMEUnreachable(t *testing.T) {
	dead := deadAddr(t)
	cfg := proxy.Config{StateDir: t.TempDir(), ACME: proxy.ACMEConfig{CA: "https://" + dead + "/dir"}}
	e := startEdge(t, cfg, freeAddr(t), freeAddr(t))
	target := echoProto(t, "web")
	if err := e.client.SetRoute(context.Background(), berth.Route{App: "web", Hosts: []string{"down.example.com"}, Targets: []string{target}}); err != nil {
		t.Fatal(err)
	}
	var c berth.Certificate
	waitFor(t, 60*time.Second, "the issuance error", func() bool {
		c = certOf(t, e.client, "down.example.com")
		return c.Status == berth.CertError
	})
	if !contains(c.LastError, "connection refused") || c.UpdatedAt.IsZero() || c.NotAfter != nil {
		t.Fatalf("status: %+v, want the connection error", c)
	}
	if code, body := get(t, http.DefaultClient, "http://"+e.httpAddr+"/", "down.example.com"); code != 200 || body != "web http" {
		t.Fatalf("plain HTTP without a certificate: %d %q", code, body)
	}
}

// TestACMERenewal renews a certificate inside its renewal window, with
// TLS-ALPN-01 challenges answered on the HTTPS listener. Pebble
// issues certificates valid 20 seconds and the proxy checks every second
// with a renewal window of half the lifetime, so a certificate enters its
// window about 10 seconds after issuance.
func TestACMERenewal(t *testing.T) {
	httpAddr, httpsAddr := freeAddr(t), freeAddr(t)
	pb := startPebble(t, pebbleOptions{httpPort: port(t, httpAddr), tlsPort: port(t, httpsAddr), validity: 20 * time.Second})
	cfg := proxy.Config{StateDir: t.TempDir(), ACME: proxy.ACMEConfig{
		CA: pb.dir, CARoot: pb.caRoot, RenewalWindow: 0.5, RenewCheck: time.Second,
		DisableHTTPChallenge: true, // TLS-ALPN-01 on the HTTPS listener
	}}
	e := startEdge(t, cfg, httpAddr, httpsAddr)
	target := echoProto(t, "web")
	if err := e.client.SetRoute(context.Background(), berth.Route{App: "web", Hosts: []string{"renew.example.com"}, Targets: []string{target}}); err != nil {
		t.Fatal(err)
	}
	var first berth.Certificate
	waitFor(t, 60*time.Second, "the first certificate", func() bool {
		first = certOf(t, e.client, "renew.example.com")
		return first.Status == berth.CertValid
	})
	waitFor(t, 60*time.Second, "the renewed certificate to be served", func() bool {
		leaf, err := servedCert(httpsAddr, "renew.example.com")
		return err == nil && leaf.NotAfter.After(*first.NotAfter)
	})
	if c := certOf(t, e.client, "renew.example.com"); c.Status != berth.CertValid || !c.NotAfter.After(*first.NotAfter) {
		t.Fatalf("status after renewal: %+v (first expired %s)", c, first.NotAfter)
	}
	if pb.finalized.Load() < 2 {
		t.Fatalf("%d certificates issued, want a renewal", pb.finalized.Load())
	}
}

// TestTLSOff reports every routed host as none when HTTPS is off, and
// still keeps uploaded certificates.
func TestTLSOff(t *testing.T) {
	dir := t.TempDir()
	p := newProxy(t, dir)
	setRoute(t, p, "web", []string{"b.example.com", "a.example.com"})
	certs, err := p.Certificates(context.Background())
	if err != nil || len(certs) != 2 || certs[0].Host != "a.example.com" || certs[1].Host != "b.example.com" {
		t.Fatalf("certificates: %+v %v", certs, err)
	}
	for _, c := range certs {
		if c.Status != berth.CertNone || !contains(c.LastError, "HTTPS is off") {
			t.Errorf("%s: %+v", c.Host, c)
		}
	}
	now := time.Now()
	certPEM, keyPEM := selfSigned(t, "x", []string{"*.example.com"}, now.Add(-time.Hour), now.Add(time.Hour))
	if err := p.SetCertificate(context.Background(), "*.example.com", certPEM, keyPEM); err != nil {
		t.Fatalf("upload a wildcard: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "custom", "_.example.com.pem")); err != nil {
		t.Fatal(err)
	}
	if err := p.SetCertificate(context.Background(), "*.other.com", certPEM, keyPEM); !berth.IsKind(err, berth.Invalid) {
		t.Fatalf("a wildcard the certificate does not name: %v", err)
	}
	if err := p.SetCertificate(context.Background(), "*.example.com", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := p.SetCertificate(context.Background(), "*.example.com", nil, nil); err != nil {
		t.Fatalf("removing a missing certificate: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "custom"))
	if len(entries) != 0 {
		t.Fatalf("files left: %v", entries)
	}
}
