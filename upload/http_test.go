package upload_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"chatbx.eu/privacy/internal/testclock"
	"chatbx.eu/privacy/upload"
	"chatbx.eu/privacy/upload/uploadtest"
)

func TestPutGetRoundTrip(t *testing.T) {
	e := newEnv(t, nil)
	data := "\xff\xd8 not really a jpeg"
	s := e.slot(t, alice, "Holiday photo.jpg", int64(len(data)), "image/jpeg")
	w := e.put(t, s, strings.NewReader(data), nil)
	if w.Code != http.StatusCreated {
		t.Fatalf("PUT = %d, want 201", w.Code)
	}
	e.clock.Add(24 * time.Hour)
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		w := e.get(t, method, s.GetURL, nil)
		if w.Code != http.StatusOK {
			t.Fatalf("%s = %d", method, w.Code)
		}
		h := w.Header()
		want := map[string]string{
			"Content-Length":              strconv.Itoa(len(data)),
			"Content-Type":                "image/jpeg",
			"X-Content-Type-Options":      "nosniff",
			"Content-Security-Policy":     "default-src 'none'; frame-ancestors 'none'",
			"Content-Disposition":         `inline; filename="Holiday photo.jpg"`,
			"Etag":                        `"` + s.ID + `"`,
			"Cache-Control":               "public, max-age=" + strconv.Itoa(29*24*3600) + ", immutable",
			"Access-Control-Allow-Origin": "*",
		}
		for k, v := range want {
			if got := h.Get(k); got != v {
				t.Errorf("%s %s = %q, want %q", method, k, got, v)
			}
		}
		body := w.Body.String()
		if method == http.MethodGet && body != data {
			t.Fatalf("GET body = %q", body)
		}
		if method == http.MethodHead && body != "" {
			t.Fatalf("HEAD has a body")
		}
	}
	// Conditional GET with the ETag.
	w = e.get(t, http.MethodGet, s.GetURL, func(r *http.Request) { r.Header.Set("If-None-Match", `"`+s.ID+`"`) })
	if w.Code != http.StatusNotModified {
		t.Fatalf("If-None-Match = %d, want 304", w.Code)
	}
}

func TestContentDisposition(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct{ ct, wantType, disp string }{
		{"image/png", "image/png", "inline"},
		{"video/mp4", "video/mp4", "inline"},
		{"audio/ogg", "audio/ogg", "inline"},
		{"text/plain; charset=utf-8", "text/plain; charset=utf-8", "inline"},
		{"text/html", "text/html", "attachment"},
		{"application/pdf", "application/pdf", "attachment"},
		{"image/svg+xml", "image/svg+xml", "attachment"},
		{"", "application/octet-stream", "attachment"},
	} {
		t.Run(tc.ct, func(t *testing.T) {
			s := e.upload(t, alice, "naïve file.bin", tc.ct, "x")
			w := e.get(t, http.MethodGet, s.GetURL, nil)
			if got := w.Header().Get("Content-Type"); got != tc.wantType {
				t.Errorf("Content-Type = %q, want %q", got, tc.wantType)
			}
			d := w.Header().Get("Content-Disposition")
			if !strings.HasPrefix(d, tc.disp+";") || !strings.Contains(d, "filename*=utf-8''na%C3%AFve%20file.bin") {
				t.Errorf("Content-Disposition = %q, want %s with the encoded name", d, tc.disp)
			}
		})
	}
}

func TestRange(t *testing.T) {
	e := newEnv(t, nil)
	s := e.upload(t, alice, "a.txt", "text/plain", "0123456789")
	w := e.get(t, http.MethodGet, s.GetURL, func(r *http.Request) { r.Header.Set("Range", "bytes=2-5") })
	if w.Code != http.StatusPartialContent || w.Body.String() != "2345" || w.Header().Get("Content-Range") != "bytes 2-5/10" {
		t.Fatalf("Range 2-5 = %d %q %q", w.Code, w.Body, w.Header().Get("Content-Range"))
	}
	w = e.get(t, http.MethodGet, s.GetURL, func(r *http.Request) { r.Header.Set("Range", "bytes=100-") })
	if w.Code != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("Range past the end = %d, want 416", w.Code)
	}
}

// countingReader yields endless bytes and counts what was read.
type countingReader struct{ n int64 }

func (c *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	c.n += int64(len(p))
	return len(p), nil
}

func TestPutBadInput(t *testing.T) {
	const data = "0123456789"
	other := newEnv(t, func(c *upload.Config) { c.Key = key2 })
	for _, tc := range []struct {
		name string
		// prepare returns the slot to PUT to and edits the request.
		prepare func(t *testing.T, e *env, s upload.Slot) (upload.Slot, io.Reader, func(*http.Request))
		want    int
	}{
		{"plain HTTP", func(t *testing.T, e *env, s upload.Slot) (upload.Slot, io.Reader, func(*http.Request)) {
			return s, strings.NewReader(data), func(r *http.Request) { r.TLS = nil }
		}, http.StatusForbidden},
		{"forwarded proto not trusted", func(t *testing.T, e *env, s upload.Slot) (upload.Slot, io.Reader, func(*http.Request)) {
			return s, strings.NewReader(data), func(r *http.Request) { r.TLS = nil; r.Header.Set("X-Forwarded-Proto", "https") }
		}, http.StatusForbidden},
		{"no token", func(t *testing.T, e *env, s upload.Slot) (upload.Slot, io.Reader, func(*http.Request)) {
			return s, strings.NewReader(data), func(r *http.Request) { r.Header.Del("Authorization") }
		}, http.StatusUnauthorized},
		{"not bearer", func(t *testing.T, e *env, s upload.Slot) (upload.Slot, io.Reader, func(*http.Request)) {
			return s, strings.NewReader(data), func(r *http.Request) { r.Header.Set("Authorization", "Basic YTpi") }
		}, http.StatusUnauthorized},
		{"garbage token", func(t *testing.T, e *env, s upload.Slot) (upload.Slot, io.Reader, func(*http.Request)) {
			return s, strings.NewReader(data), func(r *http.Request) { r.Header.Set("Authorization", "Bearer abc") }
		}, http.StatusForbidden},
		{"forged token (other key)", func(t *testing.T, e *env, s upload.Slot) (upload.Slot, io.Reader, func(*http.Request)) {
			f := other.slot(t, alice, "a.txt", int64(len(data)), "text/plain")
			return s, strings.NewReader(data), func(r *http.Request) {
				// Same path shape, token from a service with another key.
				r.Header.Set("Authorization", f.Header.Get("Authorization"))
			}
		}, http.StatusForbidden},
		{"tampered token", func(t *testing.T, e *env, s upload.Slot) (upload.Slot, io.Reader, func(*http.Request)) {
			tok := []byte(s.Header.Get("Authorization"))
			i := len(tok) - 5
			tok[i] ^= 'A' ^ 'B'
			if tok[i] == s.Header.Get("Authorization")[i] {
				tok[i] = 'C'
			}
			return s, strings.NewReader(data), func(r *http.Request) { r.Header.Set("Authorization", string(tok)) }
		}, http.StatusForbidden},
		{"token for another slot", func(t *testing.T, e *env, s upload.Slot) (upload.Slot, io.Reader, func(*http.Request)) {
			o := e.slot(t, alice, "a.txt", int64(len(data)), "text/plain")
			return s, strings.NewReader(data), func(r *http.Request) { r.Header.Set("Authorization", o.Header.Get("Authorization")) }
		}, http.StatusForbidden},
		{"other user's token for another slot", func(t *testing.T, e *env, s upload.Slot) (upload.Slot, io.Reader, func(*http.Request)) {
			o := e.slot(t, bob, "a.txt", int64(len(data)), "text/plain")
			return s, strings.NewReader(data), func(r *http.Request) { r.Header.Set("Authorization", o.Header.Get("Authorization")) }
		}, http.StatusForbidden},
		{"other file name in path", func(t *testing.T, e *env, s upload.Slot) (upload.Slot, io.Reader, func(*http.Request)) {
			s.PutURL = strings.Replace(s.PutURL, "/a.txt", "/b.txt", 1)
			return s, strings.NewReader(data), nil
		}, http.StatusForbidden},
		{"expired slot", func(t *testing.T, e *env, s upload.Slot) (upload.Slot, io.Reader, func(*http.Request)) {
			e.clock.Add(301 * time.Second)
			return s, strings.NewReader(data), nil
		}, http.StatusGone},
		{"reused slot", func(t *testing.T, e *env, s upload.Slot) (upload.Slot, io.Reader, func(*http.Request)) {
			if w := e.put(t, s, strings.NewReader(data), nil); w.Code != http.StatusCreated {
				t.Fatalf("first PUT = %d", w.Code)
			}
			return s, strings.NewReader(data), nil
		}, http.StatusConflict},
		{"content-type mismatch", func(t *testing.T, e *env, s upload.Slot) (upload.Slot, io.Reader, func(*http.Request)) {
			return s, strings.NewReader(data), func(r *http.Request) { r.Header.Set("Content-Type", "text/html") }
		}, http.StatusBadRequest},
		{"declared length short", func(t *testing.T, e *env, s upload.Slot) (upload.Slot, io.Reader, func(*http.Request)) {
			return s, strings.NewReader(data[:5]), nil
		}, http.StatusBadRequest},
		{"declared length long", func(t *testing.T, e *env, s upload.Slot) (upload.Slot, io.Reader, func(*http.Request)) {
			return s, strings.NewReader(data + "!"), nil
		}, http.StatusRequestEntityTooLarge},
		{"streamed body short", func(t *testing.T, e *env, s upload.Slot) (upload.Slot, io.Reader, func(*http.Request)) {
			return s, io.MultiReader(strings.NewReader(data[:5])), func(r *http.Request) { r.ContentLength = -1 }
		}, http.StatusBadRequest},
		{"streamed body long", func(t *testing.T, e *env, s upload.Slot) (upload.Slot, io.Reader, func(*http.Request)) {
			return s, io.MultiReader(strings.NewReader(data + "!")), func(r *http.Request) { r.ContentLength = -1 }
		}, http.StatusRequestEntityTooLarge},
		{"not a file path", func(t *testing.T, e *env, s upload.Slot) (upload.Slot, io.Reader, func(*http.Request)) {
			s.PutURL = base + "/../../etc/passwd"
			return s, strings.NewReader(data), nil
		}, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			s := e.slot(t, alice, "a.txt", int64(len(data)), "text/plain")
			s, body, edit := tc.prepare(t, e, s)
			before := e.blobs.Len()
			w := e.put(t, s, body, edit)
			if w.Code != tc.want {
				t.Fatalf("PUT = %d %q, want %d", w.Code, w.Body, tc.want)
			}
			if e.blobs.Len() != before || e.blobs.Pending() != 0 {
				t.Fatalf("failed PUT left data: %d blobs (had %d), %d pending", e.blobs.Len(), before, e.blobs.Pending())
			}
			if strings.Contains(w.Body.String(), "alice") || strings.Contains(w.Body.String(), "a.txt") {
				t.Fatalf("error body reveals user data: %q", w.Body)
			}
		})
	}
}

// TestPutReadsAtMostSizePlusOne: an endless body is cut off at size+1
// bytes, answered 413, and nothing is kept.
func TestPutReadsAtMostSizePlusOne(t *testing.T) {
	e := newEnv(t, nil)
	const size = 100000
	s := e.slot(t, alice, "a.bin", size, "")
	body := &countingReader{}
	lr := &io.LimitedReader{R: body, N: 1 << 30}
	w := e.put(t, s, lr, func(r *http.Request) { r.ContentLength = -1 })
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("PUT = %d, want 413", w.Code)
	}
	if read := (1 << 30) - lr.N; read != size+1 {
		t.Fatalf("handler read %d bytes of an endless body, want %d", read, size+1)
	}
	if e.blobs.Len() != 0 || e.blobs.Pending() != 0 {
		t.Fatal("oversized upload kept")
	}
	// The slot is spent: retrying is a conflict, and the quota is released.
	if w := e.put(t, s, strings.NewReader(strings.Repeat("x", size)), nil); w.Code != http.StatusConflict {
		t.Fatalf("retry = %d, want 409", w.Code)
	}
	if recs, _ := e.meta.ByOwner(context.Background(), "alice@example.org"); len(recs) != 0 {
		t.Fatalf("failed upload still holds %d records", len(recs))
	}
}

func TestConcurrentPuts(t *testing.T) {
	e := newEnv(t, nil)
	const data = "concurrent"
	s := e.slot(t, alice, "a.txt", int64(len(data)), "")
	const n = 8
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { codes[i] = e.put(t, s, strings.NewReader(data), nil).Code })
	}
	wg.Wait()
	created := 0
	for _, c := range codes {
		switch c {
		case http.StatusCreated:
			created++
		case http.StatusConflict:
		default:
			t.Fatalf("concurrent PUT = %d, want 201 or 409", c)
		}
	}
	if created != 1 || e.blobs.Len() != 1 {
		t.Fatalf("%d PUTs succeeded, %d blobs; want exactly 1", created, e.blobs.Len())
	}
}

// failingBlobs fails writes after a number of bytes, or the commit.
type failingBlobs struct {
	*uploadtest.MemBlobs
	after      int
	failCommit bool
}

type failingWriter struct {
	upload.BlobWriter
	left       int
	failCommit bool
}

func (f *failingBlobs) Create(ctx context.Context, key string) (upload.BlobWriter, error) {
	w, err := f.MemBlobs.Create(ctx, key)
	return &failingWriter{BlobWriter: w, left: f.after, failCommit: f.failCommit}, err
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		return 0, errors.New("disk full")
	}
	w.left -= len(p)
	return w.BlobWriter.Write(p)
}

func (w *failingWriter) Commit() error {
	if w.failCommit {
		return errors.New("fsync failed")
	}
	return w.BlobWriter.Commit()
}

func TestDiskWriteError(t *testing.T) {
	for _, fb := range []*failingBlobs{
		{after: 3},
		{after: 1 << 20, failCommit: true},
	} {
		fb.MemBlobs = uploadtest.NewMemBlobs()
		meta := uploadtest.NewMemMeta()
		svc, err := upload.NewService(meta, fb, upload.Config{BaseURL: base})
		if err != nil {
			t.Fatal(err)
		}
		s, err := svc.RequestSlot(context.Background(), alice, "a.txt", 10, "")
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodPut, s.PutURL, strings.NewReader("0123456789"))
		r.Header.Set("Authorization", s.Header.Get("Authorization"))
		w := httptest.NewRecorder()
		svc.ServeHTTP(w, r)
		if w.Code < 500 {
			t.Fatalf("PUT with failing disk = %d, want 5xx", w.Code)
		}
		if fb.Len() != 0 || fb.Pending() != 0 {
			t.Fatalf("partial file kept: %d blobs, %d pending", fb.Len(), fb.Pending())
		}
		if _, err := meta.Get(context.Background(), s.ID); !errors.Is(err, upload.ErrNotFound) {
			t.Fatalf("record of a failed upload kept: %v", err)
		}
	}
}

// TestDiskWriteErrorFS: the same on the real file system: the temporary
// file is removed and the directory stays empty.
func TestDiskWriteErrorFS(t *testing.T) {
	dir := t.TempDir()
	fs, err := upload.NewFSBlobStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := upload.NewService(uploadtest.NewMemMeta(), &failingFS{FSBlobStore: fs}, upload.Config{BaseURL: base})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("x"), 1<<20)
	s, err := svc.RequestSlot(context.Background(), alice, "a.bin", int64(len(data)), "")
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPut, s.PutURL, bytes.NewReader(data))
	r.Header.Set("Authorization", s.Header.Get("Authorization"))
	w := httptest.NewRecorder()
	svc.ServeHTTP(w, r)
	if w.Code < 500 {
		t.Fatalf("PUT = %d, want 5xx", w.Code)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("failed upload left %d files", len(ents))
	}
}

type failingFS struct{ *upload.FSBlobStore }

func (f *failingFS) Create(ctx context.Context, key string) (upload.BlobWriter, error) {
	w, err := f.FSBlobStore.Create(ctx, key)
	return &failingWriter{BlobWriter: w, left: 1000}, err
}

func TestGetMissing(t *testing.T) {
	e := newEnv(t, nil)
	s := e.upload(t, alice, "a.txt", "text/plain", "data")
	pending := e.slot(t, alice, "b.txt", 3, "")
	erased := e.upload(t, bob, "c.txt", "text/plain", "bob")
	if err := e.svc.Erase(context.Background(), bob); err != nil {
		t.Fatal(err)
	}
	for name, u := range map[string]string{
		"unknown id":   base + "/" + uploadtest.NewID() + "/a.txt",
		"bad id":       base + "/short/a.txt",
		"no name":      base + "/" + s.ID,
		"wrong name":   strings.TrimSuffix(s.GetURL, "a.txt") + "b.txt",
		"not uploaded": pending.GetURL,
		"erased":       erased.GetURL,
		"traversal":    base + "/../../etc/passwd",
		"root":         base + "/",
	} {
		for _, m := range []string{http.MethodGet, http.MethodHead} {
			if w := e.get(t, m, u, nil); w.Code != http.StatusNotFound {
				t.Errorf("%s %s = %d, want 404", m, name, w.Code)
			}
		}
	}
	e.clock.Add(30 * 24 * time.Hour)
	if w := e.get(t, http.MethodGet, s.GetURL, nil); w.Code != http.StatusNotFound {
		t.Fatalf("GET at expiry = %d, want 404 (before Expire runs)", w.Code)
	}
}

func TestCORSAndNoCookies(t *testing.T) {
	e := newEnv(t, nil)
	w := e.get(t, http.MethodOptions, base+"/"+uploadtest.NewID()+"/a.txt", func(r *http.Request) {
		r.Header.Set("Origin", "https://chat.example.org")
		r.Header.Set("Access-Control-Request-Method", "PUT")
	})
	if w.Code != http.StatusNoContent && w.Code != http.StatusOK {
		t.Fatalf("OPTIONS = %d", w.Code)
	}
	h := w.Header()
	if h.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatal("no Access-Control-Allow-Origin: *")
	}
	for _, m := range []string{"PUT", "GET", "HEAD"} {
		if !strings.Contains(h.Get("Access-Control-Allow-Methods"), m) {
			t.Fatalf("Allow-Methods %q lacks %s", h.Get("Access-Control-Allow-Methods"), m)
		}
	}
	for _, hd := range []string{"Authorization", "Content-Type"} {
		if !strings.Contains(h.Get("Access-Control-Allow-Headers"), hd) {
			t.Fatalf("Allow-Headers %q lacks %s", h.Get("Access-Control-Allow-Headers"), hd)
		}
	}
	// No response of any kind sets a cookie, and all allow any origin.
	s := e.slot(t, alice, "a.txt", 1, "")
	var responses []*httptest.ResponseRecorder
	responses = append(responses, w,
		e.put(t, s, strings.NewReader("x"), nil),
		e.put(t, s, strings.NewReader("x"), nil),
		e.put(t, s, strings.NewReader("x"), func(r *http.Request) { r.Header.Del("Authorization") }),
		e.get(t, http.MethodGet, s.GetURL, nil),
		e.get(t, http.MethodHead, s.GetURL, nil),
		e.get(t, http.MethodGet, base+"/nothing", nil),
		e.get(t, http.MethodDelete, s.GetURL, nil),
	)
	for i, w := range responses {
		if c := w.Header().Values("Set-Cookie"); len(c) != 0 {
			t.Errorf("response %d (%d) sets a cookie", i, w.Code)
		}
		if w.Header().Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("response %d (%d) lacks CORS", i, w.Code)
		}
	}
	if responses[len(responses)-1].Code != http.StatusMethodNotAllowed {
		t.Fatalf("DELETE = %d, want 405", responses[len(responses)-1].Code)
	}
}

func TestKeyRotation(t *testing.T) {
	e := newEnv(t, nil) // signs with key1
	s := e.slot(t, alice, "a.txt", 1, "")
	s2 := e.slot(t, alice, "b.txt", 1, "")
	rotated, err := upload.NewService(e.meta, e.blobs, upload.Config{BaseURL: base, Key: key2, PreviousKey: key1, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	dropped, err := upload.NewService(e.meta, e.blobs, upload.Config{BaseURL: base, Key: key2, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	do := func(svc *upload.Service, s upload.Slot) int {
		r := httptest.NewRequest(http.MethodPut, s.PutURL, strings.NewReader("x"))
		r.Header.Set("Authorization", s.Header.Get("Authorization"))
		w := httptest.NewRecorder()
		svc.ServeHTTP(w, r)
		return w.Code
	}
	if c := do(dropped, s2); c != http.StatusForbidden {
		t.Fatalf("token of a dropped key = %d, want 403", c)
	}
	if c := do(rotated, s); c != http.StatusCreated {
		t.Fatalf("token of the previous key = %d, want 201", c)
	}
}

func TestTrustForwardedProto(t *testing.T) {
	e := newEnv(t, func(c *upload.Config) { c.TrustForwardedProto = true })
	s := e.slot(t, alice, "a.txt", 1, "")
	w := e.put(t, s, strings.NewReader("x"), func(r *http.Request) { r.TLS = nil; r.Header.Set("X-Forwarded-Proto", "https") })
	if w.Code != http.StatusCreated {
		t.Fatalf("PUT behind a trusted proxy = %d, want 201", w.Code)
	}
}

// TestTLSServer runs a real HTTPS round trip, with the handler mounted under
// the BaseURL path on a larger mux, on the file-system and bbolt stores.
func TestTLSServer(t *testing.T) {
	clk := testclock.New()
	var svc *upload.Service
	mux := http.NewServeMux()
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	svc, err := upload.NewService(newBoltMeta(t), newFSBlobs(t), upload.Config{BaseURL: srv.URL + "/upload", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/upload/", svc)
	client := srv.Client()
	client.Transport.(*http.Transport).TLSClientConfig = &tls.Config{InsecureSkipVerify: true}

	data := bytes.Repeat([]byte("photo "), 100000)
	s, err := svc.RequestSlot(context.Background(), alice, "photo.jpg", int64(len(data)), "image/jpeg")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPut, s.PutURL, bytes.NewReader(data))
	req.Header = s.Header.Clone()
	req.Header.Set("Content-Type", "image/jpeg")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT = %d", resp.StatusCode)
	}
	resp, err = client.Get(s.GetURL)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
		t.Fatalf("GET = %d, %d bytes", resp.StatusCode, len(got))
	}
	if len(resp.Cookies()) != 0 {
		t.Fatal("GET set a cookie")
	}
}

// hookReader runs hook once, after half of the body was read.
type hookReader struct {
	r    io.Reader
	n    int
	hook func()
}

func (h *hookReader) Read(p []byte) (int, error) {
	if h.hook != nil && h.n <= 0 {
		h.hook()
		h.hook = nil
	}
	if len(p) > 1 {
		p = p[:1]
	}
	n, err := h.r.Read(p)
	h.n -= n
	return n, err
}

// TestSlowUpload: an upload that outlives its slot's 300 s is not removed by
// Expire, but one that outlives UploadTimeout is, and the PUT then fails
// without keeping anything.
func TestSlowUpload(t *testing.T) {
	for _, tc := range []struct {
		name  string
		delay time.Duration
		want  int
	}{
		{"slower than the slot", 20 * time.Minute, http.StatusCreated},
		{"slower than UploadTimeout", 61 * time.Minute, http.StatusGone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			data := "0123456789"
			s := e.slot(t, alice, "a.txt", int64(len(data)), "")
			body := &hookReader{r: strings.NewReader(data), n: 5, hook: func() {
				e.clock.Add(tc.delay)
				if _, err := e.svc.Expire(context.Background(), e.clock.Now().Add(-e.svc.TTL())); err != nil {
					t.Error(err)
				}
			}}
			w := e.put(t, s, body, func(r *http.Request) { r.ContentLength = int64(len(data)) })
			if w.Code != tc.want {
				t.Fatalf("PUT = %d, want %d", w.Code, tc.want)
			}
			if want := map[bool]int{true: 1, false: 0}[tc.want == http.StatusCreated]; e.blobs.Len() != want || e.blobs.Pending() != 0 {
				t.Fatalf("%d blobs (%d pending), want %d", e.blobs.Len(), e.blobs.Pending(), want)
			}
		})
	}
}

// sizedBlobs is a BlobStore with the optional CreateSize; it records the
// sizes it is given.
type sizedBlobs struct {
	*uploadtest.MemBlobs
	sizes []int64
}

func (s *sizedBlobs) CreateSize(ctx context.Context, key string, size int64) (upload.BlobWriter, error) {
	s.sizes = append(s.sizes, size)
	return s.Create(ctx, key)
}

// A PUT hands the slot's size to a BlobStore that takes it (s3store
// streams a known size without buffering parts).
func TestPutPassesSize(t *testing.T) {
	sb := &sizedBlobs{MemBlobs: uploadtest.NewMemBlobs()}
	svc, err := upload.NewService(uploadtest.NewMemMeta(), sb, upload.Config{BaseURL: base})
	if err != nil {
		t.Fatal(err)
	}
	s, err := svc.RequestSlot(context.Background(), alice, "a.txt", 10, "")
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPut, s.PutURL, strings.NewReader("0123456789"))
	r.Header.Set("Authorization", s.Header.Get("Authorization"))
	w := httptest.NewRecorder()
	svc.ServeHTTP(w, r)
	if w.Code != http.StatusCreated || len(sb.sizes) != 1 || sb.sizes[0] != 10 {
		t.Fatalf("PUT = %d, CreateSize sizes %v; want 201 and [10]", w.Code, sb.sizes)
	}
}
