package retention_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"chatbx.eu/privacy/retention"
)

// uploadStore stands for any store with an Expire method, such as the
// stores of the upload and mam packages.
type uploadStore struct{ uploaded []time.Time }

func (s *uploadStore) Expire(_ context.Context, before time.Time) (int, error) {
	kept := s.uploaded[:0]
	for _, t := range s.uploaded {
		if !t.Before(before) {
			kept = append(kept, t)
		}
	}
	removed := len(s.uploaded) - len(kept)
	s.uploaded = kept
	return removed, nil
}

func Example() {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	store := &uploadStore{uploaded: []time.Time{
		now.Add(-40 * 24 * time.Hour), // older than 30 days: deleted
		now.Add(-31 * 24 * time.Hour), // deleted
		now.Add(-2 * time.Hour),       // kept
	}}
	s, err := retention.NewScheduler(retention.Config{
		Jobs: []retention.Job{{
			Name:     "uploads",
			Data:     "uploaded files",
			MaxAge:   30 * 24 * time.Hour,
			Interval: time.Hour,
			Expirer:  store,
		}},
		Logger: slog.New(slog.DiscardHandler),
		Now:    func() time.Time { return now },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// A server calls s.Run(ctx) in a goroutine; tools and -purge call RunOnce.
	reports, err := s.RunOnce(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range reports {
		fmt.Printf("%s: removed %d older than %s\n", r.Job, r.Removed, r.Cutoff.Format(time.DateOnly))
	}
	fmt.Println("left:", len(store.uploaded))
	// Output:
	// uploads: removed 2 older than 2026-01-30
	// left: 1
}

func ExamplePrivacyReport_Markdown() {
	cfg := retention.Config{
		Jitter: -1, // no jitter, for a round example
		Jobs: []retention.Job{
			{Name: "uploads", Data: "uploaded files", MaxAge: 30 * 24 * time.Hour, Interval: time.Hour},
			{Name: "xmpp-logs", Data: "XMPP logs", MaxAge: 24 * time.Hour},
			{Name: "purge-mam", Data: "erased archive bytes"},
		},
	}
	r := retention.NewPrivacyReport(cfg, nil)
	fmt.Print(r.Markdown())
	fmt.Println(r.Check("uploads", 31*24*time.Hour))
	// Output:
	// | Data | Lifetime | Deleted at the latest after | Enforced by | Runs every | Last run |
	// |---|---|---|---|---|---|
	// | uploaded files | 30 days | 30 days 1 hour | `uploads` | 1 hour | not yet |
	// | XMPP logs | 1 day | 1 day 10 minutes | `xmpp-logs` | 10 minutes | not yet |
	// | erased archive bytes | until the next run | 10 minutes | `purge-mam` | 10 minutes | not yet |
	// <nil>
}
