//go:build dockerrestart

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthhq/berth/docker/dockertest"
)

// TestDockerdRestart restarts the Docker daemon under a live app and checks
// that the app and the proxy come back by themselves. It stops every
// container on the machine for a while, so it is not part of `go test
// ./...`: `make test-dockerd` runs it alone, after the other tests (.ci/run
// does).
func TestDockerdRestart(t *testing.T) {
	berthBin, appBin := binaries(t)
	dk := dockertest.Engine(t)
	repo, url := appRepo(t, appBin, "dr", appDockerfile, "survivor")
	s := startServer(t, berthBin, "--reconcile-every", "2s")
	s.login()
	s.berth("apps", "create", "dr", "--git", url, "--port", "8080", "--replicas", "2")
	s.berth("domains", "add", "dr", "dr.localhost")
	s.berth("deploy", "dr")
	s.wantAnswer("dr.localhost", "survivor")

	restartDockerd(t)
	if err := waitDocker(dk.Ping, 60*time.Second); err != nil {
		t.Fatalf("the Docker daemon did not come back: %v", err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		code, body, err := s.tryGet("dr.localhost", "/")
		if err == nil && code == 200 && strings.Contains(body, "survivor") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the app did not answer through the proxy within 90s of the daemon restart: %d %q %v", code, body, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// Both replicas run again, and deploying still works.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(time.Second) {
		running := 0
		for _, c := range s.appContainers("dr") {
			if c.Running() {
				running++
			}
		}
		if running == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d replicas run after the daemon restart, want 2", running)
		}
	}
	repo.Write("message.txt", "after-restart\n")
	repo.Commit("v2")
	s.berth("deploy", "dr")
	s.wantAnswer("dr.localhost", "after-restart")
}

// restartDockerd stops the running dockerd with SIGTERM and starts it again
// with the same command line, detached from the test.
func restartDockerd(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile("/var/run/docker.pid")
	if err != nil {
		t.Fatalf("find dockerd: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("docker.pid: %v", err)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatalf("dockerd command line: %v", err)
	}
	argv := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if len(argv) == 0 || !strings.HasSuffix(argv[0], "dockerd") {
		t.Fatalf("pid %d is not dockerd: %q", pid, argv)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("stop dockerd: %v", err)
	}
	for deadline := time.Now().Add(60 * time.Second); syscall.Kill(pid, 0) == nil; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("dockerd did not stop within 60s")
		}
	}
	log, err := os.OpenFile(filepath.Join(os.TempDir(), "berth-dockerd-restart.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dockerd: %v", err)
	}
	go cmd.Wait() // reap it if it exits while the test runs; it outlives the test otherwise
	t.Logf("dockerd restarted as pid %d (%s)", cmd.Process.Pid, strings.Join(argv, " "))
}

func waitDocker(ping func(context.Context) error, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := ping(ctx)
		cancel()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(500 * time.Millisecond)
	}
}
