package pgstore

import (
	"errors"
	"sync"
	"testing"
)

// Processes starting together on an empty schema migrate it once; a
// second start changes nothing; a schema newer than the program is
// refused.
func TestMigrateConcurrentAndIdempotent(t *testing.T) {
	schema := freshSchema(t)
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for range 4 {
		pool := poolIn(t, schema)
		wg.Go(func() {
			_, err := NewMAMStore(ctx, pool, MAMConfig{})
			errs <- err
			_, err = NewUploadMetaStore(ctx, pool)
			errs <- err
			_, err = NewAccountStore(ctx, pool)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	pool := poolIn(t, schema)
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pgstore_schema WHERE version = 1`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("pgstore_schema: %d components at version 1 (%v), want 3", n, err)
	}
	if _, err := pool.Exec(ctx, `UPDATE pgstore_schema SET version = 99 WHERE component = 'mam'`); err != nil {
		t.Fatal(err)
	}
	if _, err := NewMAMStore(ctx, pool, MAMConfig{}); !errors.Is(err, ErrConfig) {
		t.Fatalf("NewMAMStore on a newer schema = %v, want ErrConfig", err)
	}
	if _, err := NewMAMStore(ctx, nil, MAMConfig{}); !errors.Is(err, ErrConfig) {
		t.Fatalf("NewMAMStore(nil pool) = %v, want ErrConfig", err)
	}
}
