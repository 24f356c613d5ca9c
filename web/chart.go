package web

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"
)

// ChartPoint is one value of a chart's series.
type ChartPoint struct {
	At    time.Time
	Value float64
}

// Chart margins around the plot area, in SVG user units.
const (
	chartLeft   = 64
	chartRight  = 12
	chartTop    = 24
	chartBottom = 22
)

// Chart renders a time series as an inline SVG line-and-area chart:
// a title, the y axis from 0 to the largest value (labelled with unit), the
// first, middle and last times on the x axis, and a summary (latest, min,
// max) for screen readers (role="img", aria-label, <title>, <desc>). It
// has no script, takes its colours from CSS (currentColor, classes
// chart-*), and escapes every text it is given. points are drawn in time
// order; values that are not finite are left out and negative ones are
// drawn at 0. unit is "%", "B" (bytes, shown in KiB, MiB…), "B/s", or
// any other suffix shown as is. Sizes are clamped to 120×80–4000×2000. A
// series with more points than the plot has pixel columns is drawn
// averaged per column (see thin).
func Chart(title, unit string, points []ChartPoint, width, height int) template.HTML {
	width = min(max(width, 120), 4000)
	height = min(max(height, 80), 2000)
	pts := make([]ChartPoint, 0, len(points))
	for _, p := range points {
		if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
			continue
		}
		p.Value = max(p.Value, 0)
		pts = append(pts, p)
	}
	// Time order, stable for equal times; callers mostly pass it sorted.
	for i := 1; i < len(pts); i++ {
		for j := i; j > 0 && pts[j].At.Before(pts[j-1].At); j-- {
			pts[j], pts[j-1] = pts[j-1], pts[j]
		}
	}

	esc := template.HTMLEscapeString
	var b strings.Builder
	summary := title + ": no data"
	lo, hi := 0.0, 0.0
	if len(pts) > 0 {
		lo, hi = pts[0].Value, pts[0].Value
		for _, p := range pts {
			lo, hi = min(lo, p.Value), max(hi, p.Value)
		}
		summary = fmt.Sprintf("%s: latest %s, min %s, max %s, from %s to %s", title,
			formatValue(pts[len(pts)-1].Value, unit), formatValue(lo, unit), formatValue(hi, unit),
			pts[0].At.UTC().Format("2006-01-02 15:04 UTC"), pts[len(pts)-1].At.UTC().Format("2006-01-02 15:04 UTC"))
	}
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`,
		width, height, width, height, esc(summary))
	fmt.Fprintf(&b, `<title>%s</title><desc>%s</desc>`, esc(title), esc(summary))
	fmt.Fprintf(&b, `<text class="chart-title" x="%d" y="16" font-size="13" fill="currentColor">%s</text>`, chartLeft, esc(title))

	x0, x1 := float64(chartLeft), float64(width-chartRight)
	y0, y1 := float64(height-chartBottom), float64(chartTop) // y0 is the baseline
	fmt.Fprintf(&b, `<path class="chart-axis" d="M%s %sV%sH%s" fill="none" stroke="currentColor" stroke-opacity="0.4"/>`,
		num(x0), num(y1), num(y0), num(x1))
	if len(pts) == 0 {
		fmt.Fprintf(&b, `<text class="chart-empty" x="%s" y="%s" font-size="12" text-anchor="middle" fill="currentColor" fill-opacity="0.7">No data</text></svg>`,
			num((x0+x1)/2), num((y0+y1)/2))
		return template.HTML(b.String())
	}

	top := hi
	if top <= 0 {
		top = 1 // a flat zero series lies on the baseline
	}
	fmt.Fprintf(&b, `<text class="chart-label" x="%d" y="%s" font-size="11" text-anchor="end" fill="currentColor">%s</text>`,
		chartLeft-6, num(y1+4), esc(formatValue(top, unit)))
	fmt.Fprintf(&b, `<text class="chart-label" x="%d" y="%s" font-size="11" text-anchor="end" fill="currentColor">%s</text>`,
		chartLeft-6, num(y0), esc(formatValue(0, unit)))
	fmt.Fprintf(&b, `<path class="chart-grid" d="M%s %sH%s" fill="none" stroke="currentColor" stroke-opacity="0.15" stroke-dasharray="3 3"/>`,
		num(x0), num(y1), num(x1))

	first, last := pts[0].At, pts[len(pts)-1].At
	span := last.Sub(first)
	x := func(t time.Time) float64 {
		if span <= 0 {
			return x1
		}
		return x0 + float64(t.Sub(first))/float64(span)*(x1-x0)
	}
	y := func(v float64) float64 { return y0 - v/top*(y0-y1) }

	layout := "15:04"
	if span > 36*time.Hour {
		layout = "Jan 2 15:04"
	}
	labels := []struct {
		t      time.Time
		anchor string
	}{{first, "start"}, {first.Add(span / 2), "middle"}, {last, "end"}}
	if span <= 0 {
		labels = labels[2:]
	}
	prev := ""
	for _, l := range labels {
		text := l.t.UTC().Format(layout)
		if text == prev {
			continue // a short span: the middle time reads as the first
		}
		prev = text
		fmt.Fprintf(&b, `<text class="chart-label" x="%s" y="%d" font-size="11" text-anchor="%s" fill="currentColor">%s</text>`,
			num(x(l.t)), height-6, l.anchor, esc(text))
	}

	if len(pts) == 1 {
		fmt.Fprintf(&b, `<circle class="chart-line" cx="%s" cy="%s" r="3" fill="currentColor"/></svg>`, num(x(first)), num(y(pts[0].Value)))
		return template.HTML(b.String())
	}
	var line strings.Builder
	for i, p := range thin(pts, first, span, int(x1-x0)) {
		cmd := "L"
		if i == 0 {
			cmd = "M"
		}
		fmt.Fprintf(&line, "%s%s %s", cmd, num(x(p.At)), num(y(p.Value)))
	}
	fmt.Fprintf(&b, `<path class="chart-area" d="%sL%s %sL%s %sZ" fill="currentColor" fill-opacity="0.15" stroke="none"/>`,
		line.String(), num(x(last)), num(y0), num(x(first)), num(y0))
	fmt.Fprintf(&b, `<path class="chart-line" d="%s" fill="none" stroke="currentColor" stroke-width="1.5" stroke-linejoin="round"/></svg>`, line.String())
	return template.HTML(b.String())
}

// thin returns pts (in time order, spanning span from first) with at most
// one point per pixel column of a plot cols pixels wide: the points of a
// column are averaged, time and value, as the stored rollups already are;
// the first and the last point stay as they are, so that the line spans
// the plot. A week of ten-minute averages (1,008 points) would otherwise
// draw two or three points per pixel and make the page several times
// larger for nothing to see; the summary's latest, min and max come from
// every point.
func thin(pts []ChartPoint, first time.Time, span time.Duration, cols int) []ChartPoint {
	if cols < 1 || len(pts) <= cols+1 || span <= 0 {
		return pts
	}
	out := make([]ChartPoint, 0, cols+2)
	out = append(out, pts[0])
	last := pts[len(pts)-1]
	pts = pts[1 : len(pts)-1]
	col, n := -1, 0
	var sumT, sumV float64
	flush := func() {
		if n > 0 {
			out = append(out, ChartPoint{At: first.Add(time.Duration(sumT / float64(n))), Value: sumV / float64(n)})
		}
	}
	for _, p := range pts {
		off := p.At.Sub(first)
		c := int(float64(off) / float64(span) * float64(cols))
		if c != col {
			flush()
			col, n, sumT, sumV = c, 0, 0, 0
		}
		n++
		sumT += float64(off)
		sumV += p.Value
	}
	flush()
	return append(out, last)
}

// num formats a coordinate with at most one decimal.
func num(v float64) string {
	return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64)
}

// formatValue shows a value with its unit: bytes in binary multiples
// (KiB, MiB…), anything else with the unit as a suffix.
func formatValue(v float64, unit string) string {
	switch unit {
	case "B", "B/s":
		suffix := strings.TrimPrefix(unit, "B")
		u := 0
		names := []string{"B", "KiB", "MiB", "GiB", "TiB"}
		for math.Abs(v) >= 1024 && u < len(names)-1 {
			v /= 1024
			u++
		}
		return short(v) + " " + names[u] + suffix
	case "":
		return short(v)
	}
	return short(v) + " " + unit
}

// short shows v with two decimals below 10, one below 100, none above,
// without trailing zeros.
func short(v float64) string {
	prec := 0
	switch a := math.Abs(v); {
	case a < 10:
		prec = 2
	case a < 100:
		prec = 1
	}
	s := strconv.FormatFloat(v, 'f', prec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}
