package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berthhq/berth"
)

// appSettings is what the apps.settings JSON column holds: every setting of
// an app that is not a column of its own.
type appSettings struct {
	Source    berth.Source      `json:"source"`
	Build     berth.BuildConfig `json:"build"`
	Port      int               `json:"port"`
	Replicas  int               `json:"replicas"`
	Resources berth.Resources   `json:"resources"`
	Health    berth.HealthCheck `json:"health"`
	Volumes   []berth.Volume    `json:"volumes,omitempty"`
}

func marshalAppSettings(a *berth.App) (string, error) {
	b, err := json.Marshal(appSettings{Source: a.Source, Build: a.Build, Port: a.Port, Replicas: a.Replicas,
		Resources: a.Resources, Health: a.Health, Volumes: a.Volumes})
	return string(b), err
}

const appColumns = `id, team_id, COALESCE(project_id, ''), name, settings, created_at, updated_at`

func scanApp(sc scanner) (*berth.App, error) {
	var a berth.App
	var settings string
	if err := sc.Scan(&a.ID, &a.TeamID, &a.ProjectID, &a.Name, &settings, scanTime{&a.CreatedAt}, scanTime{&a.UpdatedAt}); err != nil {
		return nil, err
	}
	var st appSettings
	if err := json.Unmarshal([]byte(settings), &st); err != nil {
		return nil, fmt.Errorf("app %s settings: %w", a.ID, err)
	}
	a.Source, a.Build, a.Port, a.Replicas = st.Source, st.Build, st.Port, st.Replicas
	a.Resources, a.Health, a.Volumes = st.Resources, st.Health, st.Volumes
	return &a, nil
}

// CreateApp stores a new app; Conflict when the team has one of that name,
// NotFound when its project is not the team's. An app without a project
// goes to the team's default project. It fills an empty ID, ProjectID and
// zero CreatedAt and UpdatedAt.
func (s *Store) CreateApp(ctx context.Context, a *berth.App) error {
	const op = "create app"
	if a.ID == "" {
		a.ID = berth.NewID("app")
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = time.Now()
	}
	if a.UpdatedAt.IsZero() {
		a.UpdatedAt = a.CreatedAt
	}
	a.CreatedAt, a.UpdatedAt = utc(a.CreatedAt), utc(a.UpdatedAt)
	settings, err := marshalAppSettings(a)
	if err != nil {
		return dbError(op, err)
	}
	return s.tx(ctx, func(d db) error {
		var project string
		err := d.row(ctx, `SELECT id FROM projects WHERE team_id = ? AND (id = ? OR (? = '' AND name = ?))`,
			a.TeamID, a.ProjectID, a.ProjectID, berth.DefaultProject).Scan(&project)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound(op, "project %q not found", a.ProjectID)
		}
		if err != nil {
			return dbError(op, err)
		}
		_, err = d.exec(ctx, `INSERT INTO apps (id, team_id, project_id, name, settings, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, a.ID, a.TeamID, project, a.Name, settings, a.CreatedAt, a.UpdatedAt)
		switch {
		case isUnique(err):
			return conflict(op, "app %q already exists", a.Name)
		case isForeignKey(err):
			return notFound(op, "team %q not found", a.TeamID)
		case err != nil:
			return dbError(op, err)
		}
		a.ProjectID = project
		return nil
	})
}

// App finds an app by name.
func (s *Store) App(ctx context.Context, teamID, name string) (*berth.App, error) {
	const op = "get app"
	a, err := scanApp(s.reader().row(ctx, `SELECT `+appColumns+` FROM apps WHERE team_id = ? AND name = ?`, teamID, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(op, "app %q not found", name)
	}
	if err != nil {
		return nil, dbError(op, err)
	}
	return a, nil
}

// AppByID finds an app by ID.
func (s *Store) AppByID(ctx context.Context, teamID, id string) (*berth.App, error) {
	const op = "get app"
	a, err := scanApp(s.reader().row(ctx, `SELECT `+appColumns+` FROM apps WHERE team_id = ? AND id = ?`, teamID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(op, "app %q not found", id)
	}
	if err != nil {
		return nil, dbError(op, err)
	}
	return a, nil
}

// Apps lists a team's apps by name, without the apps that run previews
// (see Previews).
func (s *Store) Apps(ctx context.Context, teamID string) ([]berth.App, error) {
	return s.listApps(ctx, "list apps", `WHERE team_id = ?
		AND id NOT IN (SELECT child_app_id FROM previews WHERE team_id = ?) ORDER BY name`, teamID, teamID)
}

// AppsWithPreviews lists a team's apps by name, the apps that run previews
// included: what uses resources, for the metrics.
func (s *Store) AppsWithPreviews(ctx context.Context, teamID string) ([]berth.App, error) {
	return s.listApps(ctx, "list apps", `WHERE team_id = ? ORDER BY name`, teamID)
}

// AllApps lists the apps of every team. It is for the reconciler, which
// keeps every app's containers as the store says; nothing a client asks for
// reaches it.
func (s *Store) AllApps(ctx context.Context) ([]berth.App, error) {
	return s.listApps(ctx, "list all apps", `ORDER BY team_id, name`)
}

// FindApps returns a page of a team's apps, sorted by name, selected by f,
// and how many apps f selects in all (every page). Two indexed queries,
// whatever the team's size: the page and the count.
func (s *Store) FindApps(ctx context.Context, teamID string, f berth.AppFilter) (apps []berth.App, total int, err error) {
	const op = "find apps"
	if f.Limit < 0 || f.Offset < 0 {
		return nil, 0, berth.E(op, berth.Invalid, "limit and offset cannot be negative")
	}
	if (f.Visible != nil && len(f.Visible) == 0) || (f.Names != nil && len(f.Names) == 0) {
		return nil, 0, nil // nothing can match
	}
	cond, args := appWhere("", teamID, f)
	if err := s.reader().row(ctx, `SELECT COUNT(*) FROM apps`+cond, args...).Scan(&total); err != nil {
		return nil, 0, dbError(op, err)
	}
	if total == 0 || f.Offset >= total {
		return nil, total, nil
	}
	page := cond + ` ORDER BY name`
	if f.Limit > 0 {
		page += ` LIMIT ` + strconv.Itoa(f.Limit)
	}
	if f.Offset > 0 {
		if f.Limit == 0 && s.dialect == SQLite {
			page += ` LIMIT -1` // SQLite's OFFSET needs a LIMIT
		}
		page += ` OFFSET ` + strconv.Itoa(f.Offset)
	}
	apps, err = s.listApps(ctx, op, page, args...)
	return apps, total, err
}

// appWhere is the WHERE clause (with its leading space) of the apps of a
// team that f selects — never an app that runs a preview — its columns qualified by alias when not "", and its
// arguments. f's Names and Visible must not be empty slices (they select
// nothing: the caller answers without a query).
func appWhere(alias, teamID string, f berth.AppFilter) (string, []any) {
	col := func(c string) string {
		if alias == "" {
			return c
		}
		return alias + "." + c
	}
	// The apps that run previews are listed under their parent (Previews).
	where := []string{col("team_id") + " = ?", col("id") + " NOT IN (SELECT child_app_id FROM previews WHERE team_id = ?)"}
	args := []any{teamID, teamID}
	if f.Query != "" {
		where = append(where, col("name")+` LIKE ? ESCAPE '\'`)
		args = append(args, "%"+likeEscaper.Replace(strings.ToLower(f.Query))+"%")
	}
	if f.Project != "" {
		where, args = append(where, col("project_id")+" = ?"), append(args, f.Project)
	}
	in := func(column string, vals []string) {
		where = append(where, col(column)+" IN ("+strings.TrimSuffix(strings.Repeat("?, ", len(vals)), ", ")+")")
		for _, v := range vals {
			args = append(args, v)
		}
	}
	if f.Names != nil {
		in("name", f.Names)
	}
	if f.Visible != nil {
		in("project_id", f.Visible)
	}
	return ` WHERE ` + strings.Join(where, " AND "), args
}

// likeEscaper escapes the wildcards of a LIKE pattern written with ESCAPE '\'.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

func (s *Store) listApps(ctx context.Context, op, where string, args ...any) ([]berth.App, error) {
	return queryAll(ctx, s.reader(), op, deref(scanApp), `SELECT `+appColumns+` FROM apps `+where, args...)
}

// UpdateApp writes an app's settings (not its name or team). A zero
// UpdatedAt is set to now.
func (s *Store) UpdateApp(ctx context.Context, a *berth.App) error {
	const op = "update app"
	if a.UpdatedAt.IsZero() {
		a.UpdatedAt = time.Now()
	}
	a.UpdatedAt = utc(a.UpdatedAt)
	settings, err := marshalAppSettings(a)
	if err != nil {
		return dbError(op, err)
	}
	n, err := s.writer().affected(ctx, `UPDATE apps SET settings = ?, updated_at = ? WHERE id = ? AND team_id = ?`,
		settings, a.UpdatedAt, a.ID, a.TeamID)
	return one(op, n, err, "app %q not found", a.ID)
}

// DeleteApp removes an app and everything that belongs to it: domains, env
// vars, deployments and their logs, releases.
func (s *Store) DeleteApp(ctx context.Context, teamID, id string) error {
	const op = "delete app"
	n, err := s.writer().affected(ctx, `DELETE FROM apps WHERE id = ? AND team_id = ?`, id, teamID)
	return one(op, n, err, "app %q not found", id)
}

// checkApp returns NotFound unless the team has the app.
func checkApp(ctx context.Context, d db, op, teamID, appID string) error {
	ok, err := d.exists(ctx, `SELECT 1 FROM apps WHERE id = ? AND team_id = ?`, appID, teamID)
	if err != nil {
		return dbError(op, err)
	}
	if !ok {
		return notFound(op, "app %q not found", appID)
	}
	return nil
}

// AddDomain routes a host to an app; Conflict when any app already has it.
// The host is stored normalized; an empty ID and a zero CreatedAt are
// filled.
func (s *Store) AddDomain(ctx context.Context, d *berth.Domain) error {
	const op = "add domain"
	d.Host = berth.NormalizeHost(d.Host)
	if d.Host == "" {
		return berth.E(op, berth.Invalid, "empty host")
	}
	if d.ID == "" {
		d.ID = berth.NewID("dom")
	}
	if d.CreatedAt.IsZero() {
		d.CreatedAt = time.Now()
	}
	d.CreatedAt = utc(d.CreatedAt)
	// The (app_id, team_id) foreign key refuses an app of another team.
	_, err := s.writer().exec(ctx, `INSERT INTO domains (id, team_id, app_id, host, created_at) VALUES (?, ?, ?, ?, ?)`,
		d.ID, d.TeamID, d.AppID, d.Host, d.CreatedAt)
	switch {
	case isUnique(err):
		return conflict(op, "domain %q is already in use", d.Host)
	case isForeignKey(err):
		return notFound(op, "app %q not found", d.AppID)
	}
	return dbError(op, err)
}

// Domains lists an app's domains by host; NotFound when the team has no
// such app.
func (s *Store) Domains(ctx context.Context, teamID, appID string) ([]berth.Domain, error) {
	const op = "list domains"
	rows, err := s.reader().query(ctx, `SELECT id, team_id, app_id, host, created_at FROM domains
		WHERE team_id = ? AND app_id = ? ORDER BY host`, teamID, appID)
	if err != nil {
		return nil, dbError(op, err)
	}
	defer rows.Close()
	var out []berth.Domain
	for rows.Next() {
		var d berth.Domain
		if err := rows.Scan(&d.ID, &d.TeamID, &d.AppID, &d.Host, scanTime{&d.CreatedAt}); err != nil {
			return nil, dbError(op, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(op, err)
	}
	if len(out) == 0 {
		return nil, checkApp(ctx, s.reader(), op, teamID, appID)
	}
	return out, nil
}

// RemoveDomain stops routing a host to an app.
func (s *Store) RemoveDomain(ctx context.Context, teamID, appID, host string) error {
	const op = "remove domain"
	host = berth.NormalizeHost(host)
	n, err := s.writer().affected(ctx, `DELETE FROM domains WHERE team_id = ? AND app_id = ? AND host = ?`, teamID, appID, host)
	return one(op, n, err, "domain %q not found", host)
}

// envWhere binds a sealed env value to its app and key.
func envWhere(appID, key string) string { return "env/" + appID + "/" + key }

// SetEnv inserts or replaces env vars; UnsetEnv removes them (keys that are
// not set are ignored); Env lists them unsealed, by key. Each is NotFound
// when the team has no such app; SetEnv checks keys and values with
// berth.ValidEnv.
func (s *Store) SetEnv(ctx context.Context, teamID, appID string, vars map[string]string) error {
	const op = "set env"
	for k, v := range vars {
		if err := berth.ValidEnv(k, v); err != nil {
			return berth.E(op, berth.Invalid, "%v", err)
		}
	}
	now := time.Now()
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return s.tx(ctx, func(d db) error {
		if err := checkApp(ctx, d, op, teamID, appID); err != nil {
			return err
		}
		for _, k := range keys {
			sealed := s.seal.seal([]byte(vars[k]), envWhere(appID, k))
			_, err := d.exec(ctx, `INSERT INTO env_vars (team_id, app_id, key, value, updated_at) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (app_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
				teamID, appID, k, sealed, now)
			if err != nil {
				return dbError(op, fmt.Errorf("set %s: %w", k, err))
			}
		}
		var n int
		if err := d.row(ctx, `SELECT COUNT(*) FROM env_vars WHERE app_id = ? AND team_id = ?`, appID, teamID).Scan(&n); err != nil {
			return dbError(op, err)
		}
		if n > berth.MaxEnvVars {
			return berth.E(op, berth.Invalid, "an app has at most %d env vars", berth.MaxEnvVars)
		}
		return nil
	})
}

func (s *Store) UnsetEnv(ctx context.Context, teamID, appID string, keys []string) error {
	const op = "unset env"
	return s.tx(ctx, func(d db) error {
		if err := checkApp(ctx, d, op, teamID, appID); err != nil {
			return err
		}
		for _, k := range keys {
			if _, err := d.exec(ctx, `DELETE FROM env_vars WHERE team_id = ? AND app_id = ? AND key = ?`, teamID, appID, k); err != nil {
				return dbError(op, err)
			}
		}
		return nil
	})
}

func (s *Store) Env(ctx context.Context, teamID, appID string) ([]berth.EnvVar, error) {
	const op = "get env"
	rows, err := s.reader().query(ctx, `SELECT key, value, updated_at FROM env_vars
		WHERE team_id = ? AND app_id = ? ORDER BY key`, teamID, appID)
	if err != nil {
		return nil, dbError(op, err)
	}
	defer rows.Close()
	var out []berth.EnvVar
	for rows.Next() {
		var e berth.EnvVar
		var sealed []byte
		if err := rows.Scan(&e.Key, &sealed, scanTime{&e.UpdatedAt}); err != nil {
			return nil, dbError(op, err)
		}
		plain, err := s.seal.open(sealed, envWhere(appID, e.Key))
		if err != nil {
			return nil, berth.E(op, berth.Internal, "env var %s: %v", e.Key, err)
		}
		e.Value = string(plain)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(op, err)
	}
	if len(out) == 0 {
		return nil, checkApp(ctx, s.reader(), op, teamID, appID)
	}
	return out, nil
}
