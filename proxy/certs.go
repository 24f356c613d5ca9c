package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/berthhq/berth"
)

// ACMEConfig configures how the proxy obtains certificates.
type ACMEConfig struct {
	Email string // contact address of the CA account; optional
	CA    string // ACME directory URL; Let's Encrypt's production CA when empty
	// CARoot is the path of a PEM bundle of the roots to trust for the CA's
	// own HTTPS endpoint, in place of the system's (a private or test CA).
	CARoot                  string
	DisableHTTPChallenge    bool // do not answer HTTP-01 on the HTTP listener
	DisableTLSALPNChallenge bool // do not answer TLS-ALPN-01 on the HTTPS listener
	// RenewalWindow is the fraction of a certificate's lifetime left when
	// its renewal starts; 1/3 when zero (30 days of a 90-day certificate).
	// A CA's renewal information (ARI) may start it earlier.
	RenewalWindow float64
	// RenewCheck is how often certificates are checked for renewal; 10
	// minutes when zero.
	RenewCheck time.Duration
}

// The certificate stores under the state directory.
const (
	acmeDir   = "certs"  // certmagic's file storage: ACME accounts, certificates, locks
	customDir = "custom" // uploaded certificates, one PEM file (key and chain) per host
)

// acmeTLSProto is the ALPN protocol of TLS-ALPN-01 challenges.
const acmeTLSProto = "acme-tls/1"

// certs serves the certificates of the routed hosts: uploaded ones first,
// then ACME ones managed by certmagic. It tracks each host's state for the
// status report, and which hosts have a certificate, whose plain-HTTP
// requests are redirected to HTTPS.
type certs struct {
	log       *slog.Logger
	on        bool // HTTPS is configured
	acme      ACMEConfig
	stateDir  string
	httpsPort string // set by start, before any request

	mu     sync.Mutex
	hosts  map[string]*hostCert // the routed hosts, while HTTPS is on
	custom map[string]*customCert
	ctx    context.Context // set while started
	magic  *certmagic.Config
	cache  *certmagic.Cache

	served atomic.Pointer[servedSet]
}

// hostCert is the state of one routed host.
type hostCert struct {
	reason  string // why ACME cannot serve the host; "" when it can
	status  berth.CertStatus
	lastErr string
	updated time.Time
	cancel  context.CancelFunc // stops ACME management; nil when not managed
	cached  bool               // certmagic has its certificate in memory
}

// customCert is an uploaded certificate.
type customCert struct {
	cert    *tls.Certificate // Leaf set
	updated time.Time
}

// servedSet is an immutable snapshot of what the hot paths need: the hosts
// with a certificate (for redirects) and the uploaded certificates (for
// handshakes). Wildcard hosts are keyed by the domain under "*.".
type servedSet struct {
	exact, wild             map[string]bool
	customExact, customWild map[string]*tls.Certificate
}

// newCerts returns the certificate manager of a proxy and loads the
// uploaded certificates from the state directory.
func newCerts(cfg Config, log *slog.Logger) (*certs, error) {
	c := &certs{
		log:      log,
		on:       cfg.HTTPSAddr != "",
		acme:     cfg.ACME,
		stateDir: cfg.StateDir,
		hosts:    make(map[string]*hostCert),
		custom:   make(map[string]*customCert),
	}
	if err := c.loadCustom(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.publishLocked()
	c.mu.Unlock()
	return c, nil
}

// start begins ACME management for the routed hosts. httpAddr and
// httpsAddr are the addresses the proxy listens on; certmagic answers
// challenges through them and never opens listeners of its own. The
// returned func stops management.
func (c *certs) start(ctx context.Context, httpAddr, httpsAddr net.Addr) (stop func(), err error) {
	httpHost, httpPort, err := hostPort(httpAddr)
	if err != nil {
		return nil, err
	}
	httpsHost, httpsPort, err := hostPort(httpsAddr)
	if err != nil {
		return nil, err
	}
	// certmagic takes one host for both challenge listeners; were it not
	// the HTTPS listener's, certmagic would open a listener of its own.
	noALPN := c.acme.DisableTLSALPNChallenge || httpsHost != httpHost
	var roots *x509.CertPool
	if c.acme.CARoot != "" {
		pem, err := os.ReadFile(c.acme.CARoot)
		if err != nil {
			return nil, fmt.Errorf("read ACME CA roots: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, berth.E("start TLS", berth.Invalid, "ACME CA roots %s hold no PEM certificate", c.acme.CARoot)
		}
	}
	ca := c.acme.CA
	if ca == "" {
		ca = certmagic.LetsEncryptProductionCA
	}
	window := c.acme.RenewalWindow
	if window <= 0 || window >= 1 {
		window = certmagic.DefaultRenewalWindowRatio
	}

	zl := zap.New(newSlogCore(c.log.Handler()))
	var magic *certmagic.Config
	cache := certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return magic, nil },
		RenewCheckInterval: c.acme.RenewCheck,
		Logger:             zl,
	})
	magic = certmagic.New(cache, certmagic.Config{
		RenewalWindowRatio: window,
		OnEvent:            c.onEvent,
		ShouldEmitFunc:     func(event string) bool { return event != "tls_get_certificate" },
		Storage:            &certmagic.FileStorage{Path: filepath.Join(c.stateDir, acmeDir)},
		Logger:             zl,
	})
	port := func(s string) int { n, _ := strconv.Atoi(s); return n }
	magic.Issuers = []certmagic.Issuer{certmagic.NewACMEIssuer(magic, certmagic.ACMEIssuer{
		CA:                      ca,
		Email:                   c.acme.Email,
		Agreed:                  true,
		DisableHTTPChallenge:    c.acme.DisableHTTPChallenge,
		DisableTLSALPNChallenge: noALPN,
		// The proxy's own listeners: certmagic finds them in use and
		// leaves the challenges to them.
		ListenHost:     httpHost,
		AltHTTPPort:    port(httpPort),
		AltTLSALPNPort: port(httpsPort),
		TrustedRoots:   roots,
		Logger:         zl,
	})}

	mctx, cancel := context.WithCancel(ctx)
	c.mu.Lock()
	c.httpsPort = httpsPort
	c.ctx, c.magic, c.cache = mctx, magic, cache
	var load []string
	for h, st := range c.hosts {
		if c.acmeServes(h, st) {
			load = append(load, h)
		}
	}
	c.mu.Unlock()

	// Certificates already in storage serve from the first handshake.
	for _, h := range load {
		if _, err := magic.CacheManagedCertificate(mctx, h); err != nil && !errors.Is(err, fs.ErrNotExist) {
			c.log.Warn("load certificate", "host", h, "err", err)
		}
	}
	c.mu.Lock()
	for h, st := range c.hosts {
		if c.acmeServes(h, st) {
			c.manageLocked(h, st)
		}
	}
	c.mu.Unlock()
	c.log.Info("TLS on", "https_port", httpsPort, "acme_ca", ca, "hosts", len(load))

	return func() {
		c.mu.Lock()
		c.ctx = nil
		for _, st := range c.hosts {
			st.cancel = nil
		}
		c.mu.Unlock()
		cancel()
		cache.Stop()
	}, nil
}

// hostPort splits a listener's address.
func hostPort(a net.Addr) (string, string, error) {
	h, p, err := net.SplitHostPort(a.String())
	if err != nil {
		return "", "", fmt.Errorf("listener address %s: %w", a, err)
	}
	return h, p, nil
}

// acmeServes reports whether ACME should manage h: HTTPS is on, ACME can
// validate the name and no uploaded certificate replaces it.
func (c *certs) acmeServes(h string, st *hostCert) bool {
	return c.on && st.reason == "" && c.custom[h] == nil
}

// manageLocked starts ACME management of h once started.
func (c *certs) manageLocked(h string, st *hostCert) {
	if c.ctx == nil || st.cancel != nil {
		return
	}
	hctx, cancel := context.WithCancel(c.ctx)
	st.cancel = cancel
	if !st.cached {
		st.status, st.updated = berth.CertPending, time.Now()
	}
	// ManageAsync loads the certificate from storage or obtains one in the
	// background, retrying failures with backoff, and keeps it renewed.
	if err := c.magic.ManageAsync(hctx, []string{h}); err != nil {
		st.status, st.lastErr, st.updated = berth.CertError, clip512(err.Error()), time.Now()
	}
}

// unmanageLocked stops ACME management of h and drops its certificate
// from memory (it stays in storage, should the host come back).
func (c *certs) unmanageLocked(h string, st *hostCert) {
	if st.cancel != nil {
		st.cancel()
		st.cancel = nil
	}
	if c.cache != nil {
		c.cache.RemoveManaged([]certmagic.SubjectIssuer{{Subject: h}})
	}
	st.cached = false
}

// follow follows a route change: the hosts added start being managed,
// the hosts removed stop. A host is routed to one app at most, so a route
// change adds and removes hosts of its own app only.
func (c *certs) follow(added, removed []string) {
	if !c.on || len(added)+len(removed) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	changed := false
	now := time.Now()
	for _, h := range removed {
		if st, ok := c.hosts[h]; ok {
			c.unmanageLocked(h, st)
			delete(c.hosts, h)
			changed = true
		}
	}
	for _, h := range added {
		if _, ok := c.hosts[h]; ok {
			continue
		}
		st := &hostCert{reason: acmeIneligible(h), status: berth.CertNone, updated: now}
		if st.reason == "" {
			st.status = berth.CertPending
		}
		c.hosts[h] = st
		if c.acmeServes(h, st) {
			c.manageLocked(h, st)
		}
		changed = true
	}
	if changed {
		c.publishLocked()
	}
}

// publishLocked publishes the snapshot of served hosts and uploaded
// certificates.
func (c *certs) publishLocked() {
	s := &servedSet{
		exact:       make(map[string]bool),
		wild:        make(map[string]bool),
		customExact: make(map[string]*tls.Certificate),
		customWild:  make(map[string]*tls.Certificate),
	}
	for h, cc := range c.custom {
		if rest, ok := strings.CutPrefix(h, "*."); ok {
			s.customWild[rest] = cc.cert
		} else {
			s.customExact[h] = cc.cert
		}
	}
	if c.on {
		for h, st := range c.hosts {
			if st.cached || c.custom[h] != nil {
				if rest, ok := strings.CutPrefix(h, "*."); ok {
					s.wild[rest] = true
				} else {
					s.exact[h] = true
				}
			}
		}
	}
	c.served.Store(s)
}

// secure reports whether host has a certificate, so that plain HTTP to it
// is redirected.
func (c *certs) secure(host string) bool {
	s := c.served.Load()
	if s.exact[host] {
		return true
	}
	if i := strings.IndexByte(host, '.'); i > 0 && len(s.wild) > 0 {
		return s.wild[host[i+1:]]
	}
	return false
}

// secureBytes is secure for a host held in bytes; it does not allocate.
func (c *certs) secureBytes(host []byte) bool {
	s := c.served.Load()
	if s.exact[string(host)] {
		return true
	}
	if i := bytes.IndexByte(host, '.'); i > 0 && len(s.wild) > 0 {
		return s.wild[string(host[i+1:])]
	}
	return false
}

// getCertificate picks the certificate of a TLS handshake: the answer to a
// TLS-ALPN-01 challenge, the certificate uploaded for the name, the ACME
// one, or else one uploaded for a wildcard covering the name.
func (c *certs) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if !(len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acmeTLSProto) {
		name := berth.NormalizeHost(hello.ServerName)
		s := c.served.Load()
		if crt := s.customExact[name]; crt != nil {
			return crt, nil
		}
		if i := strings.IndexByte(name, '.'); i > 0 && len(s.customWild) > 0 && !s.exact[name] {
			if crt := s.customWild[name[i+1:]]; crt != nil {
				return crt, nil
			}
		}
	}
	return c.magic.GetCertificate(hello)
}

// handleChallenge answers an ACME HTTP-01 challenge request; it reports
// false when r is not one this proxy started.
func (c *certs) handleChallenge(w http.ResponseWriter, r *http.Request) bool {
	if c.magic == nil || len(c.magic.Issuers) == 0 {
		return false
	}
	iss, ok := c.magic.Issuers[0].(*certmagic.ACMEIssuer)
	return ok && iss.HandleHTTPChallenge(w, r)
}

// onEvent follows certmagic's certificate operations.
func (c *certs) onEvent(_ context.Context, event string, data map[string]any) error {
	now := time.Now()
	switch event {
	case "cert_obtaining", "cert_obtained", "cert_failed":
		h, _ := data["identifier"].(string)
		renewal, _ := data["renewal"].(bool)
		c.mu.Lock()
		defer c.mu.Unlock()
		st := c.hosts[h]
		if st == nil {
			return nil
		}
		st.updated = now
		switch event {
		case "cert_obtaining":
			if !st.cached {
				st.status = berth.CertPending
			}
		case "cert_obtained":
			// Valid once certmagic caches it (cached_managed_cert).
			st.lastErr = ""
			if st.cached {
				st.status = berth.CertValid
			}
			c.log.Info("certificate obtained", "host", h, "renewal", renewal)
		case "cert_failed":
			msg := "unknown error"
			if err, ok := data["error"].(error); ok {
				msg = err.Error()
			}
			st.status, st.lastErr = berth.CertError, clip512(msg)
			c.log.Warn("certificate not obtained; retrying later", "host", h, "renewal", renewal, "err", msg)
		}
	case "cached_managed_cert":
		sans, _ := data["sans"].([]string)
		c.mu.Lock()
		defer c.mu.Unlock()
		changed := false
		for _, h := range sans {
			st := c.hosts[h]
			if st == nil || !c.acmeServes(h, st) {
				// Obtained just as the host stopped being managed.
				c.cache.RemoveManaged([]certmagic.SubjectIssuer{{Subject: h}})
				continue
			}
			changed = changed || !st.cached
			st.cached, st.status, st.updated = true, berth.CertValid, now
		}
		if changed {
			c.publishLocked()
		}
	}
	return nil
}

// status reports the certificate state of the routed hosts of t.
func (c *certs) status(t *table) []berth.Certificate {
	var hosts []string
	for _, e := range t.apps {
		hosts = append(hosts, e.spec.Hosts...)
	}
	sort.Strings(hosts)
	hosts = slices.Compact(hosts)
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]berth.Certificate, 0, len(hosts))
	for _, h := range hosts {
		out = append(out, c.statusLocked(h, now))
	}
	return out
}

func (c *certs) statusLocked(h string, now time.Time) berth.Certificate {
	st := c.hosts[h]
	if !c.on || st == nil {
		return berth.Certificate{Host: h, Status: berth.CertNone, LastError: "HTTPS is off on the proxy", UpdatedAt: now}
	}
	if cc := c.custom[h]; cc != nil {
		out := describe(h, cc.cert.Leaf, "custom")
		out.UpdatedAt = cc.updated
		if now.After(cc.cert.Leaf.NotAfter) {
			out.Status = berth.CertError
			out.LastError = "the uploaded certificate expired on " + cc.cert.Leaf.NotAfter.UTC().Format(time.RFC3339)
		}
		return out
	}
	if st.reason != "" {
		return berth.Certificate{Host: h, Status: berth.CertNone, LastError: st.reason, UpdatedAt: st.updated}
	}
	if leaf := c.acmeLeafLocked(h, now); leaf != nil {
		out := describe(h, leaf, "acme")
		out.LastError, out.UpdatedAt = st.lastErr, st.updated // a failed renewal
		return out
	}
	return berth.Certificate{Host: h, Status: st.status, Source: "acme", LastError: st.lastErr, UpdatedAt: st.updated}
}

// acmeLeafLocked returns the unexpired ACME certificate of h that lasts
// longest, or nil.
func (c *certs) acmeLeafLocked(h string, now time.Time) *x509.Certificate {
	if c.cache == nil {
		return nil
	}
	var best *x509.Certificate
	for _, crt := range c.cache.AllMatchingCertificates(h) {
		if l := crt.Leaf; l != nil && now.Before(l.NotAfter) && (best == nil || l.NotAfter.After(best.NotAfter)) {
			best = l
		}
	}
	return best
}

// describe reports a served certificate.
func describe(h string, leaf *x509.Certificate, source string) berth.Certificate {
	na := leaf.NotAfter.UTC()
	issuer := leaf.Issuer.CommonName
	if issuer == "" && len(leaf.Issuer.Organization) > 0 {
		issuer = leaf.Issuer.Organization[0]
	}
	return berth.Certificate{Host: h, Status: berth.CertValid, Source: source, Issuer: issuer, NotAfter: &na}
}

// acmeIneligible returns why ACME cannot issue a certificate for host, or
// "" when it can.
func acmeIneligible(host string) string {
	switch {
	case strings.HasPrefix(host, "*."):
		return "wildcard hosts need a DNS-01 challenge, which the proxy does not do; upload a certificate"
	case net.ParseIP(host) != nil:
		return "an IP address gets no ACME certificate; upload a certificate"
	case host == "localhost" || strings.HasSuffix(host, ".localhost"):
		return "a localhost name cannot be validated by an ACME CA; upload a certificate"
	}
	for _, suffix := range []string{".local", ".test", ".internal", ".home.arpa", ".invalid", ".example"} {
		if strings.HasSuffix(host, suffix) {
			return "a " + suffix + " name is not public and cannot be validated by an ACME CA; upload a certificate"
		}
	}
	return ""
}

// clip512 shortens an error message kept for the status report.
func clip512(s string) string {
	if len(s) > 512 {
		return s[:509] + "..."
	}
	return s
}

// Certificates reports the TLS state of every routed host, sorted by host.
// A host whose certificate is served is valid even while its renewal
// fails; LastError then says why.
func (p *Proxy) Certificates(ctx context.Context) ([]berth.Certificate, error) {
	return p.certs.status(p.table.Load()), nil
}

// SetCertificate installs an uploaded certificate (PEM chain and PEM key)
// for host, in place of any ACME one; empty PEMs remove it, and ACME takes
// the host back. The certificate must match the key, cover the host and
// be valid now. Errors never quote the key.
func (p *Proxy) SetCertificate(ctx context.Context, host string, certPEM, keyPEM []byte) error {
	const op = "set certificate"
	if err := berth.ValidHost(host); err != nil {
		return berth.E(op, berth.Invalid, "%s", err.Error())
	}
	if len(certPEM) == 0 && len(keyPEM) == 0 {
		return p.certs.removeCustom(host)
	}
	crt, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return berth.E(op, berth.Invalid, "%s", keyPairProblem(err))
	}
	leaf := crt.Leaf
	if strings.HasPrefix(host, "*.") {
		if !slices.ContainsFunc(leaf.DNSNames, func(n string) bool { return strings.EqualFold(n, host) }) {
			return berth.E(op, berth.Invalid, "the certificate does not name %s", host)
		}
	} else if leaf.VerifyHostname(host) != nil {
		return berth.E(op, berth.Invalid, "the certificate does not cover %s", host)
	}
	now := time.Now()
	if now.After(leaf.NotAfter) {
		return berth.E(op, berth.Invalid, "the certificate expired on %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		return berth.E(op, berth.Invalid, "the certificate is not valid before %s", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	data := make([]byte, 0, len(keyPEM)+len(certPEM)+1)
	data = append(append(append(data, keyPEM...), '\n'), certPEM...)
	if err := writeSecret(filepath.Join(p.certs.stateDir, customDir), customFile(host), data); err != nil {
		return err
	}
	p.certs.setCustom(host, &customCert{cert: &crt, updated: now})
	p.log.Info("certificate uploaded", "host", host, "issuer", describe(host, leaf, "").Issuer, "not_after", leaf.NotAfter)
	return nil
}

// keyPairProblem says what is wrong with a certificate and key pair,
// without quoting either.
func keyPairProblem(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "does not match"):
		return "the private key does not match the certificate"
	case strings.Contains(msg, "certificate input"):
		return "cert_pem holds no PEM certificate"
	case strings.Contains(msg, "key input") || strings.Contains(msg, "for the private key"):
		return "key_pem holds no PEM private key"
	case strings.Contains(msg, "private key"):
		return "the private key cannot be parsed"
	}
	return "the certificate cannot be parsed"
}

// setCustom installs an uploaded certificate, stopping ACME for its host.
func (c *certs) setCustom(host string, cc *customCert) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.custom[host] = cc
	if st := c.hosts[host]; st != nil {
		c.unmanageLocked(host, st)
	}
	c.publishLocked()
}

// removeCustom removes the uploaded certificate of host, if any, and
// hands the host back to ACME.
func (c *certs) removeCustom(host string) error {
	err := os.Remove(filepath.Join(c.stateDir, customDir, customFile(host)))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove certificate: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.custom[host] == nil {
		return nil
	}
	delete(c.custom, host)
	if st := c.hosts[host]; st != nil && c.acmeServes(host, st) {
		c.manageLocked(host, st)
	}
	c.publishLocked()
	c.log.Info("uploaded certificate removed", "host", host)
	return nil
}

// customFile is the file name of host's uploaded certificate: a wildcard's
// "*" becomes "_", which no host name holds.
func customFile(host string) string {
	return strings.Replace(host, "*", "_", 1) + ".pem"
}

// loadCustom loads the uploaded certificates. A file that does not load
// is logged and skipped.
func (c *certs) loadCustom() error {
	dir := filepath.Join(c.stateDir, customDir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read uploaded certificates: %w", err)
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".pem")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		host := strings.Replace(name, "_", "*", 1)
		if berth.ValidHost(host) != nil {
			c.log.Warn("uploaded certificate skipped: bad file name", "file", e.Name())
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read uploaded certificate: %w", err)
		}
		crt, err := tls.X509KeyPair(data, data)
		if err != nil {
			c.log.Warn("uploaded certificate skipped", "host", host, "problem", keyPairProblem(err))
			continue
		}
		updated := time.Now()
		if fi, err := e.Info(); err == nil {
			updated = fi.ModTime()
		}
		c.custom[host] = &customCert{cert: &crt, updated: updated}
	}
	return nil
}

// writeSecret writes data to dir/name atomically with mode 0600, in a
// directory of mode 0700.
func writeSecret(dir, name string, data []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save certificate: %w", err)
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("save certificate: %w", err)
	}
	tmp := f.Name()
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("save certificate: %w", err)
	}
	return nil
}
