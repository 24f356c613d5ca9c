package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/store"
)

// DeployCommit is what a webhook delivery asks of the engine: deploy app at
// commit, and record delivery dl with the outcome. In one store
// transaction it either joins the app's queued webhook deployment (dl ends
// coalesced into it: a burst of pushes deploys once) or stores a new
// queued deployment (dl ends deployed), whose job it then enqueues. What
// the deployment deploys is the newest push's commit, told by the before
// and after commits of the pushes (dl.Ref, dl.Before), or the head of the
// branch when their order cannot be told: see berth.PushTarget. A
// deployment that has started is never changed: the new one is queued
// after it.
//
// A delivery the app has accepted before is store.ErrAlreadyReceived and
// changes nothing. When the job cannot be queued, the deployment fails,
// dl is recorded failed and the error is returned.
func (e *Engine) DeployCommit(ctx context.Context, app *berth.App, commit, createdBy string, dl *berth.WebhookDelivery) (*berth.Deployment, error) {
	const op = "deploy from webhook"
	if app.Source.Kind != berth.SourceGit {
		return nil, berth.E(op, berth.Invalid, "app %s deploys from %s, not from git", app.Name, app.Source.Kind)
	}
	if err := berth.ValidGitRef(commit); err != nil {
		return nil, berth.E(op, berth.Invalid, "%v", err)
	}
	now := e.cfg.Now()
	d := &berth.Deployment{
		ID: berth.NewID("dep"), TeamID: app.TeamID, AppID: app.ID, Kind: berth.KindDeploy, Status: berth.StatusQueued,
		Ref: commit, CreatedBy: createdBy, CreatedAt: now, UpdatedAt: now,
	}
	dl.TeamID, dl.AppID = app.TeamID, app.ID
	created, err := e.st.RecordDelivery(ctx, dl, d)
	if err != nil {
		if errors.Is(err, store.ErrAlreadyReceived) {
			return nil, err
		}
		return nil, fmt.Errorf("%s %s: %w", op, app.Name, err)
	}
	if !created {
		joined, err := e.st.Deployment(ctx, app.TeamID, dl.DeploymentID)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", op, app.Name, err)
		}
		e.log.Info("webhook push coalesced", "app", app.ID, "deployment", joined.ID, "commit", commit, "ref", joined.Ref)
		return joined, nil
	}
	if err := e.enqueue(ctx, app, d); err != nil {
		wctx := context.WithoutCancel(ctx)
		if ferr := e.st.FailDelivery(wctx, app.TeamID, dl.ID, "the deployment could not be queued; deliver it again"); ferr != nil {
			e.log.Warn("record failed delivery", "app", app.ID, "err", ferr)
		}
		dl.Outcome = berth.DeliveryFailed
		return nil, err
	}
	e.log.Info("webhook push deploys", "app", app.ID, "deployment", d.ID, "commit", commit, "ref", d.Ref)
	return d, nil
}
