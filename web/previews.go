package web

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/berthhq/berth"
)

// previewSettings is GET /api/v1/apps/{app}/previews/settings.
type previewSettings struct {
	Enabled        bool   `json:"enabled"`
	MaxPreviews    int    `json:"max_previews"`
	TTL            string `json:"ttl"`
	StatusAPI      string `json:"status_api"`
	StatusTokenSet bool   `json:"status_token_set"`
	Env            []struct {
		Key string `json:"key"`
	} `json:"env"`
}

// previewsView is the previews page of an app.
type previewsView struct {
	App      berth.App
	Previews []berth.Preview
	Settings previewSettings
	// CanApprove: the signed-in member may approve a fork's preview (write
	// and read-secrets); the button is shown to them only, the API decides.
	CanApprove bool
}

func (s *Server) previewsPage(w http.ResponseWriter, r *http.Request, f *flash) {
	v, a, ok := s.appTab(w, r)
	if !ok {
		return
	}
	v.Title = a.Name + " · previews"
	pv := previewsView{App: *a}
	if err := s.get(r, p("/api/v1/apps/%s/previews", a.Name), &pv.Previews); err != nil {
		s.errorPage(w, r, v, s.failed(r, err))
		return
	}
	_ = s.get(r, p("/api/v1/apps/%s/previews/settings", a.Name), &pv.Settings)
	pv.CanApprove = berth.Allows(v.Me.Scopes, berth.ScopeWrite) && berth.Allows(v.Me.Scopes, berth.ScopeReadSecrets)
	v.Data = pv
	s.show(w, r, v, "previews", f)
}

func (s *Server) approvePreview(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	s.act(w, r, s.previewsPage, func() (string, error) {
		n, err := strconv.Atoi(r.PathValue("n"))
		if err != nil || n <= 0 {
			return "", &apiError{Status: http.StatusNotFound, Detail: "no such pull request"}
		}
		body := map[string]string{"sha": strings.TrimSpace(r.PostFormValue("sha"))}
		return p("/apps/%s/previews", app), s.send(r, "POST", p("/api/v1/apps/%s/previews/%s/approve", app, strconv.Itoa(n)), body, nil)
	})
}

func (s *Server) deletePreview(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	s.act(w, r, s.previewsPage, func() (string, error) {
		n, err := strconv.Atoi(r.PathValue("n"))
		if err != nil || n <= 0 {
			return "", &apiError{Status: http.StatusNotFound, Detail: "no such pull request"}
		}
		return p("/apps/%s/previews", app), s.send(r, "DELETE", p("/api/v1/apps/%s/previews/%s", app, strconv.Itoa(n)), nil, nil)
	})
}

func (s *Server) setPreviewSettings(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	s.act(w, r, s.previewsPage, func() (string, error) {
		maxPreviews, err := number(r, "max_previews")
		if err != nil {
			return "", err
		}
		body := map[string]any{"enabled": r.PostFormValue("enabled") == "on",
			"ttl": strings.TrimSpace(r.PostFormValue("ttl")), "status_api": strings.TrimSpace(r.PostFormValue("status_api"))}
		if maxPreviews > 0 {
			body["max_previews"] = maxPreviews
		}
		// The token is write-only: an empty field keeps it.
		if tok := strings.TrimSpace(r.PostFormValue("status_token")); tok != "" {
			body["status_token"] = tok
		}
		return p("/apps/%s/previews", app), s.send(r, "PUT", p("/api/v1/apps/%s/previews/settings", app), body, nil)
	})
}
