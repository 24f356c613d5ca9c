package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http/httputil"
	"os"
	"time"

	"github.com/valyala/fasthttp"
)

// Limits and timeouts of the fast path's connections to the targets.
const (
	dialTimeout = 5 * time.Second
	// responseTimeout bounds the wait for the first byte of a response, as
	// net/http's ResponseHeaderTimeout does; a response once started (a
	// stream) is not bounded.
	responseTimeout = 60 * time.Second
	// rearmBefore is how close to its end the response deadline must be
	// to be set again: setting a deadline costs a timer update, so a
	// connection keeps one for rearmBefore's span of requests.
	rearmBefore = 50 * time.Second
	// staleAfter is how long a connection may sit idle before it is
	// checked for a close by the target before it is used again.
	staleAfter = time.Second
	// maxConnsPerTarget bounds the connections to one target; past it a
	// request waits up to connWait for one to be free, then fails (502).
	maxConnsPerTarget = 1024
	connWait          = 10 * time.Second
	idleConnTimeout   = 90 * time.Second
	// maxHeaderBytes bounds the header of a request and of a response on
	// the fast path (nginx's default is 32 KiB over four buffers).
	maxHeaderBytes = 32 << 10
	// bufferedBody is the largest body the fast path holds in memory; a
	// larger one, or one of unknown length, is streamed through.
	bufferedBody = 64 << 10
)

// newHostClient returns the fast path's client of one target: fasthttp's
// HostClient keeps a LIFO pool of keep-alive connections (the warm ones
// serve, the rest time out), dials and retries; transport writes each
// request and reads its response.
func newHostClient(addr string) *fasthttp.HostClient {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	return &fasthttp.HostClient{
		Addr: addr,
		Dial: func(addr string) (net.Conn, error) {
			c, err := d.Dial("tcp", addr)
			if err != nil {
				return nil, err
			}
			return &upstreamConn{Conn: c}, nil
		},
		Transport:                transport{},
		MaxConns:                 maxConnsPerTarget,
		MaxConnWaitTimeout:       connWait,
		MaxIdleConnDuration:      idleConnTimeout,
		ConnPoolStrategy:         fasthttp.LIFO,
		ReadBufferSize:           maxHeaderBytes,
		DisablePathNormalizing:   true,
		NoDefaultUserAgentHeader: true,
		RetryIfErr:               retryIf,
	}
}

// retryIf says whether a request that failed on a kept-alive connection
// is sent again on another one: always when the connection was found
// closed before the request was written (nothing was sent), else only a
// request net/http also replays (GET, HEAD, OPTIONS, TRACE or one with an
// idempotency key), and never after a timeout. fasthttp never retries a
// request with a streamed body (send does, when nothing was sent), nor
// one whose dial failed (failover does).
func retryIf(req *fasthttp.Request, attempts int, err error) (resetTimeout, retry bool) {
	if errors.Is(err, errStale) {
		return false, true
	}
	var ne net.Error
	if errors.Is(err, fasthttp.ErrTimeout) || (errors.As(err, &ne) && ne.Timeout()) {
		return false, false
	}
	h := &req.Header
	return false, h.IsGet() || h.IsHead() || h.IsOptions() || h.IsTrace() ||
		len(h.Peek("Idempotency-Key")) > 0 || len(h.Peek("X-Idempotency-Key")) > 0
}

// errStale is the error of a kept-alive connection found closed by its
// target before a request was written to it.
var errStale = errors.New("connection closed by the target while idle")

// transport sends a request on a connection of the HostClient and reads
// the response into resp, which is the client's response itself: its
// header, then its body, in memory when its length is known and at most
// bufferedBody, else as an upstreamBody streamed to the client as it
// arrives. Interim 1xx responses are skipped. Its return values are
// fasthttp's: retry says the failure may be retried on another
// connection, which retryIf decides.
type transport struct{}

func (transport) RoundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) (retry bool, err error) {
	cc, err := hc.AcquireConn(0, false)
	if err != nil {
		return false, err
	}
	conn := cc.Conn()
	uc, _ := conn.(*upstreamConn)
	if uc != nil {
		if err := uc.begin(); err != nil {
			hc.CloseConn(cc)
			return true, err
		}
	}
	bw := hc.AcquireWriter(conn)
	err = req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	hc.ReleaseWriter(bw)
	if err != nil {
		hc.CloseConn(cc)
		return true, err
	}
	if uc != nil {
		if err := uc.await(); err != nil {
			hc.CloseConn(cc)
			return true, err
		}
	}
	br := hc.AcquireReader(conn)
	release := func(reuse bool) {
		hc.ReleaseReader(br)
		if reuse {
			hc.ReleaseConn(cc)
		} else {
			hc.CloseConn(cc)
		}
	}
	code := 0
	for code < 200 {
		if err := resp.Header.Read(br); err != nil {
			release(false)
			return true, err
		}
		if code = resp.StatusCode(); code == fasthttp.StatusSwitchingProtocols {
			// Upgrades are handed over to net/http: this was not asked for.
			release(false)
			return false, errors.New("unexpected 101 Switching Protocols")
		}
	}
	reuse := !resp.ConnectionClose()
	if req.Header.IsHead() || code == fasthttp.StatusNoContent || code == fasthttp.StatusNotModified {
		release(reuse)
		return false, nil
	}
	n := resp.Header.ContentLength()
	if n >= 0 && n <= bufferedBody {
		err := resp.ReadBody(br, 0)
		release(reuse && err == nil)
		return err != nil, err
	}
	body := &upstreamBody{br: br, left: int64(n), reuse: reuse && n != -2}
	body.release = func(reuse bool) {
		hc.ReleaseReader(br)
		if reuse {
			hc.ReleaseConn(cc)
		} else {
			hc.CloseConn(cc)
		}
	}
	if n == -1 {
		body.chunks = httputil.NewChunkedReader(br)
	}
	resp.SetBodyStream(body, max(n, -1))
	return false, nil
}

// upstreamBody is a response body streamed from a target to the client.
// Once it has been passed on, the target's connection goes back to its
// pool (or is closed, when the body was not read to its end or the
// target said so) and done ends the request's in-flight count.
type upstreamBody struct {
	br      *bufio.Reader
	left    int64     // bytes to read for a body of known length; -1 chunked, -2 until the target closes
	chunks  io.Reader // the chunked body, decoded
	eof     bool      // read to its end
	reuse   bool      // the connection can serve another request once the body is read
	release func(reuse bool)
	done    func()
}

func (b *upstreamBody) Read(p []byte) (int, error) {
	switch {
	case b.eof:
		return 0, io.EOF
	case b.chunks != nil:
		n, err := b.chunks.Read(p)
		if err == io.EOF {
			if terr := skipTrailer(b.br); terr != nil {
				return n, terr
			}
			b.eof = true
		}
		return n, err
	case b.left >= 0:
		if b.left == 0 {
			b.eof = true
			return 0, io.EOF
		}
		if int64(len(p)) > b.left {
			p = p[:b.left]
		}
		n, err := b.br.Read(p)
		b.left -= int64(n)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return n, err
	default:
		n, err := b.br.Read(p)
		if err == io.EOF {
			b.eof = true
		}
		return n, err
	}
}

// CloseWithError is called by the server once the body was written, or
// failed to be (err).
func (b *upstreamBody) CloseWithError(err error) error {
	b.release(b.reuse && b.eof && err == nil)
	if b.done != nil {
		b.done()
	}
	return nil
}

// skipTrailer reads the trailer section that ends a chunked body.
func skipTrailer(br *bufio.Reader) error {
	for range 100 {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return nil
		}
	}
	return errors.New("chunked body: trailer too long")
}

// upstreamConn is a connection to a target. Before a request is written
// to it, begin checks that a connection idle for a while was not closed
// by the target (a target closing idle connections must not fail a
// request that was never sent, as net/http's transport ensures); await
// then bounds the wait for the response's first byte by responseTimeout.
// A connection is used by one request at a time.
type upstreamConn struct {
	net.Conn
	used     time.Time // when the last request was sent
	deadline time.Time // the read deadline set
	waiting  bool      // a response is awaited: the deadline holds
}

// begin is called before a request is written.
func (c *upstreamConn) begin() error {
	now := time.Now()
	if !c.used.IsZero() && now.Sub(c.used) > staleAfter && !alive(c.Conn) {
		return errStale
	}
	c.used = now
	return nil
}

// await is called once the request is written. Setting a deadline costs a
// timer update: one set for responseTimeout serves the requests of the
// next responseTimeout-rearmBefore.
func (c *upstreamConn) await() error {
	c.waiting = true
	if c.deadline.Sub(c.used) < rearmBefore {
		c.deadline = c.used.Add(responseTimeout)
		return c.Conn.SetReadDeadline(c.deadline)
	}
	return nil
}

// Read reads the response. Once its first byte is in, the deadline no
// longer holds: a read that meets it extends it and goes on.
func (c *upstreamConn) Read(b []byte) (int, error) {
	for {
		n, err := c.Conn.Read(b)
		if n > 0 {
			c.waiting = false
		}
		if n > 0 || c.waiting || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		c.deadline = time.Now().Add(responseTimeout)
		if err := c.Conn.SetReadDeadline(c.deadline); err != nil {
			return 0, err
		}
	}
}
