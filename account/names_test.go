package account_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"chatbx.eu/privacy/account"
	"chatbx.eu/privacy/account/accounttest"
	"chatbx.eu/privacy/internal/testclock"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/time/rate"
)

func TestRegisterWeakPassword(t *testing.T) {
	e := newEnv(t, account.Config{RegisterRate: rate.Inf})
	e.seed(t, "alice")
	for _, tc := range []struct {
		name, user, pw, reason string
	}{
		{"spaces", "bob", "        ", "only white space"},
		{"no-break spaces", "bob", strings.Repeat("\u00a0", 8), "only white space"},
		{"ideographic spaces", "bob", strings.Repeat("\u3000", 10), "only white space"},
		{"tabs and line breaks", "bob", "\t\t\t\t\n\n\r\n", "only white space"},
		{"common", "bob", "password", "most common"},
		{"common capitalized", "bob", "Password", "most common"},
		{"common upper case", "bob", "PASSWORD", "most common"},
		{"common with spaces around", "bob", "  password  ", "most common"},
		{"common digits", "bob", "123456789", "most common"},
		{"common with digit", "bob", "Password1", "most common"},
		{"common keyboard", "bob", "qwertyuiop", "most common"},
		{"the username", "Zoltan1974", "zoltan1974", "same as the username"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := e.m.Register(ctx, "198.51.100.7", tc.user, tc.pw)
			var pe *account.PolicyError
			if !errors.Is(err, account.ErrWeakPassword) || !errors.Is(err, account.ErrPolicy) || !errors.As(err, &pe) {
				t.Fatalf("Register = %v, want a PolicyError wrapping ErrWeakPassword", err)
			}
			if !strings.Contains(pe.Reason, tc.reason) {
				t.Errorf("reason %q, want it to mention %q", pe.Reason, tc.reason)
			}
			// (The reason says "password": a password within that word is
			// not repeated.)
			if p := strings.ToLower(strings.TrimSpace(tc.pw)); p != "" && !strings.Contains("passwords", p) && strings.Contains(strings.ToLower(err.Error()), p) {
				t.Errorf("error %q repeats the password", err)
			}
			if _, err := e.m.Get(ctx, tc.user); !errors.Is(err, account.ErrNotFound) {
				t.Fatalf("a refused registration created the account: %v", err)
			}
			// The same rules for a password change.
			if err := e.m.ChangePassword(ctx, "alice", tc.pw); tc.user == "bob" && !errors.Is(err, account.ErrWeakPassword) {
				t.Fatalf("ChangePassword = %v, want ErrWeakPassword", err)
			}
		})
	}
	if err := e.m.ChangePassword(ctx, "alice", "alice"+"ALICE"); err != nil {
		t.Fatalf("ChangePassword to a password that contains the name: %v", err)
	}
	e.seed(t, "zoltan1974")
	if err := e.m.ChangePassword(ctx, "zoltan1974", " Zoltan1974"); !errors.Is(err, account.ErrWeakPassword) {
		t.Fatalf("ChangePassword to the username = %v, want ErrWeakPassword", err)
	}
	// Strong passwords pass, and the old ones still log in: the rules are
	// for new passwords only.
	mustRegister(t, e.m, "bob", "correct horse battery staple")
	mustRegister(t, e.m, "carol", "Tr0ub4dor&3x")
	if err := e.m.Authenticate(ctx, "k", "alice", "aliceALICE"); err != nil {
		t.Fatal(err)
	}
	e.noSecrets(t, "Tr0ub4dor", "correct horse")
}

func TestRegisterMixedScripts(t *testing.T) {
	e := newEnv(t, account.Config{RegisterRate: rate.Inf})
	for _, tc := range []struct {
		user string
		ok   bool
	}{
		{"\u0430lice", false}, // Cyrillic а, Latin lice
		{"p\u0430yp\u0430l", false},
		{"\u03b1lice", false}, // Greek alpha
		{"ali\u0441e2", false},
		{"aliceก", false}, // Thai (Arabic is refused earlier, by PRECIS's bidi rule)
		{"alice", true},
		{"алиса", true},
		{"ελένη", true},
		{"山田taro", true},
		{"やまだtaro", true},
		{"김철수kim", true},
		{"josé", true},
	} {
		err := e.m.Register(ctx, "k", tc.user, "correct horse battery")
		switch {
		case tc.ok && err != nil:
			t.Errorf("Register(%q) = %v, want it accepted", tc.user, err)
		case !tc.ok && (!errors.Is(err, account.ErrMixedScripts) || !errors.Is(err, account.ErrPolicy)):
			t.Errorf("Register(%q) = %v, want ErrMixedScripts", tc.user, err)
		case !tc.ok && strings.Contains(err.Error(), tc.user):
			t.Errorf("error %q repeats the name", err)
		}
	}
}

func TestRegisterLookalike(t *testing.T) {
	e := newEnv(t, account.Config{RegisterRate: rate.Inf})
	e.seed(t, "alice", "cope", "mallory", "bob", "paypal")
	for _, name := range []string{
		"a1ice",            // digit one for l
		"ALICE",            // same name
		"\uff41lice",       // fullwidth a: the same name after PRECIS
		"соре",             // all Cyrillic
		"rnallory",         // r n for m
		"b0b",              // digit zero for o
		"p\u0430yp\u0430l", // caught earlier as mixed scripts
		"\u0440\u0430ypal", // too
	} {
		err := e.m.Register(ctx, "k", name, "correct horse battery")
		if !errors.Is(err, account.ErrExists) && !errors.Is(err, account.ErrMixedScripts) {
			t.Errorf("Register(%q) = %v, want ErrExists", name, err)
		}
		if errors.Is(err, account.ErrExists) && err != account.ErrExists {
			t.Errorf("Register(%q) = %q: a conflict must not say more than ErrExists", name, err)
		}
	}
	for _, name := range []string{"alicia", "cape", "bobby", "алиса"} {
		mustRegister(t, e.m, name, "correct horse battery")
	}
}

// TestRegisterLookalikeConcurrent registers look-alike names at once: one
// wins, on every Store.
func TestRegisterLookalikeConcurrent(t *testing.T) {
	for name, newStore := range map[string]func(t *testing.T) account.Store{
		"mem":  func(*testing.T) account.Store { return accounttest.NewMemStore() },
		"bolt": func(t *testing.T) account.Store { return newBoltStore(t) },
	} {
		t.Run(name, func(t *testing.T) {
			m, err := account.NewManager(newStore(t), account.Config{Params: fast, RegisterRate: rate.Inf})
			if err != nil {
				t.Fatal(err)
			}
			names := []string{"cope", "соре", "c0pe", "COPE", "с0ре"}
			var wg sync.WaitGroup
			errs := make([]error, len(names))
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = m.Register(ctx, "k", names[i%len(names)], "correct horse battery")
				}()
			}
			wg.Wait()
			won := 0
			for i, err := range errs {
				switch {
				case err == nil:
					won++
				case !errors.Is(err, account.ErrExists):
					t.Errorf("Register(%q) = %v, want ErrExists", names[i%len(names)], err)
				}
			}
			if won != 1 {
				t.Fatalf("%d of %d concurrent registrations of look-alike names succeeded, want 1", won, len(errs))
			}
		})
	}
}

func TestTombstoneCoversLookalikes(t *testing.T) {
	e := newEnv(t, account.Config{RegisterRate: rate.Inf, TombstoneTTL: time.Hour})
	mustRegister(t, e.m, "cope", "correct horse battery")
	if err := e.m.Delete(ctx, "cope"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"cope", "соре", "c0pe"} {
		if err := e.m.Register(ctx, "k", name, "correct horse battery"); err != account.ErrExists {
			t.Errorf("Register(%q) after deleting cope = %v, want ErrExists", name, err)
		}
	}
	e.clock.Add(time.Hour + time.Second)
	mustRegister(t, e.m, "соре", "correct horse battery")
}

// TestLegacyTombstone: tombstones written before skeletons are keyed by
// the HMAC of the name; they still reserve it.
func TestLegacyTombstone(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	e := newEnv(t, account.Config{RegisterRate: rate.Inf, TombstoneKey: key})
	legacy := func(name string) []byte {
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte("chatbx.eu/privacy/account tombstone\x00" + name))
		return mac.Sum(nil)
	}
	for _, name := range []string{"b0b", "alice"} { // "b0b" is not its own skeleton, "alice" is
		if err := e.store.Create(ctx, account.Record{Username: name, Hash: "x", Created: e.clock.Now()}, nil); err != nil {
			t.Fatal(err)
		}
		if err := e.store.BeginErasure(ctx, account.Erasure{Username: name, Started: e.clock.Now()}); err != nil {
			t.Fatal(err)
		}
		if err := e.store.FinishErasure(ctx, name, account.Tombstone{Key: legacy(name), Expires: e.clock.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := e.m.Register(ctx, "k", name, "correct horse battery"); err != account.ErrExists {
			t.Errorf("Register(%q) under its legacy tombstone = %v, want ErrExists", name, err)
		}
	}
	e.clock.Add(2 * time.Hour)
	mustRegister(t, e.m, "b0b", "correct horse battery")
}

// TestBoltSkeletonBackfill opens a database written before skeletons
// existed: NewBoltStore computes them, once.
func TestBoltSkeletonBackfill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "account.db")
	db := openBolt(t, path)
	s, err := account.NewBoltStore(db)
	if err != nil {
		t.Fatal(err)
	}
	// Old data: records without skeleton, no index, no version; two of
	// them look alike (the old rules let that happen).
	for _, name := range []string{"cope", "соре", "alice"} {
		if err := s.Create(ctx, account.Record{Username: name, Hash: "x", Created: time.Unix(0, 0)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	err = db.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket([]byte("account"))
		if err := root.Delete([]byte("skeleton-version")); err != nil {
			return err
		}
		return root.DeleteBucket([]byte("skeletons"))
	})
	if err != nil {
		t.Fatal(err)
	}

	s, err = account.NewBoltStore(db)
	if err != nil {
		t.Fatalf("opening old data: %v", err)
	}
	for _, name := range []string{"cope", "соре", "alice"} {
		r, err := s.Get(ctx, name)
		if err != nil || r.Skeleton != account.Skeleton(name) {
			t.Fatalf("Get(%q) = %+v, %v; want Skeleton %q", name, r, err, account.Skeleton(name))
		}
	}
	clk := testclock.New()
	m, err := account.NewManager(s, account.Config{Params: fast, RegisterRate: rate.Inf, TombstoneTTL: time.Hour, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"c0pe", "a1ice"} {
		if err := m.Register(ctx, "k", name, "correct horse battery"); err != account.ErrExists {
			t.Errorf("Register(%q) next to old accounts = %v, want ErrExists", name, err)
		}
	}
	// Deleting one of the old look-alikes keeps the other's entry.
	if err := m.Delete(ctx, "cope"); err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Hour) // past cope's tombstone
	if err := m.Register(ctx, "k", "c0pe", "correct horse battery"); err != account.ErrExists {
		t.Errorf("Register(c0pe) while соре remains = %v, want ErrExists", err)
	}
	// A second open with the current version changes nothing.
	if _, err := account.NewBoltStore(db); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(ctx, "соре"); err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Hour)
	if err := m.Register(ctx, "k", "c0pe", "correct horse battery"); err != nil {
		t.Fatalf("Register(c0pe) after both look-alikes were deleted: %v (index entry left behind)", err)
	}
}

// TestBoltFinishErasureCorruptRecord: a record that cannot be read any more
// still loses its skeleton entry when its erasure finishes.
func TestBoltFinishErasureCorruptRecord(t *testing.T) {
	db := openBolt(t, filepath.Join(t.TempDir(), "account.db"))
	s, err := account.NewBoltStore(db)
	if err != nil {
		t.Fatal(err)
	}
	r := account.Record{Username: "cope", Skeleton: account.Skeleton("cope"), Hash: "x", Created: time.Unix(0, 0)}
	if err := s.Create(ctx, r, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.BeginErasure(ctx, account.Erasure{Username: "cope", Started: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("account")).Bucket([]byte("users")).Put([]byte("cope"), []byte("{not json"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.FinishErasure(ctx, "cope", account.Tombstone{Key: []byte("k"), Expires: time.Unix(1, 0)}); err != nil {
		t.Fatalf("FinishErasure of a corrupt record: %v", err)
	}
	lookalike := account.Record{Username: "соре", Skeleton: account.Skeleton("соре"), Hash: "x", Created: time.Unix(2, 0)}
	if err := s.Create(ctx, lookalike, nil); err != nil {
		t.Fatalf("Create after the erasure: %v (skeleton entry left behind)", err)
	}
}
