package s3store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"chatbx.eu/privacy/s3store"
	"chatbx.eu/privacy/upload"
	"chatbx.eu/privacy/upload/uploadtest"
)

var alice = jid.MustParse("alice@example.org/phone") // test data

// newService is an upload.Service on an S3 store with in-memory metadata.
func newService(t testing.TB, s upload.BlobStore, maxSize int64) *upload.Service {
	t.Helper()
	svc, err := upload.NewService(uploadtest.NewMemMeta(), s, upload.Config{
		BaseURL: "https://upload.example.org/upload", Key: bytes.Repeat([]byte{7}, 32),
		MaxFileSize: maxSize, DailyQuota: -1, StoredQuota: 4 << 30,
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// putVia PUTs body through the Service's handler and returns the status.
func putVia(t testing.TB, svc *upload.Service, name string, size int64, body io.Reader) (upload.Slot, int) {
	t.Helper()
	slot, err := svc.RequestSlot(context.Background(), alice, name, size, "text/plain")
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPut, slot.PutURL, body)
	r.ContentLength = size
	for k, v := range slot.Header {
		r.Header[k] = v
	}
	r.Header.Set("Content-Type", "text/plain")
	w := httptest.NewRecorder()
	svc.ServeHTTP(w, r)
	return slot, w.Code
}

func getVia(svc *upload.Service, u, rng string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, u, nil)
	if rng != "" {
		r.Header.Set("Range", rng)
	}
	w := httptest.NewRecorder()
	svc.ServeHTTP(w, r)
	return w
}

// GET with Range through upload's handler serves the right bytes of a
// multipart blob, across a part boundary and at the end.
func TestServiceRange(t *testing.T) {
	s, _, _ := newStore(t, s3store.Options{PartSize: s3store.MinPartSize})
	svc := newService(t, s, 100<<20)
	data := pattern(s3store.MinPartSize + 4096)
	slot, code := putVia(t, svc, "a.txt", int64(len(data)), bytes.NewReader(data))
	if code != http.StatusCreated {
		t.Fatalf("PUT = %d", code)
	}
	if w := getVia(svc, slot.GetURL, ""); w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), data) {
		t.Fatalf("GET = %d, %d bytes", w.Code, w.Body.Len())
	}
	b := s3store.MinPartSize - 10
	for _, tc := range []struct {
		rng      string
		from, to int // inclusive
	}{
		{"bytes=" + strconv.Itoa(b) + "-" + strconv.Itoa(b+19), b, b + 19},
		{"bytes=-100", len(data) - 100, len(data) - 1},
		{"bytes=0-0", 0, 0},
	} {
		w := getVia(svc, slot.GetURL, tc.rng)
		if w.Code != http.StatusPartialContent || !bytes.Equal(w.Body.Bytes(), data[tc.from:tc.to+1]) {
			t.Fatalf("GET %s = %d, %d bytes, want 206 with bytes %d–%d", tc.rng, w.Code, w.Body.Len(), tc.from, tc.to)
		}
	}
	// A PUT cut short leaves nothing behind and the slot's GET is 404.
	short, code := putVia(t, svc, "b.txt", 100, bytes.NewReader(make([]byte, 60)))
	if code == http.StatusCreated {
		t.Fatal("a short PUT was accepted")
	}
	if w := getVia(svc, short.GetURL, ""); w.Code != http.StatusNotFound {
		t.Fatalf("GET of a failed upload = %d", w.Code)
	}
}

// After an erasure, no byte sequence of the user's files (stored whole,
// stored in parts, or aborted mid-upload) is left in any file of the S3
// server's storage directory. Before it, the scan finds them: the scan works.
// Parts are streamed (upload's handler calls CreateSize) or, through a
// wrapper without CreateSize, buffered.
func TestErasureResidue(t *testing.T) {
	for _, sized := range []bool{true, false} {
		t.Run(map[bool]string{false: "Create", true: "CreateSize"}[sized], func(t *testing.T) { testErasureResidue(t, sized) })
	}
}

func testErasureResidue(t *testing.T, sized bool) {
	dir := storageDir(t)
	s, _, _ := newStore(t, small5)
	var blobs upload.BlobStore = s
	if !sized {
		blobs = unsized{s}
	}
	svc := newService(t, blobs, 100<<20)
	random := func(n int) []byte {
		b := make([]byte, n)
		rand.Read(b)
		return b
	}
	big := random(2*s3store.MinPartSize + 1000) // three parts
	small := random(4096)                       // one PUT
	cut := random(s3store.MinPartSize + 1000)   // one part sent, then cut
	needles := [][]byte{
		big[:64], big[s3store.MinPartSize+100 : s3store.MinPartSize+164], big[len(big)-64:],
		small[1000:1064],
		cut[:64],
	}
	if _, code := putVia(t, svc, "big.bin", int64(len(big)), bytes.NewReader(big)); code != http.StatusCreated {
		t.Fatalf("PUT big = %d", code)
	}
	if _, code := putVia(t, svc, "small.bin", int64(len(small)), bytes.NewReader(small)); code != http.StatusCreated {
		t.Fatalf("PUT small = %d", code)
	}
	// The cut upload: its first part reached the server before the client
	// went away.
	if _, code := putVia(t, svc, "cut.bin", int64(len(cut))+1, bytes.NewReader(cut)); code == http.StatusCreated {
		t.Fatal("a short PUT was accepted")
	}
	found := scan(t, dir, needles)
	if !found[0] || !found[3] {
		t.Fatalf("before erasure the scan finds %v; the stored files must be found", found)
	}
	if err := svc.Erase(context.Background(), alice); err != nil {
		t.Fatal(err)
	}
	if found := scan(t, dir, needles); bytes.Contains(boolBytes(found), []byte{1}) {
		t.Fatalf("after erasure the storage directory still holds needles %v (big×3, small, cut)", found)
	}
}

func boolBytes(f []bool) []byte {
	b := make([]byte, len(f))
	for i, v := range f {
		if v {
			b[i] = 1
		}
	}
	return b
}

// scan reports which needles occur in any regular file under dir.
func scan(t testing.TB, dir string, needles [][]byte) []bool {
	t.Helper()
	found := make([]bool, len(needles))
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) { // removed by a concurrent test
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		for i, n := range needles {
			if bytes.Contains(b, n) {
				found[i] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// unsized is a Store without CreateSize: upload's handler then calls
// Create, and the parts are buffered.
type unsized struct{ s *s3store.Store }

func (u unsized) Create(ctx context.Context, key string) (upload.BlobWriter, error) {
	return u.s.Create(ctx, key)
}

func (u unsized) Open(ctx context.Context, key string) (io.ReadSeekCloser, int64, error) {
	return u.s.Open(ctx, key)
}

func (u unsized) Delete(ctx context.Context, key string) error { return u.s.Delete(ctx, key) }

func (u unsized) DeleteBlobs(ctx context.Context, keys ...string) error {
	return u.s.DeleteBlobs(ctx, keys...)
}

func (u unsized) RemoveStale(ctx context.Context, t time.Time) (int, error) {
	return u.s.RemoveStale(ctx, t)
}

// heapBody yields n bytes and samples the live heap every 4 MiB it hands
// out, keeping the peak.
type heapBody struct {
	left, since int64
	peak        uint64
}

func (h *heapBody) Read(p []byte) (int, error) {
	if h.left == 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), h.left))
	for i := range p[:n] {
		p[i] = byte(i)
	}
	h.left -= int64(n)
	h.since += int64(n)
	if h.since >= 4<<20 {
		h.since = 0
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		h.peak = max(h.peak, m.HeapInuse)
	}
	return n, nil
}

// A large PUT through upload's handler holds little memory: streamed
// (CreateSize, what the handler calls) no part at all, buffered (Create,
// through unsized) about one part. The size is 64 MiB by default (CI);
// S3STORE_HEAP_MIB=1024 measures 1 GiB, the figure in BENCHMARKS.md.
func TestPutHeapBounded(t *testing.T) {
	mib := int64(64)
	if v := os.Getenv("S3STORE_HEAP_MIB"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			t.Fatalf("S3STORE_HEAP_MIB=%q", v)
		}
		mib = n
	}
	for _, sized := range []bool{true, false} {
		t.Run(map[bool]string{false: "Create", true: "CreateSize"}[sized], func(t *testing.T) {
			s, _, _ := newStore(t, s3store.Options{}) // default part sizes
			var blobs upload.BlobStore = s
			if !sized {
				blobs = unsized{s}
			}
			size := mib << 20
			svc := newService(t, blobs, size)
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			base := m.HeapInuse
			body := &heapBody{left: size}
			slot, code := putVia(t, svc, "large.bin", size, body)
			if code != http.StatusCreated {
				t.Fatalf("PUT = %d", code)
			}
			growth := int64(body.peak) - int64(base)
			t.Logf("PUT of %d MiB: heap in use grew by at most %.1f MiB", mib, float64(growth)/(1<<20))
			if growth > 32<<20 {
				t.Fatalf("heap grew by %d MiB during a %d MiB PUT, want ≤ 32 MiB", growth>>20, mib)
			}
			// The tail of the blob reads back through a Range GET.
			w := getVia(svc, slot.GetURL, "bytes=-10")
			if w.Code != http.StatusPartialContent || w.Body.Len() != 10 {
				t.Fatalf("Range GET of the tail = %d, %d bytes", w.Code, w.Body.Len())
			}
		})
	}
}
