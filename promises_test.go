package privacy_test

import (
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"chatbx.eu/privacy/internal/testclock"
	"chatbx.eu/privacy/logredact"
	"chatbx.eu/privacy/retention"
	"chatbx.eu/privacy/upload"
	"chatbx.eu/privacy/upload/uploadtest"
)

// TestDocumentedJobsKeepTheirPromise holds every retention job that a
// package documents (upload/doc.go, logredact/doc.go, retention/doc.go) to
// the promise it is meant to keep, twice:
//
//   - on paper: retention.NewPrivacyReport(...).Check(job, promise), what
//     an integrator's own test or a privacy page relies on;
//   - in fact: one datum is stored, the job's Expirer is run once just
//     before and once just at the first instant it deletes the datum
//     (eligible), and the worst case that follows — the scheduler's last
//     run falling just before that instant and the next one the longest
//     possible gap later (Interval plus the default jitter) — must still
//     end before the promise does.
//
// Two rows are the recipes documented before RetentionMaxAge existed,
// kept to show what they broke: MaxAge TTL for uploads (the report itself
// says 30 days 11 minutes), and the log writer's Retention as MaxAge (the
// report says 23 hours 11 minutes, while a line may live 24 hours 11
// minutes, since a file also holds records a Period older than its newest).
func TestDocumentedJobsKeepTheirPromise(t *testing.T) {
	const (
		day   = 24 * time.Hour
		every = 10 * time.Minute
	)
	for _, tc := range []struct {
		name    string
		promise time.Duration
		setup   func(t *testing.T, clk *testclock.Clock) stored
		// job builds the job from what setup stored.
		job       func(s stored) retention.Job
		wantCheck error // nil: the report keeps the promise
		wantKept  bool  // true: the worst case outlives the promise
	}{
		{
			name: "upload.Service with RetentionMaxAge", promise: 30 * day,
			setup: storeUpload(0),
			job: func(s stored) retention.Job {
				svc := s.expirer.(*upload.Service)
				return retention.Job{Name: "uploads", Data: "uploaded files", Expirer: svc,
					Interval: every, MaxAge: svc.RetentionMaxAge(every)}
			},
		},
		{
			name: "upload.Service, 1 h TTL, interval TTL/10", promise: time.Hour,
			setup: storeUpload(time.Hour),
			job: func(s stored) retention.Job {
				svc := s.expirer.(*upload.Service)
				iv := svc.TTL() / 10
				return retention.Job{Name: "uploads", Expirer: svc, Interval: iv, MaxAge: svc.RetentionMaxAge(iv)}
			},
		},
		{
			name: "upload.Service, interval 0 (the default)", promise: 30 * day,
			setup: storeUpload(0),
			job: func(s stored) retention.Job {
				svc := s.expirer.(*upload.Service)
				return retention.Job{Name: "uploads", Expirer: svc, MaxAge: svc.RetentionMaxAge(0)}
			},
		},
		{
			name: "logredact XMPPLogConfig with RetentionMaxAge", promise: day,
			setup: storeLogLine(logredact.XMPPLogConfig),
			job: func(s stored) retention.Job {
				w := s.expirer.(*logredact.RotatingFile)
				return retention.Job{Name: "xmpp-log", Expirer: w, Interval: every, MaxAge: w.RetentionMaxAge(every)}
			},
		},
		{
			name: "logredact HTTPErrorLogConfig with RetentionMaxAge", promise: 30 * day,
			setup: storeLogLine(logredact.HTTPErrorLogConfig),
			job: func(s stored) retention.Job {
				w := s.expirer.(*logredact.RotatingFile)
				return retention.Job{Name: "http-error-log", Expirer: w, Interval: time.Hour, MaxAge: w.RetentionMaxAge(time.Hour)}
			},
		},
		{
			name: "old recipe: upload MaxAge TTL", promise: 30 * day,
			setup: storeUpload(0),
			job: func(s stored) retention.Job {
				svc := s.expirer.(*upload.Service)
				return retention.Job{Name: "uploads", Expirer: svc, Interval: every, MaxAge: svc.TTL()}
			},
			wantCheck: retention.ErrPromiseBroken, wantKept: true,
		},
		{
			name: "old recipe: logredact MaxAge Retention()", promise: day,
			setup: storeLogLine(logredact.XMPPLogConfig),
			job: func(s stored) retention.Job {
				w := s.expirer.(*logredact.RotatingFile)
				return retention.Job{Name: "xmpp-log", Expirer: w, Interval: every, MaxAge: w.Retention()}
			},
			wantKept: true, // the report says 23 h 11 min: it cannot see the Period
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := testclock.New()
			s := tc.setup(t, clk)
			t0 := clk.Now() // when the datum was stored
			job := tc.job(s)

			err := retention.NewPrivacyReport(retention.Config{Jobs: []retention.Job{job}}, nil).Check(job.Name, tc.promise)
			if !errors.Is(err, tc.wantCheck) || (tc.wantCheck == nil) != (err == nil) {
				t.Errorf("PrivacyReport.Check = %v, want %v", err, tc.wantCheck)
			}

			run := func(at time.Time) {
				t.Helper()
				clk.Set(at)
				if _, err := job.Expirer.Expire(t.Context(), at.Add(-job.MaxAge)); err != nil {
					t.Fatal(err)
				}
			}
			eligible := t0.Add(s.eligible(job.MaxAge))
			run(eligible.Add(-time.Nanosecond))
			if !s.exists(t) {
				t.Fatalf("deleted by a run %v before the expected first deleting run", time.Nanosecond)
			}
			run(eligible)
			if s.exists(t) {
				t.Fatal("not deleted by the first run that should delete it")
			}
			iv := job.Interval
			if iv == 0 {
				iv = retention.DefaultInterval
			}
			gap := iv + time.Duration(retention.DefaultJitter*float64(iv))
			worst := eligible.Add(-time.Nanosecond).Add(gap).Sub(t0)
			if kept := worst > tc.promise; kept != tc.wantKept {
				t.Errorf("worst case: deleted %v after it was stored, promised %v (outlives the promise: %v, want %v)",
					worst, tc.promise, kept, tc.wantKept)
			}
		})
	}
}

// stored is one datum put where a job's Expirer deletes it.
type stored struct {
	expirer retention.Expirer
	exists  func(t *testing.T) bool
	// eligible is the age of the datum at which a run with the given MaxAge
	// first deletes it.
	eligible func(maxAge time.Duration) time.Duration
}

// storeUpload uploads one file through an upload.Service on in-memory
// stores with the given TTL (0: the default, 30 days).
func storeUpload(ttl time.Duration) func(*testing.T, *testclock.Clock) stored {
	return func(t *testing.T, clk *testclock.Clock) stored {
		blobs := uploadtest.NewMemBlobs()
		svc, err := upload.NewService(uploadtest.NewMemMeta(), blobs, upload.Config{
			BaseURL: "https://upload.example.org/upload", TTL: ttl, Now: clk.Now,
		})
		if err != nil {
			t.Fatal(err)
		}
		const body = "a file"
		slot, err := svc.RequestSlot(t.Context(), jid.MustParse("alice@example.org"), "a.txt", int64(len(body)), "text/plain")
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPut, slot.PutURL, strings.NewReader(body))
		req.TLS = &tls.ConnectionState{}
		req.Header = slot.Header.Clone()
		req.Header.Set("Content-Type", "text/plain")
		rec := httptest.NewRecorder()
		svc.ServeHTTP(rec, req)
		if rec.Code != http.StatusCreated {
			t.Fatalf("PUT = %d", rec.Code)
		}
		return stored{
			expirer: svc,
			exists:  func(*testing.T) bool { return blobs.Len() == 1 },
			// Expire removes what was uploaded strictly before now − MaxAge.
			eligible: func(maxAge time.Duration) time.Duration { return maxAge + time.Nanosecond },
		}
	}
}

// storeLogLine writes one line at the start of a period of a RotatingFile
// built from a preset: the oldest line its file can hold.
func storeLogLine(preset func(dir string) logredact.RotateConfig) func(*testing.T, *testclock.Clock) stored {
	return func(t *testing.T, clk *testclock.Clock) stored {
		cfg := preset(t.TempDir())
		cfg.Now = clk.Now
		clk.Set(clk.Now().Truncate(cfg.Period))
		w, err := logredact.OpenRotating(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		if _, err := w.Write([]byte("line\n")); err != nil {
			t.Fatal(err)
		}
		return stored{
			expirer: w,
			exists: func(t *testing.T) bool {
				entries, err := os.ReadDir(cfg.Dir)
				if err != nil {
					t.Fatal(err)
				}
				return len(entries) == 1
			},
			// Expire removes a file once its period has ended by now − MaxAge.
			eligible: func(maxAge time.Duration) time.Duration { return cfg.Period + maxAge },
		}
	}
}
