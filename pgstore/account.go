package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"chatbx.eu/privacy/account"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// AccountStore is an account.Store in PostgreSQL. Several processes may
// share one database: every transaction that checks before it writes
// (registration against names, skeletons and tombstones; the start and end
// of an erasure) runs SERIALIZABLE and is retried on a serialization
// failure, so a name cannot be registered by one process while another
// turns it into a tombstone. Create it with NewAccountStore.
type AccountStore struct {
	pool *pgxpool.Pool
}

var _ account.Store = (*AccountStore)(nil)

var accountSchema = []string{`
CREATE TABLE account_users (
	username text PRIMARY KEY,
	skeleton text NOT NULL, -- '' for none
	hash     text NOT NULL,
	created  bigint NOT NULL, -- ns since 1970
	blocked  boolean NOT NULL,
	deleting boolean NOT NULL,
	profile  jsonb NOT NULL
);
CREATE INDEX account_users_skeleton ON account_users (skeleton) WHERE skeleton <> '';
CREATE TABLE account_erasures (
	username text PRIMARY KEY,
	started  bigint NOT NULL,
	done     text[] NOT NULL,
	attempts integer NOT NULL
);
CREATE INDEX account_erasures_started ON account_erasures (started, username);
CREATE TABLE account_tombstones (
	key     bytea PRIMARY KEY,
	expires bigint NOT NULL
);
CREATE INDEX account_tombstones_expires ON account_tombstones (expires);
CREATE TABLE account_secrets (
	name  text PRIMARY KEY,
	value bytea NOT NULL
);
CREATE TABLE account_meta (
	key   text PRIMARY KEY,
	value text NOT NULL
);`}

// NewAccountStore returns a store keeping its tables in the pool's current
// schema, creating or migrating them first. Skeletons of another
// account.SkeletonVersion (or none) are computed again for every account,
// in the transaction that records the version.
func NewAccountStore(ctx context.Context, pool *pgxpool.Pool) (*AccountStore, error) {
	if pool == nil {
		return nil, fmt.Errorf("pgstore: nil pool: %w", ErrConfig)
	}
	if err := migrate(ctx, pool, "account", accountSchema); err != nil {
		return nil, fmt.Errorf("pgstore: account schema: %w", err)
	}
	s := &AccountStore{pool: pool}
	if err := s.serializable(ctx, s.reindexSkeletons); err != nil {
		return nil, fmt.Errorf("pgstore: account skeletons: %w", err)
	}
	return s, nil
}

func (s *AccountStore) reindexSkeletons(ctx context.Context, tx pgx.Tx) error {
	var v string
	err := tx.QueryRow(ctx, `SELECT value FROM account_meta WHERE key = 'skeleton-version'`).Scan(&v)
	if err == nil && v == account.SkeletonVersion {
		return nil
	}
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	rows, err := tx.Query(ctx, `SELECT username FROM account_users`)
	if err != nil {
		return err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, n := range names {
		if _, err := tx.Exec(ctx, `UPDATE account_users SET skeleton = $2 WHERE username = $1`, n, account.Skeleton(n)); err != nil {
			return err
		}
	}
	_, err = tx.Exec(ctx, `INSERT INTO account_meta (key, value) VALUES ('skeleton-version', $1)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, account.SkeletonVersion)
	return err
}

// serializable runs fn in a SERIALIZABLE transaction, again after a
// serialization failure.
func (s *AccountStore) serializable(ctx context.Context, fn func(context.Context, pgx.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return retry(ctx, func() error {
		return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.Serializable}, func(tx pgx.Tx) error {
			return fn(ctx, tx)
		})
	})
}

// wrap adds context to a database error; the account package's sentinel
// errors and the context's errors stay matchable with errors.Is.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("pgstore: %s: %w", op, err)
}

func accTime(t time.Time) int64 {
	if t.IsZero() {
		return math.MinInt64
	}
	return nanos(t)
}

const userColumns = `username, skeleton, hash, created, blocked, deleting, profile`

func getUser(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, username string, lock bool) (account.Record, error) {
	sql := `SELECT ` + userColumns + ` FROM account_users WHERE username = $1`
	if lock {
		sql += ` FOR UPDATE`
	}
	var r account.Record
	var created int64
	var profile []byte
	err := q.QueryRow(ctx, sql, username).Scan(&r.Username, &r.Skeleton, &r.Hash, &created, &r.Blocked, &r.Deleting, &profile)
	if errors.Is(err, pgx.ErrNoRows) {
		return account.Record{}, account.ErrNotFound
	}
	if err != nil {
		return account.Record{}, err
	}
	r.Created = decTime(created)
	if err := json.Unmarshal(profile, &r.Profile); err != nil {
		return account.Record{}, fmt.Errorf("stored profile: %w", err)
	}
	return r, nil
}

// Create implements account.Store.
func (s *AccountStore) Create(ctx context.Context, r account.Record, tombstone []byte) error {
	if r.Username == "" {
		return fmt.Errorf("pgstore: create: empty username: %w", account.ErrBadRequest)
	}
	profile, err := json.Marshal(r.Profile)
	if err != nil {
		return wrap("create", err)
	}
	return wrap("create", s.serializable(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var taken bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM account_users WHERE username = $1)
			OR ($2 <> '' AND EXISTS (SELECT 1 FROM account_users WHERE skeleton = $2 AND skeleton <> ''))
			OR EXISTS (SELECT 1 FROM account_tombstones WHERE key = $3 AND length($3) > 0 AND expires > $4)`,
			r.Username, r.Skeleton, tombstone, accTime(r.Created)).Scan(&taken)
		if err != nil {
			return err
		}
		if taken {
			return account.ErrExists
		}
		_, err = tx.Exec(ctx, `INSERT INTO account_users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			r.Username, r.Skeleton, r.Hash, accTime(r.Created), r.Blocked, r.Deleting, profile)
		return err
	}))
}

// Get implements account.Store.
func (s *AccountStore) Get(ctx context.Context, username string) (account.Record, error) {
	if err := ctx.Err(); err != nil {
		return account.Record{}, err
	}
	r, err := getUser(ctx, s.pool, username, false)
	return r, wrap("get", err)
}

// Update implements account.Store.
func (s *AccountStore) Update(ctx context.Context, username string, fn func(*account.Record) error) error {
	var fnErr error
	err := s.serializable(ctx, func(ctx context.Context, tx pgx.Tx) error {
		fnErr = nil
		r, err := getUser(ctx, tx, username, true)
		if err != nil {
			return err
		}
		orig := r
		if fnErr = fn(&r); fnErr != nil {
			return fnErr
		}
		if r.Username != orig.Username || r.Skeleton != orig.Skeleton || r.Deleting != orig.Deleting {
			return errors.New("Update must not change Username, Skeleton or Deleting")
		}
		profile, err := json.Marshal(r.Profile)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE account_users SET hash = $2, created = $3, blocked = $4, profile = $5
			WHERE username = $1`, username, r.Hash, accTime(r.Created), r.Blocked, profile)
		return err
	})
	if fnErr != nil && errors.Is(err, fnErr) {
		return fnErr
	}
	return wrap("update", err)
}

// BeginErasure implements account.Store.
func (s *AccountStore) BeginErasure(ctx context.Context, e account.Erasure) error {
	return wrap("begin erasure", s.serializable(ctx, func(ctx context.Context, tx pgx.Tx) error {
		r, err := getUser(ctx, tx, e.Username, true)
		if err != nil {
			return err
		}
		if r.Deleting {
			return account.ErrExists
		}
		tag, err := tx.Exec(ctx, `INSERT INTO account_erasures (username, started, done, attempts)
			VALUES ($1, $2, $3, $4) ON CONFLICT (username) DO NOTHING`,
			e.Username, accTime(e.Started), doneList(e.Done), e.Attempts)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return account.ErrExists
		}
		_, err = tx.Exec(ctx, `UPDATE account_users SET deleting = true WHERE username = $1`, e.Username)
		return err
	}))
}

func doneList(d []string) []string {
	if d == nil {
		return []string{}
	}
	return d
}

// Erasures implements account.Store.
func (s *AccountStore) Erasures(ctx context.Context) ([]account.Erasure, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT username, started, done, attempts FROM account_erasures ORDER BY started, username`)
	if err != nil {
		return nil, wrap("erasures", err)
	}
	var out []account.Erasure
	var e account.Erasure
	var started int64
	_, err = pgx.ForEachRow(rows, []any{&e.Username, &started, &e.Done, &e.Attempts}, func() error {
		e.Started = decTime(started)
		if len(e.Done) == 0 {
			e.Done = nil
		}
		out = append(out, e)
		e.Done = nil
		return nil
	})
	if err != nil {
		return nil, wrap("erasures", err)
	}
	return out, nil
}

// UpdateErasure implements account.Store.
func (s *AccountStore) UpdateErasure(ctx context.Context, e account.Erasure) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `UPDATE account_erasures SET started = $2, done = $3, attempts = $4 WHERE username = $1`,
		e.Username, accTime(e.Started), doneList(e.Done), e.Attempts)
	if err != nil {
		return wrap("update erasure", err)
	}
	if tag.RowsAffected() == 0 {
		return wrap("update erasure", account.ErrNotFound)
	}
	return nil
}

// FinishErasure implements account.Store.
func (s *AccountStore) FinishErasure(ctx context.Context, username string, t account.Tombstone) error {
	if len(t.Key) == 0 {
		return fmt.Errorf("pgstore: finish erasure: empty tombstone key: %w", account.ErrBadRequest)
	}
	return wrap("finish erasure", s.serializable(ctx, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM account_erasures WHERE username = $1`, username)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return account.ErrNotFound
		}
		if _, err := tx.Exec(ctx, `DELETE FROM account_users WHERE username = $1`, username); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO account_tombstones (key, expires) VALUES ($1, $2)
			ON CONFLICT (key) DO UPDATE SET expires = excluded.expires`, t.Key, accTime(t.Expires))
		return err
	}))
}

// Tombstone implements account.Store.
func (s *AccountStore) Tombstone(ctx context.Context, key []byte) (account.Tombstone, error) {
	if err := ctx.Err(); err != nil {
		return account.Tombstone{}, err
	}
	if len(key) == 0 {
		return account.Tombstone{}, wrap("tombstone", account.ErrNotFound)
	}
	var exp int64
	err := s.pool.QueryRow(ctx, `SELECT expires FROM account_tombstones WHERE key = $1`, key).Scan(&exp)
	if errors.Is(err, pgx.ErrNoRows) {
		return account.Tombstone{}, wrap("tombstone", account.ErrNotFound)
	}
	if err != nil {
		return account.Tombstone{}, wrap("tombstone", err)
	}
	return account.Tombstone{Key: append([]byte(nil), key...), Expires: decTime(exp)}, nil
}

// ExpireTombstones implements account.Store, in statements of at most
// 1,000 rows.
func (s *AccountStore) ExpireTombstones(ctx context.Context, before time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	total := 0
	for {
		tag, err := s.pool.Exec(ctx, fmt.Sprintf(`DELETE FROM account_tombstones WHERE key IN
			(SELECT key FROM account_tombstones WHERE expires < $1 LIMIT %d)`, batchSize), accTime(before))
		if err != nil {
			return total, wrap("expire tombstones", err)
		}
		total += int(tag.RowsAffected())
		if tag.RowsAffected() < batchSize {
			return total, nil
		}
	}
}

// LoadOrStoreSecret implements account.Store.
func (s *AccountStore) LoadOrStoreSecret(ctx context.Context, name string, value []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The no-op update makes the statement return the stored row whether
	// it inserted it or found it.
	var v []byte
	err := s.pool.QueryRow(ctx, `INSERT INTO account_secrets (name, value) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING value`, name, value).Scan(&v)
	if err != nil {
		return nil, wrap("secret", err)
	}
	return v, nil
}
