package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
)

// readResults reads one or more JSON results (as printed by -json, one
// after the other) from path.
func readResults(path string) ([]result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []result
	d := json.NewDecoder(f)
	for {
		var r result
		if err := d.Decode(&r); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, r)
	}
}

// metric is one comparable figure of a result; higher says whether more
// is better.
type metric struct {
	name   string
	value  func(result) float64
	higher bool
}

var metrics = []metric{
	{"messages (pages, files) per s", func(r result) float64 { return r.PerSecond }, true},
	{"latency p50 µs", func(r result) float64 { return r.Latency.P50us }, false},
	{"latency p99 µs", func(r result) float64 { return r.Latency.P99us }, false},
	{"MB/s", func(r result) float64 { return r.MBps }, true},
	{"server CPU per message µs", func(r result) float64 { return r.CPUPerMessage }, false},
	{"server RSS per session KiB", func(r result) float64 { return r.PerSessionKiB }, false},
	{"server peak RSS KiB", func(r result) float64 { return float64(r.HWMKiB) }, false},
}

// compare prints the results of two files side by side, scenario by
// scenario, with the ratio ours/theirs and whether ours is better.
func compare(w io.Writer, ours, theirs string) error {
	a, err := readResults(ours)
	if err != nil {
		return err
	}
	b, err := readResults(theirs)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	var errs []string
	fmt.Fprintln(tw, "scenario\tfigure\tA\tB\tA/B\t")
	for _, x := range a {
		var y *result
		for i := range b {
			if b[i].Scenario == x.Scenario {
				y = &b[i]
				break
			}
		}
		if y == nil {
			continue
		}
		if x.Server != "" && y.Server != "" {
			fmt.Fprintf(tw, "%s\t(A = %s, B = %s)\t\t\t\t\n", x.Scenario, x.Server, y.Server)
		}
		for _, m := range metrics {
			va, vb := m.value(x), m.value(*y)
			if va == 0 && vb == 0 {
				continue
			}
			ratio := "-"
			if vb != 0 {
				ratio = fmt.Sprintf("%.2f×", va/vb)
			}
			better := "lower is better"
			if m.higher {
				better = "higher is better"
			}
			fmt.Fprintf(tw, "%s\t%s (%s)\t%.1f\t%.1f\t%s\t\n", x.Scenario, m.name, better, va, vb, ratio)
		}
		for _, e := range []*result{&x, y} {
			if e.Error != "" {
				errs = append(errs, fmt.Sprintf("%s, %s: %s", x.Scenario, e.Server, e.Error))
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, e := range errs {
		if _, err := fmt.Fprintln(w, "error:", e); err != nil {
			return err
		}
	}
	return nil
}
