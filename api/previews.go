package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/auth"
	"github.com/berthhq/berth/git"
)

// previewRoutes are the routes of an app's preview environments.
func previewRoutes() []route {
	const app = "/api/v1/apps/{app}"
	return []route{
		{"GET", app + "/previews", berth.ScopeRead, (*Server).listPreviews, ""},
		{"POST", app + "/previews", berth.ScopeWrite, (*Server).pullRequestEvent, "preview.event"},
		{"GET", app + "/previews/settings", berth.ScopeRead, (*Server).getPreviewSettings, ""},
		{"PUT", app + "/previews/settings", berth.ScopeWrite, (*Server).setPreviewSettings, "preview.settings"},
		{"DELETE", app + "/previews/{n}", berth.ScopeWrite, (*Server).deletePreview, "preview.delete"},
		{"POST", app + "/previews/{n}/approve", berth.ScopeWrite, (*Server).approvePreview, "preview.approve"},
	}
}

// PreviewSettings is an app's preview settings as the API shows them: the
// env overrides are redacted unless the caller may read secrets, and the
// status token is never shown, only whether one is set.
type PreviewSettings struct {
	Enabled        bool      `json:"enabled"`
	MaxPreviews    int       `json:"max_previews"`
	TTL            string    `json:"ttl"` // a Go duration, such as "168h0m0s"
	Env            []EnvVar  `json:"env"`
	StatusAPI      string    `json:"status_api,omitempty"`
	StatusTokenSet bool      `json:"status_token_set"`
	UpdatedAt      time.Time `json:"updated_at,omitzero"`
}

// PreviewSettingsInput is the body of PUT
// /api/v1/apps/{app}/previews/settings. Fields left out keep their value;
// env, when present, replaces every override; status_token is write-only
// ("" removes it).
type PreviewSettingsInput struct {
	Enabled     *bool             `json:"enabled,omitempty"`
	MaxPreviews *int              `json:"max_previews,omitempty"`
	TTL         *string           `json:"ttl,omitempty"` // Go duration, or whole days such as "7d"
	Env         map[string]string `json:"env,omitempty"`
	StatusAPI   *string           `json:"status_api,omitempty"` // "" = the provider's public API
	StatusToken *string           `json:"status_token,omitempty"`
}

// ApproveRequest is the optional body of POST
// /api/v1/apps/{app}/previews/{n}/approve: the head commit the member
// reviewed; the approval is refused when the head has moved since.
type ApproveRequest struct {
	SHA string `json:"sha,omitempty"`
}

// EventResult is the answer to a pull request event: what berth did.
type EventResult struct {
	Outcome string `json:"outcome"`
}

func settingsOut(ps *berth.PreviewSettings, secrets bool) PreviewSettings {
	out := PreviewSettings{Enabled: ps.Enabled, MaxPreviews: ps.MaxPreviews, TTL: ps.TTL.String(), Env: []EnvVar{},
		StatusAPI: ps.StatusAPI, StatusTokenSet: ps.StatusToken != "", UpdatedAt: ps.UpdatedAt}
	var vars []berth.EnvVar
	for k, v := range ps.Env {
		vars = append(vars, berth.EnvVar{Key: k, Value: v, UpdatedAt: ps.UpdatedAt})
	}
	slices.SortFunc(vars, func(a, b berth.EnvVar) int { return strings.Compare(a.Key, b.Key) })
	out.Env = envOut(vars, secrets)
	return out
}

// parseTTL reads a Go duration or a number of days ("7d").
func parseTTL(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 3650 {
			return 0, berth.E("set preview settings", berth.Invalid, "ttl %q: use a duration such as \"72h\" or whole days such as \"7d\"", clip(s))
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, berth.E("set preview settings", berth.Invalid, "ttl %q: use a duration such as \"72h\" or whole days such as \"7d\"", clip(s))
	}
	return d, nil
}

// previewNumber reads the {n} of the path: a pull request number.
func previewNumber(r *http.Request, a *berth.App) (int, error) {
	raw := r.PathValue("n")
	n, err := strconv.Atoi(raw)
	if err != nil || n <= 0 || n > 1<<31-1 || strconv.Itoa(n) != raw {
		return 0, berth.E("find preview", berth.NotFound, "%s has no preview of pull request %q", a.Name, clip(raw))
	}
	return n, nil
}

// refusePreview refuses a mutating app route (one not in onPreview) on
// an app that runs a preview: berth sets such an app from its parent and
// its pull request at every push, so a change by hand would be lost or
// would make the preview differ from what the pull request would deploy.
// A missing app is the same 404 the route's handler would give.
func (s *Server) refusePreview(r *http.Request, p *auth.Principal) error {
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	pv, parent, err := s.previewOf(r.Context(), a)
	if err != nil || pv == nil {
		return err
	}
	return berth.E("change preview", berth.Conflict, "%s is the preview of pull request #%d of %s: change %s or the pull request", a.Name, pv.Number, parent, parent)
}

// previewOf returns the preview that app a runs and the name of the app it
// previews, or nil when a runs none.
func (s *Server) previewOf(ctx context.Context, a *berth.App) (*berth.Preview, string, error) {
	pv, err := s.engine.PreviewOf(ctx, a)
	if err != nil || pv == nil {
		return nil, "", err
	}
	parent, err := s.store.AppByID(ctx, a.TeamID, pv.AppID)
	if err != nil {
		return nil, "", fmt.Errorf("parent of %s: %w", a.Name, err)
	}
	return pv, parent.Name, nil
}

func (s *Server) listPreviews(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	ps, err := s.engine.Previews(r.Context(), a)
	if err != nil {
		return err
	}
	if ps == nil {
		ps = []berth.Preview{}
	}
	return writeJSON(w, http.StatusOK, ps)
}

func (s *Server) getPreviewSettings(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	ps, err := s.store.PreviewSettings(r.Context(), p.Team.ID, a.ID)
	if err != nil {
		return fmt.Errorf("preview settings of %s: %w", a.Name, err)
	}
	return writeJSON(w, http.StatusOK, settingsOut(ps, p.Can(berth.ScopeReadSecrets)))
}

func (s *Server) setPreviewSettings(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	const op = "set preview settings"
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	ctx := r.Context()
	var in PreviewSettingsInput
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	ps, err := s.store.PreviewSettings(ctx, p.Team.ID, a.ID)
	if err != nil {
		return fmt.Errorf("%s of %s: %w", op, a.Name, err)
	}
	if in.Enabled != nil {
		ps.Enabled = *in.Enabled
	}
	if in.MaxPreviews != nil {
		ps.MaxPreviews = *in.MaxPreviews
		if ps.MaxPreviews == 0 {
			return berth.E(op, berth.Invalid, "max previews 0: must be 1-%d (turn previews off with enabled: false)", berth.MaxMaxPreviews)
		}
	}
	if in.TTL != nil {
		if ps.TTL, err = parseTTL(*in.TTL); err != nil {
			return err
		}
	}
	if in.Env != nil {
		ps.Env = in.Env
	}
	if in.StatusAPI != nil {
		ps.StatusAPI = strings.TrimRight(strings.TrimSpace(*in.StatusAPI), "/")
		if ps.StatusAPI != "" {
			if err := berth.ValidStatusAPI(ps.StatusAPI); err != nil {
				return err
			}
			// The address is checked again at every connection; a name that
			// does not resolve now is accepted.
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := s.egress.Check(cctx, ps.StatusAPI)
			cancel()
			if berth.IsKind(err, berth.Invalid) {
				return err
			}
		}
	}
	if in.StatusToken != nil {
		ps.StatusToken = strings.TrimSpace(*in.StatusToken)
	}
	ps.UpdatedAt = s.now().UTC()
	ps.SetDefaults()
	if err := ps.Validate(); err != nil {
		return err
	}
	if err := s.store.SetPreviewSettings(ctx, ps); err != nil {
		return fmt.Errorf("%s of %s: %w", op, a.Name, err)
	}
	return writeJSON(w, http.StatusOK, settingsOut(ps, p.Can(berth.ScopeReadSecrets)))
}

func (s *Server) approvePreview(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	const op = "approve preview"
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	n, err := previewNumber(r, a)
	if err != nil {
		return err
	}
	if !p.Can(berth.ScopeReadSecrets) {
		return berth.E(op, berth.Forbidden, "approving a fork's preview gives its code %s's secrets: it needs the %q permission too", a.Name, berth.ScopeReadSecrets)
	}
	var in ApproveRequest
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, &in); err != nil {
			return err
		}
	}
	pv, err := s.engine.ApprovePreview(r.Context(), a, n, in.SHA, p.Name())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, pv)
}

func (s *Server) deletePreview(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	n, err := previewNumber(r, a)
	if err != nil {
		return err
	}
	pv, err := s.engine.DeletePreview(r.Context(), a, n)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, pv)
}

// pullRequestEvent takes a pull request event by hand, as a provider's
// webhook would deliver it: for CI systems that are not one of the
// providers, and for trying a setup.
func (s *Server) pullRequestEvent(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	const op = "pull request event"
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	var pr berth.PullRequest
	if err := decodeJSON(w, r, &pr); err != nil {
		return err
	}
	if err := pr.Validate(); err != nil {
		return err
	}
	if pr.HeadRepo != "" {
		// A Bitbucket fork's head is fetched from here.
		if err := git.CheckURL(pr.HeadRepo, false); err != nil {
			return berth.E(op, berth.Invalid, "head_repo: %s", berth.ErrorMessage(err))
		}
		if u, err := url.Parse(pr.HeadRepo); err != nil || u.Scheme != "https" {
			return berth.E(op, berth.Invalid, "head_repo: use an https URL")
		}
		cctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		_, err := s.egress.Check(cctx, pr.HeadRepo)
		cancel()
		if berth.IsKind(err, berth.Invalid) {
			return err
		}
	}
	res, err := s.engine.PullRequest(r.Context(), a, pr)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, EventResult{Outcome: res.Reason})
}

// Previews lists the previews of app.
func (c *Client) Previews(ctx context.Context, app string) ([]berth.Preview, error) {
	var out []berth.Preview
	err := c.do(ctx, "list previews", "GET", appPath(app, "previews"), nil, &out)
	return out, err
}

// Preview returns the preview of app's pull request n.
func (c *Client) Preview(ctx context.Context, app string, n int) (*berth.Preview, error) {
	ps, err := c.Previews(ctx, app)
	if err != nil {
		return nil, err
	}
	for i := range ps {
		if ps[i].Number == n {
			return &ps[i], nil
		}
	}
	return nil, berth.E("get preview", berth.NotFound, "%s has no preview of pull request #%d", app, n)
}

// PreviewSettings returns app's preview settings.
func (c *Client) PreviewSettings(ctx context.Context, app string) (*PreviewSettings, error) {
	var out PreviewSettings
	if err := c.do(ctx, "get preview settings", "GET", appPath(app, "previews", "settings"), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SetPreviewSettings changes app's preview settings (fields left nil keep
// their value).
func (c *Client) SetPreviewSettings(ctx context.Context, app string, in PreviewSettingsInput) (*PreviewSettings, error) {
	var out PreviewSettings
	if err := c.do(ctx, "set preview settings", "PUT", appPath(app, "previews", "settings"), in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ApprovePreview approves the head (sha, when given, must be it) of the
// fork's pull request n of app: its preview is deployed again with the
// app's secrets.
func (c *Client) ApprovePreview(ctx context.Context, app string, n int, sha string) (*berth.Preview, error) {
	var out berth.Preview
	if err := c.do(ctx, "approve preview", "POST", appPath(app, "previews", strconv.Itoa(n), "approve"), ApproveRequest{SHA: sha}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeletePreview tears down the preview of app's pull request n.
func (c *Client) DeletePreview(ctx context.Context, app string, n int) (*berth.Preview, error) {
	var out berth.Preview
	if err := c.do(ctx, "delete preview", "DELETE", appPath(app, "previews", strconv.Itoa(n)), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PullRequestEvent delivers a pull request event of app by hand and
// returns what berth did.
func (c *Client) PullRequestEvent(ctx context.Context, app string, pr berth.PullRequest) (string, error) {
	var out EventResult
	if err := c.do(ctx, "pull request event", "POST", appPath(app, "previews"), pr, &out); err != nil {
		return "", err
	}
	return out.Outcome, nil
}
