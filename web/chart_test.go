package web

import (
	"encoding/xml"
	"flag"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

var chartT0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func at(min int) time.Time { return chartT0.Add(time.Duration(min) * time.Minute) }

// wellFormed fails unless s is one well-formed XML element without script.
func wellFormed(t *testing.T, s string) {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(s))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, s)
		}
		if el, ok := tok.(xml.StartElement); ok {
			if strings.EqualFold(el.Name.Local, "script") || strings.EqualFold(el.Name.Local, "foreignObject") {
				t.Errorf("chart holds a <%s>", el.Name.Local)
			}
			for _, a := range el.Attr {
				if strings.HasPrefix(strings.ToLower(a.Name.Local), "on") || strings.Contains(strings.ToLower(a.Value), "javascript:") {
					t.Errorf("chart holds attribute %s=%q", a.Name.Local, a.Value)
				}
			}
		}
	}
}

func TestChartGolden(t *testing.T) {
	var cpu, mem, week []ChartPoint
	for i := range 60 {
		cpu = append(cpu, ChartPoint{at(i), 20 + 15*math.Sin(float64(i)/6)})
		mem = append(mem, ChartPoint{at(i), float64(100<<20 + i*(1<<20))})
	}
	for i := range 7 * 24 * 6 {
		week = append(week, ChartPoint{chartT0.Add(time.Duration(i) * 10 * time.Minute), float64(i % 144 * 1000)})
	}
	for _, tc := range []struct {
		name, title, unit string
		points            []ChartPoint
	}{
		{"cpu", "CPU", "%", cpu},
		{"memory", "Memory", "B", mem},
		{"network-week", "Received", "B/s", week},
		{"empty", "CPU", "%", nil},
		{"one-point", "Memory", "B", []ChartPoint{{at(0), 5 << 20}}},
		{"flat-zero", "CPU", "%", []ChartPoint{{at(0), 0}, {at(1), 0}, {at(2), 0}}},
		{"hostile-title", `<script>alert(1)</script>" onload="x`, `<b>`, []ChartPoint{{at(0), 1}, {at(1), 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(Chart(tc.title, tc.unit, tc.points, 600, 160))
			wellFormed(t, got)
			golden := filepath.Join("testdata", "chart-"+tc.name+".svg")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(got+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./web -run TestChartGolden -update)", err)
			}
			if got+"\n" != string(want) {
				t.Errorf("chart differs from %s (rerun with -update if intended):\n%s", golden, got)
			}
		})
	}
}

func TestChart(t *testing.T) {
	t.Run("accessible", func(t *testing.T) {
		got := string(Chart("CPU", "%", []ChartPoint{{at(0), 1}, {at(30), 12.5}, {at(60), 3}}, 600, 160))
		for _, want := range []string{`role="img"`, `aria-label="CPU: latest 3 %, min 1 %, max 12.5 %, from 2025-03-01 12:00 UTC to 2025-03-01 13:00 UTC"`,
			`<title>CPU</title>`, `<desc>CPU: latest 3 %`, `>12.5 %</text>`, `>0 %</text>`, `>12:00</text>`, `>12:30</text>`, `>13:00</text>`} {
			if !strings.Contains(got, want) {
				t.Errorf("missing %s in\n%s", want, got)
			}
		}
	})
	t.Run("empty", func(t *testing.T) {
		got := string(Chart("Memory", "B", nil, 600, 160))
		if !strings.Contains(got, "No data") || !strings.Contains(got, `aria-label="Memory: no data"`) || strings.Contains(got, "chart-line") {
			t.Errorf("empty chart:\n%s", got)
		}
	})
	t.Run("one point", func(t *testing.T) {
		got := string(Chart("Memory", "B", []ChartPoint{{at(0), 5 << 20}}, 600, 160))
		if !strings.Contains(got, "<circle") || !strings.Contains(got, ">5 MiB</text>") || strings.Contains(got, "NaN") {
			t.Errorf("one point:\n%s", got)
		}
	})
	t.Run("flat", func(t *testing.T) {
		for _, v := range []float64{0, 7} {
			got := string(Chart("CPU", "%", []ChartPoint{{at(0), v}, {at(1), v}, {at(2), v}}, 600, 160))
			if strings.Contains(got, "NaN") || strings.Contains(got, "Inf") || !strings.Contains(got, "chart-line") {
				t.Errorf("flat %v:\n%s", v, got)
			}
			// A flat line is horizontal: every point has the same y.
			if v == 0 && !strings.Contains(got, `d="M64 138L326 138L588 138"`) {
				t.Errorf("flat zero series not on the baseline:\n%s", got)
			}
			if v == 7 && !strings.Contains(got, `d="M64 24L326 24L588 24"`) {
				t.Errorf("flat series not at the top:\n%s", got)
			}
		}
	})
	t.Run("NaN, Inf and negative", func(t *testing.T) {
		got := string(Chart("CPU", "%", []ChartPoint{{at(0), math.NaN()}, {at(1), -5}, {at(2), math.Inf(1)}, {at(3), 10}, {at(4), math.Inf(-1)}}, 600, 160))
		wellFormed(t, got)
		if strings.Contains(got, "NaN") || strings.Contains(got, "Inf") || strings.Contains(got, "-5") {
			t.Errorf("non-finite or negative values reached the chart:\n%s", got)
		}
		if !strings.Contains(got, "min 0 %, max 10 %") || !strings.Contains(got, `d="M64 138L588 24"`) {
			t.Errorf("negative not clamped to 0 or non-finite not left out:\n%s", got)
		}
	})
	t.Run("unsorted", func(t *testing.T) {
		a := Chart("CPU", "%", []ChartPoint{{at(2), 3}, {at(0), 1}, {at(1), 2}}, 600, 160)
		b := Chart("CPU", "%", []ChartPoint{{at(0), 1}, {at(1), 2}, {at(2), 3}}, 600, 160)
		if a != b {
			t.Errorf("order matters:\n%s\n%s", a, b)
		}
	})
	t.Run("escaped", func(t *testing.T) {
		got := string(Chart(`web<img src=x onerror=alert(1)>&"'`, `</text><script>`, []ChartPoint{{at(0), 1}, {at(1), 2}}, 600, 160))
		wellFormed(t, got)
		if strings.Contains(got, "<img") || strings.Contains(got, "<script") || strings.Contains(got, `&"`) {
			t.Errorf("unescaped user text:\n%s", got)
		}
		if !strings.Contains(got, "web&lt;img src=x onerror=alert(1)&gt;&amp;&#34;&#39;") {
			t.Errorf("title not escaped as expected:\n%s", got)
		}
	})
	t.Run("thinned to the pixels", func(t *testing.T) {
		// A week of ten-minute averages with one spike, on a plot 404
		// pixels wide (480 - the margins).
		var week []ChartPoint
		for i := range 7 * 24 * 6 {
			v := 10.0
			if i == 500 {
				v = 90
			}
			week = append(week, ChartPoint{chartT0.Add(time.Duration(i) * 10 * time.Minute), v})
		}
		got := string(Chart("CPU", "%", week, 480, 160))
		wellFormed(t, got)
		line := got[strings.Index(got, `class="chart-line" d="`):]
		if n := strings.Count(line, "L") + 1; n > 404+2 || n < 400 {
			t.Errorf("the line has %d points, want one per pixel column (404) and the two ends", n)
		}
		if !strings.Contains(got, "max 90 %") || !strings.Contains(got, `>90 %</text>`) {
			t.Errorf("the summary or the axis lost the spike that thinning averaged:\n%.600s", got)
		}
		if !strings.Contains(line, `d="M64 `) || !strings.Contains(line, `L468 `) {
			t.Errorf("the line does not span the plot (64 to 468):\n%.300s", line)
		}
		if len(got) > 12<<10 {
			t.Errorf("a week's chart is %d bytes, want at most 12 KiB", len(got))
		}
	})
	t.Run("sizes clamped", func(t *testing.T) {
		got := string(Chart("CPU", "%", nil, -1, 1<<30))
		if !strings.Contains(got, `viewBox="0 0 120 2000"`) {
			t.Errorf("sizes: %.200s", got)
		}
	})
}

func TestFormatValue(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		unit string
		want string
	}{
		{0, "%", "0 %"}, {0.1234, "%", "0.12 %"}, {12.345, "%", "12.3 %"}, {250, "%", "250 %"},
		{512, "B", "512 B"}, {1536, "B", "1.5 KiB"}, {100 << 20, "B", "100 MiB"}, {3 << 30, "B", "3 GiB"}, {1 << 50, "B", "1024 TiB"},
		{2048, "B/s", "2 KiB/s"}, {5, "", "5"}, {7, "req/s", "7 req/s"},
	} {
		if got := formatValue(tc.v, tc.unit); got != tc.want {
			t.Errorf("formatValue(%v, %q) = %q, want %q", tc.v, tc.unit, got, tc.want)
		}
	}
}
