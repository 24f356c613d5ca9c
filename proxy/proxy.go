// Package proxy is berth's edge: the `berth proxy` process that routes
// requests by Host header to the live containers of each app.
//
// Plain HTTP is served by fasthttp; HTTPS (and HTTP/2), and the plain-HTTP
// requests fasthttp does not forward (upgrades, ACME challenges), by
// net/http. Both forward with one design (route.go); plainServer says why
// there are two servers.
//
// The routing table is an immutable snapshot swapped atomically on every
// change, so a change never drops or delays a request. Every accepted change
// is written to disk before it is acknowledged and the last valid table is
// restored at start, so the proxy keeps serving while the control plane is
// down. The proxy counts the requests in flight to each target, so that an
// old release is drained before it is stopped. With HTTPS on, it obtains
// and renews a certificate for every routed host through ACME (certmagic),
// serves uploaded certificates in their place, and redirects plain HTTP to
// HTTPS once a host has one. The control plane talks to the proxy through a
// small JSON admin API on a unix socket (see Client): set or remove an
// app's route, health-check new targets before they take traffic, drain
// old ones, and read or upload certificates.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthhq/berth"
)

// Config configures a proxy.
type Config struct {
	HTTPAddr    string // address of the public HTTP listener, such as ":80"
	HTTPSAddr   string // address of the public HTTPS listener, such as ":443"; empty turns TLS off
	AdminSocket string // path of the admin API's unix socket
	// StateDir holds routes.json (the persisted table), certs/ (ACME
	// accounts and certificates) and custom/ (uploaded certificates).
	StateDir string
	ACME     ACMEConfig   // how certificates are obtained when HTTPS is on
	Log      *slog.Logger // nil discards
}

// shutdownTimeout bounds how long in-flight requests may run on shutdown.
const shutdownTimeout = 10 * time.Second

// Proxy routes requests to the targets of the app owning their host.
type Proxy struct {
	log      *slog.Logger
	stateDir string
	table    atomic.Pointer[table]
	mu       sync.Mutex // serializes route changes and their persistence
	backends backends
	certs    *certs
	probes   *http.Client
	bufs     bufferPool
	admin    http.Handler
}

// New builds a proxy and restores its routing table and uploaded
// certificates from cfg.StateDir. A corrupt routes file is logged, kept
// aside as routes.json.bad and replaced by an empty table, so that a bad
// file never keeps the proxy from starting.
func New(cfg Config) (*Proxy, error) {
	if cfg.StateDir == "" {
		return nil, berth.E("new proxy", berth.Invalid, "state directory is required")
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	crts, err := newCerts(cfg, log)
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		log:      log,
		stateDir: cfg.StateDir,
		certs:    crts,
		probes:   newProbeClient(),
	}
	p.admin = p.newAdmin()
	t, err := p.loadState()
	if err != nil {
		return nil, err
	}
	p.table.Store(t)
	var hosts []string
	for _, e := range t.apps {
		p.backends.retarget(nil, e.spec.Targets)
		hosts = append(hosts, e.spec.Hosts...)
	}
	p.certs.follow(hosts, nil)
	log.Info("routes restored", "routes", len(t.apps))
	return p, nil
}

// Run runs a proxy until ctx ends: it restores the table, listens on
// cfg.HTTPAddr, on cfg.HTTPSAddr when set and on the unix socket
// cfg.AdminSocket, and shuts down gracefully when ctx is done.
func Run(ctx context.Context, cfg Config) error {
	p, err := New(cfg)
	if err != nil {
		return err
	}
	var ls Listeners
	closeAll := func() {
		for _, ln := range []net.Listener{ls.HTTP, ls.HTTPS} {
			if ln != nil {
				ln.Close()
			}
		}
	}
	if ls.HTTP, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	if cfg.HTTPSAddr != "" {
		if ls.HTTPS, err = net.Listen("tcp", cfg.HTTPSAddr); err != nil {
			closeAll()
			return fmt.Errorf("listen on %s: %w", cfg.HTTPSAddr, err)
		}
	}
	if ls.Admin, err = listenUnix(cfg.AdminSocket); err != nil {
		closeAll()
		return err
	}
	return p.Serve(ctx, ls)
}

// Listeners are the sockets a proxy serves on.
type Listeners struct {
	HTTP  net.Listener // public plain HTTP
	HTTPS net.Listener // public HTTPS: set exactly when Config.HTTPSAddr is
	Admin net.Listener // the admin API
}

// Serve serves traffic and the admin API on ls until ctx ends, then lets
// in-flight requests finish for a bounded time. With HTTPS on, it manages
// the certificates of the routed hosts while it runs. It closes the
// listeners. A proxy serves once.
func (p *Proxy) Serve(ctx context.Context, ls Listeners) error {
	closeAll := func() {
		for _, ln := range []net.Listener{ls.HTTP, ls.HTTPS, ls.Admin} {
			if ln != nil {
				ln.Close()
			}
		}
	}
	if ls.HTTP == nil || ls.Admin == nil || (ls.HTTPS != nil) != p.certs.on {
		closeAll()
		return berth.E("serve", berth.Invalid, "listeners: HTTP and admin are required, HTTPS exactly when HTTPS is configured")
	}
	errLog := slog.NewLogLogger(p.log.Handler(), slog.LevelDebug)
	// runner is one server: serve runs it until stop.
	type runner struct {
		serve func() error
		stop  func(context.Context) error
	}
	var runners []runner
	var public http.Handler = p
	if ls.HTTPS != nil {
		stop, err := p.certs.start(ctx, ls.HTTP.Addr(), ls.HTTPS.Addr())
		if err != nil {
			closeAll()
			return err
		}
		defer stop()
		public = http.HandlerFunc(p.serveHTTP)
		secure := &http.Server{
			Handler: p,
			TLSConfig: &tls.Config{
				GetCertificate: p.certs.getCertificate,
				NextProtos:     []string{"h2", "http/1.1", acmeTLSProto},
				MinVersion:     tls.VersionTLS12,
			},
			ReadHeaderTimeout: readHeaderTimeout,
			IdleTimeout:       idleTimeout,
			ErrorLog:          errLog,
		}
		runners = append(runners, runner{func() error { return secure.ServeTLS(ls.HTTPS, "", "") }, closing(secure)})
	}
	plain := p.newPlainServer(ls.HTTP, public, errLog)
	admin := &http.Server{
		Handler:           p.admin,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          errLog,
	}
	runners = append(runners,
		runner{plain.serveFast, plain.shutdown},
		runner{plain.serveSlow, nil}, // stopped by plain.shutdown
		runner{func() error { return admin.Serve(ls.Admin) }, closing(admin)},
	)

	errc := make(chan error, len(runners))
	var wg sync.WaitGroup
	for _, r := range runners {
		wg.Go(func() {
			if err := r.serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve: %w", err)
			}
		})
	}
	sweepCtx, stopSweep := context.WithCancel(ctx)
	wg.Go(func() { p.sweep(sweepCtx) })
	attrs := []any{"http", ls.HTTP.Addr().String(), "admin", ls.Admin.Addr().String()}
	if ls.HTTPS != nil {
		attrs = append(attrs, "https", ls.HTTPS.Addr().String())
	}
	p.log.Info("proxy listening", attrs...)

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	stopSweep()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	var sg sync.WaitGroup
	for _, r := range runners {
		if r.stop == nil {
			continue
		}
		sg.Go(func() {
			if serr := r.stop(sctx); serr != nil {
				p.log.Warn("shutdown cut short", "err", serr)
			}
		})
	}
	sg.Wait()
	wg.Wait()
	p.log.Info("proxy stopped")
	return err
}

// closing returns the graceful shutdown of srv, which closes it when ctx
// ends first.
func closing(srv *http.Server) func(context.Context) error {
	return func(ctx context.Context) error {
		err := srv.Shutdown(ctx)
		if err != nil {
			srv.Close()
		}
		return err
	}
}

// sweep periodically closes the idle connections to targets no route
// names any more, until ctx ends.
func (p *Proxy) sweep(ctx context.Context) {
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.backends.sweep()
		}
	}
}

// listenUnix listens on the unix socket at path, replacing a stale socket
// file, with mode 0660.
func listenUnix(path string) (net.Listener, error) {
	if path == "" {
		return nil, berth.E("listen", berth.Invalid, "admin socket path is required")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create admin socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, berth.E("listen", berth.Invalid, "admin socket %s exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale admin socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod admin socket: %w", err)
	}
	return ln, nil
}
