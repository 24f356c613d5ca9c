package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// wrkResult is what one wrk run reports.
type wrkResult struct {
	Requests     int64         `json:"requests"`
	Duration     time.Duration `json:"-"`
	RPS          float64       `json:"rps"`
	LatencyAvg   time.Duration `json:"-"`
	P50, P75     time.Duration `json:"-"`
	P90, P99     time.Duration `json:"-"`
	SocketErrors int64         `json:"socket_errors"` // connect + read + write + timeout
	Non2xx3xx    int64         `json:"non_2xx_3xx"`
}

// errors counts the requests wrk saw fail.
func (r wrkResult) errors() int64 { return r.SocketErrors + r.Non2xx3xx }

// parseWrk reads the text wrk prints with --latency.
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	var haveRPS, haveP99, haveReqs bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch {
		case f[0] == "Latency" && len(f) >= 5: // the thread stats line, not "Latency Distribution"
			d, err := parseWrkDuration(f[1])
			if err != nil {
				return r, fmt.Errorf("wrk latency: %w", err)
			}
			r.LatencyAvg = d
		case len(f) == 2 && strings.HasSuffix(f[0], "%"):
			d, err := parseWrkDuration(f[1])
			if err != nil {
				return r, fmt.Errorf("wrk percentile %s: %w", f[0], err)
			}
			switch f[0] {
			case "50%":
				r.P50 = d
			case "75%":
				r.P75 = d
			case "90%":
				r.P90 = d
			case "99%":
				r.P99, haveP99 = d, true
			}
		case len(f) >= 5 && f[1] == "requests" && f[2] == "in":
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return r, fmt.Errorf("wrk request count %q: %w", f[0], err)
			}
			d, err := parseWrkDuration(strings.TrimSuffix(f[3], ","))
			if err != nil {
				return r, fmt.Errorf("wrk run time: %w", err)
			}
			r.Requests, r.Duration, haveReqs = n, d, true
		case f[0] == "Requests/sec:" && len(f) == 2:
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return r, fmt.Errorf("wrk requests/sec %q: %w", f[1], err)
			}
			r.RPS, haveRPS = v, true
		case f[0] == "Socket" && len(f) >= 10 && f[1] == "errors:":
			// Socket errors: connect 0, read 0, write 0, timeout 0
			for i := 2; i+1 < len(f); i += 2 {
				n, err := strconv.ParseInt(strings.TrimSuffix(f[i+1], ","), 10, 64)
				if err != nil {
					return r, fmt.Errorf("wrk socket errors: %w", err)
				}
				r.SocketErrors += n
			}
		case f[0] == "Non-2xx" && len(f) == 5:
			n, err := strconv.ParseInt(f[4], 10, 64)
			if err != nil {
				return r, fmt.Errorf("wrk non-2xx count: %w", err)
			}
			r.Non2xx3xx = n
		}
	}
	if !haveRPS || !haveReqs {
		return r, errors.New("wrk output lacks the request count or Requests/sec")
	}
	if !haveP99 {
		return r, errors.New("wrk output lacks the latency distribution (run with --latency)")
	}
	return r, nil
}

// parseWrkDuration reads wrk's durations: "812.00us", "1.23ms", "1.10s",
// "2.00m", "1.00h".
func parseWrkDuration(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil || v < 0 {
				return 0, fmt.Errorf("duration %q", s)
			}
			return time.Duration(v * float64(u.unit)), nil
		}
	}
	return 0, fmt.Errorf("duration %q: unknown unit", s)
}

// wrkRun is one wrk invocation: -t threads, -c connections, -d duration.
type wrkRun struct {
	Threads, Conns int
	Duration       time.Duration
	URL, Host      string
}

// args returns wrk's argv (after the program name).
func (w wrkRun) args() []string {
	a := []string{
		"-t" + strconv.Itoa(w.Threads), "-c" + strconv.Itoa(w.Conns),
		"-d" + strconv.Itoa(int(w.Duration/time.Second)) + "s", "--latency", "--timeout", "5s",
	}
	if w.Host != "" {
		a = append(a, "-H", "Host: "+w.Host)
	}
	return append(a, "--", w.URL)
}

// run runs wrk and parses its report. The run is bounded by its duration
// plus a margin.
func (w wrkRun) run(ctx context.Context, wrkPath string) (wrkResult, error) {
	if w.Duration < time.Second {
		return wrkResult{}, fmt.Errorf("wrk duration %s: at least 1s", w.Duration)
	}
	ctx, cancel := context.WithTimeout(ctx, w.Duration+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, wrkPath, w.args()...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk %s: %w\n%s", strings.Join(w.args(), " "), err, out)
	}
	r, err := parseWrk(string(out))
	if err != nil {
		return r, fmt.Errorf("%w\n%s", err, out)
	}
	return r, nil
}
