package store

import (
	"context"
	"time"

	"github.com/berthhq/berth"
)

// Metrics: raw samples of apps' resource usage (metric_samples) and their
// averages over fixed steps (metric_rollups). Package metrics decides what
// to keep; the store only writes, reads and deletes rows.

const sampleColumns = `team_id, app_id, at, cpu_percent, memory, memory_limit, rx_rate, tx_rate, rx_total, tx_total, replicas`

const rollupColumns = `team_id, app_id, at, cpu_percent, memory, memory_limit, rx_rate, tx_rate, replicas`

func scanSample(sc scanner) (berth.MetricSample, error) {
	var m berth.MetricSample
	err := sc.Scan(&m.TeamID, &m.AppID, scanTime{&m.At}, &m.CPUPercent, &m.MemoryBytes, &m.MemoryLimit,
		&m.RxRate, &m.TxRate, &m.RxTotal, &m.TxTotal, &m.Replicas)
	return m, err
}

func scanRollup(sc scanner) (berth.MetricSample, error) {
	var m berth.MetricSample
	err := sc.Scan(&m.TeamID, &m.AppID, scanTime{&m.At}, &m.CPUPercent, &m.MemoryBytes, &m.MemoryLimit,
		&m.RxRate, &m.TxRate, &m.Replicas)
	return m, err
}

// AddMetricSamples stores raw samples, each under its own team and app. A
// sample of an app the team no longer has (deleted meanwhile) is dropped,
// and so is a second sample of an app at the same time.
func (s *Store) AddMetricSamples(ctx context.Context, samples []berth.MetricSample) error {
	const op = "add metric samples"
	if len(samples) == 0 {
		return nil
	}
	return s.tx(ctx, func(d db) error {
		for _, m := range samples {
			_, err := d.exec(ctx, `INSERT INTO metric_samples (`+sampleColumns+`)
				SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM apps WHERE id = ? AND team_id = ?)
				ON CONFLICT (team_id, app_id, at) DO NOTHING`,
				m.TeamID, m.AppID, m.At, m.CPUPercent, m.MemoryBytes, m.MemoryLimit, m.RxRate, m.TxRate,
				m.RxTotal, m.TxTotal, m.Replicas, m.AppID, m.TeamID)
			if err != nil {
				return dbError(op, err)
			}
		}
		return nil
	})
}

// AddMetricRollups stores averages over step, each under its own team and
// app, At being the start of its interval. Rows that exist already are
// kept, so that rolling an interval up twice changes nothing; rows of apps
// deleted meanwhile are dropped.
func (s *Store) AddMetricRollups(ctx context.Context, step time.Duration, rollups []berth.MetricSample) error {
	const op = "add metric rollups"
	if len(rollups) == 0 {
		return nil
	}
	secs := int64(step / time.Second)
	return s.tx(ctx, func(d db) error {
		for _, m := range rollups {
			_, err := d.exec(ctx, `INSERT INTO metric_rollups (step, `+rollupColumns+`)
				SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM apps WHERE id = ? AND team_id = ?)
				ON CONFLICT (team_id, app_id, step, at) DO NOTHING`,
				secs, m.TeamID, m.AppID, m.At, m.CPUPercent, m.MemoryBytes, m.MemoryLimit, m.RxRate, m.TxRate,
				m.Replicas, m.AppID, m.TeamID)
			if err != nil {
				return dbError(op, err)
			}
		}
		return nil
	})
}

// MetricSamples lists an app's raw samples taken at or after since, oldest
// first.
func (s *Store) MetricSamples(ctx context.Context, teamID, appID string, since time.Time) ([]berth.MetricSample, error) {
	return queryAll(ctx, s.reader(), "list metric samples", scanSample, `SELECT `+sampleColumns+` FROM metric_samples
		WHERE team_id = ? AND app_id = ? AND at >= ? ORDER BY at`, teamID, appID, since)
}

// MetricRollups lists an app's averages over step whose interval starts at
// or after since, oldest first.
func (s *Store) MetricRollups(ctx context.Context, teamID, appID string, step time.Duration, since time.Time) ([]berth.MetricSample, error) {
	return queryAll(ctx, s.reader(), "list metric rollups", scanRollup, `SELECT `+rollupColumns+` FROM metric_rollups
		WHERE team_id = ? AND app_id = ? AND step = ? AND at >= ? ORDER BY at`, teamID, appID, int64(step/time.Second), since)
}

// LatestMetrics returns the newest raw sample of each of the team's apps,
// among those taken at or after since (older ones are stale: the app no
// longer runs).
func (s *Store) LatestMetrics(ctx context.Context, teamID string, since time.Time) ([]berth.MetricSample, error) {
	return queryAll(ctx, s.reader(), "latest metrics", scanSample, `SELECT `+sampleColumns+` FROM metric_samples m
		WHERE m.team_id = ? AND m.at >= ?
		AND m.at = (SELECT MAX(x.at) FROM metric_samples x WHERE x.team_id = m.team_id AND x.app_id = m.app_id)
		ORDER BY m.app_id`, teamID, since)
}

// AllMetricSamples lists the raw samples of every team taken in [from, to),
// oldest first. It is for the rollup, which averages them per app; nothing
// a client asks for reaches it.
func (s *Store) AllMetricSamples(ctx context.Context, from, to time.Time) ([]berth.MetricSample, error) {
	return queryAll(ctx, s.reader(), "list all metric samples", scanSample, `SELECT `+sampleColumns+` FROM metric_samples
		WHERE at >= ? AND at < ? ORDER BY at, team_id, app_id`, from, to)
}

// LastMetricRollup returns the start of the newest interval rolled up over
// step, of any team; the zero time when there is none.
func (s *Store) LastMetricRollup(ctx context.Context, step time.Duration) (time.Time, error) {
	var t time.Time
	err := s.reader().row(ctx, `SELECT MAX(at) FROM metric_rollups WHERE step = ?`, int64(step/time.Second)).Scan(scanTime{&t})
	return t, dbError("last metric rollup", err)
}

// PruneMetrics deletes, for every team, the raw samples taken before
// rawBefore and the rollups over each step whose interval starts before
// before[step]. It returns how many rows went.
func (s *Store) PruneMetrics(ctx context.Context, rawBefore time.Time, before map[time.Duration]time.Time) (int64, error) {
	const op = "prune metrics"
	n, err := s.writer().affected(ctx, `DELETE FROM metric_samples WHERE at < ?`, rawBefore)
	if err != nil {
		return 0, dbError(op, err)
	}
	for step, t := range before {
		m, err := s.writer().affected(ctx, `DELETE FROM metric_rollups WHERE step = ? AND at < ?`, int64(step/time.Second), t)
		if err != nil {
			return n, dbError(op, err)
		}
		n += m
	}
	return n, nil
}
