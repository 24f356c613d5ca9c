-- Resource usage of apps (CPU, memory, network), summed over replicas:
-- raw samples taken every --metrics-every, and their averages per minute
-- (step 60) and per ten minutes (step 600). Rows go with their app; old
-- rows are pruned by the sampler (see package metrics). PostgreSQL dialect.

CREATE TABLE metric_samples (
	team_id      TEXT NOT NULL,
	app_id       TEXT NOT NULL,
	at           TIMESTAMPTZ NOT NULL,
	cpu_percent  DOUBLE PRECISION NOT NULL, -- 100 = one core
	memory       BIGINT NOT NULL, -- bytes in use, page cache excluded
	memory_limit BIGINT NOT NULL, -- bytes
	rx_rate      DOUBLE PRECISION NOT NULL, -- bytes per second
	tx_rate      DOUBLE PRECISION NOT NULL,
	rx_total     BIGINT NOT NULL, -- the replicas' cumulative counters
	tx_total     BIGINT NOT NULL,
	replicas     BIGINT NOT NULL,
	PRIMARY KEY (team_id, app_id, at),
	FOREIGN KEY (app_id, team_id) REFERENCES apps (id, team_id) ON DELETE CASCADE
);

CREATE INDEX metric_samples_at ON metric_samples (at);

CREATE TABLE metric_rollups (
	team_id      TEXT NOT NULL,
	app_id       TEXT NOT NULL,
	step         BIGINT NOT NULL, -- seconds: 60 or 600
	at           TIMESTAMPTZ NOT NULL, -- start of the interval
	cpu_percent  DOUBLE PRECISION NOT NULL,
	memory       BIGINT NOT NULL,
	memory_limit BIGINT NOT NULL,
	rx_rate      DOUBLE PRECISION NOT NULL,
	tx_rate      DOUBLE PRECISION NOT NULL,
	replicas     BIGINT NOT NULL,
	PRIMARY KEY (team_id, app_id, step, at),
	FOREIGN KEY (app_id, team_id) REFERENCES apps (id, team_id) ON DELETE CASCADE
);

CREATE INDEX metric_rollups_step_at ON metric_rollups (step, at);
