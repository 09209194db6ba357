package pgstore

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"testing"

	"chatbx.eu/privacy/account"
	"chatbx.eu/privacy/account/accounttest"
)

func TestAccountStore(t *testing.T) {
	accounttest.TestStore(t, func(t *testing.T) account.Store {
		s, err := NewAccountStore(t.Context(), newPool(t))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// Two processes (two pools) race: one finishes the erasure of a name,
// turning it into a tombstone, while the other registers the name; and
// both register two look-alike names at once. No interleaving may let the
// name through or admit both look-alikes.
func TestAccountStoreTwoProcesses(t *testing.T) {
	schema := freshSchema(t)
	ctx := t.Context()
	var stores [2]*AccountStore
	for i := range stores {
		s, err := NewAccountStore(ctx, poolIn(t, schema))
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = s
	}
	a, b := stores[0], stores[1]
	now := time.Now()
	for i := range 40 {
		name := fmt.Sprintf("user%d", i)
		key := []byte("mac-" + name)
		if err := a.Create(ctx, account.Record{Username: name, Hash: "h", Created: now}, nil); err != nil {
			t.Fatal(err)
		}
		if err := a.BeginErasure(ctx, account.Erasure{Username: name, Started: now}); err != nil {
			t.Fatal(err)
		}
		var finishErr, createErr error
		var wg sync.WaitGroup
		wg.Go(func() {
			finishErr = a.FinishErasure(ctx, name, account.Tombstone{Key: key, Expires: now.Add(time.Hour)})
		})
		wg.Go(func() { createErr = b.Create(ctx, account.Record{Username: name, Hash: "h2", Created: now}, key) })
		wg.Wait()
		if finishErr != nil {
			t.Fatalf("FinishErasure: %v", finishErr)
		}
		if !errors.Is(createErr, account.ErrExists) {
			t.Fatalf("round %d: registration racing the erasure = %v, want ErrExists", i, createErr)
		}

		// Look-alikes: same skeleton, different names, one per process.
		skel := fmt.Sprintf("skel%d", i)
		var errs [2]error
		for j, s := range stores {
			wg.Go(func() {
				errs[j] = s.Create(ctx, account.Record{Username: fmt.Sprintf("l%d-%d", i, j), Skeleton: skel, Hash: "h", Created: now}, nil)
			})
		}
		wg.Wait()
		if (errs[0] == nil) == (errs[1] == nil) {
			t.Fatalf("round %d: look-alike registrations = %v, %v; want exactly one to succeed", i, errs[0], errs[1])
		}
	}
}
