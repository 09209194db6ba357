package main

import (
	"math"
	"slices"
	"sync"
	"time"
)

// percentile returns the p-th percentile (0 ≤ p ≤ 100) of sorted by the
// nearest-rank method: the smallest value such that at least p% of the
// values are ≤ it. It returns 0 for an empty slice; p is clamped to
// [0, 100].
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if math.IsNaN(p) || p <= 0 {
		return sorted[0]
	}
	if p >= 100 {
		return sorted[n-1]
	}
	// The epsilon keeps a rank that is whole in decimal (99.9% of 1,000)
	// from rounding up through a binary fraction.
	rank := int(math.Ceil(p/100*float64(n) - 1e-9))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

// latencies collects durations from many goroutines.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// summary is the distribution of a set of durations, in microseconds.
type summary struct {
	N     int     `json:"n"`
	P50us float64 `json:"p50_us"`
	P90us float64 `json:"p90_us"`
	P99us float64 `json:"p99_us"`
	MaxUs float64 `json:"max_us"`
}

func (l *latencies) summary() summary {
	l.mu.Lock()
	d := slices.Clone(l.d)
	l.mu.Unlock()
	slices.Sort(d)
	us := func(x time.Duration) float64 { return float64(x) / float64(time.Microsecond) }
	return summary{
		N:     len(d),
		P50us: us(percentile(d, 50)),
		P90us: us(percentile(d, 90)),
		P99us: us(percentile(d, 99)),
		MaxUs: us(percentile(d, 100)),
	}
}
