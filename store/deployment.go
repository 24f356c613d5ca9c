package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/berthhq/berth"
)

// activeStatuses is the SQL list of the statuses in which a deployment is
// still being worked on.
var activeStatuses = func() string {
	var q []string
	for _, s := range berth.Statuses {
		if s.Active() {
			q = append(q, "'"+string(s)+"'")
		}
	}
	return "(" + strings.Join(q, ", ") + ")"
}()

const deploymentColumns = `id, team_id, app_id, number, kind, status, ref, image, commit_id, release_id,
	target_release_id, created_by, error, stages, cancel_requested, created_at, updated_at, finished_at`

func scanDeployment(sc scanner) (*berth.Deployment, error) {
	var d berth.Deployment
	var kind, status, stages string
	err := sc.Scan(&d.ID, &d.TeamID, &d.AppID, &d.Number, &kind, &status, &d.Ref, &d.Image, &d.Commit, &d.ReleaseID,
		&d.TargetReleaseID, &d.CreatedBy, &d.Error, &stages, &d.CancelRequested,
		scanTime{&d.CreatedAt}, scanTime{&d.UpdatedAt}, scanTimePtr{&d.FinishedAt})
	if err != nil {
		return nil, err
	}
	d.Kind, d.Status = berth.DeployKind(kind), berth.Status(status)
	if err := json.Unmarshal([]byte(stages), &d.Stages); err != nil {
		return nil, fmt.Errorf("deployment %s stages: %w", d.ID, err)
	}
	return &d, nil
}

// limitSQL is the LIMIT clause of a list; limit <= 0 means no limit.
func limitSQL(limit int) string {
	if limit <= 0 {
		return ""
	}
	return " LIMIT " + strconv.Itoa(limit)
}

// CreateDeployment stores a new deployment, assigning its per-app Number.
// It fills an empty ID, Kind (deploy) and Status (queued), zero CreatedAt and
// UpdatedAt, and opens the first stage timing of an active status when
// Stages is empty.
func (s *Store) CreateDeployment(ctx context.Context, d *berth.Deployment) error {
	if err := prepareDeployment(d); err != nil {
		return err
	}
	return s.tx(ctx, func(tx db) error { return insertDeployment(ctx, tx, d) })
}

// prepareDeployment fills the defaults of a new deployment and checks its
// status.
func prepareDeployment(d *berth.Deployment) error {
	const op = "create deployment"
	if d.ID == "" {
		d.ID = berth.NewID("dep")
	}
	if d.Kind == "" {
		d.Kind = berth.KindDeploy
	}
	if d.Status == "" {
		d.Status = berth.StatusQueued
	}
	if !d.Status.Valid() {
		return berth.E(op, berth.Invalid, "unknown status %q", d.Status)
	}
	if d.CreatedAt.IsZero() {
		d.CreatedAt = time.Now()
	}
	if d.UpdatedAt.IsZero() {
		d.UpdatedAt = d.CreatedAt
	}
	d.CreatedAt, d.UpdatedAt = utc(d.CreatedAt), utc(d.UpdatedAt)
	if len(d.Stages) == 0 && d.Status.Active() {
		d.Stages = []berth.StageTiming{{Stage: d.Status, StartedAt: d.CreatedAt}}
	}
	return nil
}

// insertDeployment inserts a prepared deployment in transaction tx,
// numbering it after the app's last one.
func insertDeployment(ctx context.Context, tx db, d *berth.Deployment) error {
	const op = "create deployment"
	stages, err := marshalStages(d.Stages)
	if err != nil {
		return dbError(op, err)
	}
	var number int
	err = tx.row(ctx, `UPDATE apps SET deploy_seq = deploy_seq + 1 WHERE id = ? AND team_id = ? RETURNING deploy_seq`,
		d.AppID, d.TeamID).Scan(&number)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound(op, "app %q not found", d.AppID)
	}
	if err != nil {
		return dbError(op, err)
	}
	_, err = tx.exec(ctx, `INSERT INTO deployments (`+deploymentColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.ID, d.TeamID, d.AppID, number, string(d.Kind), string(d.Status), d.Ref, d.Image, d.Commit, d.ReleaseID,
		d.TargetReleaseID, d.CreatedBy, d.Error, stages, d.CancelRequested, d.CreatedAt, d.UpdatedAt, d.FinishedAt)
	if isUnique(err) {
		return conflict(op, "deployment %q already exists", d.ID)
	}
	if err != nil {
		return dbError(op, err)
	}
	d.Number = number
	return nil
}

func marshalStages(st []berth.StageTiming) (string, error) {
	for i := range st {
		st[i].StartedAt = utc(st[i].StartedAt)
		if st[i].EndedAt != nil {
			t := utc(*st[i].EndedAt)
			st[i].EndedAt = &t
		}
	}
	if st == nil {
		st = []berth.StageTiming{}
	}
	b, err := json.Marshal(st)
	return string(b), err
}

func (s *Store) Deployment(ctx context.Context, teamID, id string) (*berth.Deployment, error) {
	const op = "get deployment"
	d, err := scanDeployment(s.reader().row(ctx, `SELECT `+deploymentColumns+` FROM deployments WHERE id = ? AND team_id = ?`, id, teamID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(op, "deployment %q not found", id)
	}
	if err != nil {
		return nil, dbError(op, err)
	}
	return d, nil
}

// Deployments lists an app's deployments, newest first, at most limit (all
// when limit <= 0); NotFound when the team has no such app.
func (s *Store) Deployments(ctx context.Context, teamID, appID string, limit int) ([]berth.Deployment, error) {
	const op = "list deployments"
	out, err := queryAll(ctx, s.reader(), op, deref(scanDeployment), `SELECT `+deploymentColumns+` FROM deployments
		WHERE team_id = ? AND app_id = ? ORDER BY number DESC`+limitSQL(limit), teamID, appID)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, checkApp(ctx, s.reader(), op, teamID, appID)
	}
	return out, nil
}

// LiveDeployment returns the app's live deployment, NotFound when none.
func (s *Store) LiveDeployment(ctx context.Context, teamID, appID string) (*berth.Deployment, error) {
	const op = "get live deployment"
	d, err := scanDeployment(s.reader().row(ctx, `SELECT `+deploymentColumns+` FROM deployments
		WHERE team_id = ? AND app_id = ? AND status = ? ORDER BY number DESC LIMIT 1`, teamID, appID, string(berth.StatusLive)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(op, "app %q has no live deployment", appID)
	}
	if err != nil {
		return nil, dbError(op, err)
	}
	return d, nil
}

// LatestDeployments lists the newest deployment of each app of a team
// that f selects (its limit and offset aside; the zero filter selects every
// app), ordered by app ID, in one query: an app list shows its apps'
// statuses without asking once per app. Apps never deployed have none. The
// newest deployment is the one numbered as the app's last deployment
// number, which CreateDeployment moves in the same transaction.
func (s *Store) LatestDeployments(ctx context.Context, teamID string, f berth.AppFilter) ([]berth.Deployment, error) {
	const op = "list latest deployments"
	if (f.Visible != nil && len(f.Visible) == 0) || (f.Names != nil && len(f.Names) == 0) {
		return nil, nil
	}
	cond, args := appWhere("a", teamID, f)
	return queryAll(ctx, s.reader(), op, deref(scanDeployment), `SELECT `+latestColumns+` FROM apps a
		JOIN deployments d ON d.app_id = a.id AND d.team_id = a.team_id AND d.number = a.deploy_seq`+cond+` ORDER BY d.app_id`, args...)
}

// latestColumns are deploymentColumns of the deployments table as "d".
var latestColumns = func() string {
	cols := strings.Split(deploymentColumns, ",")
	for i, c := range cols {
		cols[i] = "d." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}()

// ActiveDeployments lists every deployment of every team still in an active
// status, oldest first; the engine uses it to recover after a restart.
func (s *Store) ActiveDeployments(ctx context.Context) ([]berth.Deployment, error) {
	return s.listDeployments(ctx, "list active deployments", `WHERE status IN `+activeStatuses+` ORDER BY created_at, number`)
}

// LiveDeployments lists every team's live deployments (normally one per
// app; more only after a crash between two moves, which the reconciler
// repairs). It is for the reconciler.
func (s *Store) LiveDeployments(ctx context.Context) ([]berth.Deployment, error) {
	return s.listDeployments(ctx, "list live deployments", `WHERE status = ? ORDER BY app_id, number DESC`, string(berth.StatusLive))
}

func (s *Store) listDeployments(ctx context.Context, op, where string, args ...any) ([]berth.Deployment, error) {
	return queryAll(ctx, s.reader(), op, deref(scanDeployment), `SELECT `+deploymentColumns+` FROM deployments `+where, args...)
}

// MoveDeployment moves a deployment from one status to another with a
// conditional update; Conflict when it is not in from (or the move is not
// allowed). It closes the open stage timing, opens one for an active to,
// sets FinishedAt for a terminal to, and records errMsg when not empty.
func (s *Store) MoveDeployment(ctx context.Context, teamID, id string, from, to berth.Status, at time.Time, errMsg string) error {
	const op = "move deployment"
	if !berth.CanMove(from, to) {
		return conflict(op, "a deployment cannot move from %s to %s", from, to)
	}
	at = utc(at)
	return s.tx(ctx, func(tx db) error {
		var status, stagesJSON, prevErr string
		err := tx.row(ctx, `SELECT status, stages, error FROM deployments WHERE id = ? AND team_id = ?`, id, teamID).
			Scan(&status, &stagesJSON, &prevErr)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound(op, "deployment %q not found", id)
		}
		if err != nil {
			return dbError(op, err)
		}
		if berth.Status(status) != from {
			return conflict(op, "deployment %q is %s, not %s", id, status, from)
		}
		var stages []berth.StageTiming
		if err := json.Unmarshal([]byte(stagesJSON), &stages); err != nil {
			return dbError(op, fmt.Errorf("deployment %s stages: %w", id, err))
		}
		for i := range stages {
			if stages[i].EndedAt == nil {
				end := at
				stages[i].EndedAt = &end
			}
		}
		if to.Active() {
			stages = append(stages, berth.StageTiming{Stage: to, StartedAt: at})
		}
		newStages, err := marshalStages(stages)
		if err != nil {
			return dbError(op, err)
		}
		var finished *time.Time
		if !to.Active() {
			finished = &at
		}
		if errMsg == "" {
			errMsg = prevErr
		}
		// The status condition is what makes the move safe: of two
		// workers moving the same deployment, the second updates nothing.
		n, err := tx.affected(ctx, `UPDATE deployments SET status = ?, stages = ?, error = ?, updated_at = ?,
			finished_at = COALESCE(finished_at, ?)
			WHERE id = ? AND team_id = ? AND status = ?`,
			string(to), newStages, errMsg, at, finished, id, teamID, string(from))
		if err != nil {
			return dbError(op, err)
		}
		if n == 0 {
			return conflict(op, "deployment %q is no longer %s", id, from)
		}
		return nil
	})
}

// setDeployment updates one column of a deployment; NotFound when the team
// has no such deployment.
func (s *Store) setDeployment(ctx context.Context, op, column, teamID, id, value string) error {
	n, err := s.writer().affected(ctx, `UPDATE deployments SET `+column+` = ? WHERE id = ? AND team_id = ?`, value, id, teamID)
	return one(op, n, err, "deployment %q not found", id)
}

// SetDeploymentCommit, SetDeploymentRelease and RequestCancel record facts
// learnt while a deployment runs. RequestCancel is Conflict when the
// deployment is no longer active.
func (s *Store) SetDeploymentCommit(ctx context.Context, teamID, id, commit string) error {
	return s.setDeployment(ctx, "set deployment commit", "commit_id", teamID, id, commit)
}

func (s *Store) SetDeploymentRelease(ctx context.Context, teamID, id, releaseID string) error {
	return s.setDeployment(ctx, "set deployment release", "release_id", teamID, id, releaseID)
}

func (s *Store) RequestCancel(ctx context.Context, teamID, id string) error {
	const op = "cancel deployment"
	n, err := s.writer().affected(ctx, `UPDATE deployments SET cancel_requested = ?
		WHERE id = ? AND team_id = ? AND status IN `+activeStatuses, true, id, teamID)
	if err != nil {
		return dbError(op, err)
	}
	if n > 0 {
		return nil
	}
	d, err := s.Deployment(ctx, teamID, id)
	if err != nil {
		return err
	}
	return conflict(op, "deployment %q is already %s", id, d.Status)
}

// logBatch is how many log lines go in one INSERT.
const logBatch = 100

// AppendLog adds lines to a deployment's log, numbering them; Logs reads
// lines after afterSeq, at most limit (all when limit <= 0). Both are
// NotFound when the team has no such deployment. Lines are stored as valid
// UTF-8 without NUL bytes.
func (s *Store) AppendLog(ctx context.Context, teamID, deploymentID string, at time.Time, lines ...string) error {
	const op = "append log"
	if len(lines) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx db) error {
		var last int64
		err := tx.row(ctx, `UPDATE deployments SET log_seq = log_seq + ? WHERE id = ? AND team_id = ? RETURNING log_seq`,
			len(lines), deploymentID, teamID).Scan(&last)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound(op, "deployment %q not found", deploymentID)
		}
		if err != nil {
			return dbError(op, err)
		}
		seq := last - int64(len(lines))
		for start := 0; start < len(lines); start += logBatch {
			batch := lines[start:min(start+logBatch, len(lines))]
			var q strings.Builder
			q.WriteString(`INSERT INTO deployment_logs (team_id, deployment_id, seq, at, text) VALUES `)
			args := make([]any, 0, 5*len(batch))
			for i, line := range batch {
				if i > 0 {
					q.WriteString(", ")
				}
				q.WriteString("(?, ?, ?, ?, ?)")
				seq++
				args = append(args, teamID, deploymentID, seq, at, cleanLine(line))
			}
			if _, err := tx.exec(ctx, q.String(), args...); err != nil {
				return dbError(op, err)
			}
		}
		return nil
	})
}

// PruneLogs deletes the logs of an app's deployments older than its newest
// keep deployments (by number), and reports how many lines went. The
// deployments themselves stay, with their status, stages and error; a
// deployment still in progress keeps its log whatever its number.
func (s *Store) PruneLogs(ctx context.Context, teamID, appID string, keep int) (int64, error) {
	if keep < 1 {
		return 0, berth.E("prune logs", berth.Invalid, "keep at least one deployment's log")
	}
	n, err := s.writer().affected(ctx, `DELETE FROM deployment_logs WHERE team_id = ? AND deployment_id IN (
		SELECT id FROM deployments WHERE team_id = ? AND app_id = ? AND status NOT IN `+activeStatuses+`
		AND number <= (SELECT deploy_seq FROM apps WHERE id = ? AND team_id = ?) - ?)`,
		teamID, teamID, appID, appID, teamID, keep)
	return n, dbError("prune logs", err)
}

// cleanLine makes a line storable in a PostgreSQL text column.
func cleanLine(s string) string {
	return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
}

func (s *Store) Logs(ctx context.Context, teamID, deploymentID string, afterSeq int64, limit int) ([]berth.LogLine, error) {
	const op = "get logs"
	rows, err := s.reader().query(ctx, `SELECT seq, at, text FROM deployment_logs
		WHERE team_id = ? AND deployment_id = ? AND seq > ? ORDER BY seq`+limitSQL(limit), teamID, deploymentID, afterSeq)
	if err != nil {
		return nil, dbError(op, err)
	}
	defer rows.Close()
	var out []berth.LogLine
	for rows.Next() {
		var l berth.LogLine
		if err := rows.Scan(&l.Seq, scanTime{&l.Time}, &l.Text); err != nil {
			return nil, dbError(op, err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(op, err)
	}
	if len(out) == 0 {
		ok, err := s.reader().exists(ctx, `SELECT 1 FROM deployments WHERE id = ? AND team_id = ?`, deploymentID, teamID)
		if err != nil {
			return nil, dbError(op, err)
		}
		if !ok {
			return nil, notFound(op, "deployment %q not found", deploymentID)
		}
	}
	return out, nil
}
