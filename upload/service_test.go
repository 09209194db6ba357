package upload_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"chatbx.eu/privacy/internal/testclock"
	"chatbx.eu/privacy/upload"
	"chatbx.eu/privacy/upload/uploadtest"
)

// Compile-time checks that *Service has the methods of account.Holder and
// retention.Expirer, declared here as those packages declare them (this
// package does not import them), so that it is passed to both without an
// adapter.
var (
	_ interface {
		Name() string
		Export(ctx context.Context, user jid.JID, w io.Writer) error
		Erase(ctx context.Context, user jid.JID) error
	} = (*upload.Service)(nil)
	_ interface {
		Expire(ctx context.Context, before time.Time) (removed int, err error)
	} = (*upload.Service)(nil)
	_ http.Handler = (*upload.Service)(nil)
)

func TestNewConfig(t *testing.T) {
	m, b := uploadtest.NewMemMeta(), uploadtest.NewMemBlobs()
	for _, tc := range []struct {
		name string
		cfg  upload.Config
		ok   bool
	}{
		{"zero needs BaseURL", upload.Config{}, false},
		{"http refused", upload.Config{BaseURL: "http://upload.example.org"}, false},
		{"relative refused", upload.Config{BaseURL: "/upload"}, false},
		{"short key", upload.Config{BaseURL: base, Key: []byte("short")}, false},
		{"short previous key", upload.Config{BaseURL: base, Key: key1, PreviousKey: []byte("x")}, false},
		{"random key", upload.Config{BaseURL: base}, true},
		{"keys", upload.Config{BaseURL: base, Key: key1, PreviousKey: key2}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := upload.NewService(m, b, tc.cfg)
			if (err == nil) != tc.ok {
				t.Fatalf("NewService = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, upload.ErrConfig) {
				t.Fatalf("error %v does not wrap ErrConfig", err)
			}
		})
	}
	if _, err := upload.NewService(nil, b, upload.Config{BaseURL: base}); err == nil {
		t.Fatal("NewService accepted a nil MetaStore")
	}
	s, _ := upload.NewService(m, b, upload.Config{BaseURL: base})
	if s.MaxFileSize() != 100<<20 || s.TTL() != 30*24*time.Hour || s.Name() != "upload" {
		t.Fatalf("defaults: max %d, ttl %v, name %q", s.MaxFileSize(), s.TTL(), s.Name())
	}
}

func TestRetentionMaxAge(t *testing.T) {
	const day = 24 * time.Hour
	for _, tc := range []struct {
		ttl, interval, want time.Duration
	}{
		// TTL − interval·1.1 − 1s.
		{0, 10 * time.Minute, 30*day - 11*time.Minute - time.Second},
		{0, 0, 30*day - 11*time.Minute - time.Second}, // 0 is 10 minutes
		{time.Hour, 6 * time.Minute, time.Hour - 6*time.Minute - 36*time.Second - time.Second},
		{time.Hour, time.Hour, 0}, // never negative
	} {
		e := newEnv(t, func(c *upload.Config) { c.TTL = tc.ttl })
		if got := e.svc.RetentionMaxAge(tc.interval); got != tc.want {
			t.Errorf("TTL %v: RetentionMaxAge(%v) = %v, want %v", tc.ttl, tc.interval, got, tc.want)
		}
	}
}

func TestRequestSlotErrors(t *testing.T) {
	e := newEnv(t, func(c *upload.Config) {
		c.MaxFileSize = 1000
		c.Allow = func(j jid.JID) bool { return j.Domainpart() == "example.org" }
	})
	for _, tc := range []struct {
		name  string
		owner jid.JID
		file  string
		size  int64
		ct    string
		want  error
	}{
		{"domain JID", jid.MustParse("example.org"), "a.jpg", 1, "", upload.ErrForbidden},
		{"empty JID", jid.JID{}, "a.jpg", 1, "", upload.ErrForbidden},
		{"Allow refuses", jid.MustParse("eve@example.net"), "a.jpg", 1, "", upload.ErrForbidden},
		{"empty name", alice, "", 1, "", upload.ErrBadRequest},
		{"blank name", alice, " \t", 1, "", upload.ErrBadRequest},
		{"negative size", alice, "a.jpg", -1, "", upload.ErrBadRequest},
		{"bad content type", alice, "a.jpg", 1, "not a type", upload.ErrBadRequest},
		{"too large", alice, "a.jpg", 1001, "", upload.ErrTooLarge},
		{"ok", alice, "a.jpg", 1000, "image/jpeg", nil},
		{"ok empty file", alice, "a.txt", 0, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.RequestSlot(context.Background(), tc.owner, tc.file, tc.size, tc.ct)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("RequestSlot = %v, want %v", err, tc.want)
			}
		})
	}
	_, err := e.svc.RequestSlot(context.Background(), alice, "a.jpg", 5000, "")
	var tl *upload.TooLargeError
	if !errors.As(err, &tl) || tl.Max != 1000 {
		t.Fatalf("TooLargeError = %v, want Max 1000", err)
	}
}

func TestSlotURLs(t *testing.T) {
	e := newEnv(t, nil)
	a := e.slot(t, alice, "../../etc/pass\x00wd", 10, "text/plain")
	b := e.slot(t, alice, "x.txt", 10, "text/plain")
	if a.PutURL == b.PutURL || a.ID == b.ID {
		t.Fatal("two slots share a URL")
	}
	for _, s := range []upload.Slot{a, b} {
		if !strings.HasPrefix(s.PutURL, base+"/") || !strings.HasPrefix(s.GetURL, base+"/") {
			t.Fatalf("URL %q not under BaseURL", s.PutURL)
		}
		raw, err := base64.RawURLEncoding.DecodeString(s.ID)
		if err != nil || len(raw)*8 < 128 {
			t.Fatalf("ID %q holds fewer than 128 random bits", s.ID)
		}
		all := s.PutURL + s.GetURL + s.Header.Get("Authorization")
		if strings.Contains(strings.ToLower(all), "alice") {
			t.Fatalf("slot reveals the user name: %q", all)
		}
		for name := range s.Header {
			if name != "Authorization" && name != "Cookie" && name != "Expires" {
				t.Fatalf("slot header %q not allowed by XEP-0363", name)
			}
		}
		if !s.Expires.Equal(e.clock.Now().Add(300 * time.Second)) {
			t.Fatalf("slot expires %v, want now+300s", s.Expires)
		}
	}
	name, ok := strings.CutPrefix(pathOf(t, a.GetURL), "/upload/"+a.ID+"/")
	if !ok || name != "_._etc_passwd" {
		t.Fatalf("GET URL %q: file name %q not sanitized as expected", a.GetURL, name)
	}
}

func TestQuotaDaily(t *testing.T) {
	e := newEnv(t, func(c *upload.Config) { c.DailyQuota = 100; c.StoredQuota = -1 })
	start := e.clock.Now()
	e.upload(t, alice, "a.bin", "", strings.Repeat("a", 60))
	e.clock.Add(time.Hour)
	_, err := e.svc.RequestSlot(context.Background(), alice, "b.bin", 60, "")
	var qe *upload.QuotaError
	if !errors.As(err, &qe) || !errors.Is(err, upload.ErrQuota) {
		t.Fatalf("second slot = %v, want QuotaError", err)
	}
	if qe.Retry.Before(start.Add(24*time.Hour)) || qe.Retry.After(start.Add(24*time.Hour+2*time.Second)) {
		t.Fatalf("retry at %v, want about %v", qe.Retry, start.Add(24*time.Hour))
	}
	// Another user is not affected.
	e.slot(t, bob, "b.bin", 60, "")
	// A small file still fits.
	e.slot(t, alice, "c.bin", 40, "")
	// After the retry time, it fits.
	e.clock.Add(qe.Retry.Sub(e.clock.Now()))
	e.slot(t, alice, "b.bin", 60, "")
	// A file larger than the whole quota is too large, not "wait".
	_, err = e.svc.RequestSlot(context.Background(), alice, "huge", 101, "")
	if !errors.Is(err, upload.ErrTooLarge) {
		t.Fatalf("over-quota single file = %v, want ErrTooLarge", err)
	}
}

func TestQuotaStored(t *testing.T) {
	e := newEnv(t, func(c *upload.Config) { c.StoredQuota = 100; c.DailyQuota = -1; c.TTL = 48 * time.Hour })
	first := e.clock.Now()
	e.upload(t, alice, "a.bin", "", strings.Repeat("a", 60))
	e.clock.Add(25 * time.Hour) // outside the day window, still stored
	_, err := e.svc.RequestSlot(context.Background(), alice, "b.bin", 60, "")
	var qe *upload.QuotaError
	if !errors.As(err, &qe) {
		t.Fatalf("slot = %v, want QuotaError", err)
	}
	if want := first.Add(48 * time.Hour); qe.Retry.Before(want) || qe.Retry.After(want.Add(2*time.Second)) {
		t.Fatalf("retry %v, want about the first file's expiry %v", qe.Retry, want)
	}
	e.clock.Add(23 * time.Hour) // first file expired (not yet deleted)
	e.slot(t, alice, "b.bin", 60, "")
}

func TestUnusedSlotReleasesQuota(t *testing.T) {
	e := newEnv(t, func(c *upload.Config) { c.StoredQuota = 100; c.DailyQuota = -1 })
	e.slot(t, alice, "a.bin", 60, "") // reserved, never used
	if _, err := e.svc.RequestSlot(context.Background(), alice, "b.bin", 60, ""); !errors.Is(err, upload.ErrQuota) {
		t.Fatalf("reserved quota not counted: %v", err)
	}
	e.clock.Add(301 * time.Second)
	e.slot(t, alice, "b.bin", 60, "")
}

func TestConcurrentSlotsOverQuota(t *testing.T) {
	for name, meta := range map[string]func(t *testing.T) upload.MetaStore{
		"mem":  func(*testing.T) upload.MetaStore { return uploadtest.NewMemMeta() },
		"bolt": func(t *testing.T) upload.MetaStore { return newBoltMeta(t) },
	} {
		t.Run(name, func(t *testing.T) {
			svc, err := upload.NewService(meta(t), uploadtest.NewMemBlobs(), upload.Config{BaseURL: base, DailyQuota: 100})
			if err != nil {
				t.Fatal(err)
			}
			const n = 10
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i := range n {
				wg.Go(func() {
					_, errs[i] = svc.RequestSlot(context.Background(), alice, "a.bin", 60, "")
				})
			}
			wg.Wait()
			ok := 0
			for _, err := range errs {
				if err == nil {
					ok++
				} else if !errors.Is(err, upload.ErrQuota) {
					t.Fatal(err)
				}
			}
			if ok != 1 {
				t.Fatalf("%d of %d concurrent 60-byte slots granted under a 100-byte quota, want 1", ok, n)
			}
		})
	}
}

func TestExpire(t *testing.T) {
	e := newEnv(t, nil)
	old := e.upload(t, alice, "old.jpg", "image/jpeg", "old")
	unused := e.slot(t, alice, "never.jpg", 5, "")
	e.clock.Add(20 * 24 * time.Hour)
	fresh := e.upload(t, alice, "new.jpg", "image/jpeg", "new")
	e.clock.Add(10*24*time.Hour + time.Second) // old is 30 days + 1 s old

	// Past its TTL, the file is gone for readers before Expire runs.
	if w := e.get(t, http.MethodGet, old.GetURL, nil); w.Code != http.StatusNotFound {
		t.Fatalf("GET of expired file = %d, want 404", w.Code)
	}
	n, err := e.svc.Expire(context.Background(), e.clock.Now().Add(-30*24*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("Expire = %d, %v; want 2 (old file, unused slot)", n, err)
	}
	for _, id := range []string{old.ID, unused.ID} {
		if _, err := e.meta.Get(context.Background(), id); !errors.Is(err, upload.ErrNotFound) {
			t.Fatalf("metadata of %s kept after Expire: %v", id, err)
		}
	}
	if e.blobs.Len() != 1 {
		t.Fatalf("%d blobs left, want only the fresh one", e.blobs.Len())
	}
	if w := e.get(t, http.MethodGet, fresh.GetURL, nil); w.Code != http.StatusOK {
		t.Fatalf("fresh file: GET = %d", w.Code)
	}
	if n, err := e.svc.Expire(context.Background(), e.clock.Now().Add(-30*24*time.Hour)); err != nil || n != 0 {
		t.Fatalf("second Expire = %d, %v; want 0", n, err)
	}
	// A stricter retention cutoff (files older than 5 days) removes the fresh one.
	if n, err := e.svc.Expire(context.Background(), e.clock.Now().Add(-5*24*time.Hour)); err != nil || n != 1 {
		t.Fatalf("Expire with a 5-day cutoff = %d, %v; want 1", n, err)
	}
	if e.blobs.Len() != 0 {
		t.Fatal("blob kept after Expire")
	}
}

// TestExpireShortenedTTL: a file stored under a longer TTL is not served
// past the current one ("never longer than promised").
func TestExpireShortenedTTL(t *testing.T) {
	e := newEnv(t, func(c *upload.Config) { c.TTL = 60 * 24 * time.Hour })
	s := e.upload(t, alice, "a.txt", "text/plain", "x")
	svc2, err := upload.NewService(e.meta, e.blobs, upload.Config{BaseURL: base, Key: key1, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Add(30*24*time.Hour + time.Second)
	r := e.get(t, http.MethodGet, s.GetURL, nil)
	w := httptest.NewRecorder()
	svc2.ServeHTTP(w, httptest.NewRequest(http.MethodGet, s.GetURL, nil))
	if w.Code != http.StatusNotFound || r.Code != http.StatusOK {
		t.Fatalf("GET under 30-day TTL = %d (want 404); under 60-day = %d", w.Code, r.Code)
	}
	if n, err := svc2.Expire(context.Background(), e.clock.Now().Add(-30*24*time.Hour)); err != nil || n != 1 {
		t.Fatalf("Expire = %d, %v; want 1", n, err)
	}
}

func TestErase(t *testing.T) {
	e := newEnv(t, nil)
	a1 := e.upload(t, alice, "a1.jpg", "image/jpeg", "alice one")
	a2 := e.upload(t, alice, "a2.jpg", "image/jpeg", "alice two")
	e.slot(t, alice, "pending.jpg", 3, "")
	b1 := e.upload(t, bob, "b1.jpg", "image/jpeg", "bob")
	if err := e.svc.Erase(context.Background(), jid.MustParse("alice@example.org")); err != nil {
		t.Fatal(err)
	}
	for _, s := range []upload.Slot{a1, a2} {
		if w := e.get(t, http.MethodGet, s.GetURL, nil); w.Code != http.StatusNotFound {
			t.Fatalf("GET after Erase = %d, want 404", w.Code)
		}
	}
	if recs, _ := e.meta.ByOwner(context.Background(), "alice@example.org"); len(recs) != 0 {
		t.Fatalf("%d records of alice left", len(recs))
	}
	if e.blobs.Len() != 1 {
		t.Fatalf("%d blobs left, want bob's only", e.blobs.Len())
	}
	if w := e.get(t, http.MethodGet, b1.GetURL, nil); w.Code != http.StatusOK || w.Body.String() != "bob" {
		t.Fatalf("bob's file after alice's erasure: %d", w.Code)
	}
	if err := e.svc.Erase(context.Background(), alice); err != nil {
		t.Fatalf("second Erase: %v", err)
	}
}

func TestExport(t *testing.T) {
	e := newEnv(t, nil)
	e.upload(t, alice, "a.jpg", "image/jpeg", "first")
	e.clock.Add(time.Minute)
	e.upload(t, alice, "b.txt", "text/plain", "second")
	e.slot(t, alice, "pending.jpg", 3, "")
	e.upload(t, bob, "bob.txt", "text/plain", "bob's")
	var buf bytes.Buffer
	if err := e.svc.Export(context.Background(), alice, &buf); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, f := range zr.File {
		rc, _ := f.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		files[f.Name] = string(b)
	}
	var manifest []upload.ExportEntry
	if err := json.Unmarshal([]byte(files["manifest.json"]), &manifest); err != nil {
		t.Fatal(err)
	}
	if len(manifest) != 2 || manifest[0].Filename != "a.jpg" || manifest[1].Filename != "b.txt" {
		t.Fatalf("manifest = %+v", manifest)
	}
	want := map[string]string{"a.jpg": "first", "b.txt": "second"}
	for _, m := range manifest {
		if files[m.Path] != want[m.Filename] || m.Size != int64(len(want[m.Filename])) {
			t.Fatalf("%s: content %q", m.Path, files[m.Path])
		}
		if !m.Expires.Equal(m.Uploaded.Add(30 * 24 * time.Hour)) {
			t.Fatalf("%s: expires %v", m.Path, m.Expires)
		}
	}
	if len(files) != 3 || strings.Contains(buf.String(), "bob's") {
		t.Fatalf("export holds %d entries or another user's data", len(files))
	}
	buf.Reset()
	if err := e.svc.Export(context.Background(), jid.MustParse("nobody@example.org"), &buf); err != nil {
		t.Fatal(err)
	}
	if _, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len())); err != nil {
		t.Fatalf("empty export is not a valid zip: %v", err)
	}
}

// flakyDelete fails blob deletions while fail > 0 (a crash or I/O error in
// the middle of an erasure).
type flakyDelete struct {
	*uploadtest.MemBlobs
	fail int
}

func (f *flakyDelete) Delete(ctx context.Context, key string) error {
	if f.fail > 0 {
		f.fail--
		return errors.New("I/O error")
	}
	return f.MemBlobs.Delete(ctx, key)
}

// TestEraseResumes: an erasure interrupted by a failing delete reports the
// error and keeps the records that locate the remaining files, so a repeated
// Erase finishes the job.
func TestEraseResumes(t *testing.T) {
	blobs := &flakyDelete{MemBlobs: uploadtest.NewMemBlobs()}
	meta := uploadtest.NewMemMeta()
	svc, err := upload.NewService(meta, blobs, upload.Config{BaseURL: base})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{svc: svc, meta: meta, blobs: blobs.MemBlobs, clock: testclock.New()}
	for i := range 3 {
		e.upload(t, alice, fmt.Sprintf("f%d.jpg", i), "image/jpeg", "data")
	}
	blobs.fail = 1
	if err := svc.Erase(context.Background(), alice); err == nil {
		t.Fatal("Erase hid a failed deletion")
	}
	if recs, _ := meta.ByOwner(context.Background(), "alice@example.org"); len(recs) != 3 {
		t.Fatalf("after a failed Erase %d records remain, want all 3 (to find the files again)", len(recs))
	}
	if err := svc.Erase(context.Background(), alice); err != nil {
		t.Fatal(err)
	}
	if recs, _ := meta.ByOwner(context.Background(), "alice@example.org"); len(recs) != 0 || blobs.Len() != 0 {
		t.Fatalf("after the repeated Erase: %d records, %d blobs", len(recs), blobs.Len())
	}
}

func TestQuotaDailyFiles(t *testing.T) {
	e := newEnv(t, func(c *upload.Config) { c.DailyFiles = 3 })
	start := e.clock.Now()
	for range 3 {
		e.upload(t, alice, "empty.txt", "", "")
		e.clock.Add(time.Minute)
	}
	_, err := e.svc.RequestSlot(context.Background(), alice, "empty.txt", 0, "")
	var qe *upload.QuotaError
	if !errors.As(err, &qe) {
		t.Fatalf("4th empty file in a day = %v, want QuotaError", err)
	}
	if want := start.Add(24 * time.Hour); qe.Retry.Before(want) || qe.Retry.After(want.Add(2*time.Second)) {
		t.Fatalf("retry %v, want about %v", qe.Retry, want)
	}
	e.slot(t, bob, "empty.txt", 0, "")
	e.clock.Add(qe.Retry.Sub(e.clock.Now()))
	e.slot(t, alice, "empty.txt", 0, "")
}
