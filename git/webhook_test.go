package git_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/git"
	"github.com/berthhq/berth/git/gittest"
)

// fixture reads a payload from testdata/webhooks.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "webhooks", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hookHeaders are the headers a provider sends with an event, unsigned.
func hookHeaders(p berth.Provider, event string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	switch p {
	case berth.GitHub:
		h.Set("X-GitHub-Event", event)
		h.Set("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
		h.Set("X-GitHub-Hook-ID", "470162148")
		h.Set("User-Agent", "GitHub-Hookshot/044aadd")
	case berth.GitLab:
		h.Set("X-Gitlab-Event", event)
		h.Set("X-Gitlab-Event-UUID", "13792a34-cac6-4fda-95a8-c58e00a3954e")
		h.Set("X-Gitlab-Webhook-UUID", "2a3c1a9c-2b1e-4ea7-8d19-8d5ad4b4b8f1")
		h.Set("X-Gitlab-Instance", "https://gitlab.example.com")
		h.Set("User-Agent", "GitLab/17.6.0")
	case berth.Gitea:
		// Forgejo sends its own headers and Gitea's, GitHub's and Gogs'.
		for _, prefix := range []string{"X-Forgejo-", "X-Gitea-", "X-GitHub-", "X-Gogs-"} {
			h.Set(prefix+"Event", event)
			h.Set(prefix+"Delivery", "f6266f16-1bf3-46a5-9ea4-602e06ead473")
		}
	case berth.Bitbucket:
		h.Set("X-Event-Key", event)
		h.Set("X-Hook-UUID", "cb8a1a5a-5a4b-4c3d-9e2f-1a2b3c4d5e6f")
		h.Set("X-Request-UUID", "afe3ec8b-57b5-4cbd-9b0d-3f2d9c1a2b3c")
		h.Set("X-Attempt-Number", "1")
		h.Set("User-Agent", "Bitbucket-Webhooks/2.0")
	}
	return h
}

func TestParseFixtures(t *testing.T) {
	const (
		ghAfter  = "9f4c7b0d2e1a3c5b7d9e0f1a2b3c4d5e6f708192"
		ghBefore = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
	)
	pushes := []struct {
		file     string
		provider berth.Provider
		event    string
		want     git.Push
	}{
		{"github-push.json", berth.GitHub, "push", git.Push{Ref: "refs/heads/main", Branch: "main", Before: ghBefore, After: ghAfter,
			ChangedPaths: []string{"README.md", "docs/old.md", "services/api/health.go", "services/api/main.go"}, PathsKnown: true,
			Repo: "octo-org/shop", Pusher: "octocat"}},
		{"github-push-delete.json", berth.GitHub, "push", git.Push{Ref: "refs/heads/feature/cart", Branch: "feature/cart",
			Before: "4e7b1c2d3a5f60718293a4b5c6d7e8f9012345ab", After: "0000000000000000000000000000000000000000", Deleted: true,
			Repo: "octo-org/shop", Pusher: "octocat"}},
		{"gitlab-push.json", berth.GitLab, "Push Hook", git.Push{Ref: "refs/heads/main", Branch: "main",
			Before: "95790bf891e76fee5e1747ab589903a6a1f80f22", After: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
			ChangedPaths: []string{"README.md", "api/old_handler.go", "web/app.js", "web/locales/ca.yml"}, PathsKnown: true,
			Repo: "acme/shop", Pusher: "jsmith"}},
		{"gitea-push.json", berth.Gitea, "push", git.Push{Ref: "refs/heads/develop", Branch: "develop",
			Before: "28e1879d029cb852e4844d9c718537df08844e03", After: "bffeb74224043ba2feb48d137756c8a9331c449a",
			ChangedPaths: []string{"api/hooks.go", "api/main.go"}, PathsKnown: true, Repo: "gitea/webhooks", Pusher: "gitea"}},
		{"gitea-push-nofiles.json", berth.Gitea, "push", git.Push{Ref: "refs/heads/develop", Branch: "develop",
			Before: "28e1879d029cb852e4844d9c718537df08844e03", After: "bffeb74224043ba2feb48d137756c8a9331c449a",
			PathsKnown: false, Repo: "gitea/webhooks", Pusher: "gitea"}},
		{"bitbucket-push.json", berth.Bitbucket, "repo:push", git.Push{Ref: "refs/heads/main", Branch: "main",
			Before: "1e65c05c1d5171631d92438a13901ca7dae9618c", After: "709d658dc5b6d6afcd46049c2f332ee3f515a67d",
			PathsKnown: false, Repo: "acme/shop", Pusher: "emmap1"}},
	}
	for _, tc := range pushes {
		t.Run(tc.file, func(t *testing.T) {
			h := hookHeaders(tc.provider, tc.event)
			if p, err := git.Detect(h); err != nil || p != tc.provider {
				t.Fatalf("Detect = %s, %v; want %s", p, err, tc.provider)
			}
			ev, err := git.Parse(tc.provider, h, fixture(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if ev.Ignored != "" || ev.PullRequest != nil || len(ev.Pushes) != 1 {
				t.Fatalf("event %+v, want one push", ev)
			}
			if got := ev.Pushes[0]; !pushEqual(got, tc.want) {
				t.Errorf("push\n got %+v\nwant %+v", got, tc.want)
			}
			if ev.DeliveryID == "" || ev.Name != tc.event {
				t.Errorf("delivery %q, name %q", ev.DeliveryID, ev.Name)
			}
		})
	}

	prs := []struct {
		file     string
		provider berth.Provider
		event    string
		want     berth.PullRequest
	}{
		{"github-pull_request-opened.json", berth.GitHub, "pull_request", berth.PullRequest{Provider: berth.GitHub, Repo: "octo-org/shop",
			Number: 7, Action: berth.PullRequestOpened, Title: "Checkout: pay with a saved card", Author: "octocat", BaseRef: "main",
			HeadRef: "feature/saved-cards", HeadSHA: "c0ffee00d15ea5e5b0a710ad0123456789abcdef", HeadRepo: "https://github.com/octo-org/shop.git",
			FetchRef: "refs/pull/7/head"}},
		{"github-pull_request-synchronize.json", berth.GitHub, "pull_request", berth.PullRequest{Provider: berth.GitHub, Repo: "octo-org/shop",
			Number: 7, Action: berth.PullRequestUpdated, Title: "Checkout: pay with a saved card", Author: "octocat", BaseRef: "main",
			HeadRef: "feature/saved-cards", HeadSHA: "d00dfeed0123456789abcdef0123456789abcdef", HeadRepo: "https://github.com/octo-org/shop.git",
			FetchRef: "refs/pull/7/head"}},
		{"github-pull_request-closed.json", berth.GitHub, "pull_request", berth.PullRequest{Provider: berth.GitHub, Repo: "octo-org/shop",
			Number: 7, Action: berth.PullRequestClosed, Merged: true, Title: "Checkout: pay with a saved card", Author: "octocat", BaseRef: "main",
			HeadRef: "feature/saved-cards", HeadSHA: "d00dfeed0123456789abcdef0123456789abcdef", HeadRepo: "https://github.com/octo-org/shop.git",
			FetchRef: "refs/pull/7/head"}},
		{"github-pull_request-fork.json", berth.GitHub, "pull_request", berth.PullRequest{Provider: berth.GitHub, Repo: "octo-org/shop",
			Number: 8, Action: berth.PullRequestOpened, Title: "Faster images", Author: "mallory", BaseRef: "main",
			HeadRef: "main", HeadSHA: "badc0de0badc0de0badc0de0badc0de0badc0de0", HeadRepo: "https://github.com/mallory/shop.git",
			Fork: true, FetchRef: "refs/pull/8/head"}},
		{"gitlab-merge_request-open.json", berth.GitLab, "Merge Request Hook", berth.PullRequest{Provider: berth.GitLab, Repo: "acme/shop",
			Number: 1, Action: berth.PullRequestOpened, Title: "MS-Viewport", Author: "root", BaseRef: "main", HeadRef: "ms-viewport",
			HeadSHA: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", HeadRepo: "https://gitlab.example.com/acme/shop.git",
			FetchRef: "refs/merge-requests/1/head"}},
		{"gitlab-merge_request-update.json", berth.GitLab, "Merge Request Hook", berth.PullRequest{Provider: berth.GitLab, Repo: "acme/shop",
			Number: 1, Action: berth.PullRequestUpdated, Title: "MS-Viewport", Author: "root", BaseRef: "main", HeadRef: "ms-viewport",
			HeadSHA: "4b825dc642cb6eb9a060e54bf8d69288fbee4904", HeadRepo: "https://gitlab.example.com/acme/shop.git",
			FetchRef: "refs/merge-requests/1/head"}},
		{"gitlab-merge_request-merge.json", berth.GitLab, "Merge Request Hook", berth.PullRequest{Provider: berth.GitLab, Repo: "acme/shop",
			Number: 1, Action: berth.PullRequestClosed, Merged: true, Title: "MS-Viewport", Author: "root", BaseRef: "main", HeadRef: "ms-viewport",
			HeadSHA: "4b825dc642cb6eb9a060e54bf8d69288fbee4904", HeadRepo: "https://gitlab.example.com/acme/shop.git",
			FetchRef: "refs/merge-requests/1/head"}},
		{"gitlab-merge_request-close.json", berth.GitLab, "Merge Request Hook", berth.PullRequest{Provider: berth.GitLab, Repo: "acme/shop",
			Number: 1, Action: berth.PullRequestClosed, Title: "MS-Viewport", Author: "root", BaseRef: "main", HeadRef: "ms-viewport",
			HeadSHA: "4b825dc642cb6eb9a060e54bf8d69288fbee4904", HeadRepo: "https://gitlab.example.com/acme/shop.git",
			FetchRef: "refs/merge-requests/1/head"}},
		{"gitea-pull_request-opened.json", berth.Gitea, "pull_request", berth.PullRequest{Provider: berth.Gitea, Repo: "gitea/webhooks",
			Number: 12, Action: berth.PullRequestOpened, Title: "Add the webhook page", Author: "gitea", BaseRef: "main", HeadRef: "feature/page",
			HeadSHA: "5f2d1e0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e", HeadRepo: "https://git.example.com/gitea/webhooks.git", FetchRef: "refs/pull/12/head"}},
		{"gitea-pull_request-synchronized.json", berth.Gitea, "pull_request", berth.PullRequest{Provider: berth.Gitea, Repo: "gitea/webhooks",
			Number: 12, Action: berth.PullRequestUpdated, Title: "Add the webhook page", Author: "gitea", BaseRef: "main", HeadRef: "feature/page",
			HeadSHA: "6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f7", HeadRepo: "https://git.example.com/gitea/webhooks.git", FetchRef: "refs/pull/12/head"}},
		{"gitea-pull_request-closed.json", berth.Gitea, "pull_request", berth.PullRequest{Provider: berth.Gitea, Repo: "gitea/webhooks",
			Number: 12, Action: berth.PullRequestClosed, Merged: true, Title: "Add the webhook page", Author: "gitea", BaseRef: "main", HeadRef: "feature/page",
			HeadSHA: "6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f7", HeadRepo: "https://git.example.com/gitea/webhooks.git", FetchRef: "refs/pull/12/head"}},
		{"bitbucket-pullrequest-created.json", berth.Bitbucket, "pullrequest:created", berth.PullRequest{Provider: berth.Bitbucket, Repo: "acme/shop",
			Number: 3, Action: berth.PullRequestOpened, Title: "Pay with a saved card", Author: "emmap1", BaseRef: "main",
			HeadRef: "feature/saved-cards", HeadSHA: "d3022fc0ca3d", HeadRepo: "https://bitbucket.org/acme/shop.git"}},
		{"bitbucket-pullrequest-updated.json", berth.Bitbucket, "pullrequest:updated", berth.PullRequest{Provider: berth.Bitbucket, Repo: "acme/shop",
			Number: 3, Action: berth.PullRequestUpdated, Title: "Pay with a saved card", Author: "emmap1", BaseRef: "main",
			HeadRef: "feature/saved-cards", HeadSHA: "8a9b0c1d2e3f", HeadRepo: "https://bitbucket.org/acme/shop.git"}},
		{"bitbucket-pullrequest-fulfilled.json", berth.Bitbucket, "pullrequest:fulfilled", berth.PullRequest{Provider: berth.Bitbucket, Repo: "acme/shop",
			Number: 3, Action: berth.PullRequestClosed, Merged: true, Title: "Pay with a saved card", Author: "emmap1", BaseRef: "main",
			HeadRef: "feature/saved-cards", HeadSHA: "8a9b0c1d2e3f", HeadRepo: "https://bitbucket.org/acme/shop.git"}},
		{"bitbucket-pullrequest-rejected.json", berth.Bitbucket, "pullrequest:rejected", berth.PullRequest{Provider: berth.Bitbucket, Repo: "acme/shop",
			Number: 3, Action: berth.PullRequestClosed, Title: "Pay with a saved card", Author: "emmap1", BaseRef: "main",
			HeadRef: "feature/saved-cards", HeadSHA: "8a9b0c1d2e3f", HeadRepo: "https://bitbucket.org/acme/shop.git"}},
		{"bitbucket-pullrequest-fork.json", berth.Bitbucket, "pullrequest:created", berth.PullRequest{Provider: berth.Bitbucket, Repo: "acme/shop",
			Number: 4, Action: berth.PullRequestOpened, Title: "Pay with a saved card", Author: "emmap1", BaseRef: "main",
			HeadRef: "main", HeadSHA: "0badc0ffee00", HeadRepo: "https://bitbucket.org/mallory/shop.git", Fork: true}},
	}
	for _, tc := range prs {
		t.Run(tc.file, func(t *testing.T) {
			h := hookHeaders(tc.provider, tc.event)
			ev, err := git.Parse(tc.provider, h, fixture(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if ev.PullRequest == nil || len(ev.Pushes) != 0 || ev.Ignored != "" {
				t.Fatalf("event %+v, want a pull request", ev)
			}
			if *ev.PullRequest != tc.want {
				t.Errorf("pull request\n got %+v\nwant %+v", *ev.PullRequest, tc.want)
			}
		})
	}

	ignored := []struct {
		file     string
		provider berth.Provider
		event    string
		reason   string
	}{
		{"github-ping.json", berth.GitHub, "ping", "ping"},
		{"github-push-tag.json", berth.GitHub, "push", "tag push refs/tags/v1.4.0"},
		{"github-pull_request-labeled.json", berth.GitHub, "pull_request", "pull request #7 labeled"},
		{"github-push.json", berth.GitHub, "issues", "event issues"},
		{"gitlab-tag_push.json", berth.GitLab, "Tag Push Hook", "tag push refs/tags/v1.0.0"},
		{"gitlab-merge_request-edit.json", berth.GitLab, "Merge Request Hook", "updated without new commits"},
		{"gitlab-push.json", berth.GitLab, "Pipeline Hook", "event Pipeline Hook"},
		{"bitbucket-push-tag-delete.json", berth.Bitbucket, "repo:push", ""}, // one tag, one deleted branch: see below
		{"bitbucket-push.json", berth.Bitbucket, "repo:fork", "event repo:fork"},
	}
	for _, tc := range ignored {
		t.Run("ignored "+tc.event+" "+tc.file, func(t *testing.T) {
			ev, err := git.Parse(tc.provider, hookHeaders(tc.provider, tc.event), fixture(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if tc.reason == "" {
				// A tag and a deleted branch: the branch is a push marked
				// deleted, the tag is left out.
				if len(ev.Pushes) != 1 || !ev.Pushes[0].Deleted || ev.Pushes[0].Branch != "feature/cart" {
					t.Errorf("pushes %+v, want feature/cart deleted", ev.Pushes)
				}
				return
			}
			if !strings.Contains(ev.Ignored, tc.reason) || len(ev.Pushes) != 0 || ev.PullRequest != nil {
				t.Errorf("event %+v, want ignored with %q", ev, tc.reason)
			}
		})
	}
}

// TestEventRepository: every fixture names its repository — for a pull
// request the base, never a fork's head — and it matches the app that
// deploys from that repository, in any of its URL forms, and no other.
func TestEventRepository(t *testing.T) {
	const (
		github    = "octo-org/shop"
		gitlab    = "acme/shop"
		gitea     = "gitea/webhooks"
		bitbucket = "acme/shop"
	)
	cases := []struct {
		file     string
		provider berth.Provider
		event    string
		name     string
		same     []string
		other    []string
	}{
		{"github-push.json", berth.GitHub, "push", github,
			[]string{"https://github.com/octo-org/shop.git", "git@github.com:Octo-Org/shop.git", "ssh://git@ssh.github.com:443/octo-org/shop.git"},
			[]string{"https://github.com/octo-org/other.git", "https://github.com/mallory/shop", "https://git.example.com/shop.git"}},
		{"github-push-delete.json", berth.GitHub, "push", github, []string{"https://github.com/octo-org/shop"}, []string{"https://github.com/octo-org/shop2"}},
		{"github-push-tag.json", berth.GitHub, "push", github, []string{"https://github.com/octo-org/shop"}, []string{"https://github.com/acme/shop"}},
		{"github-ping.json", berth.GitHub, "ping", github, []string{"https://github.com/octo-org/shop"}, []string{"https://github.com/acme/shop"}},
		{"github-pull_request-opened.json", berth.GitHub, "pull_request", github, []string{"git@github.com:octo-org/shop.git"}, []string{"https://github.com/acme/shop"}},
		{"github-pull_request-synchronize.json", berth.GitHub, "pull_request", github, []string{"https://github.com/octo-org/shop"}, []string{"https://github.com/acme/shop"}},
		{"github-pull_request-closed.json", berth.GitHub, "pull_request", github, []string{"https://github.com/octo-org/shop"}, []string{"https://github.com/acme/shop"}},
		{"github-pull_request-labeled.json", berth.GitHub, "pull_request", github, []string{"https://github.com/octo-org/shop"}, []string{"https://github.com/acme/shop"}},
		{"github-pull_request-fork.json", berth.GitHub, "pull_request", github, []string{"https://github.com/octo-org/shop.git"}, []string{"https://github.com/mallory/shop.git"}},
		{"gitlab-push.json", berth.GitLab, "Push Hook", gitlab,
			[]string{"https://gitlab.example.com/acme/shop.git", "git@gitlab.example.com:acme/shop.git", "http://gitlab.internal:8080/acme/shop.git"},
			[]string{"https://gitlab.example.com/acme/other.git", "https://gitlab.example.com/evil/acme/shop.git", "https://gitlab.com/acme/shop-api"}},
		{"gitlab-tag_push.json", berth.GitLab, "Tag Push Hook", gitlab, []string{"https://gitlab.example.com/acme/shop"}, []string{"https://gitlab.example.com/acme/api"}},
		{"gitlab-merge_request-open.json", berth.GitLab, "Merge Request Hook", gitlab, []string{"git@gitlab.example.com:acme/shop.git"}, []string{"https://gitlab.example.com/acme/api"}},
		{"gitlab-merge_request-update.json", berth.GitLab, "Merge Request Hook", gitlab, []string{"https://gitlab.example.com/acme/shop"}, []string{"https://gitlab.example.com/acme/api"}},
		{"gitlab-merge_request-edit.json", berth.GitLab, "Merge Request Hook", gitlab, []string{"https://gitlab.example.com/acme/shop"}, []string{"https://gitlab.example.com/acme/api"}},
		{"gitlab-merge_request-merge.json", berth.GitLab, "Merge Request Hook", gitlab, []string{"https://gitlab.example.com/acme/shop"}, []string{"https://gitlab.example.com/acme/api"}},
		{"gitlab-merge_request-close.json", berth.GitLab, "Merge Request Hook", gitlab, []string{"https://gitlab.example.com/acme/shop"}, []string{"https://gitlab.example.com/acme/api"}},
		{"gitea-push.json", berth.Gitea, "push", gitea,
			[]string{"https://git.example.com/gitea/webhooks.git", "ssh://git@git.example.com:2222/gitea/webhooks.git", "http://gitea:3000/gitea/webhooks.git"},
			[]string{"https://git.example.com/gitea/other.git", "https://git.example.com/webhooks.git"}},
		{"gitea-push-nofiles.json", berth.Gitea, "push", gitea, []string{"https://git.example.com/gitea/webhooks"}, []string{"https://git.example.com/gitea/x"}},
		{"gitea-pull_request-opened.json", berth.Gitea, "pull_request", gitea, []string{"https://git.example.com/gitea/webhooks"}, []string{"https://git.example.com/gitea/x"}},
		{"gitea-pull_request-synchronized.json", berth.Gitea, "pull_request", gitea, []string{"https://git.example.com/gitea/webhooks"}, []string{"https://git.example.com/gitea/x"}},
		{"gitea-pull_request-closed.json", berth.Gitea, "pull_request", gitea, []string{"https://git.example.com/gitea/webhooks"}, []string{"https://git.example.com/gitea/x"}},
		{"bitbucket-push.json", berth.Bitbucket, "repo:push", bitbucket,
			[]string{"https://bitbucket.org/acme/shop.git", "git@bitbucket.org:acme/shop.git", "https://emmap1@bitbucket.org/acme/shop.git"},
			[]string{"https://bitbucket.org/acme/other.git", "git@bitbucket.org:mallory/shop.git"}},
		{"bitbucket-push-tag-delete.json", berth.Bitbucket, "repo:push", bitbucket, []string{"https://bitbucket.org/acme/shop"}, []string{"https://bitbucket.org/acme/x"}},
		{"bitbucket-pullrequest-created.json", berth.Bitbucket, "pullrequest:created", bitbucket, []string{"https://bitbucket.org/acme/shop"}, []string{"https://bitbucket.org/acme/x"}},
		{"bitbucket-pullrequest-updated.json", berth.Bitbucket, "pullrequest:updated", bitbucket, []string{"https://bitbucket.org/acme/shop"}, []string{"https://bitbucket.org/acme/x"}},
		{"bitbucket-pullrequest-fulfilled.json", berth.Bitbucket, "pullrequest:fulfilled", bitbucket, []string{"https://bitbucket.org/acme/shop"}, []string{"https://bitbucket.org/acme/x"}},
		{"bitbucket-pullrequest-rejected.json", berth.Bitbucket, "pullrequest:rejected", bitbucket, []string{"https://bitbucket.org/acme/shop"}, []string{"https://bitbucket.org/acme/x"}},
		{"bitbucket-pullrequest-fork.json", berth.Bitbucket, "pullrequest:created", bitbucket, []string{"git@bitbucket.org:acme/shop.git"}, []string{"git@bitbucket.org:mallory/shop.git"}},
	}
	covered := map[string]bool{}
	for _, tc := range cases {
		covered[tc.file] = true
		t.Run(tc.file, func(t *testing.T) {
			ev, err := git.Parse(tc.provider, hookHeaders(tc.provider, tc.event), fixture(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if got := ev.Repository.Name(); got != tc.name {
				t.Errorf("repository %q, want %q", got, tc.name)
			}
			for _, u := range tc.same {
				if match, known := ev.Repository.Matches(u); !match || !known {
					t.Errorf("Matches(%s) = %v, %v; want a match", u, match, known)
				}
			}
			for _, u := range tc.other {
				if match, known := ev.Repository.Matches(u); match || !known {
					t.Errorf("Matches(%s) = %v, %v; want a known mismatch", u, match, known)
				}
			}
		})
	}
	entries, err := os.ReadDir(filepath.Join("testdata", "webhooks"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !covered[e.Name()] {
			t.Errorf("fixture %s is not checked", e.Name())
		}
	}
}

// TestRepositoryMatches: which names of a repository decide, and when
// there is nothing to compare.
func TestRepositoryMatches(t *testing.T) {
	hello := git.Repository{FullName: "acme/hello", URLs: []string{"https://github.com/acme/hello.git", "git@github.com:acme/hello.git"}}
	for _, c := range []struct {
		name         string
		r            git.Repository
		url          string
		match, known bool
	}{
		{"same https", hello, "https://github.com/acme/hello", true, true},
		{"same ssh, other case", hello, "git@GitHub.com:ACME/Hello.git", true, true},
		{"same host, other repository", hello, "https://github.com/acme/other.git", false, true},
		{"same host, full name as a suffix", hello, "https://github.com/evil/acme/hello.git", false, true},
		{"another host, same path", hello, "https://git.internal/acme/hello.git", true, true},
		{"another host, another path", hello, "https://git.internal/acme/other.git", false, true},
		{"full name only", git.Repository{FullName: "acme/hello"}, "https://github.com/acme/hello.git", true, true},
		{"full name only, other", git.Repository{FullName: "acme/other"}, "https://github.com/acme/hello.git", false, true},
		{"full name under a sub-path", git.Repository{FullName: "group/name"}, "https://example.com/gitlab/group/name.git", true, true},
		{"full name not on a segment boundary", git.Repository{FullName: "o/name"}, "https://example.com/foo/name.git", false, true},
		{"payload names nothing", git.Repository{}, "https://github.com/acme/hello.git", false, false},
		{"payload URLs unreadable", git.Repository{URLs: []string{"not a url"}}, "https://github.com/acme/hello.git", false, false},
		{"local app path", hello, "/srv/git/hello.git", false, false},
	} {
		if match, known := c.r.Matches(c.url); match != c.match || known != c.known {
			t.Errorf("%s: Matches(%s) = %v, %v; want %v, %v", c.name, c.url, match, known, c.match, c.known)
		}
	}
}

func pushEqual(a, b git.Push) bool {
	return a.Ref == b.Ref && a.Branch == b.Branch && a.Before == b.Before && a.After == b.After && a.Deleted == b.Deleted &&
		slices.Equal(a.ChangedPaths, b.ChangedPaths) && a.PathsKnown == b.PathsKnown && a.Repo == b.Repo && a.Pusher == b.Pusher
}

// edit returns the JSON of a fixture after f changed its decoded form.
func edit(t *testing.T, name string, f func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(fixture(t, name), &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPathsKnown checks when a push's file lists are complete: never for
// truncated commit lists, new branches or force pushes.
func TestPathsKnown(t *testing.T) {
	for name, tc := range map[string]struct {
		file  string
		p     berth.Provider
		event string
		edit  func(m map[string]any)
	}{
		"github new branch": {"github-push.json", berth.GitHub, "push", func(m map[string]any) {
			m["created"], m["before"] = true, "0000000000000000000000000000000000000000"
		}},
		"github force push": {"github-push.json", berth.GitHub, "push", func(m map[string]any) { m["forced"] = true }},
		"github capped file list": {"github-push.json", berth.GitHub, "push", func(m map[string]any) {
			files := make([]any, 3000)
			for i := range files {
				files[i] = "f" + strings.Repeat("x", i%7)
			}
			m["commits"].([]any)[0].(map[string]any)["modified"] = files
		}},
		"github commits without file lists": {"github-push.json", berth.GitHub, "push", func(m map[string]any) {
			for _, c := range m["commits"].([]any) {
				for _, k := range []string{"added", "removed", "modified"} {
					delete(c.(map[string]any), k)
				}
			}
		}},
		"gitlab truncated": {"gitlab-push.json", berth.GitLab, "Push Hook", func(m map[string]any) { m["total_commits_count"] = 25 }},
		"gitea truncated":  {"gitea-push.json", berth.Gitea, "push", func(m map[string]any) { m["total_commits"] = 7 }},
	} {
		t.Run(name, func(t *testing.T) {
			ev, err := git.Parse(tc.p, hookHeaders(tc.p, tc.event), edit(t, tc.file, tc.edit))
			if err != nil {
				t.Fatal(err)
			}
			if len(ev.Pushes) != 1 || ev.Pushes[0].PathsKnown {
				t.Errorf("pushes %+v, want paths unknown", ev.Pushes)
			}
		})
	}
}

func TestParseMalformed(t *testing.T) {
	for name, tc := range map[string]struct {
		p     berth.Provider
		event string
		body  []byte
		want  string
	}{
		"not json":           {berth.GitHub, "push", []byte("ref=refs/heads/main"), "not valid JSON"},
		"truncated":          {berth.GitLab, "Push Hook", []byte(`{"ref": "refs/heads/main"`), "not valid JSON"},
		"array":              {berth.GitHub, "push", []byte(`[1,2]`), "push payload"},
		"wrong type":         {berth.GitHub, "push", []byte(`{"ref": 5}`), "field ref"},
		"no ref":             {berth.Gitea, "push", []byte(`{}`), "no ref"},
		"short after":        {berth.GitHub, "push", []byte(`{"ref":"refs/heads/main","before":"6113728f27ae82c7b1a177c8d03f9e96e0adf246","after":"abc"}`), "not a full commit ID"},
		"hostile branch":     {berth.GitHub, "push", []byte(`{"ref":"refs/heads/-x;touch /tmp/p","before":"6113728f27ae82c7b1a177c8d03f9e96e0adf246","after":"6113728f27ae82c7b1a177c8d03f9e96e0adf246"}`), "git ref"},
		"pr without head":    {berth.GitHub, "pull_request", []byte(`{"action":"opened","number":3,"pull_request":{"base":{"ref":"main","repo":{"full_name":"a/b"}}}}`), "head"},
		"pr hostile fetch":   {berth.Gitea, "pull_request", []byte(`{"action":"opened","number":-1}`), "number"},
		"bitbucket nothing":  {berth.Bitbucket, "repo:push", []byte(`{"push":{"changes":[]}}`), "push.changes"},
		"bitbucket no state": {berth.Bitbucket, "repo:push", []byte(`{"push":{"changes":[{}]}}`), "new or old"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := git.Parse(tc.p, hookHeaders(tc.p, tc.event), tc.body)
			if !berth.IsKind(err, berth.Invalid) || !strings.Contains(berth.ErrorMessage(err), tc.want) {
				t.Errorf("Parse: %v, want Invalid with %q", err, tc.want)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	const secret = "s3cr3t-0123456789abcdef"
	body := fixture(t, "github-push.json")
	for _, p := range berth.Providers {
		t.Run(string(p), func(t *testing.T) {
			h := hookHeaders(p, "push")
			name, value := git.Sign(p, body, secret)
			h.Set(name, value)
			if err := git.Verify(p, h, body, secret); err != nil {
				t.Fatalf("good signature: %v", err)
			}
			// Tampered body, other secret, missing header, no secret set.
			tampered := append([]byte{}, body...)
			tampered[10] ^= 1
			if err := git.Verify(p, h, tampered, secret); !berth.IsKind(err, berth.Unauthorized) && p != berth.GitLab {
				t.Errorf("tampered body: %v", err)
			}
			if err := git.Verify(p, h, body, secret+"x"); !berth.IsKind(err, berth.Unauthorized) {
				t.Errorf("other secret: %v", err)
			}
			if err := git.Verify(p, h, body, ""); !berth.IsKind(err, berth.Unauthorized) {
				t.Errorf("no secret: %v", err)
			}
			h.Del(name)
			err := git.Verify(p, h, body, secret)
			if !berth.IsKind(err, berth.Unauthorized) || !strings.Contains(berth.ErrorMessage(err), name) {
				t.Errorf("missing %s: %v", name, err)
			}
			for _, bad := range []string{"sha256=zz", "sha1=" + strings.Repeat("0", 40), strings.Repeat("0", 64), "", "sha256="} {
				h.Set(name, bad)
				if err := git.Verify(p, h, body, secret); !berth.IsKind(err, berth.Unauthorized) {
					t.Errorf("%s: %q accepted: %v", name, bad, err)
				}
				if err != nil && strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows the secret: %v", err)
				}
			}
		})
	}
	// Forgejo: its own header wins over Gitea's.
	h := hookHeaders(berth.Gitea, "push")
	_, good := git.Sign(berth.Gitea, body, secret)
	h.Set("X-Gitea-Signature", good)
	h.Set("X-Forgejo-Signature", strings.Repeat("0", 64))
	if err := git.Verify(berth.Gitea, h, body, secret); !berth.IsKind(err, berth.Unauthorized) {
		t.Errorf("a bad X-Forgejo-Signature was rescued by X-Gitea-Signature: %v", err)
	}
	h.Set("X-Forgejo-Signature", good)
	if err := git.Verify(berth.Gitea, h, body, secret); err != nil {
		t.Errorf("Forgejo signature: %v", err)
	}
}

func TestDetect(t *testing.T) {
	if _, err := git.Detect(http.Header{"Content-Type": {"application/json"}}); !berth.IsKind(err, berth.Invalid) {
		t.Errorf("no headers: %v", err)
	}
	// Gitea also sends GitHub's headers: it is still Gitea.
	if p, _ := git.Detect(hookHeaders(berth.Gitea, "push")); p != berth.Gitea {
		t.Errorf("Gitea detected as %s", p)
	}
	// X-Event-Key alone (without Bitbucket's request UUID) is not enough.
	if _, err := git.Detect(http.Header{"X-Event-Key": {"repo:push"}}); err == nil {
		t.Error("X-Event-Key alone detected as Bitbucket")
	}
	for _, p := range berth.Providers {
		if got := git.DeliveryID(p, hookHeaders(p, "push")); got == "" {
			t.Errorf("%s: no delivery ID", p)
		}
	}
	h := hookHeaders(berth.GitLab, "Push Hook")
	h.Set("Idempotency-Key", "idem-1")
	if got := git.DeliveryID(berth.GitLab, h); got != "idem-1" {
		t.Errorf("GitLab delivery ID %q, want the Idempotency-Key", got)
	}
}

// TestResolveHead resolves a Bitbucket head abbreviation against a real
// repository served by git http-backend.
func TestResolveHead(t *testing.T) {
	r := gittest.NewRepo(t)
	r.Write("a.txt", "1")
	r.Commit("first")
	r.Branch("feature/saved-cards")
	r.Write("a.txt", "2")
	head := r.Commit("second")
	url := gittest.Serve(t, map[string]*gittest.Repo{"shop": r}) + "/shop.git"
	ls := (&git.Fetcher{Egress: local}).LsRemote
	pr := berth.PullRequest{Provider: berth.Bitbucket, Repo: "acme/shop", Number: 3, Action: berth.PullRequestOpened,
		BaseRef: "main", HeadRef: "feature/saved-cards", HeadSHA: head[:12], HeadRepo: url}
	if err := git.ResolveHead(context.Background(), ls, berth.GitAuth{}, &pr); err != nil || pr.HeadSHA != head {
		t.Fatalf("ResolveHead = %s, %v; want %s", pr.HeadSHA, err, head)
	}
	moved := pr
	moved.HeadSHA = "0123456789ab"
	if err := git.ResolveHead(context.Background(), ls, berth.GitAuth{}, &moved); !berth.IsKind(err, berth.Invalid) || !strings.Contains(err.Error(), "moved on") {
		t.Errorf("moved head: %v", err)
	}
	gone := pr
	gone.HeadSHA, gone.HeadRef = head[:12], "deleted-branch"
	if err := git.ResolveHead(context.Background(), ls, berth.GitAuth{}, &gone); !berth.IsKind(err, berth.Invalid) {
		t.Errorf("deleted branch: %v", err)
	}
	if err := git.ResolveHead(context.Background(), nil, berth.GitAuth{}, &gone); !berth.IsKind(err, berth.Invalid) {
		t.Errorf("no resolver: %v", err)
	}
}

// FuzzParse feeds arbitrary bodies to every provider's parser: no input
// may panic, and whatever is accepted is valid.
func FuzzParse(f *testing.F) {
	entries, err := os.ReadDir(filepath.Join("testdata", "webhooks"))
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		f.Add(fixture(f, e.Name()), uint8(0))
	}
	f.Add([]byte(`{"ref":"refs/heads/main","commits":[{"added":null}]}`), uint8(1))
	f.Add([]byte(`{"push":{"changes":[{"new":null,"old":null}]}}`), uint8(3))
	events := []struct {
		p     berth.Provider
		names []string
	}{
		{berth.GitHub, []string{"push", "pull_request", "ping"}},
		{berth.GitLab, []string{"Push Hook", "Merge Request Hook", "Tag Push Hook"}},
		{berth.Gitea, []string{"push", "pull_request", "delete"}},
		{berth.Bitbucket, []string{"repo:push", "pullrequest:created", "pullrequest:fulfilled"}},
	}
	f.Fuzz(func(t *testing.T, body []byte, which uint8) {
		for _, e := range events {
			for _, name := range e.names {
				ev, err := git.Parse(e.p, hookHeaders(e.p, name), body)
				if err != nil {
					if !berth.IsKind(err, berth.Invalid) {
						t.Fatalf("%s %s: error of kind %s: %v", e.p, name, berth.ErrorKind(err), err)
					}
					continue
				}
				for _, p := range ev.Pushes {
					if err := berth.ValidGitRef(p.Branch); err != nil {
						t.Fatalf("%s %s: accepted branch %q", e.p, name, p.Branch)
					}
				}
				if ev.PullRequest != nil && e.p != berth.Bitbucket {
					if err := ev.PullRequest.Validate(); err != nil {
						t.Fatalf("%s %s: accepted pull request %+v: %v", e.p, name, ev.PullRequest, err)
					}
				}
			}
		}
		_ = which
		_ = git.Verify(berth.GitHub, http.Header{"X-Hub-Signature-256": {string(body)}}, body, "secret-secret-secret")
		_ = git.Verify(berth.GitLab, http.Header{"X-Gitlab-Token": {string(body)}}, body, "secret-secret-secret")
	})
}
