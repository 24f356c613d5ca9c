-- Preview environments of pull requests: each app's preview settings, and
-- one row per preview. A preview runs as a child app of its own (its apps
-- row, domains, deployments, releases); the row here ties it to its parent
-- and its pull request, and goes with either. SQLite dialect.

CREATE TABLE preview_settings (
	app_id       TEXT PRIMARY KEY,
	team_id      TEXT NOT NULL,
	enabled      INTEGER NOT NULL DEFAULT 0,
	max_previews INTEGER NOT NULL,
	ttl_seconds  INTEGER NOT NULL,
	env          BLOB,                       -- sealed JSON object of the env overrides
	status_api   TEXT NOT NULL DEFAULT '',   -- provider API base URL; '' = the provider's public one
	status_token BLOB,                       -- sealed
	updated_at   TEXT NOT NULL,
	FOREIGN KEY (app_id, team_id) REFERENCES apps (id, team_id) ON DELETE CASCADE
) STRICT;

CREATE INDEX preview_settings_app ON preview_settings (app_id, team_id);

CREATE TABLE previews (
	id           TEXT PRIMARY KEY,
	team_id      TEXT NOT NULL,
	app_id       TEXT NOT NULL, -- the parent
	number       INTEGER NOT NULL,
	child_app_id TEXT NOT NULL UNIQUE,
	provider     TEXT NOT NULL,
	repo         TEXT NOT NULL,
	title        TEXT NOT NULL DEFAULT '',
	author       TEXT NOT NULL DEFAULT '',
	head_ref     TEXT NOT NULL DEFAULT '',
	head_sha     TEXT NOT NULL,
	fork         INTEGER NOT NULL DEFAULT 0,
	approved_sha TEXT NOT NULL DEFAULT '',
	approved_by  TEXT NOT NULL DEFAULT '',
	approved_at  TEXT,
	status       TEXT NOT NULL,
	status_sha   TEXT NOT NULL DEFAULT '',
	message      TEXT NOT NULL DEFAULT '',
	host         TEXT NOT NULL,
	posted_at    TEXT,
	post_error   TEXT NOT NULL DEFAULT '',
	created_at   TEXT NOT NULL,
	updated_at   TEXT NOT NULL,
	expires_at   TEXT NOT NULL,
	UNIQUE (app_id, number),
	FOREIGN KEY (app_id, team_id) REFERENCES apps (id, team_id) ON DELETE CASCADE,
	FOREIGN KEY (child_app_id, team_id) REFERENCES apps (id, team_id) ON DELETE CASCADE
) STRICT;

CREATE INDEX previews_app ON previews (app_id, team_id);
CREATE INDEX previews_child ON previews (child_app_id, team_id);
CREATE INDEX previews_expires ON previews (expires_at);
