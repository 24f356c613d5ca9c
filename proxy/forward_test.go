package proxy_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthhq/berth"
)

func TestHostRouting(t *testing.T) { eachFront(t, testHostRouting) }

func testHostRouting(t *testing.T, front frontFunc) {
	p := newProxy(t, "")
	a, b, c := newBackend(t, "A"), newBackend(t, "B"), newBackend(t, "C")
	setRoute(t, p, "app-a", []string{"a.example.com", "www.a.example.com"}, a.addr)
	setRoute(t, p, "app-b", []string{"*.wild.example.com"}, b.addr)
	setRoute(t, p, "app-c", []string{"exact.wild.example.com"}, c.addr)
	srv := front(t, p)

	tests := []struct {
		host string
		code int
		body string
	}{
		{"a.example.com", 200, "A"},
		{"www.a.example.com", 200, "A"},
		{"A.Example.COM", 200, "A"},
		{"a.example.com:8080", 200, "A"},
		{"a.example.com.", 200, "A"},
		{"x.wild.example.com", 200, "B"},
		{"X.Wild.Example.Com:443", 200, "B"},
		{"exact.wild.example.com", 200, "C"}, // exact beats wildcard
		{"x.y.wild.example.com", 404, ""},    // a wildcard covers one label
		{"wild.example.com", 404, ""},
		{"example.com", 404, ""},
		{"b.example.com", 404, ""},
		{"127.0.0.1", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			code, body := get(t, srv.Client(), srv.URL+"/", tt.host)
			if code != tt.code {
				t.Fatalf("status %d, want %d (body %q)", code, tt.code, body)
			}
			if tt.body != "" && body != tt.body {
				t.Fatalf("body %q, want %q", body, tt.body)
			}
		})
	}
}

func TestNotFoundPage(t *testing.T) { eachFront(t, testNotFoundPage) }

func testNotFoundPage(t *testing.T, front frontFunc) {
	p := newProxy(t, "")
	srv := front(t, p)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/some/path?q=%3Cscript%3E", nil)
	req.Host = "unknown-host-value.example.com"
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d, want 404", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("content type %q, want text/html", ct)
	}
	if !contains(string(body), "<html", "404", "<style>") {
		t.Errorf("body is not the 404 page: %s", body)
	}
	if strings.Contains(string(body), "unknown-host-value") || strings.Contains(string(body), "some/path") {
		t.Errorf("404 page echoes the request: %s", body)
	}
}

func TestBadGateway(t *testing.T) { eachFront(t, testBadGateway) }

func testBadGateway(t *testing.T, front frontFunc) {
	p := newProxy(t, "")
	setRoute(t, p, "dead", []string{"dead.example.com"}, deadAddr(t))
	setRoute(t, p, "empty", []string{"empty.example.com"})
	srv := front(t, p)
	for _, host := range []string{"dead.example.com", "empty.example.com"} {
		t.Run(host, func(t *testing.T) {
			code, body := get(t, srv.Client(), srv.URL+"/", host)
			if code != http.StatusBadGateway || !contains(body, "502", "<html") {
				t.Fatalf("got %d %q, want the 502 page", code, body)
			}
		})
	}
}

func TestRoundRobin(t *testing.T) { eachFront(t, testRoundRobin) }

func testRoundRobin(t *testing.T, front frontFunc) {
	p := newProxy(t, "")
	a, b := newBackend(t, "A"), newBackend(t, "B")
	setRoute(t, p, "rr", []string{"rr.example.com"}, a.addr, b.addr)
	srv := front(t, p)
	const n = 20
	prev := ""
	for range n {
		code, body := get(t, srv.Client(), srv.URL+"/", "rr.example.com")
		if code != 200 {
			t.Fatalf("status %d", code)
		}
		if body == prev {
			t.Fatalf("two requests in a row went to %s", body)
		}
		prev = body
	}
	if a.hits.Load() != n/2 || b.hits.Load() != n/2 {
		t.Fatalf("hits A=%d B=%d, want %d each", a.hits.Load(), b.hits.Load(), n/2)
	}
}

func TestRetryNextTargetWhenOneIsDead(t *testing.T) { eachFront(t, testRetryNextTargetWhenOneIsDead) }

func testRetryNextTargetWhenOneIsDead(t *testing.T, front frontFunc) {
	p := newProxy(t, "")
	live := newBackend(t, "live")
	// The dead target is listed once before and once after the live one,
	// so every position of the round robin starts at a dead target.
	setRoute(t, p, "retry", []string{"retry.example.com"}, deadAddr(t), live.addr, deadAddr(t))
	srv := front(t, p)
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for i := range 300 {
		method := []string{http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPost, http.MethodDelete}[i%5]
		req, _ := http.NewRequest(method, srv.URL+"/", nil)
		req.Host = "retry.example.com"
		c := srv.Client()
		if i%2 == 1 {
			c = fresh
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d (%s): status %d", i, method, resp.StatusCode)
		}
	}
	if got := live.hits.Load(); got != 300 {
		t.Fatalf("live target served %d of 300", got)
	}
}

func TestForwardedHeaders(t *testing.T) { eachFront(t, testForwardedHeaders) }

func testForwardedHeaders(t *testing.T, front frontFunc) {
	p := newProxy(t, "")
	addr := serveBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "host=%s xff=%s xfh=%s xfp=%s secret=%q keepalive=%q forwarded=%q ua=%q path=%s",
			r.Host, r.Header.Values("X-Forwarded-For"), r.Header.Get("X-Forwarded-Host"),
			r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Secret"), r.Header.Get("Keep-Alive"),
			r.Header.Get("Forwarded"), r.Header.Get("User-Agent"), r.RequestURI)
	}))
	setRoute(t, p, "hdr", []string{"hdr.example.com"}, addr)
	srv := front(t, p)
	// The path and query go as received: not cleaned, not re-encoded.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/p/../q%2Fr//s?x=1&y=%20", nil)
	req.Host = "hdr.example.com"
	req.Header.Add("X-Forwarded-For", "6.6.6.6")
	req.Header.Add("X-Forwarded-For", "7.7.7.7")
	req.Header.Set("Forwarded", "for=6.6.6.6")
	req.Header.Set("Connection", "X-Secret")
	req.Header.Set("X-Secret", "hop")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("User-Agent", "")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := `host=hdr.example.com xff=[127.0.0.1] xfh=hdr.example.com xfp=http secret="" keepalive="" forwarded="" ua="" path=/p/../q%2Fr//s?x=1&y=%20`
	if string(body) != want {
		t.Fatalf("backend saw\n%s\nwant\n%s", body, want)
	}
}

func TestStreamingResponse(t *testing.T) { eachFront(t, testStreamingResponse) }

func testStreamingResponse(t *testing.T, front frontFunc) {
	p := newProxy(t, "")
	release := make(chan struct{})
	addr := serveBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "data: two\n\n")
	}))
	setRoute(t, p, "sse", []string{"sse.example.com"}, addr)
	srv := front(t, p)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events", nil)
	req.Host = "sse.example.com"
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	// The first event must arrive while the backend still holds the
	// response open: a buffering proxy would never deliver it.
	line, err := r.ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("first event: %q, %v", line, err)
	}
	close(release)
	rest, err := io.ReadAll(r)
	if err != nil || string(rest) != "\ndata: two\n\n" {
		t.Fatalf("rest: %q, %v", rest, err)
	}
}

func TestWebSocketUpgrade(t *testing.T) { eachFront(t, testWebSocketUpgrade) }

func testWebSocketUpgrade(t *testing.T, front frontFunc) {
	p := newProxy(t, "")
	addr := serveBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		conn, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		io.Copy(conn, brw.Reader) // echo
	}))
	setRoute(t, p, "ws", []string{"ws.example.com"}, addr)
	srv := front(t, p)

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: ws.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	for _, msg := range []string{"hello", "over the proxy"} {
		io.WriteString(conn, msg)
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(br, buf); err != nil || string(buf) != msg {
			t.Fatalf("echo: %q, %v", buf, err)
		}
	}
}

// TestSwapUnderLoad changes routes hundreds of times, for other apps and
// for the app under load (switching between two live targets), while
// clients hammer it over keep-alive and fresh connections: no request may
// fail.
func TestSwapUnderLoad(t *testing.T) { eachFront(t, testSwapUnderLoad) }

func testSwapUnderLoad(t *testing.T, front frontFunc) {
	p := newProxy(t, "")
	a, b, other := newBackend(t, "A"), newBackend(t, "B"), newBackend(t, "other")
	setRoute(t, p, "load", []string{"load.example.com"}, a.addr)
	setRoute(t, p, "steady", []string{"steady.example.com"}, other.addr)
	srv := front(t, p)

	keepAlive := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	defer keepAlive.CloseIdleConnections()

	const workers, perWorker = 8, 400
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []string
		done     = make(chan struct{})
	)
	for w := range workers {
		c := keepAlive
		if w%2 == 1 {
			c = fresh
		}
		wg.Go(func() {
			for i := range perWorker {
				host, want := "load.example.com", "A|B"
				if i%4 == 3 {
					host, want = "steady.example.com", "other"
				}
				req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
				req.Host = host
				resp, err := c.Do(req)
				if err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || !strings.Contains(want, string(body)) || len(body) == 0 {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s: %d %q %v", host, resp.StatusCode, body, err))
					mu.Unlock()
				}
			}
		})
	}
	changes := 0
	var changer sync.WaitGroup
	changer.Go(func() {
		ctx := context.Background()
		for i := 0; ; i++ {
			select {
			case <-done:
				if i >= 300 {
					return
				}
			default:
			}
			target := a.addr
			if i%2 == 1 {
				target = b.addr
			}
			other := fmt.Sprintf("other-%d", i%7)
			for _, r := range []berth.Route{
				{App: "load", Hosts: []string{"load.example.com"}, Targets: []string{target}},
				{App: other, Hosts: []string{other + ".example.com"}, Targets: []string{other2(i, a.addr, b.addr)}},
			} {
				if err := p.SetRoute(ctx, r); err != nil {
					t.Errorf("set route: %v", err)
				}
			}
			if i%3 == 0 {
				if err := p.RemoveRoute(ctx, other); err != nil {
					t.Errorf("remove route: %v", err)
				}
			}
			changes += 3
		}
	})
	wg.Wait()
	close(done)
	changer.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of %d requests failed during %d route changes; first: %s", len(failures), workers*perWorker, changes, failures[0])
	}
	if a.hits.Load() == 0 || b.hits.Load() == 0 {
		t.Fatalf("the switch never took effect: A=%d B=%d", a.hits.Load(), b.hits.Load())
	}
	t.Logf("%d requests, %d route changes, A=%d B=%d", workers*perWorker, changes, a.hits.Load(), b.hits.Load())
}

func other2(i int, a, b string) string {
	if i%2 == 0 {
		return b
	}
	return a
}
