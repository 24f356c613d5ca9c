package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/berthhq/berth"
)

// maxStatsBody bounds the stats document read from the Engine.
const maxStatsBody = 1 << 20

// Stats reads a container's resource counters once (one-shot: the Engine
// answers at once instead of waiting a second for a second reading). A
// stopped container reads as zeros; a missing one is a berth.NotFound error.
func (e *Engine) Stats(ctx context.Context, id string) (berth.ContainerStats, error) {
	const op = "container stats"
	if err := checkObject(op, "container", id); err != nil {
		return berth.ContainerStats{}, err
	}
	res, err := e.cli.ContainerStats(ctx, id, client.ContainerStatsOptions{})
	if err != nil {
		return berth.ContainerStats{}, wrap(op, fmt.Errorf("stats of container %s: %w", id, err))
	}
	defer res.Body.Close()
	var s container.StatsResponse
	if err := json.NewDecoder(io.LimitReader(res.Body, maxStatsBody)).Decode(&s); err != nil {
		return berth.ContainerStats{}, wrap(op, fmt.Errorf("decode stats of container %s: %w", id, err))
	}
	out := statsOf(&s)
	out.ID = id
	return out, nil
}

// statsOf turns the Engine's document into berth's reading.
func statsOf(s *container.StatsResponse) berth.ContainerStats {
	out := berth.ContainerStats{
		Read:        s.Read,
		CPUNanos:    s.CPUStats.CPUUsage.TotalUsage,
		SystemNanos: s.CPUStats.SystemUsage,
		OnlineCPUs:  int(s.CPUStats.OnlineCPUs),
		MemoryBytes: memoryInUse(s.MemoryStats),
		MemoryLimit: s.MemoryStats.Limit,
	}
	if out.OnlineCPUs == 0 {
		out.OnlineCPUs = len(s.CPUStats.CPUUsage.PercpuUsage)
	}
	for _, n := range s.Networks {
		out.RxBytes += n.RxBytes
		out.TxBytes += n.TxBytes
	}
	return out
}

// memoryInUse is the usage without the page cache the kernel can drop, as
// the docker CLI computes it: cgroup v1 reports total_inactive_file, v2
// inactive_file.
func memoryInUse(m container.MemoryStats) uint64 {
	cache, ok := m.Stats["total_inactive_file"]
	if !ok {
		cache = m.Stats["inactive_file"]
	}
	if cache < m.Usage {
		return m.Usage - cache
	}
	return m.Usage
}
