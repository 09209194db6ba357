package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ErrProcFormat is returned when a /proc file does not have the expected
// layout.
var ErrProcFormat = errors.New("load: unexpected /proc format")

// clockTick is the unit of utime and stime in /proc/<pid>/stat: USER_HZ,
// 100 on every Linux architecture Go supports (sysconf(_SC_CLK_TCK) needs
// cgo).
const clockTick = 10 * time.Millisecond

// procSample is a server process's CPU and memory at one moment.
type procSample struct {
	CPU   time.Duration // user + system time since the process started
	RSS   int64         // VmRSS in bytes
	HWM   int64         // VmHWM (peak RSS) in bytes
	Taken time.Time
}

// parseStat returns utime + stime from the contents of /proc/<pid>/stat.
// The command name (field 2) is in parentheses and may itself hold spaces
// and parentheses, so the fields are counted after its last ')'.
func parseStat(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("%w: stat has no command name", ErrProcFormat)
	}
	f := strings.Fields(string(b[i+1:]))
	// After the name: state is field 3, so utime (14) and stime (15) are
	// at indexes 11 and 12.
	if len(f) < 13 {
		return 0, fmt.Errorf("%w: stat has %d fields after the name", ErrProcFormat, len(f))
	}
	var total time.Duration
	for _, s := range f[11:13] {
		v, err := strconv.ParseUint(s, 10, 63)
		if err != nil {
			return 0, fmt.Errorf("%w: stat time %q", ErrProcFormat, s)
		}
		ticks := time.Duration(v)
		if ticks > (1<<62)/clockTick {
			return 0, fmt.Errorf("%w: stat time %q out of range", ErrProcFormat, s)
		}
		total += ticks * clockTick
	}
	return total, nil
}

// parseStatus returns VmRSS and VmHWM in bytes from the contents of
// /proc/<pid>/status.
func parseStatus(b []byte) (rss, hwm int64, err error) {
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("%w: %s %q", ErrProcFormat, key, val)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 || kb > 1<<40 {
			return 0, 0, fmt.Errorf("%w: %s %q", ErrProcFormat, key, val)
		}
		if key == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
		found++
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("%w: %v", ErrProcFormat, err)
	}
	if found < 2 {
		return 0, 0, fmt.Errorf("%w: status without VmRSS and VmHWM", ErrProcFormat)
	}
	return rss, hwm, nil
}

// sampleProc reads /proc/<pid>/stat and /proc/<pid>/status.
func sampleProc(pid int) (procSample, error) {
	now := time.Now()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procSample{}, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procSample{}, err
	}
	cpu, err := parseStat(stat)
	if err != nil {
		return procSample{}, err
	}
	rss, hwm, err := parseStatus(status)
	if err != nil {
		return procSample{}, err
	}
	return procSample{CPU: cpu, RSS: rss, HWM: hwm, Taken: now}, nil
}
