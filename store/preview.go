package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/berthhq/berth"
)

// previewEnvWhere and previewTokenWhere bind an app's sealed preview env
// overrides and status token to the app.
func previewEnvWhere(appID string) string   { return "preview/" + appID + "/env" }
func previewTokenWhere(appID string) string { return "preview/" + appID + "/token" }

// PreviewSettings returns an app's preview settings, unsealed; an app that
// has none stored gets berth.DefaultPreviewSettings (previews off).
// NotFound when the team has no such app.
func (s *Store) PreviewSettings(ctx context.Context, teamID, appID string) (*berth.PreviewSettings, error) {
	const op = "get preview settings"
	ps := berth.PreviewSettings{AppID: appID, TeamID: teamID}
	var ttl int64
	var env, token []byte
	err := s.reader().row(ctx, `SELECT enabled, max_previews, ttl_seconds, env, status_api, status_token, updated_at
		FROM preview_settings WHERE app_id = ? AND team_id = ?`, appID, teamID).
		Scan(&ps.Enabled, &ps.MaxPreviews, &ttl, &env, &ps.StatusAPI, &token, scanTime{&ps.UpdatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		if err := checkApp(ctx, s.reader(), op, teamID, appID); err != nil {
			return nil, err
		}
		return berth.DefaultPreviewSettings(teamID, appID), nil
	}
	if err != nil {
		return nil, dbError(op, err)
	}
	ps.TTL = time.Duration(ttl) * time.Second
	if len(env) > 0 {
		plain, err := s.seal.open(env, previewEnvWhere(appID))
		if err != nil {
			return nil, berth.E(op, berth.Internal, "preview env of %s: %v", appID, err)
		}
		if err := json.Unmarshal(plain, &ps.Env); err != nil {
			return nil, dbError(op, fmt.Errorf("preview env of %s: %w", appID, err))
		}
	}
	if len(token) > 0 {
		plain, err := s.seal.open(token, previewTokenWhere(appID))
		if err != nil {
			return nil, berth.E(op, berth.Internal, "preview status token of %s: %v", appID, err)
		}
		ps.StatusToken = string(plain)
	}
	return &ps, nil
}

// SetPreviewSettings stores an app's preview settings (all of them: the
// caller merges), sealing the env overrides and the token, and moves the
// expiry of the app's previews to their last update plus the new TTL. A
// zero UpdatedAt is set to now. NotFound when the team has no such app.
func (s *Store) SetPreviewSettings(ctx context.Context, ps *berth.PreviewSettings) error {
	const op = "set preview settings"
	ps.SetDefaults()
	if err := ps.Validate(); err != nil {
		return err
	}
	if ps.UpdatedAt.IsZero() {
		ps.UpdatedAt = time.Now()
	}
	ps.UpdatedAt = utc(ps.UpdatedAt)
	var env, token any
	if len(ps.Env) > 0 {
		b, err := json.Marshal(ps.Env)
		if err != nil {
			return dbError(op, err)
		}
		env = s.seal.seal(b, previewEnvWhere(ps.AppID))
	}
	if ps.StatusToken != "" {
		token = s.seal.seal([]byte(ps.StatusToken), previewTokenWhere(ps.AppID))
	}
	return s.tx(ctx, func(d db) error {
		if err := checkApp(ctx, d, op, ps.TeamID, ps.AppID); err != nil {
			return err
		}
		_, err := d.exec(ctx, `INSERT INTO preview_settings
			(app_id, team_id, enabled, max_previews, ttl_seconds, env, status_api, status_token, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (app_id) DO UPDATE SET enabled = excluded.enabled, max_previews = excluded.max_previews,
				ttl_seconds = excluded.ttl_seconds, env = excluded.env, status_api = excluded.status_api,
				status_token = excluded.status_token, updated_at = excluded.updated_at`,
			ps.AppID, ps.TeamID, ps.Enabled, ps.MaxPreviews, int64(ps.TTL/time.Second), env, ps.StatusAPI, token, ps.UpdatedAt)
		if err != nil {
			return dbError(op, err)
		}
		rows, err := d.query(ctx, `SELECT id, updated_at FROM previews WHERE app_id = ? AND team_id = ?`, ps.AppID, ps.TeamID)
		if err != nil {
			return dbError(op, err)
		}
		type exp struct {
			id string
			at time.Time
		}
		var all []exp
		for rows.Next() {
			var e exp
			if err := rows.Scan(&e.id, scanTime{&e.at}); err != nil {
				rows.Close()
				return dbError(op, err)
			}
			all = append(all, e)
		}
		if err := rows.Close(); err != nil {
			return dbError(op, err)
		}
		for _, e := range all {
			if _, err := d.exec(ctx, `UPDATE previews SET expires_at = ? WHERE id = ? AND team_id = ?`,
				e.at.Add(ps.TTL), e.id, ps.TeamID); err != nil {
				return dbError(op, err)
			}
		}
		return nil
	})
}

// ErrPreviewLimit is CreatePreview's answer when the parent has as many
// previews as its settings allow.
var ErrPreviewLimit = berth.E("create preview", berth.Conflict, "preview limit reached")

const previewColumns = `p.id, p.team_id, p.app_id, p.number, p.child_app_id, c.name, p.provider, p.repo, p.title,
	p.author, p.head_ref, p.head_sha, p.fork, p.approved_sha, p.approved_by, p.approved_at, p.status, p.status_sha,
	p.message, p.host, p.posted_at, p.post_error, p.created_at, p.updated_at, p.expires_at`

const previewFrom = ` FROM previews p JOIN apps c ON c.id = p.child_app_id AND c.team_id = p.team_id `

func scanPreview(sc scanner) (*berth.Preview, error) {
	var p berth.Preview
	err := sc.Scan(&p.ID, &p.TeamID, &p.AppID, &p.Number, &p.ChildAppID, &p.ChildApp, &p.Provider, &p.Repo, &p.Title,
		&p.Author, &p.HeadRef, &p.HeadSHA, &p.Fork, &p.ApprovedSHA, &p.ApprovedBy, scanTimePtr{&p.ApprovedAt}, &p.Status,
		&p.StatusSHA, &p.Message, &p.Host, scanTimePtr{&p.PostedAt}, &p.PostError, scanTime{&p.CreatedAt},
		scanTime{&p.UpdatedAt}, scanTime{&p.ExpiresAt})
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// CreatePreview stores a new preview p of parent app p.AppID together with
// its child app and the child's one domain, p.Host, in one transaction. It
// returns ErrPreviewLimit when the parent already has max previews that
// are not being torn down, and Conflict when the pull request has a
// preview, the child's name is taken or the host is routed elsewhere. The
// child goes to the parent's project. Empty IDs and zero times are filled.
func (s *Store) CreatePreview(ctx context.Context, p *berth.Preview, child *berth.App, max int) error {
	const op = "create preview"
	if p.ID == "" {
		p.ID = berth.NewID("prv")
	}
	if child.ID == "" {
		child.ID = berth.NewID("app")
	}
	if p.CreatedAt.IsZero() {
		p.CreatedAt = time.Now()
	}
	if p.UpdatedAt.IsZero() {
		p.UpdatedAt = p.CreatedAt
	}
	p.CreatedAt, p.UpdatedAt, p.ExpiresAt = utc(p.CreatedAt), utc(p.UpdatedAt), utc(p.ExpiresAt)
	child.CreatedAt, child.UpdatedAt = p.CreatedAt, p.CreatedAt
	child.TeamID, p.ChildAppID, p.ChildApp = p.TeamID, child.ID, child.Name
	settings, err := marshalAppSettings(child)
	if err != nil {
		return dbError(op, err)
	}
	return s.tx(ctx, func(d db) error {
		// Two pull requests opened at once must not both take the last
		// slot: the parent's row serializes them (SQLite's IMMEDIATE
		// transaction already does).
		lock := `SELECT project_id FROM apps WHERE id = ? AND team_id = ?`
		if d.pg {
			lock += ` FOR UPDATE`
		}
		var project sql.NullString
		err := d.row(ctx, lock, p.AppID, p.TeamID).Scan(&project)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound(op, "app %q not found", p.AppID)
		}
		if err != nil {
			return dbError(op, err)
		}
		if ok, err := d.exists(ctx, `SELECT 1 FROM previews WHERE app_id = ? AND team_id = ? AND number = ?`, p.AppID, p.TeamID, p.Number); err != nil {
			return dbError(op, err)
		} else if ok {
			return conflict(op, "pull request #%d already has a preview", p.Number)
		}
		var n int
		if err := d.row(ctx, `SELECT COUNT(*) FROM previews WHERE app_id = ? AND team_id = ? AND status <> ?`,
			p.AppID, p.TeamID, berth.PreviewClosing).Scan(&n); err != nil {
			return dbError(op, err)
		}
		if n >= max {
			return ErrPreviewLimit
		}
		_, err = d.exec(ctx, `INSERT INTO apps (id, team_id, project_id, name, settings, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, child.ID, child.TeamID, project, child.Name, settings, child.CreatedAt, child.UpdatedAt)
		if isUnique(err) {
			return conflict(op, "an app named %q already exists", child.Name)
		}
		if err != nil {
			return dbError(op, err)
		}
		child.ProjectID = project.String
		_, err = d.exec(ctx, `INSERT INTO domains (id, team_id, app_id, host, created_at) VALUES (?, ?, ?, ?, ?)`,
			berth.NewID("dom"), p.TeamID, child.ID, p.Host, p.CreatedAt)
		if isUnique(err) {
			return conflict(op, "domain %q is already in use", p.Host)
		}
		if err != nil {
			return dbError(op, err)
		}
		_, err = d.exec(ctx, `INSERT INTO previews (id, team_id, app_id, number, child_app_id, provider, repo, title, author,
			head_ref, head_sha, fork, approved_sha, approved_by, approved_at, status, status_sha, message, host, posted_at,
			post_error, created_at, updated_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			p.ID, p.TeamID, p.AppID, p.Number, p.ChildAppID, p.Provider, p.Repo, p.Title, p.Author,
			p.HeadRef, p.HeadSHA, p.Fork, p.ApprovedSHA, p.ApprovedBy, p.ApprovedAt, p.Status, p.StatusSHA, p.Message,
			p.Host, p.PostedAt, p.PostError, p.CreatedAt, p.UpdatedAt, p.ExpiresAt)
		if isUnique(err) {
			return conflict(op, "pull request #%d already has a preview", p.Number)
		}
		return dbError(op, err)
	})
}

// Preview finds the preview of pull request number of parent app appID.
func (s *Store) Preview(ctx context.Context, teamID, appID string, number int) (*berth.Preview, error) {
	return s.onePreview(ctx, `WHERE p.team_id = ? AND p.app_id = ? AND p.number = ?`, "preview #%[3]d not found", teamID, appID, number)
}

// PreviewByChild finds the preview that child app childID runs; NotFound
// for an app that is no preview.
func (s *Store) PreviewByChild(ctx context.Context, teamID, childID string) (*berth.Preview, error) {
	return s.onePreview(ctx, `WHERE p.team_id = ? AND p.child_app_id = ?`, "app %[2]q runs no preview", teamID, childID)
}

func (s *Store) onePreview(ctx context.Context, where, missing string, args ...any) (*berth.Preview, error) {
	const op = "get preview"
	p, err := scanPreview(s.reader().row(ctx, `SELECT `+previewColumns+previewFrom+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(op, missing, args...)
	}
	if err != nil {
		return nil, dbError(op, err)
	}
	return p, nil
}

// Previews lists the previews of parent app appID by pull request number.
func (s *Store) Previews(ctx context.Context, teamID, appID string) ([]berth.Preview, error) {
	return s.listPreviews(ctx, "list previews", `WHERE p.team_id = ? AND p.app_id = ? ORDER BY p.number`, teamID, appID)
}

// PreviewsToSweep lists, across every team, the previews that expired at
// now and are not being torn down, and those that have been closing since
// before stuck (their teardown must be started again). It is for the
// server's sweeper; nothing a client asks for reaches it.
func (s *Store) PreviewsToSweep(ctx context.Context, now, stuck time.Time) ([]berth.Preview, error) {
	return s.listPreviews(ctx, "list previews to sweep",
		`WHERE (p.status <> ? AND p.expires_at <= ?) OR (p.status = ? AND p.updated_at <= ?) ORDER BY p.expires_at`,
		berth.PreviewClosing, now, berth.PreviewClosing, stuck)
}

func (s *Store) listPreviews(ctx context.Context, op, where string, args ...any) ([]berth.Preview, error) {
	return queryAll(ctx, s.reader(), op, deref(scanPreview), `SELECT `+previewColumns+previewFrom+where, args...)
}

// previewUpdate runs an update of a preview that is not being torn down:
// NotFound when there is no such preview, Conflict when it is closing.
func (s *Store) previewUpdate(ctx context.Context, op, teamID, id, set string, args ...any) error {
	args = append(args, id, teamID, berth.PreviewClosing)
	n, err := s.writer().affected(ctx, `UPDATE previews SET `+set+` WHERE id = ? AND team_id = ? AND status <> ?`, args...)
	if err != nil {
		return dbError(op, err)
	}
	if n > 0 {
		return nil
	}
	ok, err := s.reader().exists(ctx, `SELECT 1 FROM previews WHERE id = ? AND team_id = ?`, id, teamID)
	if err != nil {
		return dbError(op, err)
	}
	if !ok {
		return notFound(op, "preview %q not found", id)
	}
	return conflict(op, "the preview is being torn down")
}

// UpdatePreviewHead records a push to a preview's pull request: its title,
// head and fork flag from p, status pending about the new head, and
// p.UpdatedAt and p.ExpiresAt. Conflict when the preview is closing.
func (s *Store) UpdatePreviewHead(ctx context.Context, p *berth.Preview) error {
	p.UpdatedAt, p.ExpiresAt = utc(p.UpdatedAt), utc(p.ExpiresAt)
	p.Status, p.StatusSHA, p.Message = berth.PreviewPending, p.HeadSHA, ""
	return s.previewUpdate(ctx, "update preview", p.TeamID, p.ID,
		`title = ?, author = ?, head_ref = ?, head_sha = ?, fork = ?, status = ?, status_sha = ?, message = ?,
		updated_at = ?, expires_at = ?`,
		p.Title, p.Author, p.HeadRef, p.HeadSHA, p.Fork, p.Status, p.StatusSHA, p.Message, p.UpdatedAt, p.ExpiresAt)
}

// SetPreviewStatus records where a preview's deployment is: status, the
// commit it is about and the failure's message. Conflict when the preview
// is closing (a teardown is never undone by a deployment that ends).
func (s *Store) SetPreviewStatus(ctx context.Context, teamID, id string, status berth.PreviewStatus, sha, message string, at time.Time) error {
	if status == berth.PreviewClosing {
		return berth.E("set preview status", berth.Invalid, "close a preview with ClosePreview")
	}
	return s.previewUpdate(ctx, "set preview status", teamID, id, `status = ?, status_sha = ?, message = ?, updated_at = ?`,
		status, sha, message, utc(at))
}

// ApprovePreview records that by approved commit sha of a fork's preview,
// and sets it pending (it is deployed again, with secrets). Conflict when
// sha is no longer the head or the preview is closing.
func (s *Store) ApprovePreview(ctx context.Context, teamID, id, sha, by string, at time.Time) error {
	const op = "approve preview"
	at = utc(at)
	n, err := s.writer().affected(ctx, `UPDATE previews SET approved_sha = ?, approved_by = ?, approved_at = ?, status = ?,
		status_sha = ?, message = '', updated_at = ? WHERE id = ? AND team_id = ? AND head_sha = ? AND status <> ?`,
		sha, by, at, berth.PreviewPending, sha, at, id, teamID, sha, berth.PreviewClosing)
	if err != nil {
		return dbError(op, err)
	}
	if n == 0 {
		return conflict(op, "commit %s is no longer the head of the pull request, or the preview is being torn down", berth.ShortSHA(sha))
	}
	return nil
}

// ClosePreview marks a preview as being torn down (also again, which
// restarts the clock of PreviewsToSweep). NotFound when there is none.
func (s *Store) ClosePreview(ctx context.Context, teamID, id string, at time.Time) error {
	const op = "close preview"
	n, err := s.writer().affected(ctx, `UPDATE previews SET status = ?, updated_at = ? WHERE id = ? AND team_id = ?`,
		berth.PreviewClosing, utc(at), id, teamID)
	return one(op, n, err, "preview %q not found", id)
}

// RecordPreviewPost records how posting a preview's commit status went:
// errMsg is "" after a success.
func (s *Store) RecordPreviewPost(ctx context.Context, teamID, id string, at time.Time, errMsg string) error {
	const op = "record status post"
	if len(errMsg) > 1024 {
		errMsg = errMsg[:1021] + "..."
	}
	n, err := s.writer().affected(ctx, `UPDATE previews SET posted_at = ?, post_error = ? WHERE id = ? AND team_id = ?`,
		utc(at), cleanLine(errMsg), id, teamID)
	return one(op, n, err, "preview %q not found", id)
}
