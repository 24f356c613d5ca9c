package web

import (
	"net/http"
	"strings"

	"github.com/berthhq/berth"
)

// webhookSettings is the API's GET /api/v1/apps/{app}/webhook.
type webhookSettings struct {
	berth.Webhook
	URL               string   `json:"url"`
	Path              string   `json:"path"`
	EffectiveBranches []string `json:"effective_branches"`
}

// webhookSecret is the API's answer to a new secret.
type webhookSecret struct {
	Secret string `json:"secret"`
	URL    string `json:"url"`
}

// webhooksView is the webhooks page of an app: its URL, settings form and
// deliveries.
type webhooksView struct {
	App        berth.App
	Settings   webhookSettings
	URL        string
	Branches   string // one per line, for the form
	Paths      string
	Deliveries []berth.WebhookDelivery
	Secret     *webhookSecret // a new secret, shown once
	Providers  []berth.Provider
}

func (s *Server) webhooksPage(w http.ResponseWriter, r *http.Request, f *flash) {
	v, a, ok := s.appTab(w, r)
	if !ok {
		return
	}
	v.Title = a.Name + " · webhooks"
	wv := webhooksView{App: *a, Providers: berth.Providers}
	if err := s.get(r, p("/api/v1/apps/%s/webhook", a.Name), &wv.Settings); err != nil {
		s.errorPage(w, r, v, s.failed(r, err))
		return
	}
	if err := s.get(r, p("/api/v1/apps/%s/webhooks/deliveries?limit=100", a.Name), &wv.Deliveries); err != nil {
		s.errorPage(w, r, v, s.failed(r, err))
		return
	}
	// The API gives a path alone when the server was started without
	// --public-url: the browser's host is then the best guess.
	wv.URL = wv.Settings.URL
	if strings.HasPrefix(wv.URL, "/") {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		wv.URL = scheme + "://" + r.Host + wv.URL
	}
	wv.Branches, wv.Paths = strings.Join(wv.Settings.Branches, "\n"), strings.Join(wv.Settings.Paths, "\n")
	if f != nil {
		wv.Secret, _ = f.Secret.(*webhookSecret)
		if f.Error != "" && r.PostForm != nil && r.PostForm.Has("branches") {
			// Keep what was typed when the API refused it.
			wv.Branches, wv.Paths = r.PostFormValue("branches"), r.PostFormValue("paths")
		}
	}
	v.Data = wv
	s.show(w, r, v, "webhooks", f)
}

// lines splits a textarea into its non-empty trimmed lines.
func lines(s string) []string {
	out := []string{}
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func (s *Server) setWebhook(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	s.act(w, r, s.webhooksPage, func() (string, error) {
		body := map[string]any{"branches": lines(r.PostFormValue("branches")), "paths": lines(r.PostFormValue("paths"))}
		return p("/apps/%s/webhooks", app), s.send(r, "PUT", p("/api/v1/apps/%s/webhook", app), body, nil)
	})
}

// newWebhookSecret generates a secret; the webhooks page it redirects to
// shows it, once: it is in no URL and no later page.
func (s *Server) newWebhookSecret(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	s.act(w, r, s.webhooksPage, func() (string, error) {
		var sec webhookSecret
		if err := s.send(r, "POST", p("/api/v1/apps/%s/webhook/secret", app), nil, &sec); err != nil {
			return "", err
		}
		return s.flashTo(w, r, p("/apps/%s/webhooks", app), &flash{Secret: &sec, Notice: "New webhook secret generated."}), nil
	})
}

func (s *Server) removeWebhookSecret(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	s.act(w, r, s.webhooksPage, func() (string, error) {
		var cur webhookSettings
		if err := s.get(r, p("/api/v1/apps/%s/webhook", app), &cur); err != nil {
			return "", err
		}
		body := map[string]any{"branches": cur.Branches, "paths": cur.Paths, "secret": ""}
		return p("/apps/%s/webhooks", app), s.send(r, "PUT", p("/api/v1/apps/%s/webhook", app), body, nil)
	})
}
