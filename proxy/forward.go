package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"time"
)

// ServeHTTP forwards r to a target of the app owning r's host: 404 when no
// app owns it, 502 when no target answers. The request counts as in flight
// to its target until its response is done: the body copied, a stream or
// an upgraded connection (WebSocket) closed. It is the handler of the
// HTTPS listener and of the plain-HTTP connections the fast path hands
// over (see plainServer).
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt := p.table.Load().lookup(hostOf(r.Host))
	if code, page := verdict(rt, r.Method == http.MethodConnect); code != 0 {
		writePage(w, code, page)
		return
	}
	rt.pick().forward(w, r)
}

// forward sends r to t. ReverseProxy strips hop-by-hop headers, handles
// protocol upgrades (WebSocket) and flushes text/event-stream and
// unknown-length responses as they arrive; it panics to abort a response
// cut short, hence the deferred count.
func (t *target) forward(w http.ResponseWriter, r *http.Request) {
	t.begin()
	defer t.end()
	t.rp.ServeHTTP(w, r)
}

// serveHTTP is the handler of the plain-HTTP listener when HTTPS is on: it
// answers ACME HTTP-01 challenges, redirects hosts that have a certificate
// to HTTPS, and forwards the rest.
func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, acmeChallengePath) {
		if p.certs.handleChallenge(w, r) {
			return
		}
	} else if host := hostOf(r.Host); p.certs.secure(host) {
		redirect(w, r, host, p.certs.httpsPort)
		return
	}
	p.ServeHTTP(w, r)
}

// acmeChallengePath is where ACME HTTP-01 challenges are answered.
const acmeChallengePath = "/.well-known/acme-challenge/"

// redirect answers 308 to the same URL on HTTPS.
func redirect(w http.ResponseWriter, r *http.Request, host, port string) {
	if port != "" && port != "443" {
		host = net.JoinHostPort(host, port)
	}
	u := "https://" + host + r.URL.RequestURI()
	w.Header().Set("Location", u)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusPermanentRedirect)
}

// hostOf returns the host of a Host header without port or trailing dot,
// lowercased; it allocates only when the header has upper-case letters.
func hostOf(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h[i:], ']') < 0 {
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	for i := 0; i < len(h); i++ {
		if c := h[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

// rewrite points the outbound request at t. The Host header is kept, and
// X-Forwarded-For/-Host/-Proto are set from this hop only: the proxy is the
// edge, so inbound X-Forwarded-* values are not trusted.
func (t *target) rewrite(pr *httputil.ProxyRequest) {
	pr.SetXForwarded()
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = t.addr
}

// RoundTrip sends req to t, and to the other targets of its route when
// t cannot be reached (see failover). Only a request without a body is
// retried: the transport closes the body of a request it could not send.
func (t *target) RoundTrip(req *http.Request) (*http.Response, error) {
	var resp *http.Response
	retriable := req.Body == nil || req.Body == http.NoBody
	goneAway := func() bool { return req.Context().Err() != nil }
	err := t.failover(retriable, goneAway, func(o *target) error {
		out := req
		if o != t {
			out = req.Clone(req.Context())
			out.URL.Host = o.addr
		}
		var err error
		resp, err = o.be.transport.RoundTrip(out)
		return err
	})
	return resp, err
}

// forwardError answers a request no target answered.
func (p *Proxy) forwardError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		p.log.Debug("client went away", "host", r.Host, "err", err)
	} else {
		p.log.Warn("forward", "host", r.Host, "method", r.Method, "err", err)
	}
	writePage(w, http.StatusBadGateway, badGatewayPage)
}

// newTransport returns the transport of one backend: keep-alive HTTP/1.1,
// no proxy from the environment, and responses passed through unchanged
// (no transparent decompression).
func newTransport() *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext:           d.DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		TLSNextProto:          map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
}

// bufSize is the size of the reverse proxies' copy buffers.
const bufSize = 32 << 10

// bufferPool recycles the copy buffers of the reverse proxies. It pools
// array pointers, which fit an interface without allocating.
type bufferPool struct{ pool sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.pool.Get().(*[bufSize]byte); ok {
		return v[:]
	}
	return new([bufSize]byte)[:]
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) >= bufSize {
		b.pool.Put((*[bufSize]byte)(buf[:bufSize]))
	}
}

// writePage answers with one of the proxy's own small HTML pages.
func writePage(w http.ResponseWriter, code int, page []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(page)
}

// The proxy's pages. They echo nothing from the request.
var (
	notFoundPage   = page("404 Not Found", "No app is served at this address.", "Check the address, or add this domain to an app.")
	badGatewayPage = page("502 Bad Gateway", "The app is not answering.", "It may be starting or restarting. Try again in a moment.")
	notAllowedPage = page("405 Method Not Allowed", "This method is not supported here.", "")
)

func page(title, headline, detail string) []byte {
	return []byte(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>` + title + `</title>
<style>body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;background:#f6f7f9;color:#1f2328}
main{max-width:32rem;padding:2rem;text-align:center}h1{font-size:1.1rem;font-weight:600;color:#59636e;margin:0 0 .5rem}p{margin:.25rem 0}.d{color:#59636e}small{display:block;margin-top:2rem;color:#8c959f}</style>
</head><body><main><h1>` + title + `</h1><p>` + headline + `</p><p class="d">` + detail + `</p><small>berth</small></main></body></html>
`)
}
