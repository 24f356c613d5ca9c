package metrics_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/metrics"
	"github.com/berthhq/berth/store"
	"github.com/berthhq/berth/store/storetest"
)

// eachStore runs fn on a fresh SQLite store and, when BERTH_TEST_POSTGRES
// holds a DSN, on a fresh PostgreSQL schema.
func eachStore(t *testing.T, fn func(t *testing.T, st *store.Store)) {
	t.Run(store.SQLite, func(t *testing.T) { fn(t, open(t, filepath.Join(t.TempDir(), "berth.db"))) })
	t.Run(store.Postgres, func(t *testing.T) { fn(t, open(t, storetest.Postgres(t))) })
}

func open(t *testing.T, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dsn, bytes.Repeat([]byte{3}, 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// team creates a team with apps of the given names.
func team(t *testing.T, st *store.Store, name string, apps ...string) (*berth.Team, []*berth.App) {
	t.Helper()
	ctx := context.Background()
	tm := &berth.Team{Name: name, CreatedAt: time.Now()}
	if err := st.CreateTeam(ctx, tm); err != nil {
		t.Fatal(err)
	}
	var out []*berth.App
	for _, n := range apps {
		a := &berth.App{TeamID: tm.ID, Name: n, Source: berth.Source{Image: "example/" + n + ":1"}}
		a.SetDefaults()
		if err := st.CreateApp(ctx, a); err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return tm, out
}

// clock is a fake clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeRuntime serves containers and, for each, readings computed from the
// clock: reading(id, now).
type fakeRuntime struct {
	containers []berth.Container
	reading    func(id string, now time.Time) (berth.ContainerStats, error)
	clock      *clock
	labels     map[string]string // the last filter asked for
	mu         sync.Mutex
	inFlight   int
	maxFlight  int
}

func (f *fakeRuntime) Containers(ctx context.Context, labels map[string]string) ([]berth.Container, error) {
	f.labels = labels
	var out []berth.Container
	for _, c := range f.containers {
		match := true
		for k, v := range labels {
			if c.Labels[k] != v {
				match = false
			}
		}
		if match {
			out = append(out, c)
		}
	}
	return out, nil
}

func (f *fakeRuntime) Stats(ctx context.Context, id string) (berth.ContainerStats, error) {
	f.mu.Lock()
	f.inFlight++
	f.maxFlight = max(f.maxFlight, f.inFlight)
	f.mu.Unlock()
	time.Sleep(5 * time.Millisecond)
	f.mu.Lock()
	f.inFlight--
	f.mu.Unlock()
	s, err := f.reading(id, f.clock.Now())
	s.ID = id
	return s, err
}

func replica(id, instance, teamID, appID, state string) berth.Container {
	return berth.Container{ID: id, Name: id, State: state, Labels: map[string]string{
		berth.LabelManaged: "true", berth.LabelInstance: instance, berth.LabelRole: "app",
		berth.LabelTeam: teamID, berth.LabelApp: appID,
	}}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6*math.Max(1, math.Abs(b)) }

func TestSample(t *testing.T) {
	eachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		ta, appsA := team(t, st, "acme", "web", "worker")
		tb, appsB := team(t, st, "bravo", "web")
		web, worker, other := appsA[0], appsA[1], appsB[0]
		clk := &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
		start := clk.Now()
		restarted := false
		rt := &fakeRuntime{clock: clk, containers: []berth.Container{
			replica("web1", "inst", ta.ID, web.ID, "running"),
			replica("web2", "inst", ta.ID, web.ID, "running"),
			replica("worker1", "inst", ta.ID, worker.ID, "running"),
			replica("stopped", "inst", ta.ID, worker.ID, "exited"),
			replica("broken", "inst", ta.ID, worker.ID, "running"),
			replica("b1", "inst", tb.ID, other.ID, "running"),
			replica("elsewhere", "other-instance", ta.ID, web.ID, "running"),
		}}
		// Every replica uses 0.1 s of CPU per second (10% of a core) on a
		// host of 2 CPUs, holds 8 MiB, receives 1000 B/s and sends 500 B/s;
		// "broken" cannot be read; worker1 restarts between the 2nd and 3rd
		// sample (its counters begin again).
		rt.reading = func(id string, now time.Time) (berth.ContainerStats, error) {
			if id == "broken" {
				return berth.ContainerStats{}, errors.New("engine hiccup")
			}
			if id == "stopped" || id == "elsewhere" {
				t.Errorf("read the stats of %s", id)
			}
			secs := now.Sub(start).Seconds() + 100
			if id == "worker1" && restarted {
				secs = 1
			}
			return berth.ContainerStats{Read: now, CPUNanos: uint64(secs * 0.1e9), SystemNanos: uint64(now.Sub(start).Seconds()*2e9) + 1e12,
				OnlineCPUs: 2, MemoryBytes: 8 << 20, MemoryLimit: 64 << 20, RxBytes: uint64(secs * 1000), TxBytes: uint64(secs * 500)}, nil
		}
		s := metrics.New(metrics.Config{Store: st, Runtime: rt, Instance: "inst", Concurrency: 2, Now: clk.Now})

		got, err := s.Sample(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Errorf("first pass stored %+v; rates need two readings", got)
		}
		if rt.labels[berth.LabelInstance] != "inst" || rt.labels[berth.LabelRole] != "app" || rt.labels[berth.LabelManaged] != "true" {
			t.Errorf("listed containers by %v", rt.labels)
		}
		if rt.maxFlight > 2 {
			t.Errorf("%d stats reads at once, want at most 2", rt.maxFlight)
		}
		clk.Add(15 * time.Second)
		got, err = s.Sample(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]berth.MetricSample{
			web.ID:    {CPUPercent: 20, MemoryBytes: 16 << 20, MemoryLimit: 128 << 20, RxRate: 2000, TxRate: 1000, Replicas: 2},
			worker.ID: {CPUPercent: 10, MemoryBytes: 8 << 20, MemoryLimit: 64 << 20, RxRate: 1000, TxRate: 500, Replicas: 1},
			other.ID:  {CPUPercent: 10, MemoryBytes: 8 << 20, MemoryLimit: 64 << 20, RxRate: 1000, TxRate: 500, Replicas: 1},
		}
		if len(got) != 3 {
			t.Fatalf("second pass: %+v, want 3 apps", got)
		}
		for _, g := range got {
			w := want[g.AppID]
			if !near(g.CPUPercent, w.CPUPercent) || g.MemoryBytes != w.MemoryBytes || g.MemoryLimit != w.MemoryLimit ||
				!near(g.RxRate, w.RxRate) || !near(g.TxRate, w.TxRate) || g.Replicas != w.Replicas || !g.At.Equal(clk.Now()) {
				t.Errorf("app %s: %+v, want %+v", g.AppID, g, w)
			}
		}
		// Stored, under each team.
		stored, err := st.MetricSamples(ctx, ta.ID, web.ID, start)
		if err != nil || len(stored) != 1 || !near(stored[0].CPUPercent, 20) || stored[0].RxTotal != 2*115*1000 {
			t.Errorf("team A's web samples: %+v, %v", stored, err)
		}
		if stored, _ := st.MetricSamples(ctx, tb.ID, other.ID, start); len(stored) != 1 {
			t.Errorf("team B's samples: %+v", stored)
		}

		restarted = true
		clk.Add(15 * time.Second)
		got, err = s.Sample(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range got {
			if g.AppID == worker.ID {
				t.Errorf("worker's only replica restarted, its rates are unknown; stored %+v", g)
			}
		}
		if len(got) != 2 {
			t.Errorf("third pass: %+v, want web and bravo's web", got)
		}
		// A deleted app's sample is dropped, the others are stored.
		if err := st.DeleteApp(ctx, tb.ID, other.ID); err != nil {
			t.Fatal(err)
		}
		clk.Add(15 * time.Second)
		if _, err := s.Sample(ctx); err != nil {
			t.Fatal(err)
		}
		if stored, _ := st.MetricSamples(ctx, ta.ID, web.ID, start); len(stored) != 3 {
			t.Errorf("web has %d samples, want 3", len(stored))
		}
	})
}

// TestRollupAndRetention feeds three hours of samples every 15 s through a
// fake clock, rolling up as the sampler does, and checks the averages, the
// series of each range and what retention leaves.
func TestRollupAndRetention(t *testing.T) {
	eachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		ta, apps := team(t, st, "acme", "web")
		tb, appsB := team(t, st, "bravo", "web")
		web := apps[0]
		clk := &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
		start := clk.Now()
		s := metrics.New(metrics.Config{Store: st, Runtime: &fakeRuntime{clock: clk}, Instance: "inst", Now: clk.Now})
		// CPU is the minute of the hour it was sampled in; memory 1 MiB
		// per sample index within the minute (0..3): minute averages are
		// the minute and 1.5 MiB.
		for i := range 3 * 60 * 4 {
			at := clk.Now()
			m := berth.MetricSample{TeamID: ta.ID, AppID: web.ID, At: at, CPUPercent: float64(at.Minute()),
				MemoryBytes: int64(i%4) << 20, RxRate: 100, TxRate: 50, Replicas: 1 + i%2}
			mb := m
			mb.TeamID, mb.AppID, mb.CPUPercent = tb.ID, appsB[0].ID, 99
			if err := st.AddMetricSamples(ctx, []berth.MetricSample{m, mb}); err != nil {
				t.Fatal(err)
			}
			if i%4 == 3 { // once a minute, as the sampler would every pass
				if err := s.Maintain(ctx); err != nil {
					t.Fatal(err)
				}
			}
			clk.Add(15 * time.Second)
		}
		now := clk.Now() // 15:00
		if err := s.Maintain(ctx); err != nil {
			t.Fatal(err)
		}

		raw, err := st.MetricSamples(ctx, ta.ID, web.ID, start)
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) != 2*60*4 || raw[0].At.Before(now.Add(-metrics.RawRetention)) {
			t.Errorf("raw samples kept: %d from %v, want 480 (2 h)", len(raw), raw[0].At)
		}
		minutes, err := st.MetricRollups(ctx, ta.ID, web.ID, time.Minute, start)
		if err != nil {
			t.Fatal(err)
		}
		// Every minute but the last (not over one sampling period ago).
		if len(minutes) != 3*60-1 {
			t.Errorf("%d minute rollups, want 179", len(minutes))
		}
		for i, m := range minutes {
			wantAt := start.Add(time.Duration(i) * time.Minute)
			if !m.At.Equal(wantAt) || !near(m.CPUPercent, float64(wantAt.Minute())) || m.MemoryBytes != 3<<19 ||
				!near(m.RxRate, 100) || m.Replicas != 2 {
				t.Fatalf("minute rollup %d: %+v, want at %v, cpu %d, 1.5 MiB", i, m, wantAt, wantAt.Minute())
			}
		}
		tens, err := st.MetricRollups(ctx, ta.ID, web.ID, 10*time.Minute, start)
		if err != nil {
			t.Fatal(err)
		}
		if len(tens) != 17 || !near(tens[0].CPUPercent, 4.5) || !near(tens[1].CPUPercent, 14.5) {
			t.Errorf("ten-minute rollups: %d (%+v), want 17 averaging minutes 0-9 = 4.5, 10-19 = 14.5", len(tens), tens[:min(2, len(tens))])
		}
		if other, _ := st.MetricRollups(ctx, tb.ID, appsB[0].ID, time.Minute, start); len(other) != len(minutes) || other[0].CPUPercent != 99 {
			t.Errorf("team B's rollups are not its own: %d, %+v", len(other), other[:min(1, len(other))])
		}

		// Series of each range.
		for _, tc := range []struct {
			name        string
			points      int
			first, last time.Time
		}{
			{"1h", 240, now.Add(-time.Hour), now.Add(-15 * time.Second)},
			{"24h", 180, start, now.Add(-time.Minute)},    // 179 rollups + the minute not yet rolled up
			{"7d", 18, start, now.Add(-10 * time.Minute)}, // 17 rollups + the partial last one
		} {
			r, err := metrics.ParseRange(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			got, err := metrics.Series(ctx, st, ta.ID, web.ID, r, now)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.points || !got[0].At.Equal(tc.first) || !got[len(got)-1].At.Equal(tc.last) {
				t.Errorf("%s: %d points from %v to %v, want %d from %v to %v", tc.name, len(got), got[0].At, got[len(got)-1].At, tc.points, tc.first, tc.last)
			}
			for i := 1; i < len(got); i++ {
				if !got[i].At.After(got[i-1].At) {
					t.Fatalf("%s: point %d at %v does not follow %v", tc.name, i, got[i].At, got[i-1].At)
				}
			}
		}
		if _, err := metrics.ParseRange("30d"); !berth.IsKind(err, berth.Invalid) {
			t.Errorf("range 30d: %v, want Invalid", err)
		}
		if r, err := metrics.ParseRange(""); err != nil || r.Name != "1h" {
			t.Errorf("default range %+v, %v", r, err)
		}

		// Two days later: the minute rollups are gone, the ten-minute ones
		// stay until eight days have passed.
		clk.Add(metrics.MinuteRetention + time.Hour)
		if err := s.Maintain(ctx); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.MetricRollups(ctx, ta.ID, web.ID, time.Minute, start); len(got) != 0 {
			t.Errorf("%d minute rollups after 49 h", len(got))
		}
		if got, _ := st.MetricSamples(ctx, ta.ID, web.ID, start); len(got) != 0 {
			t.Errorf("%d raw samples after 49 h", len(got))
		}
		if got, _ := st.MetricRollups(ctx, ta.ID, web.ID, 10*time.Minute, start); len(got) != 18 {
			t.Errorf("%d ten-minute rollups after 49 h, want 18 (the last one rolled up now)", len(got))
		}
		clk.Add(metrics.TenMinuteRetention)
		if err := s.Maintain(ctx); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.MetricRollups(ctx, ta.ID, web.ID, 10*time.Minute, start); len(got) != 0 {
			t.Errorf("%d ten-minute rollups after 8 days", len(got))
		}
	})
}

func TestAverage(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 50, 0, time.UTC)
	in := []berth.MetricSample{
		{TeamID: "t", AppID: "a", At: t0, CPUPercent: 10, MemoryBytes: 100, Replicas: 1, RxTotal: 5},
		{TeamID: "t", AppID: "b", At: t0, CPUPercent: 1},
		{TeamID: "t", AppID: "a", At: t0.Add(5 * time.Second), CPUPercent: 20, MemoryBytes: 300, Replicas: 3, RxTotal: 9},
		{TeamID: "t", AppID: "a", At: t0.Add(15 * time.Second), CPUPercent: 40},
	}
	got := metrics.Average(in, time.Minute)
	if len(got) != 3 {
		t.Fatalf("%+v", got)
	}
	a := got[0]
	if a.AppID != "a" || !a.At.Equal(t0.Truncate(time.Minute)) || a.CPUPercent != 15 || a.MemoryBytes != 200 || a.Replicas != 3 || a.RxTotal != 9 {
		t.Errorf("a's first minute: %+v", a)
	}
	if got[1].AppID != "b" || got[2].AppID != "a" || !got[2].At.Equal(t0.Truncate(time.Minute).Add(time.Minute)) {
		t.Errorf("order: %+v", got)
	}
	if len(metrics.Average(nil, time.Minute)) != 0 {
		t.Error("average of nothing")
	}
}
