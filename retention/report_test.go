package retention_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"chatbx.eu/privacy/retention"
)

const day = 24 * time.Hour

func reportConfig() retention.Config {
	nop := retention.ExpirerFunc(nil)
	return retention.Config{
		Jitter: -1,
		Jobs: []retention.Job{
			{Name: "uploads", Data: "uploaded files", MaxAge: 30 * day, Interval: time.Hour, Expirer: nop},
			{Name: "xmpp-logs", Data: "XMPP logs (time, user, anonymized IP)", MaxAge: day, Interval: 10 * time.Minute, Expirer: nop},
			{Name: "purge", Data: "erased bytes | freed pages", Expirer: nop},
		},
	}
}

func TestPrivacyReportMarkdown(t *testing.T) {
	last := []retention.Report{
		{Job: "uploads", Start: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Removed: 12},
		{Job: "purge", Start: time.Date(2026, 1, 2, 3, 5, 0, 0, time.UTC), Err: errors.New("/srv/data/alice.db: busy")},
		{Job: "unknown", Removed: 1},
	}
	got := retention.NewPrivacyReport(reportConfig(), last).Markdown()
	want := "| Data | Lifetime | Deleted at the latest after | Enforced by | Runs every | Last run |\n" +
		"|---|---|---|---|---|---|\n" +
		"| uploaded files | 30 days | 30 days 1 hour | `uploads` | 1 hour | 2026-01-02 03:04 UTC, 12 removed |\n" +
		"| XMPP logs (time, user, anonymized IP) | 1 day | 1 day 10 minutes | `xmpp-logs` | 10 minutes | not yet |\n" +
		"| erased bytes \\| freed pages | until the next run | 10 minutes | `purge` | 10 minutes | 2026-01-02 03:05 UTC, failed |\n"
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestPrivacyReportJSON(t *testing.T) {
	last := []retention.Report{{Job: "purge", Start: time.Date(2026, 1, 2, 3, 5, 0, 0, time.UTC), Removed: 4, Took: 2 * time.Second}}
	cfg := reportConfig()
	cfg.Jobs = cfg.Jobs[1:]
	b, err := json.Marshal(retention.NewPrivacyReport(cfg, last))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"retention":[` +
		`{"job":"xmpp-logs","data":"XMPP logs (time, user, anonymized IP)","lifetime_seconds":86400,"lifetime":"1 day","interval_seconds":600,"deleted_within_seconds":87000,"deleted_within":"1 day 10 minutes"},` +
		`{"job":"purge","data":"erased bytes | freed pages","lifetime_seconds":0,"lifetime":"0 seconds","interval_seconds":600,"deleted_within_seconds":600,"deleted_within":"10 minutes",` +
		`"last_run":{"job":"purge","start":"2026-01-02T03:05:00Z","cutoff":"0001-01-01T00:00:00Z","removed":4,"took_ms":2000}}]}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

func TestPrivacyReportJitter(t *testing.T) {
	cfg := reportConfig()
	for _, tc := range []struct {
		jitter float64
		want   time.Duration
	}{
		{-1, 30*day + time.Hour},
		{0, 30*day + time.Hour + 6*time.Minute}, // DefaultJitter 0.1
		{0.5, 30*day + 90*time.Minute},
	} {
		cfg.Jitter = tc.jitter
		if got := retention.NewPrivacyReport(cfg, nil).Entries[0].DeletedWithin; got != tc.want {
			t.Errorf("jitter %v: DeletedWithin = %v, want %v", tc.jitter, got, tc.want)
		}
	}
}

func TestSchedulerPrivacyReportMatchesConfig(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cfg := reportConfig()
	for i := range cfg.Jobs {
		cfg.Jobs[i].Expirer = retention.ExpirerFunc(func(context.Context, time.Time) (int, error) { return 2, nil })
	}
	cfg.Now = func() time.Time { return now }
	cfg.Logger = discard()
	s, err := retention.NewScheduler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	before := s.PrivacyReport()
	if want := retention.NewPrivacyReport(cfg, nil); before.Markdown() != want.Markdown() {
		t.Fatalf("scheduler report differs from config report:\n%s\n%s", before.Markdown(), want.Markdown())
	}
	if _, err := s.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, e := range s.PrivacyReport().Entries {
		if e.Last == nil || e.Last.Removed != 2 || !e.Last.Start.Equal(now) {
			t.Fatalf("entry %s: last = %+v", e.Job, e.Last)
		}
	}
}

func TestPrivacyReportCheck(t *testing.T) {
	r := retention.NewPrivacyReport(reportConfig(), nil)
	for _, tc := range []struct {
		job    string
		within time.Duration
		want   error
	}{
		{"uploads", 31 * day, nil},
		{"uploads", 30*day + time.Hour, nil},
		{"uploads", 30 * day, retention.ErrPromiseBroken},
		{"xmpp-logs", day, retention.ErrPromiseBroken},
		{"xmpp-logs", 25 * time.Hour, nil},
		{"http-logs", 30 * day, retention.ErrNotEnforced},
	} {
		err := r.Check(tc.job, tc.within)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("Check(%s, %v) = %v, want %v", tc.job, tc.within, err, tc.want)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0 seconds"},
		{-time.Hour, "0 seconds"},
		{time.Nanosecond, "1 second"},
		{time.Second, "1 second"},
		{1500 * time.Millisecond, "2 seconds"},
		{10 * time.Minute, "10 minutes"},
		{time.Hour + time.Second, "1 hour 1 second"},
		{day, "1 day"},
		{30 * day, "30 days"},
		{2*day + 3*time.Hour + 4*time.Minute + 5*time.Second, "2 days 3 hours 4 minutes 5 seconds"},
	} {
		if got := retention.HumanDuration(tc.d); got != tc.want {
			t.Errorf("HumanDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestMarkdownEscapesCells(t *testing.T) {
	nop := retention.ExpirerFunc(nil)
	r := retention.NewPrivacyReport(retention.Config{Jitter: -1, Jobs: []retention.Job{
		{Name: "a`b|c", Data: "x|y\nz <script>", MaxAge: time.Hour, Interval: time.Hour, Expirer: nop},
	}}, nil)
	want := "| x\\|y z \\<script\\> | 1 hour | 2 hours | `a'b\\|c` | 1 hour | not yet |\n"
	got := r.Markdown()
	if got[len(got)-len(want):] != want {
		t.Fatalf("got %q\nwant suffix %q", got, want)
	}
}
