package store

import (
	"testing"
	"time"

	"github.com/berthhq/berth"
)

func sample(teamID, appID string, at time.Time, cpu float64, mem int64) berth.MetricSample {
	return berth.MetricSample{TeamID: teamID, AppID: appID, At: at, CPUPercent: cpu, MemoryBytes: mem, MemoryLimit: 1 << 30,
		RxRate: 10.5, TxRate: 20.25, RxTotal: 1000, TxTotal: 2000, Replicas: 2}
}

func TestMetricSamples(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		a := newFixture(t, s, "acme")
		b := newFixture(t, s, "bravo")
		api := newApp(a.team.ID, "api")
		must(t, s.CreateApp(ctx, api))
		base := t0.Truncate(time.Minute)
		var batch []berth.MetricSample
		for i := range 8 {
			at := base.Add(time.Duration(i) * 15 * time.Second)
			batch = append(batch, sample(a.team.ID, a.app.ID, at, float64(i), int64(i)<<20),
				sample(b.team.ID, b.app.ID, at, 50, 1<<20))
		}
		batch = append(batch, sample(a.team.ID, api.ID, base, 1, 1))
		// Dropped: another team's app under this team, a missing app, and
		// a second sample at the same time.
		batch = append(batch, sample(a.team.ID, b.app.ID, base, 99, 99), sample(a.team.ID, "app_gone", base, 99, 99),
			sample(a.team.ID, a.app.ID, base, 99, 99))
		must(t, s.AddMetricSamples(ctx, batch))

		got, err := s.MetricSamples(ctx, a.team.ID, a.app.ID, base.Add(30*time.Second))
		must(t, err)
		if len(got) != 6 || !got[0].At.Equal(us(base.Add(30*time.Second))) || got[0].CPUPercent != 2 || got[5].MemoryBytes != 7<<20 {
			t.Fatalf("samples %+v", got)
		}
		if g := got[0]; g.TeamID != a.team.ID || g.AppID != a.app.ID || g.RxRate != 10.5 || g.TxRate != 20.25 ||
			g.RxTotal != 1000 || g.TxTotal != 2000 || g.Replicas != 2 || g.MemoryLimit != 1<<30 {
			t.Errorf("sample read back as %+v", g)
		}
		all, err := s.MetricSamples(ctx, a.team.ID, a.app.ID, base)
		must(t, err)
		if len(all) != 8 || all[0].CPUPercent != 0 {
			t.Errorf("the sample at the same time replaced the first: %+v", all[0])
		}
		// Another team's app is invisible under this team.
		if got, err := s.MetricSamples(ctx, a.team.ID, b.app.ID, base); err != nil || len(got) != 0 {
			t.Errorf("team A reads team B's samples: %v, %v", got, err)
		}

		latest, err := s.LatestMetrics(ctx, a.team.ID, base.Add(time.Minute))
		must(t, err)
		if len(latest) != 1 || latest[0].AppID != a.app.ID || latest[0].CPUPercent != 7 {
			t.Errorf("latest since +1m: %+v (api's only sample is stale)", latest)
		}
		latest, err = s.LatestMetrics(ctx, a.team.ID, base)
		must(t, err)
		if len(latest) != 2 {
			t.Errorf("latest since base: %+v", latest)
		}

		every, err := s.AllMetricSamples(ctx, base, base.Add(30*time.Second))
		must(t, err)
		if len(every) != 5 { // 2 of a.app, 2 of b.app, 1 of api
			t.Errorf("all samples: %d, want 5", len(every))
		}

		// Deleting an app deletes its samples.
		must(t, s.DeleteApp(ctx, a.team.ID, api.ID))
		if got, _ := s.AllMetricSamples(ctx, base, base.Add(time.Second)); len(got) != 2 {
			t.Errorf("after deleting api: %d samples at base, want 2", len(got))
		}
	})
}

func TestMetricRollupsAndPrune(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		a := newFixture(t, s, "acme")
		b := newFixture(t, s, "bravo")
		base := t0.Truncate(time.Hour)
		if last, err := s.LastMetricRollup(ctx, time.Minute); err != nil || !last.IsZero() {
			t.Fatalf("last rollup of an empty store: %v, %v", last, err)
		}
		var rollups []berth.MetricSample
		for i := range 5 {
			rollups = append(rollups, sample(a.team.ID, a.app.ID, base.Add(time.Duration(i)*time.Minute), float64(i), 1))
		}
		must(t, s.AddMetricRollups(ctx, time.Minute, rollups))
		must(t, s.AddMetricRollups(ctx, 10*time.Minute, []berth.MetricSample{sample(a.team.ID, a.app.ID, base, 3, 3), sample(b.team.ID, b.app.ID, base, 4, 4)}))
		// Rolling up twice changes nothing.
		must(t, s.AddMetricRollups(ctx, time.Minute, []berth.MetricSample{sample(a.team.ID, a.app.ID, base, 42, 42)}))

		got, err := s.MetricRollups(ctx, a.team.ID, a.app.ID, time.Minute, base.Add(time.Minute))
		must(t, err)
		if len(got) != 4 || got[0].CPUPercent != 1 || !got[3].At.Equal(us(base.Add(4*time.Minute))) {
			t.Fatalf("minute rollups %+v", got)
		}
		if got, _ := s.MetricRollups(ctx, a.team.ID, a.app.ID, time.Minute, base); got[0].CPUPercent != 0 {
			t.Errorf("a second rollup of an interval replaced the first: %+v", got[0])
		}
		if got, _ := s.MetricRollups(ctx, a.team.ID, a.app.ID, 10*time.Minute, base); len(got) != 1 || got[0].CPUPercent != 3 || got[0].Replicas != 2 {
			t.Errorf("ten-minute rollups %+v", got)
		}
		if got, _ := s.MetricRollups(ctx, a.team.ID, b.app.ID, 10*time.Minute, base); len(got) != 0 {
			t.Errorf("team A reads team B's rollups: %+v", got)
		}
		last, err := s.LastMetricRollup(ctx, time.Minute)
		must(t, err)
		if !last.Equal(us(base.Add(4 * time.Minute))) {
			t.Errorf("last minute rollup %v", last)
		}

		must(t, s.AddMetricSamples(ctx, []berth.MetricSample{sample(a.team.ID, a.app.ID, base, 1, 1), sample(a.team.ID, a.app.ID, base.Add(time.Hour), 1, 1)}))
		n, err := s.PruneMetrics(ctx, base.Add(time.Minute), map[time.Duration]time.Time{
			time.Minute: base.Add(2 * time.Minute), 10 * time.Minute: base.Add(time.Second),
		})
		must(t, err)
		if n != 1+2+2 {
			t.Errorf("pruned %d rows, want 5", n)
		}
		if got, _ := s.MetricRollups(ctx, a.team.ID, a.app.ID, time.Minute, base); len(got) != 3 {
			t.Errorf("minute rollups after pruning: %d, want 3", len(got))
		}
		if got, _ := s.MetricSamples(ctx, a.team.ID, a.app.ID, base); len(got) != 1 {
			t.Errorf("samples after pruning: %d, want 1", len(got))
		}
	})
}
