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

// releaseWhere binds a release's sealed env to the release.
func releaseWhere(id string) string { return "release/" + id + "/env" }

const releaseColumns = `id, team_id, app_id, number, image, commit_id, deployment_id, config, env, created_at`

func (s *Store) scanRelease(sc scanner) (*berth.Release, error) {
	var r berth.Release
	var config string
	var env []byte
	if err := sc.Scan(&r.ID, &r.TeamID, &r.AppID, &r.Number, &r.Image, &r.Commit, &r.DeploymentID,
		&config, &env, scanTime{&r.CreatedAt}); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(config), &r.Config); err != nil {
		return nil, fmt.Errorf("release %s config: %w", r.ID, err)
	}
	if len(env) > 0 {
		plain, err := s.seal.open(env, releaseWhere(r.ID))
		if err != nil {
			return nil, berth.E("read release", berth.Internal, "release %s env: %v", r.ID, err)
		}
		if err := json.Unmarshal(plain, &r.Config.Env); err != nil {
			return nil, fmt.Errorf("release %s env: %w", r.ID, err)
		}
	}
	return &r, nil
}

// CreateRelease stores a release, assigning its per-app Number and sealing
// its env. It fills an empty ID and a zero CreatedAt.
func (s *Store) CreateRelease(ctx context.Context, r *berth.Release) error {
	const op = "create release"
	if r.ID == "" {
		r.ID = berth.NewID("rel")
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = time.Now()
	}
	r.CreatedAt = utc(r.CreatedAt)
	cfg := r.Config
	cfg.Env = nil
	config, err := json.Marshal(cfg)
	if err != nil {
		return dbError(op, err)
	}
	var env any
	if len(r.Config.Env) > 0 {
		b, err := json.Marshal(r.Config.Env)
		if err != nil {
			return dbError(op, err)
		}
		env = s.seal.seal(b, releaseWhere(r.ID))
	}
	return s.tx(ctx, func(tx db) error {
		var number int
		err := tx.row(ctx, `UPDATE apps SET release_seq = release_seq + 1 WHERE id = ? AND team_id = ? RETURNING release_seq`,
			r.AppID, r.TeamID).Scan(&number)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound(op, "app %q not found", r.AppID)
		}
		if err != nil {
			return dbError(op, err)
		}
		_, err = tx.exec(ctx, `INSERT INTO releases (`+releaseColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ID, r.TeamID, r.AppID, number, r.Image, r.Commit, r.DeploymentID, string(config), env, r.CreatedAt)
		if isUnique(err) {
			return conflict(op, "release %q already exists", r.ID)
		}
		if err != nil {
			return dbError(op, err)
		}
		r.Number = number
		return nil
	})
}

func (s *Store) Release(ctx context.Context, teamID, id string) (*berth.Release, error) {
	const op = "get release"
	r, err := s.scanRelease(s.reader().row(ctx, `SELECT `+releaseColumns+` FROM releases WHERE id = ? AND team_id = ?`, id, teamID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(op, "release %q not found", id)
	}
	if err != nil {
		return nil, dbError(op, err)
	}
	return r, nil
}

// Releases lists an app's releases, newest first, at most limit (all when
// limit <= 0); NotFound when the team has no such app.
func (s *Store) Releases(ctx context.Context, teamID, appID string, limit int) ([]berth.Release, error) {
	const op = "list releases"
	out, err := queryAll(ctx, s.reader(), op, deref(s.scanRelease), `SELECT `+releaseColumns+` FROM releases
		WHERE team_id = ? AND app_id = ? ORDER BY number DESC`+limitSQL(limit), teamID, appID)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, checkApp(ctx, s.reader(), op, teamID, appID)
	}
	return out, nil
}
