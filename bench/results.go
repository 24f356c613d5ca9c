package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// results is the benchmark's report: the headline keys the issue names
// (null when not measured), each checked against its target, and the
// details behind them.
type results struct {
	Mode      string    `json:"mode"` // "full" or "quick"
	StartedAt time.Time `json:"started_at"`
	DurationS float64   `json:"duration_s"`
	Machine   machine   `json:"machine"`

	DeployOverheadRatio   *float64 `json:"deploy_overhead_ratio"`
	FailedRequests        *int64   `json:"failed_requests"`
	TotalRequests         *int64   `json:"total_requests"`
	ProxyRPSRatioVsDirect *float64 `json:"proxy_rps_ratio_vs_direct"`
	ProxyRPSRatioVsNginx  *float64 `json:"proxy_rps_ratio_vs_nginx"`
	ProxyP99AddedMS       *float64 `json:"proxy_p99_added_ms"`
	RouteApplyMS1000      *float64 `json:"route_apply_ms_1000"`
	IdleRSSMBServer       *float64 `json:"idle_rss_mb_server"`
	IdleRSSMBProxy        *float64 `json:"idle_rss_mb_proxy"`
	DashboardMaxPageKB    *float64 `json:"dashboard_max_page_kb"`
	DashboardMaxMedianMS  *float64 `json:"dashboard_max_median_ms"`
	DashboardMaxP95MS     *float64 `json:"dashboard_max_p95_ms"`

	Targets []targetCheck `json:"targets"`

	Deploy *deployDetail `json:"deploy,omitempty"`
	Steady *steadyDetail `json:"steady,omitempty"`
	Proxy  *proxyDetail  `json:"proxy,omitempty"`
	Routes *routesDetail `json:"routes,omitempty"`
	RSS    *rssDetail    `json:"rss,omitempty"`

	Dashboard *dashboardDetail `json:"dashboard,omitempty"`

	Notes  []string `json:"notes"`
	Errors []string `json:"errors"`
}

// machine describes where the numbers come from.
type machine struct {
	CPUs   int    `json:"cpus"`
	Go     string `json:"go"`
	Docker string `json:"docker"`
	Nginx  string `json:"nginx"` // version, or "missing"
	Wrk    string `json:"wrk"`   // path, or "missing"
}

// targetCheck is one headline value against its target.
type targetCheck struct {
	Key    string   `json:"key"`
	Target string   `json:"target"`
	Value  *float64 `json:"value"`
	Met    *bool    `json:"met"` // null when not measured
}

// check fills Targets from the headline values.
func (r *results) check() {
	var failed *float64
	if r.FailedRequests != nil {
		failed = num(float64(*r.FailedRequests))
	}
	type rule struct {
		key, target string
		v           *float64
		ok          func(float64) bool
	}
	rules := []rule{
		{"failed_requests", "= 0", failed, func(v float64) bool { return v == 0 }},
		{"deploy_overhead_ratio", "<= 1.2", r.DeployOverheadRatio, func(v float64) bool { return v <= 1.2 }},
		{"proxy_rps_ratio_vs_nginx", ">= 0.9", r.ProxyRPSRatioVsNginx, func(v float64) bool { return v >= 0.9 }},
		{"route_apply_ms_1000", "<= 10", r.RouteApplyMS1000, func(v float64) bool { return v <= 10 }},
		{"idle_rss_mb_server", "<= 40", r.IdleRSSMBServer, func(v float64) bool { return v <= 40 }},
		{"idle_rss_mb_proxy", "<= 40", r.IdleRSSMBProxy, func(v float64) bool { return v <= 40 }},
		{"dashboard_max_page_kb", "<= 100", r.DashboardMaxPageKB, func(v float64) bool { return v <= dashboardMaxKB }},
		{"dashboard_max_median_ms", "<= 50", r.DashboardMaxMedianMS, func(v float64) bool { return v <= dashboardMaxMS }},
		{"dashboard_max_p95_ms", "<= 50", r.DashboardMaxP95MS, func(v float64) bool { return v <= dashboardMaxMS }},
	}
	r.Targets = nil
	for _, c := range rules {
		t := targetCheck{Key: c.key, Target: c.target, Value: c.v}
		if c.v != nil {
			met := c.ok(*c.v)
			t.Met = &met
		}
		r.Targets = append(r.Targets, t)
	}
}

// allMet reports whether every target was measured and met.
func (r *results) allMet() bool {
	for _, t := range r.Targets {
		if t.Met == nil || !*t.Met {
			return false
		}
	}
	return true
}

// writeJSON writes the report to path ("-" for stdout).
func (r *results) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = os.Stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// fmtNum formats a value for the table; "null" when missing.
func fmtNum(v *float64, digits int) string {
	if v == nil {
		return "null"
	}
	if math.IsInf(*v, 0) || math.IsNaN(*v) {
		return fmt.Sprint(*v)
	}
	return fmt.Sprintf("%.*f", digits, *v)
}

// printTable writes the headline table, then the details.
func (r *results) printTable(w io.Writer) {
	fmt.Fprintf(w, "\nberth benchmark (%s run, %.0f s; %d CPUs, %s, Docker %s, nginx %s)\n\n",
		r.Mode, r.DurationS, r.Machine.CPUs, r.Machine.Go, r.Machine.Docker, r.Machine.Nginx)
	tw := newTable(w)
	fmt.Fprintln(tw, "metric\tvalue\ttarget\tmet")
	met := map[string]targetCheck{}
	for _, t := range r.Targets {
		met[t.Key] = t
	}
	row := func(key, value string) {
		t, ok := met[key]
		target, status := "-", ""
		if ok {
			target = t.Target
			switch {
			case t.Met == nil:
				status = "not measured"
			case *t.Met:
				status = "yes"
			default:
				status = "NO"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", key, value, target, status)
	}
	row("deploy_overhead_ratio", fmtNum(r.DeployOverheadRatio, 2))
	failed := "null"
	if r.FailedRequests != nil && r.TotalRequests != nil {
		failed = fmt.Sprintf("%d of %d", *r.FailedRequests, *r.TotalRequests)
	}
	row("failed_requests", failed)
	row("proxy_rps_ratio_vs_direct", fmtNum(r.ProxyRPSRatioVsDirect, 2))
	row("proxy_rps_ratio_vs_nginx", fmtNum(r.ProxyRPSRatioVsNginx, 2))
	row("proxy_p99_added_ms", fmtNum(r.ProxyP99AddedMS, 2))
	row("route_apply_ms_1000", fmtNum(r.RouteApplyMS1000, 2))
	row("idle_rss_mb_server", fmtNum(r.IdleRSSMBServer, 1))
	row("idle_rss_mb_proxy", fmtNum(r.IdleRSSMBProxy, 1))
	row("dashboard_max_page_kb", fmtNum(r.DashboardMaxPageKB, 1))
	row("dashboard_max_median_ms", fmtNum(r.DashboardMaxMedianMS, 2))
	row("dashboard_max_p95_ms", fmtNum(r.DashboardMaxP95MS, 2))
	tw.Flush()

	if d := r.Deploy; d != nil {
		fmt.Fprintf(w, "\ndeploy: %d pairs, berth median %.2f s [%.2f-%.2f], direct median %.2f s [%.2f-%.2f]\n",
			d.Pairs, d.BerthMedianS, d.BerthMinS, d.BerthMaxS, d.DirectMedianS, d.DirectMinS, d.DirectMaxS)
		fmt.Fprintf(w, "  berth stages (median s):")
		for _, k := range stageOrder(d.BerthStagesS) {
			fmt.Fprintf(w, " %s %.2f", k, d.BerthStagesS[k])
		}
		fmt.Fprintf(w, "\n  direct steps (median s): build %.2f, start %.2f, first healthy probe %.2f\n",
			d.DirectStepsS["build"], d.DirectStepsS["start"], d.DirectStepsS["probe"])
	}
	if s := r.Steady; s != nil {
		fmt.Fprintf(w, "\nsteady load: %d req/s (%d keep-alive, %d fresh connections) for %.0f s on a %d-replica app\n",
			s.KeepAliveRPS+s.FreshRPS, s.KeepAliveRPS, s.FreshRPS, s.DurationS, s.Replicas)
		fmt.Fprintf(w, "  operations: %d redeploys, %d rollbacks, %d restarts (SIGTERM), %d kill -9 %s\n",
			s.Redeploys, s.Rollbacks, s.Restarts, s.Kills, formatKills(s.KilledIn))
		fmt.Fprintf(w, "  requests: %d (%d keep-alive, %d fresh), failed %d\n", s.Load.Total, s.Load.KeepAlive, s.Load.Fresh, s.Load.Failed)
		for k, v := range s.Load.ByOp {
			fmt.Fprintf(w, "    failed during %s: %d\n", k, v)
		}
		for _, f := range s.Load.Samples[:min(len(s.Load.Samples), 5)] {
			fmt.Fprintf(w, "    e.g. at %.1fs (%s, %s): %s\n", f.At, f.Conn, f.Op, f.Error)
		}
		for _, f := range s.DeployProblems {
			fmt.Fprintf(w, "  deployment: %s\n", f)
		}
	}
	if p := r.Proxy; p != nil {
		fmt.Fprintf(w, "\nproxy throughput: wrk -t2 -c{%s} -d%.0fs, %d round(s), 1 KiB answers, median per target\n",
			joinInts(p.Conns, ","), p.DurationS, p.Rounds)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  target\tconns\treq/s\tp50 ms\tp99 ms\terrors")
		for _, s := range p.Summary {
			fmt.Fprintf(tw, "  %s\t%d\t%.0f\t%.2f\t%.2f\t%d\n", s.Target, s.Conns, s.RPS, s.P50MS, s.P99MS, s.Errors)
		}
		tw.Flush()
		for _, s := range p.Ratios {
			fmt.Fprintf(w, "  c%d: proxy/direct %s, proxy/nginx %s, p99 added %s ms\n",
				s.Conns, fmtNum(s.VsDirect, 2), fmtNum(s.VsNginx, 2), fmtNum(s.P99AddedMS, 2))
		}
	}
	if rt := r.Routes; rt != nil {
		fmt.Fprintf(w, "\nroute apply: %d samples with %d routes (loaded via %s): median %.2f ms [%.2f-%.2f]; admin call alone %.2f ms; with %d routes %.2f ms\n",
			len(rt.SamplesMS), rt.Routes, rt.LoadedVia, rt.MedianMS, rt.MinMS, rt.MaxMS, rt.AdminCallMedianMS, rt.BaselineRoutes, rt.BaselineMedianMS)
	}
	if m := r.RSS; m != nil {
		fmt.Fprintf(w, "\nidle memory after %.0f s settle, %d apps defined, %d running (kB):\n", m.SettleS, m.AppsDefined, m.AppsRunning)
		fmt.Fprintf(w, "  server: VmRSS %d (anon %d, file %d), peak %d\n", m.Server.VmRSS, m.Server.RssAnon, m.Server.RssFile, m.Server.VmHWM)
		fmt.Fprintf(w, "  proxy:  VmRSS %d (anon %d, file %d), peak %d\n", m.Proxy.VmRSS, m.Proxy.RssAnon, m.Proxy.RssFile, m.Proxy.VmHWM)
	}
	if r.Dashboard != nil {
		printDashboard(w, r.Dashboard)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "ERROR: %s\n", e)
	}
}

// newTable returns the tab writer of the report's tables.
func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

func formatKills(stages []string) string {
	if len(stages) == 0 {
		return ""
	}
	return "(while " + strings.Join(stages, ", ") + ")"
}

func joinInts(xs []int, sep string) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, sep)
}
