package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"chatbx.eu/privacy/logredact"
)

// revealedMark ends every line written in full during a maintenance
// window, as the package's Handler marks its records with ip_revealed=true.
const revealedMark = " ip_revealed=true"

// filter is the io.Writer the input is copied to: it anonymizes the
// addresses of every line with the package's Scrubber and writes the result
// to out, except during a maintenance window opened on win, when complete
// lines pass in full, each marked with revealedMark. The window's start and
// end are audit records written to out by win (the package's Handler over
// a slog.TextHandler), so the lines in full are always bracketed by them.
type filter struct {
	out io.Writer
	sc  *logredact.Scrubber
	win *logredact.Handler

	mu      sync.Mutex
	scHolds bool   // sc holds the start of a line
	raw     []byte // the start of a line received during a window
	maxLine int
}

// newFilter returns a filter writing to out with opts (nil: the private
// default, truncation to /24 and /48).
func newFilter(out io.Writer, opts *logredact.Options) *filter {
	var o logredact.Options
	if opts != nil {
		o = *opts
	}
	if o.Mode == logredact.Pseudonymize && o.Keys == nil {
		// One key ring for the scrubbed lines and the audit records.
		o.Keys = logredact.NewKeyRing(0, o.Now)
	}
	maxLine := o.MaxLine
	if maxLine <= 0 {
		maxLine = 64 << 10
	}
	return &filter{
		out:     out,
		sc:      logredact.NewScrubber(out, &o),
		win:     logredact.NewHandler(slog.NewTextHandler(out, nil), &o),
		maxLine: max(maxLine, 1024),
	}
}

// Write anonymizes p (any piece of the input, lines need not be whole) and
// writes it out. It returns len(p), or the first error of the output.
func (f *filter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(p)
	until, open := f.win.Revealing()
	if !open {
		var err error
		if !until.IsZero() {
			// A window found expired: its end goes on record first.
			err = f.win.Conceal()
		}
		if len(f.raw) > 0 {
			// The start of a line received in the window ends after it.
			if _, werr := f.sc.Write(f.raw); werr != nil {
				return 0, werr
			}
			f.scHolds = true
			f.raw = f.raw[:0]
		}
		if _, werr := f.sc.Write(p); werr != nil {
			return 0, werr
		}
		if len(p) > 0 {
			if bytes.IndexByte(p, '\n') >= 0 {
				f.scHolds = p[len(p)-1] != '\n'
			} else {
				f.scHolds = true
			}
		}
		return n, err
	}
	if f.scHolds {
		// A line started before the window is anonymized whole.
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			_, err := f.sc.Write(p)
			return n, err
		}
		if _, err := f.sc.Write(p[:i+1]); err != nil {
			return 0, err
		}
		f.scHolds = false
		p = p[i+1:]
	}
	f.raw = append(f.raw, p...)
	nl := bytes.LastIndexByte(f.raw, '\n')
	if nl < 0 && len(f.raw) <= f.maxLine {
		return n, nil
	}
	var out []byte
	lines := f.raw
	if nl >= 0 {
		lines = f.raw[:nl+1]
	}
	for len(lines) > 0 {
		i := bytes.IndexByte(lines, '\n')
		if i < 0 {
			// An overlong line without newline: written in full, marked.
			out = append(append(append(out, lines...), revealedMark...), '\n')
			break
		}
		out = append(append(append(out, lines[:i]...), revealedMark...), '\n')
		lines = lines[i+1:]
	}
	if nl >= 0 {
		f.raw = f.raw[:copy(f.raw, f.raw[nl+1:])]
	} else {
		f.raw = f.raw[:0]
	}
	if _, err := f.out.Write(out); err != nil {
		return 0, fmt.Errorf("writing a revealed line: %w", err)
	}
	return n, nil
}

// Close writes out a last line without newline and logs the end of an
// open maintenance window.
func (f *filter) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var err error
	if len(f.raw) > 0 {
		// The window may have closed since: anonymize what is left.
		_, err = f.sc.Write(f.raw)
		f.raw = nil
	}
	return errors.Join(err, f.sc.Close(), f.win.Conceal())
}
