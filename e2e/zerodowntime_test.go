package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/docker/dockertest"
)

// load sends a steady stream of requests through the proxy, over
// keep-alive and fresh connections, and counts every failure: a connection
// error, a 5xx, or an answer that is not the app's.
type load struct {
	total, failed atomic.Int64
	mu            sync.Mutex
	errs          []string
	stop          context.CancelFunc
	done          sync.WaitGroup
}

func startLoad(t *testing.T, proxy, host, path, wantPrefix string, workers int) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{stop: cancel}
	clients := []*http.Client{
		{Timeout: 30 * time.Second},
		{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
	}
	for i := range workers {
		c := clients[i%2]
		l.done.Go(func() {
			for ctx.Err() == nil {
				l.one(ctx, c, "http://"+proxy+path, host, wantPrefix)
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	t.Cleanup(l.end)
	return l
}

func (l *load) one(ctx context.Context, c *http.Client, url, host, wantPrefix string) {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Host = host
	resp, err := c.Do(req)
	if ctx.Err() != nil {
		return // the load stopped mid-request: not the proxy's failure
	}
	l.total.Add(1)
	var why string
	switch {
	case err != nil:
		why = err.Error()
	default:
		b, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case rerr != nil:
			why = "read body: " + rerr.Error()
		case resp.StatusCode >= 500:
			why = fmt.Sprintf("status %d: %.80s", resp.StatusCode, b)
		case !strings.HasPrefix(string(b), wantPrefix):
			why = fmt.Sprintf("status %d, unexpected body %.80q", resp.StatusCode, b)
		}
	}
	if why != "" {
		l.failed.Add(1)
		l.mu.Lock()
		if len(l.errs) < 20 {
			l.errs = append(l.errs, time.Now().Format("15:04:05.000 ")+why)
		}
		l.mu.Unlock()
	}
}

func (l *load) end() { l.stop(); l.done.Wait() }

// check fails the test when any request failed so far.
func (l *load) check(t *testing.T, during string) {
	t.Helper()
	if n := l.failed.Load(); n > 0 {
		l.mu.Lock()
		defer l.mu.Unlock()
		t.Fatalf("%d of %d requests failed (during %s); first ones:\n%s", n, l.total.Load(), during, strings.Join(l.errs, "\n"))
	}
	t.Logf("after %s: %d requests, none failed", during, l.total.Load())
}

// TestZeroDowntime keeps a steady load on a 2-replica app while it is
// redeployed, rolled back, broken by a failing release, and while the
// control plane is restarted, killed with SIGKILL in the middle of a build
// and of a health check, and while a replica is removed by hand. Not one
// request may fail, and every deployment must end in a terminal state.
func TestZeroDowntime(t *testing.T) {
	berthBin, appBin := binaries(t)
	dk := dockertest.Engine(t)
	busybox := dockertest.Busybox(t, dk)
	// A build step that takes a while when asked to (build arg SLOW), so a
	// kill can land in the middle of a build. One stage: the classic
	// builder leaves the image of an earlier stage behind, unlabelled.
	repo, url := appRepo(t, appBin, "zd", "FROM "+busybox+"\nARG SLOW=0\nRUN sleep $SLOW\n"+
		strings.TrimPrefix(appDockerfile, "FROM scratch\n"), "zd-1")
	s := startServer(t, berthBin, "--reconcile-every", "2s", "--drain-timeout", "20s")
	s.login()
	s.berth("apps", "create", "zd", "--git", url, "--port", "8080", "--replicas", "2")
	s.berth("domains", "add", "zd", "zd.localhost")
	s.berth("deploy", "zd")
	s.wantAnswer("zd.localhost", "zd-1")

	l := startLoad(t, s.proxy, "zd.localhost", "/", "zd-", 8)
	slow := startLoad(t, s.proxy, "zd.localhost", "/slow?ms=1500", "zd-", 2) // long requests across every switch

	for i := 2; i <= 3; i++ {
		repo.Write("message.txt", fmt.Sprintf("zd-%d\n", i))
		repo.Commit(fmt.Sprintf("v%d", i))
		s.berth("deploy", "zd")
		s.wantAnswer("zd.localhost", fmt.Sprintf("zd-%d", i))
	}
	l.check(t, "redeploys")
	s.berth("rollback", "zd")
	s.wantAnswer("zd.localhost", "zd-2")
	l.check(t, "a rollback")

	repo.Write("message.txt", "crash\n")
	repo.Commit("broken")
	s.berthErr("deploy", "zd")
	s.wantAnswer("zd.localhost", "zd-2")
	l.check(t, "a failed deploy")

	s.stop()
	time.Sleep(2 * time.Second)
	s.start()
	l.check(t, "a control-plane restart")

	// An upgrade: the control plane restarts as another build; the proxy
	// container it finds keeps running (it is replaced only on request).
	proxyBefore := s.proxyContainer(dk)
	s.stop()
	s.bin = upgradeBinary(t)
	s.start()
	if after := s.proxyContainer(dk); after != proxyBefore {
		t.Errorf("the upgrade replaced the proxy container (%s → %s)", proxyBefore, after)
	}
	if v := s.berth("version"); !strings.Contains(v, "e2e-upgrade") {
		t.Errorf("berth version after the upgrade: %q", v)
	}
	l.check(t, "an upgrade of the control plane")

	// kill -9 in the middle of a build.
	repo.Write("message.txt", "zd-4\n")
	repo.Commit("v4")
	s.berth("apps", "set", "zd", "--build-arg", "SLOW=30")
	id := s.deployDetached("zd")
	s.waitStatus("zd", id, berth.StatusBuilding)
	s.kill()
	s.start()
	if d := s.waitDone("zd", id, 90*time.Second); d.Status != berth.StatusFailed || !strings.Contains(d.Error, "interrupted while building") {
		t.Errorf("deployment killed while building ended %s (%q)", d.Status, d.Error)
	}
	l.check(t, "kill -9 while building")

	// kill -9 in the middle of a health check.
	s.berth("apps", "set", "zd", "--build-arg", "SLOW=0")
	s.berth("env", "set", "zd", "STARTUP_DELAY=20s")
	id = s.deployDetached("zd")
	s.waitStatus("zd", id, berth.StatusVerifying)
	s.kill()
	s.start()
	if d := s.waitDone("zd", id, 90*time.Second); d.Status != berth.StatusFailed || !strings.Contains(d.Error, "interrupted while verifying") {
		t.Errorf("deployment killed while verifying ended %s (%q)", d.Status, d.Error)
	}
	s.wantAnswer("zd.localhost", "zd-2")
	l.check(t, "kill -9 while verifying")

	// The broken and interrupted deployments left nothing behind, and a
	// replica removed by hand comes back (the reconciler runs every 2s).
	s.berth("env", "unset", "zd", "STARTUP_DELAY")
	s.berth("deploy", "zd")
	s.wantAnswer("zd.localhost", "zd-4")
	// `berth deploy` returns once the release is live; the old replicas are
	// drained and removed after that.
	cs := s.appContainers("zd")
	for deadline := time.Now().Add(60 * time.Second); len(cs) != 2; cs = s.appContainers("zd") {
		if time.Now().After(deadline) {
			t.Fatalf("%d containers of zd after 60s, want the 2 live replicas: %v", len(cs), cs)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// Removing a replica by hand can fail requests in flight to it (no
	// proxy can help that): the load is paused around the removal.
	l.end()
	slow.end()
	if err := dk.Remove(context.Background(), cs[0].ID, 0); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(s.appContainers("zd")) != 2 {
		if time.Now().After(deadline) {
			t.Fatal("the removed replica did not come back within 60s")
		}
		time.Sleep(500 * time.Millisecond)
	}
	s.wantAnswer("zd.localhost", "zd-4")
	l.check(t, "the whole run")
	slow.check(t, "the whole run (long requests)")
	if l.total.Load() < 500 {
		t.Errorf("only %d requests were sent: the load did not run", l.total.Load())
	}
}

// deployDetached queues a deployment and returns its ID.
func (s *server) deployDetached(app string) string {
	s.t.Helper()
	var d berth.Deployment
	mustJSON(s.t, s.berth("deploy", app, "--detach", "-o", "json"), &d)
	return d.ID
}

func (s *server) deployment(app, id string) berth.Deployment {
	s.t.Helper()
	var d berth.Deployment
	mustJSON(s.t, s.berth("deployment", app, id, "-o", "json"), &d)
	return d
}

// waitStatus waits until a deployment reaches status.
func (s *server) waitStatus(app, id string, want berth.Status) {
	s.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		d := s.deployment(app, id)
		if d.Status == want {
			return
		}
		if !d.Status.Active() || time.Now().After(deadline) {
			s.t.Fatalf("deployment is %s (%s), want %s", d.Status, d.Error, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitDone waits until a deployment is no longer active.
func (s *server) waitDone(app, id string, within time.Duration) berth.Deployment {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for {
		d := s.deployment(app, id)
		if !d.Status.Active() {
			return d
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("deployment still %s after %s", d.Status, within)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// kill sends SIGKILL to the server.
func (s *server) kill() {
	s.t.Helper()
	s.cmd.Process.Signal(syscall.SIGKILL)
	s.cmd.Wait()
	s.cmd = nil
}

// appContainers lists the containers of an app, as berth status shows them.
func (s *server) appContainers(app string) []berth.Container {
	s.t.Helper()
	var st struct {
		Containers []berth.Container `json:"containers"`
	}
	mustJSON(s.t, s.berth("status", app, "-o", "json"), &st)
	return st.Containers
}

// proxyContainer returns the ID of the server's proxy container.
func (s *server) proxyContainer(dk interface {
	Containers(context.Context, map[string]string) ([]berth.Container, error)
}) string {
	s.t.Helper()
	cs, err := dk.Containers(context.Background(), map[string]string{berth.LabelRole: "proxy", "berth.proxy.listen": s.proxy})
	if err != nil || len(cs) != 1 {
		s.t.Fatalf("proxy container: %v (%d found)", err, len(cs))
	}
	return cs[0].ID
}
