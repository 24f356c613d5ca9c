package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/auth"
	"github.com/berthhq/berth/engine"
)

// DeployRequest is the JSON body of POST /api/v1/apps/{app}/deployments.
// Both fields are optional: the app's own ref or image is used.
type DeployRequest struct {
	Ref   string `json:"ref,omitempty"`
	Image string `json:"image,omitempty"`
}

// Limits on lists.
const (
	defaultLimit = 20
	maxLimit     = 1000
)

// limitParam reads the "limit" query parameter.
func limitParam(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return defaultLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxLimit {
		return 0, berth.E("read query", berth.Invalid, "limit must be a number from 1 to %d", maxLimit)
	}
	return n, nil
}

// number parses a per-app number such as "3" or "v3"; ok is false when s
// is not one.
func number(s string) (n int, ok bool) {
	n, err := strconv.Atoi(strings.TrimPrefix(s, "v"))
	return n, err == nil && n > 0 && !strings.HasPrefix(s, "+")
}

// loadDeployment finds deployment {id} of app a: an ID, or a number.
func (s *Server) loadDeployment(r *http.Request, p *auth.Principal, a *berth.App) (*berth.Deployment, error) {
	ctx := r.Context()
	id := r.PathValue("id")
	notFound := berth.E("find deployment", berth.NotFound, "app %s has no deployment %q", a.Name, clip(id))
	if n, ok := number(id); ok {
		latest, err := s.store.Deployments(ctx, p.Team.ID, a.ID, 1)
		if err != nil {
			return nil, fmt.Errorf("list deployments of %s: %w", a.Name, err)
		}
		if len(latest) == 0 || n > latest[0].Number {
			return nil, notFound
		}
		ds, err := s.store.Deployments(ctx, p.Team.ID, a.ID, latest[0].Number-n+1)
		if err != nil {
			return nil, fmt.Errorf("list deployments of %s: %w", a.Name, err)
		}
		for i := range ds {
			if ds[i].Number == n {
				return &ds[i], nil
			}
		}
		return nil, notFound
	}
	d, err := s.store.Deployment(ctx, p.Team.ID, id)
	if berth.IsKind(err, berth.NotFound) || err == nil && d.AppID != a.ID {
		return nil, notFound
	}
	if err != nil {
		return nil, fmt.Errorf("find deployment %s: %w", id, err)
	}
	return d, nil
}

// latestDeployments lists the newest deployment of each app the caller
// sees, or of the apps named by the query's "app" parameters (at most
// maxLimit; names the caller does not see are left out, like those of no
// app): the status column of an app list, in one call. Like the app list,
// it leaves out the apps that run previews (see the previews routes).
func (s *Server) latestDeployments(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	ctx := r.Context()
	f := berth.AppFilter{Visible: p.Projects}
	if names, ok := r.URL.Query()["app"]; ok {
		if len(names) > maxLimit {
			return berth.E("read query", berth.Invalid, "name at most %d apps", maxLimit)
		}
		f.Names = names
	}
	ds, err := s.store.LatestDeployments(ctx, p.Team.ID, f)
	if err != nil {
		return fmt.Errorf("list latest deployments: %w", err)
	}
	out := []berth.Deployment{}
	if ds != nil {
		out = ds
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) listDeployments(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	limit, err := limitParam(r)
	if err != nil {
		return err
	}
	ds, err := s.store.Deployments(r.Context(), p.Team.ID, a.ID, limit)
	if err != nil {
		return fmt.Errorf("list deployments of %s: %w", a.Name, err)
	}
	if ds == nil {
		ds = []berth.Deployment{}
	}
	return writeJSON(w, http.StatusOK, ds)
}

// isUpload reports whether a request body is a build context archive.
func isUpload(r *http.Request) bool {
	switch mediaType(r) {
	case "application/x-tar", "application/gzip", "application/x-gzip", "application/tar+gzip":
		return true
	}
	return false
}

func (s *Server) createDeployment(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	const op = "deploy"
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	req := engine.DeployRequest{CreatedBy: p.Name()}
	switch {
	case isUpload(r) && a.Source.Kind == berth.SourcePush:
		return berth.E(op, berth.Invalid, "app %s deploys what is pushed to its hosted git remote (git push), not uploads", a.Name)
	case isUpload(r):
		if a.Source.Kind != berth.SourceUpload {
			return berth.E(op, berth.Invalid, "app %s deploys from %s, not from uploads", a.Name, a.Source.Kind)
		}
		// An upload may take longer than the server's usual read timeout.
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Time{})
		_ = rc.SetWriteDeadline(time.Time{})
		req.Upload = http.MaxBytesReader(w, r.Body, s.maxUpload)
	case r.ContentLength == 0 && mediaType(r) == "":
	default:
		var body DeployRequest
		if err := decodeJSON(w, r, &body); err != nil {
			return err
		}
		if body.Ref != "" {
			// A preview runs its pull request's head. A deployment of
			// another ref would, while queued, also take the place of the
			// next push's (see engine.redeploy).
			if pv, parent, err := s.previewOf(r.Context(), a); err != nil {
				return err
			} else if pv != nil {
				return berth.E(op, berth.Conflict, "%s is the preview of pull request #%d of %s: it deploys the pull request's head, so deploy it without a ref", a.Name, pv.Number, parent)
			}
			if a.Source.Kind != berth.SourceGit && a.Source.Kind != berth.SourcePush {
				return berth.E(op, berth.Invalid, "ref: app %s does not deploy from git", a.Name)
			}
			if err := berth.ValidGitRef(body.Ref); err != nil {
				return berth.E(op, berth.Invalid, "%v", err)
			}
		}
		if body.Image != "" {
			if a.Source.Kind != berth.SourceImage {
				return berth.E(op, berth.Invalid, "image: app %s does not deploy prebuilt images", a.Name)
			}
			if err := berth.ValidImageRef(body.Image); err != nil {
				return berth.E(op, berth.Invalid, "%v", err)
			}
		}
		req.Ref, req.Image = body.Ref, body.Image
	}
	var d *berth.Deployment
	if a.Source.Kind == berth.SourcePush {
		d, err = s.redeployPush(r, p, a, req.Ref)
	} else {
		d, err = s.engine.Deploy(r.Context(), a, req)
	}
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return berth.E(op, berth.Invalid, "upload larger than %d bytes", maxErr.Limit)
		}
		return fmt.Errorf("deploy %s: %w", a.Name, err)
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/apps/%s/deployments/%s", a.Name, d.ID))
	return writeJSON(w, http.StatusAccepted, d)
}

// redeployPush deploys a push app again from its hosted repository: the
// newest commit pushed to its branch, or ref (a branch, tag or commit that
// was pushed).
func (s *Server) redeployPush(r *http.Request, p *auth.Principal, a *berth.App, ref string) (*berth.Deployment, error) {
	const op = "deploy"
	if s.repos == nil {
		return nil, berth.E(op, berth.Unavailable, "hosted git remotes are not set up on this server")
	}
	want := ref
	if want == "" {
		want = "refs/heads/" + a.Source.Ref
	}
	commit, err := s.repos.Resolve(r.Context(), a.ID, want)
	if berth.IsKind(err, berth.Invalid) && ref == "" {
		return nil, berth.E(op, berth.Conflict, "nothing has been pushed to %s of app %s yet: git push to its hosted remote first", a.Source.Ref, a.Name)
	}
	if err != nil {
		return nil, err
	}
	return s.deployCommit(r.Context(), a, p, commit, "", ref)
}

func (s *Server) getDeployment(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	d, err := s.loadDeployment(r, p, a)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}

func (s *Server) cancelDeployment(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	d, err := s.loadDeployment(r, p, a)
	if err != nil {
		return err
	}
	d, err = s.engine.Cancel(r.Context(), a, d.ID)
	if err != nil {
		return fmt.Errorf("cancel deployment %s: %w", r.PathValue("id"), err)
	}
	return writeJSON(w, http.StatusOK, d)
}

// wantsSSE reports whether the client asked for Server-Sent Events.
func wantsSSE(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// logPage is how many log lines are read from the store at once.
const logPage = 1000

// logSeq reads a log line number: the lines after it are wanted.
func logSeq(v, what string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, berth.E("read log", berth.Invalid, "%s must be a log line number", what)
	}
	return n, nil
}

// deploymentLog serves a deployment's log, from the line after the
// "after" query parameter (default: the first): as plain text, or as an
// event stream that follows the deployment until it is no longer active.
// The stream polls the store, so it follows deployments run by any
// process.
func (s *Server) deploymentLog(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	d, err := s.loadDeployment(r, p, a)
	if err != nil {
		return err
	}
	var after int64
	if v := r.URL.Query().Get("after"); v != "" {
		if after, err = logSeq(v, "after"); err != nil {
			return err
		}
	}
	if wantsSSE(r) {
		return s.followLog(w, r, p, d, after)
	}
	ctx := r.Context()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	for {
		lines, err := s.store.Logs(ctx, p.Team.ID, d.ID, after, logPage)
		if err != nil {
			return fmt.Errorf("read log of deployment %s: %w", d.ID, err)
		}
		for _, l := range lines {
			if _, err := io.WriteString(w, l.Text+"\n"); err != nil {
				return err
			}
			after = l.Seq
		}
		if len(lines) < logPage {
			return nil
		}
	}
}

// eventStream writes Server-Sent Events.
type eventStream struct {
	w  io.Writer
	rc *http.ResponseController
}

func startEvents(w http.ResponseWriter) *eventStream {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // streams outlive the server's write timeout
	w.WriteHeader(http.StatusOK)
	return &eventStream{w: w, rc: rc}
}

// send writes one event whose data is v as JSON; id is omitted when "".
func (e *eventStream) send(event, id string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", event, err)
	}
	var sb strings.Builder
	if id != "" {
		sb.WriteString("id: " + id + "\n")
	}
	sb.WriteString("event: " + event + "\ndata: ")
	sb.Write(b)
	sb.WriteString("\n\n")
	_, err = io.WriteString(e.w, sb.String())
	return err
}

func (e *eventStream) comment(text string) error {
	_, err := io.WriteString(e.w, ": "+text+"\n\n")
	return err
}

func (e *eventStream) flush() error { return e.rc.Flush() }

// followLog streams a deployment's log as events: "log" for each line (its
// seq as the event ID, so a client resumes with Last-Event-ID), "status"
// when the deployment's status changes, and "end" once it is no longer
// active, after every line it logged (see settleLines). It starts after
// line after, or after Last-Event-ID when the client resumes.
func (s *Server) followLog(w http.ResponseWriter, r *http.Request, p *auth.Principal, d *berth.Deployment, after int64) error {
	ctx := r.Context()
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		n, err := logSeq(v, "Last-Event-ID")
		if err != nil {
			return err
		}
		after = n
	}
	ev := startEvents(w)
	// sendLines sends the lines after `after`, all of them when drain is
	// set, else one page.
	sendLines := func(drain bool) error {
		for {
			lines, err := s.store.Logs(ctx, p.Team.ID, d.ID, after, logPage)
			if err != nil {
				return fmt.Errorf("read log of deployment %s: %w", d.ID, err)
			}
			for _, l := range lines {
				if err := ev.send("log", strconv.FormatInt(l.Seq, 10), l); err != nil {
					return err
				}
				after = l.Seq
			}
			if len(lines) < logPage || !drain {
				return nil
			}
		}
	}
	poll := time.NewTicker(s.poll)
	defer poll.Stop()
	ping := time.NewTicker(s.ping)
	defer ping.Stop()
	var last berth.Status
	for {
		// The status is read before the lines: every line logged before
		// the deployment ended is then sent before "end".
		cur, err := s.store.Deployment(ctx, p.Team.ID, d.ID)
		if err != nil {
			return fmt.Errorf("read deployment %s: %w", d.ID, err)
		}
		done := !cur.Status.Active()
		if err := sendLines(done); err != nil {
			return err
		}
		if cur.Status != last {
			if err := ev.send("status", "", cur); err != nil {
				return err
			}
			last = cur.Status
		}
		if done {
			if err := s.settleLines(ctx, ev, cur, sendLines); err != nil {
				return err
			}
			if err := ev.send("end", "", cur); err != nil {
				return err
			}
			return ev.flush()
		}
		if err := ev.flush(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ping.C:
			if err := ev.comment("ping"); err != nil {
				return err
			}
		case <-poll.C:
		}
	}
}

// settleLines keeps sending the lines of a deployment that just ended until
// s.settle has passed since it finished: a writer that batches its lines
// may store the last ones shortly after the final status. For a deployment
// that ended earlier than that, it returns at once.
func (s *Server) settleLines(ctx context.Context, ev *eventStream, d *berth.Deployment, sendLines func(bool) error) error {
	until := s.now().Add(s.settle)
	if d.FinishedAt != nil && d.FinishedAt.Add(s.settle).Before(until) {
		until = d.FinishedAt.Add(s.settle)
	}
	for s.now().Before(until) {
		if err := ev.flush(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(s.poll, until.Sub(s.now()))):
		}
		if err := sendLines(true); err != nil {
			return err
		}
	}
	return nil
}
