package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// purgeLock is the session-level advisory lock key under which one process
// at a time runs Purge.
const purgeLock = 0x63627870757267 // "cbxpurg"

// purgeTables are the tables whose rows name users, in the order Purge
// rewrites them; tables a program never created are skipped.
var purgeTables = []string{
	"mam_messages", "mam_counts", "mam_archives", "mam_prefs",
	"upload_records",
	"account_users", "account_erasures", "account_tombstones",
}

// Purge rewrites the stores' tables in the pool's current schema with
// VACUUM (FULL, ANALYZE), so that the bytes of deleted rows (an erased
// account, expired messages and uploads) leave PostgreSQL's table and index
// files, and the column statistics (which sample values) are rebuilt from
// the live rows; then it rewrites pg_statistic, whose dead rows keep the
// old samples. A plain DELETE only marks rows dead; VACUUM without FULL
// leaves their bytes in the pages it frees.
//
// Each table is locked ACCESS EXCLUSIVE while it is rewritten: reads and
// writes of that table wait (see BENCHMARKS.md for the time per million
// rows). Purge does not reach the write-ahead log, WAL archives or base
// backups, which keep deleted rows until they are recycled or expire.
//
// If another process is purging the same database, Purge returns nil at
// once. It needs the ownership of the tables (the role that created them).
func Purge(ctx context.Context, pool *pgxpool.Pool) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: purge: %w", err)
	}
	defer conn.Release()
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, int64(purgeLock)).Scan(&got); err != nil {
		return fmt.Errorf("pgstore: purge: %w", err)
	}
	if !got {
		return nil
	}
	defer func() {
		// A fresh context: the lock must go even when ctx ended.
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(purgeLock))
	}()
	// VACUUM skips, with a mere warning, a catalog the role may not
	// vacuum: check first, so that the purge fails loudly instead.
	var mayStats bool
	if err := conn.QueryRow(ctx, `SELECT r.rolsuper OR d.datdba = r.oid
		FROM pg_roles r, pg_database d
		WHERE r.rolname = current_user AND d.datname = current_database()`).Scan(&mayStats); err != nil {
		return fmt.Errorf("pgstore: purge: %w", err)
	}
	for _, t := range purgeTables {
		var exists bool
		if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, t).Scan(&exists); err != nil {
			return fmt.Errorf("pgstore: purge: %w", err)
		}
		if !exists {
			continue
		}
		if _, err := conn.Exec(ctx, "VACUUM (FULL, ANALYZE) "+pgx.Identifier{t}.Sanitize()); err != nil {
			return fmt.Errorf("pgstore: purge %s: %w", t, err)
		}
		if err := dropEmptyStats(ctx, conn.Conn(), t); err != nil {
			return fmt.Errorf("pgstore: purge %s: %w", t, err)
		}
	}
	// ANALYZE above wrote new statistics rows; the old ones, whose value
	// samples may name a deleted user, are dead rows of pg_statistic.
	if !mayStats {
		return fmt.Errorf("pgstore: purge: %w", ErrPurgeStatistics)
	}
	if _, err := conn.Exec(ctx, "VACUUM (FULL) pg_catalog.pg_statistic"); err != nil {
		return fmt.Errorf("pgstore: purge pg_statistic: %w", err)
	}
	return nil
}

// ErrPurgeStatistics is returned by Purge when the tables were rewritten
// but the column statistics (pg_statistic, whose value samples may name
// deleted users) could not be: the role is neither a superuser nor the
// database's owner.
var ErrPurgeStatistics = errors.New("pgstore: pg_statistic not rewritten: the role must own the database")

// dropEmptyStats removes the column statistics of table if it is empty:
// ANALYZE of an empty table keeps the statistics of its last rows, so the
// last user of a table (say the only one with upload records) would stay
// in their value samples. Changing a column's type to itself drops its
// statistics without rewriting the (empty) table.
func dropEmptyStats(ctx context.Context, conn *pgx.Conn, table string) error {
	id := pgx.Identifier{table}.Sanitize()
	var empty bool
	if err := conn.QueryRow(ctx, "SELECT NOT EXISTS (SELECT 1 FROM "+id+")").Scan(&empty); err != nil || !empty {
		return err
	}
	rows, err := conn.Query(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod)
		FROM pg_stats s JOIN pg_attribute a ON a.attrelid = to_regclass($1) AND a.attname = s.attname
		WHERE s.schemaname = current_schema() AND s.tablename = $1`, table)
	if err != nil {
		return err
	}
	var cols, types []string
	for rows.Next() {
		var c, t string
		if err := rows.Scan(&c, &t); err != nil {
			return err
		}
		cols, types = append(cols, c), append(types, t)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for i, c := range cols {
		// types[i] comes from format_type: a type name, not user input.
		if _, err := conn.Exec(ctx, "ALTER TABLE "+id+" ALTER COLUMN "+pgx.Identifier{c}.Sanitize()+" TYPE "+types[i]); err != nil {
			return err
		}
	}
	return nil
}
