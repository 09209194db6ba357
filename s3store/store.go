package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"chatbx.eu/privacy/upload"
)

// Part sizes. S3 refuses parts under 5 MiB (except the last) and more than
// 10,000 parts per object.
const (
	MinPartSize           = 5 << 20
	DefaultPartSize       = 8 << 20
	DefaultStreamPartSize = 64 << 20
	maxParts              = 10000
	firstBuf              = 64 << 10 // the part buffer starts here and doubles
	deleteBatch           = 1000     // keys per DeleteObjects request (the S3 limit)
)

// Options configures a Store. The zero value is usable.
type Options struct {
	// Prefix is prepended to every key, e.g. "upload/" to share a bucket
	// with other data. Empty means keys at the bucket's root.
	Prefix string

	// PartSize is the size of one multipart part and so the memory one
	// upload in progress holds. 0 means DefaultPartSize (8 MiB); values
	// below MinPartSize are an error. The largest blob is 10,000 parts.
	PartSize int64

	// StreamPartSize is the part size of a blob whose size is known when
	// it is created (CreateSize, which upload's handler calls with the
	// slot's size) and that is larger than PartSize. Its parts are
	// streamed, not buffered, so it costs no memory: larger parts mean
	// fewer requests. 0 means DefaultStreamPartSize (64 MiB); values
	// below MinPartSize are an error. It is raised for a blob that would
	// need more than 10,000 parts.
	StreamPartSize int64
}

// Store is an upload.BlobStore in one S3 bucket. It is safe for concurrent
// use.
type Store struct {
	core           minio.Core
	bucket         string
	prefix         string
	partSize       int64
	streamPartSize int64
}

var _ upload.BlobStore = (*Store)(nil)

// New returns a Store writing to an existing bucket through client. It does
// not contact the server; see EnsureBucket.
func New(client *minio.Client, bucket string, opts Options) (*Store, error) {
	if client == nil || bucket == "" {
		return nil, fmt.Errorf("%w: s3store needs a client and a bucket", upload.ErrConfig)
	}
	ps := opts.PartSize
	if ps == 0 {
		ps = DefaultPartSize
	}
	sps := opts.StreamPartSize
	if sps == 0 {
		sps = DefaultStreamPartSize
	}
	if ps < MinPartSize || sps < MinPartSize {
		return nil, fmt.Errorf("%w: s3store part size %d or stream part size %d is below 5 MiB", upload.ErrConfig, ps, sps)
	}
	return &Store{core: minio.Core{Client: client}, bucket: bucket, prefix: opts.Prefix, partSize: ps, streamPartSize: sps}, nil
}

// EnsureBucket creates the Store's bucket if it does not exist.
func (s *Store) EnsureBucket(ctx context.Context) error {
	ok, err := s.core.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("s3store: bucket: %w", err)
	}
	if ok {
		return nil
	}
	if err := s.core.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{}); err != nil {
		return fmt.Errorf("s3store: make bucket: %w", err)
	}
	return nil
}

// validKey is the key syntax of upload's own stores: 16–64 characters of
// [A-Za-z0-9_-] (the Service uses random base64url IDs).
func validKey(k string) bool {
	if len(k) < 16 || len(k) > 64 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func notFound(err error) bool {
	r := minio.ToErrorResponse(err)
	return r.StatusCode == http.StatusNotFound || r.Code == "NoSuchKey"
}

// Create implements upload.BlobStore. The writer keeps at most one part in
// memory: a blob that fits in one part is sent with one PUT at Commit;
// a larger one becomes a multipart upload whose parts are sent as they fill,
// completed at Commit and aborted by Abort. Nothing is visible before Commit.
func (s *Store) Create(ctx context.Context, key string) (upload.BlobWriter, error) {
	if !validKey(key) {
		return nil, errors.New("s3store: invalid blob key")
	}
	return &writer{s: s, ctx: ctx, key: s.prefix + key, size: -1}, nil
}

// CreateSize implements upload's optional sized Create: its handler calls
// it with the slot's size. A blob of up to one part is buffered and sent
// with one PUT at Commit, as by Create. A larger one is streamed: it is a
// multipart upload whose parts are PUT requests of known length, each one's
// body being the caller's writes as they come, so no part is buffered (the
// heap cost is minio-go's 64 KiB signing chunk and the HTTP client's
// buffers). While a part's body is sent, the answer to the previous part
// may still be awaited: at most two part requests are open. Nothing is
// visible before Commit, which completes the upload; Abort cuts the part
// being sent and aborts the upload. A Write past size and a Commit before
// size bytes fail. The part size is Options.StreamPartSize.
//
// A streamed part cannot be retried (its bytes are not kept): a failed
// part request fails the upload, where Create's buffered part is retried
// by minio-go.
func (s *Store) CreateSize(ctx context.Context, key string, size int64) (upload.BlobWriter, error) {
	if !validKey(key) {
		return nil, errors.New("s3store: invalid blob key")
	}
	if size < 0 {
		return nil, errors.New("s3store: negative blob size")
	}
	if size <= s.partSize {
		return &writer{s: s, ctx: ctx, key: s.prefix + key, size: size}, nil
	}
	ps := max(s.streamPartSize, (size+maxParts-1)/maxParts)
	return &streamWriter{s: s, ctx: ctx, key: s.prefix + key, size: size, partSize: ps}, nil
}

var (
	errTooLong  = errors.New("s3store: more bytes than the blob's size")
	errTooShort = errors.New("s3store: fewer bytes than the blob's size")
)

type writer struct {
	s     *Store
	ctx   context.Context
	key   string
	size  int64 // -1: unknown (Create)
	n     int64 // bytes accepted
	buf   []byte
	id    string // multipart upload ID once the first part is sent
	parts []minio.CompletePart
	done  bool
	err   error // a failed part: the writer is dead
}

var errDone = errors.New("s3store: blob already committed or aborted")

// Write implements io.Writer.
func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errDone
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.size >= 0 && int64(len(p)) > w.size-w.n {
		w.err = errTooLong
		return 0, w.err
	}
	w.n += int64(len(p))
	n := 0
	for len(p) > 0 {
		if len(w.buf) == int(w.s.partSize) {
			if err := w.flush(); err != nil {
				w.err = err
				return n, err
			}
		}
		if len(w.buf) == cap(w.buf) { // grow by doubling up to one part
			nb := make([]byte, len(w.buf), min(max(2*cap(w.buf), firstBuf), int(w.s.partSize)))
			copy(nb, w.buf)
			w.buf = nb
		}
		m := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf = w.buf[:len(w.buf)+m]
		p = p[m:]
		n += m
	}
	return n, nil
}

// flush sends the buffered bytes as the next part.
func (w *writer) flush() error {
	if len(w.parts) == maxParts {
		return errors.New("s3store: blob larger than 10,000 parts")
	}
	if w.id == "" {
		id, err := w.s.core.NewMultipartUpload(w.ctx, w.s.bucket, w.key, minio.PutObjectOptions{})
		if err != nil {
			return fmt.Errorf("s3store: start upload: %w", err)
		}
		w.id = id
	}
	n := len(w.parts) + 1
	p, err := w.s.core.PutObjectPart(w.ctx, w.s.bucket, w.key, w.id, n,
		bytes.NewReader(w.buf), int64(len(w.buf)), minio.PutObjectPartOptions{})
	if err != nil {
		return fmt.Errorf("s3store: upload part: %w", err)
	}
	w.parts = append(w.parts, minio.CompletePart{PartNumber: n, ETag: p.ETag})
	w.buf = w.buf[:0]
	return nil
}

// Commit implements upload.BlobWriter.
func (w *writer) Commit() error {
	if w.done {
		return errDone
	}
	w.done = true
	err := w.err
	if err == nil && w.size >= 0 && w.n != w.size {
		err = errTooShort
	}
	if err == nil {
		err = w.commit()
	}
	w.buf = nil
	if err != nil {
		w.abort()
		return err
	}
	return nil
}

func (w *writer) commit() error {
	if w.id == "" { // one part: a single PUT
		_, err := w.s.core.PutObject(w.ctx, w.s.bucket, w.key, bytes.NewReader(w.buf),
			int64(len(w.buf)), "", "", minio.PutObjectOptions{})
		if err != nil {
			return fmt.Errorf("s3store: put: %w", err)
		}
		return nil
	}
	if len(w.buf) > 0 {
		if err := w.flush(); err != nil {
			return err
		}
	}
	_, err := w.s.core.CompleteMultipartUpload(w.ctx, w.s.bucket, w.key, w.id, w.parts, minio.PutObjectOptions{})
	if err != nil {
		return fmt.Errorf("s3store: complete upload: %w", err)
	}
	return nil
}

// Abort implements upload.BlobWriter.
func (w *writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.buf = nil
	return w.abort()
}

// abort drops the multipart upload, if one was started, even when the
// request's context has ended.
func (w *writer) abort() error {
	if w.id == "" {
		return nil
	}
	ctx := context.WithoutCancel(w.ctx)
	if err := w.s.core.AbortMultipartUpload(ctx, w.s.bucket, w.key, w.id); err != nil && !notFound(err) {
		return fmt.Errorf("s3store: abort upload: %w", err)
	}
	return nil
}

// streamWriter sends a blob of known size as a multipart upload whose parts
// stream from Write (CreateSize).
type streamWriter struct {
	s        *Store
	ctx      context.Context
	key      string
	size     int64
	partSize int64
	n        int64  // bytes accepted
	id       string // multipart upload ID once the first part starts
	next     int    // number of the next part to start

	body     *io.PipeWriter // the body of the part being sent, nil between parts
	left     int64          // bytes the part being sent still takes
	sending  chan partResult
	awaiting chan partResult // the part whose body is sent and whose answer is awaited
	parts    []minio.CompletePart
	done     bool
	err      error // a failed part or a Write past size: the writer is dead
}

type partResult struct {
	n    int
	etag string
	err  error
}

// Write implements io.Writer. It returns when the part requests have taken
// p's bytes.
func (w *streamWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, errDone
	}
	if w.err != nil {
		return 0, w.err
	}
	if int64(len(p)) > w.size-w.n {
		w.err = errTooLong
		return 0, w.err
	}
	n := 0
	for len(p) > 0 {
		if w.body == nil {
			if err := w.startPart(); err != nil {
				w.err = err
				return n, err
			}
		}
		m := int(min(int64(len(p)), w.left))
		k, err := w.body.Write(p[:m])
		n += k
		w.n += int64(k)
		w.left -= int64(k)
		if err != nil {
			w.err = fmt.Errorf("s3store: upload part: %w", err)
			return n, w.err
		}
		p = p[m:]
		if w.left == 0 {
			if err := w.endPart(); err != nil {
				w.err = err
				return n, err
			}
		}
	}
	return n, nil
}

// startPart opens the next part request, its body a pipe from Write.
func (w *streamWriter) startPart() error {
	if w.id == "" {
		id, err := w.s.core.NewMultipartUpload(w.ctx, w.s.bucket, w.key, minio.PutObjectOptions{})
		if err != nil {
			return fmt.Errorf("s3store: start upload: %w", err)
		}
		w.id = id
		w.next = 1
	}
	num, length := w.next, min(w.partSize, w.size-w.n)
	w.next++
	pr, pw := io.Pipe()
	ch := make(chan partResult, 1)
	core, bucket, key, id, ctx := w.s.core, w.s.bucket, w.key, w.id, w.ctx
	go func() {
		p, err := core.PutObjectPart(ctx, bucket, key, id, num, pr, length, minio.PutObjectPartOptions{})
		if err != nil {
			pr.CloseWithError(err) // unblocks a Write waiting on this body
		} else {
			pr.Close()
		}
		ch <- partResult{n: num, etag: p.ETag, err: err}
	}()
	w.body, w.left, w.sending = pw, length, ch
	return nil
}

// endPart ends the body of the part being sent, collects the answer to the
// one before it, and leaves this one's answer awaited: the next part's body
// can flow while the server finishes this one.
func (w *streamWriter) endPart() error {
	w.body.Close()
	w.body = nil
	err := w.collect()
	w.awaiting, w.sending = w.sending, nil
	return err
}

// collect waits for the awaited part's answer.
func (w *streamWriter) collect() error {
	if w.awaiting == nil {
		return nil
	}
	r := <-w.awaiting
	w.awaiting = nil
	if r.err != nil {
		return fmt.Errorf("s3store: upload part: %w", r.err)
	}
	w.parts = append(w.parts, minio.CompletePart{PartNumber: r.n, ETag: r.etag})
	return nil
}

// Commit implements upload.BlobWriter.
func (w *streamWriter) Commit() error {
	if w.done {
		return errDone
	}
	w.done = true
	err := w.err
	if err == nil && w.n != w.size {
		err = errTooShort
	}
	if err == nil {
		err = w.collect() // the last part: its body ended in Write
	}
	if err == nil {
		_, err = w.s.core.CompleteMultipartUpload(w.ctx, w.s.bucket, w.key, w.id, w.parts, minio.PutObjectOptions{})
		if err != nil {
			err = fmt.Errorf("s3store: complete upload: %w", err)
		}
	}
	if err != nil {
		w.abort()
		return err
	}
	return nil
}

// Abort implements upload.BlobWriter.
func (w *streamWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	return w.abort()
}

var errAborted = errors.New("s3store: upload aborted")

// abort cuts the part being sent (the server never gets its whole body),
// waits for every part request to end, then aborts the multipart upload, so
// no part can land after the abort.
func (w *streamWriter) abort() error {
	if w.body != nil {
		w.body.CloseWithError(errAborted)
		w.body = nil
	}
	for _, ch := range []chan partResult{w.sending, w.awaiting} {
		if ch != nil {
			<-ch
		}
	}
	w.sending, w.awaiting = nil, nil
	if w.id == "" {
		return nil
	}
	ctx := context.WithoutCancel(w.ctx)
	if err := w.s.core.AbortMultipartUpload(ctx, w.s.bucket, w.key, w.id); err != nil && !notFound(err) {
		return fmt.Errorf("s3store: abort upload: %w", err)
	}
	return nil
}

// Open implements upload.BlobStore: one HEAD for the size, then one ranged
// GET from the current offset at the first Read after each Seek, so a Range
// request through upload's handler fetches only the bytes it serves.
func (s *Store) Open(ctx context.Context, key string) (io.ReadSeekCloser, int64, error) {
	if !validKey(key) {
		return nil, 0, upload.ErrNotFound
	}
	info, err := s.core.StatObject(ctx, s.bucket, s.prefix+key, minio.StatObjectOptions{})
	if notFound(err) {
		return nil, 0, upload.ErrNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("s3store: open: %w", err)
	}
	return &reader{s: s, ctx: ctx, key: s.prefix + key, etag: info.ETag, size: info.Size}, info.Size, nil
}

type reader struct {
	s    *Store
	ctx  context.Context
	key  string
	etag string
	size int64
	off  int64
	body io.ReadCloser // open GET from off, nil after a Seek
}

func (r *reader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	if r.body == nil {
		var o minio.GetObjectOptions
		if err := o.SetRange(r.off, r.size-1); err != nil {
			return 0, fmt.Errorf("s3store: read: %w", err)
		}
		if r.etag != "" {
			if err := o.SetMatchETag(r.etag); err != nil {
				return 0, fmt.Errorf("s3store: read: %w", err)
			}
		}
		body, _, _, err := r.s.core.GetObject(r.ctx, r.s.bucket, r.key, o)
		if notFound(err) {
			return 0, fmt.Errorf("s3store: read: %w", upload.ErrNotFound)
		}
		if err != nil {
			return 0, fmt.Errorf("s3store: read: %w", err)
		}
		r.body = body
	}
	n, err := r.body.Read(p)
	r.off += int64(n)
	if err == io.EOF && r.off < r.size {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (r *reader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.off + offset
	case io.SeekEnd:
		abs = r.size + offset
	default:
		return 0, errors.New("s3store: bad whence")
	}
	if abs < 0 {
		return 0, errors.New("s3store: negative position")
	}
	if abs != r.off && r.body != nil {
		r.body.Close()
		r.body = nil
	}
	r.off = abs
	return abs, nil
}

func (r *reader) Close() error {
	if r.body != nil {
		err := r.body.Close()
		r.body = nil
		return err
	}
	return nil
}

// Delete implements upload.BlobStore.
func (s *Store) Delete(ctx context.Context, key string) error {
	if !validKey(key) {
		return nil // no such blob can exist
	}
	err := s.core.RemoveObject(ctx, s.bucket, s.prefix+key, minio.RemoveObjectOptions{})
	if err != nil && !notFound(err) {
		return fmt.Errorf("s3store: delete: %w", err)
	}
	return nil
}

// DeleteBlobs deletes many blobs with DeleteObjects requests of up to 1,000
// keys each (upload.Service uses it for expiry and erasure). Missing keys are
// not an error.
func (s *Store) DeleteBlobs(ctx context.Context, keys ...string) error {
	ch := make(chan minio.ObjectInfo)
	go func() {
		defer close(ch)
		for _, k := range keys {
			if !validKey(k) {
				continue
			}
			select {
			case ch <- minio.ObjectInfo{Key: s.prefix + k}:
			case <-ctx.Done():
				return
			}
		}
	}()
	var errs []error
	for e := range s.core.RemoveObjects(ctx, s.bucket, ch, minio.RemoveObjectsOptions{}) {
		if e.Err != nil && !notFound(e.Err) {
			errs = append(errs, e.Err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("s3store: delete %d blobs: %w", len(errs), err)
	}
	return ctx.Err()
}

// RemoveStale aborts multipart uploads under the Store's prefix started
// before t (a process that died mid-upload leaves them, and S3 keeps their
// parts until then). upload.Service.Expire calls it with now − UploadTimeout.
// It returns how many it aborted.
func (s *Store) RemoveStale(ctx context.Context, t time.Time) (int, error) {
	n := 0
	var errs []error
	for u := range s.core.ListIncompleteUploads(ctx, s.bucket, s.prefix, true) {
		if u.Err != nil {
			return n, fmt.Errorf("s3store: list uploads: %w", u.Err)
		}
		if !u.Initiated.Before(t) || !validKey(strings.TrimPrefix(u.Key, s.prefix)) {
			continue
		}
		if err := s.core.AbortMultipartUpload(ctx, s.bucket, u.Key, u.UploadID); err != nil && !notFound(err) {
			errs = append(errs, err)
			continue
		}
		n++
	}
	if err := errors.Join(errs...); err != nil {
		return n, fmt.Errorf("s3store: abort stale uploads: %w", err)
	}
	return n, nil
}
