package proxy_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/proxy"
)

// slowBackend is an old release: /long answers once released, /sse
// streams events until released, /ws upgrades to an echo connection, and
// anything else answers its name.
type slowBackend struct {
	addr                    string
	entered                 chan string // the path of each request that started
	releaseLong, releaseSSE func()
	longDone, sseDone       atomic.Bool
}

// releaser returns a channel and a func closing it once. The func is also
// called when the test ends, so that a failed test never leaves a handler
// blocked (and the server's Close waiting for it).
func releaser(t *testing.T) (<-chan struct{}, func()) {
	c := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(c) }) }
	t.Cleanup(release)
	return c, release
}

func newSlowBackend(t *testing.T, name string) *slowBackend {
	b := &slowBackend{entered: make(chan string, 16)}
	var long, sse <-chan struct{}
	b.addr = serveBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/long":
			b.entered <- r.URL.Path
			<-long
			io.WriteString(w, "long done")
			b.longDone.Store(true)
		case "/sse":
			w.Header().Set("Content-Type", "text/event-stream")
			b.entered <- r.URL.Path
			for i := 0; ; i++ {
				fmt.Fprintf(w, "data: %d\n\n", i)
				w.(http.Flusher).Flush()
				select {
				case <-sse:
					io.WriteString(w, "data: end\n\n")
					b.sseDone.Store(true)
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		case "/ws":
			conn, rw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
			rw.Flush()
			b.entered <- r.URL.Path
			io.Copy(conn, rw) // echo until the client closes
		default:
			io.WriteString(w, name)
		}
	}))
	long, b.releaseLong = releaser(t)
	sse, b.releaseSSE = releaser(t)
	return b
}

// drainResult is what a drain returned.
type drainResult struct {
	n   int
	err error
}

func startDrain(c *proxy.Client, targets []string, timeout time.Duration) <-chan drainResult {
	out := make(chan drainResult, 1)
	go func() {
		n, err := c.Drain(context.Background(), targets, timeout)
		out <- drainResult{n, err}
	}()
	return out
}

// notYet fails when the drain returned within d.
func notYet(t *testing.T, done <-chan drainResult, d time.Duration, why string) {
	t.Helper()
	select {
	case r := <-done:
		t.Fatalf("drain returned (%d, %v) while %s", r.n, r.err, why)
	case <-time.After(d):
	}
}

// TestDrainSwitch switches a route while a long request and an event
// stream are in flight to the old target: new requests go to the new
// target at once, both old ones finish, and the drain returns only after
// they did.
func TestDrainSwitch(t *testing.T) { eachFront(t, testDrainSwitch) }

func testDrainSwitch(t *testing.T, front frontFunc) {
	p := newProxy(t, "")
	c := proxy.NewClient(serveAdmin(t, p))
	srv := front(t, p)
	old := newSlowBackend(t, "old")
	next := newBackend(t, "new")
	setRoute(t, p, "app", []string{"app.example.com"}, old.addr)

	type result struct {
		code int
		body string
		err  error
	}
	fetch := func(path string) <-chan result {
		out := make(chan result, 1)
		go func() {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
			req.Host = "app.example.com"
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				out <- result{err: err}
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			out <- result{resp.StatusCode, string(b), err}
		}()
		return out
	}
	long, sse := fetch("/long"), fetch("/sse")
	<-old.entered
	<-old.entered

	setRoute(t, p, "app", []string{"app.example.com"}, next.addr)
	for range 5 {
		if code, body := get(t, srv.Client(), srv.URL+"/", "app.example.com"); code != 200 || body != "new" {
			t.Fatalf("after the switch: %d %q, want the new target", code, body)
		}
	}

	done := startDrain(c, []string{old.addr}, time.Minute)
	notYet(t, done, 300*time.Millisecond, "a long request and a stream are in flight")
	old.releaseSSE()
	if r := <-sse; r.err != nil || r.code != 200 || !strings.HasSuffix(r.body, "data: end\n\n") {
		t.Fatalf("stream: %d %q %v", r.code, r.body, r.err)
	}
	notYet(t, done, 200*time.Millisecond, "the long request is in flight")
	old.releaseLong()
	if r := <-long; r.err != nil || r.code != 200 || r.body != "long done" {
		t.Fatalf("long request: %d %q %v", r.code, r.body, r.err)
	}
	r := <-done
	if r.err != nil || r.n != 0 {
		t.Fatalf("drain: %d, %v; want 0, nil", r.n, r.err)
	}
	if !old.longDone.Load() || !old.sseDone.Load() {
		t.Fatal("drain returned before the old target finished")
	}
	if next.hits.Load() != 5 {
		t.Fatalf("new target served %d requests, want 5", next.hits.Load())
	}
}

// TestDrainUpgraded counts an upgraded (WebSocket-like) connection as in
// flight until it closes.
func TestDrainUpgraded(t *testing.T) { eachFront(t, testDrainUpgraded) }

func testDrainUpgraded(t *testing.T, front frontFunc) {
	p := newProxy(t, "")
	c := proxy.NewClient(serveAdmin(t, p))
	srv := front(t, p)
	old := newSlowBackend(t, "old")
	setRoute(t, p, "app", []string{"app.example.com"}, old.addr)

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: app.example.com\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	<-old.entered
	fmt.Fprintf(conn, "ping\n")
	if line, err := br.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("echo: %q %v", line, err)
	}

	if err := p.RemoveRoute(context.Background(), "app"); err != nil {
		t.Fatal(err)
	}
	if r := <-startDrain(c, []string{old.addr}, 200*time.Millisecond); r.err != nil || r.n != 1 {
		t.Fatalf("drain with an open upgraded connection: %d, %v; want 1, nil", r.n, r.err)
	}
	conn.Close()
	if r := <-startDrain(c, []string{old.addr}, time.Minute); r.err != nil || r.n != 0 {
		t.Fatalf("drain after the connection closed: %d, %v; want 0, nil", r.n, r.err)
	}
}

// TestDrainTimeout gives up at the timeout and reports what is still in
// flight, or the target a route still names.
func TestDrainTimeout(t *testing.T) { eachFront(t, testDrainTimeout) }

func testDrainTimeout(t *testing.T, front frontFunc) {
	p := newProxy(t, "")
	c := proxy.NewClient(serveAdmin(t, p))
	srv := front(t, p)
	var released <-chan struct{}
	entered := make(chan struct{}, 8)
	stuck := serveBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-released
	}))
	released, release := releaser(t)
	live := newBackend(t, "live")
	setRoute(t, p, "app", []string{"app.example.com"}, stuck)

	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if code, _, err := tryGet(srv.Client(), srv.URL+"/", "app.example.com"); code != 200 || err != nil {
				t.Errorf("held request: %d %v", code, err)
			}
		})
	}
	for range 3 {
		<-entered
	}
	setRoute(t, p, "app", []string{"app.example.com"}, live.addr)
	if r := <-startDrain(c, []string{stuck, live.addr}, 100*time.Millisecond); r.n != 3 || !berth.IsKind(r.err, berth.Conflict) || !contains(r.err.Error(), live.addr) {
		t.Fatalf("drain of a routed target: %d, %v; want 3 and a Conflict naming %s", r.n, r.err, live.addr)
	}
	if r := <-startDrain(c, []string{stuck}, 200*time.Millisecond); r.n != 3 || r.err != nil {
		t.Fatalf("drain at its timeout: %d, %v; want 3, nil", r.n, r.err)
	}
	n, err := p.Drain(context.Background(), []string{stuck}, 100*time.Millisecond)
	if n != 3 || err != nil {
		t.Fatalf("in-process drain: %d, %v; want 3, nil", n, err)
	}
	release()
	wg.Wait()
	if r := <-startDrain(c, []string{stuck}, time.Minute); r.n != 0 || r.err != nil {
		t.Fatalf("drain once released: %d, %v; want 0, nil", r.n, r.err)
	}
	// A target never routed has nothing in flight.
	if r := <-startDrain(c, []string{deadAddr(t)}, time.Minute); r.n != 0 || r.err != nil {
		t.Fatalf("drain of an unknown target: %d, %v", r.n, r.err)
	}
}

func TestDrainInvalid(t *testing.T) {
	p := newProxy(t, "")
	c := proxy.NewClient(serveAdmin(t, p))
	ctx := context.Background()
	if _, err := c.Drain(ctx, []string{"no-port"}, time.Second); !berth.IsKind(err, berth.Invalid) {
		t.Fatalf("bad target: %v, want Invalid", err)
	}
	if _, err := c.Drain(ctx, []string{"10.0.0.1:80"}, -time.Second); !berth.IsKind(err, berth.Invalid) {
		t.Fatalf("negative timeout: %v, want Invalid", err)
	}
	srv := httptest.NewServer(p.Admin())
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/v1/drain", "application/json", strings.NewReader(`{"targets":["10.0.0.1:80"],"timeout":"soon"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad timeout: %d, want 400", resp.StatusCode)
	}
}

// connCounter is a target that counts its open connections.
type connCounter struct {
	addr string
	open atomic.Int64
}

func newConnCounter(t *testing.T, name string) *connCounter {
	cc := &connCounter{}
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, name)
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			cc.open.Add(1)
		case http.StateClosed, http.StateHijacked:
			cc.open.Add(-1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	cc.addr = s.Listener.Addr().String()
	return cc
}

// TestDrainClosesConnections churns targets under concurrent load: once a
// target left every route and was drained, the proxy keeps no connection
// to it.
func TestDrainClosesConnections(t *testing.T) { eachFront(t, testDrainClosesConnections) }

func testDrainClosesConnections(t *testing.T, front frontFunc) {
	p := newProxy(t, "")
	c := proxy.NewClient(serveAdmin(t, p))
	srv := front(t, p)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()

	var targets []*connCounter
	for i := range 8 {
		cur := newConnCounter(t, fmt.Sprint("t", i))
		targets = append(targets, cur)
		setRoute(t, p, "app", []string{"app.example.com"}, cur.addr)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range 10 {
					if code, body, err := tryGet(client, srv.URL+"/", "app.example.com"); code != 200 || body != fmt.Sprint("t", i) {
						t.Errorf("request to t%d: %d %q %v", i, code, body, err)
					}
				}
			})
		}
		wg.Wait()
		if cur.open.Load() == 0 {
			t.Fatalf("t%d: the proxy kept no connection to a routed target", i)
		}
		if i == 0 {
			continue
		}
		prev := targets[i-1]
		if n, err := c.Drain(context.Background(), []string{prev.addr}, 10*time.Second); n != 0 || err != nil {
			t.Fatalf("drain t%d: %d, %v", i-1, n, err)
		}
		eventually(t, fmt.Sprintf("the connections to t%d to close", i-1), func() bool { return prev.open.Load() == 0 })
	}
	// Removing the route closes the idle connections without a drain.
	last := targets[len(targets)-1]
	if err := p.RemoveRoute(context.Background(), "app"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the connections to the last target to close", func() bool { return last.open.Load() == 0 })
}

// tryGet is get for goroutines other than the test's.
func tryGet(c *http.Client, url, host string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}
