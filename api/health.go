package api

import (
	"context"
	"net/http"
	"runtime"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/auth"
)

// HealthProbe is what GET /api/v1/server/health looks at: the container
// engine (Docker answers its ping) and the data directory's disk. A nil
// Docker or an empty DataDir leaves that part out.
type HealthProbe struct {
	Docker  func(ctx context.Context) error
	DataDir string
}

// ServerHealth is the health of the machine berth runs on.
type ServerHealth struct {
	Docker      string     `json:"docker"` // "ok", "unreachable" or "unknown"
	DockerError string     `json:"docker_error,omitempty"`
	Disk        *DiskUsage `json:"disk,omitempty"`
	Memory      *Memory    `json:"memory,omitempty"`
	CPUs        int        `json:"cpus"`
	Load        []float64  `json:"load,omitempty"` // 1, 5 and 15 minute load averages
	CheckedAt   time.Time  `json:"checked_at"`
}

// DiskUsage is the space of the file system holding the data directory.
type DiskUsage struct {
	Path       string `json:"path"`
	TotalBytes uint64 `json:"total_bytes"`
	FreeBytes  uint64 `json:"free_bytes"`
}

// Memory is the machine's memory.
type Memory struct {
	TotalBytes     uint64 `json:"total_bytes"`
	AvailableBytes uint64 `json:"available_bytes"`
}

func healthRoutes() []route {
	return []route{{"GET", "/api/v1/server/health", berth.ScopeRead, (*Server).serverHealth, ""}}
}

func (s *Server) serverHealth(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	h := ServerHealth{Docker: "unknown", CPUs: runtime.NumCPU(), CheckedAt: s.now().UTC()}
	if s.health.Docker != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		err := s.health.Docker(ctx)
		cancel()
		h.Docker = "ok"
		if err != nil {
			// The error names a socket or a host, which a member of any
			// team may see as much as the server's operator.
			h.Docker, h.DockerError = "unreachable", berth.ErrorMessage(err)
		}
	}
	if s.health.DataDir != "" {
		h.Disk = diskUsage(s.health.DataDir)
	}
	h.Memory, h.Load = memory(), loadAverage()
	return writeJSON(w, http.StatusOK, h)
}
