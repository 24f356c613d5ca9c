package e2e

import (
	"bufio"
	"bytes"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/git/gittest"
)

// TestPushToDeploy deploys with `git push` to berth's hosted remote, with
// the real git client, binary, Docker and proxy: the build and deploy log
// comes back as "remote: …" lines while the deployment runs; a commit that
// fails (an app that exits at start) or a push cancelled mid-deploy fails
// git push, leaves the branch where it was and the old release serving; a
// wrong token is refused as failed authentication and another team's token
// finds no such repository, with nothing deployed.
func TestPushToDeploy(t *testing.T) {
	berthBin, appBin := binaries(t)
	s := startServer(t, berthBin)
	s.login()
	s.berth("apps", "create", "pushed", "--push", "--port", "8080", "--health-deadline", "5m")
	s.berth("domains", "add", "pushed", "pushed.localhost")
	var tok struct {
		Secret string `json:"secret"`
	}
	mustJSON(t, s.berth("tokens", "create", "ci", "--scopes", "deploy", "-o", "json"), &tok)
	remote := strings.TrimSpace(s.berth("git-remote", "pushed"))
	if remote != s.api+"/git/pushed.git" {
		t.Fatalf("git-remote = %q", remote)
	}
	withToken := func(secret string) string {
		u, err := url.Parse(remote)
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.UserPassword("ci", secret)
		return u.String()
	}

	app, err := os.ReadFile(appBin)
	if err != nil {
		t.Fatal(err)
	}
	repo := gittest.NewRepo(t)
	repo.Write("Dockerfile", appDockerfile)
	repo.Write("app", string(app))
	if err := os.Chmod(filepath.Join(repo.Dir(), "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	repo.Write("message.txt", "pushed-v1\n")
	v1 := repo.Commit("v1")
	repo.Git("remote", "add", "berth", withToken(tok.Secret))

	_, stderr, err := repo.Try(nil, "push", "berth", "main")
	if err != nil {
		t.Fatalf("git push: %v\n%s", err, stderr)
	}
	if !gittest.InOrder(stderr,
		"remote: berth: deployment #1 of pushed: commit "+v1[:12],
		"remote: ==> commit "+v1+", pushed to main",
		"remote: ==> building",
		"remote: ==> built image",
		"remote: ==> release v1",
		"remote: ==> health check",
		"remote: ==> live",
		"remote: berth: deployment #1 is live",
		"main -> main") {
		t.Errorf("git push output lacks the build and deploy log in order:\n%s", stderr)
	}
	s.wantAnswer("pushed.localhost", "pushed-v1 greeting= release=v1")
	if got := repo.RemoteHead("berth", "main"); got != v1 {
		t.Errorf("remote main = %q, want %s", got, v1)
	}

	// Live, not at the end: a release that takes minutes to start is seen
	// verifying while its health check line is on the pusher's screen;
	// then the deployment is cancelled, which fails the push.
	s.berth("env", "set", "pushed", "STARTUP_DELAY=10m")
	repo.Write("message.txt", "pushed-slow\n")
	repo.Commit("slow")
	cmd := repo.Command(nil, "push", "berth", "main")
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var seen bytes.Buffer
	sc := bufio.NewScanner(pipe)
	sc.Split(scanLines)
	cancelled := false
	for sc.Scan() {
		seen.WriteString(sc.Text() + "\n")
		if !cancelled && strings.Contains(sc.Text(), "remote: ==> health check") {
			var d berth.Deployment
			mustJSON(t, s.berth("deployment", "pushed", "2", "-o", "json"), &d)
			if d.Status != berth.StatusVerifying {
				t.Errorf("deployment #2 is %s while git shows its health check line, want verifying", d.Status)
			}
			s.berth("deploy", "pushed", "--cancel")
			cancelled = true
		}
	}
	if err := cmd.Wait(); err == nil {
		t.Errorf("a push whose deployment was cancelled succeeded:\n%s", seen.String())
	}
	if !cancelled || !strings.Contains(seen.String(), "remote: berth: deployment #2 cancelled") || !strings.Contains(seen.String(), "pre-receive hook declined") {
		t.Errorf("cancelled push output:\n%s", seen.String())
	}
	s.berth("env", "unset", "pushed", "STARTUP_DELAY")
	s.wantAnswer("pushed.localhost", "pushed-v1 greeting= release=v1")
	if got := repo.RemoteHead("berth", "main"); got != v1 {
		t.Errorf("remote main = %q after a cancelled push, want %s", got, v1)
	}

	// A broken commit: the app exits at start. git push fails with the
	// reason; v1 keeps serving; main stays at v1.
	repo.Write("message.txt", "crash\n")
	repo.Commit("broken")
	_, stderr, err = repo.Try(nil, "push", "berth", "main")
	if err == nil {
		t.Fatalf("a push whose app crashes succeeded:\n%s", stderr)
	}
	for _, want := range []string{"remote: ==> deploy failed: health check", "crashing on purpose", "remote: berth: deployment #3 failed",
		"remote: berth: push refused: main stays at " + v1[:12], "[remote rejected] main -> main (pre-receive hook declined)"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("failed push output lacks %q:\n%s", want, stderr)
		}
	}
	s.wantAnswer("pushed.localhost", "pushed-v1 greeting= release=v1")
	if got := repo.RemoteHead("berth", "main"); got != v1 {
		t.Errorf("remote main = %q after a failed push, want %s", got, v1)
	}

	// A wrong token: authentication failed, nothing deployed.
	_, stderr, err = repo.Try(nil, "push", withToken("berth_"+strings.Repeat("x", 52)), "main")
	if err == nil || !strings.Contains(stderr, "Authentication failed") {
		t.Errorf("push with a wrong token: %v\n%s", err, stderr)
	}
	// Another team's token: no such repository, nothing deployed.
	var team struct {
		Token struct {
			Secret string `json:"secret"`
		} `json:"token"`
	}
	mustJSON(t, s.berth("teams", "create", "others", "-o", "json"), &team)
	_, stderr, err = repo.Try(nil, "push", withToken(team.Token.Secret), "main")
	if err == nil || !strings.Contains(stderr, `remote: berth: no app named "pushed"`) || !strings.Contains(stderr, "not found") {
		t.Errorf("push with another team's token: %v\n%s", err, stderr)
	}
	var ds []berth.Deployment
	mustJSON(t, s.berth("deployments", "pushed", "-o", "json"), &ds)
	if len(ds) != 3 {
		t.Errorf("%d deployments, want 3 (refused pushes deploy nothing)", len(ds))
	}

	// Redeploy from the CLI: the newest commit pushed to main, v1 (as
	// release v4: the cancelled and the failed deployments made v2 and v3).
	s.berth("deploy", "pushed")
	s.wantAnswer("pushed.localhost", "pushed-v1 greeting= release=v4")
	var audit []berth.AuditEvent
	mustJSON(t, s.berth("audit", "--action", "app.push", "-o", "json"), &audit)
	if len(audit) != 3 {
		// The wrong token's attempt has no team; the other team's is in
		// its own log.
		t.Errorf("%d app.push audit events, want one per push of this team (3): %+v", len(audit), audit)
	}
}

// scanLines splits git's output at \n and at the \r of progress lines.
func scanLines(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}
