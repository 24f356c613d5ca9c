package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/berthhq/berth"
)

func createProject(ctx context.Context, d db, p *berth.Project) error {
	const op = "create project"
	if p.ID == "" {
		p.ID = berth.NewID("proj")
	}
	if p.CreatedAt.IsZero() {
		p.CreatedAt = time.Now()
	}
	p.CreatedAt = utc(p.CreatedAt)
	_, err := d.exec(ctx, `INSERT INTO projects (id, team_id, name, created_at) VALUES (?, ?, ?, ?)`,
		p.ID, p.TeamID, p.Name, p.CreatedAt)
	switch {
	case isUnique(err):
		return conflict(op, "a project named %q already exists", p.Name)
	case isForeignKey(err):
		return notFound(op, "team %q not found", p.TeamID)
	}
	return dbError(op, err)
}

// CreateProject stores a new project; Conflict when the team has one of
// that name. It fills an empty ID and a zero CreatedAt.
func (s *Store) CreateProject(ctx context.Context, p *berth.Project) error {
	return createProject(ctx, s.writer(), p)
}

const projectColumns = `id, team_id, name, created_at`

func scanProject(sc scanner) (*berth.Project, error) {
	var p berth.Project
	if err := sc.Scan(&p.ID, &p.TeamID, &p.Name, scanTime{&p.CreatedAt}); err != nil {
		return nil, err
	}
	return &p, nil
}

// Project finds a project of a team by name or by ID.
func (s *Store) Project(ctx context.Context, teamID, nameOrID string) (*berth.Project, error) {
	const op = "get project"
	p, err := scanProject(s.reader().row(ctx, `SELECT `+projectColumns+` FROM projects
		WHERE team_id = ? AND (name = ? OR id = ?)`, teamID, nameOrID, nameOrID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(op, "project %q not found", nameOrID)
	}
	if err != nil {
		return nil, dbError(op, err)
	}
	return p, nil
}

// Projects lists a team's projects by name.
func (s *Store) Projects(ctx context.Context, teamID string) ([]berth.Project, error) {
	const op = "list projects"
	return queryAll(ctx, s.reader(), op, deref(scanProject), `SELECT `+projectColumns+` FROM projects WHERE team_id = ? ORDER BY name`, teamID)
}

// ProjectAppCounts counts the apps of each project of a team, by project
// ID; a project without apps is absent.
func (s *Store) ProjectAppCounts(ctx context.Context, teamID string) (map[string]int, error) {
	const op = "count apps per project"
	rows, err := s.reader().query(ctx, `SELECT COALESCE(project_id, ''), COUNT(*) FROM apps WHERE team_id = ? GROUP BY project_id`, teamID)
	if err != nil {
		return nil, dbError(op, err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, dbError(op, err)
		}
		out[id] = n
	}
	return out, dbError(op, rows.Err())
}

// DeleteProject removes an empty project; Conflict while it has apps, and
// for the default project, which every team keeps. Grants to it go with it.
func (s *Store) DeleteProject(ctx context.Context, teamID, id string) error {
	const op = "delete project"
	return s.tx(ctx, func(d db) error {
		p, err := scanProject(d.row(ctx, `SELECT `+projectColumns+` FROM projects WHERE team_id = ? AND id = ?`, teamID, id))
		if errors.Is(err, sql.ErrNoRows) {
			return notFound(op, "project %q not found", id)
		}
		if err != nil {
			return dbError(op, err)
		}
		if p.Name == berth.DefaultProject {
			return conflict(op, "the default project cannot be deleted")
		}
		used, err := d.exists(ctx, `SELECT 1 FROM apps WHERE team_id = ? AND project_id = ? LIMIT 1`, teamID, id)
		if err != nil {
			return dbError(op, err)
		}
		if used {
			return conflict(op, "project %q still has apps; delete or move them first", p.Name)
		}
		_, err = d.exec(ctx, `DELETE FROM projects WHERE team_id = ? AND id = ?`, teamID, id)
		if isForeignKey(err) {
			return conflict(op, "project %q still has apps; delete or move them first", p.Name)
		}
		return dbError(op, err)
	})
}
