package web_test

import (
	"bufio"
	"context"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/engine"
)

func TestAppPageRuntimeLog(t *testing.T) {
	e := newEnv(t)
	e.fakes.Runtime.LogText = "\x1b[32mready\x1b[0m on <b>8080</b>\nGET / 200\n"
	b := e.login(ownerEmail)
	if p := b.post("/apps/new", "/apps/new", url.Values{"name": {"web"}, "git": {"https://git.example.com/web.git"}}); p.status != http.StatusSeeOther {
		t.Fatalf("create = %d: %s", p.status, p.body)
	}
	want(t, b.get("/apps/web"), 200, `id="runlog-none"`, "Nothing runs yet")
	b.deployLive("web")

	// Without script: the last lines, coloured and escaped; the stream to
	// follow them is named for app.js, and the controls it shows.
	page := b.get("/apps/web")
	want(t, page, 200, `id="runlog"`, `role="log"`, `<span class="fg2">ready</span>`, "on &lt;b&gt;8080&lt;/b&gt;", "GET / 200",
		`data-stream="/api/v1/apps/web/logs?follow=true&amp;tail=0"`, `id="runlog-controls" hidden`, `id="runlog-pause"`, "The last 2 line(s)", `<li class="line">d1-r1 | <span class="fg2">ready</span>`)
	if strings.Contains(page.body, "<b>8080</b>") || strings.Contains(page.body, "\x1b") {
		t.Error("the runtime log is not escaped")
	}

	// The stream answers the browser's session as Server-Sent Events.
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/apps/web/logs?follow=true&tail=0", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("stream = %d %s", resp.StatusCode, ct)
	}
	var events []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if ev, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
			events = append(events, ev)
		}
	}
	// The replica's two lines, then the end (the fake's containers do
	// not keep running).
	if !slices.Equal(events, []string{"log", "log", "end"}) {
		t.Errorf("events %q, want log lines then end", events)
	}
}

func TestAppPageReleasesAndSettings(t *testing.T) {
	e := newEnv(t, func(c *engine.Config) { c.KeepReleases = 2 })
	b := e.login(ownerEmail)
	if p := b.post("/apps/new", "/apps/new", url.Values{"name": {"web"}, "git": {"https://git.example.com/web.git"}, "port": {"8080"}}); p.status != http.StatusSeeOther {
		t.Fatalf("create = %d: %s", p.status, p.body)
	}
	for range 3 {
		b.deployLive("web")
	}
	// v3 is live, v2 can be rolled back to, v1's image is gone.
	page := b.get("/apps/web")
	rows := map[string]string{}
	for _, m := range regexp.MustCompile(`(?s)<tr data-release="(\d)">(.*?)</tr>`).FindAllStringSubmatch(page.body, -1) {
		rows[m[1]] = m[2]
	}
	if len(rows) != 3 {
		t.Fatalf("release rows %v", slices.Collect(maps.Keys(rows)))
	}
	for n, wantText := range map[string]string{"3": "live", "2": "Roll back to v2", "1": "image collected"} {
		if !strings.Contains(rows[n], wantText) {
			t.Errorf("release v%s: %q, want %q", n, rows[n], wantText)
		}
	}
	if strings.Contains(rows["3"], "Roll back") || strings.Contains(rows["1"], "Roll back") {
		t.Error("a rollback offered to the live release or to one whose image is gone")
	}

	// A refused settings form comes back with what was typed, the error
	// next to it.
	form := url.Values{"kind": {"git"}, "git": {"https://git.example.com/web.git"}, "ref": {"dev"}, "port": {"9999"},
		"replicas": {"2"}, "memory_mb": {"256"}, "cpus": {"0.5"}, "health_path": {"/up"}, "health_interval": {"soon"},
		"health_timeout": {"2s"}, "health_threshold": {"1"}, "health_deadline": {"30s"}, "volumes": {"data:/data"},
		"dockerfile": {"build/Dockerfile"}, "context": {"."}, "target": {"prod"}, "args": {"GO_VERSION=1.26\nCGO_ENABLED=0"}}
	p := b.post("/apps/web", "/apps/web/settings", form)
	want(t, p, http.StatusBadRequest, "health check interval", `value="soon"`, `value="9999"`, `value="build/Dockerfile"`, "CGO_ENABLED=0", `action="/apps/web/settings#settings-card"`)
	if !errorIn(p.body, "settings-card") || strings.Count(p.body, `id="error"`) != 1 {
		t.Errorf("the refusal is not shown once, next to the settings form")
	}
	a, err := e.st.App(context.Background(), e.team("main").ID, "web")
	if err != nil || a.Port != 8080 {
		t.Fatalf("a refused form changed the app: port %d, %v", a.Port, err)
	}

	form.Set("health_interval", "1s")
	if p := b.post("/apps/web", "/apps/web/settings", form); p.status != http.StatusSeeOther || p.location != "/apps/web?done=settings#settings" {
		t.Fatalf("settings = %d → %q: %s", p.status, p.location, p.body)
	}
	want(t, b.get("/apps/web?done=settings"), 200, `id="settings-saved"`, `value="9999"`, "CGO_ENABLED=0\nGO_VERSION=1.26")
	// Build args are replaced, not merged: a line removed is an arg gone.
	form.Set("args", "GO_VERSION=1.27")
	if p := b.post("/apps/web", "/apps/web/settings", form); p.status != http.StatusSeeOther {
		t.Fatalf("settings = %d: %s", p.status, p.body)
	}
	a, err = e.st.App(context.Background(), e.team("main").ID, "web")
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(a.Build.Args, map[string]string{"GO_VERSION": "1.27"}) || a.Build.Dockerfile != "build/Dockerfile" || a.Build.Target != "prod" ||
		a.Port != 9999 || a.Replicas != 2 || a.Resources.MemoryMB != 256 || a.Health.Path != "/up" || len(a.Volumes) != 1 {
		t.Errorf("saved app %+v", a)
	}
	form.Set("args", "no equals sign")
	want(t, b.post("/apps/web", "/apps/web/settings", form), http.StatusBadRequest, "one KEY=value per line", "no equals sign")

	// The domain form keeps its value after a refusal, next to it.
	p = b.post("/apps/web", "/apps/web/domains", url.Values{"host": {"not a host"}})
	want(t, p, http.StatusBadRequest, `value="not a host"`)
	if !errorIn(p.body, "domains") {
		t.Error("the domain refusal is not next to the domain form")
	}
}

func TestDeploymentPageStages(t *testing.T) {
	e := newEnv(t)
	b := e.login(ownerEmail)
	if p := b.post("/apps/new", "/apps/new", url.Values{"name": {"web"}, "git": {"https://git.example.com/web.git"}}); p.status != http.StatusSeeOther {
		t.Fatalf("create = %d: %s", p.status, p.body)
	}
	dep := b.get(b.deployLive("web"))
	// The final values: every stage with its time, and when it finished.
	want(t, dep, 200, `id="stages"`, `data-stage="building"`, `data-stage="switching"`, `id="finished">Finished `, `id="dep-error" hidden`)
	if strings.Contains(dep.body, " …</span>") {
		t.Errorf("a stage of a live deployment still runs:\n%s", dep.body)
	}
	for _, st := range []berth.Status{berth.StatusFetching, berth.StatusBuilding, berth.StatusStarting, berth.StatusVerifying, berth.StatusSwitching} {
		if !regexp.MustCompile(`data-stage="` + string(st) + `">` + string(st) + ` [0-9.]+(ms|s)</span>`).MatchString(dep.body) {
			t.Errorf("stage %s has no time", st)
		}
	}
}
