package retention

import (
	"context"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"chatbx.eu/privacy/internal/boltwipe"
)

// BoltPurge is an Expirer that overwrites the free pages of an open bbolt
// database with zeros, so that data deleted from it (by expiry or by an
// account's erasure) no longer exists in the file. It ignores the cutoff:
// every byte deleted before the run began is wiped, and Expire returns the
// number of pages overwritten. The database stays open and usable.
//
// A purge fails with an error wrapping ErrReadersOpen while read
// transactions that began before the last deletion stay open; the
// scheduler retries it. See the package documentation for the guarantees
// and limits.
type BoltPurge struct {
	DB *bolt.DB
}

// Expire wipes the free pages of p.DB; before is ignored.
func (p BoltPurge) Expire(ctx context.Context, before time.Time) (int, error) {
	return boltwipe.Wipe(ctx, p.DB)
}

// PurgeJob returns a job named name that runs BoltPurge over db every
// interval (0 means DefaultInterval). The interval bounds how long erased
// bytes survive in the file; list the job after the expiry jobs of the
// stores in db, so that RunOnce wipes what they have just deleted.
func PurgeJob(name string, db *bolt.DB, interval time.Duration) Job {
	return Job{
		Name:     name,
		Data:     "bytes of deleted data left in the free pages of " + filepath.Base(db.Path()),
		Expirer:  BoltPurge{DB: db},
		Interval: interval,
	}
}
