package upload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// FSBlobStore is a BlobStore in one directory of the local file system. Each
// blob is one file named by its key (keys must be 16–64 characters of
// [A-Za-z0-9_-], so no path can be formed from them). Uploads are written to
// a temporary file in the same directory, fsynced, renamed into place, and
// the directory is fsynced; a failed or aborted upload removes its temporary
// file. Files are created 0600 and the directory 0700. It is safe for
// concurrent use.
type FSBlobStore struct {
	dir string
}

var _ BlobStore = (*FSBlobStore)(nil)

// tmpPrefix starts the name of every in-progress upload.
const tmpPrefix = ".tmp-"

// NewFSBlobStore returns a store in dir, creating it (0700) if needed. An
// empty dir is an error wrapping ErrConfig.
func NewFSBlobStore(dir string) (*FSBlobStore, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: no blob directory", ErrConfig)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("upload: blob dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("upload: blob dir: %w", err)
	}
	return &FSBlobStore{dir: dir}, nil
}

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

func (f *FSBlobStore) path(key string) (string, error) {
	if !validKey(key) {
		return "", errors.New("upload: invalid blob key")
	}
	return filepath.Join(f.dir, key), nil
}

// Create implements BlobStore.
func (f *FSBlobStore) Create(ctx context.Context, key string) (BlobWriter, error) {
	final, err := f.path(key)
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(f.dir, tmpPrefix+"*") // 0600
	if err != nil {
		return nil, fmt.Errorf("upload: create blob: %w", err)
	}
	return &fsWriter{f: tmp, final: final, dir: f.dir}, nil
}

type fsWriter struct {
	f     *os.File
	final string
	dir   string
	done  bool
}

// Write implements io.Writer (deliberately no ReadFrom: the handler bounds
// every read itself).
func (w *fsWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("upload: write after commit or abort")
	}
	return w.f.Write(p)
}

func (w *fsWriter) Commit() error {
	if w.done {
		return errors.New("upload: blob already committed or aborted")
	}
	err := w.f.Sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(w.f.Name(), w.final)
	}
	if err == nil {
		err = syncDir(w.dir)
	}
	w.done = true
	if err != nil {
		os.Remove(w.f.Name())
		return fmt.Errorf("upload: commit blob: %w", err)
	}
	return nil
}

func (w *fsWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.f.Close()
	if err := os.Remove(w.f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("upload: abort blob: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Open implements BlobStore. The returned value is an *os.File.
func (f *FSBlobStore) Open(ctx context.Context, key string) (io.ReadSeekCloser, int64, error) {
	p, err := f.path(key)
	if err != nil {
		return nil, 0, ErrNotFound
	}
	file, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("upload: open blob: %w", err)
	}
	st, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, 0, fmt.Errorf("upload: open blob: %w", err)
	}
	return file, st.Size(), nil
}

// Delete implements BlobStore.
func (f *FSBlobStore) Delete(ctx context.Context, key string) error {
	p, err := f.path(key)
	if err != nil {
		return nil // no such blob can exist
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("upload: delete blob: %w", err)
	}
	return nil
}

// RemoveStale deletes temporary files of uploads that started before t and
// were never finished (the process died mid-upload). Service.Expire calls it
// with now − Config.UploadTimeout. It returns how many files it removed.
func (f *FSBlobStore) RemoveStale(ctx context.Context, t time.Time) (int, error) {
	ents, err := os.ReadDir(f.dir)
	if err != nil {
		return 0, fmt.Errorf("upload: scan blob dir: %w", err)
	}
	n := 0
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), tmpPrefix) {
			continue
		}
		info, err := e.Info()
		if err != nil || !info.ModTime().Before(t) {
			continue
		}
		if os.Remove(filepath.Join(f.dir, e.Name())) == nil {
			n++
		}
	}
	return n, nil
}
