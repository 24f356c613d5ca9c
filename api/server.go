// Package api is berth's REST API: the HTTP handlers under /api/v1, the
// OpenAPI document that describes them, and the typed Go client the CLI
// uses. Every route declares the token scope it needs; errors are RFC 9457
// problem+json documents built from *berth.Error kinds.
package api

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/auth"
	"github.com/berthhq/berth/egress"
	"github.com/berthhq/berth/engine"
	"github.com/berthhq/berth/git"
	"github.com/berthhq/berth/store"
)

//go:embed openapi.json
var openAPI []byte

// Limits on request bodies.
const (
	MaxJSONBody          = 1 << 20   // 1 MiB
	DefaultMaxUploadBody = 512 << 20 // 512 MiB
)

// Config is what a Server needs.
type Config struct {
	Store  *store.Store
	Engine *engine.Engine
	Log    *slog.Logger
	Now    func() time.Time // default time.Now
	// AllowLocalGit lets apps use local paths and file:// URLs as their Git
	// source (for tests and single-machine setups).
	AllowLocalGit bool
	// MaxUpload limits an uploaded build context; default DefaultMaxUploadBody.
	MaxUpload int64
	// Egress says which addresses an app's Git URL may point at; the zero
	// value allows public addresses only.
	Egress egress.Policy
	// TrustedProxies are the proxies whose X-Forwarded-For names the client
	// (for sign-in rate limits).
	TrustedProxies []netip.Prefix
	// PublicURL is where browsers reach berth ("https://berth.example.com"),
	// without a trailing slash: OIDC redirects go there.
	PublicURL string
	// InsecureCookies drops the Secure attribute of session cookies, for a
	// server reached over plain http (not localhost, which browsers treat as
	// secure anyway).
	InsecureCookies bool
	// OIDC turns on sign-in through an OpenID Connect provider; nil = off.
	OIDC *auth.OIDCConfig
	// Health is what GET /api/v1/server/health probes (see health.go).
	Health HealthProbe
	// GitDir holds the hosted git repositories of push apps (see
	// gitremote.go); empty turns the /git/ routes off.
	GitDir string
	// GitHook is the program git runs as the pre-receive hook of a push:
	// the berth binary itself (absolute path), which runs git.RunHook when
	// started under that name.
	GitHook string
	// MaxPush limits the body of one push; default DefaultMaxPushBody.
	MaxPush int64
	// GitRate limits requests to /git/ per client address and per token,
	// per minute; default DefaultGitRequestsRate.
	GitRate int
	// Previews acts on pull request webhooks; nil records them as ignored
	// ("previews are not enabled").
	Previews Previews
	// Webhooks bounds the webhook endpoint (body size, rate limits).
	Webhooks WebhookLimits
	// LsRemote resolves the abbreviated head commit of a Bitbucket pull
	// request (*git.Fetcher.LsRemote); nil leaves such requests failed.
	LsRemote git.LsRemote
	// Ping is how often an event stream (a deployment's log, an app's
	// runtime log) sends a ": ping" comment, so that proxies and browsers
	// do not drop it while nothing happens; default DefaultPing.
	Ping time.Duration
}

// DefaultPing is how often an idle event stream is pinged by default:
// below the minute after which common proxies close an idle connection.
const DefaultPing = 15 * time.Second

// Server serves the API.
type Server struct {
	store     *store.Store
	engine    *engine.Engine
	log       *slog.Logger
	now       func() time.Time
	localGit  bool
	egress    egress.Policy
	maxUpload int64
	// Sign-in.
	addrs         auth.AddrPolicy
	limiter       *auth.Limiter
	publicURL     string
	secureCookies bool
	oidc          *auth.OIDC
	health        HealthProbe
	// Hosted git remotes.
	repos      *git.Repos // nil: off
	gitHook    string
	maxPush    int64
	gitLimiter *rateLimiter
	gitRate    int // requests a minute per address and per token
	pushes     pushLocks
	// Webhooks.
	previews    Previews
	hookLimits  WebhookLimits
	hookLimiter *rateLimiter
	lsRemote    git.LsRemote
	// poll paces the deployment log stream and ping every event stream;
	// settle is how long after a deployment ends its stream still waits
	// for trailing lines.
	poll   time.Duration
	ping   time.Duration
	settle time.Duration
}

// New returns a Server.
func New(cfg Config) *Server {
	s := &Server{
		store:         cfg.Store,
		engine:        cfg.Engine,
		log:           cfg.Log,
		now:           cfg.Now,
		localGit:      cfg.AllowLocalGit,
		egress:        cfg.Egress,
		maxUpload:     cfg.MaxUpload,
		addrs:         auth.AddrPolicy{TrustedProxies: cfg.TrustedProxies},
		limiter:       auth.NewLimiter(),
		publicURL:     strings.TrimRight(cfg.PublicURL, "/"),
		secureCookies: !cfg.InsecureCookies,
		health:        cfg.Health,
		previews:      cfg.Previews,
		hookLimits:    cfg.Webhooks,
		lsRemote:      cfg.LsRemote,
		poll:          200 * time.Millisecond,
		ping:          cfg.Ping,
		settle:        time.Second,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.ping <= 0 {
		s.ping = DefaultPing
	}
	if s.maxUpload <= 0 {
		s.maxUpload = DefaultMaxUploadBody
	}
	if cfg.GitDir != "" {
		s.repos = &git.Repos{Dir: cfg.GitDir}
	}
	s.gitHook, s.maxPush = cfg.GitHook, cfg.MaxPush
	if s.maxPush <= 0 {
		s.maxPush = DefaultMaxPushBody
	}
	s.gitLimiter, s.gitRate = newRateLimiter("git", time.Minute), cfg.GitRate
	if s.gitRate <= 0 {
		s.gitRate = DefaultGitRequestsRate
	}
	s.hookLimits.setDefaults()
	s.hookLimiter = newRateLimiter("webhook", s.hookLimits.Window)
	if cfg.OIDC != nil {
		o := *cfg.OIDC
		if o.RedirectURL == "" {
			o.RedirectURL = s.publicURL + "/api/v1/oidc/callback"
		}
		s.oidc = auth.NewOIDC(o)
	}
	return s
}

// handlerFunc is an API handler: it acts for principal p and returns an
// error instead of writing one.
type handlerFunc func(s *Server, w http.ResponseWriter, r *http.Request, p *auth.Principal) error

// route is one entry of the route table.
type route struct {
	method  string
	pattern string      // http.ServeMux pattern without the method
	scope   berth.Scope // permission the caller needs, or public
	handler handlerFunc
	action  string // audit action ("app.create") of a mutating route; "" for reads
}

// public is the permission of the few routes anyone may call (logging in,
// accepting an invitation): their handler gets a nil principal and does its
// own checks. Every other route needs a principal holding its scope.
const public berth.Scope = "public"

// routes is the API, one list per area. The OpenAPI document lists exactly
// these (a test checks it), and every route names the permission it needs:
// New refuses to serve a table where one does not.
func routes() []route {
	return slices.Concat(appRoutes(), previewRoutes(), identityRoutes(), teamRoutes(), metricsRoutes(), healthRoutes(), webhookRoutes())
}

// appRoutes are the routes of apps and what hangs off them.
func appRoutes() []route {
	const v = "/api/v1"
	const app = appPrefix
	return []route{
		{"GET", v + "/openapi.json", berth.ScopeRead, (*Server).openAPIDoc, ""},
		{"GET", v + "/me", berth.ScopeRead, (*Server).me, ""},

		{"GET", v + "/apps", berth.ScopeRead, (*Server).listApps, ""},
		{"POST", v + "/apps", berth.ScopeWrite, (*Server).createApp, "app.create"},
		{"GET", app, berth.ScopeRead, (*Server).getApp, ""},
		{"PATCH", app, berth.ScopeWrite, (*Server).updateApp, "app.update"},
		{"DELETE", app, berth.ScopeWrite, (*Server).deleteApp, "app.delete"},
		{"GET", app + "/status", berth.ScopeRead, (*Server).appStatus, ""},

		{"GET", app + "/domains", berth.ScopeRead, (*Server).listDomains, ""},
		{"POST", app + "/domains", berth.ScopeWrite, (*Server).addDomain, "domain.add"},
		{"DELETE", app + "/domains/{host}", berth.ScopeWrite, (*Server).removeDomain, "domain.remove"},
		{"PUT", app + "/domains/{host}/certificate", berth.ScopeWrite, (*Server).setCertificate, "certificate.set"},
		{"DELETE", app + "/domains/{host}/certificate", berth.ScopeWrite, (*Server).removeCertificate, "certificate.remove"},

		{"GET", app + "/env", berth.ScopeRead, (*Server).listEnv, ""},
		{"PATCH", app + "/env", berth.ScopeWrite, (*Server).updateEnv, "env.update"},

		{"GET", app + "/deploy-key", berth.ScopeRead, (*Server).getDeployKey, ""},
		{"POST", app + "/deploy-key", berth.ScopeWrite, (*Server).createDeployKey, "deploykey.create"},
		{"DELETE", app + "/deploy-key", berth.ScopeWrite, (*Server).deleteDeployKey, "deploykey.delete"},
		{"GET", app + "/git-credentials", berth.ScopeRead, (*Server).getGitCredentials, ""},
		{"PUT", app + "/git-credentials", berth.ScopeWrite, (*Server).setGitCredentials, "gittoken.set"},
		{"DELETE", app + "/git-credentials", berth.ScopeWrite, (*Server).deleteGitCredentials, "gittoken.delete"},
		{"GET", app + "/host-keys", berth.ScopeRead, (*Server).listHostKeys, ""},
		{"PUT", app + "/host-keys", berth.ScopeWrite, (*Server).setHostKeys, "hostkeys.set"},
		{"DELETE", app + "/host-keys", berth.ScopeWrite, (*Server).resetHostKeys, "hostkeys.reset"},

		{"GET", v + "/deployments", berth.ScopeRead, (*Server).latestDeployments, ""},
		{"GET", app + "/deployments", berth.ScopeRead, (*Server).listDeployments, ""},
		{"POST", app + "/deployments", berth.ScopeDeploy, (*Server).createDeployment, "deployment.create"},
		{"GET", app + "/deployments/{id}", berth.ScopeRead, (*Server).getDeployment, ""},
		{"GET", app + "/deployments/{id}/log", berth.ScopeRead, (*Server).deploymentLog, ""},
		{"POST", app + "/deployments/{id}/cancel", berth.ScopeDeploy, (*Server).cancelDeployment, "deployment.cancel"},

		{"GET", app + "/releases", berth.ScopeRead, (*Server).listReleases, ""},
		{"POST", app + "/rollback", berth.ScopeDeploy, (*Server).rollback, "app.rollback"},

		{"GET", app + "/logs", berth.ScopeRead, (*Server).appLogs, ""},
	}
}

// appPrefix starts the pattern of every route of one app.
const appPrefix = "/api/v1/apps/{app}"

// onPreview names the mutating app routes that also act on an app that
// runs a preview (<app>-pr-<n>), and says why. Every other mutating route
// under appPrefix — settings, env, domains, certificates, webhook, git
// credentials, host keys, previews, rollback, and any route added later —
// refuses such an app with 409 (see refusePreview): berth sets it from its
// parent and its pull request. A rollback is refused too: a preview runs
// its pull request's head, and a pushed revert takes it back.
var onPreview = map[string]string{
	"DELETE " + appPrefix: "deleting the app tears the preview down whole, as closing the pull request or " +
		"berth previews delete does (engine.DeleteApp); the next push of the pull request makes it again",
	"POST " + appPrefix + "/deployments": "deploys the pull request's head again, such as after a failed build; " +
		"a ref in the body is refused (createDeployment)",
	"POST " + appPrefix + "/deployments/{id}/cancel": "stops a deployment of the preview, which deleting " +
		"its parent waits for (\"cancel it first\")",
}

// refusesPreview reports whether route rt refuses an app that runs a
// preview (see onPreview). A public route has no caller to find the app
// for; there is none under appPrefix.
func refusesPreview(rt route) bool {
	mutating := rt.method != "GET" && rt.method != "HEAD"
	inApp := rt.pattern == appPrefix || strings.HasPrefix(rt.pattern, appPrefix+"/")
	return mutating && inApp && rt.scope != public && onPreview[rt.method+" "+rt.pattern] == ""
}

// Handler returns the HTTP handler of the API: /api/v1/…, the hosted git
// remotes under /git/ and /healthz.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range routes() {
		if rt.scope != public && rt.scope != self && !berth.ValidScope(rt.scope) {
			panic(fmt.Sprintf("api: route %s %s declares no valid permission (%q)", rt.method, rt.pattern, rt.scope))
		}
		mux.Handle(rt.method+" "+rt.pattern, s.adapt(rt))
	}
	for _, rt := range gitRoutes() {
		if !berth.ValidScope(rt.scope) {
			panic(fmt.Sprintf("api: route %s %s declares no valid permission (%q)", rt.method, rt.pattern, rt.scope))
		}
		mux.Handle(rt.method+" "+rt.pattern, s.adaptGit(rt))
	}
	mux.HandleFunc("GET /healthz", s.healthz)
	return mux
}

// recorder remembers whether a response has started, so that an error
// returned after it did is logged rather than written into the body.
type recorder struct {
	http.ResponseWriter
	started bool
	status  int
	// compact asks writeJSON for JSON without indentation: the answer
	// goes to the dashboard's decoder in this process, not to a person,
	// and indenting would double the cost of encoding it.
	compact bool
	// audit lets a public handler name who acted once it knows (accepting
	// an invitation), for the audit event.
	audit struct {
		team *berth.Team
		user *berth.User
		// target, outcome and detail, when set, replace what the event
		// would say from the route and the status (a push whose
		// deployment failed answered 200: git got the verdict).
		target  string
		outcome berth.Outcome
		detail  string
		// skip drops the event of a request that changed nothing by
		// design (git's probe before a large push).
		skip bool
	}
}

func (w *recorder) WriteHeader(code int) {
	if !w.started {
		w.status = code
	}
	w.started = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if !w.started {
		w.status = http.StatusOK
	}
	w.started = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flush,
// deadlines).
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// adapt turns a route into an http.Handler: it authenticates the caller,
// checks the route's scope, narrows a member to their projects, refuses a
// change by hand to a preview's app (refusesPreview), runs the handler,
// writes its error and, for a mutating route, writes the audit event
// whatever the outcome.
func (s *Server) adapt(rt route) http.Handler {
	mutating := rt.method != "GET" && rt.method != "HEAD"
	guarded := refusesPreview(rt)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w, compact: auth.InProcess(r.Context())}
		w.Header().Set("Cache-Control", "no-store")
		var p *auth.Principal
		var err error
		if mutating {
			defer func() { s.audit(rt, rec, r, p, err) }()
		}
		if rt.scope != public {
			p, err = auth.Shared(r, func() (*auth.Principal, error) { return s.authenticate(r) })
			if err == nil {
				err = authorize(rt, p)
			}
		}
		if err == nil && guarded {
			err = s.refusePreview(r, p)
		}
		if err == nil {
			err = rt.handler(s, rec, r, p)
		}
		if err == nil {
			return
		}
		if rec.started {
			if r.Context().Err() == nil {
				s.log.Warn("api: error after response started", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			return
		}
		s.writeError(rec, r, err)
	})
}

// authenticate finds the principal of r and, for a member who may be
// narrowed to some projects, those projects. The dashboard's in-process
// reads of one page share its result (see auth.Shared).
func (s *Server) authenticate(r *http.Request) (*auth.Principal, error) {
	p, err := auth.Authenticate(r.Context(), s.store, r, s.now())
	if err != nil {
		return nil, err
	}
	return p, s.narrow(r.Context(), p)
}

// narrow reads the projects a member whose role may be narrowed sees. On
// error p is still the caller: the audit names who it was.
func (s *Server) narrow(ctx context.Context, p *auth.Principal) error {
	if !p.Role.Narrowable() {
		return nil
	}
	var err error
	p.Projects, err = s.store.MemberProjects(ctx, p.Team.ID, p.User.ID)
	return err
}

// authorize checks that principal p may use route rt: a member who must
// enrol in two-factor authentication reaches only the enrolment routes, and
// everyone else needs the route's permission (own-account routes, scope
// self, need none).
func authorize(rt route, p *auth.Principal) error {
	switch {
	case p.MustEnrol2FA && !enrolRoutes[rt.method+" "+rt.pattern]:
		return berth.E("authorize", berth.Forbidden, "team %s requires two-factor authentication: turn it on first (POST /api/v1/me/totp, then /api/v1/me/totp/confirm)", p.Team.Name)
	case rt.scope != self && !p.Can(rt.scope):
		return berth.E("authorize", berth.Forbidden, "permission %q needed: your role or token does not give it", rt.scope)
	}
	return nil
}

// statusOf maps an error kind to its HTTP status, once for the whole API.
func statusOf(k berth.Kind) int {
	switch k {
	case berth.Invalid:
		return http.StatusBadRequest
	case berth.NotFound:
		return http.StatusNotFound
	case berth.Conflict:
		return http.StatusConflict
	case berth.Unauthorized:
		return http.StatusUnauthorized
	case berth.Forbidden:
		return http.StatusForbidden
	case berth.Unavailable:
		return http.StatusServiceUnavailable
	case berth.TooMany:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

// ProblemTypePrefix starts the "type" of every problem document; the error
// kind follows it ("urn:berth:problem:not_found").
const ProblemTypePrefix = "urn:berth:problem:"

// Problem is an RFC 9457 problem document, the body of every API error.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// writeError writes err as problem+json. Only the client-safe message of
// err reaches the client; internal failures are logged in full.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	kind := berth.ErrorKind(err)
	status := statusOf(kind)
	if kind == berth.Internal || kind == berth.Unavailable {
		s.log.Error("api request", "method", r.Method, "path", r.URL.Path, "kind", string(kind), "err", err)
	}
	if kind == berth.Unauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="berth"`)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(Problem{
		Type:   ProblemTypePrefix + string(kind),
		Title:  http.StatusText(status),
		Status: status,
		Detail: berth.ErrorMessage(err),
	})
}

// writeJSON writes v as JSON with the given status, indented for people
// reading it, compact for the dashboard in this process (see recorder).
func writeJSON(w http.ResponseWriter, status int, v any) error {
	var b []byte
	var err error
	if rec, ok := w.(*recorder); ok && rec.compact {
		b, err = json.Marshal(v)
	} else {
		b, err = json.MarshalIndent(v, "", "  ")
	}
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, err = w.Write(append(b, '\n'))
	return err
}

// decodeJSON reads a JSON request body of at most MaxJSONBody bytes into v,
// rejecting unknown fields and trailing data.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	const op = "decode request"
	if ct := mediaType(r); ct != "application/json" && ct != "application/merge-patch+json" {
		return berth.E(op, berth.Invalid, "send the request body as application/json")
	}
	body := http.MaxBytesReader(w, r.Body, MaxJSONBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badJSON(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return berth.E(op, berth.Invalid, "request body: unexpected data after the JSON value")
	}
	return nil
}

// badJSON turns a JSON decoding error into a client-safe Invalid error.
func badJSON(err error) error {
	const op = "decode request"
	var maxErr *http.MaxBytesError
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &maxErr):
		return berth.E(op, berth.Invalid, "request body larger than %d bytes", maxErr.Limit)
	case errors.Is(err, io.EOF):
		return berth.E(op, berth.Invalid, "request body is empty")
	case errors.As(err, &syntaxErr):
		return berth.E(op, berth.Invalid, "request body is not valid JSON (at byte %d)", syntaxErr.Offset)
	case errors.As(err, &typeErr):
		return berth.E(op, berth.Invalid, "request body: field %q: expected %s", typeErr.Field, typeErr.Type)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return berth.E(op, berth.Invalid, "request body: %s", strings.TrimPrefix(err.Error(), "json: "))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return berth.E(op, berth.Invalid, "request body is truncated JSON")
	}
	var be *berth.Error
	if errors.As(err, &be) {
		return err
	}
	return berth.E(op, berth.Invalid, "request body is not acceptable JSON")
}

// mediaType returns the request's Content-Type without parameters, lowercased.
func mediaType(r *http.Request) string {
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	return strings.ToLower(strings.TrimSpace(ct))
}

// healthz answers "ok" when the store answers.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.writeError(w, r, berth.Wrap("ping store", berth.Unavailable, err))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = io.WriteString(w, "ok")
}

// openAPIDoc serves the OpenAPI 3.1 document of this API.
func (s *Server) openAPIDoc(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(openAPI)
	return err
}

// Me is who the caller is.
type Me struct {
	User   *berth.User   `json:"user"`
	Team   *berth.Team   `json:"team"`
	Role   berth.Role    `json:"role"`
	Scopes []berth.Scope `json:"scopes"`
	// CSRFToken is the session's CSRF token when the caller signed in with
	// a session cookie (the dashboard embeds it in its forms); absent for
	// an API token. Other sites cannot read it: the API allows no CORS.
	CSRFToken string `json:"csrf_token,omitempty"`
	// TOTPEnabled says whether the user has two-factor authentication on;
	// TeamRequires2FA whether the team requires it of its members, and
	// MustEnrol2FA that the user may do nothing but turn it on until they do.
	TOTPEnabled     bool `json:"totp_enabled"`
	TeamRequires2FA bool `json:"team_requires_2fa"`
	MustEnrol2FA    bool `json:"must_enrol_2fa,omitempty"`
}

func (s *Server) me(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	m := Me{User: p.User, Team: p.Team, Role: p.Role, Scopes: p.Scopes(),
		TOTPEnabled: p.TOTPEnabled, TeamRequires2FA: p.Require2FA, MustEnrol2FA: p.MustEnrol2FA}
	if p.Session != nil {
		m.CSRFToken = p.Session.CSRF
	}
	return writeJSON(w, http.StatusOK, m)
}
