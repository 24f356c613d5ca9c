-- Teams: projects (every team has one named "default", and every app belongs
-- to exactly one project), per-project grants of members, invitations and
-- the audit log. SQLite dialect.

CREATE TABLE projects (
	id         TEXT PRIMARY KEY,
	team_id    TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
	name       TEXT NOT NULL,
	created_at TEXT NOT NULL,
	UNIQUE (team_id, name),
	UNIQUE (id, team_id)
) STRICT;

-- The default project of each existing team; its ID is derived from the
-- team's so that the migration needs no randomness.
INSERT INTO projects (id, team_id, name, created_at)
	SELECT 'proj_' || substr(id, 6), id, 'default', created_at FROM teams;

-- A project with apps cannot be deleted (no cascade).
ALTER TABLE apps ADD COLUMN project_id TEXT REFERENCES projects (id);

UPDATE apps SET project_id = (SELECT p.id FROM projects p WHERE p.team_id = apps.team_id AND p.name = 'default');

CREATE INDEX apps_project ON apps (project_id);

-- A member with rows here sees only these projects of the team; a member
-- without any sees them all.
CREATE TABLE member_projects (
	team_id    TEXT NOT NULL,
	user_id    TEXT NOT NULL,
	project_id TEXT NOT NULL,
	PRIMARY KEY (team_id, user_id, project_id),
	FOREIGN KEY (team_id, user_id) REFERENCES members (team_id, user_id) ON DELETE CASCADE,
	FOREIGN KEY (project_id, team_id) REFERENCES projects (id, team_id) ON DELETE CASCADE
) STRICT;

CREATE INDEX member_projects_project ON member_projects (project_id, team_id);

CREATE TABLE invitations (
	id          TEXT PRIMARY KEY,
	team_id     TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
	email       TEXT NOT NULL, -- lowercase
	role        TEXT NOT NULL,
	projects    TEXT NOT NULL DEFAULT '[]', -- JSON array of project IDs
	hash        BLOB NOT NULL UNIQUE,       -- SHA-256 of the secret
	invited_by  TEXT NOT NULL,
	created_at  TEXT NOT NULL,
	expires_at  TEXT NOT NULL,
	accepted_at TEXT,
	accepted_by TEXT NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX invitations_team ON invitations (team_id, created_at);

-- The audit log outlives what it talks about: no foreign keys. team_id is
-- '' for requests whose team is unknown (no valid credentials).
CREATE TABLE audit_events (
	id          TEXT PRIMARY KEY,
	team_id     TEXT NOT NULL DEFAULT '',
	at          TEXT NOT NULL,
	actor_id    TEXT NOT NULL DEFAULT '',
	actor_name  TEXT NOT NULL,
	action      TEXT NOT NULL,
	target      TEXT NOT NULL DEFAULT '',
	client_addr TEXT NOT NULL DEFAULT '',
	outcome     TEXT NOT NULL,
	status      INTEGER NOT NULL,
	detail      TEXT NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX audit_events_team_at ON audit_events (team_id, at);
