package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/berthhq/berth"
)

// Bounds of the delivery record of each app: RecordDelivery keeps the
// newest MaxDeliveries accepted deliveries and, apart, the newest
// MaxRejectedDeliveries rejected ones, so that requests with bad
// signatures can neither grow the table nor push the accepted history out.
const (
	MaxDeliveries         = 200
	MaxRejectedDeliveries = 50
)

// webhookWhere binds an app's sealed webhook secret to the app.
func webhookWhere(appID string) string { return "webhook/" + appID + "/secret" }

// ErrAlreadyReceived is the Conflict RecordDelivery returns for a delivery
// ID the app has accepted before.
var ErrAlreadyReceived = berth.E("record delivery", berth.Conflict, "already received")

// scanWebhook reads an app_webhooks row; secret is the sealed secret or nil.
func scanWebhook(sc scanner) (w *berth.Webhook, secret []byte, err error) {
	w = &berth.Webhook{}
	var branches, paths string
	if err := sc.Scan(&w.AppID, &secret, &branches, &paths, scanTime{&w.UpdatedAt}); err != nil {
		return nil, nil, err
	}
	if err := json.Unmarshal([]byte(branches), &w.Branches); err != nil {
		return nil, nil, fmt.Errorf("webhook of %s: branches: %w", w.AppID, err)
	}
	if err := json.Unmarshal([]byte(paths), &w.Paths); err != nil {
		return nil, nil, fmt.Errorf("webhook of %s: paths: %w", w.AppID, err)
	}
	w.SecretSet = secret != nil
	return w, secret, nil
}

// Webhook returns an app's webhook settings; an app that never had any has
// the defaults (no secret, no filter). NotFound when the team has no such
// app.
func (s *Store) Webhook(ctx context.Context, teamID, appID string) (*berth.Webhook, error) {
	const op = "get webhook"
	w, _, err := scanWebhook(s.reader().row(ctx, `SELECT app_id, secret, branches, paths, updated_at
		FROM app_webhooks WHERE app_id = ? AND team_id = ?`, appID, teamID))
	if errors.Is(err, sql.ErrNoRows) {
		if err := checkApp(ctx, s.reader(), op, teamID, appID); err != nil {
			return nil, err
		}
		return &berth.Webhook{AppID: appID, Branches: []string{}, Paths: []string{}}, nil
	}
	if err != nil {
		return nil, dbError(op, err)
	}
	return w, nil
}

// SetWebhook writes an app's branch filter and watch paths (validated)
// and, when secret is not nil, its secret in the same statement: "" removes
// the secret, anything else is validated and sealed. A nil secret keeps the
// one the app has. NotFound when the team has no such app.
func (s *Store) SetWebhook(ctx context.Context, teamID string, w *berth.Webhook, secret *string) error {
	const op = "set webhook"
	if err := w.Validate(); err != nil {
		return err
	}
	if w.Branches == nil {
		w.Branches = []string{}
	}
	if w.Paths == nil {
		w.Paths = []string{}
	}
	var sealed []byte
	if secret != nil && *secret != "" {
		if err := berth.ValidWebhookSecret(*secret); err != nil {
			return berth.E(op, berth.Invalid, "%v", err)
		}
		sealed = s.seal.seal([]byte(*secret), webhookWhere(w.AppID))
	}
	branches, _ := json.Marshal(w.Branches)
	paths, _ := json.Marshal(w.Paths)
	w.UpdatedAt = utc(time.Now())
	set := `branches = excluded.branches, paths = excluded.paths, updated_at = excluded.updated_at`
	if secret != nil {
		set += `, secret = excluded.secret`
	}
	// An app of another team either fails the foreign key (no row yet) or
	// updates nothing (the WHERE): both are NotFound.
	n, err := s.writer().affected(ctx, `INSERT INTO app_webhooks (app_id, team_id, secret, branches, paths, updated_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (app_id) DO UPDATE SET `+set+` WHERE app_webhooks.team_id = excluded.team_id`,
		w.AppID, teamID, sealed, string(branches), string(paths), w.UpdatedAt)
	if isForeignKey(err) || err == nil && n == 0 {
		return notFound(op, "app %q not found", w.AppID)
	}
	if err != nil {
		return dbError(op, err)
	}
	w.SecretSet = sealed != nil
	if secret == nil {
		cur, err := s.Webhook(ctx, teamID, w.AppID)
		if err != nil {
			return err
		}
		w.SecretSet = cur.SecretSet
	}
	return nil
}

// SetWebhookSecret seals and stores an app's webhook secret, keeping its
// filter; an empty secret removes it, after which the app accepts no
// webhook. NotFound when the team has no such app.
func (s *Store) SetWebhookSecret(ctx context.Context, teamID, appID, secret string) error {
	const op = "set webhook secret"
	var sealed []byte
	if secret != "" {
		if err := berth.ValidWebhookSecret(secret); err != nil {
			return berth.E(op, berth.Invalid, "%v", err)
		}
		sealed = s.seal.seal([]byte(secret), webhookWhere(appID))
	}
	n, err := s.writer().affected(ctx, `INSERT INTO app_webhooks (app_id, team_id, secret, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (app_id) DO UPDATE SET secret = excluded.secret, updated_at = excluded.updated_at
		WHERE app_webhooks.team_id = excluded.team_id`,
		appID, teamID, sealed, time.Now())
	if isForeignKey(err) || err == nil && n == 0 {
		return notFound(op, "app %q not found", appID)
	}
	return dbError(op, err)
}

// HookTarget finds the app a webhook URL names, by the app's ID alone, with
// its webhook settings and unsealed secret ("" when none is set). It is the
// one lookup of an app without its team: a webhook request carries no
// credentials but the signature, which is checked with what this returns;
// every later query uses the app's team. NotFound when no app has the ID.
func (s *Store) HookTarget(ctx context.Context, appID string) (*berth.App, *berth.Webhook, string, error) {
	const op = "find webhook"
	a, err := scanApp(s.reader().row(ctx, `SELECT `+appColumns+` FROM apps WHERE id = ?`, appID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, "", notFound(op, "no app %q", appID)
	}
	if err != nil {
		return nil, nil, "", dbError(op, err)
	}
	w, sealed, err := scanWebhook(s.reader().row(ctx, `SELECT app_id, secret, branches, paths, updated_at
		FROM app_webhooks WHERE app_id = ? AND team_id = ?`, a.ID, a.TeamID))
	if errors.Is(err, sql.ErrNoRows) {
		return a, &berth.Webhook{AppID: a.ID, Branches: []string{}, Paths: []string{}}, "", nil
	}
	if err != nil {
		return nil, nil, "", dbError(op, err)
	}
	if sealed == nil {
		return a, w, "", nil
	}
	plain, err := s.seal.open(sealed, webhookWhere(a.ID))
	if err != nil {
		return nil, nil, "", berth.E(op, berth.Internal, "webhook secret of %s: %v", a.ID, err)
	}
	return a, w, string(plain), nil
}

// DeliverySeen reports whether the app has accepted a delivery with this
// provider and ID before (rejected and failed ones do not count).
func (s *Store) DeliverySeen(ctx context.Context, teamID, appID string, provider berth.Provider, deliveryID string) (bool, error) {
	ok, err := s.reader().exists(ctx, `SELECT 1 FROM webhook_deliveries WHERE app_id = ? AND team_id = ? AND provider = ?
		AND delivery_id = ? AND outcome NOT IN ('rejected', 'failed')`, appID, teamID, string(provider), deliveryID)
	return ok, dbError("find delivery", err)
}

// RecordDelivery records a webhook delivery and, when d is not nil, the
// deployment it asks for, in one transaction that holds the app's row
// lock, so that deliveries of one app are recorded one at a time:
//
//   - a delivery ID the app accepted before is ErrAlreadyReceived, and
//     nothing is written (the unique index refuses it too, should two
//     transactions ever get past the check together);
//   - with d, the app's newest queued deployment that a webhook started is
//     re-pointed to d.Ref (a conditional update: it must still be queued)
//     and the delivery is recorded coalesced into it; when there is none,
//     d is inserted and the delivery recorded deployed. created reports
//     which: the caller enqueues a job for a created deployment only.
//
// The delivery's fields are clipped; its ID, DeploymentID and
// DeploymentNumber are filled. Old deliveries beyond the bounds are pruned.
func (s *Store) RecordDelivery(ctx context.Context, dl *berth.WebhookDelivery, d *berth.Deployment) (created bool, err error) {
	const op = "record delivery"
	dl.Clip()
	if !berth.ValidDeliveryOutcome(dl.Outcome) && d == nil {
		return false, berth.E(op, berth.Invalid, "unknown delivery outcome %q", dl.Outcome)
	}
	if dl.ID == "" {
		dl.ID = berth.NewID("dlv")
	}
	if dl.ReceivedAt.IsZero() {
		dl.ReceivedAt = time.Now()
	}
	dl.ReceivedAt = utc(dl.ReceivedAt)
	if d != nil {
		if err := prepareDeployment(d); err != nil {
			return false, err
		}
	}
	accepted := func() bool { return dl.Outcome != berth.DeliveryRejected && dl.Outcome != berth.DeliveryFailed }
	err = s.tx(ctx, func(tx db) error {
		created = false
		// The no-op update takes the app's row lock (PostgreSQL; SQLite's
		// transaction holds the write lock already).
		n, err := tx.affected(ctx, `UPDATE apps SET deploy_seq = deploy_seq WHERE id = ? AND team_id = ?`, dl.AppID, dl.TeamID)
		if err != nil {
			return dbError(op, err)
		}
		if n == 0 {
			return notFound(op, "app %q not found", dl.AppID)
		}
		if d != nil {
			dl.Outcome = berth.DeliveryDeployed
		}
		if accepted() && dl.DeliveryID != "" {
			seen, err := tx.exists(ctx, `SELECT 1 FROM webhook_deliveries WHERE app_id = ? AND team_id = ? AND provider = ?
				AND delivery_id = ? AND outcome NOT IN ('rejected', 'failed')`, dl.AppID, dl.TeamID, string(dl.Provider), dl.DeliveryID)
			if err != nil {
				return dbError(op, err)
			}
			if seen {
				return ErrAlreadyReceived
			}
		}
		if d != nil {
			if err := coalesce(ctx, tx, dl, d); err != nil {
				return err
			}
			if dl.Outcome == berth.DeliveryDeployed {
				if err := aimDeployment(ctx, tx, dl, d); err != nil {
					return err
				}
				if err := insertDeployment(ctx, tx, d); err != nil {
					return err
				}
				dl.DeploymentID, dl.DeploymentNumber, created = d.ID, d.Number, true
			}
		}
		_, err = tx.exec(ctx, `INSERT INTO webhook_deliveries (id, team_id, app_id, provider, delivery_id, event, received_at,
			outcome, reason, ref, commit_id, before_commit, deployment_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			dl.ID, dl.TeamID, dl.AppID, string(dl.Provider), dl.DeliveryID, dl.Event, dl.ReceivedAt,
			string(dl.Outcome), dl.Reason, dl.Ref, dl.Commit, dl.Before, dl.DeploymentID)
		if isUnique(err) {
			return ErrAlreadyReceived
		}
		if err != nil {
			return dbError(op, err)
		}
		return pruneDeliveries(ctx, tx, dl.TeamID, dl.AppID, dl.Outcome == berth.DeliveryRejected)
	})
	if err != nil {
		created = false
	}
	return created, err
}

// coalesce joins dl to the app's newest queued deployment that a webhook
// started, and records it coalesced into it, the deployment's ref decided
// by berth.PushTarget: the newest push's commit, or its branch when the
// order of the pushes cannot be told. It leaves dl deployed when there is
// none. The status condition makes it safe against a worker that starts the
// deployment meanwhile: once it has moved on from queued, its ref no longer
// changes and a new deployment is queued.
func coalesce(ctx context.Context, tx db, dl *berth.WebhookDelivery, d *berth.Deployment) error {
	const op = "coalesce deployment"
	var id, queued string
	var number int
	err := tx.row(ctx, `SELECT q.id, q.number, q.ref FROM deployments q WHERE q.team_id = ? AND q.app_id = ? AND q.status = ? AND q.kind = ?
		AND EXISTS (SELECT 1 FROM webhook_deliveries w WHERE w.deployment_id = q.id AND w.team_id = q.team_id AND w.outcome = ?)
		ORDER BY q.number DESC LIMIT 1`,
		d.TeamID, d.AppID, string(berth.StatusQueued), string(berth.KindDeploy), string(berth.DeliveryDeployed)).Scan(&id, &number, &queued)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return dbError(op, err)
	}
	older, err := pushedOnTop(ctx, tx, dl, d.Ref)
	if err != nil {
		return err
	}
	ref, note := berth.PushTarget(queued, berth.PushStep{Ref: dl.Ref, Before: dl.Before, After: d.Ref}, older)
	n, err := tx.affected(ctx, `UPDATE deployments SET ref = ?, updated_at = ? WHERE id = ? AND team_id = ? AND status = ?`,
		ref, d.UpdatedAt, id, d.TeamID, string(berth.StatusQueued))
	if err != nil {
		return dbError(op, err)
	}
	if n == 0 {
		return nil // a worker started it: queue a new one
	}
	dl.Outcome, dl.DeploymentID, dl.DeploymentNumber = berth.DeliveryCoalesced, id, number
	note = fmt.Sprintf("coalesced into #%d, queued and not started yet: %s", number, note)
	if dl.Reason != "" {
		note += " (" + dl.Reason + ")"
	}
	dl.Reason = note
	return nil
}

// aimDeployment decides what a new webhook deployment d deploys: the
// pushed commit, or the head of its branch when a push received before
// started from that commit (berth.PushTarget), which the reason then says.
func aimDeployment(ctx context.Context, tx db, dl *berth.WebhookDelivery, d *berth.Deployment) error {
	older, err := pushedOnTop(ctx, tx, dl, d.Ref)
	if err != nil {
		return err
	}
	ref, note := berth.PushTarget("", berth.PushStep{Ref: dl.Ref, Before: dl.Before, After: d.Ref}, older)
	d.Ref = ref
	if note != "" {
		dl.Reason = strings.TrimPrefix(dl.Reason+"; "+note, "; ")
	}
	return nil
}

// pushedOnTop reports whether an accepted delivery of the app's pushes to
// dl's branch started from commit: a later push than the one that made
// commit the branch's head.
func pushedOnTop(ctx context.Context, tx db, dl *berth.WebhookDelivery, commit string) (bool, error) {
	if dl.Ref == "" || commit == "" {
		return false, nil
	}
	ok, err := tx.exists(ctx, `SELECT 1 FROM webhook_deliveries WHERE app_id = ? AND team_id = ? AND ref = ? AND before_commit = ?
		AND outcome <> 'rejected'`, dl.AppID, dl.TeamID, dl.Ref, commit)
	return ok, dbError("find pushes", err)
}

// pruneDeliveries keeps an app's newest deliveries within the bounds: the
// rejected ones apart from the others.
func pruneDeliveries(ctx context.Context, tx db, teamID, appID string, rejected bool) error {
	cond, keep := `outcome <> 'rejected'`, MaxDeliveries
	if rejected {
		cond, keep = `outcome = 'rejected'`, MaxRejectedDeliveries
	}
	_, err := tx.exec(ctx, `DELETE FROM webhook_deliveries WHERE app_id = ? AND team_id = ? AND `+cond+` AND id NOT IN (
		SELECT id FROM webhook_deliveries WHERE app_id = ? AND team_id = ? AND `+cond+`
		ORDER BY received_at DESC, id DESC LIMIT ?)`, appID, teamID, appID, teamID, keep)
	return dbError("prune deliveries", err)
}

// FailDelivery records that berth could not act on an accepted delivery
// (its deployment could not be queued): outcome failed, with the reason.
// A failed delivery may be delivered again.
func (s *Store) FailDelivery(ctx context.Context, teamID, id, reason string) error {
	const op = "fail delivery"
	d := berth.WebhookDelivery{Reason: reason}
	d.Clip()
	n, err := s.writer().affected(ctx, `UPDATE webhook_deliveries SET outcome = ?, reason = ? WHERE id = ? AND team_id = ?`,
		string(berth.DeliveryFailed), d.Reason, id, teamID)
	return one(op, n, err, "delivery %q not found", id)
}

// WebhookDeliveries lists an app's recorded deliveries, newest first, at
// most limit (all kept when limit <= 0), with the number of the deployment
// each started or joined. NotFound when the team has no such app.
func (s *Store) WebhookDeliveries(ctx context.Context, teamID, appID string, limit int) ([]berth.WebhookDelivery, error) {
	const op = "list deliveries"
	rows, err := s.reader().query(ctx, `SELECT w.id, w.app_id, w.provider, w.delivery_id, w.event, w.received_at, w.outcome,
		w.reason, w.ref, w.commit_id, w.before_commit, w.deployment_id, COALESCE(d.number, 0)
		FROM webhook_deliveries w LEFT JOIN deployments d ON d.id = w.deployment_id AND d.team_id = w.team_id
		WHERE w.team_id = ? AND w.app_id = ? ORDER BY w.received_at DESC, w.id DESC`+limitSQL(limit), teamID, appID)
	if err != nil {
		return nil, dbError(op, err)
	}
	defer rows.Close()
	out := []berth.WebhookDelivery{}
	for rows.Next() {
		var d berth.WebhookDelivery
		var provider, outcome string
		if err := rows.Scan(&d.ID, &d.AppID, &provider, &d.DeliveryID, &d.Event, scanTime{&d.ReceivedAt}, &outcome,
			&d.Reason, &d.Ref, &d.Commit, &d.Before, &d.DeploymentID, &d.DeploymentNumber); err != nil {
			return nil, dbError(op, err)
		}
		d.TeamID, d.Provider, d.Outcome = teamID, berth.Provider(provider), berth.DeliveryOutcome(outcome)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(op, err)
	}
	if len(out) == 0 {
		if err := checkApp(ctx, s.reader(), op, teamID, appID); err != nil {
			return nil, err
		}
	}
	return out, nil
}
