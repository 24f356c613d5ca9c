package metrics

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/store"
)

// The Prometheus metrics of an app; every one has the labels app and team
// (names).
var (
	descCPU = prometheus.NewDesc("berth_app_cpu_percent",
		"CPU used by the app's replicas, percent of one core, over the last sampling period.", []string{"app", "team"}, nil)
	descMemory = prometheus.NewDesc("berth_app_memory_bytes",
		"Memory in use by the app's replicas, page cache excluded.", []string{"app", "team"}, nil)
	descMemoryLimit = prometheus.NewDesc("berth_app_memory_limit_bytes",
		"Memory limit of the app's replicas, summed (the host's memory for each replica without a limit).", []string{"app", "team"}, nil)
	descRx = prometheus.NewDesc("berth_app_network_receive_bytes_total",
		"Bytes received by the app's running replicas since they started (resets when replicas are replaced).", []string{"app", "team"}, nil)
	descTx = prometheus.NewDesc("berth_app_network_transmit_bytes_total",
		"Bytes sent by the app's running replicas since they started (resets when replicas are replaced).", []string{"app", "team"}, nil)
	descReplicas = prometheus.NewDesc("berth_app_replicas",
		"Running replicas of the app at the last sample.", []string{"app", "team"}, nil)
)

// exported is a prometheus.Collector of samples read beforehand.
type exported struct {
	team    string
	names   map[string]string // app ID → name
	samples []berth.MetricSample
}

// Export reads the newest sample of each of apps (apps of team) taken
// within stale of now, and returns a collector that exposes them. Apps
// outside apps are left out, so a caller narrowed to some projects passes
// only the apps it may see.
func Export(ctx context.Context, st *store.Store, team *berth.Team, apps []berth.App, now time.Time, stale time.Duration) (prometheus.Collector, error) {
	samples, err := st.LatestMetrics(ctx, team.ID, now.Add(-stale))
	if err != nil {
		return nil, fmt.Errorf("read latest metrics: %w", err)
	}
	names := make(map[string]string, len(apps))
	for _, a := range apps {
		if a.TeamID == team.ID {
			names[a.ID] = a.Name
		}
	}
	return &exported{team: team.Name, names: names, samples: samples}, nil
}

func (e *exported) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCPU, descMemory, descMemoryLimit, descRx, descTx, descReplicas} {
		ch <- d
	}
}

func (e *exported) Collect(ch chan<- prometheus.Metric) {
	for _, m := range e.samples {
		name, ok := e.names[m.AppID]
		if !ok {
			continue
		}
		for _, v := range []struct {
			desc *prometheus.Desc
			typ  prometheus.ValueType
			val  float64
		}{
			{descCPU, prometheus.GaugeValue, m.CPUPercent},
			{descMemory, prometheus.GaugeValue, float64(m.MemoryBytes)},
			{descMemoryLimit, prometheus.GaugeValue, float64(m.MemoryLimit)},
			{descRx, prometheus.CounterValue, float64(m.RxTotal)},
			{descTx, prometheus.CounterValue, float64(m.TxTotal)},
			{descReplicas, prometheus.GaugeValue, float64(m.Replicas)},
		} {
			ch <- prometheus.MustNewConstMetric(v.desc, v.typ, v.val, name, e.team)
		}
	}
}
