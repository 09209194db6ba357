package uploadtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"chatbx.eu/privacy/upload"
)

// NewID returns a random key of the form upload uses (24 base64url chars).
func NewID() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func rec(owner string, expires time.Time) upload.Record {
	return upload.Record{
		ID: NewID(), Owner: owner, Filename: "photo.jpg", ContentType: "image/jpeg",
		Size: 42, Created: t0, Expires: expires, State: upload.StateReserved,
	}
}

func allow([]upload.Record) error { return nil }

func sameRecord(t *testing.T, got, want upload.Record) {
	t.Helper()
	if got.ID != want.ID || got.Owner != want.Owner || got.Filename != want.Filename ||
		got.ContentType != want.ContentType || got.Size != want.Size || got.State != want.State ||
		!got.Created.Equal(want.Created) || !got.Expires.Equal(want.Expires) {
		t.Fatalf("record = %+v, want %+v", got, want)
	}
}

// Test owners, on a documentation domain.
const alice, bob = "alice@example.org", "bob@example.org"

// TestMetaStore runs the MetaStore contract against stores made by
// newStore: one named subtest per clause, each with a fresh, empty store.
func TestMetaStore(t *testing.T, newStore func(t *testing.T) upload.MetaStore) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, upload.MetaStore)
	}{
		{"ReserveGet", testReserveGet},
		{"AdmitSeesOwnerOnly", testAdmitSeesOwnerOnly},
		{"ConcurrentReserveSerialized", testConcurrentReserveSerialized},
		{"ClaimOnce", testClaimOnce},
		{"Commit", testCommit},
		{"DeleteByOwner", testDeleteByOwner},
		{"ExpiringOrderAndLimit", testExpiringOrderAndLimit},
		{"OlderOrderAndLimit", testOlderOrderAndLimit},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

func testReserveGet(t *testing.T, s upload.MetaStore) {
	ctx := t.Context()
	r := rec(alice, t0.Add(time.Minute))
	if err := s.Reserve(ctx, r, allow); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameRecord(t, got, r)
	if _, err := s.Get(ctx, NewID()); !errors.Is(err, upload.ErrNotFound) {
		t.Fatalf("Get(missing) = %v, want ErrNotFound", err)
	}
	if err := s.Reserve(ctx, r, allow); err == nil {
		t.Fatal("Reserve of an existing ID succeeded")
	}
}

func testAdmitSeesOwnerOnly(t *testing.T, s upload.MetaStore) {
	ctx := t.Context()
	a1, b1 := rec(alice, t0), rec(bob, t0)
	for _, r := range []upload.Record{a1, b1} {
		if err := s.Reserve(ctx, r, allow); err != nil {
			t.Fatal(err)
		}
	}
	var seen []upload.Record
	if err := s.Reserve(ctx, rec(alice, t0), func(ex []upload.Record) error { seen = ex; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || seen[0].ID != a1.ID {
		t.Fatalf("admit saw %d records, want alice's one", len(seen))
	}
	refuse := errors.New("refused")
	r := rec(alice, t0)
	if err := s.Reserve(ctx, r, func([]upload.Record) error { return refuse }); !errors.Is(err, refuse) {
		t.Fatalf("Reserve = %v, want admit's error", err)
	}
	if _, err := s.Get(ctx, r.ID); !errors.Is(err, upload.ErrNotFound) {
		t.Fatalf("refused record was inserted: %v", err)
	}
}

func testConcurrentReserveSerialized(t *testing.T, s upload.MetaStore) {
	ctx := t.Context()
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = s.Reserve(ctx, rec(alice, t0), func(ex []upload.Record) error {
				if len(ex) > 0 {
					return upload.ErrQuota
				}
				return nil
			})
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
	got, _ := s.ByOwner(ctx, alice)
	if ok != 1 || len(got) != 1 {
		t.Fatalf("%d reservations admitted, %d stored; want exactly 1", ok, len(got))
	}
}

func testClaimOnce(t *testing.T, s upload.MetaStore) {
	ctx := t.Context()
	r := rec(alice, t0)
	if err := s.Reserve(ctx, r, allow); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = s.Claim(ctx, r.ID, t0.Add(time.Hour)) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, upload.ErrSlotUsed):
			t.Fatalf("Claim = %v, want nil or ErrSlotUsed", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d claims succeeded, want 1", ok)
	}
	got, _ := s.Get(ctx, r.ID)
	if got.State != upload.StateUploading || !got.Expires.Equal(t0.Add(time.Hour)) {
		t.Fatalf("state = %d, expires %v; want Uploading until the deadline", got.State, got.Expires)
	}
	if l, _ := s.Expiring(ctx, t0.Add(time.Minute), 10); len(l) != 0 {
		t.Fatal("Expiring still finds the claimed slot under its old deadline")
	}
	if l, _ := s.Expiring(ctx, t0.Add(2*time.Hour), 10); len(l) != 1 {
		t.Fatal("Expiring does not find the claimed slot under its upload deadline")
	}
	if _, err := s.Claim(ctx, NewID(), t0); !errors.Is(err, upload.ErrNotFound) {
		t.Fatalf("Claim(missing) = %v, want ErrNotFound", err)
	}
}

func testCommit(t *testing.T, s upload.MetaStore) {
	ctx := t.Context()
	r := rec(alice, t0.Add(5*time.Minute))
	if err := s.Reserve(ctx, r, allow); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, r.ID, t0, t0.Add(time.Hour)); err == nil {
		t.Fatal("Commit of an unclaimed slot succeeded")
	}
	if _, err := s.Claim(ctx, r.ID, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	up, exp := t0.Add(time.Minute), t0.Add(30*24*time.Hour)
	if err := s.Commit(ctx, r.ID, up, exp); err != nil {
		t.Fatal(err)
	}
	want := r
	want.State, want.Created, want.Expires = upload.StateStored, up, exp
	got, err := s.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameRecord(t, got, want)
	// The expiry index follows the new expiry.
	if l, _ := s.Expiring(ctx, t0.Add(time.Hour), 10); len(l) != 0 {
		t.Fatalf("Expiring found the committed file under its slot deadline")
	}
	if l, _ := s.Expiring(ctx, exp.Add(time.Nanosecond), 10); len(l) != 1 || l[0].ID != r.ID {
		t.Fatalf("Expiring did not find the file at its new expiry: %v", l)
	}
	// So does the creation index.
	if l, _ := s.Older(ctx, up, 10); len(l) != 0 {
		t.Fatalf("Older found the file under its slot request time")
	}
	if l, _ := s.Older(ctx, up.Add(time.Nanosecond), 10); len(l) != 1 || l[0].ID != r.ID {
		t.Fatalf("Older did not find the file at its upload time: %v", l)
	}
	if err := s.Commit(ctx, NewID(), up, exp); !errors.Is(err, upload.ErrNotFound) {
		t.Fatalf("Commit(missing) = %v, want ErrNotFound", err)
	}
}

func testDeleteByOwner(t *testing.T, s upload.MetaStore) {
	ctx := t.Context()
	var ids []string
	for i := range 3 {
		r := rec(alice, t0.Add(time.Duration(i)*time.Second))
		ids = append(ids, r.ID)
		if err := s.Reserve(ctx, r, allow); err != nil {
			t.Fatal(err)
		}
	}
	b := rec(bob, t0)
	if err := s.Reserve(ctx, b, allow); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ByOwner(ctx, alice); len(got) != 3 {
		t.Fatalf("ByOwner = %d records, want 3", len(got))
	}
	if got, _ := s.ByOwner(ctx, "alice@example.or"); len(got) != 0 {
		t.Fatalf("ByOwner matched a prefix of the owner")
	}
	if err := s.Delete(ctx, ids[0], ids[1], NewID()); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, ids[0]); err != nil {
		t.Fatalf("Delete is not idempotent: %v", err)
	}
	if got, _ := s.ByOwner(ctx, alice); len(got) != 1 || got[0].ID != ids[2] {
		t.Fatalf("ByOwner after Delete = %v", got)
	}
	if _, err := s.Get(ctx, ids[0]); !errors.Is(err, upload.ErrNotFound) {
		t.Fatalf("deleted record still found: %v", err)
	}
	l, _ := s.Expiring(ctx, t0.Add(time.Hour), 10)
	if len(l) != 2 {
		t.Fatalf("Expiring after Delete = %d records, want 2", len(l))
	}
	if got, _ := s.ByOwner(ctx, bob); len(got) != 1 {
		t.Fatalf("bob's record lost")
	}
}

func testExpiringOrderAndLimit(t *testing.T, s upload.MetaStore) {
	ctx := t.Context()
	for _, d := range []int{5, 1, 4, 2, 3} {
		r := rec(alice, t0.Add(time.Duration(d)*time.Hour))
		if err := s.Reserve(ctx, r, allow); err != nil {
			t.Fatal(err)
		}
	}
	l, err := s.Expiring(ctx, t0.Add(4*time.Hour), 10) // strictly before: 1,2,3
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != 3 {
		t.Fatalf("Expiring = %d records, want 3 (strictly before)", len(l))
	}
	for i := 1; i < len(l); i++ {
		if l[i].Expires.Before(l[i-1].Expires) {
			t.Fatal("Expiring not in expiry order")
		}
	}
	if !l[0].Expires.Equal(t0.Add(time.Hour)) {
		t.Fatal("Expiring does not start at the oldest")
	}
	if l, _ := s.Expiring(ctx, t0.Add(24*time.Hour), 2); len(l) != 2 || !l[1].Expires.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("Expiring with limit 2 = %v", l)
	}
}

func testOlderOrderAndLimit(t *testing.T, s upload.MetaStore) {
	ctx := t.Context()
	for _, d := range []int{5, 1, 4, 2, 3} {
		r := rec(alice, t0.Add(time.Hour))
		r.Created = t0.Add(time.Duration(d) * time.Minute)
		if err := s.Reserve(ctx, r, allow); err != nil {
			t.Fatal(err)
		}
	}
	l, err := s.Older(ctx, t0.Add(4*time.Minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != 3 || !l[0].Created.Equal(t0.Add(time.Minute)) || !l[2].Created.Equal(t0.Add(3*time.Minute)) {
		t.Fatalf("Older = %v, want creations 1,2,3 min in order", l)
	}
	if l, _ := s.Older(ctx, t0.Add(time.Hour), 2); len(l) != 2 || !l[1].Created.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("Older with limit 2 = %v", l)
	}
	ids := []string{l[0].ID}
	if err := s.Delete(ctx, ids...); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.Older(ctx, t0.Add(time.Hour), 10); len(l) != 4 {
		t.Fatalf("Older after Delete = %d records, want 4", len(l))
	}
}

func writeBlob(t *testing.T, s upload.BlobStore, key string, data []byte) {
	t.Helper()
	w, err := s.Create(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

func readBlob(t *testing.T, s upload.BlobStore, key string) ([]byte, error) {
	t.Helper()
	rc, size, err := s.Open(context.Background(), key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != size {
		t.Fatalf("Open size = %d, read %d bytes", size, len(b))
	}
	return b, nil
}

// TestBlobStore runs the BlobStore contract against stores made by
// newStore: one named subtest per clause, each with a fresh, empty store.
func TestBlobStore(t *testing.T, newStore func(t *testing.T) upload.BlobStore) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, upload.BlobStore)
	}{
		{"RoundTripSeek", testRoundTripSeek},
		{"Empty", testEmpty},
		{"InvisibleUntilCommit", testInvisibleUntilCommit},
		{"AbortAfterCommitKeeps", testAbortAfterCommitKeeps},
		{"Delete", testDelete},
		{"Concurrent", testConcurrent},
		{"CreateSize", testCreateSize},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

func testRoundTripSeek(t *testing.T, s upload.BlobStore) {
	ctx := t.Context()
	key := NewID()
	data := bytes.Repeat([]byte("0123456789"), 1000)
	writeBlob(t, s, key, data)
	got, err := readBlob(t, s, key)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, err %v", len(got), err)
	}
	rc, _, err := s.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := rc.Seek(9995, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	tail, _ := io.ReadAll(rc)
	if string(tail) != "56789" {
		t.Fatalf("after Seek read %q", tail)
	}
	if n, err := rc.Seek(0, io.SeekEnd); err != nil || n != int64(len(data)) {
		t.Fatalf("Seek end = %d, %v", n, err)
	}
}

func testEmpty(t *testing.T, s upload.BlobStore) {
	key := NewID()
	writeBlob(t, s, key, nil)
	if got, err := readBlob(t, s, key); err != nil || len(got) != 0 {
		t.Fatalf("empty blob: %d bytes, %v", len(got), err)
	}
}

func testInvisibleUntilCommit(t *testing.T, s upload.BlobStore) {
	ctx := t.Context()
	key := NewID()
	w, err := s.Create(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("partial"))
	if _, _, err := s.Open(ctx, key); !errors.Is(err, upload.ErrNotFound) {
		t.Fatalf("Open before Commit = %v, want ErrNotFound", err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("second Abort: %v", err)
	}
	if _, _, err := s.Open(ctx, key); !errors.Is(err, upload.ErrNotFound) {
		t.Fatalf("Open after Abort = %v, want ErrNotFound", err)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("Write after Abort succeeded")
	}
	if err := w.Commit(); err == nil {
		t.Fatal("Commit after Abort succeeded")
	}
}

func testAbortAfterCommitKeeps(t *testing.T, s upload.BlobStore) {
	ctx := t.Context()
	key := NewID()
	w, err := s.Create(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("kept"))
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if got, err := readBlob(t, s, key); err != nil || string(got) != "kept" {
		t.Fatalf("Abort after Commit lost the blob: %q, %v", got, err)
	}
}

func testDelete(t *testing.T, s upload.BlobStore) {
	ctx := t.Context()
	key, other := NewID(), NewID()
	writeBlob(t, s, key, []byte("a"))
	writeBlob(t, s, other, []byte("b"))
	if err := s.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, key); err != nil {
		t.Fatalf("Delete is not idempotent: %v", err)
	}
	if _, _, err := s.Open(ctx, key); !errors.Is(err, upload.ErrNotFound) {
		t.Fatalf("Open after Delete = %v, want ErrNotFound", err)
	}
	if got, err := readBlob(t, s, other); err != nil || string(got) != "b" {
		t.Fatal("Delete removed another blob")
	}
}

// sizedStore is the optional method upload's handler prefers to Create.
type sizedStore interface {
	CreateSize(ctx context.Context, key string, size int64) (upload.BlobWriter, error)
}

// testCreateSize checks a store's optional CreateSize: the exact size
// round-trips, and more or fewer bytes than announced fail and leave
// nothing.
func testCreateSize(t *testing.T, s upload.BlobStore) {
	ss, ok := s.(sizedStore)
	if !ok {
		t.Skip("the store has no CreateSize")
	}
	ctx := t.Context()
	data := bytes.Repeat([]byte("0123456789"), 1000)
	for _, tc := range []struct {
		name  string
		size  int64
		write []byte
		ok    bool
	}{
		{"exact", int64(len(data)), data, true},
		{"empty", 0, nil, true},
		{"more", int64(len(data)) - 1, data, false},
		{"fewer", int64(len(data)) + 1, data, false},
		{"one byte over an empty blob", 0, []byte("x"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := NewID()
			w, err := ss.CreateSize(ctx, key, tc.size)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Abort()
			var werr error
			for rest := tc.write; len(rest) > 0 && werr == nil; { // several writes
				n := min(len(rest), 3000)
				_, werr = w.Write(rest[:n])
				rest = rest[n:]
			}
			if werr == nil {
				werr = w.Commit()
			}
			got, err := readBlob(t, s, key)
			switch {
			case tc.ok && werr != nil:
				t.Fatalf("write or commit of %d bytes announced as %d: %v", len(tc.write), tc.size, werr)
			case tc.ok && (err != nil || !bytes.Equal(got, tc.write)):
				t.Fatalf("read back %d bytes, %v", len(got), err)
			case !tc.ok && werr == nil:
				t.Fatalf("%d bytes announced as %d were committed", len(tc.write), tc.size)
			case !tc.ok && !errors.Is(err, upload.ErrNotFound):
				t.Fatalf("after a failed sized write Open = %v, want ErrNotFound", err)
			}
		})
	}
}

func testConcurrent(t *testing.T, s upload.BlobStore) {
	ctx := t.Context()
	var wg sync.WaitGroup
	keys := make([]string, 8)
	for i := range keys {
		keys[i] = NewID()
		wg.Go(func() {
			w, err := s.Create(ctx, keys[i])
			if err != nil {
				t.Error(err)
				return
			}
			w.Write(bytes.Repeat([]byte{byte(i)}, 1000))
			if err := w.Commit(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i, k := range keys {
		got, err := readBlob(t, s, k)
		if err != nil || !bytes.Equal(got, bytes.Repeat([]byte{byte(i)}, 1000)) {
			t.Fatalf("blob %d wrong: %v", i, err)
		}
	}
}
