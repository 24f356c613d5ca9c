package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/api"
)

func TestPreviewsCLI(t *testing.T) {
	c := newCLI(t)
	c.login()
	c.ok("apps", "create", "web", "--git", "https://git.example.com/web.git")
	c.ok("domains", "add", "web", "web.example.com")
	if out := c.ok("previews", "settings", "web"); !strings.Contains(out, "Previews:      off") || !strings.Contains(out, "Status token:  not set") {
		t.Errorf("default settings:\n%s", out)
	}
	c.env["GITHUB_STATUS_TOKEN"] = "ghp_from-the-environment"
	out := c.ok("previews", "settings", "web", "--enable", "--max", "2", "--ttl", "3d", "--env", "DB=preview-db",
		"--status-token-env", "GITHUB_STATUS_TOKEN")
	for _, want := range []string{"Previews:      on", "Max previews:  2", "72h0m0s after the last push", "Status token:  set", "DB=preview-db"} {
		if !strings.Contains(out, want) {
			t.Errorf("settings output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "ghp_from") {
		t.Error("the token was printed")
	}
	if msg := c.fail("previews", "settings", "web", "--status-token-env", "UNSET_VARIABLE"); !strings.Contains(msg, "empty or not set") {
		t.Errorf("missing token variable: %q", msg)
	}
	if msg := c.fail("previews", "settings", "web", "--enable", "--disable"); !strings.Contains(msg, "not both") {
		t.Errorf("--enable --disable: %q", msg)
	}
	if msg := c.fail("previews", "settings", "web", "--ttl", "forever"); !strings.Contains(msg, "ttl") {
		t.Errorf("bad ttl: %q", msg)
	}
	js := jsonOf[api.PreviewSettings](t, c.ok("previews", "settings", "web", "-o", "json"))
	if !js.Enabled || !js.StatusTokenSet || js.MaxPreviews != 2 {
		t.Errorf("settings as JSON %+v", js)
	}
	if got := jsonOf[[]berth.Preview](t, c.ok("previews", "list", "web", "-o", "json")); len(got) != 0 {
		t.Errorf("previews before any pull request: %+v", got)
	}

	// A fork's pull request, delivered as a webhook would.
	ctx := context.Background()
	head := strings.Repeat("a", 40)
	outcome, err := api.NewClient(c.url, c.admin, nil).PullRequestEvent(ctx, "web", berth.PullRequest{
		Provider: berth.GitHub, Repo: "acme/web", Number: 7, Action: berth.PullRequestOpened, BaseRef: "main",
		HeadRef: "feature", HeadSHA: head, FetchRef: "refs/pull/7/head", Fork: true})
	if err != nil || !strings.Contains(outcome, "pr-7.web.example.com") {
		t.Fatalf("event: %q, %v", outcome, err)
	}
	var table string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if table = c.ok("previews", "list", "web"); strings.Contains(table, "live") {
			break
		}
	}
	r := rows(table)
	if len(r) != 2 || r[1][0] != "#7" || r[1][1] != "live" || r[1][2] != "https://pr-7.web.example.com" || r[1][3] != head[:12] ||
		r[1][4] != "unapproved" || r[1][5] != "web-pr-7" {
		t.Errorf("previews table:\n%s", table)
	}

	if msg := c.fail("previews", "approve", "web", "7", "--sha", strings.Repeat("b", 40)); !strings.Contains(msg, "review the new commits") {
		t.Errorf("approving another commit: %q", msg)
	}
	if out := c.ok("previews", "approve", "web", "#7", "--sha", head); !strings.Contains(out, "Approved commit "+head[:12]) {
		t.Errorf("approve: %q", out)
	}
	if msg := c.fail("previews", "approve", "web", "seven"); !strings.Contains(msg, "use its number") {
		t.Errorf("bad number: %q", msg)
	}
	if out := c.ok("previews", "delete", "web", "7"); !strings.Contains(out, "Tearing down the preview of pull request #7 (web-pr-7)") {
		t.Errorf("delete: %q", out)
	}
	if msg := c.fail("previews", "delete", "web", "8"); !strings.Contains(msg, "no preview of pull request #8") {
		t.Errorf("delete a missing preview: %q", msg)
	}
}
