package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/auth"
	"github.com/berthhq/berth/engine"
	"github.com/berthhq/berth/git"
)

// A push, from git push to the verdict:
//
//	POST /git/web.git/git-receive-pack
//	  gitReceivePack    one push per app; a hook session (socket + token)
//	  git receive-pack  receives the pack into quarantine, runs pre-receive
//	  pre-receive       the berth binary (git.RunHook): hands the ref
//	                    updates to judgePush over the session's socket
//	  judgePush         checks the refs; for the app's branch archives the
//	                    pushed commit from quarantine into engine.Deploy and
//	                    sends the deployment's log to the hook as it grows
//	  verdict           ok only when the deployment went live: the hook
//	                    exits 0 and receive-pack moves the branch; otherwise
//	                    it exits 1, git push fails and nothing moves
//
// If git push is interrupted (the request ends, the hook dies), the
// deployment is cancelled; receive-pack gets SIGTERM and removes its
// quarantine, and any quarantine a killed one left is removed before the
// app's next push.

// pushOutcome is how the hook of a push ended, for the audit event.
type pushOutcome struct {
	ran        bool // the hook called
	ok         bool // the push was accepted
	target     string
	detail     string
	deployment *berth.Deployment
}

// gitReceivePack serves a push.
func (s *Server) gitReceivePack(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	ctx := r.Context()
	a, err := s.loadRepoApp(r, p)
	if err != nil {
		return err
	}
	rw := w.(*recorder)
	rw.audit.target = "app=" + a.Name
	body, err := s.gitBody(w, r, git.ReceivePack, s.maxPush)
	if err != nil {
		return err
	}
	defer body.Close()
	if who, ok := s.pushes.lock(a.ID, p.Name()); !ok {
		return pushBusy(a, who)
	}
	defer s.pushes.unlock(a.ID)
	if _, err := s.repos.Init(ctx, a.ID, a.Source.Ref); err != nil {
		return fmt.Errorf("repository of %s: %w", a.Name, err)
	}
	// No push runs: whatever quarantine is there, a killed push left.
	if err := s.repos.ClearQuarantine(a.ID); err != nil {
		s.log.Warn("git: clear quarantine", "app", a.ID, "err", err)
	}
	sess, err := git.NewHookSession(s.gitHook)
	if err != nil {
		return err
	}
	defer sess.Close()

	// A push outlives the server's read and write timeouts (it deploys),
	// and git reads the answer while the body may still be read.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	_ = rc.EnableFullDuplex()

	hctx, stopHook := context.WithCancel(ctx)
	verdict := make(chan pushOutcome, 1)
	go func() { verdict <- s.judgePush(hctx, sess, a, p) }()

	w.Header().Set("Content-Type", "application/x-git-receive-pack-result")
	err = body.check(s.repos.Serve(ctx, git.ServiceRequest{
		Service: git.ReceivePack, AppID: a.ID, Protocol: r.Header.Get("Git-Protocol"),
		Stdin: body, Stdout: &flushWriter{w: w, rc: rc},
		Hooks: sess.HooksDir(), Env: sess.Env(), MaxInput: s.maxPush,
	}))
	// receive-pack has ended, and with it the hook: a deployment still
	// followed now lost its pusher and is cancelled.
	stopHook()
	out := <-verdict
	// receive-pack leaves its quarantine behind when it is killed or
	// terminated (git 2.39 removes it only on a normal exit): no push runs,
	// so whatever is there is stale.
	if err := s.repos.ClearQuarantine(a.ID); err != nil {
		s.log.Warn("git: clear quarantine", "app", a.ID, "err", err)
	}
	if out.target != "" {
		rw.audit.target = out.target
	}
	rw.audit.detail = out.detail
	switch {
	case err != nil || out.ran && !out.ok:
		rw.audit.outcome = berth.OutcomeFailed
	case !out.ran:
		// No ref to change: git's probe ("0000") before a large push,
		// which checks the credentials before the pack is sent.
		rw.audit.skip = true
	}
	return err
}

// judgePush waits for the push's hook and decides the push.
func (s *Server) judgePush(ctx context.Context, sess *git.HookSession, a *berth.App, p *auth.Principal) pushOutcome {
	c, err := sess.Accept(ctx)
	if err != nil {
		return pushOutcome{}
	}
	out := s.decidePush(ctx, c, a, p)
	out.ran = true
	if err := c.Finish(out.ok); err != nil && ctx.Err() == nil {
		s.log.Warn("git: send the verdict to the hook", "app", a.ID, "err", err)
	}
	return out
}

// decidePush checks every ref the push changes and deploys the app's
// branch. Tags and other branches are stored without deploying; the app's
// branch cannot be deleted; refs other than branches and tags are refused.
func (s *Server) decidePush(ctx context.Context, c *git.HookConn, a *berth.App, p *auth.Principal) pushOutcome {
	say := func(format string, args ...any) { _ = c.Say("berth: " + fmt.Sprintf(format, args...)) }
	branch := "refs/heads/" + a.Source.Ref
	var deploy *git.HookUpdate
	var refs []string
	refused := ""
	for _, u := range c.Request.Updates {
		name, isBranch := strings.CutPrefix(u.Ref, "refs/heads/")
		tag, isTag := strings.CutPrefix(u.Ref, "refs/tags/")
		if isTag {
			name = tag
		}
		refs = append(refs, u.Ref)
		switch {
		case u.Ref == branch && u.Deletes():
			refused = fmt.Sprintf("%s deploys app %s: it cannot be deleted", a.Source.Ref, a.Name)
		case u.Ref == branch:
			deploy = &u
		case !isBranch && !isTag:
			refused = fmt.Sprintf("%s: only branches and tags can be pushed to berth", u.Ref)
		case berth.ValidGitRef(name) != nil:
			refused = fmt.Sprintf("%s: use letters, digits, '.', '_', '-' and '/' in branch and tag names", u.Ref)
		case u.Deletes():
			say("%s deleted", u.Ref)
		default:
			say("%s stored without deploying: only pushes to %s deploy %s", u.Ref, a.Source.Ref, a.Name)
		}
		if refused != "" {
			break
		}
	}
	out := pushOutcome{target: "app=" + a.Name + " refs=" + strings.Join(refs, ",")}
	if refused != "" {
		say("push refused: %s", refused)
		out.detail = refused
		return out
	}
	if deploy == nil {
		out.ok, out.detail = true, "stored without deploying"
		return out
	}
	out.target = fmt.Sprintf("app=%s ref=%s commit=%s", a.Name, deploy.Ref, deploy.New)
	d, err := s.deployCommit(ctx, a, p, deploy.New, c.Request.Quarantine, "")
	if err != nil {
		say("deploy refused: %s", berth.ErrorMessage(err))
		out.detail = berth.ErrorMessage(err)
		if kind := berth.ErrorKind(err); kind == berth.Internal || kind == berth.Unavailable {
			s.log.Error("git: deploy a push", "app", a.ID, "err", err)
		}
		return out
	}
	out.deployment = d
	say("deployment #%d of %s: commit %s", d.Number, a.Name, short(deploy.New))
	final := s.followPush(ctx, c, p, a, d)
	switch {
	case final == nil:
		out.detail = fmt.Sprintf("deployment #%d: the push was interrupted; deployment cancelled", d.Number)
	case final.Status == berth.StatusLive:
		say("deployment #%d is live; %s is now at %s", d.Number, a.Source.Ref, short(deploy.New))
		out.ok, out.detail = true, fmt.Sprintf("deployment #%d live", d.Number)
	default:
		say("deployment #%d %s: %s", d.Number, final.Status, firstLine(final.Error))
		say("push refused: %s stays at %s, and what served before keeps serving", a.Source.Ref, short(deploy.Old))
		out.detail = fmt.Sprintf("deployment #%d %s: %s", d.Number, final.Status, firstLine(final.Error))
	}
	return out
}

// deployCommit deploys commit of app's hosted repository (read from
// quarantine when set): the archive of its tree is streamed into the
// engine as the deployment's build context.
func (s *Server) deployCommit(ctx context.Context, a *berth.App, p *auth.Principal, commit, quarantine, ref string) (*berth.Deployment, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(s.repos.Archive(ctx, a.ID, commit, quarantine, pw)) }()
	d, err := s.engine.Deploy(ctx, a, engine.DeployRequest{Upload: pr, Commit: commit, Ref: ref, CreatedBy: p.Name()})
	pr.CloseWithError(io.ErrClosedPipe) // the archive stops if the engine did not read it all
	if err != nil {
		return nil, fmt.Errorf("deploy %s: %w", a.Name, err)
	}
	return d, nil
}

// keepTalking is how long a push stays silent at most while its deployment
// runs: proxies between git and berth drop connections that say nothing.
const keepTalking = 20 * time.Second

// followPush sends the log of deployment d to the hook as it grows, and
// returns the deployment once it has ended. When the hook hangs up or ctx
// ends first (git push was interrupted), it cancels the deployment and
// returns nil.
func (s *Server) followPush(ctx context.Context, c *git.HookConn, p *auth.Principal, a *berth.App, d *berth.Deployment) *berth.Deployment {
	// Store reads outlive ctx: the pusher's leaving is handled below.
	rctx := context.WithoutCancel(ctx)
	var after int64
	send := func() error {
		for {
			lines, err := s.store.Logs(rctx, p.Team.ID, d.ID, after, logPage)
			if err != nil {
				return fmt.Errorf("read log of deployment %s: %w", d.ID, err)
			}
			for _, l := range lines {
				if err := c.Say(l.Text); err != nil {
					return err
				}
				after = l.Seq
			}
			if len(lines) < logPage {
				return nil
			}
		}
	}
	poll := time.NewTicker(s.poll)
	defer poll.Stop()
	quiet := time.Now()
	var cur *berth.Deployment
	for {
		next, err := s.store.Deployment(rctx, p.Team.ID, d.ID)
		if err != nil {
			s.log.Warn("git: follow deployment", "deployment", d.ID, "err", err)
		} else {
			cur = next
		}
		seen := after
		if err := send(); err != nil {
			s.log.Warn("git: follow deployment", "deployment", d.ID, "err", err)
		}
		if after != seen {
			quiet = time.Now()
		}
		if cur != nil && !cur.Status.Active() {
			// Lines stored just after the final status (see settleLines).
			until := time.Now().Add(s.settle)
			if cur.FinishedAt != nil {
				until = cur.FinishedAt.Add(s.settle)
			}
			for time.Now().Before(until) {
				select {
				case <-c.Gone():
					return cur
				case <-time.After(min(s.poll, time.Until(until))):
				}
				_ = send()
			}
			return cur
		}
		if time.Since(quiet) >= keepTalking && cur != nil {
			_ = c.Say(fmt.Sprintf("berth: still %s…", cur.Status))
			quiet = time.Now()
		}
		select {
		case <-ctx.Done():
		case <-c.Gone():
		case <-poll.C:
			continue
		}
		if _, err := s.engine.Cancel(rctx, a, d.ID); err != nil && !berth.IsKind(err, berth.Conflict) {
			s.log.Warn("git: cancel the deployment of an interrupted push", "deployment", d.ID, "err", err)
		}
		s.log.Info("git: push interrupted; deployment cancelled", "app", a.ID, "deployment", d.ID)
		return nil
	}
}

// short abbreviates a commit ID.
func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}

// firstLine is the first line of an error message.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
