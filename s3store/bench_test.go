package s3store_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"chatbx.eu/privacy/s3store"
	"chatbx.eu/privacy/upload"
	"chatbx.eu/privacy/upload/uploadtest"
)

// benchSize is the object size of the transfer benchmarks (256 MiB, the size the targets name).
const benchSize = 256 << 20

// chunks feeds w the benchmark object in 32 KiB writes, as upload's
// handler does.
func chunks(w io.Writer, data []byte) error {
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 32<<10)
		if _, err := w.Write(rest[:n]); err != nil {
			return err
		}
		rest = rest[n:]
	}
	return nil
}

// putBench writes data through the Store as upload's handler does: CreateSize
// with the slot's size, or Create (size unknown, parts buffered) when
// sized is false.
func putBench(ctx context.Context, s *s3store.Store, key string, data []byte, sized bool) error {
	var w upload.BlobWriter
	var err error
	if sized {
		w, err = s.CreateSize(ctx, key, int64(len(data)))
	} else {
		w, err = s.Create(ctx, key)
	}
	if err != nil {
		return err
	}
	if err := chunks(w, data); err != nil {
		w.Abort()
		return err
	}
	return w.Commit()
}

// BenchmarkPut compares a PUT through the Store with minio-go's own
// PutObject (known size, its default part size and parallel parts) to the
// same server.
func BenchmarkPut(b *testing.B) {
	s, c, bucket := newStore(b, s3store.Options{})
	data := pattern(benchSize)
	ctx := context.Background()
	for _, sized := range []bool{true, false} {
		name := "store"
		if !sized {
			name = "store-unsized"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(benchSize)
			for b.Loop() {
				key := uploadtest.NewID()
				if err := putBench(ctx, s, key, data, sized); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				s.Delete(ctx, key)
				b.StartTimer()
			}
		})
	}
	b.Run("minio", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			key := uploadtest.NewID()
			if _, err := c.PutObject(ctx, bucket, key, bytes.NewReader(data), benchSize, minio.PutObjectOptions{}); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			c.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{})
			b.StartTimer()
		}
	})
	// Both, one after the other in every iteration (the order swapped each
	// time), so that the load of a shared machine falls on both alike:
	// x-minio is the Store's time over minio-go's.
	b.Run("interleaved", func(b *testing.B) {
		b.SetBytes(2 * benchSize)
		var tStore, tMinio time.Duration
		i := 0
		for b.Loop() {
			for k := range 2 {
				key := uploadtest.NewID()
				t0 := time.Now()
				if (i+k)%2 == 0 {
					if err := putBench(ctx, s, key, data, true); err != nil {
						b.Fatal(err)
					}
					tStore += time.Since(t0)
				} else {
					if _, err := c.PutObject(ctx, bucket, key, bytes.NewReader(data), benchSize, minio.PutObjectOptions{}); err != nil {
						b.Fatal(err)
					}
					tMinio += time.Since(t0)
				}
				b.StopTimer()
				c.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{})
				b.StartTimer()
			}
			i++
		}
		mb := float64(benchSize) * float64(i) / 1e6
		b.ReportMetric(mb/tStore.Seconds(), "store-MB/s")
		b.ReportMetric(mb/tMinio.Seconds(), "minio-MB/s")
		b.ReportMetric(tMinio.Seconds()/tStore.Seconds(), "x-minio")
	})
	// minio-go streaming from a reader of unknown size with the Store's
	// part size: one part buffered, parts sent one after another, as the
	// Store does.
	b.Run("minio-sequential", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			key := uploadtest.NewID()
			r := struct{ io.Reader }{bytes.NewReader(data)}
			if _, err := c.PutObject(ctx, bucket, key, r, -1, minio.PutObjectOptions{PartSize: s3store.DefaultPartSize}); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			c.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{})
			b.StartTimer()
		}
	})
}

// BenchmarkGet compares reading a whole object through the Store's Open with
// minio-go's GetObject.
func BenchmarkGet(b *testing.B) {
	s, c, bucket := newStore(b, s3store.Options{})
	ctx := context.Background()
	key := uploadtest.NewID()
	w, err := s.Create(ctx, key)
	if err != nil {
		b.Fatal(err)
	}
	if err := chunks(w, pattern(benchSize)); err != nil {
		b.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 32<<10)
	b.Run("store", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			rc, _, err := s.Open(ctx, key)
			if err != nil {
				b.Fatal(err)
			}
			if n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{rc}, buf); err != nil || n != benchSize {
				b.Fatal(n, err)
			}
			rc.Close()
		}
	})
	b.Run("minio", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			o, err := c.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{o}, buf); err != nil || n != benchSize {
				b.Fatal(n, err)
			}
			o.Close()
		}
	})
}
