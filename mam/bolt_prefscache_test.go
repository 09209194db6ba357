package mam

import (
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"mellium.im/xmpp/jid"
)

// TestPrefsCache: preferences are read from the file once; SetPrefs and
// Erase make the next read see the new value; a caller changing the lists
// it got does not change the cache; a read that raced a drop does not
// store a stale value.
func TestPrefsCache(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "mam.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := NewBoltStore(db, BoltConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	owner, peer := jid.MustParse("juliet@example.org"), jid.MustParse("romeo@example.org")
	if err := s.SetPrefs(ctx, owner, Prefs{Default: DefaultAlways, Never: []jid.JID{peer}}); err != nil {
		t.Fatal(err)
	}
	p, err := s.Prefs(ctx, owner)
	if err != nil || p.Default != DefaultAlways || len(p.Never) != 1 {
		t.Fatalf("prefs %+v %v", p, err)
	}
	p.Never[0] = owner // the caller's copy
	txs := db.Stats().TxN
	for range 3 {
		if p, _ = s.Prefs(ctx, owner); len(p.Never) != 1 || !p.Never[0].Equal(peer) {
			t.Fatalf("cached prefs %+v", p)
		}
	}
	if n := db.Stats().TxN - txs; n != 0 {
		t.Errorf("%d read transactions for cached preferences", n)
	}
	if err := s.SetPrefs(ctx, owner, Prefs{Default: DefaultRoster}); err != nil {
		t.Fatal(err)
	}
	if p, _ = s.Prefs(ctx, owner); p.Default != DefaultRoster || len(p.Never) != 0 {
		t.Fatalf("after SetPrefs: %+v", p)
	}
	if err := s.Erase(ctx, owner); err != nil {
		t.Fatal(err)
	}
	if p, _ = s.Prefs(ctx, owner); p.Default != "" {
		t.Fatalf("after Erase: %+v", p)
	}

	// A read that began before a drop does not store what it read.
	key := bareBytes(owner)
	_, _, gen := s.prefs.get(key)
	s.prefs.drop(key)
	s.prefs.put(key, Prefs{Default: DefaultAlways}, gen)
	if _, ok, _ := s.prefs.get(key); ok {
		t.Error("a stale read was cached")
	}
}
