package account_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"chatbx.eu/privacy/account"
	"mellium.im/xmpp/jid"
)

func TestDelete(t *testing.T) {
	mam, upload := newHolder("mam"), newHolder("upload")
	e := newEnv(t, account.Config{Holders: []account.Holder{mam, upload}, TombstoneTTL: 30 * 24 * time.Hour})
	e.seed(t, "alice", "bob")
	for _, u := range []string{"alice@example.org", "bob@example.org"} {
		mam.put(u, "messages")
		upload.put(u, "files")
	}
	if err := e.m.Delete(ctx, "Alice"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if mam.has("alice@example.org") || upload.has("alice@example.org") {
		t.Fatal("a Holder still has alice's data")
	}
	if !slices.Equal(mam.seen, []string{"alice@example.org"}) {
		t.Fatalf("mam.Erase called with %v, want the bare user JID once", mam.seen)
	}
	if _, err := e.m.Get(ctx, "alice"); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("Get after Delete = %v", err)
	}
	if _, err := e.store.Get(ctx, "alice"); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("store still has the record: %v", err)
	}
	if list, _ := e.store.Erasures(ctx); len(list) != 0 {
		t.Fatalf("journal = %+v, want empty", list)
	}
	if err := e.m.Authenticate(ctx, "k", "alice", "lilac-sky-1"); err != account.ErrAuth {
		t.Fatalf("Authenticate after Delete = %v", err)
	}
	// Other users untouched.
	if !mam.has("bob@example.org") || !upload.has("bob@example.org") {
		t.Fatal("Delete erased another user's data")
	}
	if err := e.m.Authenticate(ctx, "k", "bob", "lilac-sky-1"); err != nil {
		t.Fatalf("bob after alice's Delete: %v", err)
	}
	// Idempotent: a second Delete and a Delete of an unknown user.
	if err := e.m.Delete(ctx, "alice"); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("second Delete = %v, want ErrNotFound", err)
	}
	if err := e.m.Delete(ctx, "nobody"); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("Delete(unknown) = %v, want ErrNotFound", err)
	}
	if err := e.m.Delete(ctx, "\xff"); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("Delete(invalid) = %v, want ErrNotFound", err)
	}
	// Tombstone: the name is reserved for TombstoneTTL, then free.
	if err := e.m.Register(ctx, "k", "ALICE", "lilac-sky-2"); !errors.Is(err, account.ErrExists) {
		t.Fatalf("re-register a deleted name = %v, want ErrExists", err)
	}
	e.clock.Add(30*24*time.Hour - time.Second)
	if err := e.m.Register(ctx, "k2", "alice", "lilac-sky-2"); !errors.Is(err, account.ErrExists) {
		t.Fatalf("re-register just before the tombstone expires = %v, want ErrExists", err)
	}
	e.clock.Add(2 * time.Second)
	if err := e.m.Register(ctx, "k3", "alice", "lilac-sky-2"); err != nil {
		t.Fatalf("re-register after the tombstone expired: %v", err)
	}
	e.noSecrets(t, "alice", "bob", "lilac-sky-1")
}

func TestTombstoneHoldsNoName(t *testing.T) {
	store := newBoltStore(t)
	key := []byte("0123456789abcdef0123456789abcdef")
	m, err := account.NewManager(store, account.Config{Params: fast, TombstoneKey: key})
	if err != nil {
		t.Fatal(err)
	}
	mustRegister(t, m, "alice", "lilac-sky-1")
	if err := m.Delete(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	// The tombstone is found under the HMAC of the name, not the name.
	if _, err := store.Tombstone(ctx, []byte("alice")); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("tombstone keyed by the plain name: %v", err)
	}
	// A Manager with another key does not recognize it: it is keyed.
	other, err := account.NewManager(store, account.Config{Params: fast, TombstoneKey: []byte("another key, 16+ bytes long")})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Register(ctx, "k", "alice", "lilac-sky-1"); err != nil {
		t.Fatalf("tombstone matched under another key: %v", err)
	}
}

func TestTombstoneKeyPersisted(t *testing.T) {
	e := newEnv(t, account.Config{})
	e.seed(t, "alice")
	if err := e.m.Delete(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	// A restarted Manager (no TombstoneKey configured) reads the same key.
	e.with(t, account.Config{})
	if err := e.m.Register(ctx, "k", "alice", "lilac-sky-1"); !errors.Is(err, account.ErrExists) {
		t.Fatalf("after restart, re-register = %v, want ErrExists", err)
	}
	n, err := e.m.ExpireTombstones(ctx, e.clock.Now().Add(366*24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("ExpireTombstones = %d, %v", n, err)
	}
}

func TestDeleteHolderFailure(t *testing.T) {
	mam, upload, roster := newHolder("mam"), newHolder("upload"), newHolder("roster")
	upload.fail = 1000
	e := newEnv(t, account.Config{Holders: []account.Holder{mam, upload, roster}, EraseAttempts: 4})
	e.seed(t, "alice")
	for _, h := range []*memHolder{mam, upload, roster} {
		h.put("alice@example.org", "data")
	}
	err := e.m.Delete(ctx, "alice")
	if !errors.Is(err, account.ErrErasureIncomplete) || !errors.Is(err, upload.errs) {
		t.Fatalf("Delete = %v, want ErrErasureIncomplete wrapping the holder's error", err)
	}
	if upload.calls() != 4 {
		t.Fatalf("failing holder tried %d times, want EraseAttempts = 4", upload.calls())
	}
	// The other holders still erased: one failure does not stop the rest.
	if mam.has("alice@example.org") || roster.has("alice@example.org") {
		t.Fatal("healthy holders did not erase")
	}
	// Disabled at once and kept in the journal.
	if err := e.m.Authenticate(ctx, "k", "alice", "lilac-sky-1"); err != account.ErrAuth {
		t.Fatalf("Authenticate during an incomplete deletion = %v, want ErrAuth", err)
	}
	if _, err := e.m.Get(ctx, "alice"); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("Get = %v, want ErrNotFound", err)
	}
	if err := e.m.Register(ctx, "k", "alice", "lilac-sky-1"); !errors.Is(err, account.ErrExists) {
		t.Fatalf("Register = %v, want ErrExists", err)
	}
	list, _ := e.store.Erasures(ctx)
	if len(list) != 1 || !slices.Equal(list[0].Done, []string{"mam", "roster"}) || list[0].Attempts != 1 {
		t.Fatalf("journal = %+v, want alice with mam and roster done, 1 attempt", list)
	}
	if logs := e.logText(); !strings.Contains(logs, "upload") || !strings.Contains(logs, "holder failed") {
		t.Fatalf("failure not logged:\n%s", logs)
	}

	// Resume retries only what is left.
	mam.seen = nil
	if err := e.m.Resume(ctx); !errors.Is(err, account.ErrErasureIncomplete) {
		t.Fatalf("Resume with the holder still down = %v", err)
	}
	upload.mu.Lock()
	upload.fail = 0
	upload.mu.Unlock()
	if err := e.m.Resume(ctx); err != nil {
		t.Fatalf("Resume after recovery: %v", err)
	}
	if mam.calls() != 0 {
		t.Fatal("Resume erased a holder again that was done")
	}
	if upload.has("alice@example.org") {
		t.Fatal("upload still has the data")
	}
	if list, _ := e.store.Erasures(ctx); len(list) != 0 {
		t.Fatalf("journal after Resume = %+v", list)
	}
	if _, err := e.store.Get(ctx, "alice"); !errors.Is(err, account.ErrNotFound) {
		t.Fatal("record left after Resume")
	}
	e.noSecrets(t, "alice", "lilac-sky-1")
}

func TestDeleteContinuesInterrupted(t *testing.T) {
	// A second Delete of a name whose erasure failed continues it.
	upload := newHolder("upload")
	upload.fail = 1
	e := newEnv(t, account.Config{Holders: []account.Holder{upload}, EraseAttempts: 1})
	e.seed(t, "alice")
	if err := e.m.Delete(ctx, "alice"); !errors.Is(err, account.ErrErasureIncomplete) {
		t.Fatalf("first Delete = %v", err)
	}
	if err := e.m.Delete(ctx, "alice"); err != nil {
		t.Fatalf("second Delete = %v", err)
	}
	if err := e.m.Delete(ctx, "alice"); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("third Delete = %v", err)
	}
}

func TestDeleteConcurrent(t *testing.T) {
	mam := newHolder("mam")
	e := newEnv(t, account.Config{Holders: []account.Holder{mam}})
	e.seed(t, "alice")
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				errs[i] = e.m.Delete(ctx, "alice")
			} else {
				errs[i] = e.m.Resume(ctx)
			}
		}()
	}
	wg.Wait()
	deleted := 0
	for i, err := range errs {
		switch {
		case err == nil:
			if i%2 == 0 {
				deleted++
			}
		case errors.Is(err, account.ErrNotFound) && i%2 == 0:
		default:
			t.Errorf("call %d: %v", i, err)
		}
	}
	if deleted < 1 {
		t.Fatal("no Delete succeeded")
	}
	if _, err := e.store.Get(ctx, "alice"); !errors.Is(err, account.ErrNotFound) {
		t.Fatal("account left")
	}
}

// cancelingHolder cancels the Delete's context in its first Erase and fails.
type cancelingHolder struct {
	*memHolder
	cancel context.CancelFunc
}

func (h cancelingHolder) Erase(c context.Context, user jid.JID) error {
	h.cancel()
	h.memHolder.Erase(c, user)
	return h.errs
}

func TestDeleteCanceled(t *testing.T) {
	c, cancel := context.WithCancel(ctx)
	defer cancel()
	h := cancelingHolder{newHolder("upload"), cancel}
	e := newEnv(t, account.Config{Holders: []account.Holder{h}, EraseBackoff: time.Hour})
	e.seed(t, "alice")
	err := e.m.Delete(c, "alice")
	if !errors.Is(err, account.ErrErasureIncomplete) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Delete with a canceled context = %v", err)
	}
	if h.calls() != 1 {
		t.Fatalf("Erase called %d times after cancel, want 1 (no waiting out the backoff)", h.calls())
	}
	// The journal entry survives a canceled context.
	if list, _ := e.store.Erasures(ctx); len(list) != 1 || list[0].Attempts != 1 {
		t.Fatalf("journal = %+v", list)
	}
}
