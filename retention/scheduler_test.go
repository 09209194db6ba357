package retention_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"chatbx.eu/privacy/retention"
)

// call is one Expire call seen by a recordingExpirer: when it happened
// (time.Now, fake inside a synctest bubble) and the cutoff it was given.
type call struct {
	at, before time.Time
}

// recordingExpirer reports every call on calls and returns the next result
// from results (or removed=1, nil when results is empty).
type recordingExpirer struct {
	calls   chan call
	mu      sync.Mutex
	results []error
}

func newRecorder() *recordingExpirer { return &recordingExpirer{calls: make(chan call, 100)} }

func (e *recordingExpirer) Expire(ctx context.Context, before time.Time) (int, error) {
	e.calls <- call{time.Now(), before}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.results) > 0 {
		err := e.results[0]
		e.results = e.results[1:]
		if err != nil {
			return 0, err
		}
	}
	return 1, nil
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newScheduler returns a scheduler on the time package's clock without
// jitter: tests of the schedule run it in a synctest bubble, where time
// moves only when every goroutine of the bubble waits.
func newScheduler(t *testing.T, jobs ...retention.Job) *retention.Scheduler {
	t.Helper()
	s, err := retention.NewScheduler(retention.Config{
		Jobs:    jobs,
		Logger:  discard(),
		Jitter:  -1,
		Backoff: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func startRun(t *testing.T, s *retention.Scheduler) (cancel func() error) {
	t.Helper()
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	return func() error {
		stop()
		return <-done
	}
}

func TestRunAtStartAndPeriodically(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		s := newScheduler(t, retention.Job{Name: "uploads", MaxAge: 30 * 24 * time.Hour, Expirer: rec, Interval: time.Hour})
		start := time.Now()
		stop := startRun(t, s)

		// At start, with the cutoff now − MaxAge; then every hour, exactly.
		prev := start
		for i := range 4 {
			c := <-rec.calls
			if want := c.at.Add(-30 * 24 * time.Hour); !c.before.Equal(want) {
				t.Fatalf("run %d: cutoff = %v, want %v", i+1, c.before, want)
			}
			want := time.Hour
			if i == 0 {
				want = 0
			}
			if d := c.at.Sub(prev); d != want {
				t.Fatalf("run %d came %v after the previous one, want %v", i+1, d, want)
			}
			prev = c.at
		}
		if err := stop(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Run returned %v, want context.Canceled", err)
		}
		if got := s.LastReports(); len(got) != 1 || got[0].Job != "uploads" || got[0].Removed != 1 {
			t.Fatalf("LastReports = %+v", got)
		}
	})
}

// waits runs s in a synctest bubble until rec has seen n+1 calls, and
// returns the n waits between them.
func waits(t *testing.T, s *retention.Scheduler, rec *recordingExpirer, n int) []time.Duration {
	t.Helper()
	stop := startRun(t, s)
	defer stop()
	prev := (<-rec.calls).at
	out := make([]time.Duration, n)
	for i := range out {
		c := <-rec.calls
		out[i] = c.at.Sub(prev)
		prev = c.at
	}
	return out
}

func TestJitterWithinBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		s, err := retention.NewScheduler(retention.Config{
			Jobs:   []retention.Job{{Name: "j", Expirer: rec, Interval: time.Hour}},
			Logger: discard(),
			Jitter: 0.5,
		})
		if err != nil {
			t.Fatal(err)
		}
		varied := false
		ws := waits(t, s, rec, 20)
		for _, d := range ws {
			if d < time.Hour || d > 90*time.Minute {
				t.Fatalf("wait %v outside [1h, 1h30m]", d)
			}
			varied = varied || d != ws[0]
		}
		if !varied {
			t.Fatalf("20 waits of %v: no jitter", ws[0])
		}
	})
}

func TestBackoffAfterFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		boom := errors.New("disk full")
		rec.results = []error{boom, boom, boom, boom, nil, boom}
		s, err := retention.NewScheduler(retention.Config{
			Jobs:       []retention.Job{{Name: "j", Expirer: rec, Interval: time.Hour}},
			Logger:     discard(),
			Jitter:     -1,
			Backoff:    time.Second,
			MaxBackoff: 5 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		stop := startRun(t, s)
		defer stop()
		// fail, fail, fail, fail, ok, fail: 1s 2s 4s 5s(capped) 1h 1s(reset)
		want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, time.Hour, time.Second}
		prev := (<-rec.calls).at
		synctest.Wait() // the failed first run is reported, its retry waits
		if r := s.LastReports(); len(r) != 1 || !errors.Is(r[0].Err, boom) {
			t.Fatalf("report after failure = %+v", r)
		}
		for i, w := range want {
			c := <-rec.calls
			if d := c.at.Sub(prev); d != w {
				t.Fatalf("wait %d = %v, want %v", i, d, w)
			}
			prev = c.at
		}
	})
}

func TestBackoffCappedByInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		boom := errors.New("boom")
		rec.results = []error{boom, boom, boom, boom, boom}
		s := newScheduler(t, retention.Job{Name: "j", Expirer: rec, Interval: 3 * time.Second})
		want := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second}
		if got := waits(t, s, rec, len(want)); !slices.Equal(got, want) {
			t.Fatalf("waits = %v, want %v", got, want)
		}
	})
}

// blockingExpirer blocks every call until release is closed or receives,
// and records the highest number of concurrent calls.
type blockingExpirer struct {
	release chan struct{}
	active  atomic.Int32
	max     atomic.Int32
	calls   atomic.Int32
}

func (e *blockingExpirer) Expire(ctx context.Context, before time.Time) (int, error) {
	e.calls.Add(1)
	n := e.active.Add(1)
	defer e.active.Add(-1)
	for {
		m := e.max.Load()
		if n <= m || e.max.CompareAndSwap(m, n) {
			break
		}
	}
	<-e.release
	return 0, nil
}

func TestNoConcurrentRunsOfOneJob(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		exp := &blockingExpirer{release: make(chan struct{})}
		s := newScheduler(t, retention.Job{Name: "j", Expirer: exp, Interval: time.Second})
		ctx, cancel := context.WithCancel(t.Context())
		runDone := make(chan error, 1)
		go func() { runDone <- s.Run(ctx) }()
		synctest.Wait() // Run's first call is blocked in Expire
		onceDone := make(chan struct{})
		for range 3 {
			go func() {
				if _, err := s.RunOnce(ctx); err != nil {
					t.Error(err)
				}
				onceDone <- struct{}{}
			}()
		}
		synctest.Wait() // every RunOnce is blocked, waiting for the running one
		if n := exp.calls.Load(); n != 1 {
			t.Fatalf("%d calls while one run was in progress, want 1", n)
		}
		for range 4 {
			exp.release <- struct{}{}
			synctest.Wait()
		}
		for range 3 {
			<-onceDone
		}
		if m := exp.max.Load(); m != 1 {
			t.Fatalf("max concurrent Expire calls = %d, want 1", m)
		}
		if n := exp.calls.Load(); n != 4 {
			t.Fatalf("calls = %d, want 4", n)
		}
		cancel()
		if err := <-runDone; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v", err)
		}
	})
}

func TestRunStopsWithContextAndWaitsForJobs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		exp := &blockingExpirer{release: make(chan struct{})}
		idle := newRecorder()
		s := newScheduler(t,
			retention.Job{Name: "busy", Expirer: exp},
			retention.Job{Name: "idle", Expirer: idle},
		)
		ctx, cancel := context.WithCancel(t.Context())
		runDone := make(chan error, 1)
		go func() { runDone <- s.Run(ctx) }()
		synctest.Wait()
		cancel()
		synctest.Wait()
		select {
		case <-runDone:
			t.Fatal("Run returned while a job was still running")
		default:
		}
		close(exp.release)
		if err := <-runDone; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v", err)
		}
		if exp.active.Load() != 0 {
			t.Fatal("Expire still active after Run returned")
		}
		// A second Run after the first ended is allowed, and stops at once.
		if err := s.Run(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("second Run = %v", err)
		}
	})
}

func TestRunTwiceConcurrently(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		exp := &blockingExpirer{release: make(chan struct{})}
		s := newScheduler(t, retention.Job{Name: "j", Expirer: exp})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		synctest.Wait()
		if err := s.Run(ctx); !errors.Is(err, retention.ErrRunning) {
			t.Fatalf("second Run = %v, want ErrRunning", err)
		}
		cancel()
		close(exp.release)
		<-done
	})
}

// TestRunOnce also checks that Config.Now, not the time package, gives the
// cutoff.
func TestRunOnce(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	boom := errors.New("boom")
	var order []string
	mk := func(name string, n int, err error) retention.Job {
		return retention.Job{Name: name, MaxAge: time.Duration(n) * time.Hour, Expirer: retention.ExpirerFunc(
			func(_ context.Context, before time.Time) (int, error) {
				order = append(order, name)
				if want := now.Add(-time.Duration(n) * time.Hour); !before.Equal(want) {
					t.Errorf("%s: cutoff %v, want %v", name, before, want)
				}
				return n, err
			})}
	}
	s, err := retention.NewScheduler(retention.Config{
		Jobs:   []retention.Job{mk("a", 1, nil), mk("b", 2, boom), mk("c", 3, nil)},
		Logger: discard(),
		Now:    func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	reports, err := s.RunOnce(t.Context())
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if !strings.Contains(err.Error(), `"b"`) {
		t.Errorf("error %q does not name the job", err)
	}
	if got := strings.Join(order, ","); got != "a,b,c" {
		t.Fatalf("order = %s", got)
	}
	if len(reports) != 3 {
		t.Fatalf("%d reports", len(reports))
	}
	for i, r := range reports {
		if r.Job != order[i] || r.Removed != i+1 || (r.Err != nil) != (i == 1) || !r.Start.Equal(now) {
			t.Errorf("report %d = %+v", i, r)
		}
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	reports, err = s.RunOnce(ctx)
	if !errors.Is(err, context.Canceled) || len(reports) != 0 {
		t.Fatalf("cancelled RunOnce = %v, %v", reports, err)
	}
}

func TestPanicIsRecovered(t *testing.T) {
	s := newScheduler(t, retention.Job{Name: "p", Expirer: retention.ExpirerFunc(
		func(context.Context, time.Time) (int, error) { panic("secret@example.org") })})
	reports, err := s.RunOnce(t.Context())
	if !errors.Is(err, retention.ErrPanic) || len(reports) != 1 || !errors.Is(reports[0].Err, retention.ErrPanic) {
		t.Fatalf("got %v, %v", reports, err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Fatalf("panic value leaked into the error: %v", err)
	}
}

func TestNewSchedulerValidates(t *testing.T) {
	ok := retention.ExpirerFunc(func(context.Context, time.Time) (int, error) { return 0, nil })
	for _, tc := range []struct {
		name string
		jobs []retention.Job
	}{
		{"no name", []retention.Job{{Expirer: ok}}},
		{"duplicate", []retention.Job{{Name: "a", Expirer: ok}, {Name: "a", Expirer: ok}}},
		{"no expirer", []retention.Job{{Name: "a"}}},
		{"negative max age", []retention.Job{{Name: "a", Expirer: ok, MaxAge: -1}}},
		{"negative interval", []retention.Job{{Name: "a", Expirer: ok, Interval: -1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := retention.NewScheduler(retention.Config{Jobs: tc.jobs}); !errors.Is(err, retention.ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
		})
	}
	s, err := retention.NewScheduler(retention.Config{Jobs: []retention.Job{{Name: "a", Expirer: ok}}})
	if err != nil {
		t.Fatal(err)
	}
	e := s.PrivacyReport().Entries[0]
	if e.Interval != retention.DefaultInterval {
		t.Fatalf("default interval = %v", e.Interval)
	}
	if want := retention.DefaultInterval + time.Duration(retention.DefaultJitter*float64(retention.DefaultInterval)); e.DeletedWithin != want {
		t.Fatalf("DeletedWithin with the default jitter = %v, want %v", e.DeletedWithin, want)
	}
}

func TestLogRecord(t *testing.T) {
	var buf bytes.Buffer
	s, err := retention.NewScheduler(retention.Config{
		Jobs: []retention.Job{
			{Name: "ok", Expirer: retention.ExpirerFunc(func(context.Context, time.Time) (int, error) { return 7, nil })},
			{Name: "bad", Expirer: retention.ExpirerFunc(func(context.Context, time.Time) (int, error) { return 0, errors.New("locked") })},
		},
		Logger: slog.New(slog.NewJSONHandler(&buf, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	s.RunOnce(t.Context())
	var recs []map[string]any
	for line := range strings.Lines(buf.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, m)
	}
	if len(recs) != 2 {
		t.Fatalf("%d records: %s", len(recs), buf.String())
	}
	if recs[0]["job"] != "ok" || recs[0]["removed"] != 7.0 || recs[0]["level"] != "INFO" {
		t.Errorf("ok record = %v", recs[0])
	}
	if recs[1]["job"] != "bad" || recs[1]["error"] != "locked" || recs[1]["level"] != "WARN" {
		t.Errorf("bad record = %v", recs[1])
	}
}

func TestReportJSON(t *testing.T) {
	r := retention.Report{Job: "j", Removed: 3, Took: 1500 * time.Millisecond, Err: errors.New("x"),
		Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Cutoff: time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"job":"j","start":"2026-01-01T00:00:00Z","cutoff":"2025-12-31T00:00:00Z","removed":3,"took_ms":1500,"error":"x"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

func TestRunWithoutJobsLastsUntilCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScheduler(t)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Run without jobs returned at once: %v", err)
		default:
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v", err)
		}
	})
}
