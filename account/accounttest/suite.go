package accounttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"chatbx.eu/privacy/account"
)

// t0 is the creation time of the test accounts.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// rec returns an account record for name with a skeleton of its own.
func rec(name string) account.Record {
	return account.Record{
		Username: name,
		Skeleton: "skel-" + name,
		Hash:     "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		Created:  t0,
		Profile:  account.Profile{Nickname: "Nick " + name},
	}
}

func mustCreate(t *testing.T, s account.Store, r account.Record) {
	t.Helper()
	if err := s.Create(t.Context(), r, nil); err != nil {
		t.Fatalf("Create: %v", err)
	}
}

func tomb(key string, exp time.Time) account.Tombstone {
	return account.Tombstone{Key: []byte(key), Expires: exp}
}

// erase runs a whole deletion of name leaving a tombstone key.
func erase(t *testing.T, s account.Store, name string, tb account.Tombstone) {
	t.Helper()
	ctx := t.Context()
	if err := s.BeginErasure(ctx, account.Erasure{Username: name, Started: t0}); err != nil {
		t.Fatalf("BeginErasure: %v", err)
	}
	if err := s.FinishErasure(ctx, name, tb); err != nil {
		t.Fatalf("FinishErasure: %v", err)
	}
}

// TestStore runs the account.Store contract against stores made by
// newStore: one named subtest per clause, each with a fresh, empty store.
func TestStore(t *testing.T, newStore func(t *testing.T) account.Store) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, account.Store)
	}{
		{"CreateGet", testCreateGet},
		{"CreateExisting", testCreateExisting},
		{"CreateConcurrent", testCreateConcurrent},
		{"Skeletons", testSkeletons},
		{"SkeletonsConcurrent", testSkeletonsConcurrent},
		{"Update", testUpdate},
		{"BeginErasure", testBeginErasure},
		{"ErasureProgress", testErasureProgress},
		{"FinishErasure", testFinishErasure},
		{"Tombstones", testTombstones},
		{"ExpireTombstones", testExpireTombstones},
		{"CanceledContext", testCanceledContext},
		{"Secrets", testSecrets},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

func testCreateGet(t *testing.T, s account.Store) {
	ctx := t.Context()
	want := rec("alice")
	want.Blocked = true
	mustCreate(t, s, want)
	got, err := s.Get(ctx, "alice")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if err := sameRecord(got, want); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "bob"); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("Get(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, "Alice"); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("Get(other case) = %v, want ErrNotFound: stores compare names exactly", err)
	}
}

func testCreateExisting(t *testing.T, s account.Store) {
	ctx := t.Context()
	mustCreate(t, s, rec("alice"))
	other := rec("alice")
	other.Hash = "other"
	if err := s.Create(ctx, other, nil); !errors.Is(err, account.ErrExists) {
		t.Fatalf("Create(existing) = %v, want ErrExists", err)
	}
	got, _ := s.Get(ctx, "alice")
	if got.Hash != rec("alice").Hash {
		t.Fatal("a refused Create overwrote the account")
	}
}

func testCreateConcurrent(t *testing.T, s account.Store) {
	ctx := t.Context()
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rec("race")
			r.Hash = fmt.Sprint(i)
			errs[i] = s.Create(ctx, r, nil)
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, account.ErrExists):
			t.Errorf("Create: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d concurrent Creates of one name succeeded, want 1", ok)
	}
}

func testSkeletons(t *testing.T, s account.Store) {
	ctx := t.Context()
	mustCreate(t, s, rec("alice"))
	lookalike := rec("\u0430lice") // Cyrillic а
	lookalike.Skeleton = rec("alice").Skeleton
	if err := s.Create(ctx, lookalike, nil); !errors.Is(err, account.ErrExists) {
		t.Fatalf("Create with a taken Skeleton = %v, want ErrExists", err)
	}
	if _, err := s.Get(ctx, lookalike.Username); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("a refused Create stored the account: %v", err)
	}
	// Records without a skeleton are not indexed: any number of them.
	for _, name := range []string{"old1", "old2"} {
		r := rec(name)
		r.Skeleton = ""
		mustCreate(t, s, r)
	}
	// The index follows the account through deletion.
	if err := s.BeginErasure(ctx, account.Erasure{Username: "alice", Started: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, lookalike, nil); !errors.Is(err, account.ErrExists) {
		t.Fatalf("Create with the Skeleton of an account being deleted = %v, want ErrExists", err)
	}
	if err := s.FinishErasure(ctx, "alice", tomb("mac-alice", t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, lookalike, nil); err != nil {
		t.Fatalf("Create with the Skeleton of an erased account: %v (the index kept it)", err)
	}
	got, err := s.Get(ctx, lookalike.Username)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameRecord(got, lookalike); err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, lookalike.Username, func(r *account.Record) error {
		r.Skeleton = "other"
		return nil
	})
	if err == nil {
		t.Fatal("Update allowed changing Skeleton")
	}
	if got, _ := s.Get(ctx, lookalike.Username); got.Skeleton != lookalike.Skeleton {
		t.Fatal("Update changed Skeleton")
	}
}

func testSkeletonsConcurrent(t *testing.T, s account.Store) {
	ctx := t.Context()
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rec(fmt.Sprint("name", i))
			r.Skeleton = "one skeleton"
			errs[i] = s.Create(ctx, r, nil)
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, account.ErrExists):
			t.Errorf("Create: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d concurrent Creates of names with one Skeleton succeeded, want 1", ok)
	}
}

func testUpdate(t *testing.T, s account.Store) {
	ctx := t.Context()
	mustCreate(t, s, rec("alice"))
	err := s.Update(ctx, "alice", func(r *account.Record) error {
		r.Hash = "new"
		r.Blocked = true
		r.Profile.Nickname = "A."
		return nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	got, _ := s.Get(ctx, "alice")
	want := rec("alice")
	want.Hash, want.Blocked, want.Profile.Nickname = "new", true, "A."
	if err := sameRecord(got, want); err != nil {
		t.Fatal(err)
	}

	boom := errors.New("boom")
	err = s.Update(ctx, "alice", func(r *account.Record) error {
		r.Hash = "lost"
		return boom
	})
	if err != boom && !errors.Is(err, boom) {
		t.Fatalf("Update returned %v, want fn's error", err)
	}
	if got, _ := s.Get(ctx, "alice"); got.Hash != "new" {
		t.Fatal("Update wrote although fn failed")
	}

	err = s.Update(ctx, "alice", func(r *account.Record) error {
		r.Username = "mallory"
		return nil
	})
	if err == nil {
		t.Fatal("Update allowed renaming")
	}
	if _, err := s.Get(ctx, "mallory"); !errors.Is(err, account.ErrNotFound) {
		t.Fatal("Update created a renamed account")
	}
	err = s.Update(ctx, "alice", func(r *account.Record) error {
		r.Deleting = true
		return nil
	})
	if err == nil {
		t.Fatal("Update allowed setting Deleting outside BeginErasure")
	}
	if got, _ := s.Get(ctx, "alice"); got.Deleting {
		t.Fatal("Update set Deleting")
	}
	called := false
	err = s.Update(ctx, "bob", func(*account.Record) error { called = true; return nil })
	if !errors.Is(err, account.ErrNotFound) || called {
		t.Fatalf("Update(unknown) = %v (fn called: %v), want ErrNotFound", err, called)
	}
}

func testBeginErasure(t *testing.T, s account.Store) {
	ctx := t.Context()
	mustCreate(t, s, rec("alice"))
	mustCreate(t, s, rec("bob"))
	e := account.Erasure{Username: "alice", Started: t0}
	if err := s.BeginErasure(ctx, e); err != nil {
		t.Fatalf("BeginErasure: %v", err)
	}
	got, err := s.Get(ctx, "alice")
	if err != nil || !got.Deleting {
		t.Fatalf("after BeginErasure: Get = %+v, %v; want Deleting", got, err)
	}
	if got, _ := s.Get(ctx, "bob"); got.Deleting {
		t.Fatal("BeginErasure marked another account")
	}
	if err := s.BeginErasure(ctx, e); !errors.Is(err, account.ErrExists) {
		t.Fatalf("second BeginErasure = %v, want ErrExists", err)
	}
	if err := s.BeginErasure(ctx, account.Erasure{Username: "carol", Started: t0}); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("BeginErasure(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.Create(ctx, rec("alice"), nil); !errors.Is(err, account.ErrExists) {
		t.Fatalf("Create of a name being deleted = %v, want ErrExists", err)
	}
	list, err := s.Erasures(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Username != "alice" || !list[0].Started.Equal(t0) {
		t.Fatalf("Erasures = %+v, want one for alice", list)
	}
}

func testErasureProgress(t *testing.T, s account.Store) {
	ctx := t.Context()
	for i, name := range []string{"carol", "alice", "bob"} {
		mustCreate(t, s, rec(name))
		e := account.Erasure{Username: name, Started: t0.Add(time.Duration(i) * time.Minute)}
		if err := s.BeginErasure(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	done := []string{"mam", "upload"}
	e := account.Erasure{Username: "alice", Started: t0.Add(time.Minute), Done: done, Attempts: 2}
	if err := s.UpdateErasure(ctx, e); err != nil {
		t.Fatalf("UpdateErasure: %v", err)
	}
	done[0] = "changed after the call"
	list, err := s.Erasures(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range list {
		names = append(names, e.Username)
	}
	if !slices.Equal(names, []string{"carol", "alice", "bob"}) {
		t.Fatalf("Erasures order = %v, want oldest Started first", names)
	}
	if !slices.Equal(list[1].Done, []string{"mam", "upload"}) || list[1].Attempts != 2 {
		t.Fatalf("progress = %+v, want Done [mam upload], Attempts 2", list[1])
	}
	list[1].Done[0] = "x"
	again, _ := s.Erasures(ctx)
	if again[1].Done[0] != "mam" {
		t.Fatal("Erasures returned the store's own slice")
	}
	if err := s.UpdateErasure(ctx, account.Erasure{Username: "dave"}); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("UpdateErasure(unknown) = %v, want ErrNotFound", err)
	}
}

func testFinishErasure(t *testing.T, s account.Store) {
	ctx := t.Context()
	mustCreate(t, s, rec("alice"))
	mustCreate(t, s, rec("bob"))
	exp := t0.Add(365 * 24 * time.Hour)
	erase(t, s, "alice", tomb("mac-alice", exp))
	if _, err := s.Get(ctx, "alice"); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("Get after FinishErasure = %v, want ErrNotFound", err)
	}
	if list, _ := s.Erasures(ctx); len(list) != 0 {
		t.Fatalf("journal after FinishErasure = %+v, want empty", list)
	}
	if _, err := s.Get(ctx, "bob"); err != nil {
		t.Fatalf("other account after FinishErasure: %v", err)
	}
	got, err := s.Tombstone(ctx, []byte("mac-alice"))
	if err != nil || !got.Expires.Equal(exp) || string(got.Key) != "mac-alice" {
		t.Fatalf("Tombstone = %+v, %v", got, err)
	}
	if err := s.FinishErasure(ctx, "alice", tomb("mac-alice", exp)); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("second FinishErasure = %v, want ErrNotFound", err)
	}
	if err := s.FinishErasure(ctx, "bob", tomb("mac-bob", exp)); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("FinishErasure without BeginErasure = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, "bob"); err != nil {
		t.Fatal("FinishErasure without a journal entry removed the account")
	}
}

func testTombstones(t *testing.T, s account.Store) {
	ctx := t.Context()
	mustCreate(t, s, rec("alice"))
	exp := t0.Add(time.Hour)
	erase(t, s, "alice", tomb("mac-alice", exp))

	r := rec("alice")
	r.Created = exp.Add(-time.Nanosecond)
	if err := s.Create(ctx, r, []byte("mac-alice")); !errors.Is(err, account.ErrExists) {
		t.Fatalf("Create under a live tombstone = %v, want ErrExists", err)
	}
	if err := s.Create(ctx, r, []byte("other-mac")); err != nil {
		t.Fatalf("Create with another tombstone key: %v", err)
	}
	r2 := rec("alice2")
	r2.Created = exp.Add(time.Second)
	if err := s.Create(ctx, r2, []byte("mac-alice")); err != nil {
		t.Fatalf("Create after the tombstone expired: %v", err)
	}
	if _, err := s.Tombstone(ctx, []byte("nope")); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("Tombstone(unknown) = %v, want ErrNotFound", err)
	}
}

func testExpireTombstones(t *testing.T, s account.Store) {
	ctx := t.Context()
	for i, name := range []string{"a", "b", "c", "d"} {
		mustCreate(t, s, rec(name))
		erase(t, s, name, tomb("mac-"+name, t0.Add(time.Duration(i)*time.Hour)))
	}
	n, err := s.ExpireTombstones(ctx, t0.Add(2*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("ExpireTombstones = %d, %v; want 2", n, err)
	}
	for _, name := range []string{"a", "b"} {
		if _, err := s.Tombstone(ctx, []byte("mac-"+name)); !errors.Is(err, account.ErrNotFound) {
			t.Errorf("tombstone %s kept after expiry: %v", name, err)
		}
	}
	for _, name := range []string{"c", "d"} {
		if _, err := s.Tombstone(ctx, []byte("mac-"+name)); err != nil {
			t.Errorf("tombstone %s not yet expired was removed: %v", name, err)
		}
	}
	if n, _ := s.ExpireTombstones(ctx, t0.Add(2*time.Hour)); n != 0 {
		t.Fatalf("second ExpireTombstones = %d, want 0", n)
	}
}

func testCanceledContext(t *testing.T, s account.Store) {
	ctx := t.Context()
	mustCreate(t, s, rec("alice"))
	done, cancel := context.WithCancel(ctx)
	cancel()
	checks := map[string]error{
		"Create":        s.Create(done, rec("bob"), nil),
		"Update":        s.Update(done, "alice", func(r *account.Record) error { r.Hash = "x"; return nil }),
		"BeginErasure":  s.BeginErasure(done, account.Erasure{Username: "alice", Started: t0}),
		"UpdateErasure": s.UpdateErasure(done, account.Erasure{Username: "alice", Started: t0}),
		"FinishErasure": s.FinishErasure(done, "alice", tomb("mac", t0)),
	}
	_, checks["Get"] = s.Get(done, "alice")
	_, checks["Erasures"] = s.Erasures(done)
	_, checks["Tombstone"] = s.Tombstone(done, []byte("k"))
	_, checks["ExpireTombstones"] = s.ExpireTombstones(done, t0)
	_, checks["LoadOrStoreSecret"] = s.LoadOrStoreSecret(done, "k", []byte("v"))
	for name, err := range checks {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context = %v, want context.Canceled", name, err)
		}
	}
	if _, err := s.Get(ctx, "bob"); !errors.Is(err, account.ErrNotFound) {
		t.Error("Create with a canceled context created the account")
	}
	if got, _ := s.Get(ctx, "alice"); got.Hash == "x" || got.Deleting {
		t.Error("a call with a canceled context changed the account")
	}
	if v, _ := s.LoadOrStoreSecret(ctx, "k", []byte("w")); string(v) != "w" {
		t.Error("LoadOrStoreSecret with a canceled context stored its value")
	}
}

func testSecrets(t *testing.T, s account.Store) {
	ctx := t.Context()
	const n = 8
	var wg sync.WaitGroup
	got := make([][]byte, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = s.LoadOrStoreSecret(ctx, "k", []byte{byte(i)})
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !bytes.Equal(got[i], got[0]) {
			t.Fatalf("concurrent LoadOrStoreSecret returned %v and %v", got[0], got[i])
		}
	}
	got[0][0] = 99
	v, err := s.LoadOrStoreSecret(ctx, "k", []byte("ignored"))
	if err != nil || !bytes.Equal(v, got[1]) {
		t.Fatalf("LoadOrStoreSecret after store = %v, %v; want %v (and not aliased)", v, err, got[1])
	}
	w, err := s.LoadOrStoreSecret(ctx, "other", []byte("w"))
	if err != nil || string(w) != "w" {
		t.Fatalf("LoadOrStoreSecret(other) = %q, %v", w, err)
	}
}

func sameRecord(got, want account.Record) error {
	if got.Username != want.Username || got.Skeleton != want.Skeleton || got.Hash != want.Hash || !got.Created.Equal(want.Created) ||
		got.Blocked != want.Blocked || got.Deleting != want.Deleting || got.Profile != want.Profile {
		return fmt.Errorf("record = %+v, want %+v", got, want)
	}
	return nil
}
