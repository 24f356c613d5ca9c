-- Resource usage of apps (CPU, memory, network), summed over replicas:
-- raw samples taken every --metrics-every, and their averages per minute
-- (step 60) and per ten minutes (step 600). Rows go with their app; old
-- rows are pruned by the sampler (see package metrics). SQLite dialect.

CREATE TABLE metric_samples (
	team_id      TEXT NOT NULL,
	app_id       TEXT NOT NULL,
	at           TEXT NOT NULL,
	cpu_percent  REAL NOT NULL,    -- 100 = one core
	memory       INTEGER NOT NULL, -- bytes in use, page cache excluded
	memory_limit INTEGER NOT NULL, -- bytes
	rx_rate      REAL NOT NULL,    -- bytes per second
	tx_rate      REAL NOT NULL,
	rx_total     INTEGER NOT NULL, -- the replicas' cumulative counters
	tx_total     INTEGER NOT NULL,
	replicas     INTEGER NOT NULL,
	PRIMARY KEY (team_id, app_id, at),
	FOREIGN KEY (app_id, team_id) REFERENCES apps (id, team_id) ON DELETE CASCADE
) STRICT;

CREATE INDEX metric_samples_at ON metric_samples (at);

CREATE TABLE metric_rollups (
	team_id      TEXT NOT NULL,
	app_id       TEXT NOT NULL,
	step         INTEGER NOT NULL, -- seconds: 60 or 600
	at           TEXT NOT NULL,    -- start of the interval
	cpu_percent  REAL NOT NULL,
	memory       INTEGER NOT NULL,
	memory_limit INTEGER NOT NULL,
	rx_rate      REAL NOT NULL,
	tx_rate      REAL NOT NULL,
	replicas     INTEGER NOT NULL,
	PRIMARY KEY (team_id, app_id, step, at),
	FOREIGN KEY (app_id, team_id) REFERENCES apps (id, team_id) ON DELETE CASCADE
) STRICT;

CREATE INDEX metric_rollups_step_at ON metric_rollups (step, at);
