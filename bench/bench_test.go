package main

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

// wrkOutput is what wrk 4.1.0 (Debian) printed for a run with --latency.
const wrkOutput = `Running 1s test @ http://172.17.0.2:8080/kib
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.29ms  655.59us  10.29ms   82.41%
    Req/Sec     3.06k   673.71     5.77k    95.24%
  Latency Distribution
     50%    1.20ms
     75%    1.52ms
     90%    1.90ms
     99%    3.88ms
  6395 requests in 1.10s, 1.56MB read
Requests/sec:   5814.01
Transfer/sec:      1.41MB
`

// wrkErrors is a run whose answers were all errors.
const wrkErrors = `Running 1s test @ http://172.17.0.2:8080/nothere
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   812.50us  444.06us   1.02s    79.32%
    Req/Sec     2.36k     1.39k    3.94k    36.36%
  Latency Distribution
     50%  940.00us
     75%    1.18ms
     90%    1.53ms
     99%    2.01s
  5170 requests in 1.10s, 1.14MB read
  Socket errors: connect 1, read 5170, write 2, timeout 3
  Non-2xx or 3xx responses: 5170
Requests/sec:   4697.69
Transfer/sec:      1.04MB
`

func TestParseWrk(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    wrkResult
		wantErr string
	}{
		{"ok", wrkOutput, wrkResult{
			Requests: 6395, Duration: 1100 * time.Millisecond, RPS: 5814.01, LatencyAvg: 1290 * time.Microsecond,
			P50: 1200 * time.Microsecond, P75: 1520 * time.Microsecond, P90: 1900 * time.Microsecond, P99: 3880 * time.Microsecond,
		}, ""},
		{"errors", wrkErrors, wrkResult{
			Requests: 5170, Duration: 1100 * time.Millisecond, RPS: 4697.69, LatencyAvg: 812500 * time.Nanosecond,
			P50: 940 * time.Microsecond, P75: 1180 * time.Microsecond, P90: 1530 * time.Microsecond, P99: 2010 * time.Millisecond,
			SocketErrors: 5176, Non2xx3xx: 5170,
		}, ""},
		{"no latency distribution", strings.ReplaceAll(wrkOutput, "99%", "98%"), wrkResult{}, "latency distribution"},
		{"connection refused", "unable to connect to 127.0.0.1:1 Connection refused\n", wrkResult{}, "request count"},
		{"bad duration", strings.Replace(wrkOutput, "3.88ms", "3.88d", 1), wrkResult{}, "unknown unit"},
		{"bad number", strings.Replace(wrkOutput, "3.88ms", "x.yms", 1), wrkResult{}, "duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseWrk(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !closeDur(got.LatencyAvg, tt.want.LatencyAvg) || !closeDur(got.P50, tt.want.P50) || !closeDur(got.P99, tt.want.P99) ||
				!closeDur(got.P75, tt.want.P75) || !closeDur(got.P90, tt.want.P90) || !closeDur(got.Duration, tt.want.Duration) {
				t.Errorf("durations: got %+v\nwant %+v", got, tt.want)
			}
			got.LatencyAvg, got.P50, got.P75, got.P90, got.P99, got.Duration = tt.want.LatencyAvg, tt.want.P50, tt.want.P75, tt.want.P90, tt.want.P99, tt.want.Duration
			if got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// closeDur compares durations parsed from decimal text to the microsecond.
func closeDur(a, b time.Duration) bool { return (a - b).Abs() < time.Microsecond }

func TestWrkArgs(t *testing.T) {
	got := strings.Join(wrkRun{Threads: 2, Conns: 64, Duration: 5 * time.Second, URL: "http://127.0.0.1:1/kib", Host: "a.localhost"}.args(), " ")
	want := "-t2 -c64 -d5s --latency --timeout 5s -H Host: a.localhost -- http://127.0.0.1:1/kib"
	if got != want {
		t.Errorf("args = %q, want %q", got, want)
	}
}

func TestStatistics(t *testing.T) {
	tests := []struct {
		in             []float64
		med, min, maxv float64
	}{
		{nil, 0, 0, 0},
		{[]float64{3}, 3, 3, 3},
		{[]float64{5, 1, 3}, 3, 1, 5},
		{[]float64{4, 1, 3, 2}, 2.5, 1, 4},
	}
	for _, tt := range tests {
		if got := median(tt.in); got != tt.med {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.med)
		}
		if lo, hi := spread(tt.in); lo != tt.min || hi != tt.maxv {
			t.Errorf("spread(%v) = %v, %v", tt.in, lo, hi)
		}
	}
	in := []float64{4, 1, 3}
	median(in)
	if in[0] != 4 || in[1] != 1 {
		t.Errorf("median sorted its argument: %v", in)
	}
	if ratio(1, 0) != nil || ratio(1, -1) != nil {
		t.Error("a ratio against a zero or negative baseline must be null")
	}
	if r := ratio(3, 2); r == nil || *r != 1.5 {
		t.Errorf("ratio(3, 2) = %v", r)
	}
}

func TestPerfRatios(t *testing.T) {
	runs := []perfRun{
		{Target: "direct", Conns: 64, RPS: 1000, P99MS: 2},
		{Target: "direct", Conns: 64, RPS: 1200, P99MS: 4},
		{Target: "direct", Conns: 64, RPS: 900, P99MS: 3},
		{Target: "berth-proxy", Conns: 64, RPS: 500, P99MS: 5},
		{Target: "berth-proxy", Conns: 64, RPS: 600, P99MS: 6, Errors: 2},
		{Target: "berth-proxy", Conns: 64, RPS: 700, P99MS: 7},
		{Target: "nginx", Conns: 64, RPS: 800, P99MS: 4},
		{Target: "direct", Conns: 8, RPS: 400, P99MS: 1},
		{Target: "berth-proxy", Conns: 8, RPS: 300, P99MS: 1.5},
		{Target: "nginx", Conns: 8, RPS: 250, P99MS: 1.2},
	}
	targets := []perfTarget{{name: "direct"}, {name: "berth-proxy"}, {name: "nginx"}}
	sum := summarize(runs, targets, []int{64, 8})
	if len(sum) != 6 || sum[1].Target != "berth-proxy" || sum[1].RPS != 600 || sum[1].P99MS != 6 || sum[1].Errors != 2 {
		t.Fatalf("summary = %+v", sum)
	}
	rs := perfRatios(sum, []int{64, 8})
	if len(rs) != 2 || *rs[0].VsDirect != 0.6 || *rs[0].VsNginx != 0.75 || *rs[0].P99AddedMS != 3 || *rs[1].VsNginx != 1.2 {
		t.Fatalf("ratios = %+v %+v", rs[0], rs[1])
	}
	vd, vn, p99 := worst(rs)
	if *vd != 0.6 || *vn != 0.75 || *p99 != 3 {
		t.Errorf("worst = %v %v %v", *vd, *vn, *p99)
	}
	// Without nginx the nginx ratio stays null.
	sum = summarize(runs, targets[:2], []int{64})
	_, vn, _ = worst(perfRatios(sum, []int{64}))
	if vn != nil {
		t.Errorf("vs nginx without nginx = %v, want null", *vn)
	}
}

func TestSteadyPlan(t *testing.T) {
	plan := steadyPlan(20, 5, 3, 3, []string{"building", "verifying", "idle"})
	count := map[string]int{}
	var kills []string
	for i, o := range plan {
		count[o.kind]++
		if o.kind == "kill" {
			kills = append(kills, o.stage)
		}
		if i == 0 && o.kind != "redeploy" {
			t.Errorf("plan starts with %s", o)
		}
		if i > 0 && o.kind != "redeploy" && o.kind == plan[i-1].kind {
			t.Errorf("two %s in a row at %d", o.kind, i)
		}
	}
	if count["redeploy"] != 20 || count["rollback"] != 5 || count["restart"] != 3 || count["kill"] != 3 {
		t.Errorf("plan counts %v", count)
	}
	if strings.Join(kills, ",") != "building,verifying,idle" {
		t.Errorf("kill stages %v", kills)
	}
	if p := steadyPlan(2, 1, 1, 1, nil); len(p) != 5 || p[0].kind != "redeploy" {
		t.Errorf("small plan %v", p)
	}
}

func TestProcStatus(t *testing.T) {
	st, err := parseProcStatus("Name:\tberth\nVmHWM:\t   40000 kB\nVmRSS:\t   31234 kB\nRssAnon:\t   20000 kB\nRssFile:\t   11234 kB\nThreads:\t9\n")
	if err != nil {
		t.Fatal(err)
	}
	if st != (procStatus{VmRSS: 31234, RssAnon: 20000, RssFile: 11234, VmHWM: 40000}) {
		t.Errorf("got %+v", st)
	}
	if _, err := parseProcStatus("Name:\tx\n"); err == nil {
		t.Error("a status without VmRSS must be an error")
	}
}

func TestNginxConf(t *testing.T) {
	conf, err := nginxConf("/tmp/b", "127.0.0.1:8081", "172.17.0.2:8080")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"listen 127.0.0.1:8081;", "server 172.17.0.2:8080;", "keepalive 128;", "proxy_http_version 1.1;", "pid /tmp/b/nginx.pid;"} {
		if !strings.Contains(conf, want) {
			t.Errorf("nginx.conf lacks %q", want)
		}
	}
	if strings.Contains(conf, "daemon") {
		t.Error("daemon is set on the command line (-g 'daemon off;'), not in the file")
	}
	for _, bad := range [][3]string{{"/tmp/b; x", "127.0.0.1:1", "127.0.0.1:2"}, {"/tmp/b", "localhost:1", "127.0.0.1:2"}, {"/tmp/b", "127.0.0.1:1", "127.0.0.1:0"}, {"rel", "127.0.0.1:1", "127.0.0.1:2"}} {
		if _, err := nginxConf(bad[0], bad[1], bad[2]); err == nil {
			t.Errorf("nginxConf%q: want an error", bad)
		}
	}
}

// TestJSONShape checks the report's keys: every headline key is present,
// null when not measured, and the targets say what was met.
func TestJSONShape(t *testing.T) {
	r := &results{Mode: "quick", Notes: []string{}, Errors: []string{}}
	failed, total := int64(0), int64(1234)
	r.FailedRequests, r.TotalRequests = &failed, &total
	r.DeployOverheadRatio = num(1.5)
	r.RouteApplyMS1000 = num(2)
	r.check()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	keys := []string{"deploy_overhead_ratio", "failed_requests", "total_requests", "proxy_rps_ratio_vs_direct",
		"proxy_rps_ratio_vs_nginx", "proxy_p99_added_ms", "route_apply_ms_1000", "idle_rss_mb_server", "idle_rss_mb_proxy"}
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Errorf("key %s missing", k)
		}
	}
	if m["proxy_rps_ratio_vs_nginx"] != nil || m["idle_rss_mb_server"] != nil {
		t.Error("keys not measured must be null")
	}
	if m["failed_requests"] != float64(0) || m["total_requests"] != float64(1234) || m["deploy_overhead_ratio"] != 1.5 {
		t.Errorf("values: %v %v %v", m["failed_requests"], m["total_requests"], m["deploy_overhead_ratio"])
	}
	met := map[string]*bool{}
	for _, c := range r.Targets {
		met[c.Key] = c.Met
	}
	if met["failed_requests"] == nil || !*met["failed_requests"] || met["deploy_overhead_ratio"] == nil || *met["deploy_overhead_ratio"] ||
		met["route_apply_ms_1000"] == nil || !*met["route_apply_ms_1000"] || met["idle_rss_mb_proxy"] != nil {
		t.Errorf("targets %+v", r.Targets)
	}
	if r.allMet() {
		t.Error("allMet with a missed and unmeasured targets")
	}
	var sb strings.Builder
	r.printTable(&sb)
	for _, want := range []string{"1.50       <= 1.2  NO", "0 of 1234", "not measured"} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, sb.String())
		}
	}
	if fmtNum(num(math.Inf(1)), 1) != "+Inf" {
		t.Error("fmtNum(+Inf)")
	}
}
