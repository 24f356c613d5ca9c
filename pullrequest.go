package berth

import (
	"fmt"
	"regexp"
)

// Provider is a Git hosting service that sends berth webhooks and receives
// its commit statuses.
type Provider string

// The providers berth understands.
const (
	GitHub    Provider = "github"
	GitLab    Provider = "gitlab"
	Gitea     Provider = "gitea" // also Forgejo, which sends the same payloads
	Bitbucket Provider = "bitbucket"
)

// Providers lists every provider, in the order documentation shows them.
var Providers = []Provider{GitHub, GitLab, Gitea, Bitbucket}

// ValidProvider returns an Invalid error unless p is a known provider.
func ValidProvider(p Provider) error {
	for _, q := range Providers {
		if p == q {
			return nil
		}
	}
	return E("check provider", Invalid, "provider %q: use github, gitlab, gitea or bitbucket", clip(string(p)))
}

// PullRequestAction is what happened to a pull (or merge) request.
type PullRequestAction string

// The pull request actions berth acts on; a provider's other actions
// (labelled, assigned, …) are ignored before they become a PullRequest.
const (
	PullRequestOpened  PullRequestAction = "opened"  // opened or reopened: deploy a preview
	PullRequestUpdated PullRequestAction = "updated" // new commits on its head: redeploy the preview
	PullRequestClosed  PullRequestAction = "closed"  // closed or merged: tear the preview down
)

// PullRequest is a provider's pull request (GitLab: merge request) event,
// reduced to what preview environments need. Webhook parsers produce it for
// every provider alike.
type PullRequest struct {
	Provider Provider          `json:"provider"`
	Repo     string            `json:"repo"`   // the base repository's full name: "owner/name" (GitLab: "group/sub/name")
	Number   int               `json:"number"` // GitLab: the merge request's iid
	Action   PullRequestAction `json:"action"`
	Merged   bool              `json:"merged,omitempty"` // with PullRequestClosed
	Title    string            `json:"title,omitempty"`
	Author   string            `json:"author,omitempty"` // the provider's login of the opener
	BaseRef  string            `json:"base_ref"`         // branch the request targets
	HeadRef  string            `json:"head_ref"`         // branch name in the head repository
	HeadSHA  string            `json:"head_sha"`         // full commit ID of the head
	// HeadRepo is the clone URL of the repository the head lives in; for a
	// fork it differs from the base repository's.
	HeadRepo string `json:"head_repo,omitempty"`
	// Fork is true when the head lives in another repository than the base:
	// such a request's code is untrusted, and its preview gets no secrets
	// until a member approves it.
	Fork bool `json:"fork"`
	// FetchRef is a ref of the base repository that points at the head
	// ("refs/pull/7/head", "refs/merge-requests/7/head"), where the provider
	// has one; empty for Bitbucket, whose head must be fetched from HeadRepo.
	FetchRef string `json:"fetch_ref,omitempty"`
}

var shaRE = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

// Validate checks a pull request built from a payload, so that nothing a
// payload carries reaches a host name, a git argument or the store unchecked.
func (pr *PullRequest) Validate() error {
	const op = "check pull request"
	bad := func(format string, args ...any) error { return E(op, Invalid, format, args...) }
	if err := ValidProvider(pr.Provider); err != nil {
		return err
	}
	switch {
	case pr.Number <= 0 || pr.Number > 1<<31-1:
		return bad("pull request number %d out of range", pr.Number)
	case pr.Action != PullRequestOpened && pr.Action != PullRequestUpdated && pr.Action != PullRequestClosed:
		return bad("pull request action %q", clip(string(pr.Action)))
	case !shaRE.MatchString(pr.HeadSHA):
		return bad("pull request head %q is not a full commit ID", clip(pr.HeadSHA))
	case len(pr.Repo) == 0 || len(pr.Repo) > 512:
		return bad("pull request repository name missing or too long")
	}
	for _, ref := range []string{pr.BaseRef, pr.HeadRef} {
		if err := ValidGitRef(ref); err != nil {
			return bad("pull request: %v", err)
		}
	}
	if pr.FetchRef != "" {
		if err := ValidGitRef(pr.FetchRef); err != nil {
			return bad("pull request: %v", err)
		}
	}
	if len(pr.Title) > 1024 || len(pr.Author) > 256 || len(pr.HeadRepo) > 1024 {
		return bad("pull request field too long")
	}
	return nil
}

// PreviewHost is the host of pull request n's preview of an app served at
// domain: "pr-7.example.com" for 7 and "example.com".
func PreviewHost(n int, domain string) string { return fmt.Sprintf("pr-%d.%s", n, domain) }
