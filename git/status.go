package git

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/egress"
)

// Statuses posts commit statuses (a preview's state and URL) to the API of
// GitHub, GitLab, Gitea/Forgejo or Bitbucket. Every connection goes only
// where its egress policy allows, and the token never follows a redirect.
type Statuses struct {
	client *http.Client
}

// NewStatuses returns a poster whose connections follow policy p, each
// post given at most timeout (default 15s).
func NewStatuses(p egress.Policy, timeout time.Duration) *Statuses {
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	c := p.Client(timeout)
	// A redirect would carry the token to another address: refused, and
	// reported as a misconfigured base URL.
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Statuses{client: c}
}

// states maps berth's commit states to each provider's words. GitLab and
// Bitbucket have no "error": a preview berth could not deploy (limit
// reached, no domain, expired) is "canceled" / "STOPPED" there, not red.
var states = map[berth.Provider]map[berth.CommitState]string{
	berth.GitHub:    {berth.CommitPending: "pending", berth.CommitSuccess: "success", berth.CommitFailure: "failure", berth.CommitError: "error"},
	berth.Gitea:     {berth.CommitPending: "pending", berth.CommitSuccess: "success", berth.CommitFailure: "failure", berth.CommitError: "error"},
	berth.GitLab:    {berth.CommitPending: "pending", berth.CommitSuccess: "success", berth.CommitFailure: "failed", berth.CommitError: "canceled"},
	berth.Bitbucket: {berth.CommitPending: "INPROGRESS", berth.CommitSuccess: "SUCCESSFUL", berth.CommitFailure: "FAILED", berth.CommitError: "STOPPED"},
}

// maxDescription is the longest description GitHub takes; the others take
// it too.
const maxDescription = 140

// PostStatus posts st to the provider's API at api.BaseURL (the provider's
// public API when empty) with api.Token. A refused token, a missing
// repository and a bad base URL are Invalid errors; an unreachable or
// failing provider (5xx, 429) is Unavailable, worth a retry. Errors never
// hold the token.
func (s *Statuses) PostStatus(ctx context.Context, api berth.StatusAPI, st berth.CommitStatus) error {
	const op = "post commit status"
	if err := st.Validate(); err != nil {
		return err
	}
	base := api.BaseURL
	if base == "" {
		base = berth.DefaultStatusAPI(st.Provider)
	}
	if base == "" {
		return berth.E(op, berth.Invalid, "set the %s API's base URL in the preview settings (such as https://gitea.example.com/api/v1)", st.Provider)
	}
	if err := berth.ValidStatusAPI(base); err != nil {
		return err
	}
	if api.Token == "" {
		return berth.E(op, berth.Invalid, "no status token in the preview settings: set one that may write commit statuses of %s", st.Repo)
	}
	u, body, err := statusRequest(base, st)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return berth.E(op, berth.Invalid, "status API base URL %q is not usable", clipURL(base))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "berth")
	switch st.Provider {
	case berth.GitHub:
		req.Header.Set("Authorization", "Bearer "+api.Token)
		req.Header.Set("Accept", "application/vnd.github+json")
		req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	case berth.GitLab:
		req.Header.Set("PRIVATE-TOKEN", api.Token)
	case berth.Gitea:
		req.Header.Set("Authorization", "token "+api.Token)
	case berth.Bitbucket:
		// "user:app-password" (or "email:api-token") is basic auth; a
		// repository or workspace access token is a bearer token.
		if user, pass, ok := strings.Cut(api.Token, ":"); ok {
			req.SetBasicAuth(user, pass)
		} else {
			req.Header.Set("Authorization", "Bearer "+api.Token)
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return berth.Wrap(op, berth.Unavailable, ctx.Err())
		}
		if berth.IsKind(err, berth.Invalid) {
			// The egress policy refused the address.
			return berth.E(op, berth.Invalid, "%s", berth.ErrorMessage(err))
		}
		return berth.E(op, berth.Unavailable, "%s API at %s unreachable: %s", st.Provider, clipURL(base), netReason(err))
	}
	defer resp.Body.Close()
	msg := providerMessage(io.LimitReader(resp.Body, 64<<10))
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code >= 300 && code < 400:
		return berth.E(op, berth.Invalid, "%s API at %s answered %d (a redirect to %s): set the API's own base URL", st.Provider, clipURL(base), code, clipURL(resp.Header.Get("Location")))
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return berth.E(op, berth.Invalid, "%s refused the status token (%d%s): it needs permission to write commit statuses of %s", st.Provider, code, msg, st.Repo)
	case code == http.StatusNotFound:
		return berth.E(op, berth.Invalid, "%s has no repository %s or commit %s for this token (404%s)", st.Provider, st.Repo, berth.ShortSHA(st.SHA), msg)
	case code == http.StatusTooManyRequests || code >= 500:
		return berth.E(op, berth.Unavailable, "%s API answered %d%s", st.Provider, code, msg)
	default:
		return berth.E(op, berth.Invalid, "%s API answered %d%s", st.Provider, code, msg)
	}
}

// statusRequest builds the URL and JSON body of a status post.
func statusRequest(base string, st berth.CommitStatus) (*url.URL, []byte, error) {
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil {
		return nil, nil, berth.E("post commit status", berth.Invalid, "status API base URL %q is not a URL", clipURL(base))
	}
	segs := strings.Split(st.Repo, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s) // validated: a no-op, kept as a second guard
	}
	desc := clipDescription(st.Description)
	state := states[st.Provider][st.State]
	var rawPath string
	var body any
	switch st.Provider {
	case berth.GitHub, berth.Gitea:
		rawPath = "/repos/" + strings.Join(segs, "/") + "/statuses/" + st.SHA
		body = map[string]string{"state": state, "target_url": st.TargetURL, "description": desc, "context": berth.StatusContext}
	case berth.GitLab:
		// The project is its URL-encoded full path: one path segment.
		rawPath = "/projects/" + strings.Join(segs, "%2F") + "/statuses/" + st.SHA
		body = map[string]string{"state": state, "target_url": st.TargetURL, "description": desc, "name": berth.StatusContext}
	case berth.Bitbucket:
		rawPath = "/repositories/" + strings.Join(segs, "/") + "/commit/" + st.SHA + "/statuses/build"
		body = map[string]string{"state": state, "url": st.TargetURL, "description": desc, "key": "berth-preview", "name": berth.StatusContext}
	}
	rawPath = u.EscapedPath() + rawPath
	path, err := url.PathUnescape(rawPath)
	if err != nil {
		return nil, nil, berth.E("post commit status", berth.Invalid, "status API base URL %q has a bad path", clipURL(base))
	}
	u.Path, u.RawPath = path, rawPath
	b, err := json.Marshal(body)
	if err != nil {
		return nil, nil, fmt.Errorf("encode commit status: %w", err)
	}
	return u, b, nil
}

// clipDescription shortens a description to what providers take, on a rune
// boundary, on one line.
func clipDescription(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= maxDescription {
		return s
	}
	cut := maxDescription - 3
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// providerMessage reads the "message" (GitHub, GitLab, Gitea) or
// "error.message" (Bitbucket) of an error answer, as ": <message>", short
// and on one line; "" when there is none.
func providerMessage(r io.Reader) string {
	b, _ := io.ReadAll(r)
	var doc struct {
		Message any `json:"message"`
		Error   struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &doc) != nil {
		return ""
	}
	m := doc.Error.Message
	if s, ok := doc.Message.(string); ok && s != "" {
		m = s
	}
	m = strings.Join(strings.Fields(strings.ToValidUTF8(m, "?")), " ")
	if m == "" {
		return ""
	}
	if len(m) > 200 {
		m = m[:197] + "..."
	}
	return ": " + m
}

// netReason is the part of a connection error worth showing.
func netReason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	s := err.Error()
	if len(s) > 200 {
		s = s[:197] + "..."
	}
	return s
}

// clipURL shortens a URL for a message, without credentials.
func clipURL(s string) string {
	s = Redact(s)
	if len(s) > 100 {
		return s[:97] + "..."
	}
	return s
}
