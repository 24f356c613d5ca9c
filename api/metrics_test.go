package api

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/berthhq/berth"
)

// addSamples stores one sample of app every 15 s over the last span, with
// CPU 10% and 1 MiB per replica (2 replicas).
func (e *testEnv) addSamples(teamID, appID string, span time.Duration, cpu float64) {
	e.t.Helper()
	now := time.Now()
	var batch []berth.MetricSample
	for at := now.Add(-span); at.Before(now); at = at.Add(15 * time.Second) {
		batch = append(batch, berth.MetricSample{TeamID: teamID, AppID: appID, At: at, CPUPercent: cpu, MemoryBytes: 2 << 20,
			MemoryLimit: 256 << 20, RxRate: 100, TxRate: 50, RxTotal: 12345, TxTotal: 678, Replicas: 2})
	}
	if err := e.st.AddMetricSamples(context.Background(), batch); err != nil {
		e.t.Fatal(err)
	}
}

func TestAppMetrics(t *testing.T) {
	e := newEnv(t)
	web := e.createApp(gitApp("web"))
	idle := e.createApp(gitApp("idle"))
	e.addSamples(web.TeamID, web.ID, 90*time.Minute, 10)
	read := e.tokens[berth.ScopeRead]

	s := decode[MetricSeries](t, e.do(read, "GET", "/api/v1/apps/web/metrics", nil), http.StatusOK)
	if s.App != "web" || s.Range != "1h" || s.StepSeconds != 0 || len(s.Points) < 239 || len(s.Points) > 241 {
		t.Fatalf("default range: %s %s step %d, %d points; want 1h of raw samples (240)", s.App, s.Range, s.StepSeconds, len(s.Points))
	}
	p := s.Points[0]
	if p.CPUPercent != 10 || p.MemoryBytes != 2<<20 || p.MemoryLimit != 256<<20 || p.RxRate != 100 || p.TxRate != 50 || p.Replicas != 2 ||
		time.Since(p.At) > time.Hour+time.Minute {
		t.Errorf("point %+v", p)
	}
	// Totals are for Prometheus, not in the series.
	if r := e.do(read, "GET", "/api/v1/apps/web/metrics?range=1h", nil); bytes.Contains(r.body, []byte("total")) || !bytes.Contains(r.body, []byte(`"rx_bytes_per_second"`)) {
		t.Errorf("series body: %.300s", r.body)
	}
	// Nothing rolled up yet: 24 h averages the raw samples per minute.
	s = decode[MetricSeries](t, e.do(read, "GET", "/api/v1/apps/web/metrics?range=24h", nil), http.StatusOK)
	if s.Range != "24h" || s.StepSeconds != 60 || len(s.Points) < 90 || len(s.Points) > 91 || s.Points[0].CPUPercent != 10 {
		t.Errorf("24h: step %d, %d points (want 90 or 91 minutes)", s.StepSeconds, len(s.Points))
	}
	s = decode[MetricSeries](t, e.do(read, "GET", "/api/v1/apps/web/metrics?range=7d", nil), http.StatusOK)
	if s.StepSeconds != 600 || len(s.Points) < 9 || len(s.Points) > 10 {
		t.Errorf("7d: step %d, %d points", s.StepSeconds, len(s.Points))
	}
	// At most about 40 points: the hour's 240 samples averaged over 90 s.
	s = decode[MetricSeries](t, e.do(read, "GET", "/api/v1/apps/web/metrics?range=1h&points=40", nil), http.StatusOK)
	if s.StepSeconds != 90 || len(s.Points) < 40 || len(s.Points) > 41 || s.Points[0].CPUPercent != 10 || s.Points[1].At.Sub(s.Points[0].At) != 90*time.Second {
		t.Errorf("1h in 40 points: step %d, %d points", s.StepSeconds, len(s.Points))
	}
	// Fewer points than asked for: the series as stored.
	s = decode[MetricSeries](t, e.do(read, "GET", "/api/v1/apps/web/metrics?range=7d&points=400", nil), http.StatusOK)
	if s.StepSeconds != 600 || len(s.Points) < 9 || len(s.Points) > 10 {
		t.Errorf("7d in 400 points: step %d, %d points", s.StepSeconds, len(s.Points))
	}
	for _, bad := range []string{"0", "9", "10001", "x", "-5"} {
		if r := e.do(read, "GET", "/api/v1/apps/web/metrics?points="+bad, nil); r.status != http.StatusBadRequest {
			t.Errorf("points=%s: %d, want 400", bad, r.status)
		}
	}
	// An app that never ran has an empty series, not null.
	r := e.do(read, "GET", "/api/v1/apps/idle/metrics?range=7d", nil)
	if s := decode[MetricSeries](t, r, http.StatusOK); s.App != idle.Name || s.Points == nil || len(s.Points) != 0 {
		t.Errorf("idle app: %s", r.body)
	}
	for _, bad := range []string{"30d", "1h%00", "%3Cscript%3E", "1H"} {
		r := e.do(read, "GET", "/api/v1/apps/web/metrics?range="+bad, nil)
		if r.status != http.StatusBadRequest || bytes.Contains(r.body, []byte("<script>")) {
			t.Errorf("range %q: %d %s", bad, r.status, r.body)
		}
	}
	if r := e.do(e.teamB, "GET", "/api/v1/apps/web/metrics", nil); r.status != http.StatusNotFound {
		t.Errorf("another team: %d", r.status)
	}
}

// scrape gets /metrics with token and parses the text format.
func scrape(t *testing.T, srv *httptest.Server, token string) (int, map[string]*dto.MetricFamily) {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+"/metrics", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return resp.StatusCode, fams
}

// series maps each metric of a family to its value, keyed by "app/team".
func series(f *dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	if f == nil {
		return out
	}
	for _, m := range f.Metric {
		var app, team string
		for _, l := range m.Label {
			switch l.GetName() {
			case "app":
				app = l.GetValue()
			case "team":
				team = l.GetValue()
			}
		}
		v := m.GetGauge().GetValue()
		if m.Counter != nil {
			v = m.GetCounter().GetValue()
		}
		out[app+"/"+team] = v
	}
	return out
}

func TestPrometheus(t *testing.T) {
	w := newWalkEnv(t) // team A "main": web (default project), papp (project p); a narrowed member
	ctx := context.Background()
	a := w.principal(w.tokens[berth.ScopeAdmin])
	webApp, err := w.st.App(ctx, a.Team.ID, "web")
	if err != nil {
		t.Fatal(err)
	}
	papp, err := w.st.App(ctx, a.Team.ID, "papp")
	if err != nil {
		t.Fatal(err)
	}
	w.addSamples(a.Team.ID, webApp.ID, time.Minute, 12.5)
	w.addSamples(a.Team.ID, papp.ID, time.Minute, 3)
	b := w.principal(w.teamB)
	bApp := decode[berth.App](t, w.do(w.teamB, "POST", "/api/v1/apps", gitApp("bweb")), http.StatusCreated)
	w.addSamples(b.Team.ID, bApp.ID, time.Minute, 50)
	// A stale app: its last sample is older than the window.
	stale := w.createApp(gitApp("stale"))
	if err := w.st.AddMetricSamples(ctx, []berth.MetricSample{{TeamID: a.Team.ID, AppID: stale.ID, At: time.Now().Add(-10 * time.Minute), Replicas: 1}}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w.api.PrometheusHandler(time.Minute))
	t.Cleanup(srv.Close)

	if code, _ := scrape(t, srv, ""); code != http.StatusUnauthorized {
		t.Errorf("anonymous: %d, want 401", code)
	}
	if code, _ := scrape(t, srv, "berth_notatoken"); code != http.StatusUnauthorized {
		t.Errorf("bad token: %d, want 401", code)
	}

	team := a.Team.Name
	code, fams := scrape(t, srv, w.tokens[berth.ScopeRead])
	if code != http.StatusOK {
		t.Fatalf("read token: %d", code)
	}
	cpu := series(fams["berth_app_cpu_percent"])
	if len(cpu) != 2 || cpu["web/"+team] != 12.5 || cpu["papp/"+team] != 3 {
		t.Errorf("cpu: %v, want web and papp of %s only", cpu, team)
	}
	if f := fams["berth_app_network_receive_bytes_total"]; f == nil || f.GetType() != dto.MetricType_COUNTER || series(f)["web/"+team] != 12345 {
		t.Errorf("receive counter: %v", f)
	}
	for _, name := range []string{"berth_app_memory_bytes", "berth_app_memory_limit_bytes", "berth_app_network_transmit_bytes_total", "berth_app_replicas"} {
		if len(series(fams[name])) != 2 {
			t.Errorf("%s: %v", name, series(fams[name]))
		}
	}
	if series(fams["berth_app_memory_bytes"])["web/"+team] != 2<<20 || series(fams["berth_app_network_transmit_bytes_total"])["web/"+team] != 678 {
		t.Errorf("memory or transmit of web wrong")
	}
	if fams["go_goroutines"] != nil || fams["process_resident_memory_bytes"] != nil {
		t.Error("a read-only token gets the server's process metrics")
	}

	_, fams = scrape(t, srv, w.tokens[berth.ScopeAdmin])
	if fams["go_goroutines"] == nil || len(series(fams["berth_app_cpu_percent"])) != 2 {
		t.Errorf("admin token: go metrics %v, apps %v", fams["go_goroutines"] != nil, series(fams["berth_app_cpu_percent"]))
	}

	// Team B sees its own app only; the narrowed member only project p's.
	_, fams = scrape(t, srv, w.teamB)
	if cpu := series(fams["berth_app_cpu_percent"]); len(cpu) != 1 || cpu["bweb/"+b.Team.Name] != 50 {
		t.Errorf("team B: %v", cpu)
	}
	_, fams = scrape(t, srv, w.narrowed)
	if cpu := series(fams["berth_app_cpu_percent"]); len(cpu) != 1 || cpu["papp/"+team] != 3 {
		t.Errorf("narrowed member: %v", cpu)
	}
	if fams["go_goroutines"] != nil {
		t.Error("a narrowed developer gets the server's process metrics")
	}

	// A preview uses CPU and memory like any app: it is exported too.
	admin := w.tokens[berth.ScopeAdmin]
	decode[PreviewSettings](t, w.do(admin, "PUT", "/api/v1/apps/web/previews/settings", map[string]any{"enabled": true}), http.StatusOK)
	decode[EventResult](t, w.do(admin, "POST", "/api/v1/apps/web/previews", map[string]any{"provider": "github", "repo": "acme/web",
		"number": 7, "action": "opened", "base_ref": "main", "head_ref": "feature", "head_sha": strings.Repeat("a", 40),
		"fetch_ref": "refs/pull/7/head"}), http.StatusOK)
	child, err := w.st.App(ctx, a.Team.ID, "web-pr-7")
	if err != nil {
		t.Fatal(err)
	}
	w.addSamples(a.Team.ID, child.ID, time.Minute, 7)
	_, fams = scrape(t, srv, w.tokens[berth.ScopeRead])
	if cpu := series(fams["berth_app_cpu_percent"]); cpu["web-pr-7/"+team] != 7 {
		t.Errorf("the preview's cpu is not exported: %v", cpu)
	}
}
