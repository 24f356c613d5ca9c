package docker

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

func TestStatsOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		mem  uint64
		cpus int
		rx   uint64
	}{
		{"cgroup v1", `{"read":"2025-03-01T12:00:00Z","cpu_stats":{"cpu_usage":{"total_usage":500},"system_cpu_usage":9000,"online_cpus":2},
			"memory_stats":{"usage":1000,"limit":4000,"stats":{"total_inactive_file":300,"inactive_file":100}},
			"networks":{"eth0":{"rx_bytes":10,"tx_bytes":20},"eth1":{"rx_bytes":5,"tx_bytes":1}}}`, 700, 2, 15},
		{"cgroup v2", `{"cpu_stats":{"cpu_usage":{"total_usage":500,"percpu_usage":[1,2,3]}},
			"memory_stats":{"usage":1000,"stats":{"inactive_file":100}}}`, 900, 3, 0},
		{"cache above usage", `{"memory_stats":{"usage":100,"stats":{"inactive_file":400}}}`, 100, 0, 0},
		{"stopped", `{"read":"0001-01-01T00:00:00Z","memory_stats":{}}`, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s container.StatsResponse
			if err := json.Unmarshal([]byte(tc.doc), &s); err != nil {
				t.Fatal(err)
			}
			got := statsOf(&s)
			if got.MemoryBytes != tc.mem || got.OnlineCPUs != tc.cpus || got.RxBytes != tc.rx {
				t.Errorf("got %+v: want memory %d, %d CPUs, rx %d", got, tc.mem, tc.cpus, tc.rx)
			}
		})
	}
	var s container.StatsResponse
	_ = json.Unmarshal([]byte(`{"read":"2025-03-01T12:00:00Z","cpu_stats":{"cpu_usage":{"total_usage":500},"system_cpu_usage":9000},"memory_stats":{"limit":4000},"networks":{"eth0":{"tx_bytes":20}}}`), &s)
	got := statsOf(&s)
	if !got.Read.Equal(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)) || got.CPUNanos != 500 || got.SystemNanos != 9000 || got.MemoryLimit != 4000 || got.TxBytes != 20 {
		t.Errorf("got %+v", got)
	}
}
