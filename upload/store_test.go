package upload_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"chatbx.eu/privacy/upload"
	"chatbx.eu/privacy/upload/uploadtest"
)

func newBoltMeta(t testing.TB) *upload.BoltMetaStore {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "upload.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	m, err := upload.NewBoltMetaStore(db)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newFSBlobs(t testing.TB) *upload.FSBlobStore {
	t.Helper()
	b, err := upload.NewFSBlobStore(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBoltMeta(t *testing.T) {
	uploadtest.TestMetaStore(t, func(t *testing.T) upload.MetaStore { return newBoltMeta(t) })
}

func TestFSBlobs(t *testing.T) {
	uploadtest.TestBlobStore(t, func(t *testing.T) upload.BlobStore { return newFSBlobs(t) })
}

// TestFSBlobsFiles checks the file-system promises: 0700 directory, 0600
// files, nothing left after an abort, keys that could form a path refused.
func TestFSBlobsFiles(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "blobs")
	s, err := upload.NewFSBlobStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode = %v, %v; want 0700", st.Mode().Perm(), err)
	}
	key := uploadtest.NewID()
	w, err := s.Create(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("secret"))
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("abort left %d files", len(ents))
	}
	w, _ = s.Create(ctx, key)
	w.Write([]byte("data"))
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != key {
		t.Fatalf("dir holds %v, want just the key", ents)
	}
	fi, _ := ents[0].Info()
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode = %v, want 0600", fi.Mode().Perm())
	}
	for _, bad := range []string{"../../../etc/passwd", "..", "a/b/cdefghijklmnopq", "", "short", "abcdefghijklmnop\x00"} {
		if _, err := s.Create(ctx, bad); err == nil {
			t.Errorf("Create(%q) accepted a key that is not an ID", bad)
		}
		if _, _, err := s.Open(ctx, bad); err == nil {
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
	// A temp file of an upload interrupted by a crash is removed by RemoveStale.
	w, _ = s.Create(ctx, uploadtest.NewID())
	w.Write([]byte("interrupted"))
	if n, err := s.RemoveStale(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("RemoveStale removed a fresh upload: %d, %v", n, err)
	}
	if n, err := s.RemoveStale(ctx, time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("RemoveStale = %d, %v; want 1", n, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("after RemoveStale dir holds %d files, want 1", len(ents))
	}
}
