package proxy_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/proxy"
)

// TestRun runs the proxy as `berth proxy` does: it replaces a stale admin
// socket, serves traffic and the admin API, and on shutdown lets an
// in-flight request finish.
func TestRun(t *testing.T) {
	dir, err := os.MkdirTemp("", "bp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "admin.sock")
	stale, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close() // leaves the socket file behind, as a killed process does

	httpAddr := deadAddr(t) // a free port
	entered, release := make(chan struct{}), make(chan struct{})
	slow := serveBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "finished")
	}))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- proxy.Run(ctx, proxy.Config{HTTPAddr: httpAddr, AdminSocket: sock, StateDir: filepath.Join(dir, "state")})
	}()

	c := proxy.NewClient(sock)
	eventually(t, "the admin socket", func() bool { return c.Health(ctx) == nil })
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o660 {
		t.Fatalf("admin socket mode: %v, %v; want 0660", fi.Mode(), err)
	}
	if err := c.SetRoute(ctx, berth.Route{App: "slow", Hosts: []string{"slow.example.com"}, Targets: []string{slow}}); err != nil {
		t.Fatal(err)
	}

	type result struct {
		code int
		body string
		err  error
	}
	resc := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, "http://"+httpAddr+"/", nil)
		req.Host = "slow.example.com"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			resc <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		resc <- result{resp.StatusCode, string(b), err}
	}()
	<-entered
	cancel() // SIGTERM while a request is in flight
	close(release)
	if r := <-resc; r.err != nil || r.code != 200 || r.body != "finished" {
		t.Fatalf("in-flight request: %d %q %v", r.code, r.body, r.err)
	}
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if _, err := net.Dial("tcp", httpAddr); err == nil {
		t.Fatal("proxy still listening after shutdown")
	}
	if _, err := os.Stat(filepath.Join(dir, "state", "routes.json")); err != nil {
		t.Fatalf("routes not persisted: %v", err)
	}
}

func TestRunRefusesNonSocket(t *testing.T) {
	dir := t.TempDir()
	notSock := filepath.Join(dir, "admin.sock")
	if err := os.WriteFile(notSock, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := proxy.Run(context.Background(), proxy.Config{HTTPAddr: "127.0.0.1:0", AdminSocket: notSock, StateDir: dir})
	if !berth.IsKind(err, berth.Invalid) {
		t.Fatalf("error %v, want Invalid", err)
	}
	if b, _ := os.ReadFile(notSock); string(b) != "keep me" {
		t.Fatal("a regular file at the socket path was removed")
	}
}
