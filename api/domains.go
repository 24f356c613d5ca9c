package api

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/auth"
	"github.com/berthhq/berth/engine"
)

// listDomains lists an app's domains, each with its certificate as the
// proxy reports it.
func (s *Server) listDomains(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	ds, err := s.engine.Domains(r.Context(), a)
	if err != nil {
		return fmt.Errorf("list domains of %s: %w", a.Name, err)
	}
	if ds == nil {
		ds = []engine.DomainStatus{}
	}
	return writeJSON(w, http.StatusOK, ds)
}

// DomainRequest is the body of POST /api/v1/apps/{app}/domains.
type DomainRequest struct {
	Host string `json:"host"`
}

func (s *Server) addDomain(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	const op = "add domain"
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	var req DomainRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	host := berth.NormalizeHost(req.Host)
	if err := berth.ValidHost(host); err != nil {
		return berth.E(op, berth.Invalid, "%v", err)
	}
	d := &berth.Domain{ID: berth.NewID("dom"), TeamID: p.Team.ID, AppID: a.ID, Host: host, CreatedAt: s.now().UTC()}
	if err := s.store.AddDomain(r.Context(), d); err != nil {
		if berth.IsKind(err, berth.Conflict) {
			return berth.E(op, berth.Conflict, "host %s is already routed to an app", host)
		}
		return fmt.Errorf("add domain %s: %w", host, err)
	}
	if err := s.engine.SyncRoute(r.Context(), a); err != nil {
		return fmt.Errorf("route %s to %s: %w", host, a.Name, err)
	}
	w.Header().Set("Location", "/api/v1/apps/"+a.Name+"/domains/"+host)
	return writeJSON(w, http.StatusCreated, d)
}

func (s *Server) removeDomain(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	host := berth.NormalizeHost(r.PathValue("host"))
	if berth.ValidHost(host) != nil {
		return berth.E("remove domain", berth.NotFound, "app %s has no domain %q", a.Name, clip(host))
	}
	if err := s.store.RemoveDomain(r.Context(), p.Team.ID, a.ID, host); err != nil {
		if berth.IsKind(err, berth.NotFound) {
			return berth.E("remove domain", berth.NotFound, "app %s has no domain %q", a.Name, host)
		}
		return fmt.Errorf("remove domain %s: %w", host, err)
	}
	if err := s.engine.SyncRoute(r.Context(), a); err != nil {
		return fmt.Errorf("unroute %s from %s: %w", host, a.Name, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// CertificateRequest is the body of PUT
// /api/v1/apps/{app}/domains/{host}/certificate: a PEM certificate chain
// (leaf first) and its PEM private key.
type CertificateRequest struct {
	CertPEM string `json:"cert_pem"`
	KeyPEM  string `json:"key_pem"`
}

// domainHost finds the {host} of the path among app a's domains, so that a
// request for a host the app does not have is a 404 before its body is read.
func (s *Server) domainHost(r *http.Request, p *auth.Principal, a *berth.App, op string) (string, error) {
	host := berth.NormalizeHost(r.PathValue("host"))
	notFound := berth.E(op, berth.NotFound, "app %s has no domain %q", a.Name, clip(host))
	if berth.ValidHost(host) != nil {
		return "", notFound
	}
	ds, err := s.store.Domains(r.Context(), p.Team.ID, a.ID)
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	for _, d := range ds {
		if d.Host == host {
			return host, nil
		}
	}
	return "", notFound
}

// setCertificate installs a custom certificate for one of an app's domains.
// The pair is checked here (it parses, the key matches, it covers the host,
// it is valid now) so that a mistake is a clear 400 rather than a proxy
// error. The key never appears in an answer or a log line.
func (s *Server) setCertificate(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	const op = "set certificate"
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	host, err := s.domainHost(r, p, a, op)
	if err != nil {
		return err
	}
	var req CertificateRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	certPEM, keyPEM := []byte(req.CertPEM), []byte(req.KeyPEM)
	if err := checkCertificate(host, certPEM, keyPEM, s.now()); err != nil {
		return err
	}
	if err := s.engine.SetCertificate(r.Context(), a, host, certPEM, keyPEM); err != nil {
		return scrubKey(op, fmt.Errorf("%s for %s: %w", op, host, err), keyPEM)
	}
	ds, err := s.engine.Domains(r.Context(), a)
	if err != nil {
		return fmt.Errorf("%s for %s: %w", op, host, err)
	}
	for _, d := range ds {
		if d.Host == host {
			return writeJSON(w, http.StatusOK, d)
		}
	}
	return berth.E(op, berth.Conflict, "app %s no longer has domain %q", a.Name, host)
}

// removeCertificate removes the custom certificate of one of an app's
// domains; ACME takes over again where it can.
func (s *Server) removeCertificate(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	const op = "remove certificate"
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	host, err := s.domainHost(r, p, a, op)
	if err != nil {
		return err
	}
	if err := s.engine.SetCertificate(r.Context(), a, host, nil, nil); err != nil {
		return fmt.Errorf("%s for %s: %w", op, host, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// checkCertificate checks a PEM certificate chain and key for host at time
// now. Its messages never quote the PEM input.
func checkCertificate(host string, certPEM, keyPEM []byte, now time.Time) error {
	const op = "set certificate"
	bad := func(format string, args ...any) error { return berth.E(op, berth.Invalid, format, args...) }
	if len(bytes.TrimSpace(certPEM)) == 0 || len(bytes.TrimSpace(keyPEM)) == 0 {
		return bad("send both cert_pem and key_pem (to remove a certificate, use DELETE)")
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return scrubKey(op, bad("certificate and key: %s", strings.TrimPrefix(err.Error(), "tls: ")), keyPEM)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return bad("cert_pem: the first certificate does not parse")
		}
	}
	if err := leaf.VerifyHostname(host); err != nil {
		return bad("the certificate does not cover %s (it names %s)", host, clip(strings.Join(leaf.DNSNames, ", ")))
	}
	switch {
	case now.After(leaf.NotAfter):
		return bad("the certificate expired on %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return bad("the certificate is not valid before %s", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

// scrubKey returns err unless its text quotes a line of the private key,
// in which case it returns an error of the same kind that does not.
func scrubKey(op string, err error, keyPEM []byte) error {
	text := err.Error()
	for _, line := range strings.Split(string(keyPEM), "\n") {
		line = strings.TrimSpace(line)
		if len(line) >= 16 && !strings.HasPrefix(line, "-----") && strings.Contains(text, line) {
			return berth.E(op, berth.ErrorKind(err), "the certificate or key was refused (the reason quoted the key and is withheld)")
		}
	}
	return err
}
