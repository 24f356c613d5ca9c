package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/egress"
	"github.com/berthhq/berth/engine"
	"github.com/berthhq/berth/git"
	"github.com/berthhq/berth/git/gittest"
	"github.com/berthhq/berth/store/storetest"
)

const hookSecret = "hook-secret-0123456789abcdef"

// eachEnv runs fn over a test environment on SQLite and on PostgreSQL.
func eachEnv(t *testing.T, fn func(t *testing.T, e *testEnv)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, newEnv(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, newEnvAt(t, storetest.Postgres(t))) })
}

// payload reads a provider fixture of package git.
func payload(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "git", "testdata", "webhooks", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// editPayload changes a decoded payload and encodes it again.
func editPayload(t *testing.T, b []byte, f func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// githubPush is the GitHub push fixture to branch at commit after.
func githubPush(t *testing.T, branch, after string) []byte {
	return editPayload(t, payload(t, "github-push.json"), func(m map[string]any) {
		m["ref"], m["after"] = "refs/heads/"+branch, after
	})
}

// githubPushFrom is the GitHub push fixture to branch, from commit before
// to commit after.
func githubPushFrom(t *testing.T, branch, before, after string) []byte {
	return editPayload(t, githubPush(t, branch, after), func(m map[string]any) { m["before"] = before })
}

// fixtureRepos are the repositories the fixtures of each provider name.
var fixtureRepos = map[berth.Provider]string{
	berth.GitHub:    "https://github.com/octo-org/shop.git",
	berth.GitLab:    "https://gitlab.example.com/acme/shop.git",
	berth.Gitea:     "https://git.example.com/gitea/webhooks.git",
	berth.Bitbucket: "https://bitbucket.org/acme/shop.git",
}

// hookApp creates a git app on branch main that deploys from the
// repository of p's fixtures, and gives it the webhook secret.
func (e *testEnv) hookApp(name string, p berth.Provider) berth.App {
	e.t.Helper()
	a := e.createApp(map[string]any{"name": name, "source": map[string]any{"git": fixtureRepos[p]}})
	secret := hookSecret
	decode[WebhookSettings](e.t, e.do(e.tokens[berth.ScopeWrite], "PUT", "/api/v1/apps/"+name+"/webhook", WebhookUpdate{Secret: &secret}), http.StatusOK)
	return a
}

// useRepo makes app deploy from the repository of p's fixtures.
func (e *testEnv) useRepo(app string, p berth.Provider) {
	e.t.Helper()
	decode[berth.App](e.t, e.do(e.tokens[berth.ScopeWrite], "PATCH", "/api/v1/apps/"+app, map[string]any{"source": map[string]any{"git": fixtureRepos[p]}}), http.StatusOK)
}

// hook posts a delivery as provider p would: its event and delivery
// headers, signed with secret (unsigned when ""). extra are header pairs
// that replace or, with an empty value, remove headers.
func (e *testEnv) hook(appID string, p berth.Provider, event, delivery string, body []byte, secret string, extra ...string) response {
	e.t.Helper()
	h := []string{"Content-Type", "application/json"}
	switch p {
	case berth.GitHub:
		h = append(h, "X-GitHub-Event", event, "X-GitHub-Delivery", delivery, "User-Agent", "GitHub-Hookshot/044aadd")
	case berth.GitLab:
		h = append(h, "X-Gitlab-Event", event, "X-Gitlab-Event-UUID", delivery, "Idempotency-Key", delivery)
	case berth.Gitea:
		h = append(h, "X-Gitea-Event", event, "X-Gitea-Delivery", delivery, "X-GitHub-Event", event, "X-GitHub-Delivery", delivery)
	case berth.Bitbucket:
		h = append(h, "X-Event-Key", event, "X-Request-UUID", delivery, "X-Hook-UUID", "cb8a1a5a-5a4b-4c3d-9e2f-1a2b3c4d5e6f", "X-Attempt-Number", "1")
	}
	if secret != "" {
		name, value := git.Sign(p, body, secret)
		h = append(h, name, value)
	}
	h = append(h, extra...)
	req, err := http.NewRequest("POST", e.srv.URL+hookPath(appID), bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(h); i += 2 {
		if h[i+1] == "" {
			req.Header.Del(h[i])
		} else {
			req.Header.Set(h[i], h[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: buf.Bytes()}
}

func (e *testEnv) deliveries(app string) []berth.WebhookDelivery {
	e.t.Helper()
	return decode[[]berth.WebhookDelivery](e.t, e.do(e.tokens[berth.ScopeRead], "GET", "/api/v1/apps/"+app+"/webhooks/deliveries?limit=1000", nil), http.StatusOK)
}

func (e *testEnv) deployments(app string) []berth.Deployment {
	e.t.Helper()
	return decode[[]berth.Deployment](e.t, e.do(e.tokens[berth.ScopeRead], "GET", "/api/v1/apps/"+app+"/deployments?limit=1000", nil), http.StatusOK)
}

// TestWebhookPushPerProvider sends each provider's documented push payload
// through the real handler, store and engine: each deploys exactly the
// pushed commit, and the delivery is listed with its deployment.
func TestWebhookPushPerProvider(t *testing.T) {
	for _, tc := range []struct {
		p              berth.Provider
		event, file    string
		branch, commit string
	}{
		{berth.GitHub, "push", "github-push.json", "main", "9f4c7b0d2e1a3c5b7d9e0f1a2b3c4d5e6f708192"},
		{berth.GitLab, "Push Hook", "gitlab-push.json", "main", "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"},
		{berth.Gitea, "push", "gitea-push.json", "develop", "bffeb74224043ba2feb48d137756c8a9331c449a"},
		{berth.Bitbucket, "repo:push", "bitbucket-push.json", "main", "709d658dc5b6d6afcd46049c2f332ee3f515a67d"},
	} {
		t.Run(string(tc.p), func(t *testing.T) {
			eachEnv(t, func(t *testing.T, e *testEnv) {
				a := e.hookApp("shop", tc.p)
				if tc.branch != "main" {
					decode[WebhookSettings](t, e.do(e.tokens[berth.ScopeWrite], "PUT", "/api/v1/apps/shop/webhook",
						map[string]any{"branches": []string{tc.branch}}), http.StatusOK)
				}
				r := e.hook(a.ID, tc.p, tc.event, "delivery-1", payload(t, tc.file), hookSecret)
				res := decode[HookResult](t, r, http.StatusAccepted)
				if res.Outcome != berth.DeliveryDeployed || res.DeploymentNumber != 1 {
					t.Fatalf("result %+v", res)
				}
				d := e.wait("shop", res.Deployment, berth.StatusLive)
				if d.Ref != tc.commit {
					t.Errorf("deployed ref %q, want the pushed commit %s", d.Ref, tc.commit)
				}
				if got := e.fakes.Source.Fetches; len(got) != 1 || got[0] != a.Source.Git+"@"+tc.commit {
					t.Errorf("fetched %q", got)
				}
				ds := e.deliveries("shop")
				if len(ds) != 1 || ds[0].Outcome != berth.DeliveryDeployed || ds[0].DeploymentNumber != 1 || ds[0].Provider != tc.p ||
					ds[0].DeliveryID != "delivery-1" || ds[0].Commit != tc.commit || ds[0].Ref != "refs/heads/"+tc.branch || ds[0].Event != tc.event {
					t.Errorf("deliveries %+v", ds)
				}
				if !strings.Contains(d.CreatedBy, string(tc.p)) {
					t.Errorf("created by %q", d.CreatedBy)
				}
			})
		})
	}
}

// previewsFake records the pull requests the webhook hands to previews.
type previewsFake struct {
	mu  sync.Mutex
	got []berth.PullRequest
	res engine.PreviewResult
	err error
}

func (f *previewsFake) PullRequest(ctx context.Context, app *berth.App, pr berth.PullRequest) (engine.PreviewResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, pr)
	return f.res, f.err
}

// TestWebhookPullRequests: without previews a pull request is recorded
// ignored; with them, each provider's events reach them as a validated
// berth.PullRequest, once per delivery. Bitbucket's abbreviated head is
// resolved against the (real, served) head repository.
func TestWebhookPullRequests(t *testing.T) {
	e := newEnv(t)
	a := e.hookApp("shop", berth.GitHub)
	r := e.hook(a.ID, berth.GitHub, "pull_request", "pr-1", payload(t, "github-pull_request-opened.json"), hookSecret)
	if res := decode[HookResult](t, r, http.StatusOK); res.Outcome != berth.DeliveryIgnored || !strings.Contains(res.Reason, "previews are not enabled") {
		t.Fatalf("without previews: %+v", res)
	}

	repo := gittest.NewRepo(t)
	repo.Write("a.txt", "1")
	repo.Commit("first")
	repo.Branch("feature/saved-cards")
	repo.Write("a.txt", "2")
	head := repo.Commit("second")
	base := gittest.Serve(t, map[string]*gittest.Repo{"shop": repo})

	fake := &previewsFake{res: engine.PreviewResult{Outcome: berth.DeliveryDeployed, Reason: "deployed preview pr-7"}}
	e.api.previews = fake
	e.api.lsRemote = (&git.Fetcher{Egress: egress.Policy{AllowPrivate: true}}).LsRemote
	bitbucket := func(file string) []byte {
		return editPayload(t, payload(t, file), func(m map[string]any) {
			src := m["pullrequest"].(map[string]any)["source"].(map[string]any)
			src["commit"].(map[string]any)["hash"] = head[:12]
			src["repository"].(map[string]any)["links"].(map[string]any)["html"].(map[string]any)["href"] = base + "/shop"
		})
	}
	cases := []struct {
		p            berth.Provider
		event, file  string
		body         []byte
		number       int
		action       berth.PullRequestAction
		merged, fork bool
	}{
		{berth.GitHub, "pull_request", "github-pull_request-opened.json", nil, 7, berth.PullRequestOpened, false, false},
		{berth.GitHub, "pull_request", "github-pull_request-synchronize.json", nil, 7, berth.PullRequestUpdated, false, false},
		{berth.GitHub, "pull_request", "github-pull_request-closed.json", nil, 7, berth.PullRequestClosed, true, false},
		{berth.GitHub, "pull_request", "github-pull_request-fork.json", nil, 8, berth.PullRequestOpened, false, true},
		{berth.GitLab, "Merge Request Hook", "gitlab-merge_request-open.json", nil, 1, berth.PullRequestOpened, false, false},
		{berth.GitLab, "Merge Request Hook", "gitlab-merge_request-update.json", nil, 1, berth.PullRequestUpdated, false, false},
		{berth.GitLab, "Merge Request Hook", "gitlab-merge_request-merge.json", nil, 1, berth.PullRequestClosed, true, false},
		{berth.GitLab, "Merge Request Hook", "gitlab-merge_request-close.json", nil, 1, berth.PullRequestClosed, false, false},
		{berth.Gitea, "pull_request", "gitea-pull_request-opened.json", nil, 12, berth.PullRequestOpened, false, false},
		{berth.Gitea, "pull_request", "gitea-pull_request-synchronized.json", nil, 12, berth.PullRequestUpdated, false, false},
		{berth.Gitea, "pull_request", "gitea-pull_request-closed.json", nil, 12, berth.PullRequestClosed, true, false},
		{berth.Bitbucket, "pullrequest:created", "", bitbucket("bitbucket-pullrequest-created.json"), 3, berth.PullRequestOpened, false, false},
		{berth.Bitbucket, "pullrequest:updated", "", bitbucket("bitbucket-pullrequest-updated.json"), 3, berth.PullRequestUpdated, false, false},
		{berth.Bitbucket, "pullrequest:fulfilled", "", bitbucket("bitbucket-pullrequest-fulfilled.json"), 3, berth.PullRequestClosed, true, false},
		{berth.Bitbucket, "pullrequest:rejected", "", bitbucket("bitbucket-pullrequest-rejected.json"), 3, berth.PullRequestClosed, false, false},
	}
	for i, tc := range cases {
		body := tc.body
		if body == nil {
			body = payload(t, tc.file)
		}
		id := fmt.Sprintf("pr-delivery-%d", i)
		e.useRepo("shop", tc.p)
		res := decode[HookResult](t, e.hook(a.ID, tc.p, tc.event, id, body, hookSecret), http.StatusOK)
		if res.Outcome != berth.DeliveryDeployed || res.Reason != "deployed preview pr-7" {
			t.Errorf("%s %s: %+v", tc.p, tc.event, res)
			continue
		}
		// A redelivery does not reach the previews again.
		if dup := decode[HookResult](t, e.hook(a.ID, tc.p, tc.event, id, body, hookSecret), http.StatusOK); !dup.Duplicate {
			t.Errorf("%s %s redelivered: %+v", tc.p, tc.event, dup)
		}
		if len(fake.got) != i+1 {
			t.Fatalf("%s %s: previews called %d times, want %d", tc.p, tc.event, len(fake.got), i+1)
		}
		pr := fake.got[i]
		if pr.Provider != tc.p || pr.Number != tc.number || pr.Action != tc.action || pr.Merged != tc.merged || pr.Fork != tc.fork || pr.Validate() != nil {
			t.Errorf("%s %s: handed %+v (%v)", tc.p, tc.event, pr, pr.Validate())
		}
		if tc.p == berth.Bitbucket && pr.HeadSHA != head {
			t.Errorf("bitbucket head %q, want %s resolved from %s", pr.HeadSHA, head, head[:12])
		}
	}
	// An edit without new commits, an error of the previews, the outcomes
	// the previews give, whatever their words.
	before := len(fake.got)
	e.useRepo("shop", berth.GitLab)
	res := decode[HookResult](t, e.hook(a.ID, berth.GitLab, "Merge Request Hook", "edit", payload(t, "gitlab-merge_request-edit.json"), hookSecret), http.StatusOK)
	if res.Outcome != berth.DeliveryIgnored || len(fake.got) != before {
		t.Errorf("title edit: %+v", res)
	}
	fake.res, fake.err = engine.PreviewResult{}, berth.E("preview", berth.Conflict, "preview limit reached")
	e.useRepo("shop", berth.GitHub)
	res = decode[HookResult](t, e.hook(a.ID, berth.GitHub, "pull_request", "fails", payload(t, "github-pull_request-opened.json"), hookSecret), http.StatusOK)
	if res.Outcome != berth.DeliveryFailed || !strings.Contains(res.Reason, "preview limit reached") {
		t.Errorf("previews error: %+v", res)
	}
	for i, want := range []engine.PreviewResult{
		{Outcome: berth.DeliveryIgnored, Reason: "the preview of pull request #7 is already at aaaaaaa"},
		{Outcome: berth.DeliveryCoalesced, Reason: "the deployment already queued takes the new head"},
		{Outcome: berth.DeliveryDeployed, Reason: "no preview was live: deploying it"},
	} {
		fake.res, fake.err = want, nil
		res = decode[HookResult](t, e.hook(a.ID, berth.GitHub, "pull_request", fmt.Sprint("outcome-", i), payload(t, "github-pull_request-opened.json"), hookSecret), http.StatusOK)
		if res.Outcome != want.Outcome || res.Reason != want.Reason {
			t.Errorf("result %+v recorded as %+v", want, res)
		}
	}
	// A Bitbucket head that moved on is recorded failed, not handed over.
	before = len(fake.got)
	e.useRepo("shop", berth.Bitbucket)
	moved := editPayload(t, bitbucket("bitbucket-pullrequest-updated.json"), func(m map[string]any) {
		m["pullrequest"].(map[string]any)["source"].(map[string]any)["commit"].(map[string]any)["hash"] = "0123456789ab"
	})
	res = decode[HookResult](t, e.hook(a.ID, berth.Bitbucket, "pullrequest:updated", "moved", moved, hookSecret), http.StatusOK)
	if res.Outcome != berth.DeliveryFailed || !strings.Contains(res.Reason, "moved on") || len(fake.got) != before {
		t.Errorf("moved head: %+v", res)
	}
	if n := len(e.deployments("shop")); n != 0 {
		t.Errorf("pull requests started %d deployments of the app itself", n)
	}
}

// TestWebhookDeduplicates: a redelivery does nothing, and two identical
// deliveries at once deploy once — on both dialects.
func TestWebhookDeduplicates(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *testEnv) {
		a := e.hookApp("shop", berth.GitHub)
		body := githubPush(t, "main", strings.Repeat("a", 40))
		first := decode[HookResult](t, e.hook(a.ID, berth.GitHub, "push", "same", body, hookSecret), http.StatusAccepted)
		e.wait("shop", first.Deployment, berth.StatusLive)
		again := decode[HookResult](t, e.hook(a.ID, berth.GitHub, "push", "same", body, hookSecret), http.StatusOK)
		if !again.Duplicate || !strings.Contains(again.Reason, "already received") {
			t.Errorf("redelivery: %+v", again)
		}
		// Ten identical deliveries at once.
		body2 := githubPush(t, "main", strings.Repeat("b", 40))
		var wg sync.WaitGroup
		statuses := make([]int, 10)
		for i := range statuses {
			wg.Go(func() { statuses[i] = e.hook(a.ID, berth.GitHub, "push", "twin", body2, hookSecret).status })
		}
		wg.Wait()
		slices.Sort(statuses)
		want := append(slices.Repeat([]int{http.StatusOK}, 9), http.StatusAccepted)
		if !slices.Equal(statuses, want) {
			t.Errorf("statuses %v, want one 202 and nine 200", statuses)
		}
		if n := len(e.deployments("shop")); n != 2 {
			t.Errorf("%d deployments, want 2", n)
		}
		if n := len(e.deliveries("shop")); n != 2 {
			t.Errorf("%d deliveries recorded, want 2", n)
		}
	})
}

// TestWebhookBurstCoalesces: twenty pushes at once while a deployment runs
// queue one deployment, which ends on the newest of them — its commit, or
// the branch when the order of the deliveries left it undecided — never
// on an older commit; a running one is not interrupted. On both dialects.
func TestWebhookBurstCoalesces(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *testEnv) {
		a := e.hookApp("shop", berth.GitHub)
		block := make(chan struct{})
		e.fakes.Source.Block = block
		c := func(i int) string { return fmt.Sprintf("%040x", i+1) }
		first := decode[HookResult](t, e.hook(a.ID, berth.GitHub, "push", "p-0", githubPushFrom(t, "main", c(-1), c(0)), hookSecret), http.StatusAccepted)
		waitFor(t, func() bool {
			d := decode[berth.Deployment](t, e.do(e.tokens[berth.ScopeRead], "GET", "/api/v1/apps/shop/deployments/1", nil), http.StatusOK)
			return d.Status == berth.StatusFetching
		})
		// Pushes 1 to 20, each on top of the one before, delivered at once.
		results := make([]HookResult, 20)
		var wg sync.WaitGroup
		for i := range results {
			wg.Go(func() {
				r := e.hook(a.ID, berth.GitHub, "push", fmt.Sprintf("p-%d", i+1), githubPushFrom(t, "main", c(i), c(i+1)), hookSecret)
				if r.status != http.StatusAccepted {
					t.Errorf("push %d: %d %s", i+1, r.status, r.body)
					return
				}
				json.Unmarshal(r.body, &results[i])
			})
		}
		wg.Wait()
		deployed, coalesced := 0, 0
		var queued string
		for _, r := range results {
			switch r.Outcome {
			case berth.DeliveryDeployed:
				deployed++
				queued = r.Deployment
			case berth.DeliveryCoalesced:
				coalesced++
			}
		}
		if deployed != 1 || coalesced != 19 {
			t.Fatalf("%d deployed, %d coalesced; want 1 and 19", deployed, coalesced)
		}
		for _, r := range results {
			if r.Deployment != queued || r.DeploymentNumber != 2 {
				t.Errorf("result %+v, want #2", r)
			}
		}
		close(block)
		last := e.wait("shop", queued, berth.StatusLive)
		if d := decode[berth.Deployment](t, e.do(e.tokens[berth.ScopeRead], "GET", "/api/v1/apps/shop/deployments/"+first.Deployment, nil), http.StatusOK); d.Status != berth.StatusSuperseded {
			t.Errorf("#1 is %s, want superseded: the burst did not interrupt it", d.Status)
		}
		ds := e.deployments("shop")
		if len(ds) != 2 {
			t.Errorf("%d deployments, want 2 (the running one and one for the burst)", len(ds))
		}
		if last.Ref != c(20) && last.Ref != "refs/heads/main" {
			t.Errorf("#2 deployed %s, want the newest push %s or the branch", last.Ref, c(20))
		}
		n := 0
		for _, d := range e.deliveries("shop") {
			if d.DeploymentID == queued {
				n++
			}
		}
		if n != 20 {
			t.Errorf("%d deliveries recorded against #2, want 20", n)
		}
		if got := e.fakes.Source.Fetches; len(got) != 2 || got[1] != a.Source.Git+"@"+last.Ref {
			t.Errorf("fetched %q, want 2 fetches, the second of %s", got, last.Ref)
		}
	})
}

// TestWebhookPushOrder: deliveries arriving out of order leave the queued
// deployment on the newest push; when their order cannot be told, on the
// branch, whose head the worker fetches. On both dialects.
func TestWebhookPushOrder(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *testEnv) {
		a := e.hookApp("shop", berth.GitHub)
		block := make(chan struct{})
		e.fakes.Source.Block = block
		// Commits whose 12-digit abbreviations differ, as the reasons show them.
		c := func(i int) string { return strings.Repeat(fmt.Sprintf("%x", i+1), 40) }
		send := func(id string, before, after int) HookResult {
			t.Helper()
			return decode[HookResult](t, e.hook(a.ID, berth.GitHub, "push", id, githubPushFrom(t, "main", c(before), c(after)), hookSecret), http.StatusAccepted)
		}
		ref := func(id string) string {
			t.Helper()
			return decode[berth.Deployment](t, e.do(e.tokens[berth.ScopeRead], "GET", "/api/v1/apps/shop/deployments/"+id, nil), http.StatusOK).Ref
		}
		running := send("p-1", 0, 1)
		waitFor(t, func() bool { return len(e.fakes.Source.FetchLog()) == 1 })
		// Push 3 arrives before push 2: the queued deployment keeps c3.
		queued := send("p-3", 2, 3)
		if got := ref(queued.Deployment); got != c(3) {
			t.Fatalf("queued for push 3: %s", got)
		}
		late := send("p-2", 1, 2)
		if late.Deployment != queued.Deployment || late.Outcome != berth.DeliveryCoalesced || !strings.Contains(late.Reason, "it keeps "+c(3)[:12]) {
			t.Errorf("push 2 delivered late: %+v", late)
		}
		if got := ref(queued.Deployment); got != c(3) {
			t.Errorf("after push 2 delivered late, #2 deploys %s, want %s", got, c(3))
		}
		// Push 4 on top of it moves it on.
		send("p-4", 3, 4)
		if got := ref(queued.Deployment); got != c(4) {
			t.Errorf("after push 4, #2 deploys %s", got)
		}
		// Push 6 before push 5: no signal decides, so the branch.
		gap := send("p-6", 5, 6)
		if got := ref(queued.Deployment); got != "refs/heads/main" || !strings.Contains(gap.Reason, "head of main") {
			t.Errorf("after a gap, #2 deploys %s (%s)", got, gap.Reason)
		}
		send("p-5", 4, 5)
		close(block)
		e.wait("shop", queued.Deployment, berth.StatusLive)
		if got := ref(running.Deployment); got != c(1) {
			t.Errorf("the running #1 was re-pointed to %s", got)
		}
		if got := e.fakes.Source.FetchLog(); !slices.Equal(got, []string{a.Source.Git + "@" + c(1), a.Source.Git + "@refs/heads/main"}) {
			t.Errorf("fetched %q", got)
		}
		// Every push is listed with the commit it started from.
		for _, d := range e.deliveries("shop") {
			if d.Before == "" || d.Commit == "" {
				t.Errorf("delivery without its before and after commits: %+v", d)
			}
		}
	})
}

// TestWebhookRepository: a delivery about another repository than the
// one the app deploys from is recorded rejected with both named, and
// deploys nothing; a fork's pull request is judged by its base; a payload
// that names no repository passes as before. On both dialects.
func TestWebhookRepository(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *testEnv) {
		a := e.hookApp("shop", berth.GitHub)
		other := editPayload(t, githubPush(t, "main", strings.Repeat("a", 40)), func(m map[string]any) {
			m["repository"] = map[string]any{"full_name": "octo-org/other", "clone_url": "https://github.com/octo-org/other.git",
				"ssh_url": "git@github.com:octo-org/other.git", "html_url": "https://github.com/octo-org/other"}
		})
		const want = "delivery for octo-org/other, app shop deploys github.com/octo-org/shop"
		r := e.hook(a.ID, berth.GitHub, "push", "wrong-repo", other, hookSecret)
		if r.status != http.StatusForbidden || !strings.Contains(r.problem(t).Detail, want) {
			t.Fatalf("push for another repository: %d %s", r.status, r.body)
		}
		ds := e.deliveries("shop")
		if len(ds) != 1 || ds[0].Outcome != berth.DeliveryRejected || !strings.Contains(ds[0].Reason, want) {
			t.Errorf("deliveries %+v", ds)
		}
		// Another provider's repository of the same name elsewhere.
		r = e.hook(a.ID, berth.GitLab, "Push Hook", "gitlab-repo", payload(t, "gitlab-push.json"), hookSecret)
		if r.status != http.StatusForbidden || !strings.Contains(r.problem(t).Detail, "delivery for acme/shop, app shop deploys github.com/octo-org/shop") {
			t.Errorf("gitlab push for acme/shop: %d %s", r.status, r.body)
		}
		// A pull request whose base is another repository, even with the
		// app's repository as its head.
		pr := editPayload(t, payload(t, "github-pull_request-opened.json"), func(m map[string]any) {
			other := map[string]any{"full_name": "mallory/shop", "clone_url": "https://github.com/mallory/shop.git"}
			m["pull_request"].(map[string]any)["base"].(map[string]any)["repo"] = other
			m["repository"] = other
		})
		if r := e.hook(a.ID, berth.GitHub, "pull_request", "wrong-base", pr, hookSecret); r.status != http.StatusForbidden {
			t.Errorf("pull request into another repository: %d %s", r.status, r.body)
		}
		// A fork's pull request into the app's repository passes.
		res := decode[HookResult](t, e.hook(a.ID, berth.GitHub, "pull_request", "fork", payload(t, "github-pull_request-fork.json"), hookSecret), http.StatusOK)
		if res.Outcome != berth.DeliveryIgnored {
			t.Errorf("fork pull request: %+v", res)
		}
		if n := len(e.deployments("shop")); n != 0 {
			t.Fatalf("%d deployments after deliveries for other repositories", n)
		}
		// Without a repository in the payload, as before.
		bare := editPayload(t, githubPush(t, "main", strings.Repeat("b", 40)), func(m map[string]any) { delete(m, "repository") })
		res = decode[HookResult](t, e.hook(a.ID, berth.GitHub, "push", "no-repo", bare, hookSecret), http.StatusAccepted)
		e.wait("shop", res.Deployment, berth.StatusLive)
		// The rejected delivery took no delivery ID: once the app deploys
		// from that repository (in its ssh form), its redelivery deploys.
		decode[berth.App](t, e.do(e.tokens[berth.ScopeWrite], "PATCH", "/api/v1/apps/shop",
			map[string]any{"source": map[string]any{"git": "git@github.com:Octo-Org/Other.git"}}), http.StatusOK)
		res = decode[HookResult](t, e.hook(a.ID, berth.GitHub, "push", "wrong-repo", other, hookSecret), http.StatusAccepted)
		if res.Outcome != berth.DeliveryDeployed {
			t.Errorf("redelivery after the fix: %+v", res)
		}
	})
}

// waitFor polls cond until it holds (the engine works in the background).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 2000 {
		if cond() {
			return
		}
		sleepBriefly()
	}
	t.Fatal("condition never held")
}

// TestWebhookDecisions: the branch filter, watch paths, deleted branches,
// tags and non-git apps decide whether a push deploys, and the reason says
// why.
func TestWebhookDecisions(t *testing.T) {
	e := newEnv(t)
	a := e.hookApp("shop", berth.GitHub)
	set := func(branches, paths []string) {
		t.Helper()
		decode[WebhookSettings](t, e.do(e.tokens[berth.ScopeWrite], "PUT", "/api/v1/apps/shop/webhook",
			map[string]any{"branches": branches, "paths": paths}), http.StatusOK)
	}
	n := 0
	send := func(p berth.Provider, event string, body []byte, status int, outcome berth.DeliveryOutcome, reason string) HookResult {
		t.Helper()
		n++
		res := decode[HookResult](t, e.hook(a.ID, p, event, fmt.Sprintf("d-%d", n), body, hookSecret), status)
		if res.Outcome != outcome || !strings.Contains(res.Reason, reason) {
			t.Errorf("%s %s: %+v, want %s with %q", p, event, res, outcome, reason)
		}
		if res.Deployment != "" {
			e.wait("shop", res.Deployment, berth.StatusLive)
		}
		return res
	}
	// Default filter: the app's branch (main).
	send(berth.GitHub, "push", githubPush(t, "develop", strings.Repeat("1", 40)), http.StatusOK, berth.DeliveryIgnored, "does not match the branch filter (main)")
	send(berth.GitHub, "push", githubPush(t, "main", strings.Repeat("2", 40)), http.StatusAccepted, berth.DeliveryDeployed, "push to main by octocat")
	// Globs.
	set([]string{"release/*"}, nil)
	send(berth.GitHub, "push", githubPush(t, "main", strings.Repeat("3", 40)), http.StatusOK, berth.DeliveryIgnored, "release/*")
	send(berth.GitHub, "push", githubPush(t, "release/1.2", strings.Repeat("4", 40)), http.StatusAccepted, berth.DeliveryDeployed, "push to release/1.2")
	send(berth.GitHub, "push", githubPush(t, "release/1.2/hotfix", strings.Repeat("5", 40)), http.StatusOK, berth.DeliveryIgnored, "does not match")
	// Watch paths: the fixture changes services/api/… and README.md.
	set([]string{"main"}, []string{"services/api"})
	send(berth.GitHub, "push", githubPush(t, "main", strings.Repeat("6", 40)), http.StatusAccepted, berth.DeliveryDeployed, "changed services/api/health.go")
	set([]string{"main"}, []string{"services/web/", "infra/**/*.tf"})
	send(berth.GitHub, "push", githubPush(t, "main", strings.Repeat("7", 40)), http.StatusOK, berth.DeliveryIgnored, "changed no file under the watch paths")
	e.useRepo("shop", berth.GitLab)
	send(berth.GitLab, "Push Hook", payload(t, "gitlab-push.json"), http.StatusOK, berth.DeliveryIgnored, "changed no file under the watch paths")
	// Bitbucket lists no files: deployed, and the reason says so.
	e.useRepo("shop", berth.Bitbucket)
	send(berth.Bitbucket, "repo:push", payload(t, "bitbucket-push.json"), http.StatusAccepted, berth.DeliveryDeployed, "does not list every changed file")
	e.useRepo("shop", berth.GitHub)
	// A force push's commits are not the diff: the same.
	forced := editPayload(t, githubPush(t, "main", strings.Repeat("8", 40)), func(m map[string]any) { m["forced"] = true })
	send(berth.GitHub, "push", forced, http.StatusAccepted, berth.DeliveryDeployed, "does not list every changed file")
	// Deleted branches and tags.
	set(nil, nil)
	deleted := editPayload(t, payload(t, "github-push-delete.json"), func(m map[string]any) { m["ref"] = "refs/heads/main" })
	send(berth.GitHub, "push", deleted, http.StatusOK, berth.DeliveryIgnored, "branch main was deleted")
	send(berth.GitHub, "push", payload(t, "github-push-tag.json"), http.StatusOK, berth.DeliveryIgnored, "tag push refs/tags/v1.4.0")
	send(berth.GitHub, "ping", payload(t, "github-ping.json"), http.StatusOK, berth.DeliveryIgnored, "ping")
	e.useRepo("shop", berth.Bitbucket)
	send(berth.Bitbucket, "repo:push", payload(t, "bitbucket-push-tag-delete.json"), http.StatusOK, berth.DeliveryIgnored, "feature/cart was deleted")
	e.useRepo("shop", berth.GitLab)
	send(berth.GitLab, "Tag Push Hook", payload(t, "gitlab-tag_push.json"), http.StatusOK, berth.DeliveryIgnored, "tag push")
	if got := len(e.deployments("shop")); got != 5 {
		t.Errorf("%d deployments, want 5", got)
	}
	// Only git apps deploy from pushes.
	img := e.createApp(map[string]any{"name": "img", "source": map[string]any{"image": "nginx:1"}})
	secret := hookSecret
	decode[WebhookSettings](t, e.do(e.tokens[berth.ScopeWrite], "PUT", "/api/v1/apps/img/webhook", WebhookUpdate{Secret: &secret}), http.StatusOK)
	res := decode[HookResult](t, e.hook(img.ID, berth.GitHub, "push", "img-1", githubPush(t, "main", strings.Repeat("9", 40)), hookSecret), http.StatusOK)
	if res.Outcome != berth.DeliveryIgnored || !strings.Contains(res.Reason, "only apps with a git source") {
		t.Errorf("image app: %+v", res)
	}
	// Every delivery is listed with its reason.
	ds := e.deliveries("shop")
	if len(ds) != n {
		t.Errorf("%d deliveries listed, want %d", len(ds), n)
	}
	for _, d := range ds {
		if d.Reason == "" || d.Provider == "" || d.Event == "" {
			t.Errorf("delivery without reason, provider or event: %+v", d)
		}
	}
}

// TestWebhookRejects: what is refused, with which status, and that it is
// recorded rejected without anything else happening.
func TestWebhookRejects(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *testEnv) {
		e.api.hookLimits.MaxBody = 256 << 10
		noSecret := e.createApp(gitApp("bare"))
		a := e.hookApp("shop", berth.GitHub)
		body := githubPush(t, "main", strings.Repeat("c", 40))
		for _, tc := range []struct {
			name   string
			app    string
			p      berth.Provider
			event  string
			body   []byte
			secret string
			extra  []string
			status int
			reason string
		}{
			{"no secret set", noSecret.ID, berth.GitHub, "push", body, hookSecret, nil, http.StatusUnauthorized, "no webhook secret"},
			{"bad signature", a.ID, berth.GitHub, "push", body, "another-secret-0123456789", nil, http.StatusUnauthorized, "X-Hub-Signature-256 header does not match"},
			{"no signature", a.ID, berth.GitHub, "push", body, "", nil, http.StatusUnauthorized, "no X-Hub-Signature-256 header"},
			{"gitlab bad token", a.ID, berth.GitLab, "Push Hook", payload(t, "gitlab-push.json"), "", []string{"X-Gitlab-Token", "wrong-token-wrong-token"}, http.StatusUnauthorized, "X-Gitlab-Token"},
			{"bitbucket bad signature", a.ID, berth.Bitbucket, "repo:push", payload(t, "bitbucket-push.json"), "", []string{"X-Hub-Signature", "sha256=" + strings.Repeat("0", 64)}, http.StatusUnauthorized, "X-Hub-Signature"},
			{"gitea bad signature", a.ID, berth.Gitea, "push", payload(t, "gitea-push.json"), "", []string{"X-Gitea-Signature", strings.Repeat("0", 64)}, http.StatusUnauthorized, "X-Gitea-Signature"},
			{"no delivery id", a.ID, berth.GitHub, "push", body, hookSecret, []string{"X-GitHub-Delivery", ""}, http.StatusBadRequest, "no X-GitHub-Delivery header"},
			{"no provider", a.ID, berth.GitHub, "push", body, hookSecret, []string{"X-GitHub-Event", ""}, http.StatusBadRequest, "no provider event header"},
			{"malformed JSON", a.ID, berth.GitHub, "push", []byte(`{"ref": "refs/heads/main",`), hookSecret, nil, http.StatusBadRequest, "not valid JSON"},
			{"wrong shape", a.ID, berth.GitLab, "Push Hook", []byte(`{"ref": ["x"]}`), hookSecret, nil, http.StatusBadRequest, "field ref"},
			{"form-encoded", a.ID, berth.GitHub, "push", []byte("payload=%7B%7D"), hookSecret, []string{"Content-Type", "application/x-www-form-urlencoded"}, http.StatusBadRequest, "application/json"},
			{"too large", a.ID, berth.GitHub, "push", bytes.Repeat([]byte(" "), 256<<10+1), hookSecret, nil, http.StatusRequestEntityTooLarge, "larger than 262144 bytes"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				count := func() (all, rejected int) {
					for _, d := range append(e.deliveries("shop"), e.deliveries("bare")...) {
						all++
						if d.Outcome == berth.DeliveryRejected {
							rejected++
						}
					}
					return all, rejected
				}
				beforeAll, beforeRejected := count()
				r := e.hook(tc.app, tc.p, tc.event, "attack-1", tc.body, tc.secret, tc.extra...)
				if r.status != tc.status {
					t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
				}
				if p := r.problem(t); !strings.Contains(p.Detail, tc.reason) {
					t.Errorf("detail %q, want %q", p.Detail, tc.reason)
				}
				if strings.Contains(string(r.body), hookSecret) {
					t.Error("the answer shows the secret")
				}
				if all, rejected := count(); all != beforeAll+1 || rejected != beforeRejected+1 {
					t.Fatalf("%d deliveries (%d rejected), want one more, rejected", all, rejected)
				}
				if n := len(e.deployments("shop")) + len(e.deployments("bare")); n != 0 {
					t.Errorf("%d deployments after a refused delivery", n)
				}
			})
		}
		for _, d := range e.deliveries("shop") {
			if d.Outcome != berth.DeliveryRejected || d.Reason == "" {
				t.Errorf("delivery %+v", d)
			}
			if strings.Contains(d.Reason, hookSecret) {
				t.Errorf("a reason shows the secret: %q", d.Reason)
			}
		}
		// The rejected attempts used delivery ID attack-1: the real
		// delivery with that ID still deploys.
		res := decode[HookResult](t, e.hook(a.ID, berth.GitHub, "push", "attack-1", body, hookSecret), http.StatusAccepted)
		e.wait("shop", res.Deployment, berth.StatusLive)
		// Unknown hooks: 404, nothing recorded anywhere.
		for _, id := range []string{berth.NewID("app"), "web", "app_", "app_%2e%2e"} {
			r := e.hook(id, berth.GitHub, "push", "x", body, hookSecret)
			if r.status != http.StatusNotFound {
				t.Errorf("hook %q: %d", id, r.status)
			}
		}
		// GET is not a webhook.
		if r := e.do("", "GET", hookPath(a.ID), nil); r.status != http.StatusMethodNotAllowed {
			t.Errorf("GET: %d", r.status)
		}
	})
}

// TestWebhookRateLimits: past the limits, 429 with Retry-After, and the
// refused requests are not recorded.
func TestWebhookRateLimits(t *testing.T) {
	e := newEnv(t)
	e.api.hookLimits.PerApp, e.api.hookLimits.PerAddr = 3, 5
	a := e.hookApp("shop", berth.GitHub)
	bad := githubPush(t, "main", strings.Repeat("d", 40))
	for i := range 3 {
		if r := e.hook(a.ID, berth.GitHub, "push", fmt.Sprint(i), bad, "wrong-secret-0123456789"); r.status != http.StatusUnauthorized {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
	r := e.hook(a.ID, berth.GitHub, "push", "4", bad, hookSecret)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("past the app's limit: %d, Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	if p := r.problem(t); !strings.Contains(p.Detail, "too many webhook requests") {
		t.Errorf("detail %q", p.Detail)
	}
	if n := len(e.deliveries("shop")); n != 3 {
		t.Errorf("%d deliveries recorded, want the 3 before the limit", n)
	}
	// Nor does the refused request reach the audit log: a flood must not
	// grow it.
	statuses := []int{}
	_ = e.st.AuditEvents(context.Background(), a.TeamID, berth.AuditFilter{Action: "webhook.receive"}, func(ev *berth.AuditEvent) error {
		statuses = append(statuses, ev.Status)
		return nil
	})
	if len(statuses) != 3 || slices.Contains(statuses, http.StatusTooManyRequests) {
		t.Errorf("audit of the webhook requests: statuses %v, want the 3 before the limit", statuses)
	}
	// The address's limit counts requests to any hook, known or not.
	e.hook(berth.NewID("app"), berth.GitHub, "push", "x", bad, hookSecret)
	if r := e.hook(berth.NewID("app"), berth.GitHub, "push", "y", bad, hookSecret); r.status != http.StatusTooManyRequests {
		t.Errorf("past the address's limit: %d", r.status)
	}
}

// TestWebhookSettingsAPI covers GET/PUT /webhook, the secret, shown once,
// and the deliveries list, through the typed client.
func TestWebhookSettingsAPI(t *testing.T) {
	e := newEnv(t)
	e.api.publicURL = "https://berth.example.com"
	a := e.createApp(map[string]any{"name": "shop", "source": map[string]any{"git": fixtureRepos[berth.GitHub]}})
	ctx := context.Background()
	c := e.client(berth.ScopeWrite)
	s, err := c.Webhook(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if s.SecretSet || s.URL != "https://berth.example.com/api/v1/hooks/"+a.ID || !slices.Equal(s.EffectiveBranches, []string{"main"}) {
		t.Errorf("defaults %+v", s)
	}
	sec, err := c.NewWebhookSecret(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if len(sec.Secret) != 64 || sec.URL != s.URL {
		t.Errorf("secret %+v", sec)
	}
	// It works, and it is never shown again.
	res := decode[HookResult](t, e.hook(a.ID, berth.GitHub, "ping", "ping-1", payload(t, "github-ping.json"), sec.Secret), http.StatusOK)
	if res.Outcome != berth.DeliveryIgnored {
		t.Errorf("ping: %+v", res)
	}
	for _, path := range []string{"/api/v1/apps/shop/webhook", "/api/v1/apps/shop/webhooks/deliveries", "/api/v1/apps/shop"} {
		r := e.do(e.tokens[berth.ScopeAdmin], "GET", path, nil)
		if strings.Contains(string(r.body), sec.Secret) {
			t.Errorf("%s shows the secret", path)
		}
	}
	s, err = c.SetWebhook(ctx, "shop", WebhookUpdate{Branches: []string{"main", "release/*"}, Paths: []string{"services/api"}})
	if err != nil || !s.SecretSet || len(s.Branches) != 2 || !slices.Equal(s.EffectiveBranches, s.Branches) {
		t.Fatalf("set: %+v, %v", s, err)
	}
	for _, bad := range []WebhookUpdate{{Branches: []string{"$(x)"}}, {Paths: []string{"../x"}}, {Secret: ptr("short")}, {Secret: ptr(strings.Repeat("x", 300))}} {
		if _, err := c.SetWebhook(ctx, "shop", bad); !berth.IsKind(err, berth.Invalid) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	if r := e.do(e.tokens[berth.ScopeWrite], "PUT", "/api/v1/apps/shop/webhook", `{"branches": [], "secrets": "x"}`); r.status != http.StatusBadRequest {
		t.Errorf("unknown field: %d", r.status)
	}
	if got, _ := c.Webhook(ctx, "shop"); len(got.Branches) != 2 {
		t.Errorf("refused updates changed the settings: %+v", got)
	}
	// Clearing the secret turns the webhook off.
	if s, err := c.SetWebhook(ctx, "shop", WebhookUpdate{Secret: ptr("")}); err != nil || s.SecretSet {
		t.Fatalf("clear: %+v, %v", s, err)
	}
	if r := e.hook(a.ID, berth.GitHub, "ping", "ping-2", payload(t, "github-ping.json"), sec.Secret); r.status != http.StatusUnauthorized {
		t.Errorf("after clearing: %d", r.status)
	}
	ds, err := c.WebhookDeliveries(ctx, "shop", 10)
	if err != nil || len(ds) != 2 || ds[0].Outcome != berth.DeliveryRejected || ds[1].Outcome != berth.DeliveryIgnored {
		t.Errorf("deliveries %+v, %v", ds, err)
	}
	// The read scope reads, only the write scope changes.
	if _, err := e.client(berth.ScopeRead).Webhook(ctx, "shop"); err != nil {
		t.Error(err)
	}
	if _, err := e.client(berth.ScopeRead).NewWebhookSecret(ctx, "shop"); !berth.IsKind(err, berth.Forbidden) {
		t.Errorf("secret with the read scope: %v", err)
	}
	if _, err := e.client(berth.ScopeDeploy).SetWebhook(ctx, "shop", WebhookUpdate{}); !berth.IsKind(err, berth.Forbidden) {
		t.Errorf("set with the deploy scope: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

func sleepBriefly() { time.Sleep(5 * time.Millisecond) }

// TestWebhookHostileSettings sends the hostile values of TestHostileInputs
// as branches and watch paths: each is refused with a 4xx problem, and the
// settings stay as they were.
func TestWebhookHostileSettings(t *testing.T) {
	e := newEnv(t)
	e.createApp(gitApp("shop"))
	canary := filepath.Join(t.TempDir(), "canary")
	for _, v := range hostile(canary) {
		// A secret is data: one that meets the rules may be set (and is
		// never shown); the others are refused.
		if r := e.do(e.tokens[berth.ScopeWrite], "PUT", "/api/v1/apps/shop/webhook", map[string]any{"secret": v}); r.status != http.StatusOK && r.status != http.StatusBadRequest {
			t.Errorf("secret %q: status %d", clip(v), r.status)
		} else if strings.Contains(string(r.body), v) {
			t.Errorf("secret %q is shown back", clip(v))
		}
		e.do(e.tokens[berth.ScopeWrite], "PUT", "/api/v1/apps/shop/webhook", map[string]any{"secret": ""})
		for _, body := range []map[string]any{{"branches": []string{v}}, {"paths": []string{v}}} {
			r := e.do(e.tokens[berth.ScopeWrite], "PUT", "/api/v1/apps/shop/webhook", body)
			if r.status < 400 || r.status >= 500 {
				t.Errorf("%v: status %d: %s", body, r.status, r.body)
				continue
			}
			if p := r.problem(t); p.Detail == "" {
				t.Errorf("%v: no reason", body)
			}
		}
	}
	s := decode[WebhookSettings](t, e.do(e.tokens[berth.ScopeRead], "GET", "/api/v1/apps/shop/webhook", nil), http.StatusOK)
	if s.SecretSet || len(s.Branches) != 0 || len(s.Paths) != 0 {
		t.Errorf("settings changed: %+v", s)
	}
	if _, err := os.Stat(canary); !os.IsNotExist(err) {
		t.Fatal("the canary exists")
	}
}

// TestWebhookPreviewsThroughEngine hands pull request webhooks to the real
// engine's previews, as the server wires them: off, a preview deploys
// nothing and the delivery is ignored; on, the opened pull request gets a
// preview (deployed) and the merge tears it down.
func TestWebhookPreviewsThroughEngine(t *testing.T) {
	e := newEnv(t)
	e.api.previews = e.api.engine
	a := e.hookApp("shop", berth.GitHub)
	decode[berth.Domain](t, e.do(e.tokens[berth.ScopeAdmin], "POST", "/api/v1/apps/shop/domains", map[string]string{"host": "shop.example.com"}), http.StatusCreated)
	res := decode[HookResult](t, e.hook(a.ID, berth.GitHub, "pull_request", "off", payload(t, "github-pull_request-opened.json"), hookSecret), http.StatusOK)
	if res.Outcome != berth.DeliveryIgnored || !strings.Contains(res.Reason, "previews are off") {
		t.Fatalf("previews off: %+v", res)
	}
	decode[PreviewSettings](t, e.do(e.tokens[berth.ScopeAdmin], "PUT", "/api/v1/apps/shop/previews/settings", map[string]any{"enabled": true}), http.StatusOK)
	res = decode[HookResult](t, e.hook(a.ID, berth.GitHub, "pull_request", "on", payload(t, "github-pull_request-opened.json"), hookSecret), http.StatusOK)
	if res.Outcome != berth.DeliveryDeployed {
		t.Fatalf("previews on: %+v", res)
	}
	ps := decode[[]berth.Preview](t, e.do(e.tokens[berth.ScopeRead], "GET", "/api/v1/apps/shop/previews", nil), http.StatusOK)
	if len(ps) != 1 || ps[0].Number != 7 {
		t.Fatalf("previews %+v", ps)
	}
	// The same head again (another delivery ID) deploys nothing: ignored,
	// though the sentence says neither "ignored" nor "nothing".
	res = decode[HookResult](t, e.hook(a.ID, berth.GitHub, "pull_request", "again", payload(t, "github-pull_request-opened.json"), hookSecret), http.StatusOK)
	if res.Outcome != berth.DeliveryIgnored || !strings.Contains(res.Reason, "is already at") {
		t.Errorf("same head again: %+v", res)
	}
	res = decode[HookResult](t, e.hook(a.ID, berth.GitHub, "pull_request", "merged", payload(t, "github-pull_request-closed.json"), hookSecret), http.StatusOK)
	if res.Outcome != berth.DeliveryDeployed || !strings.Contains(res.Reason, "tearing down") {
		t.Errorf("merged: %+v", res)
	}
	// A pull request with nothing to tear down is ignored.
	e.useRepo("shop", berth.GitLab)
	res = decode[HookResult](t, e.hook(a.ID, berth.GitLab, "Merge Request Hook", "gl-close", payload(t, "gitlab-merge_request-close.json"), hookSecret), http.StatusOK)
	if res.Outcome != berth.DeliveryIgnored {
		t.Errorf("nothing to tear down: %+v", res)
	}
}
