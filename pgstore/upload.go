package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"chatbx.eu/privacy/upload"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// UploadMetaStore is an upload.MetaStore in PostgreSQL. Several processes
// may share one database. Create it with NewUploadMetaStore.
type UploadMetaStore struct {
	pool *pgxpool.Pool
}

var _ upload.MetaStore = (*UploadMetaStore)(nil)

var uploadSchema = []string{`
CREATE TABLE upload_records (
	id           text PRIMARY KEY,
	owner        text NOT NULL,
	filename     text NOT NULL,
	content_type text NOT NULL,
	size         bigint NOT NULL,
	created      bigint NOT NULL, -- ns since 1970
	expires      bigint NOT NULL,
	state        smallint NOT NULL
);
CREATE INDEX upload_records_owner ON upload_records (owner, id);
CREATE INDEX upload_records_expires ON upload_records (expires, id);
CREATE INDEX upload_records_created ON upload_records (created, id);`}

// Advisory lock classes (the first key of the two-key form, a key space
// apart from the one-key form of the migration lock).
const (
	lockUploadOwner = 1
	lockAccountName = 2
)

// NewUploadMetaStore returns a store keeping its table in the pool's
// current schema, creating or migrating it first.
func NewUploadMetaStore(ctx context.Context, pool *pgxpool.Pool) (*UploadMetaStore, error) {
	if pool == nil {
		return nil, fmt.Errorf("pgstore: nil pool: %w", ErrConfig)
	}
	if err := migrate(ctx, pool, "upload", uploadSchema); err != nil {
		return nil, fmt.Errorf("pgstore: upload schema: %w", err)
	}
	return &UploadMetaStore{pool: pool}, nil
}

// encTime stores t as ns since 1970; the zero time is math.MinInt64.
func encTime(t time.Time) int64 {
	if t.IsZero() {
		return math.MinInt64
	}
	return nanos(t)
}

func decTime(ns int64) time.Time {
	if ns == math.MinInt64 {
		return time.Time{}
	}
	return fromNanos(ns)
}

const recordColumns = `id, owner, filename, content_type, size, created, expires, state`

func scanRecords(rows pgx.Rows) ([]upload.Record, error) {
	var out []upload.Record
	var r upload.Record
	var created, expires int64
	var state int16
	_, err := pgx.ForEachRow(rows, []any{&r.ID, &r.Owner, &r.Filename, &r.ContentType, &r.Size, &created, &expires, &state}, func() error {
		r.Created, r.Expires, r.State = decTime(created), decTime(expires), upload.State(state)
		out = append(out, r)
		return nil
	})
	return out, err
}

// Reserve implements upload.MetaStore. It serializes on a transaction
// advisory lock keyed by a hash of the owner, which works across processes
// and leaves no row behind.
func (s *UploadMetaStore) Reserve(ctx context.Context, r upload.Record, admit func([]upload.Record) error) error {
	var admitErr error
	err := retry(ctx, func() error {
		admitErr = nil
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, lockUploadOwner, r.Owner); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, `SELECT `+recordColumns+` FROM upload_records WHERE owner = $1 ORDER BY id`, r.Owner)
			if err != nil {
				return err
			}
			existing, err := scanRecords(rows)
			if err != nil {
				return err
			}
			if admitErr = admit(existing); admitErr != nil {
				return admitErr
			}
			_, err = tx.Exec(ctx, `INSERT INTO upload_records (`+recordColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
				r.ID, r.Owner, r.Filename, r.ContentType, r.Size, encTime(r.Created), encTime(r.Expires), int16(r.State))
			return err
		})
	})
	if admitErr != nil {
		return admitErr
	}
	if err != nil {
		return fmt.Errorf("pgstore: reserve: %w", err)
	}
	return nil
}

// missingOrUsed tells why a conditional update of record id changed
// nothing: the record is missing (ErrNotFound) or in another state.
func (s *UploadMetaStore) missingOrUsed(ctx context.Context, id string) error {
	var one int
	err := s.pool.QueryRow(ctx, `SELECT 1 FROM upload_records WHERE id = $1`, id).Scan(&one)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("pgstore: upload record: %w", upload.ErrNotFound)
	case err != nil:
		return fmt.Errorf("pgstore: upload record: %w", err)
	}
	return fmt.Errorf("pgstore: upload record in another state: %w", upload.ErrSlotUsed)
}

// Claim implements upload.MetaStore: a conditional UPDATE, so exactly one
// of several concurrent claims changes the row.
func (s *UploadMetaStore) Claim(ctx context.Context, id string, deadline time.Time) (upload.Record, error) {
	rows, err := s.pool.Query(ctx, `UPDATE upload_records SET state = $2, expires = $3
		WHERE id = $1 AND state = $4 RETURNING `+recordColumns,
		id, int16(upload.StateUploading), encTime(deadline), int16(upload.StateReserved))
	if err != nil {
		return upload.Record{}, fmt.Errorf("pgstore: claim: %w", err)
	}
	recs, err := scanRecords(rows)
	if err != nil {
		return upload.Record{}, fmt.Errorf("pgstore: claim: %w", err)
	}
	if len(recs) == 0 {
		return upload.Record{}, s.missingOrUsed(ctx, id)
	}
	return recs[0], nil
}

// Commit implements upload.MetaStore.
func (s *UploadMetaStore) Commit(ctx context.Context, id string, created, expires time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE upload_records SET state = $2, created = $3, expires = $4
		WHERE id = $1 AND state = $5`,
		id, int16(upload.StateStored), encTime(created), encTime(expires), int16(upload.StateUploading))
	if err != nil {
		return fmt.Errorf("pgstore: commit: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return s.missingOrUsed(ctx, id)
	}
	return nil
}

// Get implements upload.MetaStore.
func (s *UploadMetaStore) Get(ctx context.Context, id string) (upload.Record, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+recordColumns+` FROM upload_records WHERE id = $1`, id)
	if err != nil {
		return upload.Record{}, fmt.Errorf("pgstore: get: %w", err)
	}
	recs, err := scanRecords(rows)
	if err != nil {
		return upload.Record{}, fmt.Errorf("pgstore: get: %w", err)
	}
	if len(recs) == 0 {
		return upload.Record{}, fmt.Errorf("pgstore: upload record: %w", upload.ErrNotFound)
	}
	return recs[0], nil
}

// Delete implements upload.MetaStore, in statements of at most 1,000 ids.
func (s *UploadMetaStore) Delete(ctx context.Context, ids ...string) error {
	for len(ids) > 0 {
		n := min(len(ids), batchSize)
		if _, err := s.pool.Exec(ctx, `DELETE FROM upload_records WHERE id = ANY($1)`, ids[:n]); err != nil {
			return fmt.Errorf("pgstore: delete: %w", err)
		}
		ids = ids[n:]
	}
	return nil
}

func (s *UploadMetaStore) list(ctx context.Context, sql string, args ...any) ([]upload.Record, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("pgstore: list uploads: %w", err)
	}
	recs, err := scanRecords(rows)
	if err != nil {
		return nil, fmt.Errorf("pgstore: list uploads: %w", err)
	}
	return recs, nil
}

// ByOwner implements upload.MetaStore.
func (s *UploadMetaStore) ByOwner(ctx context.Context, owner string) ([]upload.Record, error) {
	return s.list(ctx, `SELECT `+recordColumns+` FROM upload_records WHERE owner = $1 ORDER BY id`, owner)
}

// Expiring implements upload.MetaStore.
func (s *UploadMetaStore) Expiring(ctx context.Context, t time.Time, limit int) ([]upload.Record, error) {
	if limit <= 0 {
		return nil, nil
	}
	return s.list(ctx, `SELECT `+recordColumns+` FROM upload_records WHERE expires < $1
		ORDER BY expires, id LIMIT $2`, encTime(t), limit)
}

// Older implements upload.MetaStore.
func (s *UploadMetaStore) Older(ctx context.Context, t time.Time, limit int) ([]upload.Record, error) {
	if limit <= 0 {
		return nil, nil
	}
	return s.list(ctx, `SELECT `+recordColumns+` FROM upload_records WHERE created < $1
		ORDER BY created, id LIMIT $2`, encTime(t), limit)
}
