package web_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestLongBuildLog checks that the page of a deployment whose log has
// 5,000 lines stays under the 100 KB budget: it shows the last lines, says
// how many it leaves out and links to the whole log, and its live stream
// starts after the last line it shows.
func TestLongBuildLog(t *testing.T) {
	e := newEnv(t)
	b := e.login(ownerEmail)
	b.createApp("web")
	path := b.deployLive("web")

	// Fill the deployment's log up to 5,000 lines.
	m := regexp.MustCompile(`data-stream="/api/v1/apps/web/deployments/([^/"]+)/log`).FindStringSubmatch(b.get(path).body)
	if m == nil {
		t.Fatal("no log stream on the deployment page")
	}
	ctx := context.Background()
	team, id := e.team("main").ID, m[1]
	logged, err := e.st.Logs(ctx, team, id, 0, 0)
	if err != nil || len(logged) == 0 {
		t.Fatalf("the deployment's log: %d lines, %v", len(logged), err)
	}
	const total = 5000
	var more []string
	for i := len(logged) + 1; i <= total; i++ {
		more = append(more, fmt.Sprintf("\x1b[36mStep %d\x1b[0m : RUN npm ci --omit=dev; added %d packages in %ds", i, i*3, i%9))
	}
	if err := e.st.AppendLog(ctx, team, id, time.Now(), more...); err != nil {
		t.Fatal(err)
	}

	page := b.get(path)
	want(t, page, 200, `id="log-hidden"`, "4500 earlier lines not shown", "download the full log",
		`<span class="fg6">Step 5000</span>`, `<span class="fg6">Step 4501</span>`)
	if len(page.body) >= 100<<10 {
		t.Errorf("the page has %d bytes, want under 100 KB", len(page.body))
	}
	if strings.Contains(page.body, ">Step 4500<") {
		t.Error("the page shows a line before the last 500")
	}
	if n := strings.Count(page.body, `<li class="line">`); n != 500 {
		t.Errorf("%d lines shown, want 500", n)
	}
	if m := regexp.MustCompile(`data-stream="([^"]+)"`).FindStringSubmatch(page.body); m == nil || !strings.HasSuffix(html.UnescapeString(m[1]), "/log?after=5000") {
		t.Errorf("the live stream does not start after line 5000: %q", m)
	}

	// The link serves the whole log as text to the signed-in browser.
	m = regexp.MustCompile(`<a href="([^"]+)" download="web-deployment-1.log">download the full log`).FindStringSubmatch(page.body)
	if m == nil {
		t.Fatalf("no link to the full log:\n%s", page.body)
	}
	full := b.get(html.UnescapeString(m[1]))
	if full.status != http.StatusOK || !strings.HasPrefix(full.contentType, "text/plain") {
		t.Fatalf("full log = %d %s", full.status, full.contentType)
	}
	lines := strings.Split(strings.TrimSuffix(full.body, "\n"), "\n")
	if len(lines) != total || !strings.Contains(lines[total-1], "Step 5000") || lines[0] != logged[0].Text {
		t.Errorf("the full log has %d lines, want %d from the first to Step 5000", len(lines), total)
	}

	// A short log is shown whole, without the notice.
	short := b.get(b.deployLive("web"))
	if strings.Contains(short.body, `id="log-hidden"`) || !strings.Contains(short.body, `class="line"`) {
		t.Errorf("a short log: notice shown or no lines:\n%s", short.body)
	}
}
