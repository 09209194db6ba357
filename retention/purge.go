package retention

import (
	"context"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"chatbx.eu/privacy/internal/boltwipe"
)

// boltPurge is the Expirer of PurgeJob.
type boltPurge struct {
	DB *bolt.DB
}

// Expire wipes the free pages of p.DB; before is ignored.
func (p boltPurge) Expire(ctx context.Context, before time.Time) (int, error) {
	return boltwipe.Wipe(ctx, p.DB)
}

// PurgeJob returns a job named name whose Expirer overwrites the free pages
// of the open bbolt database db with zeros every interval (0 means
// DefaultInterval), so that data deleted from it (by expiry or by an
// account's erasure) no longer exists in the file. It ignores the cutoff:
// every byte deleted before the run began is wiped, and a run reports the
// number of pages overwritten. The database stays open and usable.
//
// The interval bounds how long erased bytes survive in the file; list the
// job after the expiry jobs of the stores in db, so that RunOnce wipes what
// they have just deleted. A run fails while read transactions that began
// before the last deletion stay open; the scheduler retries it. See the
// package documentation for the guarantees and limits.
//
// A nil db gives a job without an Expirer, which NewScheduler refuses with
// ErrConfig.
func PurgeJob(name string, db *bolt.DB, interval time.Duration) Job {
	if db == nil {
		return Job{Name: name, Interval: interval}
	}
	return Job{
		Name:     name,
		Data:     "bytes of deleted data left in the free pages of " + filepath.Base(db.Path()),
		Expirer:  boltPurge{DB: db},
		Interval: interval,
	}
}
