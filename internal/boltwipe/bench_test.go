package boltwipe_test

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"chatbx.eu/privacy/internal/boltwipe"
)

// bigDB builds, once per benchmark, a database of RETENTION_BIG_MIB MiB
// (default 1024) of which every other value (1 to 16 KiB) is deleted, so
// about half the file is free pages scattered among live ones. It is only
// built with RETENTION_BIG=1.
func bigDB(b *testing.B) (path string, freeBytes int64) {
	b.Helper()
	if os.Getenv("RETENTION_BIG") != "1" {
		b.Skip("set RETENTION_BIG=1 to build the large database")
	}
	mib := 1024
	if s := os.Getenv("RETENTION_BIG_MIB"); s != "" {
		var err error
		if mib, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	path = filepath.Join(b.TempDir(), "big.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoSync: true, InitialMmapSize: (mib + 256) << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	r := rand.New(rand.NewPCG(7, 8))
	val := make([]byte, 16<<10)
	for i := range val {
		val[i] = byte(r.Uint32())
	}
	var key [8]byte
	var written int64
	for n := uint64(0); written < int64(mib)<<20; {
		err := db.Update(func(tx *bolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists([]byte("data"))
			if err != nil {
				return err
			}
			for end := written + 64<<20; written < end; n++ {
				binary.BigEndian.PutUint64(key[:], n)
				v := val[:1024+r.IntN(15<<10)]
				if err := bk.Put(key[:], v); err != nil {
					return err
				}
				written += int64(len(v))
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	err = db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte("data")).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if binary.BigEndian.Uint64(k)%2 == 0 {
				if err := c.Delete(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := db.Sync(); err != nil {
		b.Fatal(err)
	}
	st := db.Stats()
	return path, int64(st.FreePageN+st.PendingPageN) * int64(db.Info().PageSize)
}

// BenchmarkWipe1GiB measures Wipe against two baselines on the same file:
// writing the same number of zero bytes with one fdatasync (the floor for
// any in-place wipe), and bbolt's own compaction into a fresh file (the
// alternative mechanism, before any swap).
//
//	RETENTION_BIG=1 go test -run '^$' -bench Wipe1GiB -benchtime 1x ./internal/boltwipe/
func BenchmarkWipe1GiB(b *testing.B) {
	path, free := bigDB(b)
	info, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("file %d MiB, free %d MiB", info.Size()>>20, free>>20)

	for _, per := range []int{256, 1024, 8192} {
		b.Run("wipe-pages-per-tx="+strconv.Itoa(per), func(b *testing.B) {
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			var longest time.Duration
			for b.Loop() {
				last := time.Now()
				_, err := boltwipe.WipeOptions(context.Background(), db, boltwipe.Options{
					PagesPerTx: per,
					Progress: func(int) {
						now := time.Now()
						longest = max(longest, now.Sub(last))
						last = now
					},
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(free>>20)/(b.Elapsed().Seconds()/float64(b.N)), "MiB/s")
			b.ReportMetric(float64(longest.Milliseconds()), "longest-tx-ms")
		})
	}

	b.Run("baseline-write-zeros", func(b *testing.B) {
		zeros := make([]byte, 1<<20)
		for b.Loop() {
			f, err := os.Create(filepath.Join(b.TempDir(), "zeros"))
			if err != nil {
				b.Fatal(err)
			}
			for n := int64(0); n < free; n += int64(len(zeros)) {
				if _, err := f.Write(zeros); err != nil {
					b.Fatal(err)
				}
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
		b.ReportMetric(float64(free>>20)/(b.Elapsed().Seconds()/float64(b.N)), "MiB/s")
	})

	b.Run("baseline-compact", func(b *testing.B) {
		src, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer src.Close()
		for b.Loop() {
			dst, err := bolt.Open(filepath.Join(b.TempDir(), "compact.db"), 0o600, nil)
			if err != nil {
				b.Fatal(err)
			}
			if err := bolt.Compact(dst, src, 64<<20); err != nil {
				b.Fatal(err)
			}
			if err := dst.Close(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(info.Size()>>20)/(b.Elapsed().Seconds()/float64(b.N)), "MiB/s")
	})
}
