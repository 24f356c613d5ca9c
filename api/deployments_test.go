package api

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/engine"
)

func TestDeployAndHistory(t *testing.T) {
	e := newEnv(t)
	e.createApp(gitApp("web"))
	deploy, read := e.tokens[berth.ScopeDeploy], e.tokens[berth.ScopeRead]

	r := e.do(deploy, "POST", "/api/v1/apps/web/deployments", map[string]string{"ref": "v1.0"})
	d1 := decode[berth.Deployment](t, r, http.StatusAccepted)
	if d1.Status != berth.StatusQueued || d1.Ref != "v1.0" || d1.Number != 1 || d1.CreatedBy != "admin" {
		t.Errorf("queued deployment = %+v", d1)
	}
	if loc := r.header.Get("Location"); loc != "/api/v1/apps/web/deployments/"+d1.ID {
		t.Errorf("Location = %q", loc)
	}
	live1 := e.wait("web", d1.ID, berth.StatusLive)
	if live1.Commit == "" || live1.ReleaseID == "" || len(live1.Stages) == 0 {
		t.Errorf("live deployment lacks commit, release or stages: %+v", live1)
	}
	// An empty body deploys the app's own ref.
	d2 := decode[berth.Deployment](t, e.do(deploy, "POST", "/api/v1/apps/web/deployments", nil), http.StatusAccepted)
	if d2.Ref != "main" {
		t.Errorf("ref = %q, want main", d2.Ref)
	}
	e.wait("web", d2.ID, berth.StatusLive)

	ds := decode[[]berth.Deployment](t, e.do(read, "GET", "/api/v1/apps/web/deployments", nil), http.StatusOK)
	if len(ds) != 2 || ds[0].Number != 2 || ds[1].Number != 1 || ds[1].Status != berth.StatusSuperseded {
		t.Errorf("deployments = %+v", ds)
	}
	if ds := decode[[]berth.Deployment](t, e.do(read, "GET", "/api/v1/apps/web/deployments?limit=1", nil), http.StatusOK); len(ds) != 1 {
		t.Errorf("limit=1 gave %d", len(ds))
	}
	for _, id := range []string{"1", "v1", d1.ID} {
		got := decode[berth.Deployment](t, e.do(read, "GET", "/api/v1/apps/web/deployments/"+id, nil), http.StatusOK)
		if got.ID != d1.ID {
			t.Errorf("deployment %s = %s, want %s", id, got.ID, d1.ID)
		}
	}
	for _, id := range []string{"3", "0", "-1", "dep_aaaaaaaaaaaaaaaa", "x'; DROP TABLE deployments; --"} {
		if r := e.do(read, "GET", "/api/v1/apps/web/deployments/"+urlPath(id), nil); r.status != http.StatusNotFound {
			t.Errorf("deployment %q: %d, want 404", id, r.status)
		}
	}

	// The stored log as text.
	r = e.do(read, "GET", "/api/v1/apps/web/deployments/1/log", nil)
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") || !strings.Contains(string(r.body), "fetched v1.0") {
		t.Errorf("log: %d %s\n%s", r.status, r.header.Get("Content-Type"), r.body)
	}

	// A finished deployment cannot be cancelled.
	if r := e.do(deploy, "POST", "/api/v1/apps/web/deployments/1/cancel", nil); r.status != http.StatusConflict {
		t.Errorf("cancel a superseded deployment: %d, want 409", r.status)
	}

	// Releases, and a rollback by number.
	rels := decode[[]Release](t, e.do(read, "GET", "/api/v1/apps/web/releases", nil), http.StatusOK)
	if len(rels) != 2 || rels[0].Number != 2 || rels[1].ID != live1.ReleaseID {
		t.Fatalf("releases = %+v", rels)
	}
	for _, ref := range []string{"9", "rel_aaaaaaaaaaaaaaaa", "../1"} {
		if r := e.do(deploy, "POST", "/api/v1/apps/web/rollback", RollbackRequest{Release: ref}); r.status != http.StatusNotFound {
			t.Errorf("rollback to %q: %d, want 404: %s", ref, r.status, r.body)
		}
	}
	rb := decode[berth.Deployment](t, e.do(deploy, "POST", "/api/v1/apps/web/rollback", RollbackRequest{Release: "1"}), http.StatusAccepted)
	if rb.Kind != berth.KindRollback || rb.TargetReleaseID != live1.ReleaseID {
		t.Errorf("rollback = %+v", rb)
	}
	e.wait("web", rb.ID, berth.StatusLive)
	// With no release: the one before the live one, by ID.
	rb = decode[berth.Deployment](t, e.do(deploy, "POST", "/api/v1/apps/web/rollback", RollbackRequest{Release: rels[0].ID}), http.StatusAccepted)
	if rb.TargetReleaseID != rels[0].ID {
		t.Errorf("rollback by ID targets %s, want %s", rb.TargetReleaseID, rels[0].ID)
	}
	e.wait("web", rb.ID, berth.StatusLive)

	st := decode[engine.AppStatus](t, e.do(read, "GET", "/api/v1/apps/web/status", nil), http.StatusOK)
	if st.Live == nil || st.Live.ID != rb.ID || st.Release == nil || st.Release.ID != rels[0].ID || st.App == nil || st.App.Name != "web" || len(st.Containers) == 0 {
		t.Errorf("status = %+v live %+v release %+v containers %+v", st, st.Live, st.Release, st.Containers)
	}
	if r := e.do(read, "GET", "/api/v1/apps/web/status", nil); !strings.Contains(string(r.body), `"interval": "500ms"`) {
		t.Errorf("status health durations are not strings:\n%s", r.body)
	}
}

func urlPath(s string) string {
	return strings.NewReplacer(" ", "%20", "'", "%27", ";", "%3B").Replace(s)
}

func TestCancel(t *testing.T) {
	e := newEnv(t)
	e.createApp(gitApp("web"))
	block := make(chan struct{})
	e.fakes.Source.Block = block
	t.Cleanup(func() {
		select {
		case <-block:
		default:
			close(block)
		}
	})
	d := decode[berth.Deployment](t, e.do(e.tokens[berth.ScopeDeploy], "POST", "/api/v1/apps/web/deployments", nil), http.StatusAccepted)
	r := e.do(e.tokens[berth.ScopeDeploy], "POST", "/api/v1/apps/web/deployments/"+d.ID+"/cancel", nil)
	got := decode[berth.Deployment](t, r, http.StatusOK)
	if got.ID != d.ID || (got.Status != berth.StatusCancelled && !got.CancelRequested) {
		t.Errorf("after cancel: %+v", got)
	}
	e.wait("web", d.ID, berth.StatusCancelled)
}

func tarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, body)
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func TestUpload(t *testing.T) {
	e := newEnv(t)
	e.createApp(map[string]any{"name": "site", "source": map[string]any{"kind": "upload"}})
	deploy := e.tokens[berth.ScopeDeploy]
	archive := tarGz(t, map[string]string{"Dockerfile": "FROM scratch\n", "index.html": "hi"})

	d, err := e.client(berth.ScopeDeploy).DeployUpload(context.Background(), "site", bytes.NewReader(archive), true)
	if err != nil {
		t.Fatal(err)
	}
	e.wait("site", d.ID, berth.StatusLive)

	// JSON for an upload app is refused by the engine with a reason.
	if r := e.do(deploy, "POST", "/api/v1/apps/site/deployments", map[string]any{}); r.status != http.StatusBadRequest {
		t.Errorf("JSON deploy of an upload app: %d, want 400", r.status)
	}
	// Uploads are bounded.
	e.api.maxUpload = 100
	r := e.do(deploy, "POST", "/api/v1/apps/site/deployments", bytes.Repeat([]byte{0}, 1000), "Content-Type", "application/x-tar")
	if r.status != http.StatusBadRequest {
		t.Fatalf("oversized upload: %d, want 400: %s", r.status, r.body)
	}
	if p := r.problem(t); !strings.Contains(p.Detail, "larger than 100 bytes") {
		t.Errorf("detail %q", p.Detail)
	}
}

// sseEvent is one parsed Server-Sent Event.
type sseEvent struct {
	name, id string
	data     string
}

// openEvents opens a deployment's event stream.
func (e *testEnv) openEvents(ctx context.Context, path string, lastID string) (*http.Response, <-chan sseEvent, <-chan int) {
	e.t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+e.tokens[berth.ScopeRead])
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	events := make(chan sseEvent, 1000)
	pings := make(chan int, 1000)
	go func() {
		defer close(events)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					events <- ev
				}
				ev = sseEvent{}
			case line == ": ping":
				pings <- 1
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "id: "):
				ev.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return resp, events, pings
}

func next(t *testing.T, events <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("event stream ended")
		}
		return ev
	case <-time.After(20 * time.Second):
		t.Fatal("no event within 20s")
	}
	return sseEvent{}
}

func TestDeploymentEvents(t *testing.T) {
	e := newEnv(t)
	e.api.ping = 30 * time.Millisecond
	e.createApp(gitApp("web"))
	block := make(chan struct{})
	e.fakes.Source.Block = block
	d := decode[berth.Deployment](t, e.do(e.tokens[berth.ScopeDeploy], "POST", "/api/v1/apps/web/deployments", nil), http.StatusAccepted)
	path := "/api/v1/apps/web/deployments/" + d.ID + "/log"

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, events, pings := e.openEvents(ctx, path, "")
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type = %q", ct)
	}
	first := next(t, events)
	if first.name != "status" {
		t.Fatalf("first event %+v, want status", first)
	}
	// While the deployment waits, the stream stays open and pings.
	select {
	case <-pings:
	case <-time.After(10 * time.Second):
		t.Fatal("no ping while the deployment waits")
	}
	close(block)

	var lines []berth.LogLine
	var statuses []berth.Status
	var end *berth.Deployment
	for end == nil {
		ev := next(t, events)
		switch ev.name {
		case "log":
			var l berth.LogLine
			if err := json.Unmarshal([]byte(ev.data), &l); err != nil {
				t.Fatal(err)
			}
			if ev.id != strconv.FormatInt(l.Seq, 10) {
				t.Errorf("log event id %q for seq %d", ev.id, l.Seq)
			}
			if len(lines) > 0 && l.Seq <= lines[len(lines)-1].Seq {
				t.Errorf("seq %d after %d", l.Seq, lines[len(lines)-1].Seq)
			}
			lines = append(lines, l)
		case "status":
			var s berth.Deployment
			if err := json.Unmarshal([]byte(ev.data), &s); err != nil {
				t.Fatal(err)
			}
			statuses = append(statuses, s.Status)
		case "end":
			end = &berth.Deployment{}
			if err := json.Unmarshal([]byte(ev.data), end); err != nil {
				t.Fatal(err)
			}
		default:
			t.Errorf("unexpected event %+v", ev)
		}
	}
	if end.Status != berth.StatusLive {
		t.Errorf("end status %s", end.Status)
	}
	if len(statuses) == 0 || statuses[len(statuses)-1] != berth.StatusLive {
		t.Errorf("statuses %v do not end with live", statuses)
	}
	// Every stored line was sent before "end", in order.
	stored, err := e.st.Logs(context.Background(), end.TeamID, d.ID, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != len(stored) || len(lines) == 0 {
		t.Fatalf("streamed %d lines, stored %d", len(lines), len(stored))
	}
	if _, ok := <-events; ok {
		t.Error("the stream goes on after end")
	}

	// Resuming with Last-Event-ID sends only later lines, then ends.
	_, events, _ = e.openEvents(ctx, path, strconv.FormatInt(stored[1].Seq, 10))
	var resumed []string
	for ev := range events {
		if ev.name == "log" {
			resumed = append(resumed, ev.id)
		}
	}
	if len(stored) < 3 || len(resumed) != len(stored)-2 || resumed[0] != strconv.FormatInt(stored[2].Seq, 10) {
		t.Errorf("resumed ids %v after %d of %d lines", resumed, stored[1].Seq, len(stored))
	}
	if r := e.do(e.tokens[berth.ScopeRead], "GET", path, nil, "Accept", "text/event-stream", "Last-Event-ID", "x"); r.status != http.StatusBadRequest {
		t.Errorf("bad Last-Event-ID: %d, want 400", r.status)
	}
}

// TestEventsStopWhenClientLeaves checks that a stream of a deployment that
// never ends stops when its client goes away.
func TestEventsStopWhenClientLeaves(t *testing.T) {
	e := newEnv(t)
	var inflight atomic.Int64
	h := e.api.Handler()
	e.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inflight.Add(1)
		defer inflight.Add(-1)
		h.ServeHTTP(w, r)
	})
	e.createApp(gitApp("web"))
	block := make(chan struct{})
	e.fakes.Source.Block = block
	t.Cleanup(func() { close(block) })
	d := decode[berth.Deployment](t, e.do(e.tokens[berth.ScopeDeploy], "POST", "/api/v1/apps/web/deployments", nil), http.StatusAccepted)

	ctx, cancel := context.WithCancel(context.Background())
	_, events, _ := e.openEvents(ctx, "/api/v1/apps/web/deployments/"+d.ID+"/log", "")
	next(t, events)
	if inflight.Load() != 1 {
		t.Fatalf("in-flight requests = %d, want 1", inflight.Load())
	}
	cancel()
	deadline := time.Now().Add(10 * time.Second)
	for inflight.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the stream handler still runs 10s after its client left")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDeploymentLogAfter checks that the deployment log starts after the
// line the "after" parameter names, as text and as events, and that
// Last-Event-ID still wins when a stream resumes.
func TestDeploymentLogAfter(t *testing.T) {
	e := newEnv(t)
	e.createApp(gitApp("web"))
	d := e.deployLive("web")
	if err := e.st.AppendLog(context.Background(), d.TeamID, d.ID, time.Now(), "one", "two", "three"); err != nil {
		t.Fatal(err)
	}
	read := e.tokens[berth.ScopeRead]
	path := "/api/v1/apps/web/deployments/" + d.ID + "/log"
	full := e.do(read, "GET", path, nil)
	all := strings.Split(strings.TrimSuffix(string(full.body), "\n"), "\n")
	if full.status != http.StatusOK || len(all) < 3 || all[len(all)-1] != "three" {
		t.Fatalf("log = %d %q", full.status, full.body)
	}
	n := len(all) - 2 // the number of the line "one"
	if r := e.do(read, "GET", path+"?after="+strconv.Itoa(n), nil); r.status != http.StatusOK || string(r.body) != "two\nthree\n" {
		t.Errorf("after=%d: %d %q, want the last two lines", n, r.status, r.body)
	}
	if r := e.do(read, "GET", path+"?after="+strconv.Itoa(len(all)), nil); r.status != http.StatusOK || len(r.body) != 0 {
		t.Errorf("after the last line: %d %q, want nothing", r.status, r.body)
	}
	for _, bad := range []string{"-1", "x", "1.5"} {
		if r := e.do(read, "GET", path+"?after="+bad, nil); r.status != http.StatusBadRequest {
			t.Errorf("after=%s: %d, want 400", bad, r.status)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	firstLog := func(lastID string) berth.LogLine {
		t.Helper()
		_, events, _ := e.openEvents(ctx, path+"?after="+strconv.Itoa(n), lastID)
		for {
			ev := next(t, events)
			if ev.name != "log" {
				continue
			}
			var l berth.LogLine
			if err := json.Unmarshal([]byte(ev.data), &l); err != nil {
				t.Fatal(err)
			}
			return l
		}
	}
	if l := firstLog(""); l.Seq != int64(n+1) || l.Text != "two" {
		t.Errorf("stream after=%d starts with %d %q, want %d two", n, l.Seq, l.Text, n+1)
	}
	if l := firstLog(strconv.Itoa(n + 1)); l.Text != "three" {
		t.Errorf("stream resumed with Last-Event-ID %d starts with %q, want three", n+1, l.Text)
	}
}

// quietRuntime is the fake Docker of an app that writes nothing: a
// follower of its logs waits until it leaves, as with a quiet container.
type quietRuntime struct{ engine.Runtime }

func (quietRuntime) Logs(ctx context.Context, id string, tail int, follow bool, w io.Writer) error {
	if follow {
		<-ctx.Done()
	}
	return nil
}

// TestRuntimeLogsKeepAlive checks that the runtime log stream of a quiet
// app sends ": ping" comments, so that proxies and browsers keep it open.
func TestRuntimeLogsKeepAlive(t *testing.T) {
	e := newEnv(t, func(c *engine.Config) { c.Runtime = quietRuntime{c.Runtime} })
	const every = 200 * time.Millisecond
	e.api.ping = every
	e.createApp(gitApp("web"))
	e.deployLive("web")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, events, pings := e.openEvents(ctx, "/api/v1/apps/web/logs?follow=true&tail=0", "")
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("stream = %d %s", resp.StatusCode, ct)
	}
	start := time.Now()
	for n := range 2 {
		select {
		case <-pings:
		case ev, ok := <-events:
			t.Fatalf("event %+v (open %v) on a quiet stream, want a ping", ev, ok)
		case <-time.After(every + 2*time.Second): // slack for a loaded machine
			t.Fatalf("no ping %d within %v of the stream opening", n+1, time.Since(start))
		}
	}
	if took := time.Since(start); took < every {
		t.Errorf("two pings within %v, want one every %v", took, every)
	}
}

func TestRuntimeLogs(t *testing.T) {
	e := newEnv(t)
	e.createApp(gitApp("web"))
	e.fakes.Runtime.LogText = "hello from the app\n"
	e.deployLive("web")
	read := e.tokens[berth.ScopeRead]

	r := e.do(read, "GET", "/api/v1/apps/web/logs?tail=5", nil)
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") || !strings.Contains(string(r.body), "hello from the app") {
		t.Errorf("logs: %d %q", r.status, r.body)
	}
	var buf bytes.Buffer
	if err := e.client(berth.ScopeRead).Logs(context.Background(), "web", LogsOptions{Tail: -1}, &buf); err != nil || !strings.Contains(buf.String(), "hello from the app") {
		t.Errorf("client logs: %q, %v", buf.String(), err)
	}
	r = e.do(read, "GET", "/api/v1/apps/web/logs", nil, "Accept", "text/event-stream")
	if r.status != http.StatusOK || !strings.Contains(string(r.body), "event: log\n") || !strings.Contains(string(r.body), "hello from the app") || !strings.Contains(string(r.body), "event: end\n") {
		t.Errorf("logs as events: %d %q", r.status, r.body)
	}
}
