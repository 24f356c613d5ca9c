package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium.
const chromiumPath = "/usr/bin/chromium"

// screenshotDir is where the browser test saves a screenshot of every page
// (named in the README), relative to this package.
var screenshotDir = filepath.Join("..", "artifacts", "screenshots")

// TestBrowser is issue 5's browser path against the real server: sign in,
// create an app from a git repository, deploy it and watch its log stream,
// set an env var, roll back, invite a member, create and revoke a token —
// asserting what a person sees, failing on any console error or uncaught
// exception, and saving screenshots of every page at desktop and phone
// widths in both themes.
func TestBrowser(t *testing.T) {
	if _, err := exec.LookPath(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium not found at %s: CI needs it (apt-get install chromium)", chromiumPath)
		}
		t.Skipf("chromium not found at %s: skipping the browser test", chromiumPath)
	}
	berthBin, appBin := binaries(t)
	_, repoURL := appRepo(t, appBin, "hello", appDockerfile, "hello-v1")
	s := startServer(t, berthBin)
	token, err := os.ReadFile(filepath.Join(s.data, "bootstrap-token"))
	if err != nil {
		t.Fatal(err)
	}
	const email, password = "admin@example.com", "correct horse battery"
	req, _ := http.NewRequest("PUT", s.api+"/api/v1/me/password",
		strings.NewReader(`{"new_password":"`+password+`","email":"`+email+`"}`))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("set the admin's password: %v %v", resp, err)
	}
	resp.Body.Close()
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.WindowSize(1280, 800),
	}
	var mu sync.Mutex
	var problems []string
	listen := func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var args []string
				for _, a := range ev.Args {
					args = append(args, a.Description+string(a.Value))
				}
				problems = append(problems, "console error: "+strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			problems = append(problems, fmt.Sprintf("uncaught exception: %s at %s:%d", d.Text, d.URL, d.LineNumber))
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError {
				problems = append(problems, "browser error: "+ev.Entry.Text+" "+ev.Entry.URL)
			}
		}
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithListener(listen))
	defer cancelCtx()
	if _, err := chromedp.Call(ctx, runtime.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, log.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	// Limit each step, not the browser's context (see chromedp.Run).
	step := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 2*time.Minute) }

	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := step()
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			t.Fatalf("%s: %v\nserver log:\n%s", what, err, s.serverLog())
		}
	}
	text := func(sel string) string {
		t.Helper()
		sctx, cancel := step()
		defer cancel()
		v, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return v
	}
	wantText := func(sel, want string) {
		t.Helper()
		if got := text(sel); !strings.Contains(got, want) {
			t.Errorf("%s shows %q, want it to contain %q", sel, got, want)
		}
	}
	count := func(sel string) int {
		t.Helper()
		sctx, cancel := step()
		defer cancel()
		n, err := chromedp.Run(sctx, chromedp.Evaluate[int]("document.querySelectorAll("+strconv.Quote(sel)+").length"))
		if err != nil {
			t.Fatalf("count %s: %v", sel, err)
		}
		return n
	}
	// waitStatus waits until the deployment page's #status reads want.
	waitStatus := func(want string) {
		t.Helper()
		deadline := time.Now().Add(4 * time.Minute)
		for {
			got := text("#status")
			if got == want {
				return
			}
			if got == "failed" || got == "cancelled" || time.Now().After(deadline) {
				t.Fatalf("#status = %q, want %q\nserver log:\n%s", got, want, s.serverLog())
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	shot := func(name string) {
		t.Helper()
		for _, size := range []struct{ w, h int64 }{{1280, 800}, {375, 812}} {
			for _, theme := range []string{"light", "dark"} {
				if _, err := chromedp.Call(ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
					Width: size.w, Height: size.h, DeviceScaleFactor: 1, Mobile: size.w < 600}); err != nil {
					t.Fatal(err)
				}
				if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
					Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: theme}}}); err != nil {
					t.Fatal(err)
				}
				time.Sleep(150 * time.Millisecond)
				sctx, cancel := step()
				png, err := chromedp.Run(sctx, chromedp.CaptureScreenshot())
				cancel()
				if err != nil {
					t.Fatalf("screenshot %s: %v", name, err)
				}
				file := filepath.Join(screenshotDir, fmt.Sprintf("%s-%dx%d-%s.png", name, size.w, size.h, theme))
				if err := os.WriteFile(file, png, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		if _, err := chromedp.Call(ctx, emulation.ClearDeviceMetricsOverride, cdp.Empty{}); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{}); err != nil {
			t.Fatal(err)
		}
	}

	// Sign in.
	run("login page", chromedp.Navigate(s.api+"/login"), chromedp.WaitVisible(chromedp.CSS("#login")))
	shot("login")
	run("sign in",
		chromedp.SendKeys(chromedp.CSS("#email"), email),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Submit(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#no-apps")))
	wantText("#current-team", "main")
	shot("apps-empty")

	// Create the app.
	run("new app", chromedp.Navigate(s.api+"/apps/new"), chromedp.WaitVisible(chromedp.CSS("#app-create")))
	shot("app-new")
	run("create app",
		chromedp.SendKeys(chromedp.CSS("#name"), "hello"),
		chromedp.SendKeys(chromedp.CSS("#git"), repoURL),
		chromedp.SendKeys(chromedp.CSS("#ref"), "main"),
		chromedp.SendKeys(chromedp.CSS("#port"), "8080"),
		chromedp.Submit(chromedp.CSS("#app-create")),
		chromedp.WaitVisible(chromedp.CSS("#deploy")))
	wantText("h1", "hello")
	wantText("#live-release", "Nothing live yet")
	run("add domain",
		chromedp.SendKeys(chromedp.CSS("#host"), "hello.localhost"),
		chromedp.Submit(chromedp.CSS("#domain-add")),
		chromedp.WaitVisible(chromedp.CSS("#domains li")))
	wantText("#domains", "hello.localhost")

	// Deploy and watch the log stream in.
	run("deploy", chromedp.Submit(chromedp.CSS("#deploy")), chromedp.WaitVisible(chromedp.CSS("#log")))
	waitStatus("live")
	lines := count("#log .line")
	if lines == 0 {
		t.Errorf("#log shows no lines after the deployment went live")
	}
	shot("deployment")
	s.wantAnswer("hello.localhost", "hello-v1")

	// A second release, to roll back from.
	run("app page", chromedp.Navigate(s.api+"/apps/hello"), chromedp.WaitVisible(chromedp.CSS("#deploy")))
	run("deploy again", chromedp.Submit(chromedp.CSS("#deploy")), chromedp.WaitVisible(chromedp.CSS("#log")))
	waitStatus("live")

	// Env var.
	run("env page", chromedp.Navigate(s.api+"/apps/hello/env"), chromedp.WaitVisible(chromedp.CSS("#env-set")))
	run("set env",
		chromedp.SendKeys(chromedp.CSS("#key"), "GREETING"),
		chromedp.SendKeys(chromedp.CSS("#value"), "bonjour"),
		chromedp.Submit(chromedp.CSS("#env-set")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-key="GREETING"]`)))
	wantText("#env", "••••")
	if strings.Contains(text("#env"), "bonjour") {
		t.Error("the env page shows a secret value")
	}
	shot("env")

	// Roll back to v1.
	run("app page", chromedp.Navigate(s.api+"/apps/hello"), chromedp.WaitVisible(chromedp.CSS(`tr[data-release="1"] form.rollback`)))
	wantText("#live-release", "v2")
	shot("app")
	run("roll back", chromedp.Submit(chromedp.CSS(`tr[data-release="1"] form.rollback`)), chromedp.WaitVisible(chromedp.CSS("#log")))
	waitStatus("live")
	run("app page", chromedp.Navigate(s.api+"/apps/hello"), chromedp.WaitVisible(chromedp.CSS("#live-release")))
	wantText("#live-release", "v1")
	run("apps", chromedp.Navigate(s.api+"/apps"), chromedp.WaitVisible(chromedp.CSS(`#apps tr[data-app="hello"]`)))
	wantText(`#apps tr[data-app="hello"]`, "live")
	shot("apps")

	// Invite a member.
	run("members", chromedp.Navigate(s.api+"/members"), chromedp.WaitVisible(chromedp.CSS("#invite")))
	run("invite",
		chromedp.SendKeys(chromedp.CSS("#inv-email"), "dev@example.com"),
		chromedp.Submit(chromedp.CSS("#invite")),
		chromedp.WaitVisible(chromedp.CSS("#invite-secret")))
	wantText("#invite-secret", "berthinv_")
	wantText("#invitations", "dev@example.com")
	shot("members")

	// Create and revoke a token.
	run("tokens", chromedp.Navigate(s.api+"/tokens"), chromedp.WaitVisible(chromedp.CSS("#token-create")))
	run("create token",
		chromedp.SendKeys(chromedp.CSS("#tok-name"), "ci"),
		chromedp.Submit(chromedp.CSS("#token-create")),
		chromedp.WaitVisible(chromedp.CSS("#token-secret")))
	wantText("#token-secret", "berth_")
	wantText(`tr[data-token="ci"]`, "read")
	shot("tokens")
	run("revoke token", chromedp.Submit(chromedp.CSS(`tr[data-token="ci"] form.revoke`)), chromedp.WaitVisible(chromedp.CSS("#token-create")))
	if count(`tr[data-token="ci"]`) != 0 {
		t.Error("the revoked token is still listed")
	}

	run("audit", chromedp.Navigate(s.api+"/audit"), chromedp.WaitVisible(chromedp.CSS("#audit")))
	wantText("#audit", "token.revoke")
	shot("audit")
	run("server", chromedp.Navigate(s.api+"/server"), chromedp.WaitVisible(chromedp.CSS("#health-docker")))
	wantText("#health-docker", "ok")
	shot("server")

	// The theme button overrides the preference.
	theme := func() string {
		t.Helper()
		sctx, cancel := step()
		defer cancel()
		v, err := chromedp.Run(sctx, chromedp.Evaluate[string](`document.documentElement.getAttribute("data-theme") || ""`))
		if err != nil {
			t.Fatalf("read data-theme: %v", err)
		}
		return v
	}
	before := text("#theme")
	run("theme", chromedp.Click(chromedp.CSS("#theme")))
	first := theme()
	run("theme again", chromedp.Click(chromedp.CSS("#theme")))
	if second := theme(); first != "light" && first != "dark" || second == first || second == "" {
		t.Errorf("#theme (%q) set data-theme to %q, then %q; want light and dark in turn", before, first, second)
	}

	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Error(p)
	}
}
