package berth

import "time"

// ContainerStats is one reading of a container's resource counters, as a
// runtime reports it. CPU and network figures are cumulative since the
// container started: a rate needs two readings.
type ContainerStats struct {
	ID          string
	Read        time.Time // when the runtime took the reading
	CPUNanos    uint64    // CPU time the container used, nanoseconds
	SystemNanos uint64    // CPU time of the whole host, nanoseconds (0 when unknown)
	OnlineCPUs  int       // CPUs of the host (0 when unknown)
	MemoryBytes uint64    // memory in use, page cache excluded (what `docker stats` shows)
	MemoryLimit uint64    // memory limit (the host's memory when the container has none)
	RxBytes     uint64    // bytes received, summed over interfaces
	TxBytes     uint64    // bytes sent, summed over interfaces
}

// MetricSample is the resource usage of one app at one moment, summed over
// its running replicas. Rates are per second over the time since the
// previous sample; totals are the replicas' cumulative counters, which drop
// when replicas are replaced (Prometheus counters may reset).
type MetricSample struct {
	TeamID      string    `json:"-"`
	AppID       string    `json:"-"`
	At          time.Time `json:"time"`
	CPUPercent  float64   `json:"cpu_percent"`  // 100 = one core busy
	MemoryBytes int64     `json:"memory_bytes"` // in use, page cache excluded
	MemoryLimit int64     `json:"memory_limit_bytes"`
	RxRate      float64   `json:"rx_bytes_per_second"`
	TxRate      float64   `json:"tx_bytes_per_second"`
	RxTotal     int64     `json:"-"`
	TxTotal     int64     `json:"-"`
	Replicas    int       `json:"replicas"`
}
