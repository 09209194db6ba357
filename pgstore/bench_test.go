package pgstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatbx.eu/privacy/mam"
	"github.com/jackc/pgx/v5"
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

func benchBolt(b *testing.B) benchBoltStore {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "mam.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	s, err := mam.NewBoltStore(db, mam.BoltConfig{})
	if err != nil {
		b.Fatal(err)
	}
	return benchBoltStore{s, db}
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

// appendAll appends messages from..to-1 to archive with writers
// goroutines.
func appendAll(b *testing.B, s mam.Store, archive jid.JID, from, to, writers int) {
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
				m := benchMsg(i)
				m.Archive = archive
				if _, err := s.Append(context.Background(), m); err != nil {
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
// messages (default 100,000) in both stores, alternately, with the floors
// of a PostgreSQL page measured in the same loop: the last page, and a
// forward page from the middle (RSM after). Each iteration times, in turn:
//
//   - bolt: the bolt store's page;
//   - select1: a bare SELECT 1 through the same pool (one round trip);
//   - raw: the store's own SQL for the page, through pgx, each row's raw
//     bytes appended to a reused buffer, nothing decoded;
//   - pg: the store's page.
//
// The archives (alice's and benchOthers) are loaded in bulk (loadBolt,
// loadPG) so that a million messages take a minute or two, not the run. x-bolt is pg / bolt, x-raw pg / raw,
// raw-x-bolt raw / bolt and select1-x-bolt select1 / bolt, each a ratio of
// the medians.
func BenchmarkPage(b *testing.B) {
	n := benchN(b, 100_000)
	bs, ps := benchBolt(b), benchPG(b)
	load := time.Now()
	loadBolt(b, bs, n)
	boltLoad := time.Since(load)
	load = time.Now()
	loadPG(b, ps, n)
	pgLoad := time.Since(load)
	b.Logf("loaded %d messages: bolt %v, PostgreSQL %v", n, boltLoad.Round(time.Millisecond), pgLoad.Round(time.Millisecond))
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
			qb, qp := tc.q(bs.Store), tc.q(ps)
			ctx := b.Context()
			rawSQL, rawArgs := ps.rawPageSQL(qp)
			var buf []byte
			var tb, t1, tr, tp []time.Duration
			for b.Loop() {
				t := time.Now()
				pb, err := bs.Query(ctx, alice, qb)
				tb = append(tb, time.Since(t))
				if err != nil || len(pb.Messages) != 50 {
					b.Fatal(err)
				}

				t = time.Now()
				if _, err := ps.pool.Exec(ctx, "SELECT 1"); err != nil {
					b.Fatal(err)
				}
				t1 = append(t1, time.Since(t))

				t = time.Now()
				rows, err := ps.pool.Query(ctx, rawSQL, rawArgs...)
				if err != nil {
					b.Fatal(err)
				}
				buf = buf[:0]
				nr := 0
				for rows.Next() {
					for _, v := range rows.RawValues() {
						buf = append(buf, v...)
					}
					nr++
				}
				rows.Close()
				tr = append(tr, time.Since(t))
				if rows.Err() != nil || nr < 50 {
					b.Fatal(nr, rows.Err())
				}

				t = time.Now()
				pp, err := ps.Query(ctx, alice, qp)
				tp = append(tp, time.Since(t))
				if err != nil || len(pp.Messages) != 50 {
					b.Fatal(err)
				}
			}
			mb, m1, mr, mp := median(tb), median(t1), median(tr), median(tp)
			b.ReportMetric(float64(mb.Nanoseconds())/1e3, "bolt-µs")
			b.ReportMetric(float64(m1.Nanoseconds())/1e3, "select1-µs")
			b.ReportMetric(float64(mr.Nanoseconds())/1e3, "raw-µs")
			b.ReportMetric(float64(mp.Nanoseconds())/1e3, "pg-µs")
			b.ReportMetric(float64(m1)/float64(mb), "select1-x-bolt")
			b.ReportMetric(float64(mr)/float64(mb), "raw-x-bolt")
			b.ReportMetric(float64(mp)/float64(mr), "x-raw")
			b.ReportMetric(float64(mp)/float64(mb), "x-bolt")
		})
	}
}

// rawPageSQL returns the statement and arguments Query sends for q's page
// of alice's archive.
func (s *MAMStore) rawPageSQL(q mam.Query) (string, []any) {
	size := q.Max
	if size == 0 {
		size = defaultMax
	}
	sql, args, _, _ := pageSQL(alice.String(), q, size)
	if q.Start.IsZero() && q.End.IsZero() && q.AfterID == "" && q.BeforeID == "" && len(q.IDs) == 0 {
		var csql string
		csql, args = countSQL(q, args)
		sql = strings.Replace(sql, "-1::bigint AS n", "("+csql+") AS n", 1)
	}
	return sql, args
}

// benchBoltStore is a bolt store and its database.
type benchBoltStore struct {
	mam.Store
	db *bolt.DB
}

// benchOthers are the archives loaded beside alice's: a table holding one
// archive would not be what a server's is, and PostgreSQL plans for the
// table it has (with a single archive, its plans read the time index and
// sort, a little slower than the primary key's order).
var benchOthers = struct{ archives, each int }{99, 1000}

func benchOther(k int) jid.JID { return jid.MustParse(fmt.Sprintf("user%d@example.org", k)) }

// loadBolt appends benchMsg(0..n-1) to alice's archive, and benchOthers'
// messages to theirs, through the store's Append, with fsync off while
// loading: 1,000 writers, so that each write transaction (the store's
// group commit, up to 1,000 appends) holds hundreds of messages.
func loadBolt(b *testing.B, s benchBoltStore, n int) {
	s.db.NoSync = true
	appendAll(b, s, alice, 0, n, 1000)
	for k := range benchOthers.archives {
		appendAll(b, s, benchOther(k), 0, benchOthers.each, 1000)
	}
	s.db.NoSync = false
	if err := s.db.Sync(); err != nil {
		b.Fatal(err)
	}
}

// loadPG loads what loadBolt does with COPY, writing the rows and counters
// Append would write (sequence numbers in order, random ids), then runs
// VACUUM ANALYZE.
func loadPG(b *testing.B, s *MAMStore, n int) {
	ctx := b.Context()
	rows := make([][]any, 0, 10_000)
	flush := func() {
		_, err := s.pool.CopyFrom(ctx, pgx.Identifier{"mam_messages"},
			[]string{"archive", "ts", "seq", "id", "with_bare", "with_res", "groupchat", "excluded", "real_jid", "stanza"},
			pgx.CopyFromRows(rows))
		if err != nil {
			b.Fatal(err)
		}
		rows = rows[:0]
	}
	load := func(archive jid.JID, n int) {
		a := archive.String()
		var last int64
		for i := range n {
			m := benchMsg(i)
			raw, _ := mam.ParseID(mam.NewID())
			last = m.Time.UnixNano()
			rows = append(rows, []any{a, last, int64(i + 1), raw[:], m.With.Bare().String(), m.With.Resourcepart(),
				false, false, nil, m.Stanza})
			if len(rows) == cap(rows) {
				flush()
			}
		}
		if len(rows) > 0 {
			flush()
		}
		_, err := s.pool.Exec(ctx, `INSERT INTO mam_archives (archive, seq, last_ts, n_all, n_incl) VALUES ($1, $2, $3, $2, $2)`,
			a, int64(n), last)
		if err != nil {
			b.Fatal(err)
		}
	}
	load(alice, n)
	for k := range benchOthers.archives {
		load(benchOther(k), benchOthers.each)
	}
	for _, stmt := range []string{
		`INSERT INTO mam_counts (archive, with_bare, with_res, excluded, n)
			SELECT archive, with_bare, with_res, excluded, count(*) FROM mam_messages GROUP BY 1, 2, 3, 4`,
		"VACUUM ANALYZE mam_messages, mam_archives, mam_counts",
	} {
		if _, err := s.pool.Exec(ctx, stmt); err != nil {
			b.Fatal(err)
		}
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
		{"bolt", func(b *testing.B) mam.Store { return benchBolt(b) }},
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
