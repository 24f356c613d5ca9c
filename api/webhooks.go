package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/auth"
	"github.com/berthhq/berth/engine"
	"github.com/berthhq/berth/git"
	"github.com/berthhq/berth/store"
)

// Previews acts on pull (merge) request events: preview environments.
// api owns the interface; the server wires the engine's implementation.
// The result's outcome and reason are the delivery's record; an error
// records the delivery as failed.
type Previews interface {
	PullRequest(ctx context.Context, app *berth.App, pr berth.PullRequest) (engine.PreviewResult, error)
}

// WebhookLimits bound the webhook endpoint. Zero fields take the defaults.
type WebhookLimits struct {
	// MaxBody is the largest request body; default DefaultMaxWebhookBody.
	MaxBody int64
	// PerApp and PerAddr are the requests accepted per app and per client
	// address in each Window; defaults DefaultWebhookRate,
	// DefaultWebhookAddrRate and a minute.
	PerApp, PerAddr int
	Window          time.Duration
}

// The default rate limits of the webhook endpoint, requests a minute: a
// burst of pushes to one app stays far below DefaultWebhookRate, and
// DefaultWebhookAddrRate leaves room for the few addresses GitHub
// delivers every repository's hooks from.
const (
	DefaultWebhookRate     = 60
	DefaultWebhookAddrRate = 600
)

// DefaultMaxWebhookBody is the largest webhook body berth reads: 5 MiB.
// GitHub drops payloads over 25 MB, but a push payload lists at most a few
// thousand commits and files (GitLab 20 commits, Bitbucket 5 and no
// files): real ones stay far below 1 MiB, and 5 MiB leaves room for a
// monorepo's large push while keeping what an unauthenticated request can
// make the server read small — the body is read whole before its
// signature can be checked.
const DefaultMaxWebhookBody = 5 << 20

func (l *WebhookLimits) setDefaults() {
	if l.MaxBody <= 0 {
		l.MaxBody = DefaultMaxWebhookBody
	}
	if l.PerApp <= 0 {
		l.PerApp = DefaultWebhookRate
	}
	if l.PerAddr <= 0 {
		l.PerAddr = DefaultWebhookAddrRate
	}
	if l.Window <= 0 {
		l.Window = time.Minute
	}
}

// webhookRoutes are the routes of push to deploy.
func webhookRoutes() []route {
	const v = "/api/v1"
	const app = v + "/apps/{app}"
	return []route{
		// The signature is the authentication: see receiveHook.
		{"POST", v + "/hooks/{hook}", public, (*Server).receiveHook, "webhook.receive"},
		{"GET", app + "/webhook", berth.ScopeRead, (*Server).getWebhook, ""},
		{"PUT", app + "/webhook", berth.ScopeWrite, (*Server).setWebhook, "webhook.update"},
		{"POST", app + "/webhook/secret", berth.ScopeWrite, (*Server).newWebhookSecret, "webhook.secret"},
		{"GET", app + "/webhooks/deliveries", berth.ScopeRead, (*Server).listDeliveries, ""},
	}
}

// WebhookSettings is an app's webhook: where the provider posts, the
// branch filter and watch paths. The secret is never in it.
type WebhookSettings struct {
	berth.Webhook
	// URL is where the provider posts: the server's public URL and Path,
	// or Path alone when the server was not told its public URL.
	URL  string `json:"url"`
	Path string `json:"path"`
	// EffectiveBranches is the filter in force: Branches, or the branch of
	// the app's source ref when Branches is empty.
	EffectiveBranches []string `json:"effective_branches"`
}

// WebhookUpdate is the body of PUT /api/v1/apps/{app}/webhook. Branches and
// Paths replace the app's (absent or empty: the defaults). Secret is
// write-only: absent keeps the secret, "" removes it (the app then accepts
// no webhook), any other value (16 to 256 printable ASCII characters)
// becomes the secret.
type WebhookUpdate struct {
	Branches []string `json:"branches"`
	Paths    []string `json:"paths"`
	Secret   *string  `json:"secret,omitempty"`
}

// WebhookSecret is the answer of POST /api/v1/apps/{app}/webhook/secret: a
// new secret, shown this once, to paste in the provider's webhook
// settings with the URL.
type WebhookSecret struct {
	Secret string `json:"secret"`
	URL    string `json:"url"`
	Path   string `json:"path"`
}

// HookResult is berth's answer to a provider's delivery.
type HookResult struct {
	Outcome berth.DeliveryOutcome `json:"outcome,omitempty"`
	Reason  string                `json:"reason"`
	// Delivery is berth's ID of the delivery record.
	Delivery         string `json:"delivery,omitempty"`
	Deployment       string `json:"deployment,omitempty"`
	DeploymentNumber int    `json:"deployment_number,omitempty"`
	// Duplicate is true for a delivery received before: nothing was done.
	Duplicate bool `json:"duplicate,omitempty"`
}

// hookPath is the path of an app's webhook URL: its ID, which is random
// and does not change when the app is renamed.
func hookPath(appID string) string { return "/api/v1/hooks/" + appID }

func (s *Server) webhookSettings(a *berth.App, w *berth.Webhook) WebhookSettings {
	out := WebhookSettings{Webhook: *w, Path: hookPath(a.ID), EffectiveBranches: effectiveBranches(a, w)}
	out.URL = s.publicURL + out.Path
	if out.Branches == nil {
		out.Branches = []string{}
	}
	if out.Paths == nil {
		out.Paths = []string{}
	}
	return out
}

// effectiveBranches is the branch filter in force for app a.
func effectiveBranches(a *berth.App, w *berth.Webhook) []string {
	if len(w.Branches) > 0 {
		return w.Branches
	}
	if a.Source.Kind == berth.SourceGit && a.Source.Ref != "" {
		return []string{strings.TrimPrefix(a.Source.Ref, "refs/heads/")}
	}
	return []string{}
}

func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	hook, err := s.store.Webhook(r.Context(), p.Team.ID, a.ID)
	if err != nil {
		return fmt.Errorf("get webhook of %s: %w", a.Name, err)
	}
	return writeJSON(w, http.StatusOK, s.webhookSettings(a, hook))
}

func (s *Server) setWebhook(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	var in WebhookUpdate
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	hook := &berth.Webhook{AppID: a.ID, Branches: in.Branches, Paths: in.Paths}
	if err := s.store.SetWebhook(r.Context(), p.Team.ID, hook, in.Secret); err != nil {
		return fmt.Errorf("set webhook of %s: %w", a.Name, err)
	}
	return writeJSON(w, http.StatusOK, s.webhookSettings(a, hook))
}

// newWebhookSecret generates a secret (32 random bytes, hex), stores it
// sealed and shows it this once.
func (s *Server) newWebhookSecret(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	if r.ContentLength != 0 || mediaType(r) != "" {
		var empty struct{}
		if err := decodeJSON(w, r, &empty); err != nil {
			return err
		}
	}
	var b [32]byte
	rand.Read(b[:])
	secret := hex.EncodeToString(b[:])
	if err := s.store.SetWebhookSecret(r.Context(), p.Team.ID, a.ID, secret); err != nil {
		return fmt.Errorf("set webhook secret of %s: %w", a.Name, err)
	}
	return writeJSON(w, http.StatusCreated, WebhookSecret{Secret: secret, URL: s.publicURL + hookPath(a.ID), Path: hookPath(a.ID)})
}

func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	limit, err := limitParam(r)
	if err != nil {
		return err
	}
	ds, err := s.store.WebhookDeliveries(r.Context(), p.Team.ID, a.ID, limit)
	if err != nil {
		return fmt.Errorf("list deliveries of %s: %w", a.Name, err)
	}
	return writeJSON(w, http.StatusOK, ds)
}

// receiveHook takes a provider's delivery to an app's webhook URL. The
// request carries no credentials: the app is found by its ID, and the
// body's signature with the app's secret is the authentication. In order:
// rate limits (per client address, then per app), the body's size, the
// provider, the signature, the delivery ID, the payload. Every request
// that names an app is recorded as a delivery of it — a refused one as
// rejected, with the reason — except those refused by a rate limit, which
// would otherwise let a flood write. Nothing else is written for a
// refused request.
func (s *Server) receiveHook(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	const op = "receive webhook"
	ctx := r.Context()
	now := s.now()
	addr := s.addrs.Client(r)
	limited := func(wait time.Duration, err error) error {
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		return err
	}
	if wait, err := s.hookLimiter.allow("addr "+addr.String(), s.hookLimits.PerAddr, now); err != nil {
		return limited(wait, err)
	}
	notFound := berth.E(op, berth.NotFound, "no webhook at this address")
	id := r.PathValue("hook")
	if !berth.ValidID("app", id) {
		return notFound
	}
	app, hook, secret, err := s.store.HookTarget(ctx, id)
	if berth.IsKind(err, berth.NotFound) {
		return notFound
	}
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	actor := &berth.User{Name: "webhook"}
	if rec, ok := w.(*recorder); ok {
		rec.audit.team, rec.audit.user = &berth.Team{ID: app.TeamID}, actor
	}
	if wait, err := s.hookLimiter.allow("app "+app.ID, s.hookLimits.PerApp, now); err != nil {
		return limited(wait, err)
	}

	dl := &berth.WebhookDelivery{TeamID: app.TeamID, AppID: app.ID, ReceivedAt: now}
	provider, detectErr := git.Detect(r.Header)
	if detectErr == nil {
		dl.Provider, dl.Event, dl.DeliveryID = provider, git.EventName(provider, r.Header), git.DeliveryID(provider, r.Header)
		actor.Name = "webhook (" + string(provider) + ")"
	}
	reject := func(err error) error {
		dl.Outcome, dl.Reason = berth.DeliveryRejected, berth.ErrorMessage(err)
		s.record(ctx, dl)
		return err
	}

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.hookLimits.MaxBody))
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			msg := fmt.Sprintf("the request body is larger than %d bytes (%d KiB), berth's limit for webhooks (--max-webhook-kb)", maxErr.Limit, maxErr.Limit>>10)
			dl.Outcome, dl.Reason = berth.DeliveryRejected, msg
			s.record(ctx, dl)
			s.writeProblem(w, http.StatusRequestEntityTooLarge, "too_large", msg)
			return nil
		}
		return reject(berth.E(op, berth.Invalid, "the request body could not be read"))
	}
	if detectErr != nil {
		return reject(detectErr)
	}
	if secret == "" {
		return reject(berth.E(op, berth.Unauthorized, "this app has no webhook secret: it accepts no webhook until one is set (berth webhooks secret APP)"))
	}
	if err := git.Verify(provider, r.Header, body, secret); err != nil {
		return reject(err)
	}
	if dl.DeliveryID == "" {
		return reject(berth.E(op, berth.Invalid, "the request has no %s header", git.DeliveryHeader(provider)))
	}
	if mediaType(r) == "application/x-www-form-urlencoded" {
		return reject(berth.E(op, berth.Invalid, "the payload is form-encoded: set the webhook's content type to application/json"))
	}
	ev, err := git.Parse(provider, r.Header, body)
	if err != nil {
		return reject(err)
	}
	if err := checkRepository(app, ev.Repository); err != nil {
		return reject(err)
	}
	switch {
	case ev.Ignored != "":
		dl.Outcome, dl.Reason = berth.DeliveryIgnored, ev.Ignored
		return s.finish(ctx, w, dl)
	case ev.PullRequest != nil:
		return s.hookPullRequest(w, r, app, dl, *ev.PullRequest)
	}
	return s.hookPush(w, r, app, hook, dl, ev.Pushes)
}

// checkRepository refuses a delivery about another repository than the
// one the app deploys from: defence in depth behind the signature, for a
// secret shared between repositories or a webhook set on the wrong one. A
// payload that names no repository, and an app that does not deploy from a
// remote git URL, pass as they are.
func checkRepository(app *berth.App, repo git.Repository) error {
	if app.Source.Kind != berth.SourceGit {
		return nil
	}
	if match, known := repo.Matches(app.Source.Git); match || !known {
		return nil
	}
	host, path, _ := git.RepoPath(app.Source.Git) // known: it reduces
	return berth.E("receive webhook", berth.Forbidden,
		"delivery for %s, app %s deploys %s/%s: set this webhook on the app's repository, or change the app's git URL if the repository moved",
		clipText(repo.Name()), app.Name, host, path)
}

// record writes a delivery that needs nothing else, whatever became of
// the request; a failure is logged.
func (s *Server) record(ctx context.Context, dl *berth.WebhookDelivery) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := s.store.RecordDelivery(ctx, dl, nil); err != nil && !errors.Is(err, store.ErrAlreadyReceived) {
		s.log.Error("record webhook delivery", "app", dl.AppID, "outcome", string(dl.Outcome), "err", err)
	}
}

// finish records an accepted delivery that starts nothing and answers it:
// 200, or 200 "already received" for a delivery ID seen before.
func (s *Server) finish(ctx context.Context, w http.ResponseWriter, dl *berth.WebhookDelivery) error {
	_, err := s.store.RecordDelivery(context.WithoutCancel(ctx), dl, nil)
	if errors.Is(err, store.ErrAlreadyReceived) {
		return writeJSON(w, http.StatusOK, HookResult{Duplicate: true, Reason: "already received: delivery " + dl.DeliveryID + " was handled before"})
	}
	if err != nil {
		return fmt.Errorf("record webhook delivery: %w", err)
	}
	return writeJSON(w, http.StatusOK, HookResult{Outcome: dl.Outcome, Reason: dl.Reason, Delivery: dl.ID})
}

// hookPush decides what a push does: the first push to a branch the
// filter accepts, that changed a watched path (or whose changed paths the
// payload does not list in full), deploys its commit — or, when it may be
// older than a push received before, its branch's head (see
// berth.PushTarget).
func (s *Server) hookPush(w http.ResponseWriter, r *http.Request, app *berth.App, hook *berth.Webhook, dl *berth.WebhookDelivery, pushes []git.Push) error {
	ctx := r.Context()
	if app.Source.Kind != berth.SourceGit {
		dl.Outcome = berth.DeliveryIgnored
		dl.Reason = fmt.Sprintf("app %s deploys from %s: only apps with a git source deploy from pushes", app.Name, app.Source.Kind)
		return s.finish(ctx, w, dl)
	}
	branches := effectiveBranches(app, hook)
	var skipped []string
	for _, p := range pushes {
		dl.Ref, dl.Commit, dl.Before = p.Ref, p.After, p.Before
		switch {
		case p.Deleted:
			skipped = append(skipped, "branch "+p.Branch+" was deleted")
			continue
		case !berth.MatchBranch(branches, p.Branch):
			skipped = append(skipped, fmt.Sprintf("branch %s does not match the branch filter (%s)", p.Branch, strings.Join(branches, ", ")))
			continue
		}
		reason := fmt.Sprintf("push to %s by %s", p.Branch, clipText(p.Pusher))
		if len(hook.Paths) > 0 {
			if !p.PathsKnown {
				reason += "; the payload does not list every changed file, so the watch paths were not checked"
			} else if f, ok := berth.MatchPaths(hook.Paths, p.ChangedPaths); ok {
				reason += "; changed " + clipText(f)
			} else {
				skipped = append(skipped, fmt.Sprintf("push to %s changed no file under the watch paths (%s)", p.Branch, strings.Join(hook.Paths, ", ")))
				continue
			}
		}
		dl.Reason = reason
		createdBy := clipText(string(dl.Provider) + " push by " + p.Pusher)
		d, err := s.engine.DeployCommit(ctx, app, p.After, createdBy, dl)
		if errors.Is(err, store.ErrAlreadyReceived) {
			return writeJSON(w, http.StatusOK, HookResult{Duplicate: true, Reason: "already received: delivery " + dl.DeliveryID + " was handled before"})
		}
		if err != nil {
			return fmt.Errorf("deploy %s from a webhook: %w", app.Name, err)
		}
		return writeJSON(w, http.StatusAccepted, HookResult{Outcome: dl.Outcome, Reason: dl.Reason, Delivery: dl.ID,
			Deployment: d.ID, DeploymentNumber: d.Number})
	}
	dl.Outcome, dl.Reason = berth.DeliveryIgnored, strings.Join(skipped, "; ")
	if len(pushes) != 1 {
		dl.Ref, dl.Commit, dl.Before = "", "", ""
	}
	return s.finish(ctx, w, dl)
}

// hookPullRequest hands a pull request to the previews. A redelivery is
// answered before the previews see it; two identical deliveries arriving
// together may both reach them, which they take as one (an opened
// preview that exists is updated).
func (s *Server) hookPullRequest(w http.ResponseWriter, r *http.Request, app *berth.App, dl *berth.WebhookDelivery, pr berth.PullRequest) error {
	ctx := r.Context()
	dl.Ref, dl.Commit = "pull/"+strconv.Itoa(pr.Number), pr.HeadSHA
	what := fmt.Sprintf("pull request #%d %s", pr.Number, pr.Action)
	switch {
	case s.previews == nil:
		dl.Outcome, dl.Reason = berth.DeliveryIgnored, what+": previews are not enabled"
		return s.finish(ctx, w, dl)
	case app.Source.Kind != berth.SourceGit:
		dl.Outcome, dl.Reason = berth.DeliveryIgnored, fmt.Sprintf("%s: app %s deploys from %s, previews need a git source", what, app.Name, app.Source.Kind)
		return s.finish(ctx, w, dl)
	}
	seen, err := s.store.DeliverySeen(ctx, app.TeamID, app.ID, dl.Provider, dl.DeliveryID)
	if err != nil {
		return fmt.Errorf("find delivery: %w", err)
	}
	if seen {
		return writeJSON(w, http.StatusOK, HookResult{Duplicate: true, Reason: "already received: delivery " + dl.DeliveryID + " was handled before"})
	}
	// Providers give up on a delivery after about ten seconds: so does the
	// lookup of an abbreviated head.
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = git.ResolveHead(rctx, s.lsRemote, s.headAuth(rctx, app, pr), &pr)
	cancel()
	if err != nil {
		dl.Outcome, dl.Reason = berth.DeliveryFailed, what+": "+berth.ErrorMessage(err)
		return s.finish(ctx, w, dl)
	}
	dl.Commit = pr.HeadSHA
	res, err := s.previews.PullRequest(ctx, app, pr)
	switch {
	case err != nil:
		dl.Outcome, dl.Reason = berth.DeliveryFailed, what+": "+berth.ErrorMessage(err)
		s.log.Warn("webhook pull request", "app", app.ID, "pr", pr.Number, "err", err)
	default:
		dl.Outcome, dl.Reason = res.Outcome, res.Reason
	}
	if dl.Reason == "" {
		dl.Reason = what
	}
	return s.finish(ctx, w, dl)
}

// headAuth is what the lookup of a pull request's head presents: the
// app's own credentials when the head is in the app's repository, none for
// a fork's, which is another repository (its owner's to read, not berth's
// to send the app's token to).
func (s *Server) headAuth(ctx context.Context, app *berth.App, pr berth.PullRequest) berth.GitAuth {
	if pr.Fork || s.lsRemote == nil || commitID(pr.HeadSHA) {
		return berth.GitAuth{}
	}
	auth, err := s.engine.SourceAuth(ctx, app.TeamID, app.ID)
	if err != nil {
		s.log.Warn("webhook: credentials of the app's repository", "app", app.ID, "err", err)
		return berth.GitAuth{}
	}
	return auth
}

// commitID reports whether s is a full commit ID.
func commitID(s string) bool {
	return (len(s) == 40 || len(s) == 64) && strings.Trim(s, "0123456789abcdef") == ""
}

// writeProblem writes a problem document whose status no error kind has
// (413).
func (s *Server) writeProblem(w http.ResponseWriter, status int, typ, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(Problem{Type: ProblemTypePrefix + typ, Title: http.StatusText(status), Status: status, Detail: detail})
}

// clipText shortens a value from a payload for a reason or a name, and
// replaces its control characters.
func clipText(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	if len(s) > 100 {
		return strings.ToValidUTF8(s[:97], "") + "..."
	}
	return s
}
