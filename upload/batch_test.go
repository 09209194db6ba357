package upload_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"chatbx.eu/privacy/internal/testclock"
	"chatbx.eu/privacy/upload"
	"chatbx.eu/privacy/upload/uploadtest"
)

// batchBlobs is a MemBlobs with DeleteBlobs; single Deletes are counted.
type batchBlobs struct {
	*uploadtest.MemBlobs
	mu      sync.Mutex
	batches [][]string
	singles int
}

func (b *batchBlobs) Delete(ctx context.Context, key string) error {
	b.mu.Lock()
	b.singles++
	b.mu.Unlock()
	return b.MemBlobs.Delete(ctx, key)
}

func (b *batchBlobs) DeleteBlobs(ctx context.Context, keys ...string) error {
	b.mu.Lock()
	b.batches = append(b.batches, slices.Clone(keys))
	b.mu.Unlock()
	for _, k := range keys {
		if err := b.MemBlobs.Delete(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// A BlobStore with DeleteBlobs gets one call per batch of expired files and
// per erasure pass, and no single Delete.
func TestBatchDelete(t *testing.T) {
	blobs := &batchBlobs{MemBlobs: uploadtest.NewMemBlobs()}
	clock := testclock.New()
	e := &env{meta: uploadtest.NewMemMeta(), blobs: blobs.MemBlobs, clock: clock}
	svc, err := upload.NewService(e.meta, blobs, upload.Config{BaseURL: base, Key: key1, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	a1 := e.upload(t, alice, "a1.txt", "text/plain", "one")
	a2 := e.upload(t, alice, "a2.txt", "text/plain", "two")
	b1 := e.upload(t, bob, "b1.txt", "text/plain", "bob")
	e.slot(t, bob, "pending.txt", 3, "") // a Reserved slot has no blob to delete

	if err := svc.Erase(context.Background(), jid.MustParse("alice@example.org")); err != nil {
		t.Fatal(err)
	}
	// Two passes (before and after the metadata), each one batch.
	want := []string{a1.ID, a2.ID}
	if len(blobs.batches) != 2 || blobs.singles != 0 {
		t.Fatalf("Erase: %d batches, %d single deletes; want 2, 0", len(blobs.batches), blobs.singles)
	}
	for _, b := range blobs.batches {
		slices.Sort(b)
		if w := slices.Sorted(slices.Values(want)); !slices.Equal(b, w) {
			t.Fatalf("Erase batch = %v, want %v", b, w)
		}
	}
	blobs.batches = nil
	clock.Add(31 * 24 * time.Hour)
	if n, err := svc.Expire(context.Background(), clock.Now().Add(-31*24*time.Hour)); err != nil || n != 2 {
		t.Fatalf("Expire = %d, %v; want 2", n, err)
	}
	if len(blobs.batches) != 1 || !slices.Equal(blobs.batches[0], []string{b1.ID}) || blobs.singles != 0 {
		t.Fatalf("Expire: batches %v, %d single deletes; want [[%s]], 0", blobs.batches, blobs.singles, b1.ID)
	}
	if blobs.Len() != 0 {
		t.Fatalf("%d blobs left", blobs.Len())
	}
}
