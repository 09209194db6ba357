package main

import (
	"errors"
	"os"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want time.Duration
		err  bool
	}{
		{"plain", "1234 (server) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 8 0 100 0 0", 3250 * time.Millisecond, false},
		{"name with spaces and parens", "99 (a) b (c)) R 1 2 3 4 5 6 7 8 9 10 7 3 0 0", 100 * time.Millisecond, false},
		{"lua interpreter", "77 (lua5.4) S 1 77 77 0 -1 0 0 0 0 0 0 1 0 0", 10 * time.Millisecond, false},
		{"no name", "1234 server S 1", 0, true},
		{"too short", "1234 (x) S 1 2 3", 0, true},
		{"not a number", "1 (x) S 1 2 3 4 5 6 7 8 9 10 zz 3", 0, true},
		{"negative", "1 (x) S 1 2 3 4 5 6 7 8 9 10 -1 3", 0, true},
		{"overflow", "1 (x) S 1 2 3 4 5 6 7 8 9 10 9223372036854775807 3", 0, true},
		{"empty", "", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStat([]byte(tc.in))
			if tc.err {
				if !errors.Is(err, ErrProcFormat) {
					t.Errorf("err = %v, want ErrProcFormat", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("parseStat = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	const ok = "Name:\tserver\nVmPeak:\t  900 kB\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\nThreads:\t8\n"
	rss, hwm, err := parseStatus([]byte(ok))
	if err != nil || rss != 1024<<10 || hwm != 2048<<10 {
		t.Errorf("parseStatus = %d, %d, %v", rss, hwm, err)
	}
	for name, in := range map[string]string{
		"empty":      "",
		"no HWM":     "VmRSS:\t1 kB\n",
		"bad unit":   "VmRSS:\t1 MB\nVmHWM:\t1 kB\n",
		"bad number": "VmRSS:\tx kB\nVmHWM:\t1 kB\n",
		"negative":   "VmRSS:\t-1 kB\nVmHWM:\t1 kB\n",
		"huge":       "VmRSS:\t99999999999999 kB\nVmHWM:\t1 kB\n",
	} {
		if _, _, err := parseStatus([]byte(in)); !errors.Is(err, ErrProcFormat) {
			t.Errorf("%s: err = %v, want ErrProcFormat", name, err)
		}
	}
}

// TestSampleProcSelf reads this test process, whose CPU time and RSS are
// positive.
func TestSampleProcSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	s, err := sampleProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS <= 0 || s.HWM < s.RSS {
		t.Errorf("sample = %+v", s)
	}
}

// FuzzProc feeds arbitrary bytes to both /proc parsers: an error or a
// non-negative figure, never a panic.
func FuzzProc(f *testing.F) {
	f.Add([]byte("1234 (server) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 75 0 0"))
	f.Add([]byte("VmHWM:\t2048 kB\nVmRSS:\t1024 kB\n"))
	f.Add([]byte("1 ((() R )) 1 2 3 4 5 6 7 8 9 10 11 12"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, err := parseStat(b); err == nil && d < 0 {
			t.Errorf("negative CPU time %v", d)
		} else if err != nil && !errors.Is(err, ErrProcFormat) {
			t.Errorf("error %v does not wrap ErrProcFormat", err)
		}
		if rss, hwm, err := parseStatus(b); err == nil && (rss < 0 || hwm < 0) {
			t.Errorf("negative memory %d %d", rss, hwm)
		} else if err != nil && !errors.Is(err, ErrProcFormat) {
			t.Errorf("error %v does not wrap ErrProcFormat", err)
		}
	})
}
