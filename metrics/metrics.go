// Package metrics samples per-app resource usage (CPU, memory, network)
// from the runtime into the store and exports it: as series over 1 h, 24 h
// and 7 d for the API and the dashboard's charts, and as Prometheus metrics.
//
// A Sampler reads the counters of every running app replica of this berth
// instance every few seconds (15 by default), sums them per app and writes
// one raw sample per app. Downsampling is stored, not computed on read: the
// sampler also averages the raw samples into 1-minute and 10-minute rollups
// once their interval is over, and prunes what is past retention:
//
//	raw samples          2 hours   (the 1 h range)
//	1-minute averages   48 hours   (the 24 h range)
//	10-minute averages   8 days    (the 7 d range)
//
// A range longer than an hour reads its rollups and averages the raw
// samples taken since the last rollup on the fly, so that its last point
// is as fresh as the 1 h range's.
package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/store"
)

// Retention of each resolution.
const (
	RawRetention       = 2 * time.Hour
	MinuteRetention    = 48 * time.Hour
	TenMinuteRetention = 8 * 24 * time.Hour
)

// DefaultEvery is how often a Sampler samples unless told otherwise.
const DefaultEvery = 15 * time.Second

// steps are the rollup resolutions and how long each is kept.
var steps = []struct {
	step, keep time.Duration
}{{time.Minute, MinuteRetention}, {10 * time.Minute, TenMinuteRetention}}

// Runtime is what the sampler needs of the container runtime (package
// docker implements it).
type Runtime interface {
	// Containers lists containers, in any state, carrying all the labels.
	Containers(ctx context.Context, labels map[string]string) ([]berth.Container, error)
	// Stats reads a container's resource counters once.
	Stats(ctx context.Context, id string) (berth.ContainerStats, error)
}

// Config is what a Sampler needs.
type Config struct {
	Store   *store.Store
	Runtime Runtime
	// Instance is the berth instance whose app containers are sampled.
	Instance string
	// Every is the time between samples; default DefaultEvery.
	Every time.Duration
	// Concurrency bounds the stats reads in flight; default 4.
	Concurrency int
	Log         *slog.Logger
	Now         func() time.Time // default time.Now
}

// Sampler samples the resource usage of apps into the store.
type Sampler struct {
	st       *store.Store
	rt       Runtime
	instance string
	every    time.Duration
	conc     int
	log      *slog.Logger
	now      func() time.Time

	mu   sync.Mutex
	prev map[string]berth.ContainerStats // last reading per container ID
}

// New returns a Sampler.
func New(cfg Config) *Sampler {
	s := &Sampler{st: cfg.Store, rt: cfg.Runtime, instance: cfg.Instance, every: cfg.Every,
		conc: cfg.Concurrency, log: cfg.Log, now: cfg.Now, prev: map[string]berth.ContainerStats{}}
	if s.every <= 0 {
		s.every = DefaultEvery
	}
	if s.conc <= 0 {
		s.conc = 4
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.log = s.log.With("component", "metrics")
	return s
}

// Run samples, rolls up and prunes every s.every until ctx ends.
func (s *Sampler) Run(ctx context.Context) {
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, s.every)
		if _, err := s.Sample(pctx); err != nil && ctx.Err() == nil {
			s.log.Warn("sample app metrics", "err", err)
		}
		if err := s.Maintain(pctx); err != nil && ctx.Err() == nil {
			s.log.Warn("roll up app metrics", "err", err)
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sample reads the counters of every running app replica of the instance,
// sums them per app and stores one sample per app, which it returns. CPU and
// network rates need a previous reading of a replica: an app none of whose
// replicas was read before is remembered, not stored, until the next call.
// A replica whose counters cannot be read is left out of its app's sums.
func (s *Sampler) Sample(ctx context.Context) ([]berth.MetricSample, error) {
	cs, err := s.rt.Containers(ctx, map[string]string{berth.LabelManaged: "true", berth.LabelInstance: s.instance, berth.LabelRole: "app"})
	if err != nil {
		return nil, fmt.Errorf("list app containers: %w", err)
	}
	at := s.now()
	var running []berth.Container
	for _, c := range cs {
		if c.Running() && c.Labels[berth.LabelTeam] != "" && c.Labels[berth.LabelApp] != "" {
			running = append(running, c)
		}
	}
	readings := make([]berth.ContainerStats, len(running))
	errs := make([]error, len(running))
	sem := make(chan struct{}, s.conc)
	var wg sync.WaitGroup
	for i, c := range running {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			readings[i], errs[i] = s.rt.Stats(ctx, c.ID)
		})
	}
	wg.Wait()

	s.mu.Lock()
	defer s.mu.Unlock()
	type key struct{ team, app string }
	sums := map[key]*berth.MetricSample{}
	rated := map[key]bool{}
	var order []key
	next := make(map[string]berth.ContainerStats, len(running))
	for i, c := range running {
		if errs[i] != nil {
			if !berth.IsKind(errs[i], berth.NotFound) { // gone meanwhile: nothing to say
				s.log.Warn("read container stats", "container", c.Name, "err", errs[i])
			}
			continue
		}
		cur := readings[i]
		next[c.ID] = cur
		k := key{c.Labels[berth.LabelTeam], c.Labels[berth.LabelApp]}
		m := sums[k]
		if m == nil {
			m = &berth.MetricSample{TeamID: k.team, AppID: k.app, At: at}
			sums[k] = m
			order = append(order, k)
		}
		m.Replicas++
		m.MemoryBytes += int64(cur.MemoryBytes)
		m.MemoryLimit += int64(cur.MemoryLimit)
		m.RxTotal += int64(cur.RxBytes)
		m.TxTotal += int64(cur.TxBytes)
		if prev, ok := s.prev[c.ID]; ok {
			cpu, rx, tx, ok := rates(prev, cur)
			if ok {
				m.CPUPercent += cpu
				m.RxRate += rx
				m.TxRate += tx
				rated[k] = true
			}
		}
	}
	s.prev = next
	var out []berth.MetricSample
	for _, k := range order {
		if rated[k] {
			out = append(out, *sums[k])
		}
	}
	if err := s.st.AddMetricSamples(ctx, out); err != nil {
		return nil, fmt.Errorf("store metric samples: %w", err)
	}
	return out, nil
}

// rates computes a replica's CPU percentage (100 = one core) and network
// bytes per second between two readings, as `docker stats` does: CPU time
// over host CPU time times the CPUs, or over wall time when the host's is
// unknown. ok is false when the readings cannot be compared (the container
// restarted and its counters began again, or no time passed).
func rates(prev, cur berth.ContainerStats) (cpu, rx, tx float64, ok bool) {
	wall := cur.Read.Sub(prev.Read).Seconds()
	if wall <= 0 || cur.CPUNanos < prev.CPUNanos || cur.RxBytes < prev.RxBytes || cur.TxBytes < prev.TxBytes {
		return 0, 0, 0, false
	}
	used := float64(cur.CPUNanos - prev.CPUNanos)
	if cur.SystemNanos > prev.SystemNanos && cur.OnlineCPUs > 0 {
		cpu = used / float64(cur.SystemNanos-prev.SystemNanos) * float64(cur.OnlineCPUs) * 100
	} else {
		cpu = used / (wall * 1e9) * 100
	}
	return cpu, float64(cur.RxBytes-prev.RxBytes) / wall, float64(cur.TxBytes-prev.TxBytes) / wall, true
}

// Maintain averages the raw samples of every interval that is over (and
// was not yet) into the 1-minute and 10-minute rollups, then deletes what
// is past retention. An interval counts as over one sampling period after
// its end, so that a sample being taken as it ended is in it.
func (s *Sampler) Maintain(ctx context.Context) error {
	now := s.now()
	for _, st := range steps {
		last, err := s.st.LastMetricRollup(ctx, st.step)
		if err != nil {
			return err
		}
		// From the interval after the last one rolled up, even when the
		// sampler was stopped for longer than raw samples are kept: they
		// are pruned below, after this.
		from := now.Add(-RawRetention).Truncate(st.step)
		if !last.IsZero() {
			from = last.Add(st.step)
		}
		to := now.Add(-s.every).Truncate(st.step)
		if !to.After(from) {
			continue
		}
		raw, err := s.st.AllMetricSamples(ctx, from, to)
		if err != nil {
			return err
		}
		if err := s.st.AddMetricRollups(ctx, st.step, Average(raw, st.step)); err != nil {
			return err
		}
	}
	before := map[time.Duration]time.Time{}
	for _, st := range steps {
		before[st.step] = now.Add(-st.keep)
	}
	n, err := s.st.PruneMetrics(ctx, now.Add(-RawRetention), before)
	if err != nil {
		return err
	}
	if n > 0 {
		s.log.Debug("pruned app metrics", "rows", n)
	}
	return nil
}

// Average groups samples (oldest first) by team, app and interval of step,
// and returns one per group, At being the interval's start: the mean of the
// gauges and rates, the largest replica count and the last totals. The
// result is ordered by interval, then by first appearance.
func Average(samples []berth.MetricSample, step time.Duration) []berth.MetricSample {
	type key struct {
		team, app string
		at        time.Time
	}
	type acc struct {
		m           berth.MetricSample
		n           int
		cpu, rx, tx float64
		mem, lim    float64
	}
	groups := map[key]*acc{}
	var order []key
	for _, m := range samples {
		k := key{m.TeamID, m.AppID, m.At.Truncate(step).UTC()}
		a := groups[k]
		if a == nil {
			a = &acc{m: berth.MetricSample{TeamID: m.TeamID, AppID: m.AppID, At: k.at}}
			groups[k] = a
			order = append(order, k)
		}
		a.n++
		a.cpu += m.CPUPercent
		a.rx += m.RxRate
		a.tx += m.TxRate
		a.mem += float64(m.MemoryBytes)
		a.lim += float64(m.MemoryLimit)
		a.m.Replicas = max(a.m.Replicas, m.Replicas)
		a.m.RxTotal, a.m.TxTotal = m.RxTotal, m.TxTotal
	}
	out := make([]berth.MetricSample, 0, len(order))
	for _, k := range order {
		a := groups[k]
		n := float64(a.n)
		a.m.CPUPercent, a.m.RxRate, a.m.TxRate = a.cpu/n, a.rx/n, a.tx/n
		a.m.MemoryBytes, a.m.MemoryLimit = int64(a.mem/n), int64(a.lim/n)
		out = append(out, a.m)
	}
	return out
}
