package s3store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"chatbx.eu/privacy/s3store"
	"chatbx.eu/privacy/upload"
	"chatbx.eu/privacy/upload/uploadtest"
)

// The test server: .ci/run starts versitygw and exports these. Without
// them the tests skip, unless CI is set: then they fail.
const (
	envEndpoint = "S3STORE_TEST_ENDPOINT" // host:port, plain HTTP on loopback
	envAccess   = "S3STORE_TEST_ACCESS"
	envSecret   = "S3STORE_TEST_SECRET"
	envDir      = "S3STORE_TEST_DIR" // the server's storage directory (residue test)
)

func need(t testing.TB, names ...string) []string {
	t.Helper()
	var vals []string
	for _, n := range names {
		v := os.Getenv(n)
		if v == "" {
			msg := "no S3 test server: " + n + " is unset (.ci/run starts versitygw and sets it)"
			if os.Getenv("CI") != "" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
		vals = append(vals, v)
	}
	return vals
}

func client(t testing.TB) *minio.Client {
	t.Helper()
	v := need(t, envEndpoint, envAccess, envSecret)
	c, err := minio.New(v[0], &minio.Options{Creds: credentials.NewStaticV4(v[1], v[2], ""), Secure: false})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newBucket creates an empty bucket removed (with its objects) at cleanup.
func newBucket(t testing.TB, c *minio.Client) string {
	t.Helper()
	var b [8]byte
	rand.Read(b[:])
	name := "t-" + hex.EncodeToString(b[:])
	ctx := context.Background()
	if err := c.MakeBucket(ctx, name, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for u := range c.ListIncompleteUploads(ctx, name, "", true) {
			if u.Err == nil {
				c.RemoveIncompleteUpload(ctx, name, u.Key)
			}
		}
		for o := range c.ListObjects(ctx, name, minio.ListObjectsOptions{Recursive: true}) {
			if o.Err == nil {
				c.RemoveObject(ctx, name, o.Key, minio.RemoveObjectOptions{})
			}
		}
		if err := c.RemoveBucket(ctx, name); err != nil {
			t.Errorf("remove bucket: %v", err)
		}
	})
	return name
}

func newStore(t testing.TB, opts s3store.Options) (*s3store.Store, *minio.Client, string) {
	t.Helper()
	c := client(t)
	b := newBucket(t, c)
	s, err := s3store.New(c, b, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s, c, b
}

func TestBlobStoreConformance(t *testing.T) {
	uploadtest.TestBlobStore(t, func(t *testing.T) upload.BlobStore {
		s, _, _ := newStore(t, s3store.Options{})
		return s
	})
}

func TestBlobStoreConformancePrefix(t *testing.T) {
	uploadtest.TestBlobStore(t, func(t *testing.T) upload.BlobStore {
		s, _, _ := newStore(t, s3store.Options{Prefix: "upload/"})
		return s
	})
}

func TestNewRejects(t *testing.T) {
	c, err := minio.New("127.0.0.1:1", &minio.Options{Creds: credentials.NewStaticV4("k", "s", "")})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		c      *minio.Client
		bucket string
		opts   s3store.Options
	}{
		{"no client", nil, "b", s3store.Options{}},
		{"no bucket", c, "", s3store.Options{}},
		{"small part", c, "b", s3store.Options{PartSize: s3store.MinPartSize - 1}},
		{"small stream part", c, "b", s3store.Options{StreamPartSize: s3store.MinPartSize - 1}},
	} {
		if _, err := s3store.New(tc.c, tc.bucket, tc.opts); !errors.Is(err, upload.ErrConfig) {
			t.Errorf("%s: New = %v, want ErrConfig", tc.name, err)
		}
	}
}

// pattern returns n bytes that differ at every offset mod 251, so a wrong
// part order or offset shows.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// small5 makes parts of the minimum size, buffered (Create) or streamed
// (CreateSize), so that a few MiB cross part boundaries.
var small5 = s3store.Options{PartSize: s3store.MinPartSize, StreamPartSize: s3store.MinPartSize}

// create starts a blob by Create, or by CreateSize with size when sized.
func create(t *testing.T, s *s3store.Store, key string, sized bool, size int) upload.BlobWriter {
	t.Helper()
	var w upload.BlobWriter
	var err error
	if sized {
		w, err = s.CreateSize(t.Context(), key, int64(size))
	} else {
		w, err = s.Create(t.Context(), key)
	}
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// A blob of several parts (the last one short) round-trips, and nothing is
// listed in the bucket before Commit; buffered (Create) and streamed
// (CreateSize) alike.
func TestMultipart(t *testing.T) {
	for _, sized := range []bool{false, true} {
		t.Run(map[bool]string{false: "Create", true: "CreateSize"}[sized], func(t *testing.T) {
			s, c, bucket := newStore(t, small5)
			ctx := t.Context()
			data := pattern(2*s3store.MinPartSize + 12345)
			key := uploadtest.NewID()
			w := create(t, s, key, sized, len(data))
			// Odd write sizes cross part boundaries.
			for rest := data; len(rest) > 0; {
				n := min(len(rest), 777777)
				if _, err := w.Write(rest[:n]); err != nil {
					t.Fatal(err)
				}
				rest = rest[n:]
			}
			if _, _, err := s.Open(ctx, key); !errors.Is(err, upload.ErrNotFound) {
				t.Fatalf("Open before Commit = %v, want ErrNotFound", err)
			}
			if err := w.Commit(); err != nil {
				t.Fatal(err)
			}
			rc, size, err := s.Open(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil || size != int64(len(data)) || !bytes.Equal(got, data) {
				t.Fatalf("read %d of %d bytes (size %d), equal %v, err %v", len(got), len(data), size, bytes.Equal(got, data), err)
			}
			// Nothing but the blob is left: no incomplete upload.
			for u := range c.ListIncompleteUploads(ctx, bucket, "", true) {
				t.Fatalf("incomplete upload left: %v %v", u.Key, u.Err)
			}
		})
	}
}

// An aborted multipart upload leaves neither object nor upload: buffered,
// after one part was sent; streamed, with one part sent and the next cut
// in the middle of its body; and a streamed blob given more or fewer
// bytes than its size.
func TestAbortMultipart(t *testing.T) {
	const total = 3 * s3store.MinPartSize
	for _, tc := range []struct {
		name   string
		sized  bool
		write  int
		commit bool // end with Commit (which must fail) instead of Abort
	}{
		{"Create", false, s3store.MinPartSize + 1, false},
		{"CreateSize cut mid-part", true, s3store.MinPartSize + 1000, false},
		{"CreateSize fewer bytes", true, total - 1, true},
		{"CreateSize more bytes", true, total + 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, c, bucket := newStore(t, small5)
			ctx := t.Context()
			key := uploadtest.NewID()
			w := create(t, s, key, tc.sized, total)
			_, werr := w.Write(pattern(tc.write))
			if tc.write <= total && werr != nil {
				t.Fatal(werr)
			}
			if tc.write > total && werr == nil {
				t.Fatal("a Write past the blob's size succeeded")
			}
			if !tc.commit {
				n := 0
				for u := range c.ListIncompleteUploads(ctx, bucket, "", true) {
					if u.Err != nil {
						t.Fatal(u.Err)
					}
					n++
				}
				if n != 1 {
					t.Fatalf("%d uploads in progress, want 1", n)
				}
				if err := w.Abort(); err != nil {
					t.Fatal(err)
				}
			} else if err := w.Commit(); err == nil {
				t.Fatal("Commit of a blob of the wrong size succeeded")
			}
			for u := range c.ListIncompleteUploads(ctx, bucket, "", true) {
				t.Fatalf("upload left after Abort: %v %v", u.Key, u.Err)
			}
			for o := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
				t.Fatalf("object left after Abort: %v %v", o.Key, o.Err)
			}
		})
	}
}

// RemoveStale aborts uploads started before the cutoff and keeps newer ones.
func TestRemoveStale(t *testing.T) {
	s, c, bucket := newStore(t, s3store.Options{PartSize: s3store.MinPartSize})
	ctx := t.Context()
	w, err := s.Create(ctx, uploadtest.NewID())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(pattern(s3store.MinPartSize + 1)); err != nil {
		t.Fatal(err)
	}
	// The writer is abandoned, as by a process that died.
	count := func() int {
		n := 0
		for u := range c.ListIncompleteUploads(ctx, bucket, "", true) {
			if u.Err != nil {
				t.Fatal(u.Err)
			}
			n++
		}
		return n
	}
	if n, err := s.RemoveStale(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("RemoveStale(an hour ago) = %d, %v; want 0", n, err)
	}
	if count() != 1 {
		t.Fatal("a recent upload was aborted")
	}
	if n, err := s.RemoveStale(ctx, time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("RemoveStale(later) = %d, %v; want 1", n, err)
	}
	if count() != 0 {
		t.Fatal("the stale upload is still there")
	}
}

// DeleteBlobs removes many keys in batches; missing and invalid keys are
// ignored, other blobs stay.
func TestDeleteBlobs(t *testing.T) {
	s, _, _ := newStore(t, s3store.Options{})
	ctx := t.Context()
	var keys []string
	for range 1005 { // more than one DeleteObjects request
		k := uploadtest.NewID()
		keys = append(keys, k)
	}
	for _, k := range keys[:20] {
		put(t, s, k, []byte(k))
	}
	keep := uploadtest.NewID()
	put(t, s, keep, []byte("keep"))
	if err := s.DeleteBlobs(ctx, append(keys, "../bad")...); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys[:20] {
		if _, _, err := s.Open(ctx, k); !errors.Is(err, upload.ErrNotFound) {
			t.Fatalf("blob %s after DeleteBlobs: %v", k, err)
		}
	}
	if _, _, err := s.Open(ctx, keep); err != nil {
		t.Fatalf("DeleteBlobs removed another blob: %v", err)
	}
}

func put(t testing.TB, s upload.BlobStore, key string, data []byte) {
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

// Keys that are not upload IDs are refused before any request.
func TestInvalidKeys(t *testing.T) {
	s, _, _ := newStore(t, s3store.Options{})
	ctx := t.Context()
	for _, k := range []string{"", "short", "../../etc/passwd-xxxxxxxxx", "a/b/cccccccccccccccccccc", string(bytes.Repeat([]byte("a"), 65))} {
		if _, err := s.Create(ctx, k); err == nil {
			t.Errorf("Create(%q) succeeded", k)
		}
		if _, _, err := s.Open(ctx, k); !errors.Is(err, upload.ErrNotFound) {
			t.Errorf("Open(%q) = %v, want ErrNotFound", k, err)
		}
		if err := s.Delete(ctx, k); err != nil {
			t.Errorf("Delete(%q) = %v", k, err)
		}
	}
}

// storageDir is the test server's storage directory.
func storageDir(t testing.TB) string {
	return filepath.Clean(need(t, envDir)[0])
}
