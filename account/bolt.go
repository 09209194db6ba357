package account

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bucket layout inside the top-level bucket "account":
//
//	users/<username>        JSON boltRecord
//	erasures/<username>     JSON boltErasure
//	tombstones/<hmac>       8-byte big-endian Unix nanoseconds of expiry
//	secrets/<name>          raw bytes
//	skeletons/<uvarint len(skeleton)><skeleton><username>   empty
//	skeleton-version        SkeletonVersion of the skeletons index
var (
	bktRoot       = []byte("account")
	bktUsers      = []byte("users")
	bktErasures   = []byte("erasures")
	bktTombstones = []byte("tombstones")
	bktSecrets    = []byte("secrets")
	bktSkeletons  = []byte("skeletons")
	keySkelVer    = []byte("skeleton-version")
)

// BoltStore is a Store in a bbolt database. All its data lives in the
// top-level bucket "account", so the database may be shared with other
// packages.
//
// bbolt does not wipe the pages it frees: the record of a deleted account
// (its name and hash) stays readable in the file until the page is reused.
// Integrators schedule a wipe or compaction of the file after deletions
// (this project's retention package does it): a deleted account must not
// stay readable on disk.
type BoltStore struct {
	db *bolt.DB
}

var _ Store = (*BoltStore)(nil)

// NewBoltStore returns a Store in db, creating its buckets if needed. The
// caller opens and closes db.
//
// A database written before skeletons existed, or with skeletons of
// another SkeletonVersion, gets them (re)computed for every account, in
// the same transaction that records the version: a crash leaves either
// the old state, done again at the next open, or the complete index.
// A nil db is an error wrapping ErrConfig.
func NewBoltStore(db *bolt.DB) (*BoltStore, error) {
	if db == nil {
		return nil, fmt.Errorf("%w: nil database", ErrConfig)
	}
	err := db.Update(func(tx *bolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(bktRoot)
		if err != nil {
			return err
		}
		for _, name := range [][]byte{bktUsers, bktErasures, bktTombstones, bktSecrets} {
			if _, err := root.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		if string(root.Get(keySkelVer)) != SkeletonVersion {
			return reindexSkeletons(tx)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("account: creating buckets: %w", err)
	}
	return &BoltStore{db: db}, nil
}

// reindexSkeletons computes the Skeleton of every account, stores it in
// the record and rebuilds the index.
func reindexSkeletons(tx *bolt.Tx) error {
	root := tx.Bucket(bktRoot)
	if root.Bucket(bktSkeletons) != nil {
		if err := root.DeleteBucket(bktSkeletons); err != nil {
			return err
		}
	}
	if _, err := root.CreateBucket(bktSkeletons); err != nil {
		return err
	}
	var names []string
	err := bucket(tx, bktUsers).ForEach(func(k, _ []byte) error {
		names = append(names, string(k))
		return nil
	})
	if err != nil {
		return err
	}
	for _, name := range names {
		r, err := getRecord(tx, name)
		if err != nil {
			return err
		}
		r.Skeleton = Skeleton(name)
		if err := putRecord(tx, r); err != nil {
			return err
		}
		if err := bucket(tx, bktSkeletons).Put(skeletonKey(r.Skeleton, name), nil); err != nil {
			return err
		}
	}
	return root.Put(keySkelVer, []byte(SkeletonVersion))
}

// skeletonPrefix is the prefix of the index keys of skeleton; a length
// prefix keeps "ab"+"c" apart from "a"+"bc".
func skeletonPrefix(skeleton string) []byte {
	return append(binary.AppendUvarint(nil, uint64(len(skeleton))), skeleton...)
}

func skeletonKey(skeleton, username string) []byte {
	return append(skeletonPrefix(skeleton), username...)
}

// deleteSkeletonsOf removes every index entry of username, scanning the
// whole index: for records too corrupt to tell their skeleton.
func deleteSkeletonsOf(tx *bolt.Tx, username string) error {
	c := bucket(tx, bktSkeletons).Cursor()
	for k, _ := c.First(); k != nil; {
		n, w := binary.Uvarint(k)
		if w > 0 && uint64(len(k)-w) >= n && string(k[w+int(n):]) == username {
			k = bytes.Clone(k)
			if err := c.Delete(); err != nil {
				return err
			}
			k, _ = c.Seek(k)
			continue
		}
		k, _ = c.Next()
	}
	return nil
}

// skeletonTaken reports whether an account has the given skeleton.
func skeletonTaken(tx *bolt.Tx, skeleton string) bool {
	prefix := skeletonPrefix(skeleton)
	k, _ := bucket(tx, bktSkeletons).Cursor().Seek(prefix)
	return k != nil && bytes.HasPrefix(k, prefix)
}

type boltRecord struct {
	Skeleton string    `json:"skeleton,omitempty"`
	Hash     string    `json:"hash"`
	Created  time.Time `json:"created"`
	Blocked  bool      `json:"blocked,omitempty"`
	Deleting bool      `json:"deleting,omitempty"`
	Profile  Profile   `json:"profile"`
}

type boltErasure struct {
	Started  time.Time `json:"started"`
	Done     []string  `json:"done,omitempty"`
	Attempts int       `json:"attempts,omitempty"`
}

func bucket(tx *bolt.Tx, name []byte) *bolt.Bucket {
	return tx.Bucket(bktRoot).Bucket(name)
}

func getRecord(tx *bolt.Tx, username string) (Record, error) {
	v := bucket(tx, bktUsers).Get([]byte(username))
	if v == nil {
		return Record{}, ErrNotFound
	}
	var br boltRecord
	if err := json.Unmarshal(v, &br); err != nil {
		return Record{}, fmt.Errorf("account: corrupt account record: %w", err)
	}
	return Record{
		Username: username, Skeleton: br.Skeleton, Hash: br.Hash, Created: br.Created,
		Blocked: br.Blocked, Deleting: br.Deleting, Profile: br.Profile,
	}, nil
}

func putRecord(tx *bolt.Tx, r Record) error {
	v, err := json.Marshal(boltRecord{
		Skeleton: r.Skeleton, Hash: r.Hash, Created: r.Created, Blocked: r.Blocked,
		Deleting: r.Deleting, Profile: r.Profile,
	})
	if err != nil {
		return err
	}
	return bucket(tx, bktUsers).Put([]byte(r.Username), v)
}

func (s *BoltStore) update(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(fn)
}

func (s *BoltStore) view(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(fn)
}

// Create implements Store.
func (s *BoltStore) Create(ctx context.Context, r Record, tombstone []byte) error {
	if r.Username == "" {
		return fmt.Errorf("account: empty username")
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		if bucket(tx, bktUsers).Get([]byte(r.Username)) != nil {
			return ErrExists
		}
		if r.Skeleton != "" && skeletonTaken(tx, r.Skeleton) {
			return ErrExists
		}
		if len(tombstone) > 0 {
			if v := bucket(tx, bktTombstones).Get(tombstone); len(v) == 8 {
				exp := int64(binary.BigEndian.Uint64(v))
				if exp > r.Created.UnixNano() {
					return ErrExists
				}
			}
		}
		if r.Skeleton != "" {
			if err := bucket(tx, bktSkeletons).Put(skeletonKey(r.Skeleton, r.Username), nil); err != nil {
				return err
			}
		}
		return putRecord(tx, r)
	})
}

// Get implements Store.
func (s *BoltStore) Get(ctx context.Context, username string) (Record, error) {
	var r Record
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		r, err = getRecord(tx, username)
		return err
	})
	return r, err
}

// Update implements Store.
func (s *BoltStore) Update(ctx context.Context, username string, fn func(*Record) error) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		r, err := getRecord(tx, username)
		if err != nil {
			return err
		}
		orig := r
		if err := fn(&r); err != nil {
			return err
		}
		if r.Username != orig.Username || r.Skeleton != orig.Skeleton || r.Deleting != orig.Deleting {
			return fmt.Errorf("account: Update must not change Username, Skeleton or Deleting")
		}
		return putRecord(tx, r)
	})
}

// BeginErasure implements Store.
func (s *BoltStore) BeginErasure(ctx context.Context, e Erasure) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		r, err := getRecord(tx, e.Username)
		if err != nil {
			return err
		}
		if r.Deleting || bucket(tx, bktErasures).Get([]byte(e.Username)) != nil {
			return ErrExists
		}
		r.Deleting = true
		if err := putRecord(tx, r); err != nil {
			return err
		}
		return putErasure(tx, e)
	})
}

func putErasure(tx *bolt.Tx, e Erasure) error {
	v, err := json.Marshal(boltErasure{Started: e.Started, Done: e.Done, Attempts: e.Attempts})
	if err != nil {
		return err
	}
	return bucket(tx, bktErasures).Put([]byte(e.Username), v)
}

// Erasures implements Store.
func (s *BoltStore) Erasures(ctx context.Context) ([]Erasure, error) {
	var out []Erasure
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return bucket(tx, bktErasures).ForEach(func(k, v []byte) error {
			var be boltErasure
			if err := json.Unmarshal(v, &be); err != nil {
				return fmt.Errorf("account: corrupt journal entry: %w", err)
			}
			out = append(out, Erasure{Username: string(k), Started: be.Started, Done: be.Done, Attempts: be.Attempts})
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(a, b Erasure) int { return a.Started.Compare(b.Started) })
	return out, nil
}

// UpdateErasure implements Store.
func (s *BoltStore) UpdateErasure(ctx context.Context, e Erasure) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		if bucket(tx, bktErasures).Get([]byte(e.Username)) == nil {
			return ErrNotFound
		}
		return putErasure(tx, e)
	})
}

// FinishErasure implements Store.
func (s *BoltStore) FinishErasure(ctx context.Context, username string, t Tombstone) error {
	if len(t.Key) == 0 {
		return fmt.Errorf("account: empty tombstone key")
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		jb := bucket(tx, bktErasures)
		if jb.Get([]byte(username)) == nil {
			return ErrNotFound
		}
		if err := jb.Delete([]byte(username)); err != nil {
			return err
		}
		r, err := getRecord(tx, username)
		switch {
		case err == nil && r.Skeleton != "":
			if err := bucket(tx, bktSkeletons).Delete(skeletonKey(r.Skeleton, username)); err != nil {
				return err
			}
		case err != nil && !errors.Is(err, ErrNotFound):
			// A corrupt record: find its index entry by name.
			if err := deleteSkeletonsOf(tx, username); err != nil {
				return err
			}
		}
		if err := bucket(tx, bktUsers).Delete([]byte(username)); err != nil {
			return err
		}
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], uint64(t.Expires.UnixNano()))
		return bucket(tx, bktTombstones).Put(bytes.Clone(t.Key), v[:])
	})
}

// Tombstone implements Store.
func (s *BoltStore) Tombstone(ctx context.Context, key []byte) (Tombstone, error) {
	var t Tombstone
	err := s.view(ctx, func(tx *bolt.Tx) error {
		if len(key) == 0 {
			return ErrNotFound
		}
		v := bucket(tx, bktTombstones).Get(key)
		if len(v) != 8 {
			return ErrNotFound
		}
		t = Tombstone{Key: bytes.Clone(key), Expires: time.Unix(0, int64(binary.BigEndian.Uint64(v)))}
		return nil
	})
	return t, err
}

// ExpireTombstones implements Store.
func (s *BoltStore) ExpireTombstones(ctx context.Context, before time.Time) (int, error) {
	n := 0
	err := s.update(ctx, func(tx *bolt.Tx) error {
		n = 0
		c := bucket(tx, bktTombstones).Cursor()
		for k, v := c.First(); k != nil; {
			if len(v) == 8 && int64(binary.BigEndian.Uint64(v)) < before.UnixNano() {
				if err := c.Delete(); err != nil {
					return err
				}
				n++
				k, v = c.Seek(k) // Delete moves the cursor; re-seek past k
				continue
			}
			k, v = c.Next()
		}
		return nil
	})
	return n, err
}

// LoadOrStoreSecret implements Store.
func (s *BoltStore) LoadOrStoreSecret(ctx context.Context, name string, value []byte) ([]byte, error) {
	var out []byte
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := bucket(tx, bktSecrets)
		if v := b.Get([]byte(name)); v != nil {
			out = bytes.Clone(v)
			return nil
		}
		out = bytes.Clone(value)
		return b.Put([]byte(name), out)
	})
	return out, err
}
