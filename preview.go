package berth

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// A preview environment deploys the head of an open pull (or merge) request
// of an app to its own host, pr-<n>.<the app's domain>, until the request
// is closed or merged, or until it has gone TTL without a push.
//
// A preview is a child app of its own (named <app>-pr-<n>), so that every
// mechanism of an app — deploy, release, route, TLS, logs, delete — applies
// to it. Its settings follow the parent's at every push; its env is the
// parent's env plus the preview env overrides, except for a request from a
// fork, whose code is untrusted: its preview gets only the overrides, and
// none of the parent's build args, until a member approves its head commit.
//
//	pending ─▶ live | failed          (a deployment of the head ends)
//	live | failed ─▶ pending          (a push, an approval: redeploy)
//	any ─▶ closing ─▶ (gone)          (closed, merged, expired, deleted)

// Limits and defaults of preview settings.
const (
	DefaultMaxPreviews = 3
	MaxMaxPreviews     = 50
	DefaultPreviewTTL  = 7 * 24 * time.Hour
	MinPreviewTTL      = time.Hour
	MaxPreviewTTL      = 90 * 24 * time.Hour
	// StatusContext names berth's commit statuses at the provider.
	StatusContext = "berth/preview"
)

// PreviewSettings are an app's preview environment settings.
type PreviewSettings struct {
	AppID   string `json:"app_id"`
	TeamID  string `json:"team_id"`
	Enabled bool   `json:"enabled"`
	// MaxPreviews caps the previews of the app that exist at once; the
	// pull request beyond it gets none.
	MaxPreviews int `json:"max_previews"`
	// TTL is how long a preview lives after its last push.
	TTL time.Duration `json:"ttl"`
	// Env overrides the parent's env in every preview; secret, sealed at
	// rest like env values.
	Env map[string]string `json:"env,omitempty"`
	// StatusAPI is the base URL of the provider's API that commit statuses
	// are posted to; empty means the provider's public one (see
	// DefaultStatusAPI).
	StatusAPI string `json:"status_api,omitempty"`
	// StatusToken authenticates the status posts. It is sealed at rest and
	// never leaves the server.
	StatusToken string    `json:"-"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// DefaultPreviewSettings are the settings of an app that has none stored:
// previews are off.
func DefaultPreviewSettings(teamID, appID string) *PreviewSettings {
	return &PreviewSettings{AppID: appID, TeamID: teamID, MaxPreviews: DefaultMaxPreviews, TTL: DefaultPreviewTTL}
}

// SetDefaults fills the zero limits.
func (s *PreviewSettings) SetDefaults() {
	if s.MaxPreviews == 0 {
		s.MaxPreviews = DefaultMaxPreviews
	}
	if s.TTL == 0 {
		s.TTL = DefaultPreviewTTL
	}
}

// Validate checks the settings once their defaults are set.
func (s *PreviewSettings) Validate() error {
	const op = "check preview settings"
	bad := func(format string, args ...any) error { return E(op, Invalid, format, args...) }
	if s.MaxPreviews < 1 || s.MaxPreviews > MaxMaxPreviews {
		return bad("max previews %d: must be 1-%d", s.MaxPreviews, MaxMaxPreviews)
	}
	if s.TTL < MinPreviewTTL || s.TTL > MaxPreviewTTL {
		return bad("preview TTL %s: must be %s-%s", s.TTL, MinPreviewTTL, MaxPreviewTTL)
	}
	if len(s.Env) > MaxEnvVars {
		return bad("at most %d preview env vars", MaxEnvVars)
	}
	for k, v := range s.Env {
		if err := ValidEnv(k, v); err != nil {
			return bad("preview %v", err)
		}
	}
	if s.StatusAPI != "" {
		if err := ValidStatusAPI(s.StatusAPI); err != nil {
			return err
		}
	}
	if len(s.StatusToken) > 4096 || strings.ContainsAny(s.StatusToken, " \t\r\n\x00") {
		return bad("the status token is longer than 4096 bytes or holds whitespace")
	}
	return nil
}

// ValidStatusAPI checks the base URL of a provider's API: an absolute http
// or https URL without credentials, query or fragment.
func ValidStatusAPI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || len(raw) > 512 {
		return E("check preview settings", Invalid, "status API %q: want the provider API's base URL, such as https://gitea.example.com/api/v1", clip(redactURL(raw)))
	}
	return nil
}

// DefaultStatusAPI is the public API of a provider; "" for Gitea, which
// every installation serves at its own address.
func DefaultStatusAPI(p Provider) string {
	switch p {
	case GitHub:
		return "https://api.github.com"
	case GitLab:
		return "https://gitlab.com/api/v4"
	case Bitbucket:
		return "https://api.bitbucket.org/2.0"
	}
	return ""
}

// PreviewStatus is where a preview is in its life (see the diagram above).
type PreviewStatus string

// The preview statuses.
const (
	PreviewPending PreviewStatus = "pending" // a deployment of the head is queued or running
	PreviewLive    PreviewStatus = "live"    // the last deployment went live
	PreviewFailed  PreviewStatus = "failed"  // the last deployment failed (see Message)
	PreviewClosing PreviewStatus = "closing" // being torn down
)

// Preview is the preview environment of one pull request of an app.
type Preview struct {
	ID     string `json:"id"`
	TeamID string `json:"team_id"`
	AppID  string `json:"app_id"` // the parent app
	Number int    `json:"number"` // the pull request's number (GitLab: iid)
	// ChildAppID and ChildApp are the app that runs the preview.
	ChildAppID string   `json:"child_app_id"`
	ChildApp   string   `json:"child_app"`
	Provider   Provider `json:"provider"`
	Repo       string   `json:"repo"`
	Title      string   `json:"title,omitempty"`
	Author     string   `json:"author,omitempty"`
	HeadRef    string   `json:"head_ref,omitempty"`
	HeadSHA    string   `json:"head_sha"`
	Fork       bool     `json:"fork"`
	// ApprovedSHA is the head commit a member approved (forks only): a
	// deployment of exactly that commit gets the parent's secrets.
	ApprovedSHA string        `json:"approved_sha,omitempty"`
	ApprovedBy  string        `json:"approved_by,omitempty"`
	ApprovedAt  *time.Time    `json:"approved_at,omitempty"`
	Status      PreviewStatus `json:"status"`
	// StatusSHA is the commit the status is about: the head when a
	// deployment starts, the deployed commit when it ends.
	StatusSHA string `json:"status_sha,omitempty"`
	Message   string `json:"message,omitempty"` // why the last deployment failed
	Host      string `json:"host"`
	URL       string `json:"url"`
	// PostedAt and PostError tell how the last commit status post went.
	PostedAt  *time.Time `json:"posted_at,omitempty"`
	PostError string     `json:"post_error,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"` // last push, approval or status change
	ExpiresAt time.Time  `json:"expires_at"` // torn down then unless pushed to
}

// Trusted reports whether a deployment of commit may have the parent's
// secrets: always for a request from the base repository, for a fork only
// when a member approved exactly that commit.
func (p *Preview) Trusted(commit string) bool {
	return !p.Fork || (p.ApprovedSHA != "" && p.ApprovedSHA == commit)
}

// PreviewAppName is the name of the child app of pull request n of parent:
// "<parent>-pr-<n>", the parent's part shortened to keep the name valid.
func PreviewAppName(parent string, n int) string {
	suffix := "-pr-" + strconv.Itoa(n)
	const maxName = 40
	if len(parent)+len(suffix) > maxName {
		parent = strings.TrimRight(parent[:maxName-len(suffix)], "-")
	}
	return parent + suffix
}

// CommitState is a commit status as berth posts it; each provider has its
// own words for them.
type CommitState string

// The commit states.
const (
	CommitPending CommitState = "pending"
	CommitSuccess CommitState = "success"
	CommitFailure CommitState = "failure" // the deployment failed
	CommitError   CommitState = "error"   // berth could not deploy (limit reached, no domain, expired)
)

// CommitStatus is one status of a commit, posted to a provider.
type CommitStatus struct {
	Provider    Provider    `json:"provider"`
	Repo        string      `json:"repo"`
	SHA         string      `json:"sha"`
	State       CommitState `json:"state"`
	TargetURL   string      `json:"target_url,omitempty"`
	Description string      `json:"description"`
}

// StatusAPI is where and how to post a provider's commit statuses.
type StatusAPI struct {
	BaseURL string
	Token   string
}

var repoSegmentRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,255}$`)

// Validate checks a status before it reaches a provider's URL.
func (s *CommitStatus) Validate() error {
	const op = "check commit status"
	if err := ValidProvider(s.Provider); err != nil {
		return err
	}
	if !shaRE.MatchString(s.SHA) {
		return E(op, Invalid, "commit %q is not a full commit ID", clip(s.SHA))
	}
	if err := ValidRepoPath(s.Repo); err != nil {
		return err
	}
	switch s.State {
	case CommitPending, CommitSuccess, CommitFailure, CommitError:
	default:
		return E(op, Invalid, "commit state %q", clip(string(s.State)))
	}
	return nil
}

// ValidRepoPath checks a repository's full name ("owner/name", GitLab
// "group/sub/name"): segments of letters, digits, '.', '_' and '-', none
// of them "." or "..", so that it can only ever name a path below the
// provider API's repository routes.
func ValidRepoPath(repo string) error {
	parts := strings.Split(repo, "/")
	if len(parts) < 2 || len(repo) > 512 {
		return E("check repository", Invalid, "repository %q: want owner/name", clip(repo))
	}
	for _, p := range parts {
		if !repoSegmentRE.MatchString(p) || p == "." || p == ".." {
			return E("check repository", Invalid, "repository %q: want owner/name of letters, digits, '.', '_' and '-'", clip(repo))
		}
	}
	return nil
}

// ShortSHA is the first 12 characters of a commit ID; anything else (a ref,
// a short ID) is returned whole.
func ShortSHA(sha string) string {
	if hexRE.MatchString(sha) {
		return sha[:12]
	}
	return sha
}

// String describes a preview for a log line.
func (p *Preview) String() string {
	return fmt.Sprintf("preview #%d (%s)", p.Number, p.ChildApp)
}
