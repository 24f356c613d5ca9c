package api

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// diskUsage reads the space of the file system holding dir; nil when it
// cannot.
func diskUsage(dir string) *DiskUsage {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return nil
	}
	bs := uint64(st.Bsize)
	return &DiskUsage{Path: dir, TotalBytes: st.Blocks * bs, FreeBytes: st.Bavail * bs}
}

// memory reads /proc/meminfo; nil when it cannot.
func memory() *Memory {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var m Memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "MemTotal":
			m.TotalBytes = n << 10
		case "MemAvailable":
			m.AvailableBytes = n << 10
		}
	}
	if m.TotalBytes == 0 {
		return nil
	}
	return &m
}

// loadAverage reads /proc/loadavg; nil when it cannot.
func loadAverage() []float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return nil
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return nil
	}
	out := make([]float64, 3)
	for i := range out {
		if out[i], err = strconv.ParseFloat(f[i], 64); err != nil {
			return nil
		}
	}
	return out
}
