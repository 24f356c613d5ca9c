-- Push to deploy: each app's webhook settings (a sealed secret, the branch
-- filter, the watch paths) and the record of every delivery to its webhook
-- URL. A delivery ID counts once per app and provider among the deliveries
-- that were accepted (a rejected or failed one may come again); the unique
-- index is what makes two identical deliveries arriving together deploy
-- once. Rows go with their app. PostgreSQL dialect.

CREATE TABLE app_webhooks (
	app_id     TEXT PRIMARY KEY,
	team_id    TEXT NOT NULL,
	secret     BYTEA,                    -- sealed; NULL: no secret, no webhook accepted
	branches   TEXT NOT NULL DEFAULT '[]', -- JSON array of names or globs
	paths      TEXT NOT NULL DEFAULT '[]', -- JSON array of watch paths
	updated_at TIMESTAMPTZ NOT NULL,
	FOREIGN KEY (app_id, team_id) REFERENCES apps (id, team_id) ON DELETE CASCADE
);

CREATE TABLE webhook_deliveries (
	id            TEXT PRIMARY KEY,
	team_id       TEXT NOT NULL,
	app_id        TEXT NOT NULL,
	provider      TEXT NOT NULL DEFAULT '',
	delivery_id   TEXT NOT NULL DEFAULT '',
	event         TEXT NOT NULL DEFAULT '',
	received_at   TIMESTAMPTZ NOT NULL,
	outcome       TEXT NOT NULL, -- deployed, coalesced, ignored, rejected, failed
	reason        TEXT NOT NULL DEFAULT '',
	ref           TEXT NOT NULL DEFAULT '',
	commit_id     TEXT NOT NULL DEFAULT '',
	deployment_id TEXT NOT NULL DEFAULT '',
	FOREIGN KEY (app_id, team_id) REFERENCES apps (id, team_id) ON DELETE CASCADE
);

CREATE UNIQUE INDEX webhook_deliveries_once ON webhook_deliveries (app_id, provider, delivery_id)
	WHERE outcome NOT IN ('rejected', 'failed');
CREATE INDEX webhook_deliveries_app ON webhook_deliveries (app_id, team_id, received_at);
CREATE INDEX webhook_deliveries_deployment ON webhook_deliveries (deployment_id) WHERE deployment_id <> '';
