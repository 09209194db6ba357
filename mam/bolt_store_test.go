package mam_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chatbx.eu/privacy/mam"
	"chatbx.eu/privacy/mam/mamtest"
	bolt "go.etcd.io/bbolt"
	"mellium.im/xmpp/jid"
)

func openDB(t testing.TB, path string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	db.NoSync = true // tests need no durability
	t.Cleanup(func() { db.Close() })
	return db
}

func newBoltStore(t testing.TB, cfg mam.BoltConfig) (*mam.BoltStore, *bolt.DB) {
	t.Helper()
	db := openDB(t, filepath.Join(t.TempDir(), "mam.db"))
	s, err := mam.NewBoltStore(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}

func TestBoltStore(t *testing.T) {
	for _, cfg := range []mam.BoltConfig{
		{},
		{EraseGroupMessages: true},
		{ExpireBatch: 3}, // expiry across many small transactions
		{CompactWithIndex: true},
	} {
		t.Run(fmt.Sprintf("%+v", cfg), func(t *testing.T) {
			mamtest.TestStore(t, func(t *testing.T) mam.Store {
				s, _ := newBoltStore(t, cfg)
				return s
			})
		})
	}
}

func TestNewBoltStoreNil(t *testing.T) {
	if _, err := mam.NewBoltStore(nil, mam.BoltConfig{}); !errors.Is(err, mam.ErrConfig) {
		t.Errorf("NewBoltStore(nil, BoltConfig{}) = %v, want ErrConfig", err)
	}
}

var (
	tA    = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	alice = jid.MustParse("alice@example.org")
	bob   = jid.MustParse("bob@example.org")
	room  = jid.MustParse("room@conference.example.org")
)

func msg(archive, with jid.JID, i int, body string) mam.Message {
	return mam.Message{Archive: archive, With: with, Time: tA.Add(time.Duration(i) * time.Second),
		Stanza: []byte("<message xmlns='jabber:client' type='chat'><body>" + body + "</body></message>")}
}

// dump returns every key and value in every bucket of db, nested buckets
// included, with their bucket path.
func dump(t testing.TB, db *bolt.DB) []string {
	t.Helper()
	var out []string
	var walk func(path string, b *bolt.Bucket) error
	walk = func(path string, b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				out = append(out, path+"/"+string(k)+" (bucket)")
				return walk(path+"/"+string(k), b.Bucket(k))
			}
			out = append(out, path+"/"+string(k)+" = "+string(v))
			return nil
		})
	}
	err := db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			out = append(out, string(name)+" (bucket)")
			return walk(string(name), b)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBoltEraseLeavesNothing guards the promise that Erase deletes every
// stored byte naming the user (archive, index entries, counters, prefs,
// real JIDs in room records), so that wiping freed pages is enough.
func TestBoltEraseLeavesNothing(t *testing.T) {
	for _, groupToo := range []bool{false, true} {
		t.Run(fmt.Sprintf("EraseGroupMessages=%v", groupToo), func(t *testing.T) {
			ctx := t.Context()
			s, db := newBoltStore(t, mam.BoltConfig{EraseGroupMessages: groupToo})
			victim := jid.MustParse("zed@example.org")
			for i := range 20 {
				mustAppend(t, s, msg(victim, jid.MustParse("bob@example.org/phone"), i, "ZEDSECRET"))
				mustAppend(t, s, msg(bob, jid.MustParse("carol@example.net/x"), i, "bobtalk"))
				g := msg(room, jid.MustParse("room@conference.example.org/zz"), i, "ZEDGROUP")
				g.Groupchat, g.RealJID = true, jid.MustParse("zed@example.org/laptop")
				mustAppend(t, s, g)
				g = msg(room, jid.MustParse("room@conference.example.org/bobby"), i, "bobgroup")
				g.Groupchat, g.RealJID = true, bob
				mustAppend(t, s, g)
			}
			if err := s.SetPrefs(ctx, victim, mam.Prefs{Default: mam.DefaultAlways, Never: []jid.JID{bob}}); err != nil {
				t.Fatal(err)
			}
			if err := s.Erase(ctx, victim); err != nil {
				t.Fatal(err)
			}
			for _, line := range dump(t, db) {
				if strings.Contains(line, "zed@") || strings.Contains(line, "ZEDSECRET") {
					t.Errorf("after erase the database still holds %q", line)
				}
				if groupToo && strings.Contains(line, "ZEDGROUP") {
					t.Errorf("after erase with EraseGroupMessages the database still holds %q", line)
				}
			}
			p, err := s.Query(ctx, room, mam.Query{Max: 100})
			if err != nil {
				t.Fatal(err)
			}
			want := 40
			if groupToo {
				want = 20
			}
			if len(p.Messages) != want || p.Count != want {
				t.Errorf("room keeps %d messages (count %d), want %d", len(p.Messages), p.Count, want)
			}
			bp, err := s.Query(ctx, bob, mam.Query{})
			if err != nil || len(bp.Messages) != 20 {
				t.Errorf("bob's archive after zed's erase: %d messages, %v", len(bp.Messages), err)
			}
		})
	}
}

// TestBoltExpireLeavesNothing guards that expiry deletes index entries,
// counters and real JIDs of the expired messages, and removes an archive
// bucket once it is empty.
func TestBoltExpireLeavesNothing(t *testing.T) {
	ctx := t.Context()
	s, db := newBoltStore(t, mam.BoltConfig{ExpireBatch: 7})
	for i := range 30 {
		mustAppend(t, s, msg(alice, jid.MustParse(fmt.Sprintf("peer%d@example.org/r", i)), i, fmt.Sprintf("OLD%d.", i)))
		g := msg(room, jid.MustParse("room@conference.example.org/x"), i, "OLDGROUP")
		g.Groupchat, g.RealJID = true, jid.MustParse(fmt.Sprintf("real%d@example.org", i))
		mustAppend(t, s, g)
	}
	keep := mustAppend(t, s, msg(alice, jid.MustParse("keeper@example.org/r"), 100, "KEEP"))
	var txs []int
	mam.SetExpireHook(s, func(n int, _ time.Duration) { txs = append(txs, n) })
	n, err := s.Expire(ctx, tA.Add(50*time.Second))
	if err != nil || n != 60 {
		t.Fatalf("Expire = %d, %v; want 60", n, err)
	}
	for _, x := range txs {
		if x > 7 {
			t.Errorf("an expiry transaction deleted %d messages, more than ExpireBatch 7", x)
		}
	}
	for _, line := range dump(t, db) {
		if strings.Contains(line, "OLD") ||
			(strings.Contains(line, "@") && !strings.Contains(line, "alice@") && !strings.Contains(line, "keeper@")) {
			t.Errorf("after expiry the database still holds %q", line)
		}
	}
	p, err := s.Query(ctx, alice, mam.Query{})
	if err != nil || len(p.Messages) != 1 || p.Messages[0].ID != keep.ID || p.Count != 1 {
		t.Errorf("after expiry: %+v, %v; want only %s", p, err, keep.ID)
	}
}

func mustAppend(t testing.TB, s mam.Store, m mam.Message) mam.Message {
	t.Helper()
	m, err := s.Append(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestBoltReopen guards durability across a restart: messages, ids,
// counters and prefs survive closing and reopening the file.
func TestBoltReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "mam.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := mam.NewBoltStore(db, mam.BoltConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 5 {
		want = append(want, mustAppend(t, s, msg(alice, bob, i, "x")).ID)
	}
	if err := s.SetPrefs(ctx, alice, mam.Prefs{Default: mam.DefaultRoster}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db = openDB(t, path)
	s, err = mam.NewBoltStore(db, mam.BoltConfig{})
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, mustAppend(t, s, msg(alice, bob, 5, "y")).ID)
	p, err := s.Query(ctx, alice, mam.Query{With: bob})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range p.Messages {
		got = append(got, m.ID)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") || p.Count != 6 {
		t.Errorf("after reopen: ids %v count %d, want %v", got, p.Count, want)
	}
	if pr, _ := s.Prefs(ctx, alice); pr.Default != mam.DefaultRoster {
		t.Errorf("prefs after reopen = %+v", pr)
	}
}

// TestBoltBadInput guards that bad input and corrupt records give errors,
// never a panic.
func TestBoltBadInput(t *testing.T) {
	ctx := t.Context()
	s, db := newBoltStore(t, mam.BoltConfig{})
	for _, when := range []time.Time{time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)} {
		m := msg(alice, bob, 0, "x")
		m.Time = when
		if _, err := s.Append(ctx, m); !errors.Is(err, mam.ErrBadRequest) {
			t.Errorf("Append at %v: %v, want ErrBadRequest", when, err)
		}
	}
	// Extreme query times select nothing or everything, without error.
	mustAppend(t, s, msg(alice, bob, 0, "x"))
	for _, q := range []mam.Query{
		{Start: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{End: time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Start: time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), End: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		if _, err := s.Query(ctx, alice, q); err != nil {
			t.Errorf("Query(%+v): %v", q, err)
		}
	}
	if n, err := s.Expire(ctx, time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)); n != 0 || err != nil {
		t.Errorf("Expire(year 1000) = %d, %v", n, err)
	}
	// Corrupt every message record: queries fail cleanly.
	err := db.Update(func(tx *bolt.Tx) error {
		m := tx.Bucket([]byte("mam.archives")).Bucket([]byte("alice@example.org")).Bucket([]byte("m"))
		return m.ForEach(func(k, v []byte) error { return m.Put(bytes.Clone(k), []byte{9, 9}) })
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Query(ctx, alice, mam.Query{}); err == nil {
		t.Error("Query over a corrupt record succeeded")
	}
	if _, err := s.Metadata(ctx, alice); err == nil {
		t.Error("Metadata over a corrupt record succeeded")
	}
	if _, err := s.Expire(ctx, tA.Add(time.Hour)); err == nil {
		t.Error("Expire over a corrupt record succeeded")
	}
}

// TestBoltWithIndexForms guards that an archive written partly with the
// compact and partly with the covering with index (a configuration change
// between restarts) answers With queries right with either configuration.
func TestBoltWithIndexForms(t *testing.T) {
	ctx := t.Context()
	db := openDB(t, filepath.Join(t.TempDir(), "mam.db"))
	compact, err := mam.NewBoltStore(db, mam.BoltConfig{CompactWithIndex: true})
	if err != nil {
		t.Fatal(err)
	}
	covering, err := mam.NewBoltStore(db, mam.BoltConfig{})
	if err != nil {
		t.Fatal(err)
	}
	phone := jid.MustParse("bob@example.org/phone")
	var want []string
	for i := range 10 {
		s, with := compact, phone
		if i%2 == 1 {
			s = covering
		}
		if i%3 == 0 {
			with = jid.MustParse("bob@example.org/laptop")
		}
		m := mustAppend(t, s, msg(alice, with, i, fmt.Sprintf("body %d", i)))
		if i%3 != 0 {
			want = append(want, m.ID)
		}
	}
	for _, s := range []*mam.BoltStore{compact, covering} {
		for _, q := range []mam.Query{{With: phone}, {With: phone, Last: true, Max: 3}} {
			p, err := s.Query(ctx, alice, q)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range p.Messages {
				got = append(got, m.ID)
				if !m.With.Equal(phone) || !strings.Contains(string(m.Stanza), "body") {
					t.Errorf("message %s: with %v, stanza %q", m.ID, m.With, m.Stanza)
				}
			}
			w := want
			if q.Last {
				w = want[len(want)-3:]
			}
			if strings.Join(got, ",") != strings.Join(w, ",") || p.Count != len(want) {
				t.Errorf("Query(%+v) = %v (count %d), want %v (count %d)", q, got, p.Count, w, len(want))
			}
		}
	}
}

// TestBoltReadOnly guards that a store on a read-only database reads and
// exports, and that failing appends (alone and group-committed) each get an
// error instead of hanging or being reported as stored.
func TestBoltReadOnly(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "mam.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := mam.NewBoltStore(db, mam.BoltConfig{})
	if err != nil {
		t.Fatal(err)
	}
	stored := mustAppend(t, s, msg(alice, bob, 0, "kept"))
	db.Close()

	db, err = bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err = mam.NewBoltStore(db, mam.BoltConfig{})
	if err != nil {
		t.Fatalf("NewBoltStore on a read-only database: %v", err)
	}
	p, err := s.Query(ctx, alice, mam.Query{})
	if err != nil || len(p.Messages) != 1 || p.Messages[0].ID != stored.ID {
		t.Fatalf("Query on a read-only database: %+v, %v", p, err)
	}
	var buf bytes.Buffer
	if err := s.Export(ctx, alice, &buf); err != nil || !strings.Contains(buf.String(), stored.ID) {
		t.Errorf("Export on a read-only database: %v", err)
	}
	const n = 16
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := s.Append(ctx, msg(alice, bob, i+1, "lost"))
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err == nil {
			t.Error("Append on a read-only database succeeded")
		}
	}
}
