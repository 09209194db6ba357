package uploadtest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"chatbx.eu/privacy/upload"
)

// MemMeta is an in-memory upload.MetaStore, the reference implementation of
// the contract TestMetaStore checks, for tests. The zero value is ready to
// use and safe for concurrent use.
type MemMeta struct {
	mu   sync.Mutex
	recs map[string]upload.Record
}

// NewMemMeta returns an empty MemMeta.
func NewMemMeta() *MemMeta { return &MemMeta{} }

// Reserve implements upload.MetaStore.
func (m *MemMeta) Reserve(ctx context.Context, r upload.Record, admit func([]upload.Record) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.recs[r.ID]; ok {
		return errors.New("uploadtest: duplicate id")
	}
	if err := admit(m.byOwner(r.Owner)); err != nil {
		return err
	}
	if m.recs == nil {
		m.recs = map[string]upload.Record{}
	}
	m.recs[r.ID] = r
	return nil
}

// Claim implements upload.MetaStore.
func (m *MemMeta) Claim(ctx context.Context, id string, deadline time.Time) (upload.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[id]
	if !ok {
		return upload.Record{}, upload.ErrNotFound
	}
	if r.State != upload.StateReserved {
		return upload.Record{}, upload.ErrSlotUsed
	}
	r.State, r.Expires = upload.StateUploading, deadline
	m.recs[id] = r
	return r, nil
}

// Commit implements upload.MetaStore.
func (m *MemMeta) Commit(ctx context.Context, id string, created, expires time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[id]
	if !ok {
		return upload.ErrNotFound
	}
	if r.State != upload.StateUploading {
		return fmt.Errorf("uploadtest: commit of a record not uploading: %w", upload.ErrSlotUsed)
	}
	r.State, r.Created, r.Expires = upload.StateStored, created, expires
	m.recs[id] = r
	return nil
}

// Get implements upload.MetaStore.
func (m *MemMeta) Get(ctx context.Context, id string) (upload.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[id]
	if !ok {
		return upload.Record{}, upload.ErrNotFound
	}
	return r, nil
}

// Delete implements upload.MetaStore.
func (m *MemMeta) Delete(ctx context.Context, ids ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		delete(m.recs, id)
	}
	return nil
}

// ByOwner implements upload.MetaStore.
func (m *MemMeta) ByOwner(ctx context.Context, owner string) ([]upload.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.byOwner(owner), nil
}

func (m *MemMeta) byOwner(owner string) []upload.Record {
	var out []upload.Record
	for _, r := range m.recs {
		if r.Owner == owner {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b upload.Record) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Expiring implements upload.MetaStore (a linear scan: fine for tests).
func (m *MemMeta) Expiring(ctx context.Context, t time.Time, limit int) ([]upload.Record, error) {
	return m.scan(func(r upload.Record) time.Time { return r.Expires }, t, limit), nil
}

// Older implements upload.MetaStore (a linear scan: fine for tests).
func (m *MemMeta) Older(ctx context.Context, t time.Time, limit int) ([]upload.Record, error) {
	return m.scan(func(r upload.Record) time.Time { return r.Created }, t, limit), nil
}

func (m *MemMeta) scan(key func(upload.Record) time.Time, t time.Time, limit int) []upload.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []upload.Record
	for _, r := range m.recs {
		if key(r).Before(t) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b upload.Record) int {
		return cmp.Or(key(a).Compare(key(b)), cmp.Compare(a.ID, b.ID))
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// MemBlobs is an in-memory upload.BlobStore, the reference implementation of
// the contract TestBlobStore checks, for tests. The zero value is ready to
// use and safe for concurrent use.
type MemBlobs struct {
	mu    sync.Mutex
	blobs map[string][]byte
	open  int // writers not yet committed or aborted
}

// NewMemBlobs returns an empty MemBlobs.
func NewMemBlobs() *MemBlobs { return &MemBlobs{} }

// Len returns the number of committed blobs.
func (b *MemBlobs) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.blobs)
}

// Pending returns the number of writers neither committed nor aborted: a
// correct user of the store leaves 0.
func (b *MemBlobs) Pending() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.open
}

// Create implements upload.BlobStore.
func (b *MemBlobs) Create(ctx context.Context, key string) (upload.BlobWriter, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.open++
	return &memWriter{s: b, key: key}, nil
}

type memWriter struct {
	s    *MemBlobs
	key  string
	buf  bytes.Buffer
	done bool
}

func (w *memWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("uploadtest: write after commit or abort")
	}
	return w.buf.Write(p)
}

func (w *memWriter) Commit() error {
	if w.done {
		return errors.New("uploadtest: blob already committed or aborted")
	}
	w.done = true
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	w.s.open--
	if w.s.blobs == nil {
		w.s.blobs = map[string][]byte{}
	}
	w.s.blobs[w.key] = bytes.Clone(w.buf.Bytes())
	return nil
}

func (w *memWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	w.s.open--
	return nil
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// Open implements upload.BlobStore.
func (b *MemBlobs) Open(ctx context.Context, key string) (io.ReadSeekCloser, int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.blobs[key]
	if !ok {
		return nil, 0, upload.ErrNotFound
	}
	return nopCloser{bytes.NewReader(v)}, int64(len(v)), nil
}

// Delete implements upload.BlobStore.
func (b *MemBlobs) Delete(ctx context.Context, key string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.blobs, key)
	return nil
}
