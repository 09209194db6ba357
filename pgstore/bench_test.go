package pgstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatbx.eu/privacy/mam"
	"github.com/jackc/pgx/v5/pgxpool"
	bolt "go.etcd.io/bbolt"
	"mellium.im/xmpp/jid"
)

// Benchmarks against the bbolt store of package mam, on the same machine
// in the same run, reported as ratios; see BENCHMARKS.md.

func benchN(b *testing.B, def int) int {
	if v, err := strconv.Atoi(os.Getenv("PGSTORE_BENCH_N")); err == nil && v > 0 {
		return v
	}
	return def
}

var benchT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func benchMsg(i int) mam.Message {
	peer := jid.MustParse(fmt.Sprintf("contact%d@example.net/phone", i%100))
	return mam.Message{Archive: alice, With: peer, Time: benchT0.Add(time.Duration(i) * time.Millisecond),
		Stanza: fmt.Appendf(nil, "<message xmlns='jabber:client' from='%s' to='alice@example.org' type='chat' id='m%d'>"+
			"<body>benchmark message number %d with a body of ordinary length, like most chat lines are</body>"+
			"<origin-id xmlns='urn:xmpp:sid:0' id='o%d'/></message>", peer, i, i, i)}
}

func benchBolt(b *testing.B) mam.Store {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "mam.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	s, err := mam.NewBoltStore(db)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func benchPG(b *testing.B) *MAMStore {
	pool := newPool(b)
	// The recommended setting (README, "Performance"): one plan per
	// prepared statement instead of a new plan at every execution.
	// PGSTORE_BENCH_CUSTOM_PLANS=1 measures PostgreSQL's default.
	if os.Getenv("PGSTORE_BENCH_CUSTOM_PLANS") == "" {
		cfg := pool.Config()
		cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
		var err error
		pool, err = pgxpool.NewWithConfig(b.Context(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(pool.Close)
	}
	s, err := NewMAMStore(b.Context(), pool, MAMConfig{})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// appendAll appends messages from..to-1 with writers goroutines.
func appendAll(b *testing.B, s mam.Store, from, to, writers int) {
	var next atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= to {
					return
				}
				if _, err := s.Append(context.Background(), benchMsg(i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}

// BenchmarkPage times a page of 50 from an archive of PGSTORE_BENCH_N
// messages (default 100,000) in both stores, alternately: the last page,
// and a forward page from the middle (RSM after). x-bolt is the ratio of
// the medians.
func BenchmarkPage(b *testing.B) {
	n := benchN(b, 100_000)
	bs, ps := benchBolt(b), benchPG(b)
	load := time.Now()
	appendAll(b, bs, 0, n, 16)
	boltLoad := time.Since(load)
	load = time.Now()
	appendAll(b, ps, 0, n, 16)
	pgLoad := time.Since(load)
	if _, err := ps.pool.Exec(b.Context(), "VACUUM ANALYZE mam_messages"); err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %d messages: bolt %v, PostgreSQL %v", n, boltLoad, pgLoad)
	for _, tc := range []struct {
		name string
		q    func(s mam.Store) mam.Query
	}{
		{"last", func(mam.Store) mam.Query { return mam.Query{Last: true, Max: 50} }},
		{"middle", func(s mam.Store) mam.Query {
			// The id of message n/2 differs per store: find it once.
			p, err := s.Query(context.Background(), alice, mam.Query{Start: benchT0.Add(time.Duration(n/2) * time.Millisecond), Max: 1})
			if err != nil || len(p.Messages) == 0 {
				b.Fatal(err)
			}
			return mam.Query{After: p.Messages[0].ID, Max: 50}
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			qb, qp := tc.q(bs), tc.q(ps)
			var tb, tp []time.Duration
			for b.Loop() {
				t := time.Now()
				pb, err := bs.Query(b.Context(), alice, qb)
				tb = append(tb, time.Since(t))
				if err != nil || len(pb.Messages) != 50 {
					b.Fatal(err)
				}
				t = time.Now()
				pp, err := ps.Query(b.Context(), alice, qp)
				tp = append(tp, time.Since(t))
				if err != nil || len(pp.Messages) != 50 {
					b.Fatal(err)
				}
			}
			// The floor of any PostgreSQL query: one round trip.
			var t1 []time.Duration
			for range len(tb) {
				t := time.Now()
				if _, err := ps.pool.Exec(b.Context(), "SELECT 1"); err != nil {
					b.Fatal(err)
				}
				t1 = append(t1, time.Since(t))
			}
			mb, mp, m1 := median(tb), median(tp), median(t1)
			b.ReportMetric(float64(mb.Microseconds()), "bolt-µs")
			b.ReportMetric(float64(mp.Microseconds()), "pg-µs")
			b.ReportMetric(float64(m1.Microseconds()), "select1-µs")
			b.ReportMetric(float64(mp)/float64(mb), "x-bolt")
		})
	}
}

// BenchmarkAppend measures appends from 32 writers into 32 archives, with
// fsync on: each store commits in groups (bbolt's Batch in the bolt store,
// PostgreSQL's shared WAL flush), and msg/s is the throughput.
func BenchmarkAppend(b *testing.B) {
	for _, tc := range []struct {
		name string
		new  func(b *testing.B) mam.Store
	}{
		{"bolt", benchBolt},
		{"pg", func(b *testing.B) mam.Store { return benchPG(b) }},
		{"pg-no-group-commit", func(b *testing.B) mam.Store {
			s, err := NewMAMStore(b.Context(), newPool(b), MAMConfig{GroupCommit: -1})
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := tc.new(b)
			const writers = 32
			var next atomic.Int64
			var wg sync.WaitGroup
			start := time.Now()
			b.ResetTimer()
			for w := range writers {
				owner := jid.MustParse(fmt.Sprintf("user%d@example.org", w))
				wg.Go(func() {
					for {
						i := int(next.Add(1))
						if i > b.N {
							return
						}
						m := benchMsg(i)
						m.Archive = owner
						if _, err := s.Append(context.Background(), m); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
		})
	}
}
