package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// plainServer serves the plain-HTTP listener.
//
// The proxy runs two HTTP servers, and this is why. Plain HTTP/1.1 is
// served by fasthttp, whose server and client reuse their buffers, keep
// no goroutine per backend connection and allocate next to nothing per
// request: on this kind of machine net/http's httputil.ReverseProxy
// forwards at 0.4-0.5x the throughput of nginx, fasthttp at about nginx's
// (see DESIGN.md). fasthttp has no HTTP/2, which browsers expect over
// TLS, and no protocol upgrades, so the HTTPS listener is a net/http
// server, and the plain-HTTP requests fasthttp does not forward itself,
// upgrades (WebSocket) and ACME HTTP-01 challenges, are handed over,
// connection and all, to a second net/http server running the HTTPS
// side's handler. Both servers forward with the logic of route.go (the
// one table, round robin, in-flight counts, failover) and differ only in
// how they move bytes.
type plainServer struct {
	p    *Proxy
	ln   net.Listener
	fast *fasthttp.Server
	slow *http.Server // serves the connections handed over
	hand *handoff

	mu    sync.Mutex
	conns map[net.Conn]struct{} // open on fast, closed when a shutdown runs out of time
}

// Limits of the fast path's server; maxHeaderBytes and bufferedBody are
// in upstream.go.
const (
	readHeaderTimeout = 30 * time.Second
	idleTimeout       = 2 * time.Minute
)

// newPlainServer returns the server of the plain-HTTP listener ln; slow
// is the handler of the connections it hands over.
func (p *Proxy) newPlainServer(ln net.Listener, slow http.Handler, errLog *log.Logger) *plainServer {
	s := &plainServer{p: p, ln: ln, hand: newHandoff(ln.Addr()), conns: make(map[net.Conn]struct{})}
	s.fast = &fasthttp.Server{
		Handler: s.serve,
		// A request's header must arrive within ReadTimeout; a body
		// larger than bufferedBody is streamed to the target, and its
		// reading is not bounded (as with net/http).
		ReadTimeout:                  readHeaderTimeout,
		IdleTimeout:                  idleTimeout,
		ReadBufferSize:               maxHeaderBytes,
		MaxRequestBodySize:           bufferedBody,
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		CloseOnShutdown:              true,
		ConnState:                    s.track,
		Logger:                       errLog,
	}
	s.slow = &http.Server{
		Handler:           slow,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          errLog,
	}
	return s
}

// serveFast serves the listener until shutdown.
func (s *plainServer) serveFast() error {
	err := s.fast.Serve(s.ln)
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// serveSlow serves the connections handed over until shutdown.
func (s *plainServer) serveSlow() error { return s.slow.Serve(s.hand) }

// shutdown stops both servers: no new connection or request is taken,
// in-flight requests finish until ctx ends, then every connection is
// closed.
func (s *plainServer) shutdown(ctx context.Context) error {
	err := s.fast.ShutdownWithContext(ctx)
	// ShutdownWithContext closes the listener only once Serve took it.
	s.ln.Close()
	if serr := s.slow.Shutdown(ctx); err == nil {
		err = serr
	}
	if err != nil {
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.slow.Close()
	}
	return err
}

// track follows the fast server's connections.
func (s *plainServer) track(c net.Conn, st fasthttp.ConnState) {
	switch st {
	case fasthttp.StateNew:
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
	case fasthttp.StateClosed, fasthttp.StateHijacked:
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}
}

// serve is the fast path's handler, the plain-HTTP twin of ServeHTTP and
// serveHTTP: with HTTPS on, it hands ACME HTTP-01 challenges over and
// redirects hosts that have a certificate; it answers 404, 405 and 502
// itself, hands upgrades over, and forwards the rest.
func (s *plainServer) serve(ctx *fasthttp.RequestCtx) {
	p := s.p
	h := &ctx.Request.Header
	if uri := h.RequestURI(); len(uri) > 0 && uri[0] != '/' && uri[0] != '*' && !h.IsConnect() {
		// The absolute form: its host is the request's (RFC 9112 §3.2.2).
		u := ctx.Request.URI()
		u.SetScheme("http")
		h.SetHostBytes(u.Host())
	}
	if ctx.Request.IsBodyStream() && !holdBody(ctx) {
		return
	}
	var buf [256]byte
	host := hostKey(h.Host(), buf[:0])
	if p.certs.on {
		if bytes.HasPrefix(ctx.Path(), acmeChallengePrefix) {
			s.handOff(ctx)
			return
		}
		if p.certs.secureBytes(host) {
			redirectFast(ctx, host, p.certs.httpsPort)
			closeUnread(ctx)
			return
		}
	}
	rt := p.table.Load().lookupBytes(host)
	if code, page := verdict(rt, h.IsConnect()); code != 0 {
		writePageFast(ctx, code, page)
		closeUnread(ctx)
		return
	}
	if h.ConnectionUpgrade() {
		s.handOff(ctx)
		return
	}
	rt.pick().forwardFast(ctx, p.log)
}

var acmeChallengePrefix = []byte(acmeChallengePath)

// forwardFast sends the request of ctx to t, or to another target of its
// route when t cannot be reached: any request can be, as nothing of it
// was sent, its body being in memory or not read yet. The response is
// read into the client's (see transport); a body of unknown length or
// larger than bufferedBody is streamed to the client as it arrives
// (server-sent events included), and the request counts as in flight
// until it is passed on.
func (t *target) forwardFast(ctx *fasthttp.RequestCtx, log *slog.Logger) {
	t.begin()
	req, resp := &ctx.Request, &ctx.Response
	streamed := req.IsBodyStream()
	http10 := outbound(ctx)
	err := t.failover(true, nil, func(o *target) error { return o.send(req, resp) })
	if http10 {
		req.Header.SetProtocol("HTTP/1.0")
	}
	if err != nil {
		t.end()
		log.Warn("forward", "host", string(req.Header.Host()), "method", string(req.Header.Method()), "err", err)
		resp.Reset()
		writePageFast(ctx, http.StatusBadGateway, badGatewayPage)
		if streamed {
			linger(ctx) // the body may have been read in part
		}
		return
	}
	inbound(&resp.Header)
	if body, ok := resp.BodyStream().(*upstreamBody); ok {
		body.done = t.end
		// An event stream opens at once, before its first event.
		resp.ImmediateHeaderFlush = bytes.HasPrefix(resp.Header.ContentType(), []byte("text/event-stream"))
		return
	}
	t.end()
}

// send sends req to t on the fast path. fasthttp sends a request again
// on another connection when the first was found closed before anything
// was written, but for a streamed body: send does it then.
func (t *target) send(req *fasthttp.Request, resp *fasthttp.Response) error {
	var err error
	for range 4 {
		if err = t.be.client.Do(req, resp); !errors.Is(err, errStale) {
			break
		}
	}
	return err
}

// closeUnread closes the connection of a request answered without its
// streamed body read, since the rest of the body cannot be told from the
// next request. As net/http does, it lingers: once the answer is sent,
// it closes its side, then reads what the client still sends for a
// while, so that the client reads the answer before a reset would
// discard it.
func closeUnread(ctx *fasthttp.RequestCtx) {
	if ctx.Request.IsBodyStream() {
		linger(ctx)
	}
}

// linger closes the connection of ctx once its answer is sent, as
// closeUnread says.
func linger(ctx *fasthttp.RequestCtx) {
	ctx.Hijack(func(c net.Conn) {
		raw := c
		if u, ok := c.(interface{ UnsafeConn() net.Conn }); ok {
			raw = u.UnsafeConn()
		}
		if cw, ok := raw.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		raw.SetReadDeadline(time.Now().Add(lingerTime))
		io.Copy(io.Discard, io.LimitReader(c, lingerBytes))
	})
}

// How long, and for how many bytes, closeUnread reads what a client still
// sends.
const (
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 4 << 20
)

// holdBody reads a request body of known length up to bufferedBody into
// memory, so that the request can be sent again (to another target when
// its target cannot be reached, or on another connection when the one it
// was sent on was found closed); a larger one, or one of unknown length,
// stays a stream, read as it is forwarded, without the header's read
// deadline. A body cut short is answered 400; holdBody then reports
// false.
func holdBody(ctx *fasthttp.RequestCtx) bool {
	req := &ctx.Request
	n := req.Header.ContentLength()
	if n < 0 || n > bufferedBody {
		ctx.Conn().SetReadDeadline(time.Time{})
		return true
	}
	buf := bodyBufs.Get().(*[]byte)
	defer bodyBufs.Put(buf)
	b := slices.Grow((*buf)[:0], n)[:n]
	*buf = b
	if _, err := io.ReadFull(req.BodyStream(), b); err != nil {
		ctx.Error("request body cut short", http.StatusBadRequest)
		ctx.SetConnectionClose()
		return false
	}
	req.SetBody(b)
	return true
}

// bodyBufs recycles holdBody's buffers.
var bodyBufs = sync.Pool{New: func() any { return new([]byte) }}

// outbound turns the request of ctx into the one sent to the target, as
// the net/http path's ReverseProxy does: the Host header kept, the
// hop-by-hop headers removed, X-Forwarded-For/-Host/-Proto set from this
// hop only (the proxy is the edge: inbound values are not trusted), and
// HTTP/1.1 whatever the client spoke. It reports whether the client spoke
// HTTP/1.0, which the server needs to know again once the response is in.
func outbound(ctx *fasthttp.RequestCtx) (http10 bool) {
	ctx.Request.UseHostHeader = true
	h := &ctx.Request.Header
	h.SetNoDefaultContentType(true)
	// The client's connection closes as it asked (the server took note);
	// the target's stays open.
	h.ResetConnectionClose()
	if raw := h.RawHeaders(); len(raw) == 0 || namesRewritten(raw) {
		trailers := bytes.Contains(h.Peek("Te"), []byte("trailers"))
		stripHop(h)
		if trailers {
			h.Set("Te", "trailers")
		}
		h.Del("Forwarded")
		h.Del("X-Forwarded-For")
		h.Del("X-Forwarded-Host")
		h.Del("X-Forwarded-Proto")
	}
	ip := ipBufs.Get().(*[64]byte)
	h.AddBytesV("X-Forwarded-For", clientIP(ctx, ip[:0]))
	ipBufs.Put(ip)
	h.AddBytesV("X-Forwarded-Host", h.Host())
	h.Add("X-Forwarded-Proto", "http")
	if !h.IsHTTP11() {
		h.SetProtocol("HTTP/1.1")
		return true
	}
	return false
}

// ipBufs recycles the buffers clientIP writes to.
var ipBufs = sync.Pool{New: func() any { return new([64]byte) }}

// namesRewritten reports whether a raw header block holds a header that
// outbound removes or replaces, so that most requests, which have none,
// skip the removals.
func namesRewritten(raw []byte) bool {
	for len(raw) > 0 {
		var line []byte
		line, raw, _ = bytes.Cut(raw, []byte{'\n'})
		if k, _, ok := bytes.Cut(line, []byte{':'}); ok && rewritten(bytes.TrimSpace(k)) {
			return true
		}
	}
	return false
}

// rewritten reports whether outbound removes or replaces the header k.
func rewritten(k []byte) bool {
	if len(k) < 2 {
		return false
	}
	switch k[0] | 0x20 {
	case 'c', 'k', 'p', 't', 'u':
		for _, h := range hopHeaders {
			if bytes.EqualFold(k, []byte(h)) {
				return true
			}
		}
	case 'f':
		return bytes.EqualFold(k, []byte("Forwarded"))
	case 'x':
		return len(k) > 12 && bytes.EqualFold(k[:12], []byte("X-Forwarded-"))
	}
	return false
}

// inbound cleans the header of the target's response, read into the
// client's: without its hop-by-hop headers and as HTTP/1.1.
func inbound(h *fasthttp.ResponseHeader) {
	h.SetNoDefaultContentType(true)
	// The target closing its connection says nothing of the client's.
	h.ResetConnectionClose()
	hop := false
	h.VisitAll(func(k, _ []byte) { hop = hop || rewritten(k) })
	if hop {
		stripHop(h)
	}
	if !h.IsHTTP11() {
		h.SetProtocol(http11)
	}
}

// hopHeaders are the hop-by-hop headers ReverseProxy removes; fasthttp
// itself handles Transfer-Encoding.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Upgrade"}

// header is what stripHop needs of a request or response header.
type header interface {
	Peek(key string) []byte
	Del(key string)
	DelBytes(key []byte)
}

// stripHop removes the hop-by-hop headers from h: those Connection names
// and hopHeaders.
func stripHop(h header) {
	if c := h.Peek("Connection"); len(c) > 0 {
		var buf [128]byte
		names := append(buf[:0], c...)
		for len(names) > 0 {
			var name []byte
			name, names, _ = bytes.Cut(names, []byte{','})
			if name = bytes.TrimSpace(name); len(name) > 0 {
				h.DelBytes(name)
			}
		}
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
}

// clientIP appends the address of the client of ctx to buf.
func clientIP(ctx *fasthttp.RequestCtx, buf []byte) []byte {
	if a, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap().AppendTo(buf)
	}
	return append(buf, ctx.RemoteIP().String()...)
}

// hostKey normalizes a Host header as hostOf does: without port or
// trailing dot, lowercased. It lowercases into buf, and only when it must.
func hostKey(h, buf []byte) []byte {
	if i := bytes.LastIndexByte(h, ':'); i >= 0 && bytes.IndexByte(h[i:], ']') < 0 {
		h = h[:i]
	}
	h = bytes.TrimSuffix(h, []byte{'.'})
	for i, c := range h {
		if c >= 'A' && c <= 'Z' {
			buf = append(buf[:0], h...)
			for j := i; j < len(buf); j++ {
				if c := buf[j]; c >= 'A' && c <= 'Z' {
					buf[j] = c + 'a' - 'A'
				}
			}
			return buf
		}
	}
	return h
}

// redirectFast answers 308 to the same URL on HTTPS.
func redirectFast(ctx *fasthttp.RequestCtx, host []byte, port string) {
	u := make([]byte, 0, 128)
	u = append(append(u, "https://"...), host...)
	if port != "" && port != "443" {
		u = append(append(u, ':'), port...)
	}
	uri := ctx.Request.Header.RequestURI()
	if uri[0] != '/' {
		uri = ctx.Request.URI().RequestURI()
	}
	u = append(u, uri...)
	ctx.Response.Header.SetBytesV("Location", u)
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetStatusCode(http.StatusPermanentRedirect)
}

// writePageFast answers with one of the proxy's own pages.
func writePageFast(ctx *fasthttp.RequestCtx, code int, page []byte) {
	h := &ctx.Response.Header
	h.SetContentType("text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	ctx.SetStatusCode(code)
	ctx.SetBody(page)
}

// handOff hands the connection of ctx over to the net/http server,
// starting with the request just read, which it serves as the HTTPS
// side's handler does.
func (s *plainServer) handOff(ctx *fasthttp.RequestCtx) {
	if ctx.Request.IsBodyStream() {
		ctx.Error("request body too large for this request", http.StatusRequestEntityTooLarge)
		closeUnread(ctx)
		return
	}
	ctx.Request.Header.SetNoDefaultContentType(true)
	head := ctx.Request.Header.Header()
	req := make([]byte, 0, len(head)+len(ctx.Request.Body()))
	req = append(append(req, head...), ctx.Request.Body()...)
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		hc := newHandedConn(c, req)
		if !s.hand.give(hc) {
			return
		}
		// fasthttp reuses what the connection reads through once this
		// returns.
		<-hc.done
	})
}

// handoff is the listener of the net/http server of the plain-HTTP
// listener: it accepts the connections the fast path hands over.
type handoff struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newHandoff(addr net.Addr) *handoff {
	return &handoff{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *handoff) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoff) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handoff) Addr() net.Addr { return l.addr }

// give hands c over; it reports false when the listener is closed.
func (l *handoff) give(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

// handedConn is a connection handed over: it reads the request the fast
// path read first, then what fasthttp had buffered, then the socket.
// fasthttp owns its buffer until done is closed, so Close waits for any
// read in progress, which closing the socket ends.
type handedConn struct {
	net.Conn          // fasthttp's hijacked connection
	raw      net.Conn // its socket
	head     []byte   // the request the fast path read, not read again yet

	mu     sync.Mutex // held by a read in progress
	closed bool
	once   sync.Once
	done   chan struct{}
}

func newHandedConn(c net.Conn, head []byte) *handedConn {
	raw := c
	if u, ok := c.(interface{ UnsafeConn() net.Conn }); ok {
		raw = u.UnsafeConn()
	}
	return &handedConn{Conn: c, raw: raw, head: head, done: make(chan struct{})}
}

func (c *handedConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	if len(c.head) > 0 {
		n := copy(b, c.head)
		c.head = c.head[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

func (c *handedConn) Close() error {
	err := net.ErrClosed
	c.once.Do(func() {
		err = c.raw.Close()
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		close(c.done)
	})
	return err
}

var http11 = []byte("HTTP/1.1")
