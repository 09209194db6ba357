package upload_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"chatbx.eu/privacy/internal/testclock"
	"chatbx.eu/privacy/upload"
	"chatbx.eu/privacy/upload/uploadtest"
)

// genReader generates n bytes without holding them: a 1 GiB body costs 0
// bytes of heap. Every 16 MiB it calls sample (to watch the heap mid-upload).
type genReader struct {
	n, off int64
	sample func()
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.off >= g.n {
		return 0, io.EOF
	}
	if int64(len(p)) > g.n-g.off {
		p = p[:g.n-g.off]
	}
	for i := range p {
		p[i] = byte(g.off + int64(i))
	}
	if g.sample != nil && (g.off>>24) != ((g.off+int64(len(p)))>>24) {
		g.sample()
	}
	g.off += int64(len(p))
	return len(p), nil
}

// discardWriter is an http.ResponseWriter that drops the body.
type discardWriter struct {
	h    http.Header
	code int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(code int)        { d.code = code }

func benchService(b *testing.B, blobs upload.BlobStore) *upload.Service {
	b.Helper()
	svc, err := upload.NewService(uploadtest.NewMemMeta(), blobs, upload.Config{
		BaseURL: base, MaxFileSize: 2 << 30, DailyQuota: -1, StoredQuota: -1,
	})
	if err != nil {
		b.Fatal(err)
	}
	return svc
}

// prepared makes a 256 MiB random-ish source file once per benchmark.
func sourceFile(b *testing.B, dir string, size int64) string {
	b.Helper()
	p := filepath.Join(dir, "source")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(f, &genReader{n: size}); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return p
}

// discardBlobs is a BlobStore that drops what is written: it isolates the
// handler's own cost from the disk's.
type discardBlobs struct{}

type discardBlobWriter struct{}

func (discardBlobs) Create(context.Context, string) (upload.BlobWriter, error) {
	return discardBlobWriter{}, nil
}
func (discardBlobs) Open(context.Context, string) (io.ReadSeekCloser, int64, error) {
	return nil, 0, upload.ErrNotFound
}
func (discardBlobs) Delete(context.Context, string) error { return nil }
func (discardBlobWriter) Write(p []byte) (int, error)     { return len(p), nil }
func (discardBlobWriter) Commit() error                   { return nil }
func (discardBlobWriter) Abort() error                    { return nil }

// BenchmarkPut256MiB: a 256 MiB PUT through the handler, against a raw
// io.Copy of the same source file in the same run, alternating which goes
// first. "discard": into a store that drops the bytes, vs io.Copy to
// io.Discard (the handler's own overhead). "fs": into FSBlobStore (temp file,
// fsync, rename, dir fsync), vs io.Copy into a new file + fsync, on the
// test's temporary directory (a disk). "tmpfs": the same in /dev/shm, which
// takes the disk's noise out.
func BenchmarkPut256MiB(b *testing.B) {
	for _, store := range []string{"discard", "fs", "tmpfs"} {
		b.Run(store, func(b *testing.B) { benchPut(b, store) })
	}
}

func benchPut(b *testing.B, store string) {
	const size = 256 << 20
	dir := b.TempDir()
	if store == "tmpfs" {
		d, err := os.MkdirTemp("/dev/shm", "uploadbench")
		if err != nil {
			b.Skip("no /dev/shm")
		}
		b.Cleanup(func() { os.RemoveAll(d) })
		dir, store = d, "fs"
	}
	src := sourceFile(b, dir, size)
	var blobs upload.BlobStore = discardBlobs{}
	if store == "fs" {
		fs, err := upload.NewFSBlobStore(filepath.Join(dir, "blobs"))
		if err != nil {
			b.Fatal(err)
		}
		blobs = fs
	}
	svc := benchService(b, blobs)
	var handler, raw time.Duration
	rawCopy := func() {
		in, _ := os.Open(src)
		defer in.Close()
		var out io.Writer = io.Discard
		var f *os.File
		if store == "fs" {
			f, _ = os.CreateTemp(dir, "raw-*")
			out = f
		}
		t0 := time.Now()
		if _, err := io.Copy(struct{ io.Writer }{out}, struct{ io.Reader }{in}); err != nil {
			b.Fatal(err)
		}
		if f != nil {
			f.Sync()
		}
		raw += time.Since(t0)
		if f != nil {
			f.Close() // kept until the end: see below
		}
	}
	viaHandler := func() {
		s, err := svc.RequestSlot(context.Background(), alice, "big.bin", size, "")
		if err != nil {
			b.Fatal(err)
		}
		in, _ := os.Open(src)
		defer in.Close()
		r := httptest.NewRequest(http.MethodPut, s.PutURL, in)
		r.ContentLength = size
		r.Header.Set("Authorization", s.Header.Get("Authorization"))
		w := &discardWriter{h: http.Header{}}
		t0 := time.Now()
		svc.ServeHTTP(w, r)
		handler += time.Since(t0)
		if w.code != http.StatusCreated {
			b.Fatalf("PUT = %d", w.code)
		}
		// Not deleted here: on ext4, writing right after deleting a large
		// file is several times slower (freed blocks wait for a journal
		// commit), which would distort whichever side runs next. b.TempDir
		// removes everything at the end.
	}
	b.SetBytes(size)
	i := 0
	for b.Loop() {
		if i%2 == 0 {
			rawCopy()
			viaHandler()
		} else {
			viaHandler()
			rawCopy()
		}
		i++
	}
	b.ReportMetric(raw.Seconds()/handler.Seconds(), "handler/raw")
	b.ReportMetric(float64(size)*float64(b.N)/handler.Seconds()/(1<<20), "handler-MiB/s")
	b.ReportMetric(float64(size)*float64(b.N)/raw.Seconds()/(1<<20), "raw-MiB/s")
}

// BenchmarkGet256MiB: a 256 MiB GET through the handler (http.ServeContent
// from the file-system store) into a discarding ResponseWriter, against a
// raw io.Copy of the same file to io.Discard, in the same run.
func BenchmarkGet256MiB(b *testing.B) {
	const size = 256 << 20
	dir := b.TempDir()
	blobs, err := upload.NewFSBlobStore(filepath.Join(dir, "blobs"))
	if err != nil {
		b.Fatal(err)
	}
	svc := benchService(b, blobs)
	s, err := svc.RequestSlot(context.Background(), alice, "big.bin", size, "")
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPut, s.PutURL, &genReader{n: size})
	r.ContentLength = size
	r.Header.Set("Authorization", s.Header.Get("Authorization"))
	w := &discardWriter{h: http.Header{}}
	svc.ServeHTTP(w, r)
	if w.code != http.StatusCreated {
		b.Fatalf("PUT = %d", w.code)
	}
	var handler, raw time.Duration
	b.SetBytes(size)
	for b.Loop() {
		rc, _, err := blobs.Open(context.Background(), s.ID)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		// Hide WriterTo/ReaderFrom so both sides copy through a buffer.
		if _, err := io.Copy(struct{ io.Writer }{io.Discard}, struct{ io.Reader }{rc}); err != nil {
			b.Fatal(err)
		}
		raw += time.Since(t0)
		rc.Close()

		w := &discardWriter{h: http.Header{}}
		t0 = time.Now()
		svc.ServeHTTP(w, httptest.NewRequest(http.MethodGet, s.GetURL, nil))
		handler += time.Since(t0)
		if w.code != http.StatusOK {
			b.Fatalf("GET = %d", w.code)
		}
	}
	b.ReportMetric(raw.Seconds()/handler.Seconds(), "handler/raw")
	b.ReportMetric(float64(size)*float64(b.N)/handler.Seconds()/(1<<20), "handler-MiB/s")
	b.ReportMetric(float64(size)*float64(b.N)/raw.Seconds()/(1<<20), "raw-MiB/s")
}

// BenchmarkPutMemory1GiB: a 1 GiB PUT from a generating reader into the
// file-system store; reports the peak rise of live heap objects sampled
// every 16 MiB during the upload, and the bytes allocated per PUT.
func BenchmarkPutMemory1GiB(b *testing.B) {
	const size = 1 << 30
	blobs, err := upload.NewFSBlobStore(filepath.Join(b.TempDir(), "blobs"))
	if err != nil {
		b.Fatal(err)
	}
	svc := benchService(b, blobs)
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	heap := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	var peak uint64
	var allocated uint64
	for b.Loop() {
		s, err := svc.RequestSlot(context.Background(), alice, "huge.bin", size, "")
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		base := heap()
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		gen := &genReader{n: size, sample: func() {
			if h := heap(); h > base && h-base > peak {
				peak = h - base
			}
		}}
		r := httptest.NewRequest(http.MethodPut, s.PutURL, gen)
		r.ContentLength = size
		r.Header.Set("Authorization", s.Header.Get("Authorization"))
		w := &discardWriter{h: http.Header{}}
		svc.ServeHTTP(w, r)
		runtime.ReadMemStats(&ms1)
		allocated += ms1.TotalAlloc - ms0.TotalAlloc
		if w.code != http.StatusCreated {
			b.Fatalf("PUT = %d", w.code)
		}
		blobs.Delete(context.Background(), s.ID)
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-rise-MiB")
	b.ReportMetric(float64(allocated)/float64(b.N)/(1<<20), "alloc-MiB/op")
}

// BenchmarkExpire100k: Expire removing 100,000 stored files (bbolt metadata,
// in-memory blobs so that only the index walk and deletions are measured),
// against a raw bbolt baseline deleting 100,000 keys of a bucket by cursor
// in transactions of 1000, in the same run.
func BenchmarkExpire100k(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	var expire, raw time.Duration
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		db, err := bolt.Open(filepath.Join(dir, "m.db"), 0o600, nil)
		if err != nil {
			b.Fatal(err)
		}
		db.NoSync = true // fast fill
		meta, err := upload.NewBoltMetaStore(db)
		if err != nil {
			b.Fatal(err)
		}
		blobs := uploadtest.NewMemBlobs()
		clk := testclock.New()
		svc, err := upload.NewService(meta, blobs, upload.Config{BaseURL: base, DailyQuota: -1, StoredQuota: -1, Now: clk.Now})
		if err != nil {
			b.Fatal(err)
		}
		for i := range n {
			owner := alice
			owner, _ = owner.WithLocal(fmt.Sprintf("user%d", i%1000))
			s, err := svc.RequestSlot(ctx, owner, "f.jpg", 1, "image/jpeg")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := meta.Claim(ctx, s.ID, clk.Now().Add(time.Hour)); err != nil {
				b.Fatal(err)
			}
			w, _ := blobs.Create(ctx, s.ID)
			w.Write([]byte{1})
			w.Commit()
			if err := meta.Commit(ctx, s.ID, clk.Now(), clk.Now().Add(time.Hour)); err != nil {
				b.Fatal(err)
			}
		}
		// Raw baseline: a bucket of n 8+24-byte keys, deleted by cursor.
		rawDB, err := bolt.Open(filepath.Join(dir, "raw.db"), 0o600, nil)
		if err != nil {
			b.Fatal(err)
		}
		rawDB.Update(func(tx *bolt.Tx) error {
			bk, _ := tx.CreateBucket([]byte("k"))
			for i := range n {
				k := binary.BigEndian.AppendUint64(nil, uint64(i))
				bk.Put(append(k, uploadtest.NewID()...), nil)
			}
			return nil
		})
		db.NoSync = false
		clk.Add(2 * time.Hour)

		b.StartTimer()
		t0 := time.Now()
		removed, err := svc.Expire(ctx, clk.Now().Add(-svc.TTL()))
		expire += time.Since(t0)
		if err != nil || removed != n {
			b.Fatalf("Expire = %d, %v", removed, err)
		}
		t0 = time.Now()
		for left := n; left > 0; left -= 1000 {
			rawDB.Update(func(tx *bolt.Tx) error {
				c := tx.Bucket([]byte("k")).Cursor()
				j := 0
				for k, _ := c.First(); k != nil && j < 1000; k, _ = c.First() {
					c.Delete()
					j++
				}
				return nil
			})
		}
		raw += time.Since(t0)
		b.StopTimer()
		db.Close()
		rawDB.Close()
		if blobs.Len() != 0 {
			b.Fatal("blobs left")
		}
		b.StartTimer()
	}
	b.ReportMetric(expire.Seconds()/float64(b.N), "expire-s")
	b.ReportMetric(raw.Seconds()/float64(b.N), "raw-bolt-s")
	b.ReportMetric(expire.Seconds()/raw.Seconds(), "expire/raw")
}

// BenchmarkGetTLSRate: a 64 MiB GET over a real TLS loopback connection,
// with the default minimum rate (the write deadline moves every 32 KiB) and
// without (MinRate -1), alternating in the same run: the cost of the rate
// rule on a download.
func BenchmarkGetTLSRate(b *testing.B) {
	const size = 64 << 20
	type side struct {
		name string
		url  string
		c    *http.Client
		took time.Duration
	}
	var sides []*side
	for _, rate := range []int64{0, -1} {
		blobs := uploadtest.NewMemBlobs()
		svc, err := upload.NewService(uploadtest.NewMemMeta(), blobs, upload.Config{
			BaseURL: base, MaxFileSize: 2 << 30, DailyQuota: -1, StoredQuota: -1, MinRate: rate,
		})
		if err != nil {
			b.Fatal(err)
		}
		s, err := svc.RequestSlot(context.Background(), alice, "big.bin", size, "")
		if err != nil {
			b.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodPut, s.PutURL, &genReader{n: size})
		r.ContentLength = size
		r.Header.Set("Authorization", s.Header.Get("Authorization"))
		w := &discardWriter{h: http.Header{}}
		svc.ServeHTTP(w, r)
		if w.code != http.StatusCreated {
			b.Fatalf("PUT = %d", w.code)
		}
		srv := httptest.NewTLSServer(svc)
		b.Cleanup(srv.Close)
		u, _ := url.Parse(s.GetURL)
		name := map[int64]string{0: "rate", -1: "norate"}[rate]
		sides = append(sides, &side{name: name, url: srv.URL + u.Path, c: srv.Client()})
	}
	get := func(s *side) {
		t0 := time.Now()
		res, err := s.c.Get(s.url)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if err != nil || n != size {
			b.Fatalf("GET: %d bytes, %v", n, err)
		}
		s.took += time.Since(t0)
	}
	b.SetBytes(2 * size)
	i := 0
	for b.Loop() {
		get(sides[i%2])
		get(sides[(i+1)%2])
		i++
	}
	for _, s := range sides {
		b.ReportMetric(float64(size)*float64(i)/s.took.Seconds()/(1<<20), s.name+"-MiB/s")
	}
	b.ReportMetric(sides[0].took.Seconds()/sides[1].took.Seconds(), "rate/norate")
}
