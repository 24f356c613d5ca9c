package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/auth"
	"github.com/berthhq/berth/metrics"
)

// metricsRoutes are the routes of apps' resource usage.
func metricsRoutes() []route {
	return []route{
		{"GET", "/api/v1/apps/{app}/metrics", berth.ScopeRead, (*Server).appMetrics, ""},
	}
}

// MetricSeries is an app's resource usage over a range, oldest first.
type MetricSeries struct {
	App   string `json:"app"`
	Range string `json:"range"`
	// StepSeconds is what each point averages: 0 for raw samples.
	StepSeconds int                  `json:"step_seconds"`
	Points      []berth.MetricSample `json:"points"`
}

func (s *Server) appMetrics(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	rng, err := metrics.ParseRange(r.URL.Query().Get("range"))
	if err != nil {
		return err
	}
	most := 0
	if v := r.URL.Query().Get("points"); v != "" {
		if most, err = strconv.Atoi(v); err != nil || most < 10 || most > 10000 {
			return berth.E("read query", berth.Invalid, "points must be a number from 10 to 10000")
		}
	}
	points, err := metrics.Series(r.Context(), s.store, p.Team.ID, a.ID, rng, s.now())
	if err != nil {
		return fmt.Errorf("metrics of %s: %w", a.Name, err)
	}
	step := rng.Step
	if most > 0 && len(points) > most {
		// Whole seconds, and never finer than the stored step.
		step = max(step, (rng.Span/time.Duration(most) + time.Second - 1).Truncate(time.Second))
		points = metrics.Average(points, step)
	}
	if points == nil {
		points = []berth.MetricSample{}
	}
	return writeJSON(w, http.StatusOK, MetricSeries{App: a.Name, Range: rng.Name, StepSeconds: int(step / time.Second), Points: points})
}

// PrometheusHandler serves GET /metrics in the Prometheus text format. It
// needs the credentials of any API route and the read permission, and
// exposes the newest sample, taken within stale, of each app of the
// caller's team that the caller may see (a member narrowed to some projects
// sees theirs). Callers with the admin permission also get the server's own
// Go runtime and process metrics.
func (s *Server) PrometheusHandler(stale time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		reg, err := s.prometheusRegistry(r, stale)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}).ServeHTTP(w, r)
	})
}

func (s *Server) prometheusRegistry(r *http.Request, stale time.Duration) (*prometheus.Registry, error) {
	ctx := r.Context()
	p, err := auth.Authenticate(ctx, s.store, r, s.now())
	if err != nil {
		return nil, err
	}
	if p.MustEnrol2FA {
		return nil, berth.E("authorize", berth.Forbidden, "team %s requires two-factor authentication: turn it on first", p.Team.Name)
	}
	if !p.Can(berth.ScopeRead) {
		return nil, berth.E("authorize", berth.Forbidden, "permission %q needed: your role or token does not give it", berth.ScopeRead)
	}
	if p.Role.Narrowable() {
		if p.Projects, err = s.store.MemberProjects(ctx, p.Team.ID, p.User.ID); err != nil {
			return nil, err
		}
	}
	// Previews included: they use CPU and memory like any app.
	all, err := s.store.AppsWithPreviews(ctx, p.Team.ID)
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	var apps []berth.App
	for _, a := range all {
		if sees(p, a.ProjectID) {
			apps = append(apps, a)
		}
	}
	c, err := metrics.Export(ctx, s.store, p.Team, apps, s.now(), stale)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	if p.Can(berth.ScopeAdmin) {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return reg, nil
}
