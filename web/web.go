// Package web is berth's dashboard: server-rendered pages (html/template and
// embed, hand-written CSS, a little vanilla JavaScript, no build step) that
// act as an in-process client of berth's own REST API. Every read a page
// needs and every action a form posts is a call to the API handler in
// memory with the browser's session cookie and, for a change, the
// session's CSRF token; so each action passes the API's permission checks,
// validation and audit log, and this package holds no business logic and
// never touches the store. The calls made for one browser request share
// one authentication (auth.ShareAuthentication), and the apps list reads
// one page of apps at a time, so that a page costs the same with 1,000
// apps as with ten (see the package's TestBusyTeam and the benchmark's
// dashboard section).
package web

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/auth"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Config is what the dashboard needs.
type Config struct {
	// API is berth's API handler (/api/v1/…), called in memory.
	API http.Handler
	Log *slog.Logger
	Now func() time.Time // default time.Now
	// OIDC shows the "sign in with single sign-on" link on the login page.
	OIDC bool
}

// Server serves the dashboard.
type Server struct {
	api     http.Handler
	log     *slog.Logger
	now     func() time.Time
	oidc    bool
	pages   map[string]*template.Template
	flashes flashes
}

// New returns a dashboard server. It panics when the embedded templates do
// not parse, which a test catches.
func New(cfg Config) *Server {
	s := &Server{api: cfg.API, log: cfg.Log, now: cfg.Now, oidc: cfg.OIDC, pages: map[string]*template.Template{},
		flashes: flashes{held: map[string]heldFlash{}}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		panic("web: " + err.Error())
	}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		s.pages[name] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", n))
	}
	return s
}

// Handler returns the dashboard's HTTP handler: its pages, the forms they
// post and /static/.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFiles, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", cacheStatic(http.FileServerFS(static))))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/apps", http.StatusSeeOther) })
	mux.HandleFunc("GET /login", s.page(s.loginPage))
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.logout)

	mux.HandleFunc("GET /apps", s.page(s.appsPage))
	mux.HandleFunc("GET /apps/new", s.page(s.newAppPage))
	mux.HandleFunc("POST /apps/new", s.createApp)
	mux.HandleFunc("GET /apps/{app}", s.page(s.appPage))
	mux.HandleFunc("POST /apps/{app}/deploy", s.deploy)
	mux.HandleFunc("POST /apps/{app}/rollback", s.rollback)
	mux.HandleFunc("POST /apps/{app}/settings", s.updateApp)
	mux.HandleFunc("POST /apps/{app}/delete", s.deleteApp)
	mux.HandleFunc("POST /apps/{app}/domains", s.addDomain)
	mux.HandleFunc("POST /apps/{app}/domains/remove", s.removeDomain)
	mux.HandleFunc("GET /apps/{app}/env", s.page(s.envPage))
	mux.HandleFunc("POST /apps/{app}/env", s.setEnv)
	mux.HandleFunc("POST /apps/{app}/env/unset", s.unsetEnv)
	mux.HandleFunc("GET /apps/{app}/access", s.page(s.accessPage))
	mux.HandleFunc("POST /apps/{app}/access/deploy-key", s.accessAction("POST", "deploy-key", nil))
	mux.HandleFunc("POST /apps/{app}/access/deploy-key/rotate", s.accessAction("POST", "deploy-key", func(*http.Request) any { return map[string]bool{"rotate": true} }))
	mux.HandleFunc("POST /apps/{app}/access/deploy-key/delete", s.accessAction("DELETE", "deploy-key", nil))
	mux.HandleFunc("POST /apps/{app}/access/token", s.accessAction("PUT", "git-credentials", func(r *http.Request) any {
		return map[string]string{"username": strings.TrimSpace(r.PostFormValue("username")), "token": strings.TrimSpace(r.PostFormValue("token"))}
	}))
	mux.HandleFunc("POST /apps/{app}/access/token/delete", s.accessAction("DELETE", "git-credentials", nil))
	mux.HandleFunc("POST /apps/{app}/access/host-keys", s.accessAction("PUT", "host-keys", func(r *http.Request) any {
		return map[string]string{"known_hosts": r.PostFormValue("known_hosts")}
	}))
	mux.HandleFunc("POST /apps/{app}/access/host-keys/reset", s.accessAction("DELETE", "host-keys", nil))
	mux.HandleFunc("GET /apps/{app}/previews", s.page(s.previewsPage))
	mux.HandleFunc("POST /apps/{app}/previews/settings", s.setPreviewSettings)
	mux.HandleFunc("POST /apps/{app}/previews/{n}/approve", s.approvePreview)
	mux.HandleFunc("POST /apps/{app}/previews/{n}/delete", s.deletePreview)
	mux.HandleFunc("GET /apps/{app}/deployments/{n}", s.page(s.deploymentPage))
	mux.HandleFunc("POST /apps/{app}/deployments/{n}/cancel", s.cancelDeployment)
	mux.HandleFunc("GET /apps/{app}/webhooks", s.page(s.webhooksPage))
	mux.HandleFunc("POST /apps/{app}/webhooks", s.setWebhook)
	mux.HandleFunc("POST /apps/{app}/webhooks/secret", s.newWebhookSecret)
	mux.HandleFunc("POST /apps/{app}/webhooks/secret/remove", s.removeWebhookSecret)

	mux.HandleFunc("GET /members", s.page(s.membersPage))
	mux.HandleFunc("POST /members/invite", s.invite)
	mux.HandleFunc("POST /members/{user}/role", s.setRole)
	mux.HandleFunc("POST /members/{user}/remove", s.removeMember)
	mux.HandleFunc("POST /invitations/{id}/revoke", s.revokeInvitation)
	mux.HandleFunc("GET /tokens", s.page(s.tokensPage))
	mux.HandleFunc("POST /tokens", s.createToken)
	mux.HandleFunc("POST /tokens/{id}/revoke", s.revokeToken)
	mux.HandleFunc("GET /audit", s.page(s.auditPage))
	mux.HandleFunc("GET /server", s.page(s.serverPage))

	mux.HandleFunc("POST /team", s.switchTeam)
	mux.HandleFunc("GET /projects", s.page(s.projectsPage))
	mux.HandleFunc("POST /projects", s.createProject)
	mux.HandleFunc("POST /projects/{project}/delete", s.deleteProject)
	mux.HandleFunc("POST /members/{user}/projects", s.setMemberProjects)
	mux.HandleFunc("GET /account", s.page(s.accountPage))
	mux.HandleFunc("POST /account/password", s.changePassword)
	mux.HandleFunc("POST /account/totp", s.startTOTP)
	mux.HandleFunc("POST /account/totp/confirm", s.confirmTOTP)
	mux.HandleFunc("POST /account/totp/disable", s.disableTOTP)
	mux.HandleFunc("POST /account/require-2fa", s.setRequire2FA)
	return shareAuthentication(mux)
}

// shareAuthentication lets the API calls made for one browser request
// authenticate once (auth.ShareAuthentication): a page makes several, and
// authenticating each read the store again for the same answer. A form's
// change still authenticates on its own, with its CSRF token.
func shareAuthentication(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(auth.ShareAuthentication(r.Context())))
	})
}

func cacheStatic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		next.ServeHTTP(w, r)
	})
}

// apiError is an API answer other than success: its status and the detail
// of its problem document.
type apiError struct {
	Status int
	Detail string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d: %s", e.Status, e.Detail) }

// answer is an API response, read whole.
type answer struct {
	status int
	header http.Header
	body   bytes.Buffer
}

func (a *answer) Header() http.Header { return a.header }
func (a *answer) Write(b []byte) (int, error) {
	if a.status == 0 {
		a.status = http.StatusOK
	}
	return a.body.Write(b)
}

// Flush lets a streaming API handler (runtime logs) flush into the buffer.
func (a *answer) Flush() {}

func (a *answer) WriteHeader(code int) {
	if a.status == 0 {
		a.status = code
	}
}

// call sends one request to the API in memory on behalf of the browser's
// request r: with its cookies, client address and host and, for a change,
// csrf as the X-CSRF-Token header. in, when not nil, is sent as JSON; out,
// when not nil, receives the JSON answer. A non-2xx answer is an *apiError.
func (s *Server) call(r *http.Request, method, path string, in, out any, csrf string) (*answer, error) {
	var body io.Reader = http.NoBody
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(r.Context(), method, path, body)
	if err != nil {
		return nil, fmt.Errorf("request %s %s: %w", method, path, err)
	}
	req.RemoteAddr, req.Host, req.TLS = r.RemoteAddr, r.Host, r.TLS
	for _, h := range []string{"Cookie", "User-Agent", "X-Forwarded-For"} {
		if v := r.Header.Values(h); len(v) > 0 {
			req.Header[h] = v
		}
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	a := &answer{header: http.Header{}}
	s.api.ServeHTTP(a, req)
	if a.status == 0 {
		a.status = http.StatusOK
	}
	if a.status >= 300 {
		var p struct {
			Detail string `json:"detail"`
		}
		_ = json.Unmarshal(a.body.Bytes(), &p)
		if p.Detail == "" {
			p.Detail = http.StatusText(a.status)
		}
		return a, &apiError{Status: a.status, Detail: p.Detail}
	}
	if out != nil && a.status != http.StatusNoContent {
		if err := json.Unmarshal(a.body.Bytes(), out); err != nil {
			return a, fmt.Errorf("decode %s %s: %w", method, path, err)
		}
	}
	return a, nil
}

// get reads path from the API into out.
func (s *Server) get(r *http.Request, path string, out any) error {
	_, err := s.call(r, "GET", path, nil, out, "")
	return err
}

// send posts a change to the API with the CSRF token the form carried.
func (s *Server) send(r *http.Request, method, path string, in, out any) error {
	_, err := s.call(r, method, path, in, out, r.PostFormValue("csrf"))
	return err
}

// p builds an API path, escaping each value.
func p(format string, vals ...string) string {
	args := make([]any, len(vals))
	for i, v := range vals {
		args[i] = url.PathEscape(v)
	}
	return fmt.Sprintf(format, args...)
}

// me is who the browser is signed in as.
type me struct {
	User      berth.User    `json:"user"`
	Team      berth.Team    `json:"team"`
	Role      berth.Role    `json:"role"`
	Scopes    []berth.Scope `json:"scopes"`
	CSRFToken string        `json:"csrf_token"`
	// The second factor: the user's, the team's rule, and whether the user
	// may do nothing but turn it on.
	TOTPEnabled     bool `json:"totp_enabled"`
	TeamRequires2FA bool `json:"team_requires_2fa"`
	MustEnrol2FA    bool `json:"must_enrol_2fa"`
}

// teamInfo is one of the teams of the signed-in user.
type teamInfo struct {
	Team berth.Team `json:"team"`
	Role berth.Role `json:"role"`
}

// view is what every page shows: the layout's data and the page's own.
type view struct {
	Title string
	Nav   string
	Me    *me
	Teams []teamInfo
	CSRF  string
	Error string
	// ErrorAt names the form whose refusal Error is: the page shows it
	// next to that form instead of at the top.
	ErrorAt string
	Notice  string
	OIDC    bool
	Data    any
}

// flash is the outcome of a form: the API's refusal, shown on the page
// the form re-renders, or, after a success, what the page it redirects to
// shows once (a notice, a new secret).
type flash struct {
	Status int
	Error  string
	Notice string
	Secret any
}

// failed turns an error of an API call into a flash; an internal error is
// logged and shown without its details.
func (s *Server) failed(r *http.Request, err error) *flash {
	if ae, ok := err.(*apiError); ok {
		return &flash{Status: ae.Status, Error: ae.Detail}
	}
	s.log.Error("web: request", "method", r.Method, "path", r.URL.Path, "err", err)
	return &flash{Status: http.StatusInternalServerError, Error: "internal error"}
}

// pageFunc renders a page, showing f: a form's refusal when it answers
// the form, what a form that succeeded left for it (see flashTo) when it
// answers the redirect after it, else nil.
type pageFunc func(w http.ResponseWriter, r *http.Request, f *flash)

func (s *Server) page(fn pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { fn(w, r, s.takeFlash(w, r)) }
}

// signedIn reads who the browser is and their teams; it answers the
// request itself (a redirect to /login, an error page) and returns nil
// when the page cannot go on.
func (s *Server) signedIn(w http.ResponseWriter, r *http.Request) *view {
	var m me
	if err := s.get(r, "/api/v1/me", &m); err != nil {
		if ae, ok := err.(*apiError); ok && ae.Status == http.StatusUnauthorized {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return nil
		}
		s.errorPage(w, r, &view{}, s.failed(r, err))
		return nil
	}
	// A team that requires a second factor lets a user without one do
	// nothing but turn it on (on the account page) or switch team.
	if m.MustEnrol2FA && r.Method == http.MethodGet && r.URL.Path != "/account" {
		http.Redirect(w, r, "/account", http.StatusSeeOther)
		return nil
	}
	v := &view{Me: &m, CSRF: m.CSRFToken}
	_ = s.get(r, "/api/v1/teams", &v.Teams) // the switcher is optional
	return v
}

// errorPage renders a page that could not load what it shows.
func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, v *view, f *flash) {
	v.Title = http.StatusText(f.Status)
	v.Error = f.Error
	s.render(w, r, "error", f.Status, v)
}

// render executes page name with v and writes it with status.
func (s *Server) render(w http.ResponseWriter, r *http.Request, name string, status int, v *view) {
	t, ok := s.pages[name]
	if !ok {
		s.log.Error("web: no template", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	v.OIDC = s.oidc
	var buf bytes.Buffer
	if err := t.Execute(&buf, v); err != nil {
		s.log.Error("web: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// show renders a signed-in page with f, if any.
func (s *Server) show(w http.ResponseWriter, r *http.Request, v *view, name string, f *flash) {
	status := http.StatusOK
	if f != nil {
		status, v.Error, v.Notice = f.Status, f.Error, f.Notice
		if status == 0 {
			status = http.StatusOK
		}
	}
	s.render(w, r, name, status, v)
}

// readForm parses a posted form of at most 1 MiB.
func readForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		return &apiError{Status: http.StatusBadRequest, Detail: "the form could not be read"}
	}
	return nil
}

// act runs a form's API call and answers with a 303 to next, or re-renders
// page with the API's refusal.
func (s *Server) act(w http.ResponseWriter, r *http.Request, page pageFunc, do func() (next string, err error)) {
	if err := readForm(w, r); err != nil {
		page(w, r, s.failed(r, err))
		return
	}
	next, err := do()
	if err != nil {
		page(w, r, s.failed(r, err))
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}
