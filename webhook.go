package berth

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
)

// Webhook is how an app deploys when its repository is pushed to: the
// provider (GitHub, GitLab, Gitea/Forgejo, Bitbucket) posts to the app's
// webhook URL, signed with the app's secret, and a push to a branch the
// filter accepts, touching a path the watch list accepts, deploys the pushed
// commit. An app without a secret accepts no webhook at all.
type Webhook struct {
	AppID string `json:"app_id"`
	// SecretSet says whether the app has a secret. The secret itself is
	// shown once, when berth generates it, and never returned again.
	SecretSet bool `json:"secret_set"`
	// Branches are the branches whose pushes deploy: names or globs such as
	// "release/*" ('*' stays within one path segment, "**" crosses them).
	// Empty means the branch of the app's source ref.
	Branches []string `json:"branches"`
	// Paths are the watch paths of a monorepo: a push deploys only when it
	// changes a file under one of them. A plain path is a prefix ("api"
	// covers "api/main.go"); a glob matches a file or one of its
	// directories ("services/*/go.mod"). Empty means every change.
	Paths     []string  `json:"paths"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// Limits on webhook settings.
const (
	MaxWebhookPatterns   = 32
	MaxWebhookPatternLen = 200
	MinWebhookSecretLen  = 16
	MaxWebhookSecretLen  = 256
)

var (
	branchPatternRE = regexp.MustCompile(`^[A-Za-z0-9*?][A-Za-z0-9._/*?-]{0,199}$`)
	pathPatternRE   = regexp.MustCompile(`^[A-Za-z0-9_.@+*?-][A-Za-z0-9_./@+*?-]{0,199}$`)
)

// Validate checks the branch filter and the watch paths.
func (w *Webhook) Validate() error {
	const op = "check webhook"
	if len(w.Branches) > MaxWebhookPatterns || len(w.Paths) > MaxWebhookPatterns {
		return E(op, Invalid, "at most %d branches and %d watch paths", MaxWebhookPatterns, MaxWebhookPatterns)
	}
	for _, b := range w.Branches {
		if err := ValidBranchPattern(b); err != nil {
			return E(op, Invalid, "%v", err)
		}
	}
	for _, p := range w.Paths {
		if err := ValidPathPattern(p); err != nil {
			return E(op, Invalid, "%v", err)
		}
	}
	return nil
}

// ValidBranchPattern checks a branch name or glob of a branch filter.
func ValidBranchPattern(s string) error {
	if !branchPatternRE.MatchString(s) || strings.Contains(s, "..") || strings.Contains(s, "//") ||
		strings.HasSuffix(s, "/") || strings.HasSuffix(s, ".lock") {
		return fmt.Errorf("branch %q: use a branch name or a glob such as release/* (letters, digits, '.', '_', '-', '/', '*', '?')", clip(s))
	}
	return nil
}

// ValidPathPattern checks a watch path: relative to the repository's root,
// without "..", in a conservative character set; a trailing "/" is allowed.
func ValidPathPattern(s string) error {
	t := strings.TrimSuffix(s, "/")
	bad := !pathPatternRE.MatchString(t) || strings.HasPrefix(t, "/") || strings.Contains(t, "//")
	for _, seg := range strings.Split(t, "/") {
		if seg == ".." || seg == "." {
			bad = true
		}
	}
	if bad {
		return fmt.Errorf("watch path %q: use a path relative to the repository root, such as services/api or services/*/go.mod, without '..'", clip(s))
	}
	return nil
}

// ValidWebhookSecret checks a secret a user sets: 16 to 256 printable ASCII
// characters without spaces, so that every provider can send it (GitLab
// sends it as a header).
func ValidWebhookSecret(s string) error {
	if len(s) < MinWebhookSecretLen || len(s) > MaxWebhookSecretLen {
		return fmt.Errorf("a webhook secret has %d to %d characters", MinWebhookSecretLen, MaxWebhookSecretLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return fmt.Errorf("a webhook secret uses printable ASCII characters without spaces")
		}
	}
	return nil
}

// globRE turns a glob into an anchored regular expression: '*' and '?'
// stay within a path segment, "**" crosses segments. Go's regexp runs in
// linear time, so no pattern can make matching slow.
func globRE(pattern string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; {
		case c == '*' && i+1 < len(pattern) && pattern[i+1] == '*':
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// globMatch reports whether name matches the glob pattern; a pattern that
// does not compile matches nothing.
func globMatch(pattern, name string) bool {
	re, err := globRE(pattern)
	return err == nil && re.MatchString(name)
}

// MatchBranch reports whether branch passes the filter patterns.
func MatchBranch(patterns []string, branch string) bool {
	for _, p := range patterns {
		if p == branch || globMatch(p, branch) {
			return true
		}
	}
	return false
}

// MatchPaths returns the first changed path under one of the watch paths,
// and whether there is one. No watch paths means every change counts.
func MatchPaths(patterns, changed []string) (string, bool) {
	if len(patterns) == 0 {
		if len(changed) > 0 {
			return changed[0], true
		}
		return "", true
	}
	res := make([]*regexp.Regexp, 0, len(patterns))
	prefixes := make([]string, 0, len(patterns))
	for _, p := range patterns {
		p = strings.TrimSuffix(p, "/")
		if strings.ContainsAny(p, "*?") {
			if re, err := globRE(p); err == nil {
				res = append(res, re)
			}
			continue
		}
		prefixes = append(prefixes, p)
	}
	for _, c := range changed {
		for _, p := range prefixes {
			if c == p || strings.HasPrefix(c, p+"/") {
				return c, true
			}
		}
		// A glob matches the file or one of its directories.
		for dir := c; dir != ""; {
			for _, re := range res {
				if re.MatchString(dir) {
					return c, true
				}
			}
			i := strings.LastIndexByte(dir, '/')
			if i < 0 {
				break
			}
			dir = dir[:i]
		}
	}
	return "", false
}

// DeliveryOutcome is what berth did with a webhook delivery.
type DeliveryOutcome string

// The delivery outcomes.
const (
	DeliveryDeployed  DeliveryOutcome = "deployed"  // it started a deployment (or acted on a pull request)
	DeliveryCoalesced DeliveryOutcome = "coalesced" // it re-pointed a queued deployment to its commit
	DeliveryIgnored   DeliveryOutcome = "ignored"   // nothing to do: another branch, no watched path, a ping…
	DeliveryRejected  DeliveryOutcome = "rejected"  // not accepted: bad or missing signature, no secret, malformed
	DeliveryFailed    DeliveryOutcome = "failed"    // accepted, but berth could not act on it
)

// ValidDeliveryOutcome reports whether o is one of the outcomes.
func ValidDeliveryOutcome(o DeliveryOutcome) bool {
	switch o {
	case DeliveryDeployed, DeliveryCoalesced, DeliveryIgnored, DeliveryRejected, DeliveryFailed:
		return true
	}
	return false
}

// WebhookDelivery records one request to an app's webhook URL: who sent it,
// what it was, and what berth did with it. It never holds the request's
// body or the secret.
type WebhookDelivery struct {
	ID     string `json:"id"`
	TeamID string `json:"-"`
	AppID  string `json:"app_id"`
	// Provider is empty when the request named none berth knows.
	Provider Provider `json:"provider,omitempty"`
	// DeliveryID is the provider's ID of the delivery (X-GitHub-Delivery…);
	// a redelivery carries the same one.
	DeliveryID string          `json:"delivery_id,omitempty"`
	Event      string          `json:"event,omitempty"` // "push", "Merge Request Hook", "repo:push"…
	ReceivedAt time.Time       `json:"received_at"`
	Outcome    DeliveryOutcome `json:"outcome"`
	Reason     string          `json:"reason"`
	Ref        string          `json:"ref,omitempty"`    // the pushed ref, or the pull request ("pull/7")
	Commit     string          `json:"commit,omitempty"` // the pushed commit, or the pull request's head
	// Before is, for a push, the commit the ref pointed at before it: how
	// berth tells which of two pushes to a branch is the newer one.
	Before string `json:"before,omitempty"`
	// DeploymentID and DeploymentNumber name the deployment the delivery
	// started or was coalesced into.
	DeploymentID     string `json:"deployment_id,omitempty"`
	DeploymentNumber int    `json:"deployment_number,omitempty"`
}

// Limits on stored delivery fields: values come from unauthenticated
// requests, so they are cut before they are stored.
const (
	MaxDeliveryField  = 128
	MaxDeliveryReason = 512
)

// Clip cuts the delivery's fields to their limits, makes them valid UTF-8
// and replaces control characters, so that nothing a request carries grows
// the store without bound or reaches a terminal as an escape sequence.
func (d *WebhookDelivery) Clip() {
	cut := func(s string, n int) string {
		s = strings.Map(func(r rune) rune {
			if unicode.IsControl(r) {
				return '?'
			}
			return r
		}, strings.ToValidUTF8(s, "?"))
		for len(s) > n {
			s = s[:n]
			s = strings.ToValidUTF8(s, "")
		}
		return s
	}
	d.DeliveryID, d.Event = cut(d.DeliveryID, MaxDeliveryField), cut(d.Event, MaxDeliveryField)
	d.Ref, d.Commit, d.Before = cut(d.Ref, 256), cut(d.Commit, MaxDeliveryField), cut(d.Before, MaxDeliveryField)
	d.Reason = cut(d.Reason, MaxDeliveryReason)
	d.Provider = Provider(cut(string(d.Provider), 32))
}

// PushStep is one push to a branch as its webhook delivery tells it: Ref
// (refs/heads/…) moved from the commit Before to the commit After.
type PushStep struct {
	Ref, Before, After string
}

// PushTarget decides what a webhook deployment deploys when push p
// arrives, so that the deployment that runs last deploys the newest push
// whatever order the deliveries arrive in. queued is the ref of the app's
// queued webhook deployment that p joins, "" when there is none; older
// says whether an earlier delivery to the same branch started from
// p.After, which makes p older than that push.
//
// The signal is the chain of before and after commits that every provider
// sends: a push whose Before is the queued commit came after it, and a push
// whose After another push started from came before that one. When the
// chain decides, the result is a commit; when it does not (a gap in the
// deliveries, a force push back to an earlier commit, pushes to two
// branches) it is the push's branch, whose head the fetch takes — the
// newest, rather than a commit that may be stale. Only a push that names
// no branch falls back to its own commit, in arrival order.
//
// note says what was decided, for the delivery's reason; it is empty when
// a new deployment simply deploys p.After.
func PushTarget(queued string, p PushStep, older bool) (ref, note string) {
	branch, hasBranch := strings.CutPrefix(p.Ref, "refs/heads/")
	hasBranch = hasBranch && ValidBranch(branch) == nil && ValidGitRef(p.Ref) == nil
	if queued == "" {
		if older && hasBranch {
			return p.Ref, fmt.Sprintf("a later push to %s started from %s: deploying the head of %s, not a commit that may be stale",
				branch, ShortSHA(p.After), branch)
		}
		return p.After, ""
	}
	if queued == p.After {
		return queued, "it deploys " + ShortSHA(queued) + " already"
	}
	if !hexRE.MatchString(queued) {
		// A branch an undecided push fell back to.
		switch {
		case queued == p.Ref:
			return queued, "it deploys the head of " + branch
		case hasBranch:
			return p.Ref, "it now deploys the head of " + branch
		}
		return p.After, "it now deploys " + ShortSHA(p.After)
	}
	newer := p.Before != "" && p.Before == queued
	switch {
	case newer && !older:
		return p.After, fmt.Sprintf("it now deploys %s, pushed on top of %s", ShortSHA(p.After), ShortSHA(queued))
	case older && !newer:
		return queued, fmt.Sprintf("it keeps %s: a later push started from %s", ShortSHA(queued), ShortSHA(p.After))
	case hasBranch:
		return p.Ref, fmt.Sprintf("berth cannot tell whether %s or %s is newer, so it deploys the head of %s",
			ShortSHA(p.After), ShortSHA(queued), branch)
	}
	return p.After, "it now deploys " + ShortSHA(p.After)
}
