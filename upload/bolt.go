package upload

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketFiles   = []byte("upload/files")   // id → JSON Record
	bucketOwner   = []byte("upload/owner")   // owner 0x00 id → empty
	bucketExpiry  = []byte("upload/expiry")  // uint64 BE UnixNano(Expires) id → empty
	bucketCreated = []byte("upload/created") // uint64 BE UnixNano(Created) id → empty
)

// BoltMetaStore is a MetaStore in a bbolt database, in four buckets prefixed
// "upload/": the records by ID, an owner index, an expiry index and a
// creation index. It is
// safe for concurrent use; each method is one bbolt transaction.
type BoltMetaStore struct {
	db *bolt.DB
}

var _ MetaStore = (*BoltMetaStore)(nil)

// NewBoltMetaStore creates the buckets if needed and returns the store. The
// caller owns db and closes it. A nil db is an error wrapping ErrConfig.
func NewBoltMetaStore(db *bolt.DB) (*BoltMetaStore, error) {
	if db == nil {
		return nil, fmt.Errorf("%w: nil database", ErrConfig)
	}
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketFiles, bucketOwner, bucketExpiry, bucketCreated} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("upload: bolt: %w", err)
	}
	return &BoltMetaStore{db: db}, nil
}

func ownerKey(owner, id string) []byte {
	k := make([]byte, 0, len(owner)+1+len(id))
	k = append(k, owner...)
	k = append(k, 0)
	return append(k, id...)
}

func timeKey(t time.Time, id string) []byte {
	k := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(k, uint64(max(t.UnixNano(), 0)))
	return append(k, id...)
}

func getRecord(tx *bolt.Tx, id string) (Record, error) {
	v := tx.Bucket(bucketFiles).Get([]byte(id))
	if v == nil {
		return Record{}, ErrNotFound
	}
	r, err := decodeRecord(v)
	if err != nil {
		return Record{}, err
	}
	r.ID = id
	return r, nil
}

func putRecord(tx *bolt.Tx, r Record) error {
	return tx.Bucket(bucketFiles).Put([]byte(r.ID), encodeRecord(r))
}

// recordVersion starts every encoded record.
const recordVersion = 1

// encodeRecord is a compact binary form of a record without its ID (the
// key): version, state, size, created and expires (UnixNano), then owner,
// file name and content type, each length-prefixed (uvarint).
func encodeRecord(r Record) []byte {
	b := make([]byte, 0, 2+3*binary.MaxVarintLen64+len(r.Owner)+len(r.Filename)+len(r.ContentType)+24)
	b = append(b, recordVersion, byte(r.State))
	b = binary.AppendVarint(b, r.Size)
	b = binary.AppendVarint(b, r.Created.UnixNano())
	b = binary.AppendVarint(b, r.Expires.UnixNano())
	for _, s := range []string{r.Owner, r.Filename, r.ContentType} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

var errCorrupt = errors.New("upload: bolt: corrupt record")

func decodeRecord(b []byte) (Record, error) {
	if len(b) < 2 || b[0] != recordVersion {
		return Record{}, errCorrupt
	}
	r := Record{State: State(b[1])}
	b = b[2:]
	var ints [3]int64
	for i := range ints {
		v, n := binary.Varint(b)
		if n <= 0 {
			return Record{}, errCorrupt
		}
		ints[i], b = v, b[n:]
	}
	var strs [3]string
	for i := range strs {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return Record{}, errCorrupt
		}
		strs[i], b = string(b[n:n+int(l)]), b[n+int(l):]
	}
	r.Size = ints[0]
	r.Created = time.Unix(0, ints[1]).UTC()
	r.Expires = time.Unix(0, ints[2]).UTC()
	r.Owner, r.Filename, r.ContentType = strs[0], strs[1], strs[2]
	return r, nil
}

func ownerRecords(tx *bolt.Tx, owner string) ([]Record, error) {
	prefix := append([]byte(owner), 0)
	var out []Record
	c := tx.Bucket(bucketOwner).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		r, err := getRecord(tx, string(k[len(prefix):]))
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Reserve implements MetaStore.
func (m *BoltMetaStore) Reserve(ctx context.Context, r Record, admit func([]Record) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return m.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketFiles).Get([]byte(r.ID)) != nil {
			return errors.New("upload: bolt: duplicate id")
		}
		existing, err := ownerRecords(tx, r.Owner)
		if err != nil {
			return err
		}
		if err := admit(existing); err != nil {
			return err
		}
		if err := putRecord(tx, r); err != nil {
			return err
		}
		if err := tx.Bucket(bucketOwner).Put(ownerKey(r.Owner, r.ID), nil); err != nil {
			return err
		}
		if err := tx.Bucket(bucketCreated).Put(timeKey(r.Created, r.ID), nil); err != nil {
			return err
		}
		return tx.Bucket(bucketExpiry).Put(timeKey(r.Expires, r.ID), nil)
	})
}

// Claim implements MetaStore.
func (m *BoltMetaStore) Claim(ctx context.Context, id string, deadline time.Time) (Record, error) {
	var r Record
	err := m.db.Update(func(tx *bolt.Tx) error {
		var err error
		r, err = getRecord(tx, id)
		if err != nil {
			return err
		}
		if r.State != StateReserved {
			return ErrSlotUsed
		}
		if err := tx.Bucket(bucketExpiry).Delete(timeKey(r.Expires, r.ID)); err != nil {
			return err
		}
		r.State, r.Expires = StateUploading, deadline
		if err := putRecord(tx, r); err != nil {
			return err
		}
		return tx.Bucket(bucketExpiry).Put(timeKey(r.Expires, r.ID), nil)
	})
	if err != nil {
		return Record{}, err
	}
	return r, nil
}

// Commit implements MetaStore.
func (m *BoltMetaStore) Commit(ctx context.Context, id string, created, expires time.Time) error {
	return m.db.Update(func(tx *bolt.Tx) error {
		r, err := getRecord(tx, id)
		if err != nil {
			return err
		}
		if r.State != StateUploading {
			return fmt.Errorf("upload: bolt: commit of a record not uploading: %w", ErrSlotUsed)
		}
		if err := tx.Bucket(bucketExpiry).Delete(timeKey(r.Expires, r.ID)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketCreated).Delete(timeKey(r.Created, r.ID)); err != nil {
			return err
		}
		r.State, r.Created, r.Expires = StateStored, created, expires
		if err := putRecord(tx, r); err != nil {
			return err
		}
		if err := tx.Bucket(bucketCreated).Put(timeKey(r.Created, r.ID), nil); err != nil {
			return err
		}
		return tx.Bucket(bucketExpiry).Put(timeKey(r.Expires, r.ID), nil)
	})
}

// Get implements MetaStore.
func (m *BoltMetaStore) Get(ctx context.Context, id string) (Record, error) {
	var r Record
	err := m.db.View(func(tx *bolt.Tx) error {
		var err error
		r, err = getRecord(tx, id)
		return err
	})
	return r, err
}

// Delete implements MetaStore.
func (m *BoltMetaStore) Delete(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	return m.db.Update(func(tx *bolt.Tx) error {
		for _, id := range ids {
			r, err := getRecord(tx, id)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketOwner).Delete(ownerKey(r.Owner, r.ID)); err != nil {
				return err
			}
			if err := tx.Bucket(bucketExpiry).Delete(timeKey(r.Expires, r.ID)); err != nil {
				return err
			}
			if err := tx.Bucket(bucketCreated).Delete(timeKey(r.Created, r.ID)); err != nil {
				return err
			}
			if err := tx.Bucket(bucketFiles).Delete([]byte(id)); err != nil {
				return err
			}
		}
		return nil
	})
}

// ByOwner implements MetaStore.
func (m *BoltMetaStore) ByOwner(ctx context.Context, owner string) ([]Record, error) {
	var out []Record
	err := m.db.View(func(tx *bolt.Tx) error {
		var err error
		out, err = ownerRecords(tx, owner)
		return err
	})
	return out, err
}

// Expiring implements MetaStore.
func (m *BoltMetaStore) Expiring(ctx context.Context, t time.Time, limit int) ([]Record, error) {
	return m.scan(bucketExpiry, t, limit)
}

// Older implements MetaStore.
func (m *BoltMetaStore) Older(ctx context.Context, t time.Time, limit int) ([]Record, error) {
	return m.scan(bucketCreated, t, limit)
}

// scan walks a time index from its start up to (excluding) t.
func (m *BoltMetaStore) scan(bucket []byte, t time.Time, limit int) ([]Record, error) {
	var out []Record
	end := uint64(max(t.UnixNano(), 0))
	err := m.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		for k, _ := c.First(); k != nil && len(out) < limit; k, _ = c.Next() {
			if len(k) < 8 || binary.BigEndian.Uint64(k) >= end {
				break
			}
			r, err := getRecord(tx, string(k[8:]))
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}
