package retention

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// Expirer is anything that drops data older than a cutoff. The stores of
// the mam and upload packages satisfy it without importing this package.
//
// Expire removes everything created before the cutoff and reports how many
// items it removed. It must be safe to call again after an error (the
// scheduler retries), and its errors must not contain identifying data
// (names, addresses, message bodies): they are logged.
type Expirer interface {
	Expire(ctx context.Context, before time.Time) (removed int, err error)
}

// ExpirerFunc adapts an ordinary function to the Expirer interface.
type ExpirerFunc func(ctx context.Context, before time.Time) (removed int, err error)

// Expire calls f(ctx, before).
func (f ExpirerFunc) Expire(ctx context.Context, before time.Time) (int, error) {
	return f(ctx, before)
}

// DefaultInterval is the time between two runs of a job whose Interval is 0.
// A package whose data has a promised lifetime computes the MaxAge of its
// job from it (upload.Service.RetentionMaxAge does).
const DefaultInterval = 10 * time.Minute

// defaultBackoff is the first retry delay after a failed run when
// Config.Backoff is 0.
const defaultBackoff = 30 * time.Second

// DefaultJitter is the fraction of the interval added at random to each wait
// when Config.Jitter is 0. A job's MaxAge that must keep a promise leaves
// room for Interval·(1+DefaultJitter) between two runs.
const DefaultJitter = 0.1

// Job is one retention rule: data of one kind, its lifetime, and the
// Expirer that enforces it.
type Job struct {
	// Name identifies the job in logs and reports ("uploads", "xmpp-logs").
	// It must be unique within a Scheduler.
	Name string

	// Data describes, for the privacy report, what kind of data the job
	// deletes ("uploaded files", "XMPP logs (time, user, anonymized IP)").
	Data string

	// MaxAge is the lifetime of the data: each run removes what was created
	// before now − MaxAge. 0 means no lifetime beyond the next run (used by
	// purge jobs, which ignore the cutoff).
	MaxAge time.Duration

	// Expirer enforces the lifetime.
	Expirer Expirer

	// Interval is the time between two runs; 0 means DefaultInterval.
	// Data lives at most MaxAge + Interval·(1+jitter) (plus the duration of
	// a run) while the job succeeds.
	Interval time.Duration
}

// Config configures a Scheduler. Its zero value (plus Jobs) is the default.
type Config struct {
	// Jobs are run in this order by RunOnce, concurrently by Run. Put purge
	// jobs after the expirers whose deleted bytes they wipe.
	Jobs []Job

	// Logger receives one record per run; nil means slog.Default(). Records
	// carry the job name, the number removed, the duration and the error,
	// never the data itself.
	Logger *slog.Logger

	// Now returns the current time; nil means time.Now. The cutoff passed to
	// Expire is Now() − MaxAge. The waits between runs use the time
	// package's timers, so tests of the schedule run in a testing/synctest
	// bubble.
	Now func() time.Time

	// Jitter is the largest random fraction of a job's Interval added to
	// each wait, so that jobs started together do not stay in step.
	// 0 means DefaultJitter; a negative value disables jitter.
	Jitter float64

	// Backoff is the wait before the first retry of a failed run; each
	// further failure doubles it. 0 means 30 seconds.
	Backoff time.Duration

	// MaxBackoff caps the retry wait; 0 means the job's Interval, so that a
	// failing job is retried at least as often as a healthy one runs.
	MaxBackoff time.Duration
}

// Report is the result of one run of one job.
type Report struct {
	Job     string        // Job.Name
	Start   time.Time     // when the run began (Config.Now)
	Cutoff  time.Time     // the cutoff passed to Expire
	Removed int           // what Expire returned
	Took    time.Duration // measured with Config.Now
	Err     error         // nil on success
}

// MarshalJSON encodes the report with the error as a string (or omitted).
func (r Report) MarshalJSON() ([]byte, error) {
	type wire struct {
		Job     string    `json:"job"`
		Start   time.Time `json:"start"`
		Cutoff  time.Time `json:"cutoff"`
		Removed int       `json:"removed"`
		TookMS  int64     `json:"took_ms"`
		Err     string    `json:"error,omitempty"`
	}
	w := wire{Job: r.Job, Start: r.Start.UTC(), Cutoff: r.Cutoff.UTC(), Removed: r.Removed, TookMS: r.Took.Milliseconds()}
	if r.Err != nil {
		w.Err = r.Err.Error()
	}
	return json.Marshal(w)
}

// Scheduler runs retention jobs: each at start and then every Interval (with
// jitter), never two runs of one job at once, retrying failures with
// exponential backoff. It is safe for concurrent use.
type Scheduler struct {
	jobs    []*job
	log     *slog.Logger
	now     func() time.Time
	jitter  float64
	backoff time.Duration
	maxBack time.Duration

	mu      sync.Mutex
	running bool
	last    map[string]Report
}

type job struct {
	Job
	sem chan struct{} // capacity 1: held while the job runs
}

// NewScheduler checks the jobs and returns a Scheduler. It returns an error
// wrapping ErrConfig if a job has no name, a duplicate name, no Expirer
// or a negative MaxAge or Interval.
func NewScheduler(cfg Config) (*Scheduler, error) {
	s := &Scheduler{
		log:     cfg.Logger,
		now:     cfg.Now,
		jitter:  cfg.Jitter,
		backoff: cfg.Backoff,
		maxBack: cfg.MaxBackoff,
		last:    make(map[string]Report),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.jitter == 0 {
		s.jitter = DefaultJitter
	} else if s.jitter < 0 {
		s.jitter = 0
	}
	if s.backoff <= 0 {
		s.backoff = defaultBackoff
	}
	seen := make(map[string]bool, len(cfg.Jobs))
	for i, j := range cfg.Jobs {
		switch {
		case j.Name == "":
			return nil, fmt.Errorf("%w: job %d has no name", ErrConfig, i)
		case seen[j.Name]:
			return nil, fmt.Errorf("%w: duplicate job name %q", ErrConfig, j.Name)
		case j.Expirer == nil:
			return nil, fmt.Errorf("%w: job %q has no Expirer", ErrConfig, j.Name)
		case j.MaxAge < 0 || j.Interval < 0:
			return nil, fmt.Errorf("%w: job %q has a negative duration", ErrConfig, j.Name)
		}
		seen[j.Name] = true
		if j.Interval == 0 {
			j.Interval = DefaultInterval
		}
		s.jobs = append(s.jobs, &job{Job: j, sem: make(chan struct{}, 1)})
	}
	return s, nil
}

// configured returns the jobs, with defaults filled in.
func (s *Scheduler) configured() []Job {
	out := make([]Job, len(s.jobs))
	for i, j := range s.jobs {
		out[i] = j.Job
	}
	return out
}

// LastReports returns the latest report of each job that has run, in job
// order.
func (s *Scheduler) LastReports() []Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Report
	for _, j := range s.jobs {
		if r, ok := s.last[j.Name]; ok {
			out = append(out, r)
		}
	}
	return out
}

// RunOnce runs every job once, in order, and returns one report per job
// run. The error joins the failures (each wrapped with the job name) and,
// if ctx ends, ctx.Err(); the jobs not yet run then have no report. If a
// job is already running (in Run), RunOnce waits for it to finish first.
func (s *Scheduler) RunOnce(ctx context.Context) ([]Report, error) {
	var (
		reports []Report
		errs    []error
	)
	for _, j := range s.jobs {
		r, ok := s.run(ctx, j)
		if !ok {
			errs = append(errs, ctx.Err())
			break
		}
		reports = append(reports, r)
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("retention: job %q: %w", j.Name, r.Err))
		}
	}
	return reports, errors.Join(errs...)
}

// RunJob runs the job named name once, now, waiting first for a run of it
// in progress to end, and returns its report (whose Err is also returned,
// wrapped). A server calls it for the purge jobs after an account's erasure.
// It returns an error wrapping ErrUnknownJob if there is no such job.
func (s *Scheduler) RunJob(ctx context.Context, name string) (Report, error) {
	for _, j := range s.jobs {
		if j.Name != name {
			continue
		}
		r, ok := s.run(ctx, j)
		if !ok {
			return Report{}, ctx.Err()
		}
		if r.Err != nil {
			return r, fmt.Errorf("retention: job %q: %w", name, r.Err)
		}
		return r, nil
	}
	return Report{}, fmt.Errorf("%w: %q", ErrUnknownJob, name)
}

// Run runs each job at once and then every Interval (plus jitter), or after
// a backoff delay when the run failed, until ctx ends. It returns ctx.Err()
// once every job goroutine has returned (a running Expire is given the
// cancelled ctx and is waited for), or ErrRunning if Run is already active.
func (s *Scheduler) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return ErrRunning
	}
	s.running = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running = false
		s.mu.Unlock()
	}()

	var wg sync.WaitGroup
	for _, j := range s.jobs {
		wg.Go(func() { s.loop(ctx, j) })
	}
	wg.Wait()
	<-ctx.Done() // with no jobs, Run still lasts as long as ctx
	return ctx.Err()
}

func (s *Scheduler) loop(ctx context.Context, j *job) {
	failures := 0
	for {
		r, ok := s.run(ctx, j)
		if !ok || ctx.Err() != nil {
			return
		}
		var wait time.Duration
		if r.Err != nil {
			failures++
			wait = s.retryDelay(j, failures)
		} else {
			failures = 0
			wait = j.Interval
			if s.jitter > 0 {
				wait += time.Duration(rand.Float64() * s.jitter * float64(j.Interval))
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// retryDelay is Backoff·2^(failures−1), capped at MaxBackoff (or Interval).
func (s *Scheduler) retryDelay(j *job, failures int) time.Duration {
	limit := s.maxBack
	if limit <= 0 {
		limit = j.Interval
	}
	d := s.backoff
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// run runs j once, unless ctx ends while waiting for a concurrent run of j.
func (s *Scheduler) run(ctx context.Context, j *job) (Report, bool) {
	select {
	case j.sem <- struct{}{}:
	case <-ctx.Done():
		return Report{}, false
	}
	defer func() { <-j.sem }()
	if ctx.Err() != nil {
		return Report{}, false
	}

	start := s.now()
	r := Report{Job: j.Name, Start: start, Cutoff: start.Add(-j.MaxAge)}
	r.Removed, r.Err = expire(ctx, j.Expirer, r.Cutoff)
	r.Took = s.now().Sub(start)

	s.mu.Lock()
	s.last[j.Name] = r
	s.mu.Unlock()

	attrs := []slog.Attr{
		slog.String("job", j.Name),
		slog.Int("removed", r.Removed),
		slog.Duration("took", r.Took),
	}
	level := slog.LevelInfo
	msg := "retention job done"
	if r.Err != nil {
		level = slog.LevelWarn
		msg = "retention job failed"
		attrs = append(attrs, slog.String("error", r.Err.Error()))
	}
	s.log.LogAttrs(ctx, level, msg, attrs...)
	return r, true
}

func expire(ctx context.Context, e Expirer, before time.Time) (n int, err error) {
	defer func() {
		if v := recover(); v != nil {
			// The panic value may carry data; keep only its type.
			n, err = 0, fmt.Errorf("%w (%T)", ErrPanic, v)
		}
	}()
	return e.Expire(ctx, before)
}
