package git

// Webhook payloads and signatures of GitHub, GitLab, Gitea/Forgejo and
// Bitbucket Cloud: which provider sent a request (Detect), whether it holds
// the app's secret (Verify, constant time), and what it says (Parse), as a
// provider-neutral Push, a berth.PullRequest, or a reason to ignore it.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/berthhq/berth"
)

// Push is a push to one ref, whatever the provider.
type Push struct {
	Ref    string `json:"ref"`    // full ref: "refs/heads/main"
	Branch string `json:"branch"` // "main"
	Before string `json:"before"` // the commit the ref pointed at; zeros for a new branch
	After  string `json:"after"`  // the commit it points at now; zeros when deleted
	// Deleted is true when the push deleted the branch.
	Deleted bool `json:"deleted"`
	// ChangedPaths are the files the pushed commits added, modified or
	// removed, as far as the payload lists them; PathsKnown says whether
	// that list is complete. It is not when the provider sends no file
	// lists (Bitbucket), truncates the commits (GitLab past 20, GitHub past
	// 2048 or past its per-list cap), or the push created the branch or
	// rewrote it (force push), where the commits listed are not the diff.
	ChangedPaths []string `json:"changed_paths,omitempty"`
	PathsKnown   bool     `json:"paths_known"`
	Repo         string   `json:"repo"`   // "owner/name" (GitLab: "group/sub/name")
	Pusher       string   `json:"pusher"` // the provider's login or display name
}

// Event is what a webhook delivery says: pushes to branches, a pull
// request, or nothing berth acts on (Ignored says why).
type Event struct {
	Provider    berth.Provider
	Name        string // the provider's event name: "push", "Push Hook", "repo:push"…
	DeliveryID  string
	Pushes      []Push // branch pushes; Bitbucket may send several in one delivery
	PullRequest *berth.PullRequest
	// Ignored is why the delivery needs no action ("ping", "tag push
	// refs/tags/v1"); empty when Pushes or PullRequest is set.
	Ignored string
	// Repository is the repository the event is about, as the payload
	// names it: for a pull request the base repository (a fork's head
	// repository differs by design). Empty when the payload does not say.
	Repository Repository
}

// Repository is how a payload names a repository: its full name
// ("owner/name", GitLab "group/sub/name") and the URLs the provider lists
// for it (clone, ssh, web).
type Repository struct {
	FullName string
	URLs     []string
}

// repository gathers a payload's names of a repository, leaving out the
// empty ones.
func repository(fullName string, urls ...string) Repository {
	r := Repository{FullName: fullName}
	for _, u := range urls {
		if u != "" {
			r.URLs = append(r.URLs, u)
		}
	}
	return r
}

// Name is the repository's name for a message: its full name, else the
// host and path of its first URL that has them.
func (r Repository) Name() string {
	if r.FullName != "" {
		return r.FullName
	}
	for _, u := range r.URLs {
		if host, path, ok := RepoPath(u); ok {
			return host + "/" + path
		}
	}
	return ""
}

// Matches reports whether r names the repository at url (an app's git
// URL), compared by RepoPath; known is false when it cannot tell: r is
// empty or url is not a remote URL. When one of r's URLs is on url's host,
// those URLs alone decide, by their whole path. Otherwise (the app reaches
// the forge by another name: an internal address, an ssh alias) the
// repository matches when url's path ends with r's full name or the path
// of one of its URLs, on a segment boundary, so that a forge under a
// sub-path (https://example.com/gitlab/group/name) matches too.
func (r Repository) Matches(url string) (match, known bool) {
	host, path, ok := RepoPath(url)
	if !ok {
		return false, false
	}
	var names []string
	sameHost := false
	for _, u := range r.URLs {
		h, p, ok := RepoPath(u)
		if !ok {
			continue
		}
		if h == host {
			if p == path {
				return true, true
			}
			sameHost = true
		}
		names = append(names, p)
	}
	if sameHost {
		return false, true
	}
	if n := strings.ToLower(strings.Trim(r.FullName, "/")); n != "" {
		names = append(names, n)
	}
	for _, n := range names {
		if path == n || strings.HasSuffix(path, "/"+n) {
			return true, true
		}
	}
	return false, len(names) > 0
}

// Detect tells which provider sent a request, from its headers. Gitea and
// Forgejo also send GitHub's headers, so theirs are looked at first.
func Detect(h http.Header) (berth.Provider, error) {
	switch {
	case h.Get("X-Forgejo-Event") != "" || h.Get("X-Gitea-Event") != "":
		return berth.Gitea, nil
	case h.Get("X-Gitlab-Event") != "":
		return berth.GitLab, nil
	case h.Get("X-Event-Key") != "" && (h.Get("X-Request-UUID") != "" || h.Get("X-Hook-UUID") != ""):
		return berth.Bitbucket, nil
	case h.Get("X-GitHub-Event") != "":
		return berth.GitHub, nil
	}
	return "", berth.E("detect webhook provider", berth.Invalid,
		"no provider event header: expected X-GitHub-Event, X-Gitlab-Event, X-Gitea-Event, X-Forgejo-Event or X-Event-Key")
}

// EventName is the provider's name of the event a request carries.
func EventName(p berth.Provider, h http.Header) string {
	switch p {
	case berth.GitHub:
		return h.Get("X-GitHub-Event")
	case berth.GitLab:
		return h.Get("X-Gitlab-Event")
	case berth.Gitea:
		if v := h.Get("X-Forgejo-Event"); v != "" {
			return v
		}
		return h.Get("X-Gitea-Event")
	case berth.Bitbucket:
		return h.Get("X-Event-Key")
	}
	return ""
}

// deliveryHeaders are the headers that carry a provider's delivery ID, the
// preferred first. A redelivery carries the same ID (GitLab: the
// Idempotency-Key, sent since 17.4; before, the event's UUID).
var deliveryHeaders = map[berth.Provider][]string{
	berth.GitHub:    {"X-GitHub-Delivery"},
	berth.GitLab:    {"Idempotency-Key", "X-Gitlab-Event-UUID"},
	berth.Gitea:     {"X-Forgejo-Delivery", "X-Gitea-Delivery"},
	berth.Bitbucket: {"X-Request-UUID"},
}

// DeliveryID is the provider's ID of a delivery; empty when the request
// has none.
func DeliveryID(p berth.Provider, h http.Header) string {
	for _, name := range deliveryHeaders[p] {
		if v := strings.TrimSpace(h.Get(name)); v != "" {
			return v
		}
	}
	return ""
}

// DeliveryHeader names the header that should carry p's delivery ID, for
// an error message.
func DeliveryHeader(p berth.Provider) string {
	if hs := deliveryHeaders[p]; len(hs) > 0 {
		return hs[0]
	}
	return "a delivery ID header"
}

// errSignature is the one answer to every signature that does not match,
// so that a caller learns nothing about why.
func errSignature(header string) error {
	return berth.E("verify webhook", berth.Unauthorized, "the %s header does not match the app's webhook secret", header)
}

// Verify checks that a request was sent with secret: the HMAC-SHA256 of the
// raw body (GitHub X-Hub-Signature-256 and Bitbucket X-Hub-Signature as
// "sha256=<hex>", Gitea X-Gitea-Signature and Forgejo X-Forgejo-Signature as
// bare hex) or, for GitLab, the secret itself in X-Gitlab-Token. Every
// comparison takes constant time. A missing or non-matching signature is
// an Unauthorized error that names the header, never the secret.
func Verify(p berth.Provider, h http.Header, body []byte, secret string) error {
	const op = "verify webhook"
	if secret == "" {
		return berth.E(op, berth.Unauthorized, "the app has no webhook secret")
	}
	hmacHex := func(header, prefix string) error {
		v := strings.TrimSpace(h.Get(header))
		if v == "" {
			return berth.E(op, berth.Unauthorized, "the request has no %s header: set the app's webhook secret in the provider's webhook settings", header)
		}
		if prefix != "" {
			rest, ok := strings.CutPrefix(v, prefix)
			if !ok {
				return errSignature(header)
			}
			v = rest
		}
		got, err := hex.DecodeString(v)
		if err != nil {
			return errSignature(header)
		}
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		if !hmac.Equal(got, mac.Sum(nil)) {
			return errSignature(header)
		}
		return nil
	}
	switch p {
	case berth.GitHub:
		return hmacHex("X-Hub-Signature-256", "sha256=")
	case berth.Bitbucket:
		return hmacHex("X-Hub-Signature", "sha256=")
	case berth.Gitea:
		if h.Get("X-Forgejo-Signature") != "" {
			return hmacHex("X-Forgejo-Signature", "")
		}
		return hmacHex("X-Gitea-Signature", "")
	case berth.GitLab:
		v := h.Get("X-Gitlab-Token")
		if v == "" {
			return berth.E(op, berth.Unauthorized, "the request has no X-Gitlab-Token header: set the app's webhook secret as the webhook's secret token in GitLab")
		}
		// Hashing both sides first makes the comparison's time independent
		// of the secret's length too.
		a, b := sha256.Sum256([]byte(v)), sha256.Sum256([]byte(secret))
		if subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
			return errSignature("X-Gitlab-Token")
		}
		return nil
	}
	return berth.E(op, berth.Invalid, "unknown provider %q", p)
}

// Sign returns the signature header a provider would send for body with
// secret: its name and value. Tests and `berth webhooks` examples use it.
func Sign(p berth.Provider, body []byte, secret string) (header, value string) {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	sum := hex.EncodeToString(mac.Sum(nil))
	switch p {
	case berth.GitHub:
		return "X-Hub-Signature-256", "sha256=" + sum
	case berth.Bitbucket:
		return "X-Hub-Signature", "sha256=" + sum
	case berth.Gitea:
		return "X-Gitea-Signature", sum
	case berth.GitLab:
		return "X-Gitlab-Token", secret
	}
	return "", ""
}

var (
	commitRE = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)
)

// Limits of a parsed payload: what a payload may list before berth stops
// counting on its file lists.
const (
	githubMaxCommits = 2048 // GitHub lists at most this many commits in a push
	githubMaxFiles   = 3000 // GitHub caps each file list of a commit (documented as 3000, later 5000)
	maxChangedPaths  = 10000
	maxPathLen       = 1024
)

// Parse reads a verified request's body as provider p's event named in h.
// A body that is not the JSON object the event calls for is an Invalid
// error saying what is wrong; an event berth does not act on is returned
// with Ignored set. Pull requests are validated (berth.PullRequest.Validate)
// except for a Bitbucket head commit, which Bitbucket abbreviates: see
// ResolveHead.
func Parse(p berth.Provider, h http.Header, body []byte) (*Event, error) {
	ev := &Event{Provider: p, Name: EventName(p, h), DeliveryID: DeliveryID(p, h)}
	if !json.Valid(body) {
		return nil, berth.E("parse webhook", berth.Invalid, "the request body is not valid JSON")
	}
	var err error
	switch p {
	case berth.GitHub:
		err = parseGitHub(ev, body)
	case berth.GitLab:
		err = parseGitLab(ev, body)
	case berth.Gitea:
		err = parseGitea(ev, body)
	case berth.Bitbucket:
		err = parseBitbucket(ev, body)
	default:
		err = berth.E("parse webhook", berth.Invalid, "unknown provider %q", p)
	}
	if err != nil {
		return nil, err
	}
	if ev.Repository.FullName == "" && len(ev.Repository.URLs) == 0 {
		ev.Repository = eventRepository(p, body)
	}
	if ev.PullRequest != nil {
		pr := ev.PullRequest
		if p == berth.Bitbucket && abbrevRE.MatchString(pr.HeadSHA) {
			full := *pr
			full.HeadSHA = strings.Repeat("0", 40) // checks every other field
			err = full.Validate()
		} else {
			err = pr.Validate()
		}
		if err != nil {
			return nil, berth.E("parse webhook", berth.Invalid, "%s event: %s", clipName(ev.Name), berth.ErrorMessage(err))
		}
	}
	for i := range ev.Pushes {
		if err := checkPush(&ev.Pushes[i]); err != nil {
			return nil, berth.E("parse webhook", berth.Invalid, "%s event: %v", clipName(ev.Name), err)
		}
	}
	return ev, nil
}

// eventRepository reads the repository a payload names at its top level
// (GitHub, Gitea and Bitbucket "repository", GitLab "project"). A payload
// without one, or with one of another shape, names none: its event is
// checked as it was parsed, and the repository check is defence in depth.
func eventRepository(p berth.Provider, body []byte) Repository {
	var top struct {
		Repository json.RawMessage `json:"repository"`
		Project    json.RawMessage `json:"project"`
	}
	if json.Unmarshal(body, &top) != nil {
		return Repository{}
	}
	switch p {
	case berth.GitHub:
		return named[hubRepo](top.Repository)
	case berth.GitLab:
		return named[gitlabProject](top.Project)
	case berth.Gitea:
		return named[hubRepo](top.Repository)
	case berth.Bitbucket:
		return named[bitbucketRepo](top.Repository)
	}
	return Repository{}
}

// named reads a payload's repository object as the provider's type T.
func named[T interface{ repository() Repository }](raw json.RawMessage) Repository {
	var v T
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
		return Repository{}
	}
	return v.repository()
}

// decode unmarshals body into v, turning a type mismatch into a message
// that names the field.
func decode(name string, body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return berth.E("parse webhook", berth.Invalid, "%s payload: field %s: expected %s", clipName(name), clipName(te.Field), te.Type)
		}
		return berth.E("parse webhook", berth.Invalid, "%s payload is not the JSON object the event calls for", clipName(name))
	}
	return nil
}

func missing(name, field string) error {
	return berth.E("parse webhook", berth.Invalid, "%s payload has no %s", clipName(name), field)
}

func clipName(s string) string {
	if len(s) > 64 {
		s = s[:61] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}

// checkPush checks what a push hands to the deploy engine.
func checkPush(p *Push) error {
	if !p.Deleted && !commitRE.MatchString(p.After) {
		return fmt.Errorf("pushed commit %q is not a full commit ID", clipName(p.After))
	}
	if p.Before != "" && !commitRE.MatchString(p.Before) {
		return fmt.Errorf("previous commit %q is not a full commit ID", clipName(p.Before))
	}
	if err := berth.ValidGitRef(p.Branch); err != nil {
		return err
	}
	if len(p.Repo) > 512 || len(p.Pusher) > 256 {
		return errors.New("repository or pusher name too long")
	}
	return nil
}

// branchOf returns the branch of a full ref, or "" when it is not a branch.
func branchOf(ref string) string {
	b, ok := strings.CutPrefix(ref, "refs/heads/")
	if !ok {
		return ""
	}
	return b
}

// otherRef says why a push to a ref that is not a branch is ignored.
func otherRef(ref string) string {
	if strings.HasPrefix(ref, "refs/tags/") {
		return "tag push " + clipName(ref) + ": berth deploys pushes to branches"
	}
	return "push to " + clipName(ref) + ": not a branch"
}

// pushCommit is a pushed commit with its file lists, as GitHub, GitLab and
// Gitea list them. A nil list means the payload did not carry it (as
// opposed to an empty one).
type pushCommit struct {
	ID       string   `json:"id"`
	Added    []string `json:"added"`
	Removed  []string `json:"removed"`
	Modified []string `json:"modified"`
}

// branchPush begins the Push of a push event to ref with the changed paths
// of commits (a list of limit files or more counts as truncated; 0: no
// limit). It returns nil, with ev.Ignored set, when ref is not a branch, and
// an error when the payload names no ref. Paths are unknown without commits
// or when the branch is new (before is all zeros): the commits listed are
// then not the diff.
func branchPush(ev *Event, ref, before, after string, commits []pushCommit, limit int) (*Push, error) {
	if ref == "" {
		return nil, missing(ev.Name, "ref")
	}
	branch := branchOf(ref)
	if branch == "" {
		ev.Ignored = otherRef(ref)
		return nil, nil
	}
	p := &Push{Ref: ref, Branch: branch, Before: before, After: after, Deleted: zeroRE.MatchString(after)}
	p.ChangedPaths, p.PathsKnown = changed(commits, limit)
	if len(commits) == 0 || zeroRE.MatchString(before) {
		p.PathsKnown = false
	}
	return p, nil
}

// prAction maps a GitHub-style pull request action to berth's; updated is
// the provider's name for "new commits on the head". ok is false for the
// actions berth ignores.
func prAction(action, updated string) (a berth.PullRequestAction, ok bool) {
	switch action {
	case "opened", "reopened":
		return berth.PullRequestOpened, true
	case updated:
		return berth.PullRequestUpdated, true
	case "closed":
		return berth.PullRequestClosed, true
	}
	return "", false
}

// changed gathers the changed paths of commits. known is false when a
// commit carries no file lists or one reaches limit (a truncated list).
func changed(commits []pushCommit, limit int) (paths []string, known bool) {
	seen := map[string]bool{}
	known = true
	for _, c := range commits {
		if c.Added == nil && c.Removed == nil && c.Modified == nil {
			known = false
		}
		for _, list := range [][]string{c.Added, c.Removed, c.Modified} {
			if limit > 0 && len(list) >= limit {
				known = false
			}
			for _, f := range list {
				if seen[f] || f == "" || len(f) > maxPathLen {
					continue
				}
				if len(paths) >= maxChangedPaths {
					return paths, false
				}
				seen[f] = true
				paths = append(paths, f)
			}
		}
	}
	slices.Sort(paths)
	return paths, known
}

// GitHub: https://docs.github.com/webhooks/webhook-events-and-payloads

// GitHub and Gitea/Forgejo (whose webhooks follow GitHub's) describe
// repositories and pull requests alike: hubRepo and hubPR serve both.

type hubRepo struct {
	FullName string `json:"full_name"`
	CloneURL string `json:"clone_url"`
	SSHURL   string `json:"ssh_url"`
	GitURL   string `json:"git_url"` // GitHub only
	HTMLURL  string `json:"html_url"`
}

func (r hubRepo) repository() Repository {
	return repository(r.FullName, r.CloneURL, r.SSHURL, r.GitURL, r.HTMLURL)
}

type hubPR struct {
	Action      string `json:"action"`
	Number      int    `json:"number"`
	PullRequest struct {
		Number int    `json:"number"`
		Title  string `json:"title"`
		Merged bool   `json:"merged"`
		User   struct {
			Login string `json:"login"`
		} `json:"user"`
		Head struct {
			Ref    string   `json:"ref"`
			SHA    string   `json:"sha"`
			RepoID int64    `json:"repo_id"` // Gitea only
			Repo   *hubRepo `json:"repo"`    // null when the fork was deleted
		} `json:"head"`
		Base struct {
			Ref    string  `json:"ref"`
			RepoID int64   `json:"repo_id"` // Gitea only
			Repo   hubRepo `json:"repo"`
		} `json:"base"`
	} `json:"pull_request"`
	Repository hubRepo `json:"repository"`
}

// parsePR reads a GitHub or Gitea pull request event into ev; sync is the
// provider's action for a push to the request's head.
func parsePR(ev *Event, body []byte, provider berth.Provider, sync string) error {
	var p hubPR
	if err := decode(ev.Name, body, &p); err != nil {
		return err
	}
	action, ok := prAction(p.Action, sync)
	if !ok {
		ev.Ignored = fmt.Sprintf("pull request #%d %s: nothing to deploy", p.Number, clipName(p.Action))
		return nil
	}
	pr := p.PullRequest
	n := p.Number
	if n == 0 {
		n = pr.Number
	}
	out := &berth.PullRequest{
		Provider: provider, Repo: pr.Base.Repo.FullName, Number: n, Action: action,
		Merged: action == berth.PullRequestClosed && pr.Merged, Title: pr.Title, Author: pr.User.Login,
		BaseRef: pr.Base.Ref, HeadRef: pr.Head.Ref, HeadSHA: pr.Head.SHA,
		FetchRef: "refs/pull/" + strconv.Itoa(n) + "/head",
	}
	if out.Repo == "" {
		out.Repo = p.Repository.FullName
	}
	ev.Repository = pr.Base.Repo.repository()
	if pr.Head.Repo == nil {
		out.Fork = true
	} else {
		out.HeadRepo = pr.Head.Repo.CloneURL
		out.Fork = pr.Head.RepoID != pr.Base.RepoID || !strings.EqualFold(pr.Head.Repo.FullName, out.Repo)
	}
	ev.PullRequest = out
	return nil
}

type githubPush struct {
	Ref        string       `json:"ref"`
	Before     string       `json:"before"`
	After      string       `json:"after"`
	Created    bool         `json:"created"`
	Deleted    bool         `json:"deleted"`
	Forced     bool         `json:"forced"`
	Commits    []pushCommit `json:"commits"`
	Repository hubRepo      `json:"repository"`
	Pusher     struct {
		Name string `json:"name"`
	} `json:"pusher"`
}

func parseGitHub(ev *Event, body []byte) error {
	switch ev.Name {
	case "ping":
		ev.Ignored = "ping: the webhook reaches berth"
		return nil
	case "push":
		var p githubPush
		if err := decode(ev.Name, body, &p); err != nil {
			return err
		}
		push, err := branchPush(ev, p.Ref, p.Before, p.After, p.Commits, githubMaxFiles)
		if push == nil {
			return err
		}
		push.Repo, push.Pusher = p.Repository.FullName, p.Pusher.Name
		push.Deleted = push.Deleted || p.Deleted
		if p.Created || p.Forced || len(p.Commits) >= githubMaxCommits {
			push.PathsKnown = false
		}
		ev.Pushes = []Push{*push}
		return nil
	case "pull_request":
		return parsePR(ev, body, berth.GitHub, "synchronize")
	}
	ev.Ignored = "event " + clipName(ev.Name) + ": berth acts on push and pull_request"
	return nil
}

// GitLab: https://docs.gitlab.com/user/project/integrations/webhook_events/

type gitlabProject struct {
	PathWithNamespace string `json:"path_with_namespace"`
	GitHTTPURL        string `json:"git_http_url"`
	GitSSHURL         string `json:"git_ssh_url"`
	WebURL            string `json:"web_url"`
}

func (p gitlabProject) repository() Repository {
	return repository(p.PathWithNamespace, p.GitHTTPURL, p.GitSSHURL, p.WebURL)
}

type gitlabPush struct {
	ObjectKind        string        `json:"object_kind"`
	Ref               string        `json:"ref"`
	Before            string        `json:"before"`
	After             string        `json:"after"`
	UserUsername      string        `json:"user_username"`
	TotalCommitsCount int           `json:"total_commits_count"`
	Commits           []pushCommit  `json:"commits"`
	Project           gitlabProject `json:"project"`
}

type gitlabMR struct {
	ObjectKind string `json:"object_kind"`
	User       struct {
		Username string `json:"username"`
	} `json:"user"`
	Project          gitlabProject `json:"project"`
	ObjectAttributes struct {
		IID             int           `json:"iid"`
		Title           string        `json:"title"`
		Action          string        `json:"action"`
		SourceBranch    string        `json:"source_branch"`
		TargetBranch    string        `json:"target_branch"`
		SourceProjectID int64         `json:"source_project_id"`
		TargetProjectID int64         `json:"target_project_id"`
		OldRev          string        `json:"oldrev"`
		Source          gitlabProject `json:"source"`
		Target          gitlabProject `json:"target"`
		LastCommit      struct {
			ID string `json:"id"`
		} `json:"last_commit"`
	} `json:"object_attributes"`
}

func parseGitLab(ev *Event, body []byte) error {
	switch ev.Name {
	case "Push Hook":
		var p gitlabPush
		if err := decode(ev.Name, body, &p); err != nil {
			return err
		}
		push, err := branchPush(ev, p.Ref, p.Before, p.After, p.Commits, 0)
		if push == nil {
			return err
		}
		push.Repo, push.Pusher = p.Project.PathWithNamespace, p.UserUsername
		// GitLab lists the newest 20 commits and counts them all.
		if len(p.Commits) < p.TotalCommitsCount {
			push.PathsKnown = false
		}
		ev.Pushes = []Push{*push}
		return nil
	case "Tag Push Hook":
		var p gitlabPush
		if err := decode(ev.Name, body, &p); err != nil {
			return err
		}
		ev.Ignored = otherRef(p.Ref)
		return nil
	case "Merge Request Hook":
		var p gitlabMR
		if err := decode(ev.Name, body, &p); err != nil {
			return err
		}
		a := p.ObjectAttributes
		var action berth.PullRequestAction
		merged := false
		switch a.Action {
		case "open", "reopen":
			action = berth.PullRequestOpened
		case "update":
			if a.OldRev == "" {
				ev.Ignored = fmt.Sprintf("merge request !%d updated without new commits", a.IID)
				return nil
			}
			action = berth.PullRequestUpdated
		case "merge":
			action, merged = berth.PullRequestClosed, true
		case "close":
			action = berth.PullRequestClosed
		default:
			ev.Ignored = fmt.Sprintf("merge request !%d %s: nothing to deploy", a.IID, clipName(a.Action))
			return nil
		}
		repo := p.Project.PathWithNamespace
		if repo == "" {
			repo = a.Target.PathWithNamespace
		}
		// The target project is the base: the project the hook belongs to.
		ev.Repository = a.Target.repository()
		if ev.Repository.FullName == "" && len(ev.Repository.URLs) == 0 {
			ev.Repository = p.Project.repository()
		}
		ev.PullRequest = &berth.PullRequest{
			Provider: berth.GitLab, Repo: repo, Number: a.IID, Action: action, Merged: merged,
			Title: a.Title, Author: p.User.Username, BaseRef: a.TargetBranch, HeadRef: a.SourceBranch,
			HeadSHA: a.LastCommit.ID, HeadRepo: a.Source.GitHTTPURL,
			Fork:     a.SourceProjectID != a.TargetProjectID,
			FetchRef: "refs/merge-requests/" + strconv.Itoa(a.IID) + "/head",
		}
		return nil
	}
	ev.Ignored = "event " + clipName(ev.Name) + ": berth acts on Push Hook and Merge Request Hook"
	return nil
}

// Gitea and Forgejo: https://docs.gitea.com/usage/webhooks,
// https://forgejo.org/docs/latest/user/webhooks/

type giteaPush struct {
	Ref          string       `json:"ref"`
	Before       string       `json:"before"`
	After        string       `json:"after"`
	TotalCommits int          `json:"total_commits"`
	Commits      []pushCommit `json:"commits"`
	Repository   hubRepo      `json:"repository"`
	Pusher       struct {
		Login string `json:"login"`
	} `json:"pusher"`
}

func parseGitea(ev *Event, body []byte) error {
	switch ev.Name {
	case "push":
		var p giteaPush
		if err := decode(ev.Name, body, &p); err != nil {
			return err
		}
		push, err := branchPush(ev, p.Ref, p.Before, p.After, p.Commits, 0)
		if push == nil {
			return err
		}
		push.Repo, push.Pusher = p.Repository.FullName, p.Pusher.Login
		if len(p.Commits) < p.TotalCommits {
			push.PathsKnown = false
		}
		ev.Pushes = []Push{*push}
		return nil
	case "delete":
		var p struct {
			Ref     string `json:"ref"`
			RefType string `json:"ref_type"`
		}
		if err := decode(ev.Name, body, &p); err != nil {
			return err
		}
		ev.Ignored = fmt.Sprintf("%s %s deleted", clipName(p.RefType), clipName(p.Ref))
		return nil
	case "pull_request", "pull_request_sync":
		return parsePR(ev, body, berth.Gitea, "synchronized")
	}
	ev.Ignored = "event " + clipName(ev.Name) + ": berth acts on push and pull_request"
	return nil
}

// Bitbucket Cloud: https://support.atlassian.com/bitbucket-cloud/docs/event-payloads/

type bitbucketRepo struct {
	FullName string `json:"full_name"`
	Links    struct {
		HTML struct {
			Href string `json:"href"`
		} `json:"html"`
	} `json:"links"`
}

func (r bitbucketRepo) repository() Repository {
	return repository(r.FullName, r.Links.HTML.Href)
}

type bitbucketActor struct {
	DisplayName string `json:"display_name"`
	Nickname    string `json:"nickname"`
}

func (a bitbucketActor) name() string {
	if a.Nickname != "" {
		return a.Nickname
	}
	return a.DisplayName
}

type bitbucketRefState struct {
	Type   string `json:"type"` // "branch", "tag", "named_branch", "bookmark"
	Name   string `json:"name"`
	Target struct {
		Hash string `json:"hash"`
	} `json:"target"`
}

type bitbucketPush struct {
	Actor      bitbucketActor `json:"actor"`
	Repository bitbucketRepo  `json:"repository"`
	Push       struct {
		Changes []struct {
			New       *bitbucketRefState `json:"new"`
			Old       *bitbucketRefState `json:"old"`
			Created   bool               `json:"created"`
			Closed    bool               `json:"closed"`
			Forced    bool               `json:"forced"`
			Truncated bool               `json:"truncated"`
		} `json:"changes"`
	} `json:"push"`
}

type bitbucketEnd struct {
	Branch struct {
		Name string `json:"name"`
	} `json:"branch"`
	Commit struct {
		Hash string `json:"hash"`
	} `json:"commit"`
	Repository bitbucketRepo `json:"repository"`
}

type bitbucketPR struct {
	Actor       bitbucketActor `json:"actor"`
	Repository  bitbucketRepo  `json:"repository"`
	PullRequest struct {
		ID          int            `json:"id"`
		Title       string         `json:"title"`
		State       string         `json:"state"`
		Author      bitbucketActor `json:"author"`
		Source      bitbucketEnd   `json:"source"`
		Destination bitbucketEnd   `json:"destination"`
	} `json:"pullrequest"`
}

func parseBitbucket(ev *Event, body []byte) error {
	switch ev.Name {
	case "repo:push":
		var p bitbucketPush
		if err := decode(ev.Name, body, &p); err != nil {
			return err
		}
		if len(p.Push.Changes) == 0 {
			return missing(ev.Name, "push.changes")
		}
		var skipped []string
		for _, c := range p.Push.Changes {
			state := c.New
			if state == nil {
				state = c.Old
			}
			if state == nil {
				return missing(ev.Name, "new or old ref state in push.changes")
			}
			if state.Type != "branch" && state.Type != "named_branch" {
				skipped = append(skipped, otherRef("refs/tags/"+state.Name))
				continue
			}
			push := Push{Ref: "refs/heads/" + state.Name, Branch: state.Name, Repo: p.Repository.FullName, Pusher: p.Actor.name()}
			if c.Old != nil {
				push.Before = c.Old.Target.Hash
			}
			if c.New == nil || c.Closed {
				push.Deleted = true
			} else {
				push.After = c.New.Target.Hash
			}
			// Bitbucket sends no file lists: the paths are unknown.
			ev.Pushes = append(ev.Pushes, push)
		}
		if len(ev.Pushes) == 0 {
			ev.Ignored = strings.Join(skipped, "; ")
		}
		return nil
	case "pullrequest:created", "pullrequest:updated", "pullrequest:fulfilled", "pullrequest:rejected":
		var p bitbucketPR
		if err := decode(ev.Name, body, &p); err != nil {
			return err
		}
		pr := p.PullRequest
		out := &berth.PullRequest{
			Provider: berth.Bitbucket, Repo: pr.Destination.Repository.FullName, Number: pr.ID,
			Title: pr.Title, Author: pr.Author.name(), BaseRef: pr.Destination.Branch.Name,
			HeadRef: pr.Source.Branch.Name, HeadSHA: pr.Source.Commit.Hash,
		}
		switch ev.Name {
		case "pullrequest:created":
			out.Action = berth.PullRequestOpened
		case "pullrequest:updated":
			out.Action = berth.PullRequestUpdated
		case "pullrequest:fulfilled":
			out.Action, out.Merged = berth.PullRequestClosed, true
		default:
			out.Action = berth.PullRequestClosed
		}
		if out.Repo == "" {
			out.Repo = p.Repository.FullName
		}
		ev.Repository = pr.Destination.Repository.repository()
		if href := pr.Source.Repository.Links.HTML.Href; href != "" {
			out.HeadRepo = strings.TrimSuffix(href, "/") + ".git"
		}
		out.Fork = !strings.EqualFold(pr.Source.Repository.FullName, out.Repo)
		ev.PullRequest = out
		return nil
	}
	ev.Ignored = "event " + clipName(ev.Name) + ": berth acts on repo:push and pullrequest:*"
	return nil
}

// LsRemote resolves a ref of a remote repository to a commit ID, with the
// credentials of auth (*Fetcher.LsRemote).
type LsRemote func(ctx context.Context, url, ref string, auth berth.GitAuth) (string, error)

// ResolveHead completes a pull request whose head commit the payload
// abbreviates (Bitbucket sends 12 hex digits): it asks the head repository,
// with auth, where the head branch points, and takes that commit when it
// starts with the abbreviation. A head that has moved on since is an
// Invalid error (a newer event follows). A full head is left as it is.
func ResolveHead(ctx context.Context, lsRemote LsRemote, auth berth.GitAuth, pr *berth.PullRequest) error {
	const op = "resolve pull request head"
	if commitRE.MatchString(pr.HeadSHA) {
		return pr.Validate()
	}
	if !abbrevRE.MatchString(pr.HeadSHA) {
		return berth.E(op, berth.Invalid, "head commit %q is not a commit ID", clipName(pr.HeadSHA))
	}
	if pr.HeadRepo == "" || lsRemote == nil {
		return berth.E(op, berth.Invalid, "%s sent the abbreviated head commit %s and berth cannot ask the repository for the full one", pr.Provider, pr.HeadSHA)
	}
	if err := berth.ValidGitRef(pr.HeadRef); err != nil {
		return berth.E(op, berth.Invalid, "%v", err)
	}
	full, err := lsRemote(ctx, pr.HeadRepo, "refs/heads/"+pr.HeadRef, auth)
	if err != nil {
		return berth.E(op, berth.Invalid, "head commit %s: %s", pr.HeadSHA, berth.ErrorMessage(err))
	}
	if !strings.HasPrefix(full, pr.HeadSHA) {
		return berth.E(op, berth.Invalid, "branch %s has moved on from %s: a newer event follows", pr.HeadRef, pr.HeadSHA)
	}
	pr.HeadSHA = full
	return pr.Validate()
}
