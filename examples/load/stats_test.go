package main

import (
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ten := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value", []time.Duration{7}, 99, 7},
		{"p50 of ten", ten, 50, 5},
		{"p90 of ten", ten, 90, 9},
		{"p99 of ten is the max", ten, 99, 10},
		{"p100", ten, 100, 10},
		{"p0 is the min", ten, 0, 1},
		{"p10 of ten", ten, 10, 1},
		{"p11 of ten rounds up", ten, 11, 2},
		{"negative clamps", ten, -5, 1},
		{"above 100 clamps", ten, 250, 10},
		{"NaN is the min", ten, math.NaN(), 1},
		{"p99 of 1000", seq(1000), 99, 990},
		{"p99.9 of 1000", seq(1000), 99.9, 999},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("percentile(%d values, %v) = %v, want %v", len(tc.sorted), tc.p, got, tc.want)
			}
		})
	}
}

func seq(n int) []time.Duration {
	d := make([]time.Duration, n)
	for i := range d {
		d[i] = time.Duration(i + 1)
	}
	return d
}

func TestSummary(t *testing.T) {
	var l latencies
	for i := 100; i >= 1; i-- { // out of order: summary sorts
		l.add(time.Duration(i) * time.Microsecond)
	}
	s := l.summary()
	if s != (summary{N: 100, P50us: 50, P90us: 90, P99us: 99, MaxUs: 100}) {
		t.Errorf("summary = %+v", s)
	}
	if (&latencies{}).summary() != (summary{}) {
		t.Error("empty summary not zero")
	}
}

func TestBody(t *testing.T) {
	b := body(3, 41, 1234567*time.Nanosecond)
	s, q, at, ok := parseBody(b)
	if !ok || s != 3 || q != 41 || at != 1234567 {
		t.Errorf("parseBody(%q) = %d %d %v %v", b, s, q, at, ok)
	}
	for _, bad := range []string{"", "hello", "load 1 2", "load -1 2 3", "load a 2 3", "load 1 2 3 4", "load 1 2 99999999999999999999"} {
		if _, _, _, ok := parseBody(bad); ok {
			t.Errorf("parseBody(%q) accepted", bad)
		}
	}
}

func TestReadUsers(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(good, []byte("# accounts\nalice secret one\n\n bob  pw \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := readUsers(good)
	if err != nil || len(got) != 2 || got[0] != (account{"alice", "secret one"}) || got[1] != (account{"bob", "pw"}) {
		t.Errorf("readUsers = %+v, %v", got, err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("alice\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readUsers(bad); err == nil {
		t.Error("a line without a password was accepted")
	}
}

func TestParseFlagsRefuses(t *testing.T) {
	for _, args := range [][]string{
		{"-n", "0"}, {"-k", "-1"}, {"-page", "0"}, {"-size", "-1"}, {"-timeout", "0s"},
		{"extra"}, {"-compare", "one"},
	} {
		if _, err := parseFlags(args, nopWriter{}); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
	if _, err := usersNeeded(options{scenario: "nope"}); err == nil {
		t.Error("unknown scenario accepted")
	}
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

// TestScheduleDue: open loop, the senders' messages are due evenly at the
// total rate, interleaved (message seq of sender i is the (seq·k+i)-th).
func TestScheduleDue(t *testing.T) {
	var tr traffic
	tr.schedule(1000, 4)
	tr.t0 = 0
	for _, tc := range []struct {
		i, seq int
		want   time.Duration
	}{
		{0, 0, 0},
		{1, 0, time.Millisecond},
		{3, 0, 3 * time.Millisecond},
		{0, 1, 4 * time.Millisecond},
		{2, 250, 1002 * time.Millisecond},
	} {
		if got := tr.due(tc.i, tc.seq); got != tc.want {
			t.Errorf("due(%d, %d) = %v, want %v", tc.i, tc.seq, got, tc.want)
		}
	}
}
