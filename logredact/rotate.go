package logredact

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// RotateConfig configures a RotatingFile. The zero value (apart from Dir,
// which is required) is the private default: one file per hour, kept for 24
// hours.
type RotateConfig struct {
	// Dir is the directory of the log files. It is created with mode 0700
	// if missing, and set to 0700 if it exists.
	Dir string
	// Name starts every file name: Name-2026-11-26T23.log. "" means "log".
	Name string
	// Period is how long one file collects records: 0 means one hour. It
	// must be a whole number of minutes. Periods start at multiples of
	// Period in UTC (a 24-hour period starts at UTC midnight).
	Period time.Duration
	// MaxAge is how long a record may be kept: 0 means 24 hours. It is
	// used by ExpireOld and Retention; Expire takes its own cutoff.
	MaxAge time.Duration
	// Now is the clock: nil means time.Now.
	Now func() time.Time
}

// XMPPLogConfig is the preset for the XMPP connection log (time, user,
// anonymized IP): hourly files, no record kept for more than 24 hours.
func XMPPLogConfig(dir string) RotateConfig {
	return RotateConfig{Dir: dir, Name: "xmpp", Period: time.Hour, MaxAge: 24 * time.Hour}
}

// HTTPErrorLogConfig is the preset for the HTTP server's error log: daily
// files, no record kept for more than 30 days.
func HTTPErrorLogConfig(dir string) RotateConfig {
	return RotateConfig{Dir: dir, Name: "http-error", Period: 24 * time.Hour, MaxAge: 30 * 24 * time.Hour}
}

// RotatingFile is an io.Writer that appends to one file per period, named
// after the start of the period (xmpp-2026-11-26T23.log for an hourly file,
// xmpp-2026-11-26T23-15.log when the period is not a whole number of hours).
// Files are created with mode 0600 in a directory with mode 0700. Each Write
// goes to a single file whole, so a log line is never split between two
// files.
//
// Expire deletes the files whose period ended before a cutoff; EraseLines
// removes the lines that mention someone. A RotatingFile is safe for
// concurrent use.
type RotatingFile struct {
	dir    string
	name   string
	period time.Duration
	maxAge time.Duration
	now    func() time.Time
	layout string

	mu     sync.Mutex
	f      *os.File  // current file, nil until the first Write
	start  time.Time // start of f's period
	closed bool
}

// OpenRotating validates cfg and prepares its directory. Files are opened on
// the first Write of each period.
func OpenRotating(cfg RotateConfig) (*RotatingFile, error) {
	r := &RotatingFile{
		dir:    cfg.Dir,
		name:   cfg.Name,
		period: cfg.Period,
		maxAge: cfg.MaxAge,
		now:    cfg.Now,
	}
	if r.dir == "" {
		return nil, fmt.Errorf("logredact: rotating file: no directory: %w", ErrConfig)
	}
	if r.name == "" {
		r.name = "log"
	}
	if strings.ContainsAny(r.name, `/\`) || r.name == "." || r.name == ".." {
		return nil, fmt.Errorf("logredact: rotating file: name %q: %w", r.name, ErrConfig)
	}
	if r.period == 0 {
		r.period = time.Hour
	}
	if r.period < time.Minute || r.period%time.Minute != 0 {
		return nil, fmt.Errorf("logredact: rotating file: period %v is not a whole number of minutes: %w", r.period, ErrConfig)
	}
	if r.maxAge <= 0 {
		r.maxAge = 24 * time.Hour
	}
	if r.now == nil {
		r.now = time.Now
	}
	r.layout = "2006-01-02T15"
	if r.period%time.Hour != 0 {
		r.layout = "2006-01-02T15-04"
	}
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return nil, fmt.Errorf("logredact: rotating file: %w", err)
	}
	if err := os.Chmod(r.dir, 0o700); err != nil {
		return nil, fmt.Errorf("logredact: rotating file: %w", err)
	}
	return r, nil
}

// Write appends p to the file of the current period, opening it (and
// closing the previous one) when the period changed.
func (r *RotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, ErrClosed
	}
	start := r.now().UTC().Truncate(r.period)
	if r.f == nil || !start.Equal(r.start) {
		if err := r.closeCurrent(); err != nil {
			return 0, err
		}
		f, err := openLog(filepath.Join(r.dir, r.fileName(start)))
		if err != nil {
			return 0, err
		}
		r.f, r.start = f, start
	}
	n, err := r.f.Write(p)
	if err != nil {
		return n, fmt.Errorf("logredact: rotating file: %w", err)
	}
	return n, nil
}

func openLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("logredact: rotating file: %w", err)
	}
	// An existing file may have been created with a wider mode.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("logredact: rotating file: %w", err)
	}
	return f, nil
}

// closeCurrent syncs and closes the current file. Called with r.mu held.
func (r *RotatingFile) closeCurrent() error {
	if r.f == nil {
		return nil
	}
	f := r.f
	r.f = nil
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(serr, cerr); err != nil {
		return fmt.Errorf("logredact: rotating file: %w", err)
	}
	return nil
}

// Sync commits the current file to stable storage.
func (r *RotatingFile) Sync() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	if err := r.f.Sync(); err != nil {
		return fmt.Errorf("logredact: rotating file: %w", err)
	}
	return nil
}

// Close syncs and closes the current file. Later Writes fail with ErrClosed;
// Expire and EraseLines keep working on the files.
func (r *RotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return r.closeCurrent()
}

func (r *RotatingFile) fileName(start time.Time) string {
	return r.name + "-" + start.UTC().Format(r.layout) + ".log"
}

// Retention is MaxAge minus one Period: the cutoff age at which Expire
// deletes a file just as its oldest record reaches MaxAge, since a file is
// deleted only once its newest record passes the cutoff. ExpireOld uses it.
// A retention job needs RetentionMaxAge instead: with Retention as its
// MaxAge, a record may outlive MaxAge by the time between two runs.
func (r *RotatingFile) Retention() time.Duration {
	return max(r.maxAge-r.period, 0)
}

// RetentionMaxAge returns the MaxAge to give a retention job that calls
// Expire every interval, so that no record is kept longer than the
// writer's MaxAge: Retention minus the longest time between two runs (the
// interval plus the scheduler's random delay of up to 10 % of it, the
// retention package's default jitter) and one second for the run itself.
// interval 0 means 10 minutes, the retention package's default; the result
// is never negative.
//
// A privacy report built from such a job states a deletion time one Period
// shorter than MaxAge, because the report counts from a file's newest
// record and a file also holds older ones: describe the promise (MaxAge) in
// the job's Data.
func (r *RotatingFile) RetentionMaxAge(interval time.Duration) time.Duration {
	if interval <= 0 {
		interval = 10 * time.Minute
	}
	const jitter = 0.1
	gap := interval + time.Duration(jitter*float64(interval))
	return max(r.Retention()-gap-time.Second, 0)
}

// ExpireOld deletes the files of records older than MaxAge: it is
// Expire(ctx, now - Retention()).
func (r *RotatingFile) ExpireOld(ctx context.Context) (removed int, err error) {
	return r.Expire(ctx, r.now().Add(-r.Retention()))
}

type logFile struct {
	path  string
	start time.Time
}

// files lists this writer's files, oldest first. Other files in the
// directory are ignored.
func (r *RotatingFile) files() ([]logFile, error) {
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		return nil, fmt.Errorf("logredact: rotating file: %w", err)
	}
	var out []logFile
	for _, e := range entries {
		n := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(n, r.name+"-") || !strings.HasSuffix(n, ".log") {
			continue
		}
		stamp := strings.TrimSuffix(strings.TrimPrefix(n, r.name+"-"), ".log")
		start, err := time.Parse("2006-01-02T15", stamp)
		if err != nil {
			start, err = time.Parse("2006-01-02T15-04", stamp)
		}
		if err != nil {
			continue
		}
		out = append(out, logFile{path: filepath.Join(r.dir, n), start: start})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start.Before(out[j].start) })
	return out, nil
}

// Expire deletes the files that hold only records older than before, that
// is the files whose period ended at or before before, including the current
// file if its period is over. It returns the number of files deleted. Its
// signature is the one the retention package's Expirer interface declares.
func (r *RotatingFile) Expire(ctx context.Context, before time.Time) (removed int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	files, err := r.files()
	if err != nil {
		return 0, err
	}
	for _, lf := range files {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		if lf.start.Add(r.period).After(before) {
			break // sorted: every later file is newer
		}
		if r.f != nil && filepath.Base(lf.path) == r.fileName(r.start) {
			if err := r.closeCurrent(); err != nil {
				return removed, err
			}
		}
		if err := os.Remove(lf.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return removed, fmt.Errorf("logredact: expiring %s: %w", filepath.Base(lf.path), err)
		}
		removed++
	}
	if removed > 0 {
		if err := syncDir(r.dir); err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// EraseLines rewrites every file of this writer without the lines that
// contain the substring contains, and returns the number of lines removed.
// It serves account deletion: pass a token precise enough to match only
// that account (for a JSON log, `"user":"alice@example.org"` rather than
// "alice"). Each changed file is replaced atomically: the kept lines are
// written to a temporary file (mode 0600) that is synced and renamed over the
// original. Writes wait while EraseLines runs; the current file is closed
// first and reopened by the next Write.
//
// The erased bytes may survive in free blocks of the file system until they
// are overwritten; the file that held them no longer exists.
func (r *RotatingFile) EraseLines(ctx context.Context, contains string) (removed int, err error) {
	if contains == "" {
		return 0, fmt.Errorf("%w: empty erase pattern", ErrBadRequest)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.closeCurrent(); err != nil {
		return 0, err
	}
	files, err := r.files()
	if err != nil {
		return 0, err
	}
	for _, lf := range files {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		n, err := eraseLines(lf.path, []byte(contains))
		removed += n
		if err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// eraseLines rewrites path without the lines containing pat.
func eraseLines(path string, pat []byte) (removed int, err error) {
	src, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil
		}
		return 0, fmt.Errorf("logredact: erase: %w", err)
	}
	defer src.Close()
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".erase-*.tmp") // mode 0600
	if err != nil {
		return 0, fmt.Errorf("logredact: erase: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	br := bufio.NewReaderSize(src, 64<<10)
	bw := bufio.NewWriterSize(tmp, 64<<10)
	for {
		line, rerr := br.ReadBytes('\n')
		if len(line) > 0 {
			if bytes.Contains(line, pat) {
				removed++
			} else if _, err := bw.Write(line); err != nil {
				return 0, fmt.Errorf("logredact: erase: %w", err)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return 0, fmt.Errorf("logredact: erase: %w", rerr)
		}
	}
	if removed == 0 {
		return 0, nil
	}
	if err := bw.Flush(); err != nil {
		return 0, fmt.Errorf("logredact: erase: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return 0, fmt.Errorf("logredact: erase: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return 0, fmt.Errorf("logredact: erase: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return 0, fmt.Errorf("logredact: erase: %w", err)
	}
	done = true
	if err := syncDir(dir); err != nil {
		return removed, err
	}
	return removed, nil
}

// syncDir makes renames and removals in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("logredact: sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("logredact: sync dir: %w", err)
	}
	return nil
}
