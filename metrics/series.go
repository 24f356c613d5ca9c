package metrics

import (
	"context"
	"fmt"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/store"
)

// Range is a span of time a series covers and the resolution it is read
// at.
type Range struct {
	Name string        // "1h", "24h" or "7d"
	Span time.Duration // how far back
	Step time.Duration // 0: raw samples; else the rollup's interval
}

// Ranges are the ranges the API and the dashboard offer.
var Ranges = []Range{
	{"1h", time.Hour, 0},
	{"24h", 24 * time.Hour, time.Minute},
	{"7d", 7 * 24 * time.Hour, 10 * time.Minute},
}

// ParseRange returns the range named s; "" is the first, 1 h. Anything
// else is a berth.Invalid error.
func ParseRange(s string) (Range, error) {
	if s == "" {
		return Ranges[0], nil
	}
	for _, r := range Ranges {
		if r.Name == s {
			return r, nil
		}
	}
	if len(s) > 16 {
		s = s[:16] + "..."
	}
	return Range{}, berth.E("parse range", berth.Invalid, "range %q: use 1h, 24h or 7d", s)
}

// Series returns an app's samples over r up to now, oldest first: raw
// samples for 1 h; for longer ranges the stored rollups followed by the raw
// samples not yet rolled up, averaged over the same step (the last point
// may cover part of its interval).
func Series(ctx context.Context, st *store.Store, teamID, appID string, r Range, now time.Time) ([]berth.MetricSample, error) {
	since := now.Add(-r.Span)
	if r.Step == 0 {
		out, err := st.MetricSamples(ctx, teamID, appID, since)
		if err != nil {
			return nil, fmt.Errorf("read metric samples: %w", err)
		}
		return out, nil
	}
	out, err := st.MetricRollups(ctx, teamID, appID, r.Step, since.Truncate(r.Step))
	if err != nil {
		return nil, fmt.Errorf("read metric rollups: %w", err)
	}
	tail := since
	if n := len(out); n > 0 {
		tail = out[n-1].At.Add(r.Step)
	}
	raw, err := st.MetricSamples(ctx, teamID, appID, tail)
	if err != nil {
		return nil, fmt.Errorf("read metric samples: %w", err)
	}
	return append(out, Average(raw, r.Step)...), nil
}
