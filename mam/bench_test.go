package mam

import (
	"bytes"
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

	bolt "go.etcd.io/bbolt"
	"mellium.im/xmpp/jid"
)

// Benchmarks of BoltStore. Figures and the commands that produced them are
// in README.md. The big archive has 1,000,000 messages by default;
// MAM_BENCH_N overrides it for a quick run.

var benchT0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func benchN(def int) int {
	if v, err := strconv.Atoi(os.Getenv("MAM_BENCH_N")); err == nil && v > 0 {
		return v
	}
	return def
}

func benchOpen(b *testing.B, cfg BoltConfig) (*BoltStore, *bolt.DB) {
	b.Helper()
	opts := &bolt.Options{Timeout: time.Second}
	if os.Getenv("MAM_BENCH_FREELIST") == "map" {
		// The integrator's choice: a map freelist that is not synced
		// keeps commits cheap once many pages are free.
		opts.FreelistType, opts.NoFreelistSync = bolt.FreelistMapType, true
	}
	db, err := bolt.Open(filepath.Join(b.TempDir(), "mam.db"), 0o600, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	s, err := NewBoltStore(db, cfg)
	if err != nil {
		b.Fatal(err)
	}
	return s, db
}

// benchMessage is message i of a generated archive: one of 100 contacts
// (each has 1% of the messages), one second apart, a ~200-byte stanza.
func benchMessage(archive jid.JID, contacts []jid.JID, i int, t0 time.Time) Message {
	with := contacts[i%len(contacts)]
	stanza := fmt.Appendf(nil, "<message xmlns='jabber:client' from='%s' to='%s' type='chat' id='m%d'>"+
		"<body>Benchmark message number %d, about as long as a typical chat line.</body></message>", with, archive, i, i)
	return Message{Archive: archive, With: with, Time: t0.Add(time.Duration(i) * time.Second), Stanza: stanza}
}

func benchContacts(n int) []jid.JID {
	out := make([]jid.JID, n)
	for i := range out {
		out[i] = jid.MustParse(fmt.Sprintf("contact%d@example.org/res", i))
	}
	return out
}

// benchFill writes n messages to archive through the store's own write
// path, many per transaction and without fsync, and returns their ids.
func benchFill(b *testing.B, s *BoltStore, db *bolt.DB, archive jid.JID, n int, t0 time.Time) []string {
	b.Helper()
	contacts := benchContacts(100)
	ids := make([]string, 0, n)
	db.NoSync = true
	defer func() { db.NoSync = false }()
	const chunk = 20_000
	for start := 0; start < n; start += chunk {
		ps := make([]*pending, 0, chunk)
		for i := start; i < min(n, start+chunk); i++ {
			p, err := s.prepare(benchMessage(archive, contacts, i, t0))
			if err != nil {
				b.Fatal(err)
			}
			ps = append(ps, p)
		}
		err := db.Update(func(tx *bolt.Tx) error {
			for _, p := range ps {
				if err := p.put(tx); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range ps {
			ids = append(ids, p.m.ID)
		}
	}
	if err := db.Sync(); err != nil {
		b.Fatal(err)
	}
	return ids
}

// benchRaw is the floor: one read transaction, a cursor seek on the
// archive's message bucket and size consecutive values, each copied out
// (any reader must copy before the transaction ends).
func benchRaw(db *bolt.DB, archive, from []byte, size int) error {
	return db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketArchives).Bucket(archive).Bucket(subMsgs).Cursor()
		out := make([][]byte, 0, size)
		for k, v := c.Seek(from); k != nil && len(out) < size; k, v = c.Next() {
			out = append(out, bytes.Clone(v))
		}
		if len(out) != size {
			return fmt.Errorf("raw read %d values", len(out))
		}
		return nil
	})
}

func benchKey(db *bolt.DB, archive []byte, id string) []byte {
	var key []byte
	db.View(func(tx *bolt.Tx) error {
		k, _ := boltOpenArchive(tx, archive).resolve(id)
		key = slices.Clone(k)
		return nil
	})
	return key
}

// BenchmarkAppend measures durable appends (fsync on) by one writer and by
// 8 concurrent writers, whose appends are group-committed,
// beside raw bbolt writes of one value of the same size: Update for one
// writer, DB.Batch (default MaxBatchDelay, 10 ms) for concurrent writers.
func BenchmarkAppend(b *testing.B) {
	alice := jid.MustParse("alice@example.org")
	contacts := benchContacts(100)
	b.Run("raw-update", func(b *testing.B) {
		_, db := benchOpen(b, BoltConfig{})
		v := benchMessage(alice, contacts, 0, benchT0).Stanza
		i := 0
		for b.Loop() {
			i++
			err := db.Update(func(tx *bolt.Tx) error {
				bk, err := tx.CreateBucketIfNotExists([]byte("raw"))
				if err != nil {
					return err
				}
				return bk.Put(binaryKey(i), v)
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("writers=1", func(b *testing.B) {
		s, _ := benchOpen(b, BoltConfig{})
		i := 0
		for b.Loop() {
			i++
			if _, err := s.Append(context.Background(), benchMessage(alice, contacts, i, benchT0)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw-batch-writers=8", func(b *testing.B) {
		_, db := benchOpen(b, BoltConfig{})
		v := benchMessage(alice, contacts, 0, benchT0).Stanza
		benchWriters(b, 8, func(i int) error {
			return db.Batch(func(tx *bolt.Tx) error {
				bk, err := tx.CreateBucketIfNotExists([]byte("raw"))
				if err != nil {
					return err
				}
				return bk.Put(binaryKey(i), v)
			})
		})
	})
	b.Run("writers=8", func(b *testing.B) {
		s, _ := benchOpen(b, BoltConfig{})
		benchWriters(b, 8, func(i int) error {
			_, err := s.Append(context.Background(), benchMessage(alice, contacts, i, benchT0))
			return err
		})
	})
}

// benchWriters runs b.N calls of write, numbered from 1, spread over n
// goroutines.
func benchWriters(b *testing.B, n int, write func(i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range n {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if err := write(int(i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func binaryKey(i int) []byte { return fmt.Appendf(nil, "%016d", i) }

// BenchmarkQuery measures pages of 50 from an archive of 10,000 and one of
// 1,000,000 messages, each beside the raw cursor floor (benchRaw) reading
// 50 consecutive values at the page's first message in the same loop;
// query-p50-ns and raw-p50-ns are their median times (ns/op is the mean of
// their sum), x-raw the ratio of the medians.
func BenchmarkQuery(b *testing.B) {
	s, db := benchOpen(b, BoltConfig{})
	big := benchN(1_000_000)
	sizes := []struct {
		name    string
		archive jid.JID
		n       int
	}{
		{"10k", jid.MustParse("small@example.org"), 10_000},
		{fmt.Sprint(big/1000) + "k", jid.MustParse("big@example.org"), big},
	}
	contact := benchContacts(100)[42].Bare() // 1% of each archive
	start := time.Now()
	allIDs := map[string][]string{}
	for _, sz := range sizes {
		allIDs[sz.name] = benchFill(b, s, db, sz.archive, sz.n, benchT0)
	}
	b.Logf("generated %d messages in %v", sizes[0].n+sizes[1].n, time.Since(start).Round(time.Millisecond))
	ctx := context.Background()

	// Scale: the same page from the small and the big archive, alternating
	// in one loop; x-small is the ratio of the medians (target < 1.2).
	small, bigA := allIDs[sizes[0].name], allIDs[sizes[1].name]
	for _, tc := range []struct {
		name   string
		qs, qb Query
	}{
		{"first", Query{}, Query{}},
		{"middle-rsm-after", Query{After: small[len(small)/2]}, Query{After: bigA[len(bigA)/2]}},
		{"last", Query{Last: true}, Query{Last: true}},
		{"with-1pct", Query{With: contact}, Query{With: contact}},
	} {
		b.Run("scale/"+tc.name, func(b *testing.B) {
			var st, bt []time.Duration
			for b.Loop() {
				t := time.Now()
				if _, err := s.Query(ctx, sizes[0].archive, tc.qs); err != nil {
					b.Fatal(err)
				}
				t2 := time.Now()
				if _, err := s.Query(ctx, sizes[1].archive, tc.qb); err != nil {
					b.Fatal(err)
				}
				st = append(st, t2.Sub(t))
				bt = append(bt, time.Since(t2))
			}
			s50, b50 := benchPct(st, 0.5), benchPct(bt, 0.5)
			b.ReportMetric(float64(s50.Nanoseconds()), "small-p50-ns")
			b.ReportMetric(float64(b50.Nanoseconds()), "big-p50-ns")
			b.ReportMetric(float64(b50)/float64(s50), "x-small")
		})
	}

	for _, sz := range sizes {
		ids := allIDs[sz.name]
		archive := []byte(sz.archive.String())
		mid := len(ids) / 2
		for _, tc := range []struct {
			name  string
			q     Query
			rawAt string // id of the first value the floor reads
		}{
			{"first", Query{}, ids[0]},
			{"middle-after-id", Query{AfterID: ids[mid]}, ids[mid+1]},
			{"middle-rsm-after", Query{After: ids[mid]}, ids[mid+1]},
			{"last", Query{Last: true}, ids[len(ids)-50]},
			{"with-1pct", Query{With: contact}, ids[42]},
			{"with-1pct-last", Query{With: contact, Last: true}, ids[len(ids)-50]},
		} {
			from := benchKey(db, archive, tc.rawAt)
			b.Run(sz.name+"/"+tc.name, func(b *testing.B) {
				// Query and floor alternate, so that noise from other
				// processes hits both alike, and the medians are
				// compared, so that a preempted iteration does not count.
				var queryT, rawT []time.Duration
				for b.Loop() {
					t := time.Now()
					p, err := s.Query(ctx, sz.archive, tc.q)
					if err != nil || len(p.Messages) != 50 {
						b.Fatalf("query: %d messages, %v", len(p.Messages), err)
					}
					t2 := time.Now()
					if err := benchRaw(db, archive, from, 50); err != nil {
						b.Fatal(err)
					}
					queryT = append(queryT, t2.Sub(t))
					rawT = append(rawT, time.Since(t2))
				}
				q50, r50 := benchPct(queryT, 0.5), benchPct(rawT, 0.5)
				b.ReportMetric(float64(q50.Nanoseconds()), "query-p50-ns")
				b.ReportMetric(float64(r50.Nanoseconds()), "raw-p50-ns")
				b.ReportMetric(float64(q50)/float64(r50), "x-raw")
			})
		}
	}
}

// BenchmarkExpire expires 1,000,000 messages (100 archives of 10,000) while
// a reader pages through another archive, and reports the longest write
// transaction and the page latency during the sweep against idle. Run it
// with -benchtime=1x.
func BenchmarkExpire(b *testing.B) {
	total := benchN(1_000_000)
	const archives = 100
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		s, db := benchOpen(b, BoltConfig{})
		for a := range archives {
			benchFill(b, s, db, jid.MustParse(fmt.Sprintf("user%d@example.org", a)), total/archives, benchT0)
		}
		reader := jid.MustParse("reader@example.org")
		rids := benchFill(b, s, db, reader, 10_000, benchT0.Add(24*365*time.Hour))
		page := func() time.Duration {
			t := time.Now()
			p, err := s.Query(ctx, reader, Query{After: rids[5000]})
			if err != nil || len(p.Messages) != 50 {
				b.Fatalf("query: %d messages, %v", len(p.Messages), err)
			}
			return time.Since(t)
		}
		var idle []time.Duration
		for range 2000 {
			idle = append(idle, page())
		}
		var txTimes []time.Duration
		s.expireTx = func(_ int, took time.Duration) { txTimes = append(txTimes, took) }
		var during []time.Duration
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				during = append(during, page())
			}
		})
		b.StartTimer()
		n, err := s.Expire(ctx, benchT0.Add(time.Duration(total)*time.Second))
		b.StopTimer()
		close(done)
		wg.Wait()
		if err != nil || n != total {
			b.Fatalf("Expire = %d, %v; want %d", n, err, total)
		}
		b.ReportMetric(float64(len(txTimes)), "txs")
		b.ReportMetric(float64(benchPct(txTimes, 0.5).Microseconds())/1000, "tx-p50-ms")
		b.ReportMetric(float64(benchPct(txTimes, 0.99).Microseconds())/1000, "tx-p99-ms")
		b.ReportMetric(float64(benchPct(txTimes, 1).Microseconds())/1000, "tx-max-ms")
		b.ReportMetric(float64(benchPct(idle, 0.5).Microseconds()), "idle-p50-µs")
		b.ReportMetric(float64(benchPct(during, 0.5).Microseconds()), "sweep-p50-µs")
		b.ReportMetric(float64(benchPct(during, 0.99).Microseconds()), "sweep-p99-µs")
		b.ReportMetric(float64(benchPct(during, 0.5))/float64(benchPct(idle, 0.5)), "x-idle-p50")
		b.ReportMetric(float64(benchPct(during, 0.99))/float64(benchPct(idle, 0.99)), "x-idle-p99")
		b.ReportMetric(float64(len(during)), "pages-during")
		b.StartTimer()
	}
}

// benchPct returns the p-quantile of ds (sorting ds).
func benchPct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[int(float64(len(ds)-1)*p)]
}
