package main

import "slices"

// median returns the median of xs (the mean of the two middle values for an
// even count), or 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// spread returns the smallest and the largest of xs.
func spread(xs []float64) (lo, hi float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	return slices.Min(xs), slices.Max(xs)
}

// ratio returns a/b, or nil when b is not positive: a ratio against a
// missing or broken baseline is no measurement.
func ratio(a, b float64) *float64 {
	if b <= 0 || a < 0 {
		return nil
	}
	r := a / b
	return &r
}

// num returns a pointer to v, for a JSON value that may be null.
func num(v float64) *float64 { return &v }
