package boltwipe_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"chatbx.eu/privacy/internal/boltwipe"
)

func openDB(t testing.TB, path string) *bolt.DB {
	t.Helper()
	return openDBWith(t, path, bolt.Options{})
}

func openDBWith(t testing.TB, path string, o bolt.Options) *bolt.DB {
	t.Helper()
	// A memory map larger than the test files, so that no commit has to
	// remap (which waits for open readers, see TestWipeWaitsForOldReaders).
	o.InitialMmapSize = 16 << 20
	// No fsync: the bytes these tests scan are the same in the page cache,
	// and the shared disk makes syncs slow. The crash test syncs for real.
	o.NoSync = true
	db, err := bolt.Open(path, 0o600, &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// forms returns the byte strings that reveal marker in a file: the marker
// itself, its hex encodings, and the part of its base64 encodings (standard
// and URL alphabets) that does not depend on the bytes around it, for each
// of the three alignments.
func forms(marker string) map[string][]byte {
	m := map[string][]byte{
		"plain": []byte(marker),
		"hex":   []byte(hex.EncodeToString([]byte(marker))),
		"HEX":   []byte(strings.ToUpper(hex.EncodeToString([]byte(marker)))),
	}
	for k := range 3 {
		src := append(bytes.Repeat([]byte{0}, k), marker...)
		for name, enc := range map[string]*base64.Encoding{"b64": base64.StdEncoding, "b64url": base64.URLEncoding} {
			s := enc.EncodeToString(src)
			from := (k + 2) / 3 * 4         // first group made only of marker bytes
			to := (k + len(marker)) / 3 * 4 // end of the last complete group
			if to-from >= 8 {
				m[fmt.Sprintf("%s/%d", name, k)] = []byte(s[from:to])
			}
		}
	}
	return m
}

// hits counts, per form, the occurrences of marker in the raw bytes of the
// file at path.
func hits(t testing.TB, path, marker string) map[string]int {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for name, f := range forms(marker) {
		if n := bytes.Count(raw, f); n > 0 {
			out[name] = n
		}
	}
	return out
}

// user holds the data one user leaves in a store, in every shape bbolt can
// keep it: keys, small values, values spanning overflow pages, inline and
// nested buckets, a per-user bucket named after the user, and values
// written, overwritten and deleted over many transactions.
type user struct {
	name   string // the marker: also the account name
	token  string // a second marker, stored base64-encoded
	secret string // a third marker, stored hex-encoded
}

func newUser(name string, r *rand.Rand) user {
	return user{
		name:   fmt.Sprintf("%s-%016x@example.org", name, r.Uint64()),
		token:  fmt.Sprintf("tok-%s-%016x", name, r.Uint64()),
		secret: fmt.Sprintf("sec-%s-%016x", name, r.Uint64()),
	}
}

func (u user) markers() []string { return []string{u.name, u.token, u.secret} }

// populate writes u's data in many transactions and returns what must be
// readable afterwards, keyed by bucket path and key.
func populate(t testing.TB, db *bolt.DB, u user, r *rand.Rand) map[string]string {
	t.Helper()
	want := map[string]string{}
	put := func(tx *bolt.Tx, path []string, k, v []byte) {
		t.Helper()
		b, err := tx.CreateBucketIfNotExists([]byte(path[0]))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range path[1:] {
			if b, err = b.CreateBucketIfNotExists([]byte(p)); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Put(k, v); err != nil {
			t.Fatal(err)
		}
		want[strings.Join(path, "/")+"|"+string(k)] = string(v)
	}
	update := func(fn func(tx *bolt.Tx)) {
		t.Helper()
		if err := db.Update(func(tx *bolt.Tx) error { fn(tx); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	// The account: name as key, secret hex-encoded, token base64-encoded.
	update(func(tx *bolt.Tx) {
		put(tx, []string{"accounts"}, []byte(u.name), []byte(hex.EncodeToString([]byte(u.secret))))
		put(tx, []string{"tokens"}, fmt.Appendf(nil, "%016x", r.Uint64()), []byte(base64.StdEncoding.EncodeToString([]byte(u.token))))
		// An inline bucket (small enough to live inside its parent's page).
		put(tx, []string{"prefs", u.name}, []byte("default"), []byte("roster"))
	})
	// An archive in many transactions: small bodies, some large ones that
	// span overflow pages, and a nested per-conversation bucket.
	for i := range 60 {
		update(func(tx *bolt.Tx) {
			for j := range 5 {
				var k [8]byte
				binary.BigEndian.PutUint64(k[:], uint64(i*5+j))
				body := fmt.Sprintf("message %d from %s: %x", i*5+j, u.name, r.Uint64())
				put(tx, []string{"archive", u.name}, k[:], []byte(body))
			}
			if i%10 == 0 {
				large := make([]byte, 3*4096+r.IntN(4096))
				for p := 0; p+len(u.secret) < len(large); p += 700 {
					copy(large[p:], u.secret)
				}
				put(tx, []string{"archive", u.name, "with"}, fmt.Appendf(nil, "large-%d", i), large)
			}
		})
	}
	// A value overwritten many times: each old version is a freed page.
	for i := range 20 {
		update(func(tx *bolt.Tx) {
			put(tx, []string{"status"}, []byte(u.name), fmt.Appendf(nil, "status %d of %s", i, u.token))
		})
	}
	return want
}

// erase deletes every trace of u through the bbolt API, as a store would.
func erase(t testing.TB, db *bolt.DB, u user, all map[string]string) {
	t.Helper()
	err := db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket([]byte("archive")).DeleteBucket([]byte(u.name)); err != nil {
			return err
		}
		if err := tx.Bucket([]byte("prefs")).DeleteBucket([]byte(u.name)); err != nil {
			return err
		}
		if err := tx.Bucket([]byte("accounts")).Delete([]byte(u.name)); err != nil {
			return err
		}
		if err := tx.Bucket([]byte("status")).Delete([]byte(u.name)); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The token is found by value, as a store would look it up.
	err = db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte("tokens")).Cursor()
		enc := base64.StdEncoding.EncodeToString([]byte(u.token))
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if string(v) == enc {
				delete(all, "tokens|"+string(k))
				return c.Delete()
			}
		}
		return errors.New("token not found")
	})
	if err != nil {
		t.Fatal(err)
	}
}

// contents returns every key/value of db keyed as populate does.
func contents(t testing.TB, db *bolt.DB) map[string]string {
	t.Helper()
	got := map[string]string{}
	var walk func(path []string, b *bolt.Bucket) error
	walk = func(path []string, b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				return walk(append(path, string(k)), b.Bucket(k))
			}
			got[strings.Join(path, "/")+"|"+string(k)] = string(v)
			return nil
		})
	}
	err := db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return walk([]string{string(name)}, b)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func check(t testing.TB, db *bolt.DB) {
	t.Helper()
	err := db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("consistency check: %v", err)
	}
}

func equalMaps(t testing.TB, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("missing %q", k)
		} else if g != v {
			t.Errorf("%q changed", k)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected %q", k)
		}
	}
}

type fixture struct {
	path       string
	db         *bolt.DB
	alice, bob user
	bobData    map[string]string
}

// newFixture writes alice's and bob's data, interleaved, then erases alice.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	return newFixtureWith(t, bolt.Options{})
}

func newFixtureWith(t testing.TB, o bolt.Options) *fixture {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	f := &fixture{path: filepath.Join(t.TempDir(), "store.db")}
	f.db = openDBWith(t, f.path, o)
	f.alice, f.bob = newUser("alice", r), newUser("bob", r)
	aliceData := populate(t, f.db, f.alice, r)
	f.bobData = populate(t, f.db, f.bob, r)
	for _, m := range f.alice.markers() {
		if len(hits(t, f.path, m)) == 0 {
			t.Fatalf("marker %s not in the file before erasure: the scan is broken", m)
		}
	}
	erase(t, f.db, f.alice, aliceData)
	return f
}

func (f *fixture) aliceHits(t testing.TB) map[string]map[string]int {
	t.Helper()
	out := map[string]map[string]int{}
	for _, m := range f.alice.markers() {
		if h := hits(t, f.path, m); len(h) > 0 {
			out[m] = h
		}
	}
	return out
}

func (f *fixture) verifyBob(t testing.TB) {
	t.Helper()
	equalMaps(t, contents(t, f.db), f.bobData)
	for _, m := range f.bob.markers() {
		if len(hits(t, f.path, m)) == 0 {
			t.Errorf("bob's marker %s is gone from the file", m)
		}
	}
}

func TestResidueWithoutWipe(t *testing.T) {
	// The problem Wipe solves: after an ordinary delete, bbolt leaves the
	// deleted bytes in free pages. If this ever stops failing, bbolt has
	// started wiping pages itself.
	f := newFixture(t)
	h := f.aliceHits(t)
	if len(h) == 0 {
		t.Fatal("no residue after delete: bbolt now wipes freed pages?")
	}
	t.Logf("residue after delete, before wipe: %v", h)
}

func TestWipeRemovesResidue(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts bolt.Options
	}{
		{"default", bolt.Options{}},
		{"no-freelist-sync", bolt.Options{NoFreelistSync: true}},
		{"hashmap-freelist", bolt.Options{FreelistType: bolt.FreelistMapType}},
	} {
		t.Run(tc.name, func(t *testing.T) { testWipeRemovesResidue(t, tc.opts) })
	}
}

func testWipeRemovesResidue(t *testing.T, o bolt.Options) {
	f := newFixtureWith(t, o)
	pages, err := boltwipe.Wipe(t.Context(), f.db)
	if err != nil {
		t.Fatal(err)
	}
	if pages == 0 {
		t.Fatal("Wipe reported 0 pages although alice's pages were free")
	}
	if h := f.aliceHits(t); len(h) > 0 {
		t.Fatalf("alice still in the file after Wipe: %v", h)
	}
	f.verifyBob(t)
	check(t, f.db)
	if err := f.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(boltwipe.ScratchBucket) != nil {
			return errors.New("scratch bucket left behind")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// And after a reopen (the freelist is read back from the file).
	if err := f.db.Close(); err != nil {
		t.Fatal(err)
	}
	f.db = openDBWith(t, f.path, o)
	check(t, f.db)
	f.verifyBob(t)
	if h := f.aliceHits(t); len(h) > 0 {
		t.Fatalf("alice in the file after reopen: %v", h)
	}
}

func TestWipeSmallTransactions(t *testing.T) {
	// Many rounds of a few pages each must reach the same result.
	f := newFixture(t)
	rounds := 0
	_, err := boltwipe.WipeOptions(t.Context(), f.db, boltwipe.Options{
		PagesPerTx: 3,
		Progress:   func(int) { rounds++ },
	})
	if err != nil {
		t.Fatal(err)
	}
	if rounds < 10 {
		t.Fatalf("only %d rounds with 3 pages per transaction", rounds)
	}
	if h := f.aliceHits(t); len(h) > 0 {
		t.Fatalf("alice still in the file: %v", h)
	}
	f.verifyBob(t)
	check(t, f.db)
}

func TestWipeWithConcurrentWriters(t *testing.T) {
	// Writers keep going during the wipe; data erased before Wipe began is
	// gone when it returns, and the writers' data is intact.
	f := newFixture(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan map[string]string)
	go func() {
		extra := map[string]string{}
		for i := 0; ctx.Err() == nil; i++ {
			k, v := fmt.Sprintf("k%06d", i), fmt.Sprintf("v%06d", i)
			err := f.db.Update(func(tx *bolt.Tx) error {
				b, err := tx.CreateBucketIfNotExists([]byte("concurrent"))
				if err != nil {
					return err
				}
				if i%3 == 2 { // also free pages while the wipe runs
					prev := fmt.Sprintf("k%06d", i-1)
					delete(extra, "concurrent|"+prev)
					if err := b.Delete([]byte(prev)); err != nil {
						return err
					}
				}
				return b.Put([]byte(k), []byte(v))
			})
			if err != nil {
				t.Error(err)
				break
			}
			extra["concurrent|"+k] = v
		}
		done <- extra
	}()
	_, err := boltwipe.WipeOptions(t.Context(), f.db, boltwipe.Options{PagesPerTx: 4})
	cancel()
	extra := <-done
	if err != nil {
		t.Fatal(err)
	}
	if h := f.aliceHits(t); len(h) > 0 {
		t.Fatalf("alice still in the file: %v", h)
	}
	for k, v := range extra {
		f.bobData[k] = v
	}
	f.verifyBob(t)
	check(t, f.db)
}

func TestWipeWaitsForOldReaders(t *testing.T) {
	f := newFixture(t)
	// Re-create the situation with a reader that predates the erasure.
	r := rand.New(rand.NewPCG(3, 4))
	carol := newUser("carol", r)
	carolData := populate(t, f.db, carol, r)
	reader, err := f.db.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	erase(t, f.db, carol, carolData)
	// bbolt cannot grow its memory map while a reader is open, and this
	// reader lives in the goroutine that wipes: openDB maps 16 MiB ahead.
	t.Cleanup(func() { reader.Rollback() }) // before the DB closes

	waits := 0
	_, err = boltwipe.WipeOptions(t.Context(), f.db, boltwipe.Options{
		Attempts: 3,
		Wait:     func(context.Context, int) error { waits++; return nil },
	})
	if !errors.Is(err, boltwipe.ErrReadersOpen) {
		t.Fatalf("Wipe with an old reader open = %v, want ErrReadersOpen", err)
	}
	if waits != 2 {
		t.Fatalf("waited %d times, want 2", waits)
	}
	// Alice was erased before the reader began: she is gone already.
	if h := f.aliceHits(t); len(h) > 0 {
		t.Fatalf("alice still in the file: %v", h)
	}
	if err := reader.Rollback(); err != nil {
		t.Fatal(err)
	}
	if _, err := boltwipe.Wipe(t.Context(), f.db); err != nil {
		t.Fatal(err)
	}
	for _, m := range carol.markers() {
		if h := hits(t, f.path, m); len(h) > 0 {
			t.Fatalf("carol still in the file after the reader ended: %s %v", m, h)
		}
	}
	f.verifyBob(t)
	check(t, f.db)
}

func TestWipeCancelled(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := boltwipe.Wipe(ctx, f.db); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wipe = %v, want context.Canceled", err)
	}
	f.verifyBob(t) // no scratch bucket left, nothing lost
	check(t, f.db)
}

func TestNothingPastHighWaterMark(t *testing.T) {
	f := newFixture(t)
	var hwm int64
	if err := f.db.View(func(tx *bolt.Tx) error { hwm = tx.Size(); return nil }); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(raw)) <= hwm {
		t.Fatalf("file (%d) not larger than the high-water mark (%d): test cannot see the tail", len(raw), hwm)
	}
	if i := bytes.IndexFunc(raw[hwm:], func(r rune) bool { return r != 0 }); i >= 0 {
		t.Fatalf("bbolt left data at %d, past the high-water mark %d", hwm+int64(i), hwm)
	}
}

func TestWipeScrubsTail(t *testing.T) {
	// A commit that crashed after writing its pages, before its meta page,
	// leaves bytes past the high-water mark. Simulate one.
	f := newFixture(t)
	var hwm int64
	if err := f.db.View(func(tx *bolt.Tx) error { hwm = tx.Size(); return nil }); err != nil {
		t.Fatal(err)
	}
	file, err := os.OpenFile(f.path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	info, err := file.Stat()
	if err != nil {
		t.Fatal(err)
	}
	// Far past the mark, out of reach of the pages the wipe itself appends.
	at := info.Size() - 2*4096 + 17
	if at < hwm+1024*4096 {
		t.Fatalf("file %d bytes, high-water mark %d: no room for a far tail", info.Size(), hwm)
	}
	junk := []byte("uncommitted " + f.alice.name)
	if _, err := file.WriteAt(junk, at); err != nil {
		t.Fatal(err)
	}
	file.Close()
	if _, err := boltwipe.Wipe(t.Context(), f.db); err != nil {
		t.Fatal(err)
	}
	if h := f.aliceHits(t); len(h) > 0 {
		t.Fatalf("alice still in the file: %v", h)
	}
	f.verifyBob(t)
	check(t, f.db)
}

func TestWipeReadOnly(t *testing.T) {
	f := newFixture(t)
	f.db.Close()
	db, err := bolt.Open(f.path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := boltwipe.Wipe(t.Context(), db); !errors.Is(err, berrors.ErrDatabaseReadOnly) {
		t.Fatalf("Wipe on a read-only DB = %v", err)
	}
}

func TestWipeWithConcurrentReaders(t *testing.T) {
	// Readers keep reading bob's data while the wipe fills free pages: they
	// always see it whole. When the wipe needs an instant without readers,
	// its Wait hook pauses them, as their ending would on a real server.
	f := newFixture(t)
	pause, paused := make(chan struct{}), make(chan struct{})
	stop := make(chan struct{})
	views := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-pause:
				paused <- struct{}{}
				<-stop
				return
			default:
			}
			got := contents(t, f.db)
			for k, v := range f.bobData {
				if got[k] != v {
					t.Errorf("reader saw %q changed or missing during the wipe", k)
					break // keep serving pause, so the wipe cannot block
				}
			}
			views++
		}
	}()
	waits := 0
	_, err := boltwipe.WipeOptions(t.Context(), f.db, boltwipe.Options{
		PagesPerTx: 2,
		Wait: func(context.Context, int) error {
			if waits++; waits == 1 {
				pause <- struct{}{}
				<-paused
			}
			return nil
		},
	})
	close(stop)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if views == 0 {
		t.Fatal("no read ran during the wipe")
	}
	t.Logf("%d full reads during the wipe, %d waits", views, waits)
	if h := f.aliceHits(t); len(h) > 0 {
		t.Fatalf("alice still in the file: %v", h)
	}
	f.verifyBob(t)
	check(t, f.db)
}

func TestMetaAndFreelistPagesHoldNoData(t *testing.T) {
	// The two meta pages and the freelist page, which the fill cannot take
	// (the meta pages are fixed, the current freelist page is live), hold
	// only page numbers and counters: never any user's bytes.
	f := newFixture(t)
	raw, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	ps := f.db.Info().PageSize
	kinds := map[string]int{}
	err = f.db.View(func(tx *bolt.Tx) error {
		for id := 0; int64(id)*int64(ps) < tx.Size(); id++ {
			info, err := tx.Page(id)
			if err != nil {
				return err
			}
			if info == nil || (info.Type != "meta" && info.Type != "freelist") {
				continue
			}
			kinds[info.Type]++
			page := raw[id*ps : (id+1+info.OverflowCount)*ps]
			for _, u := range []user{f.alice, f.bob} {
				for _, m := range u.markers() {
					for name, form := range forms(m) {
						if bytes.Contains(page, form) {
							t.Errorf("%s page %d holds %s (%s)", info.Type, id, m, name)
						}
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if kinds["meta"] != 2 || kinds["freelist"] != 1 {
		t.Fatalf("found pages %v, want 2 meta and 1 freelist", kinds)
	}
}

func TestWipeEndsWithReadersAfterClean(t *testing.T) {
	// Once the pages freed before Wipe are released, readers that began
	// later must not keep the wipe from ending (nor fail it): they can pin
	// only pages freed after Wipe began.
	f := newFixture(t)
	resume := make(chan struct{})
	stop := make(chan struct{})
	done := make(chan struct{})
	held := make(chan struct{})
	go func() {
		// After resume, keep a read transaction open until stop.
		defer close(done)
		select {
		case <-resume:
		case <-stop:
			return
		}
		tx, err := f.db.Begin(false)
		if err != nil {
			t.Error(err)
			close(held)
			return
		}
		close(held)
		<-stop
		tx.Rollback()
	}()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	fills := 0
	_, err := boltwipe.WipeOptions(ctx, f.db, boltwipe.Options{
		PagesPerTx: 4, // many rounds after the clean one
		Progress: func(int) {
			fills++
			if fills == 3 { // round 3: the wipe is clean by now
				close(resume)
				<-held
			}
			if fills > 1000 {
				cancel() // the wipe would never end
			}
		},
	})
	close(stop)
	<-done
	if err != nil {
		t.Fatalf("Wipe = %v after %d fills", err, fills)
	}
	if h := f.aliceHits(t); len(h) > 0 {
		t.Fatalf("alice still in the file: %v", h)
	}
	f.verifyBob(t)
	check(t, f.db)
}

func TestWipeWhileWritersRemap(t *testing.T) {
	// Writers that grow the file remap it while Wipe runs, and Wipe's own
	// fills remap it too: the database stays consistent. Wipe must not read
	// bbolt's memory map unlocked meanwhile; the race detector sees that
	// only when a remap falls in the window, so this is a smoke test.
	path := filepath.Join(t.TempDir(), "grow.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stop := make(chan struct{})
	done := make(chan error)
	go func() {
		val := make([]byte, 64<<10)
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			err := db.Update(func(tx *bolt.Tx) error {
				b, err := tx.CreateBucketIfNotExists([]byte("grow"))
				if err != nil {
					return err
				}
				return b.Put(binary.BigEndian.AppendUint64(nil, uint64(i)), val)
			})
			if err != nil {
				done <- err
				return
			}
		}
	}()
	for range 20 {
		if _, err := boltwipe.Wipe(t.Context(), db); err != nil {
			t.Error(err)
			break
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	check(t, db)
}
