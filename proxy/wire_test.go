package proxy_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestBodies sends request bodies to a target and response bodies back,
// small and larger than what the fast path holds in memory, of known and
// unknown length: each arrives whole.
func TestBodies(t *testing.T) { eachFront(t, testBodies) }

func testBodies(t *testing.T, front frontFunc) {
	p := newProxy(t, "")
	addr := serveBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			sum := sha256.New()
			n, err := io.Copy(sum, r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			fmt.Fprintf(w, "%d %x", n, sum.Sum(nil))
			return
		}
		var size int
		fmt.Sscan(r.URL.Query().Get("size"), &size)
		body := pattern(size)
		if r.URL.Query().Get("chunked") == "" {
			w.Header().Set("Content-Length", fmt.Sprint(size))
		}
		for len(body) > 0 { // several writes, so that a chunked answer has several chunks
			n := min(len(body), 100<<10)
			w.Write(body[:n])
			body = body[n:]
		}
	}))
	setRoute(t, p, "app", []string{"app.example.com"}, addr)
	srv := front(t, p)

	for _, size := range []int{0, 1 << 10, 64 << 10, 64<<10 + 1, 3 << 20} {
		for _, chunked := range []bool{false, true} {
			t.Run(fmt.Sprintf("upload %d chunked=%v", size, chunked), func(t *testing.T) {
				var body io.Reader = bytes.NewReader(pattern(size))
				if chunked {
					body = io.MultiReader(body) // no length: sent chunked
				}
				req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", body)
				req.Host = "app.example.com"
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				sum := sha256.Sum256(pattern(size))
				if want := fmt.Sprintf("%d %s", size, hex.EncodeToString(sum[:])); resp.StatusCode != 200 || string(got) != want {
					t.Fatalf("target saw %d %q, want %q", resp.StatusCode, got, want)
				}
			})
			t.Run(fmt.Sprintf("download %d chunked=%v", size, chunked), func(t *testing.T) {
				url := fmt.Sprintf("%s/?size=%d", srv.URL, size)
				if chunked {
					url += "&chunked=1"
				}
				code, got := get(t, srv.Client(), url, "app.example.com")
				if code != 200 || got != string(pattern(size)) {
					t.Fatalf("status %d, %d bytes; want 200 and the %d bytes sent", code, len(got), size)
				}
			})
		}
	}
}

// pattern returns n bytes that differ along their length.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%23 + i/1024%3)
	}
	return b
}

// TestHopByHopResponse passes a target's headers to the client but for
// the hop-by-hop ones.
func TestHopByHopResponse(t *testing.T) { eachFront(t, testHopByHopResponse) }

func testHopByHopResponse(t *testing.T, front frontFunc) {
	p := newProxy(t, "")
	addr := serveBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Connection", "X-Hop")
		h.Set("X-Hop", "1")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Authenticate", "Basic")
		h.Set("X-Kept", "yes")
		h.Add("Set-Cookie", "a=1; Path=/")
		h.Add("Set-Cookie", "a=2; Path=/sub")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "made")
	}))
	setRoute(t, p, "app", []string{"app.example.com"}, addr)
	srv := front(t, p)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
	req.Host = "app.example.com"
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || string(body) != "made" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	for _, k := range []string{"X-Hop", "Keep-Alive", "Proxy-Authenticate"} {
		if v := resp.Header.Get(k); v != "" {
			t.Errorf("hop-by-hop header %s: %q reached the client", k, v)
		}
	}
	if resp.Header.Get("X-Kept") != "yes" || len(resp.Header.Values("Set-Cookie")) != 2 {
		t.Errorf("headers lost: %v", resp.Header)
	}
	if resp.Close {
		t.Error("the target's connection header closed the client's connection")
	}
}

// TestHeaderLimits forwards a request with 16 KiB of headers and refuses
// one with 2 MiB: with 431, or by closing the connection when the client
// is still sending (the fast path's limit, 32 KiB, is far below).
func TestHeaderLimits(t *testing.T) { eachFront(t, testHeaderLimits) }

func testHeaderLimits(t *testing.T, front frontFunc) {
	p := newProxy(t, "")
	var hits atomic.Int64
	addr := serveBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, len(r.Header.Get("X-Big")))
	}))
	setRoute(t, p, "app", []string{"app.example.com"}, addr)
	srv := front(t, p)
	send := func(size int) (int, string, error) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
		req.Host = "app.example.com"
		req.Header.Set("X-Big", strings.Repeat("b", size))
		resp, err := srv.Client().Do(req)
		if err != nil {
			return 0, "", err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(body), nil
	}
	if code, body, err := send(16 << 10); err != nil || code != 200 || body != fmt.Sprint(16<<10) {
		t.Fatalf("16 KiB of headers: %d %q %v", code, clip(body), err)
	}
	code, body, err := send(2 << 20)
	if err == nil && code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("2 MiB of headers: %d %q, want 431 or the connection closed", code, clip(body))
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("the target got %d requests, want 1", n)
	}
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// TestTargetClosesIdleConnections sends requests, POSTs included, to a
// target that closes connections idle for 100 ms, after letting the
// proxy's connections to it sit idle longer: none fails, although a POST
// is never sent twice.
func TestTargetClosesIdleConnections(t *testing.T) { eachFront(t, testTargetClosesIdle) }

func testTargetClosesIdle(t *testing.T, front frontFunc) {
	p := newProxy(t, "")
	var posts atomic.Int64
	ts := newIdleClosing(t, 100*time.Millisecond, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posts.Add(1)
		}
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, r.Method)
	}))
	setRoute(t, p, "app", []string{"app.example.com"}, ts)
	srv := front(t, p)
	send := func(method string, size int) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+"/", bytes.NewReader(pattern(size)))
		req.Host = "app.example.com"
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != method {
			t.Fatalf("%s of %d bytes: %d %q", method, size, resp.StatusCode, clip(string(body)))
		}
	}
	for i, method := range []string{http.MethodPost, http.MethodPost, http.MethodGet, http.MethodPost, http.MethodPost} {
		if i > 0 {
			time.Sleep(1500 * time.Millisecond) // past the target's idle timeout, and the proxy's check
		}
		size := 1
		if i == 4 {
			size = 1 << 20 // a streamed body
		}
		send(method, size)
	}
	if n := posts.Load(); n != 4 {
		t.Fatalf("the target got %d POSTs, want 4", n)
	}
}

// newIdleClosing serves h as a target that closes connections idle for
// idle, and returns its address.
func newIdleClosing(t *testing.T, idle time.Duration, h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, IdleTimeout: idle}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// TestRequestForms routes a request in absolute form by the host of its
// URL, and answers an HTTP/1.0 client.
func TestRequestForms(t *testing.T) { eachFront(t, testRequestForms) }

func testRequestForms(t *testing.T, front frontFunc) {
	p := newProxy(t, "")
	a := serveBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "A %s %s %s", r.Host, r.RequestURI, r.Proto)
	}))
	setRoute(t, p, "a", []string{"a.example.com"}, a)
	setRoute(t, p, "b", []string{"b.example.com"}, newBackend(t, "B").addr)
	srv := front(t, p)
	tests := []struct {
		name, request, want string
		closed              bool
	}{
		{"absolute form", "GET http://a.example.com/x?y=1 HTTP/1.1\r\nHost: b.example.com\r\n\r\n", "A a.example.com /x?y=1 HTTP/1.1", false},
		{"HTTP/1.0", "GET /ten HTTP/1.0\r\nHost: a.example.com\r\n\r\n", "A a.example.com /ten HTTP/1.1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(conn, tt.request)
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(body) != tt.want {
				t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, tt.want)
			}
			if tt.closed {
				if _, err := br.ReadByte(); err != io.EOF {
					t.Fatalf("after an HTTP/1.0 answer: %v, want the connection closed", err)
				}
			}
		})
	}
}

// TestInterimAndTrailers forwards answers that come with interim (1xx)
// answers or trailers, in turn on kept-alive connections: each request
// gets its own answer.
func TestInterimAndTrailers(t *testing.T) { eachFront(t, testInterimAndTrailers) }

func testInterimAndTrailers(t *testing.T, front frontFunc) {
	p := newProxy(t, "")
	addr := serveBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/early":
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			io.WriteString(w, "early")
		case "/trailer":
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "trail")
			w.(http.Flusher).Flush() // chunked
			io.WriteString(w, "er")
			w.Header().Set("X-Sum", "7")
		}
	}))
	setRoute(t, p, "app", []string{"app.example.com"}, addr)
	srv := front(t, p)
	for i := range 6 {
		path := []string{"/early", "/trailer"}[i%2]
		code, body := get(t, srv.Client(), srv.URL+path, "app.example.com")
		if code != 200 || body != strings.Trim(path, "/") {
			t.Fatalf("request %d (%s): %d %q", i, path, code, body)
		}
	}
}

// TestUnreadBody answers requests whose body is not forwarded (no app,
// no target) and then serves the next request of the client as it
// should, the rest of the body not taken for it.
func TestUnreadBody(t *testing.T) { eachFront(t, testUnreadBody) }

func testUnreadBody(t *testing.T, front frontFunc) {
	p := newProxy(t, "")
	setRoute(t, p, "app", []string{"app.example.com"}, newBackend(t, "app").addr)
	setRoute(t, p, "dead", []string{"dead.example.com"}, deadAddr(t))
	srv := front(t, p)
	for _, tt := range []struct {
		host string
		code int
	}{{"nobody.example.com", 404}, {"dead.example.com", 502}} {
		for _, size := range []int{100, 1 << 20} {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", bytes.NewReader(pattern(size)))
			req.Host = tt.host
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatalf("%s with %d bytes: %v", tt.host, size, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.code {
				t.Fatalf("%s with %d bytes: %d, want %d", tt.host, size, resp.StatusCode, tt.code)
			}
			if code, body := get(t, srv.Client(), srv.URL+"/", "app.example.com"); code != 200 || body != "app" {
				t.Fatalf("after %s with %d bytes: %d %q", tt.host, size, code, body)
			}
		}
	}
}
