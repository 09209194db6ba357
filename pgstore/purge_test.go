package pgstore

import (
	"context"
	"sync"
	"testing"
	"time"

	"chatbx.eu/privacy/mam"
)

// TestPurge: Purge keeps the live rows, forgets the statistics of a table
// it finds empty (their value samples would name the last user), skips the
// tables of stores never created, and may run again.
func TestPurge(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	s, err := NewMAMStore(ctx, pool, MAMConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		for _, a := range []mam.Message{{Archive: alice, With: bob}, {Archive: bob, With: alice}} {
			a.Stanza = []byte("<message xmlns='jabber:client'><body>hi</body></message>")
			a.Time = benchT0.Add(time.Duration(i) * time.Second)
			if _, err := s.Append(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.SetPrefs(ctx, alice, mam.Prefs{Default: mam.DefaultAlways}); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	stats := func(table string) int {
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM pg_stats WHERE schemaname = current_schema() AND tablename = $1", table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if stats("mam_prefs") == 0 {
		t.Fatal("no statistics for mam_prefs before the erasure: the test would prove nothing")
	}
	if err := s.Erase(ctx, alice); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := Purge(ctx, pool); err != nil {
			t.Fatal(err)
		}
	}
	if n := stats("mam_prefs"); n != 0 {
		t.Errorf("mam_prefs is empty but keeps %d column statistics", n)
	}
	if stats("mam_messages") == 0 {
		t.Error("mam_messages holds bob's messages but has no statistics after the purge")
	}
	p, err := s.Query(ctx, bob, mam.Query{})
	if err != nil || len(p.Messages) != 5 {
		t.Fatalf("bob's archive after the purge: %d messages, %v", len(p.Messages), err)
	}
}

// BenchmarkPurge measures the lock cost of Purge: it rewrites an archive
// table of PGSTORE_BENCH_N rows (default 100,000, 1% of them deleted) while
// a reader reads one archive through the primary key in a loop. Reported:
// the rewrite's time per million rows and the reader's longest wait, against
// its median read (the baseline of the same run).
func BenchmarkPurge(b *testing.B) {
	n := benchN(b, 100_000)
	pool := newPool(b)
	ctx := b.Context()
	if _, err := NewMAMStore(ctx, pool, MAMConfig{}); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO mam_messages
		SELECT 'user' || (i % 100) || '@example.org', i, i, int8send(i), 'contact@example.net', 'phone',
			false, false, NULL, convert_to(repeat('benchmark stanza ', 12), 'UTF8')
		FROM generate_series(1, $1::bigint) i`, n); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var purge, longest, typical time.Duration
	for range b.N {
		b.StopTimer()
		if _, err := pool.Exec(ctx, "DELETE FROM mam_messages WHERE archive = 'user0@example.org'"); err != nil {
			b.Fatal(err)
		}
		stop := make(chan struct{})
		var reads []time.Duration
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				t0 := time.Now()
				var c int
				if err := pool.QueryRow(ctx, "SELECT count(*) FROM mam_messages WHERE archive = 'user1@example.org' AND ts < 5000").Scan(&c); err != nil {
					b.Error(err)
					return
				}
				reads = append(reads, time.Since(t0))
			}
		})
		b.StartTimer()
		t0 := time.Now()
		if err := Purge(ctx, pool); err != nil {
			b.Fatal(err)
		}
		purge += time.Since(t0)
		b.StopTimer()
		close(stop)
		wg.Wait()
		if len(reads) > 0 {
			typical += median(reads)
			longest = max(longest, reads[len(reads)-1]) // sorted by median
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(purge.Milliseconds())/float64(b.N)*1e6/float64(n), "ms/Mrows")
	b.ReportMetric(float64(longest.Milliseconds()), "ms-longest-read")
	b.ReportMetric(float64(typical.Microseconds())/float64(b.N), "µs-median-read")
}
