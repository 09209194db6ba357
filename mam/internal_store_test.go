package mam

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"mellium.im/xmpp/jid"
)

// SetExpireHook sets a function called after each committed Expire
// transaction with the number of messages it deleted and its duration.
func SetExpireHook(s *BoltStore, f func(removed int, took time.Duration)) { s.expireTx = f }

// FuzzDecodeRecord guards that a damaged record gives an error, never a
// panic, and that a decoded record stays within its value.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(flagGroupchat, make([]byte, rawIDLen), "bob@example.org/x", []byte("<message/>")))
	f.Add([]byte{recordVersion, 0})
	f.Fuzz(func(t *testing.T, v []byte) {
		rec, err := decodeRecord(v)
		if err != nil {
			return
		}
		if len(rec.id) != rawIDLen || len(rec.with)+len(rec.stanza)+rawIDLen+2 > len(v) {
			t.Fatalf("decoded %+v from %d bytes", rec, len(v))
		}
		withEntry(v)
	})
}

// TestBoltExpireBoundedCancel guards that Expire commits in transactions of at
// most ExpireBatch messages, oldest first, and that a cancellation between
// them leaves a consistent archive without holes.
func TestBoltExpireBoundedCancel(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "mam.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.NoSync = true
	s, err := NewBoltStore(db, BoltConfig{ExpireBatch: 4})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	owner := jid.MustParse("alice@example.org")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var all []Message
	for i := range 10 {
		m, err := s.Append(ctx, Message{Archive: owner, With: jid.MustParse("bob@example.org"),
			Time: t0.Add(time.Duration(i) * time.Second), Stanza: []byte("<message/>")})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, m)
	}
	var sizes []int
	s.expireTx = func(n int, _ time.Duration) {
		sizes = append(sizes, n)
		if len(sizes) == 2 {
			cancel()
		}
	}
	n, err := s.Expire(ctx, t0.Add(time.Hour))
	if !errors.Is(err, context.Canceled) || n != 8 || !slices.Equal(sizes, []int{4, 4}) {
		t.Fatalf("Expire = %d, %v after transactions %v; want 8, context.Canceled, [4 4]", n, err, sizes)
	}
	p, err := s.Query(t.Context(), owner, Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Messages) != 2 || p.Messages[0].ID != all[8].ID || p.Messages[1].ID != all[9].ID || p.Count != 2 {
		t.Errorf("after a cancelled expiry: %d messages (count %d), want the newest 2", len(p.Messages), p.Count)
	}
}

// TestBoltVisibleCount guards the count a query without With and
// IncludeGroupchat reads from the m bucket's sequence (see boltAddCounts):
// it follows appends of chat and groupchat messages, Expire and Erase of
// group messages; a sequence this store never set gives an unknown count,
// never a wrong one.
func TestBoltVisibleCount(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "mam.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.NoSync = true
	s, err := NewBoltStore(db, BoltConfig{ExpireBatch: 2, EraseGroupMessages: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	alice := jid.MustParse("alice@example.org")
	bob := jid.MustParse("bob@example.org")
	room := jid.MustParse("room@conference.example.org")
	occupant := jid.MustParse("room@conference.example.org/bob")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	// alice: chats at 0, 2, 4, 6, 8 and group messages at 1, 3, 5, 7, 9.
	for i := range 10 {
		m := Message{Archive: alice, With: bob, Time: at(i), Stanza: []byte("<message/>")}
		if i%2 == 1 {
			m.With, m.Groupchat = occupant, true
		}
		if _, err := s.Append(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	// The room: records of bob at 0..3.
	for i := range 4 {
		m := Message{Archive: room, With: occupant, RealJID: bob, Groupchat: true, Time: at(i), Stanza: []byte("<message/>")}
		if _, err := s.Append(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	counts := func(what string, archive jid.JID, want, wantAll int) {
		t.Helper()
		for _, q := range []Query{{Max: 1}, {Max: 1, IncludeGroupchat: true}} {
			p, err := s.Query(ctx, archive, q)
			w := want
			if q.IncludeGroupchat {
				w = wantAll
			}
			if err != nil || p.Count != w {
				t.Errorf("%s, IncludeGroupchat %v: Count = %d, %v; want %d", what, q.IncludeGroupchat, p.Count, err, w)
			}
		}
	}
	counts("appended", alice, 5, 10)
	counts("room", room, 4, 4)
	if _, err := s.Expire(ctx, at(5)); err != nil { // 0..4 in transactions of 2
		t.Fatal(err)
	}
	counts("expired", alice, 2, 5)
	counts("room expired", room, 0, 0)
	for i := 10; i < 13; i++ {
		if _, err := s.Append(ctx, Message{Archive: room, With: occupant, RealJID: bob, Groupchat: true, Time: at(i), Stanza: []byte("<message/>")}); err != nil {
			t.Fatal(err)
		}
	}
	counts("room refilled", room, 3, 3)
	if err := s.Erase(ctx, bob); err != nil { // deletes bob's records in the room
		t.Fatal(err)
	}
	counts("room erased", room, 0, 0)

	// Every append sets the sequence; without it the count is unknown.
	err = db.Update(func(tx *bolt.Tx) error {
		return boltOpenArchive(tx, []byte("alice@example.org")).msgs.SetSequence(0)
	})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := s.Query(ctx, alice, Query{Max: 1}); err != nil || p.Count != -1 {
		t.Errorf("sequence not set: Count = %d, %v; want -1", p.Count, err)
	}
}

// TestEncodeID guards that the page fill encodes ids exactly as idString
// (base64.RawURLEncoding), for every value of every byte position.
func TestEncodeID(t *testing.T) {
	raws := [][]byte{make([]byte, rawIDLen), bytes.Repeat([]byte{0xff}, rawIDLen)}
	for pos := range rawIDLen {
		for v := range 256 {
			raw := make([]byte, rawIDLen)
			raw[pos] = byte(v)
			raws = append(raws, raw)
		}
	}
	for _, raw := range raws {
		var got [idLen]byte
		encodeID(&got, raw)
		if want := idString(raw); string(got[:]) != want {
			t.Fatalf("encodeID(%x) = %s, want %s", raw, got[:], want)
		}
	}
}
