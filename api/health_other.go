//go:build !linux

package api

// diskUsage, memory and loadAverage are read from Linux only; elsewhere the
// health answer leaves them out.
func diskUsage(string) *DiskUsage { return nil }
func memory() *Memory             { return nil }
func loadAverage() []float64      { return nil }
