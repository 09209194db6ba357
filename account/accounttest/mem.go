package accounttest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"chatbx.eu/privacy/account"
)

// MemStore is an in-memory account.Store, the reference implementation of
// the contract TestStore checks. It is meant for tests and examples: all is
// lost when the process ends. The zero value is ready to use and safe for
// concurrent use. It finds skeletons by scanning every account, which is
// plenty for tests.
type MemStore struct {
	mu         sync.Mutex
	users      map[string]account.Record
	erasures   map[string]account.Erasure
	tombstones map[string]time.Time
	secrets    map[string][]byte
}

var _ account.Store = (*MemStore)(nil)

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{} }

// lock locks s, initializing a zero MemStore.
func (s *MemStore) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.users == nil {
		s.users = map[string]account.Record{}
		s.erasures = map[string]account.Erasure{}
		s.tombstones = map[string]time.Time{}
		s.secrets = map[string][]byte{}
	}
	return nil
}

func cloneErasure(e account.Erasure) account.Erasure {
	e.Done = slices.Clone(e.Done)
	return e
}

// Create implements account.Store.
func (s *MemStore) Create(ctx context.Context, r account.Record, tombstone []byte) error {
	if r.Username == "" {
		return fmt.Errorf("accounttest: empty username")
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.users[r.Username]; ok {
		return account.ErrExists
	}
	if r.Skeleton != "" {
		for _, u := range s.users {
			if u.Skeleton == r.Skeleton {
				return account.ErrExists
			}
		}
	}
	if exp, ok := s.tombstones[string(tombstone)]; ok && len(tombstone) > 0 && exp.After(r.Created) {
		return account.ErrExists
	}
	s.users[r.Username] = r
	return nil
}

// Get implements account.Store.
func (s *MemStore) Get(ctx context.Context, username string) (account.Record, error) {
	if err := s.lock(ctx); err != nil {
		return account.Record{}, err
	}
	defer s.mu.Unlock()
	r, ok := s.users[username]
	if !ok {
		return account.Record{}, account.ErrNotFound
	}
	return r, nil
}

// Update implements account.Store.
func (s *MemStore) Update(ctx context.Context, username string, fn func(*account.Record) error) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	r, ok := s.users[username]
	if !ok {
		return account.ErrNotFound
	}
	orig := r
	if err := fn(&r); err != nil {
		return err
	}
	if r.Username != orig.Username || r.Skeleton != orig.Skeleton || r.Deleting != orig.Deleting {
		return fmt.Errorf("accounttest: Update must not change Username, Skeleton or Deleting")
	}
	s.users[username] = r
	return nil
}

// BeginErasure implements account.Store.
func (s *MemStore) BeginErasure(ctx context.Context, e account.Erasure) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	r, ok := s.users[e.Username]
	if !ok {
		return account.ErrNotFound
	}
	if _, busy := s.erasures[e.Username]; busy || r.Deleting {
		return account.ErrExists
	}
	r.Deleting = true
	s.users[e.Username] = r
	s.erasures[e.Username] = cloneErasure(e)
	return nil
}

// Erasures implements account.Store.
func (s *MemStore) Erasures(ctx context.Context) ([]account.Erasure, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []account.Erasure
	for _, e := range s.erasures {
		out = append(out, cloneErasure(e))
	}
	slices.SortFunc(out, func(a, b account.Erasure) int {
		if c := a.Started.Compare(b.Started); c != 0 {
			return c
		}
		return strings.Compare(a.Username, b.Username)
	})
	return out, nil
}

// UpdateErasure implements account.Store.
func (s *MemStore) UpdateErasure(ctx context.Context, e account.Erasure) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.erasures[e.Username]; !ok {
		return account.ErrNotFound
	}
	s.erasures[e.Username] = cloneErasure(e)
	return nil
}

// FinishErasure implements account.Store.
func (s *MemStore) FinishErasure(ctx context.Context, username string, t account.Tombstone) error {
	if len(t.Key) == 0 {
		return fmt.Errorf("accounttest: empty tombstone key")
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.erasures[username]; !ok {
		return account.ErrNotFound
	}
	delete(s.erasures, username)
	delete(s.users, username)
	s.tombstones[string(t.Key)] = t.Expires
	return nil
}

// Tombstone implements account.Store.
func (s *MemStore) Tombstone(ctx context.Context, key []byte) (account.Tombstone, error) {
	if err := s.lock(ctx); err != nil {
		return account.Tombstone{}, err
	}
	defer s.mu.Unlock()
	exp, ok := s.tombstones[string(key)]
	if !ok || len(key) == 0 {
		return account.Tombstone{}, account.ErrNotFound
	}
	return account.Tombstone{Key: bytes.Clone(key), Expires: exp}, nil
}

// ExpireTombstones implements account.Store.
func (s *MemStore) ExpireTombstones(ctx context.Context, before time.Time) (int, error) {
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	n := 0
	for k, exp := range s.tombstones {
		if exp.Before(before) {
			delete(s.tombstones, k)
			n++
		}
	}
	return n, nil
}

// LoadOrStoreSecret implements account.Store.
func (s *MemStore) LoadOrStoreSecret(ctx context.Context, name string, value []byte) ([]byte, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if v, ok := s.secrets[name]; ok {
		return bytes.Clone(v), nil
	}
	s.secrets[name] = bytes.Clone(value)
	return bytes.Clone(value), nil
}
