package e2e

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/berthhq/berth"
)

// TestDeployLoop is issue 2's acceptance path, once per store: create an
// app from a git repository served over smart HTTP, deploy it, reach it
// through the proxy, change an env var, push and redeploy, roll back, fail a
// deploy without touching the live release — all through the CLI.
func TestDeployLoop(t *testing.T) {
	stores := []struct {
		name string
		args func(t *testing.T) []string
	}{
		{"sqlite", func(t *testing.T) []string { return nil }},
		{"postgres", func(t *testing.T) []string {
			dsn := os.Getenv("BERTH_TEST_POSTGRES")
			if dsn == "" {
				if os.Getenv("CI") == "true" {
					t.Fatal("BERTH_TEST_POSTGRES is not set; CI needs PostgreSQL (see .ci/postgres)")
				}
				t.Skip("BERTH_TEST_POSTGRES is not set: skipping the PostgreSQL run")
			}
			return []string{"--database", freshDatabase(t, dsn)}
		}},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			args := st.args(t)
			berthBin, appBin := binaries(t)
			testDeployLoop(t, berthBin, appBin, args)
		})
	}
}

func testDeployLoop(t *testing.T, berthBin, appBin string, serverArgs []string) {
	repo, url := appRepo(t, appBin, "hello", appDockerfile, "hello-v1")
	s := startServer(t, berthBin, serverArgs...)
	if fi, _ := os.Stat(s.data + "/bootstrap-token"); fi == nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("bootstrap-token missing or not mode 0600")
	}
	if fi, _ := os.Stat(s.data + "/secret.key"); fi == nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("secret.key missing or not mode 0600")
	}
	s.login()

	s.berth("apps", "create", "hello", "--git", url, "--branch", "main", "--port", "8080", "--replicas", "2")
	s.berth("domains", "add", "hello", "hello.localhost")

	// Unknown hosts get the proxy's 404 page.
	if code, _ := s.get("nobody.localhost", "/"); code != 404 {
		t.Errorf("unknown host: status %d, want 404", code)
	}

	out := s.berth("deploy", "hello")
	if !strings.Contains(out, "building") && !strings.Contains(out, "Step") {
		t.Errorf("deploy output does not show the build:\n%s", out)
	}
	s.wantAnswer("hello.localhost", "hello-v1 greeting= release=v1")

	// Two replicas, labelled, on the berth network.
	var status struct {
		Live       *berth.Deployment `json:"live"`
		Containers []berth.Container `json:"containers"`
	}
	mustJSON(t, s.berth("status", "hello", "-o", "json"), &status)
	if status.Live == nil || status.Live.Status != berth.StatusLive {
		t.Fatalf("status: live deployment %+v", status.Live)
	}
	running := 0
	for _, c := range status.Containers {
		if c.Running() {
			running++
		}
	}
	if running != 2 {
		t.Errorf("running containers = %d, want 2", running)
	}

	// Env var: stored, applied by the next deploy.
	s.berth("env", "set", "hello", "GREETING=hi", "--deploy")
	s.wantAnswer("hello.localhost", "hello-v1 greeting=hi release=v2")

	// Push a commit, redeploy, get the new answer.
	repo.Write("message.txt", "hello-v2\n")
	commit := repo.Commit("v2")
	s.berth("deploy", "hello")
	s.wantAnswer("hello.localhost", "hello-v2 greeting=hi release=v3")

	// A deploy whose app crashes fails with the reason and leaves v3 serving.
	repo.Write("message.txt", "crash\n")
	repo.Commit("broken")
	errOut := s.berthErr("deploy", "hello")
	if !strings.Contains(errOut, "health check") || !strings.Contains(errOut, "crashing on purpose") {
		t.Errorf("failed deploy's reason should name the health check and show the container log; stderr:\n%s", errOut)
	}
	s.wantAnswer("hello.localhost", "hello-v2 greeting=hi release=v3")

	// Roll back to the previous release, without a rebuild.
	s.berth("rollback", "hello")
	s.wantAnswer("hello.localhost", "hello-v1 greeting=hi release=v2")

	// History: every deployment with its status and stage timings.
	var deps []berth.Deployment
	mustJSON(t, s.berth("deployments", "hello", "-o", "json"), &deps)
	if len(deps) != 5 {
		t.Fatalf("deployments = %d, want 5", len(deps))
	}
	want := []berth.Status{berth.StatusLive, berth.StatusFailed, berth.StatusRolledBack, berth.StatusSuperseded, berth.StatusSuperseded}
	for i, d := range deps {
		if d.Status != want[i] {
			t.Errorf("deployment #%d status %s, want %s", d.Number, d.Status, want[i])
		}
		if len(d.Stages) == 0 {
			t.Errorf("deployment #%d has no stage timings", d.Number)
		}
	}
	if deps[2].Commit != commit {
		t.Errorf("deployment #3 commit %q, want %q", deps[2].Commit, commit)
	}
	if deps[0].Kind != berth.KindRollback {
		t.Errorf("newest deployment kind %s, want rollback", deps[0].Kind)
	}
	if table := s.berth("deployments", "hello"); !strings.Contains(table, "rolled_back") || !strings.Contains(table, "build") {
		t.Errorf("deployments table lacks statuses or stage timings:\n%s", table)
	}

	// Runtime logs of the live containers.
	if logs := s.berth("logs", "hello", "--tail", "10"); !strings.Contains(logs, `app "hello-v1" listening`) {
		t.Errorf("logs:\n%s", logs)
	}

	// The control plane restarts; the store keeps everything, the app keeps serving.
	s.stop()
	s.wantAnswer("hello.localhost", "hello-v1 greeting=hi release=v2")
	s.start()
	var env []berth.EnvVar
	mustJSON(t, s.berth("env", "list", "hello", "-o", "json"), &env)
	if len(env) != 1 || env[0].Key != "GREETING" || env[0].Value != "hi" {
		t.Errorf("env after restart: %+v", env)
	}
	s.wantAnswer("hello.localhost", "hello-v1 greeting=hi release=v2")
}

func mustJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
}
