package api

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/auth"
	"github.com/berthhq/berth/git"
)

// Hosted git remotes: git's smart HTTP protocol under /git/, so that
//
//	git remote add berth https://berth.example.com/git/web.git
//	git push berth main
//
// deploys app web (an app whose source kind is push). git authenticates
// with HTTP Basic: any user name, an API token as the password, so that
// git's credential helpers keep it. These routes are not JSON API routes:
// they answer git's media types, and their errors are text/plain, which
// git shows to the user as "remote: …" lines. They have a route table of
// their own (gitRoutes), with a declared permission and audit action per
// route like the API's, checked by the same kind of tests.

// Defaults of the hosted remotes.
const (
	DefaultMaxPushBody     = 512 << 20 // bytes of one push (the pack)
	DefaultGitRequestsRate = 120       // requests per minute per address and per token
)

// gitRoutes are the routes of the hosted remotes. {app} is the app's name
// with or without ".git". Reading a repository (clone, fetch) needs the
// read permission; pushing needs deploy, the permission of deploying; the
// ref advertisement of a push (GET info/refs?service=git-receive-pack)
// checks deploy too, so that git stops before it sends anything.
func gitRoutes() []route {
	const repo = "/git/{app}"
	return []route{
		{"GET", repo + "/info/refs", berth.ScopeRead, (*Server).gitInfoRefs, ""},
		{"POST", repo + "/git-upload-pack", berth.ScopeRead, (*Server).gitUploadPack, ""},
		{"POST", repo + "/git-receive-pack", berth.ScopeDeploy, (*Server).gitReceivePack, "app.push"},
	}
}

// adaptGit turns a git route into an http.Handler, like adapt for the API:
// rate limits per client address and per token, HTTP Basic authentication
// with an API token (never a session cookie), the route's permission, a
// member's narrowing to their projects, errors as text/plain, and the
// audit event of a push.
func (s *Server) adaptGit(rt route) http.Handler {
	audited := rt.action != "" // a push; not a clone or fetch, though git sends them as POST
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w}
		w.Header().Set("Cache-Control", "no-cache, max-age=0, must-revalidate")
		var p *auth.Principal
		var err error
		rec.audit.target = "app=" + clip(strings.TrimSuffix(r.PathValue("app"), ".git"))
		switch {
		case audited:
			defer func() {
				if !rec.audit.skip {
					s.audit(rt, rec, r, p, err)
				}
			}()
		case r.URL.Query().Get("service") == string(git.ReceivePack):
			// The start of a push: audited when it stops the push.
			push := rt
			push.action = "app.push"
			defer func() {
				if err != nil {
					s.audit(push, rec, r, p, err)
				}
			}()
		}
		addr := s.addrs.Client(r)
		err = s.gitAllow("addr " + addr.String())
		if err == nil {
			p, err = s.gitAuthenticate(r)
		}
		if err == nil {
			err = s.gitAllow("token " + p.Token.ID)
		}
		if err == nil {
			err = authorize(rt, p)
		}
		if err == nil {
			err = s.narrow(r.Context(), p)
		}
		if err == nil {
			err = rt.handler(s, rec, r, p)
		}
		if err == nil {
			return
		}
		if rec.started {
			if r.Context().Err() == nil {
				s.log.Warn("git: error after response started", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			return
		}
		s.writeGitError(rec, r, err)
	})
}

// gitAuthenticate finds the principal of a git request: an API token as
// the password of HTTP Basic authentication (any user name), or as the
// user name with an empty password, or a bearer token. Sessions are not
// accepted: a browser must not push on its user's behalf.
func (s *Server) gitAuthenticate(r *http.Request) (*auth.Principal, error) {
	secret := ""
	if user, pass, ok := r.BasicAuth(); ok {
		secret = pass
		if secret == "" {
			secret = user
		}
	} else if scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		secret = strings.TrimSpace(tok)
	}
	if secret == "" {
		return nil, berth.E("authenticate", berth.Unauthorized, "authentication required: give an API token of berth as the password (any user name)")
	}
	return auth.AuthenticateToken(r.Context(), s.store, secret, s.now())
}

// writeGitError writes err for git: a status and a text/plain body, which
// git prints as "remote: …" lines before its own message.
func (s *Server) writeGitError(w http.ResponseWriter, r *http.Request, err error) {
	kind := berth.ErrorKind(err)
	status := statusOf(kind)
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		status = http.StatusRequestEntityTooLarge
	}
	if kind == berth.Internal || kind == berth.Unavailable {
		s.log.Error("git request", "method", r.Method, "path", r.URL.Path, "kind", string(kind), "err", err)
	}
	switch status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Basic realm="berth", charset="UTF-8"`)
	case http.StatusTooManyRequests:
		var ra *retryAfter
		if errors.As(err, &ra) {
			w.Header().Set("Retry-After", strconv.Itoa(ra.seconds))
		}
	}
	msg := berth.ErrorMessage(err)
	if status == http.StatusRequestEntityTooLarge {
		msg = fmt.Sprintf("the push is larger than this server's limit of %d bytes", maxErr.Limit)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, "berth: "+strings.ReplaceAll(msg, "\n", "\nberth: ")+"\n")
}

// loadRepoApp finds the app of a git request, as loadApp does for the API
// (another team's app is a missing app), and checks that it deploys from
// pushes.
func (s *Server) loadRepoApp(r *http.Request, p *auth.Principal) (*berth.App, error) {
	if s.repos == nil {
		return nil, berth.E("find repository", berth.Unavailable, "hosted git remotes are not set up on this server")
	}
	a, err := s.findApp(r.Context(), p, strings.TrimSuffix(r.PathValue("app"), ".git"))
	if err != nil {
		return nil, err
	}
	if a.Source.Kind != berth.SourcePush {
		return nil, berth.E("find repository", berth.Conflict,
			"app %s deploys from %s, not from git push: to deploy it by pushing, change its source (berth apps set %s --push)", a.Name, sourceName(a.Source), a.Name)
	}
	return a, nil
}

// sourceName says where an app's code comes from, for a message.
func sourceName(src berth.Source) string {
	switch src.Kind {
	case berth.SourceGit:
		return "the git repository " + redactURL(src.Git)
	case berth.SourceImage:
		return "the image " + src.Image
	case berth.SourceUpload:
		return "uploads"
	}
	return string(src.Kind)
}

// redactURL hides a URL's credentials.
func redactURL(s string) string { return git.Redact(s) }

// gitInfoRefs serves the ref advertisement that starts every exchange.
func (s *Server) gitInfoRefs(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	const op = "git"
	svc := git.Service(r.URL.Query().Get("service"))
	switch svc {
	case git.UploadPack:
	case git.ReceivePack:
		if !p.Can(berth.ScopeDeploy) {
			return berth.E("authorize", berth.Forbidden, "permission %q needed to push: your role or token does not give it", berth.ScopeDeploy)
		}
	default:
		return berth.E(op, berth.Invalid, "berth serves git's smart HTTP protocol only (service=git-upload-pack or git-receive-pack): use git 1.6.6 or later")
	}
	a, err := s.loadRepoApp(r, p)
	if err != nil {
		return err
	}
	if svc == git.ReceivePack {
		if who, busy := s.pushes.holder(a.ID); busy {
			return pushBusy(a, who)
		}
	}
	if _, err := s.repos.Init(r.Context(), a.ID, a.Source.Ref); err != nil {
		return fmt.Errorf("repository of %s: %w", a.Name, err)
	}
	w.Header().Set("Content-Type", "application/x-"+string(svc)+"-advertisement")
	return s.repos.Serve(r.Context(), git.ServiceRequest{
		Service: svc, AppID: a.ID, Advertise: true, Protocol: r.Header.Get("Git-Protocol"),
		Stdout: &flushWriter{w: w, rc: http.NewResponseController(w)},
	})
}

// gitUploadPack serves a clone or a fetch.
func (s *Server) gitUploadPack(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	a, err := s.loadRepoApp(r, p)
	if err != nil {
		return err
	}
	body, err := s.gitBody(w, r, git.UploadPack, MaxJSONBody*16)
	if err != nil {
		return err
	}
	defer body.Close()
	if _, err := s.repos.Init(r.Context(), a.ID, a.Source.Ref); err != nil {
		return fmt.Errorf("repository of %s: %w", a.Name, err)
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{}) // a large clone outlives the server's timeouts
	w.Header().Set("Content-Type", "application/x-git-upload-pack-result")
	return body.check(s.repos.Serve(r.Context(), git.ServiceRequest{
		Service: git.UploadPack, AppID: a.ID, Protocol: r.Header.Get("Git-Protocol"),
		Stdin: body, Stdout: &flushWriter{w: w, rc: rc},
	}))
}

// gitBody checks the media type of a service request and returns its
// body, unzipped when git compressed it, limited to limit bytes as sent.
func (s *Server) gitBody(w http.ResponseWriter, r *http.Request, svc git.Service, limit int64) (*requestBody, error) {
	const op = "git"
	if want := "application/x-" + string(svc) + "-request"; mediaType(r) != want {
		return nil, berth.E(op, berth.Invalid, "send the request body as %s", want)
	}
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	b := &requestBody{raw: http.MaxBytesReader(w, r.Body, limit)}
	b.r = &b.counting
	b.counting.r = b.raw
	switch strings.ToLower(r.Header.Get("Content-Encoding")) {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(&b.counting)
		var maxErr *http.MaxBytesError
		if errors.As(b.counting.err, &maxErr) {
			return nil, maxErr
		}
		if err != nil {
			return nil, berth.E(op, berth.Invalid, "the request body is not valid gzip")
		}
		b.r = zr
	default:
		return nil, berth.E(op, berth.Invalid, "unsupported Content-Encoding %q", clip(r.Header.Get("Content-Encoding")))
	}
	return b, nil
}

// requestBody is the body of a service request; it remembers why reading
// it failed, which git reports only as an early end.
type requestBody struct {
	raw      io.ReadCloser
	counting errReader
	r        io.Reader
}

func (b *requestBody) Read(p []byte) (int, error) { return b.r.Read(p) }
func (b *requestBody) Close() error               { return b.raw.Close() }

// check prefers the body's own failure (too large, cut off) over git's
// report of it.
func (b *requestBody) check(err error) error {
	if err == nil {
		return nil
	}
	var maxErr *http.MaxBytesError
	if errors.As(b.counting.err, &maxErr) {
		return maxErr
	}
	if b.counting.err != nil && !errors.Is(b.counting.err, io.EOF) {
		return berth.E("git", berth.Invalid, "the request body ended early: %v", b.counting.err)
	}
	return err
}

// errReader remembers the first error of r.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && e.err == nil {
		e.err = err
	}
	return n, err
}

// flushWriter sends git's output to the client as it comes.
type flushWriter struct {
	mu sync.Mutex
	w  io.Writer
	rc *http.ResponseController
}

func (f *flushWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.w.Write(p)
	if err == nil {
		err = f.rc.Flush()
	}
	return n, err
}

// gitAllow counts one request of key to the hosted git remotes and refuses
// it past the rate limit, saying when to come back.
func (s *Server) gitAllow(key string) error {
	wait, err := s.gitLimiter.allow(key, s.gitRate, s.now())
	if err != nil {
		return &retryAfter{err: err, seconds: max(int((wait+time.Second-1)/time.Second), 1)}
	}
	return nil
}

// retryAfter is a TooMany error that says when to come back.
type retryAfter struct {
	err     error
	seconds int
}

func (e *retryAfter) Error() string { return e.err.Error() }
func (e *retryAfter) Unwrap() error { return e.err }

// pushLocks lets one push per app run at a time.
type pushLocks struct {
	mu   sync.Mutex
	busy map[string]string // app ID → who pushes
}

// lock takes app's lock for who, or reports who holds it.
func (l *pushLocks) lock(appID, who string) (holder string, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h, busy := l.busy[appID]; busy {
		return h, false
	}
	if l.busy == nil {
		l.busy = map[string]string{}
	}
	l.busy[appID] = who
	return "", true
}

func (l *pushLocks) unlock(appID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.busy, appID)
}

func (l *pushLocks) holder(appID string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h, ok := l.busy[appID]
	return h, ok
}

func pushBusy(a *berth.App, who string) error {
	return berth.E("push", berth.Conflict, "%s is pushing to %s right now: one push per app at a time; try again when it has ended", who, a.Name)
}
