-- berth's first schema, PostgreSQL dialect. Times are TIMESTAMPTZ
-- (microseconds, UTC). Every object of a team carries team_id; children
-- reference their app by (app_id, team_id), so a row can never point at
-- another team's app, and go with it when it is deleted.

CREATE TABLE settings (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);

CREATE TABLE teams (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE users (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	email      TEXT NOT NULL DEFAULT '',
	created_at TIMESTAMPTZ NOT NULL
);

CREATE UNIQUE INDEX users_email ON users (email) WHERE email <> '';

CREATE TABLE members (
	team_id TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
	user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	role    TEXT NOT NULL,
	PRIMARY KEY (team_id, user_id)
);

CREATE INDEX members_user ON members (user_id);

CREATE TABLE tokens (
	id           TEXT PRIMARY KEY,
	team_id      TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
	user_id      TEXT REFERENCES users (id) ON DELETE CASCADE,
	name         TEXT NOT NULL,
	scopes       TEXT NOT NULL, -- JSON array
	hash         BYTEA NOT NULL UNIQUE,
	created_at   TIMESTAMPTZ NOT NULL,
	expires_at   TIMESTAMPTZ,
	last_used_at TIMESTAMPTZ
);

CREATE INDEX tokens_team ON tokens (team_id);
CREATE INDEX tokens_user ON tokens (user_id);

CREATE TABLE apps (
	id          TEXT PRIMARY KEY,
	team_id     TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
	name        TEXT NOT NULL,
	settings    TEXT NOT NULL, -- JSON: source, build, port, replicas, resources, health, volumes
	deploy_seq  INTEGER NOT NULL DEFAULT 0, -- last deployment number
	release_seq INTEGER NOT NULL DEFAULT 0, -- last release number
	created_at  TIMESTAMPTZ NOT NULL,
	updated_at  TIMESTAMPTZ NOT NULL,
	UNIQUE (team_id, name),
	UNIQUE (id, team_id)
);

CREATE TABLE domains (
	id         TEXT PRIMARY KEY,
	team_id    TEXT NOT NULL,
	app_id     TEXT NOT NULL,
	host       TEXT NOT NULL UNIQUE,
	created_at TIMESTAMPTZ NOT NULL,
	FOREIGN KEY (app_id, team_id) REFERENCES apps (id, team_id) ON DELETE CASCADE
);

CREATE INDEX domains_app ON domains (app_id, team_id);

CREATE TABLE env_vars (
	team_id    TEXT NOT NULL,
	app_id     TEXT NOT NULL,
	key        TEXT NOT NULL,
	value      BYTEA NOT NULL, -- sealed
	updated_at TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (app_id, key),
	FOREIGN KEY (app_id, team_id) REFERENCES apps (id, team_id) ON DELETE CASCADE
);

CREATE INDEX env_vars_app ON env_vars (app_id, team_id);

CREATE TABLE deployments (
	id                TEXT PRIMARY KEY,
	team_id           TEXT NOT NULL,
	app_id            TEXT NOT NULL,
	number            INTEGER NOT NULL,
	kind              TEXT NOT NULL,
	status            TEXT NOT NULL,
	ref               TEXT NOT NULL DEFAULT '',
	image             TEXT NOT NULL DEFAULT '',
	commit_id         TEXT NOT NULL DEFAULT '',
	release_id        TEXT NOT NULL DEFAULT '',
	target_release_id TEXT NOT NULL DEFAULT '',
	created_by        TEXT NOT NULL DEFAULT '',
	error             TEXT NOT NULL DEFAULT '',
	stages            TEXT NOT NULL DEFAULT '[]', -- JSON array of stage timings
	cancel_requested  BOOLEAN NOT NULL DEFAULT FALSE,
	log_seq           BIGINT NOT NULL DEFAULT 0, -- last log line number
	created_at        TIMESTAMPTZ NOT NULL,
	updated_at        TIMESTAMPTZ NOT NULL,
	finished_at       TIMESTAMPTZ,
	UNIQUE (app_id, number),
	UNIQUE (id, team_id),
	FOREIGN KEY (app_id, team_id) REFERENCES apps (id, team_id) ON DELETE CASCADE
);

CREATE INDEX deployments_app ON deployments (app_id, team_id);
CREATE INDEX deployments_status ON deployments (status);

CREATE TABLE deployment_logs (
	team_id       TEXT NOT NULL,
	deployment_id TEXT NOT NULL,
	seq           BIGINT NOT NULL,
	at            TIMESTAMPTZ NOT NULL,
	text          TEXT NOT NULL,
	PRIMARY KEY (deployment_id, seq),
	FOREIGN KEY (deployment_id, team_id) REFERENCES deployments (id, team_id) ON DELETE CASCADE
);

CREATE INDEX deployment_logs_team ON deployment_logs (deployment_id, team_id);

CREATE TABLE releases (
	id            TEXT PRIMARY KEY,
	team_id       TEXT NOT NULL,
	app_id        TEXT NOT NULL,
	number        INTEGER NOT NULL,
	image         TEXT NOT NULL,
	commit_id     TEXT NOT NULL DEFAULT '',
	deployment_id TEXT NOT NULL DEFAULT '',
	config        TEXT NOT NULL, -- JSON, without env
	env           BYTEA,         -- sealed JSON object of the env
	created_at    TIMESTAMPTZ NOT NULL,
	UNIQUE (app_id, number),
	UNIQUE (id, team_id),
	FOREIGN KEY (app_id, team_id) REFERENCES apps (id, team_id) ON DELETE CASCADE
);

CREATE INDEX releases_app ON releases (app_id, team_id);

CREATE TABLE jobs (
	id           TEXT PRIMARY KEY,
	kind         TEXT NOT NULL,
	key          TEXT NOT NULL DEFAULT '', -- jobs of one key never run at once
	payload      TEXT NOT NULL DEFAULT '',
	team_id      TEXT NOT NULL DEFAULT '',
	status       TEXT NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	max_attempts INTEGER NOT NULL DEFAULT 0,
	run_at       TIMESTAMPTZ NOT NULL,
	deadline     TIMESTAMPTZ,
	owner        TEXT NOT NULL DEFAULT '',
	lease_until  TIMESTAMPTZ,
	last_error   TEXT NOT NULL DEFAULT '',
	created_at   TIMESTAMPTZ NOT NULL
);

CREATE INDEX jobs_status ON jobs (status, created_at);
CREATE INDEX jobs_key ON jobs (key, status);
-- At most one job of a key is leased at a time.
CREATE UNIQUE INDEX jobs_key_leased ON jobs (key) WHERE status = 'leased' AND key <> '';
