package proxy_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"

	"github.com/berthhq/berth/proxy"
)

// pebble is a real ACME server (Let's Encrypt's Pebble, as a library) on
// loopback. Its validation authority really validates: it resolves every
// name to 127.0.0.1 through a test DNS server and fetches HTTP-01 and
// TLS-ALPN-01 challenges from the ports of the proxy under test.
type pebble struct {
	dir       string         // the ACME directory URL
	caRoot    string         // a PEM file of the root of Pebble's own HTTPS listener
	roots     *x509.CertPool // the roots of the certificates Pebble issues
	finalized atomic.Int64   // orders finalized: certificates issued
}

// pebbleOptions configure startPebble.
type pebbleOptions struct {
	httpPort, tlsPort int           // where challenges are validated
	validity          time.Duration // of issued certificates; Pebble's 90 days when zero
	blocked           []string      // names Pebble refuses
}

func startPebble(t *testing.T, o pebbleOptions) *pebble {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")      // validate at once
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0") // no random bad nonces
	logger := log.New(io.Discard, "", 0)
	if testing.Verbose() && os.Getenv("PEBBLE_LOG") != "" {
		logger = log.New(os.Stderr, "pebble ", log.LstdFlags)
	}
	profile := ca.Profile{Description: "test", ValidityPeriod: uint64(o.validity / time.Second)}
	store := db.NewMemoryStore()
	for _, name := range o.blocked {
		if err := store.AddBlockedDomain(name); err != nil {
			t.Fatal(err)
		}
	}
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": profile})
	validator := va.New(logger, o.httpPort, o.tlsPort, false, startDNS(t), store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)

	pb := &pebble{roots: x509.NewCertPool()}
	pb.roots.AddCert(authority.GetRootCert(0).Cert)
	handler := front.Handler()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/finalize-order/") {
			pb.finalized.Add(1)
		}
		handler.ServeHTTP(w, r)
	}))
	srv.Config.ErrorLog = logger
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pb.dir = srv.URL + wfe.DirectoryPath
	pb.caRoot = filepath.Join(t.TempDir(), "pebble-listener.pem")
	rootPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(pb.caRoot, rootPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return pb
}

// startDNS serves DNS over TCP on loopback, answering every A query with
// 127.0.0.1 and nothing else, and returns its address.
func startDNS(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{Listener: ln, Net: "tcp", Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, qq := range q.Question {
			if qq.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET},
					A:   net.IPv4(127, 0, 0, 1),
				})
			}
		}
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return ln.Addr().String()
}

// edge is a proxy with HTTPS on, served on fixed loopback ports so that
// it can be restarted on the same ones.
type edge struct {
	p                   *proxy.Proxy
	client              *proxy.Client
	httpAddr, httpsAddr string
	stop                func()
}

// freeAddr returns a free loopback address.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// startEdge runs a proxy with cfg (StateDir and ACME set by the caller)
// on httpAddr and httpsAddr until the test ends or stop is called.
func startEdge(t *testing.T, cfg proxy.Config, httpAddr, httpsAddr string) *edge {
	t.Helper()
	cfg.HTTPSAddr = httpsAddr
	if testing.Verbose() && os.Getenv("PROXY_LOG") != "" {
		cfg.Log = slogToStderr()
	}
	p, err := proxy.New(cfg)
	if err != nil {
		t.Fatalf("new proxy: %v", err)
	}
	var ls proxy.Listeners
	// The ports were free a moment ago or held by the proxy that just
	// stopped; retry briefly.
	for i := 0; ; i++ {
		ls.HTTP, err = net.Listen("tcp", httpAddr)
		if err == nil {
			ls.HTTPS, err = net.Listen("tcp", httpsAddr)
			if err != nil {
				ls.HTTP.Close()
			}
		}
		if err == nil || i == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "bp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "admin.sock")
	if ls.Admin, err = net.Listen("unix", sock); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ls) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
	t.Cleanup(stop)
	return &edge{p: p, client: proxy.NewClient(sock), httpAddr: httpAddr, httpsAddr: httpsAddr, stop: stop}
}

// httpsClient returns a client that trusts roots and sends every request
// to addr, over HTTP/2 when h2 is set and HTTP/1.1 otherwise. It follows
// no redirect.
func httpsClient(roots *x509.CertPool, addr string, h2 bool) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		ForceAttemptHTTP2: h2,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// servedCert returns the leaf certificate the server at addr presents
// for host, without verifying it.
func servedCert(addr, host string) (*x509.Certificate, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{ServerName: host, InsecureSkipVerify: true})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	certs := conn.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, errors.New("no certificate")
	}
	return certs[0], nil
}

// waitFor polls cond every 50ms until it holds or d passed.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
