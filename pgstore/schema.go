package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrationLock is the key of the transaction-level advisory lock held
// while a store creates or migrates its tables, so that processes starting
// together migrate one after the other.
const migrationLock = 0x63627870677374 // "cbxpgst"

// migrate brings component's tables (in the pool's current schema) to the
// newest of steps: steps[i] moves version i to i+1. It is idempotent and
// safe to run from several processes at once.
func migrate(ctx context.Context, pool *pgxpool.Pool, component string, steps []string) error {
	return retry(ctx, func() error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS pgstore_schema (
				component text PRIMARY KEY,
				version   integer NOT NULL)`); err != nil {
				return err
			}
			var v int
			err := tx.QueryRow(ctx, `SELECT version FROM pgstore_schema WHERE component = $1`, component).Scan(&v)
			if errors.Is(err, pgx.ErrNoRows) {
				v = 0
			} else if err != nil {
				return err
			}
			if v > len(steps) {
				return fmt.Errorf("pgstore: %s schema version %d is newer than this program's %d: %w",
					component, v, len(steps), ErrConfig)
			}
			for ; v < len(steps); v++ {
				if _, err := tx.Exec(ctx, steps[v]); err != nil {
					return fmt.Errorf("pgstore: %s migration %d: %w", component, v+1, err)
				}
			}
			_, err = tx.Exec(ctx, `INSERT INTO pgstore_schema (component, version) VALUES ($1, $2)
				ON CONFLICT (component) DO UPDATE SET version = excluded.version`, component, v)
			return err
		})
	})
}

// ErrConfig is returned by a constructor given an unusable configuration
// or a database whose schema is newer than the program.
var ErrConfig = errors.New("pgstore: invalid configuration")

// retryable reports whether err is a serialization failure or a deadlock,
// after which the whole transaction may simply run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "40001" || pe.Code == "40P01"
	}
	return false
}

// maxRetries bounds the attempts of a transaction that keeps failing with
// serialization failures.
const maxRetries = 20

// retry runs fn until it succeeds, fails with an error that retrying does
// not cure, or has failed maxRetries times.
func retry(ctx context.Context, fn func() error) error {
	var err error
	for range maxRetries {
		if err = fn(); err == nil || !retryable(err) {
			return err
		}
		if ctx.Err() != nil {
			return err
		}
	}
	return err
}

// batchSize bounds the rows one expiry or erasure statement touches, so
// that no statement holds many row locks or writes a huge WAL record.
const batchSize = 1000
