package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
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
	"github.com/pquerna/otp/totp"
)

// chromiumPath is Debian's chromium.
const chromiumPath = "/usr/bin/chromium"

// screenshotDir is where the browser test saves a screenshot of every page
// (named in the README), relative to this package.
var screenshotDir = filepath.Join("..", "artifacts", "screenshots")

// TestBrowser is issue 5's browser path against the real server: sign in,
// create an app from a git repository, deploy it and watch its log stream
// and stage timings, follow the app's runtime log (pause, resume, clear),
// set an env var, roll back, create and delete a project, switch team,
// invite a member, create and revoke a token, change the password and set
// up TOTP — asserting what a person sees, failing on any console error or
// uncaught exception, and saving screenshots of every page at desktop and
// phone widths in both themes.
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
	// resubmit submits form, whose page leads back to itself, and waits for
	// wait on the new page: the old page is marked first, since its nodes
	// match too and reading one races its replacement.
	resubmit := func(form, wait string) []chromedp.Action[chromedp.Void] {
		return []chromedp.Action[chromedp.Void]{
			chromedp.Evaluate[chromedp.Void](`document.body.dataset.old = "1"`),
			chromedp.Submit(chromedp.CSS(form)),
			chromedp.WaitVisible(chromedp.CSS("body:not([data-old]) " + wait)),
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
	// waitText waits until the text of sel contains want.
	waitText := func(sel, want string) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			got := text(sel)
			if strings.Contains(got, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s shows %q, want it to contain %q\nserver log:\n%s", sel, got, want, s.serverLog())
			}
			time.Sleep(200 * time.Millisecond)
		}
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

	// Deploy and watch the log stream in, with the status and the stage
	// timings updated in place.
	run("deploy", chromedp.Submit(chromedp.CSS("#deploy")), chromedp.WaitVisible(chromedp.CSS("#log")))
	waitStatus("live")
	lines := count("#log .line")
	if lines == 0 {
		t.Errorf("#log shows no lines after the deployment went live")
	}
	if count("#stages[data-updated]") != 1 {
		t.Error("the stage timings were not updated live")
	}
	for _, stage := range []string{"fetching", "building", "starting", "verifying", "switching"} {
		if got := text(`#stages span[data-stage="` + stage + `"]`); !strings.HasPrefix(got, stage+" ") || strings.Contains(got, "…") {
			t.Errorf("stage %s shows %q, want its final time", stage, got)
		}
	}
	wantText("#finished", "Finished ")
	if count("#cancel") != 0 {
		t.Error("an ended deployment still offers Cancel")
	}
	shot("deployment")
	s.wantAnswer("hello.localhost", "hello-v1")

	// The app's runtime log: its last lines, then what it writes as it
	// runs, in colour; paused lines are held until resumed.
	run("app page", chromedp.Navigate(s.api+"/apps/hello"), chromedp.WaitVisible(chromedp.CSS("#runlog-controls")))
	waitText("#runlog", "listening on :8080")
	waitText("#runlog-state", "Following live")
	say := func(text string) {
		t.Helper()
		if code, body := s.get("hello.localhost", "/say?text="+url.QueryEscape(text)); code != 200 {
			t.Fatalf("GET /say: %d %s", code, body)
		}
	}
	say("\x1b[31mred alert\x1b[0m <b>not bold</b>")
	waitText("#runlog span.fg1", "red alert")
	waitText("#runlog", "<b>not bold</b>")
	run("pause", chromedp.Click(chromedp.CSS("#runlog-pause")))
	say("held line")
	waitText("#runlog-state", "1 new line(s) held")
	if strings.Contains(text("#runlog"), "held line") {
		t.Error("a paused runtime log shows a new line")
	}
	shot("app-runtime-log")
	run("resume", chromedp.Click(chromedp.CSS("#runlog-pause")))
	waitText("#runlog", "held line")
	run("clear", chromedp.Click(chromedp.CSS("#runlog-clear")))
	if n := count("#runlog .line"); n != 0 {
		t.Errorf("#runlog has %d lines after Clear", n)
	}

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
	// The list follows deployments live: one started elsewhere (here the
	// API) shows up in the row, and goes live there, without a reload.
	if code, body := apiPost(t, s.api, apiLogin(t, s.api, email, password), "/api/v1/apps/hello/deployments", `{}`); code/100 != 2 {
		t.Fatalf("deploy through the API: %d %s", code, body)
	}
	waitText(`#apps tr[data-app="hello"] td.last`, "#4")
	waitText(`#apps tr[data-app="hello"] .status`, "live")

	// Projects: the default one holds the app; a new one is created
	// empty (and deleted once a member's grant to it is shown).
	run("projects", chromedp.Navigate(s.api+"/projects"), chromedp.WaitVisible(chromedp.CSS("#project-create")))
	wantText(`tr[data-project="default"]`, "1 app")
	if count(`tr[data-project="default"] a[href="/apps?project=default"]`) != 1 {
		t.Error("the default project does not link to its apps")
	}
	run("create project",
		chromedp.SendKeys(chromedp.CSS("#project-name"), "shop"),
		chromedp.Submit(chromedp.CSS("#project-create")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-project="shop"]`)))
	wantText(`tr[data-project="shop"]`, "0 apps")
	shot("projects")

	// Team switching: a second team, made through the API, is one click
	// away in the header; the session moves there and back.
	apiToken := apiLogin(t, s.api, email, password)
	if code, body := apiPost(t, s.api, apiToken, "/api/v1/teams", `{"name":"blue"}`); code != http.StatusCreated {
		t.Fatalf("create team blue: %d %s", code, body)
	}
	run("apps", chromedp.Navigate(s.api+"/apps"), chromedp.WaitVisible(chromedp.CSS(`#apps tr[data-app="hello"]`)))
	run("open the switcher", chromedp.Click(chromedp.CSS("#team-switcher summary")), chromedp.WaitVisible(chromedp.CSS(`#teams li[data-team="blue"] button`)))
	shot("team-switcher")
	run("switch to blue", chromedp.Click(chromedp.CSS(`#teams li[data-team="blue"] button`)), chromedp.WaitVisible(chromedp.CSS("#no-apps")))
	wantText("#current-team", "blue")
	run("switch to main",
		chromedp.Click(chromedp.CSS("#team-switcher summary")),
		chromedp.Click(chromedp.CSS(`#teams li[data-team="main"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`#apps tr[data-app="hello"]`)))
	wantText("#current-team", "main")

	// Invite a member.
	run("members", chromedp.Navigate(s.api+"/members"), chromedp.WaitVisible(chromedp.CSS("#invite")))
	run("invite",
		chromedp.SendKeys(chromedp.CSS("#inv-email"), "dev@example.com"),
		chromedp.Submit(chromedp.CSS("#invite")),
		chromedp.WaitVisible(chromedp.CSS("#invite-secret")))
	wantText("#invite-secret", "berthinv_")
	wantText("#invitations", "dev@example.com")
	// Dev accepts (through the API); the owner narrows them to shop.
	accept := `{"secret":"` + strings.TrimSpace(text("#invite-code")) + `","name":"dev","password":"dev horse battery staple"}`
	if code, body := apiPost(t, s.api, "", "/api/v1/invitations/accept", accept); code != http.StatusOK {
		t.Fatalf("accept the invitation: %d %s", code, body)
	}
	run("members", chromedp.Navigate(s.api+"/members"), chromedp.WaitVisible(chromedp.CSS("form.projects")))
	run("tick shop", chromedp.Click(chromedp.CSS("form.projects label.check:last-of-type input")))
	run("grant shop", resubmit("form.projects", "form.projects")...)
	if n := count("form.projects input:checked"); n != 1 {
		t.Errorf("%d projects ticked for dev, want shop alone", n)
	}
	wantText("form.projects label.check:last-of-type", "shop")
	shot("members")
	run("projects", chromedp.Navigate(s.api+"/projects"), chromedp.WaitVisible(chromedp.CSS(`tr[data-project="shop"] form.delete`)))
	run("delete project", resubmit(`tr[data-project="shop"] form.delete`, "#project-create")...)
	if count(`tr[data-project="shop"]`) != 0 {
		t.Error("the deleted project is still listed")
	}

	// Create and revoke a token.
	run("tokens", chromedp.Navigate(s.api+"/tokens"), chromedp.WaitVisible(chromedp.CSS("#token-create")))
	run("create token",
		chromedp.SendKeys(chromedp.CSS("#tok-name"), "ci"),
		chromedp.Submit(chromedp.CSS("#token-create")),
		chromedp.WaitVisible(chromedp.CSS("#token-secret")))
	wantText("#token-secret", "berth_")
	wantText(`tr[data-token="ci"]`, "read")
	shot("tokens")
	run("revoke token", resubmit(`tr[data-token="ci"] form.revoke`, "#token-create")...)
	if count(`tr[data-token="ci"]`) != 0 {
		t.Error("the revoked token is still listed")
	}

	run("audit", chromedp.Navigate(s.api+"/audit"), chromedp.WaitVisible(chromedp.CSS("#audit")))
	wantText("#audit", "token.revoke")
	shot("audit")
	run("server", chromedp.Navigate(s.api+"/server"), chromedp.WaitVisible(chromedp.CSS("#health-docker")))
	wantText("#health-docker", "ok")
	shot("server")

	// The account page: change the password, set up TOTP with a code of
	// the secret shown (recovery codes once), turn it off, and sign in
	// again with the new password.
	const newPassword = "staple battery horse correct"
	run("account", chromedp.Navigate(s.api+"/account"), chromedp.WaitVisible(chromedp.CSS("#password-change")))
	wantText("#totp-status", "off")
	shot("account")
	run("change password",
		chromedp.SendKeys(chromedp.CSS("#current_password"), password),
		chromedp.SendKeys(chromedp.CSS("#new_password"), newPassword),
		chromedp.SendKeys(chromedp.CSS("#confirm_password"), newPassword),
		chromedp.Submit(chromedp.CSS("#password-change")),
		chromedp.WaitVisible(chromedp.CSS("#notice")))
	wantText("#notice", "Password changed")
	run("start TOTP",
		chromedp.SendKeys(chromedp.CSS("#totp-password"), newPassword),
		chromedp.Submit(chromedp.CSS("#totp-start")),
		chromedp.WaitVisible(chromedp.CSS("#enrolment svg.qr")))
	shot("account-totp")
	code, err := totp.GenerateCode(strings.TrimSpace(text("#totp-secret")), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	run("confirm TOTP",
		chromedp.SendKeys(chromedp.CSS("#totp-code"), code),
		chromedp.Submit(chromedp.CSS("#totp-confirm")),
		chromedp.WaitVisible(chromedp.CSS("#recovery-codes")))
	if n := count("#recovery-codes li"); n != 10 {
		t.Errorf("%d recovery codes shown, want 10", n)
	}
	wantText("#totp-status", "on")
	run("TOTP off",
		chromedp.SendKeys(chromedp.CSS("#totp-off-password"), newPassword),
		chromedp.Submit(chromedp.CSS("#totp-disable")),
		chromedp.WaitVisible(chromedp.CSS("#totp-start")))
	wantText("#totp-status", "off")
	run("sign out", chromedp.Click(chromedp.CSS("#team-switcher summary")), chromedp.Submit(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#login")))
	run("sign in with the new password",
		chromedp.SendKeys(chromedp.CSS("#email"), email),
		chromedp.SendKeys(chromedp.CSS("#password"), newPassword),
		chromedp.Submit(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#current-team")))

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

// apiLogin signs in through the API and returns a new API token.
func apiLogin(t *testing.T, base, email, password string) string {
	t.Helper()
	code, body := apiPost(t, base, "", "/api/v1/login", `{"email":"`+email+`","password":"`+password+`","token_name":"e2e"}`)
	var out struct {
		Token string `json:"token"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &out) != nil || out.Token == "" {
		t.Fatalf("API sign-in: %d %s", code, body)
	}
	return out.Token
}

// apiPost posts JSON to the API, with token when not "".
func apiPost(t *testing.T, base, token, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
