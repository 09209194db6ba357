package pgstore

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"chatbx.eu/privacy/mam"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"mellium.im/xmpp/jid"
)

// MAMConfig configures a MAMStore. The zero MAMConfig is usable.
type MAMConfig struct {
	// Now is the clock that stamps messages appended with a zero Time; nil
	// means time.Now.
	Now func() time.Time

	// Skew is how far before the archive's newest message the time of an
	// appended message may lie and still be moved up to that newest time,
	// so that appends racing from several goroutines or processes (each
	// stamped by its own clock a moment before its transaction) sort in
	// commit order and a client paging forwards never skips one. Older
	// times (imports, back-dated messages) keep their time and sort before.
	// Zero means 2 seconds; a negative Skew turns the adjustment off.
	Skew time.Duration

	// GroupCommit is how many append transactions may be in flight at
	// once: each commits, in one transaction and one WAL flush, every
	// append that queued while the others ran, as bbolt's Batch does for
	// the bolt store. Zero means 4; a negative value commits each append on
	// its own. An append whose group fails is retried on its own, so one
	// bad message never fails the others.
	GroupCommit int

	// EraseGroupMessages makes Erase delete the user's own messages in room
	// archives instead of only removing the user's real JID from them.
	EraseGroupMessages bool
}

// MAMStore is a mam.Store in PostgreSQL. Several processes may share one
// database. Create it with NewMAMStore.
type MAMStore struct {
	pool *pgxpool.Pool
	cfg  MAMConfig

	mu       sync.Mutex
	queue    []*appendReq // appends waiting for a group
	flushers int          // groups in flight

	jids jidCache // stored JIDs, parsed
}

var _ mam.Store = (*MAMStore)(nil)

// defaultMax is the page size of a query with Max 0, as in package mam.
const defaultMax = 50

var mamSchema = []string{`
CREATE TABLE mam_archives (
	archive text PRIMARY KEY,
	seq     bigint NOT NULL, -- last sequence number given out
	last_ts bigint NOT NULL, -- newest message time, ns since 1970
	n_all   bigint NOT NULL, -- messages
	n_incl  bigint NOT NULL  -- messages shown without IncludeGroupchat
);
CREATE TABLE mam_messages (
	archive   text    NOT NULL,
	ts        bigint  NOT NULL,
	seq       bigint  NOT NULL,
	id        bytea   NOT NULL,
	with_bare text    NOT NULL,
	with_res  text    NOT NULL,
	groupchat boolean NOT NULL,
	excluded  boolean NOT NULL, -- groupchat in a user archive
	real_jid  text,
	stanza    bytea   NOT NULL,
	PRIMARY KEY (archive, ts, seq)
);
CREATE UNIQUE INDEX mam_messages_id ON mam_messages (archive, id);
CREATE INDEX mam_messages_with ON mam_messages (archive, with_bare, ts, seq);
CREATE INDEX mam_messages_expiry ON mam_messages (ts);
CREATE INDEX mam_messages_real ON mam_messages (real_jid) WHERE real_jid IS NOT NULL;
CREATE TABLE mam_counts (
	archive   text    NOT NULL,
	with_bare text    NOT NULL,
	with_res  text    NOT NULL,
	excluded  boolean NOT NULL,
	n         bigint  NOT NULL,
	PRIMARY KEY (archive, with_bare, with_res, excluded)
);
CREATE INDEX mam_counts_empty ON mam_counts (archive) WHERE n <= 0;
CREATE TABLE mam_prefs (
	owner  text PRIMARY KEY,
	def    text NOT NULL,
	always text[] NOT NULL,
	never  text[] NOT NULL
);`}

// NewMAMStore returns a store keeping its tables in the pool's current
// schema (the first of its search_path), creating or migrating them first.
func NewMAMStore(ctx context.Context, pool *pgxpool.Pool, cfg MAMConfig) (*MAMStore, error) {
	if pool == nil {
		return nil, fmt.Errorf("pgstore: nil pool: %w", ErrConfig)
	}
	if err := migrate(ctx, pool, "mam", mamSchema); err != nil {
		return nil, fmt.Errorf("pgstore: mam schema: %w", err)
	}
	return &MAMStore{pool: pool, cfg: cfg}, nil
}

func (s *MAMStore) now() time.Time {
	if s.cfg.Now != nil {
		return s.cfg.Now()
	}
	return time.Now()
}

func (s *MAMStore) skew() int64 {
	switch {
	case s.cfg.Skew < 0:
		return 0
	case s.cfg.Skew == 0:
		return int64(2 * time.Second)
	}
	return int64(s.cfg.Skew)
}

// nanos converts t to ns since 1970, saturating outside int64's range
// (years 1678 to 2262).
func nanos(t time.Time) int64 {
	switch {
	case t.Before(minTime):
		return math.MinInt64
	case t.After(maxTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

func fromNanos(ns int64) time.Time { return time.Unix(0, ns).UTC() }

func zeroJID(j jid.JID) bool { return j.Equal(jid.JID{}) }

const appendSQL = `
WITH a AS (
	INSERT INTO mam_archives AS a (archive, seq, last_ts, n_all, n_incl)
	VALUES ($1, 1, $2, 1, $3)
	ON CONFLICT (archive) DO UPDATE SET seq = a.seq + 1,
		last_ts = greatest(a.last_ts, excluded.last_ts),
		n_all = a.n_all + 1, n_incl = a.n_incl + excluded.n_incl
	RETURNING seq, CASE WHEN $2 < last_ts AND $2 >= last_ts - $4 THEN last_ts ELSE $2 END AS ts
), c AS (
	INSERT INTO mam_counts AS c (archive, with_bare, with_res, excluded, n)
	VALUES ($1, $5, $6, $7, 1)
	ON CONFLICT (archive, with_bare, with_res, excluded) DO UPDATE SET n = c.n + 1
)
INSERT INTO mam_messages (archive, ts, seq, id, with_bare, with_res, groupchat, excluded, real_jid, stanza)
SELECT $1, a.ts, a.seq, $8, $5, $6, $9, $7, $10, $11 FROM a
RETURNING ts`

// Append implements mam.Store. It is one statement: the archive's row
// (its sequence counter) is locked until the message is committed, so
// sequence numbers in one archive follow commit order.
func (s *MAMStore) Append(ctx context.Context, m mam.Message) (mam.Message, error) {
	if zeroJID(m.Archive) {
		return mam.Message{}, fmt.Errorf("pgstore: append without archive: %w", mam.ErrBadRequest)
	}
	if len(m.Stanza) == 0 {
		return mam.Message{}, fmt.Errorf("pgstore: append of an empty stanza: %w", mam.ErrBadRequest)
	}
	if m.Time.IsZero() {
		m.Time = s.now()
	}
	if m.Time.Before(minTime) || m.Time.After(maxTime) {
		return mam.Message{}, fmt.Errorf("pgstore: message time out of range: %w", mam.ErrBadRequest)
	}
	m.Archive = m.Archive.Bare()
	var real *string
	if !zeroJID(m.RealJID) {
		m.RealJID = m.RealJID.Bare()
		r := m.RealJID.String()
		real = &r
	}
	m.Stanza = slices.Clone(m.Stanza)
	excluded := m.Groupchat && !m.With.Bare().Equal(m.Archive)
	incl := int64(1)
	if excluded {
		incl = 0
	}
	r := &appendReq{m: m, args: []any{m.Archive.String(), m.Time.UnixNano(), incl, s.skew(),
		m.With.Bare().String(), m.With.Resourcepart(), excluded, nil, m.Groupchat, real, m.Stanza}}
	if s.cfg.GroupCommit < 0 {
		s.appendOne(ctx, r)
	} else if err := s.appendGrouped(ctx, r); err != nil {
		return mam.Message{}, err
	}
	if r.err != nil {
		return mam.Message{}, r.err
	}
	return r.m, nil
}

// appendReq is one message on its way into the archive.
type appendReq struct {
	m    mam.Message // prepared; m.ID and m.Time are set once stored
	args []any       // of appendSQL; args[idArg] is the raw id
	err  error
	done chan struct{}
}

const idArg = 7

// appendOne stores r in a statement of its own, with a new id if the
// drawn one is taken in the archive, and sets r.m or r.err.
func (s *MAMStore) appendOne(ctx context.Context, r *appendReq) {
	for range maxRetries {
		r.newID()
		var ts int64
		err := retry(ctx, func() error {
			return s.pool.QueryRow(ctx, appendSQL, r.args...).Scan(&ts)
		})
		if idTaken(err) {
			continue // the same random id twice in one archive: draw again
		}
		if err != nil {
			r.err = fmt.Errorf("pgstore: append: %w", err)
			return
		}
		r.m.Time = fromNanos(ts)
		return
	}
	r.err = errors.New("pgstore: append: no free archive id")
}

func (r *appendReq) newID() {
	r.m.ID = mam.NewID()
	raw, _ := mam.ParseID(r.m.ID)
	r.args[idArg] = raw[:]
}

func idTaken(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == "mam_messages_id"
}

// pos is a message's place in its archive.
type pos struct{ ts, seq int64 }

// positions looks up the given ids in the archive; an id not there is an
// error wrapping mam.ErrNotFound.
func (s *MAMStore) positions(ctx context.Context, archive string, ids []string) (map[string]pos, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	raws := make([][]byte, 0, len(ids))
	for _, id := range ids {
		raw, err := mam.ParseID(id)
		if err != nil {
			return nil, fmt.Errorf("pgstore: %w", err)
		}
		raws = append(raws, raw[:])
	}
	rows, err := s.pool.Query(ctx, `SELECT id, ts, seq FROM mam_messages WHERE archive = $1 AND id = ANY($2)`, archive, raws)
	if err != nil {
		return nil, fmt.Errorf("pgstore: query: %w", err)
	}
	out := make(map[string]pos, len(ids))
	var raw []byte
	var p pos
	_, err = pgx.ForEachRow(rows, []any{&raw, &p.ts, &p.seq}, func() error {
		var a [16]byte
		copy(a[:], raw)
		out[idFromRaw(a)] = p
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: query: %w", err)
	}
	for _, id := range ids {
		if _, ok := out[id]; !ok {
			return nil, fmt.Errorf("pgstore: archive id: %w", mam.ErrNotFound)
		}
	}
	return out, nil
}

func idFromRaw(raw [16]byte) string { return base64.RawURLEncoding.EncodeToString(raw[:]) }

// where builds SQL conditions and their arguments.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	for _, a := range args {
		w.args = append(w.args, a)
		cond = strings.Replace(cond, "?", fmt.Sprintf("$%d", len(w.args)), 1)
	}
	w.conds = append(w.conds, cond)
}

func (w *where) String() string { return strings.Join(w.conds, " AND ") }

// Query implements mam.Store. Count is exact (from per-archive counters)
// for queries without Start, End, AfterID, BeforeID and IDs, and -1 (unknown)
// otherwise; FirstIndex is known for first and last pages.
func (s *MAMStore) Query(ctx context.Context, archive jid.JID, q mam.Query) (mam.Page, error) {
	if zeroJID(archive) {
		return mam.Page{}, fmt.Errorf("pgstore: query without archive: %w", mam.ErrBadRequest)
	}
	if q.Max < 0 {
		return mam.Page{}, fmt.Errorf("pgstore: negative page size: %w", mam.ErrBadRequest)
	}
	size := q.Max
	if size == 0 {
		size = defaultMax
	}
	archive = archive.Bare()
	a := archive.String()
	sql, args, backward, nids := pageSQL(a, q, size)
	counted := q.Start.IsZero() && q.End.IsZero() && q.AfterID == "" && q.BeforeID == "" && len(q.IDs) == 0
	if counted {
		// The counter, in the same statement (one snapshot, one round trip).
		var csql string
		csql, args = countSQL(q, args)
		sql = strings.Replace(sql, "-1::bigint AS n", "("+csql+") AS n", 1)
	}
	// One statement reads the page, checks the ids and reads the counter.
	var msgs []mam.Message
	var found, count int64
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return mam.Page{}, fmt.Errorf("pgstore: query: %w", err)
	}
	msgs, err = s.readMessages(rows, archive, size+1, &found, &count)
	if err != nil {
		return mam.Page{}, fmt.Errorf("pgstore: query: %w", err)
	}
	if len(msgs) == 0 || found != int64(nids) {
		// An empty page: maybe an id is not in the archive (comparisons
		// with it matched nothing), and the counter was not read.
		if _, err := s.positions(ctx, a, lookupIDs(q)); err != nil {
			return mam.Page{}, err
		}
		if len(msgs) > 0 {
			return mam.Page{}, fmt.Errorf("pgstore: query: archive ids changed under the query")
		}
		count = -1
		if counted {
			csql, cargs := countSQL(q, []any{a})
			if err := s.pool.QueryRow(ctx, csql, cargs...).Scan(&count); err != nil {
				return mam.Page{}, fmt.Errorf("pgstore: query: %w", err)
			}
		}
	}
	p := mam.Page{FirstIndex: -1, Count: int(count), Complete: len(msgs) <= size}
	if len(msgs) > size {
		msgs = msgs[:size]
	}
	if backward {
		slices.Reverse(msgs)
	}
	p.Messages = msgs
	if count < 0 && p.Complete && q.After == "" && q.Before == "" {
		// The page holds every match.
		p.Count = len(msgs)
	}
	switch {
	case len(msgs) == 0:
	case !backward && q.After == "":
		p.FirstIndex = 0
	case backward && p.Complete && q.After == "":
		p.FirstIndex = 0
	case backward && q.Before == "" && count >= 0:
		p.FirstIndex = int(count) - len(msgs)
	}
	return p, nil
}

// lookupIDs returns the distinct archive ids q names.
func lookupIDs(q mam.Query) []string {
	var ids []string
	for _, id := range append([]string{q.AfterID, q.BeforeID, q.After, q.Before}, q.IDs...) {
		if id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// pageSQL returns the statement selecting one page (size+1 rows, to see
// whether there are more) of q's matches in archive a, whether it reads
// backwards, and nids: for a query with an IDs filter, how many distinct
// ids q names, and 0 otherwise. Each row also holds, as found, the number
// of those nids ids found in the archive, and a column n, -1::bigint, for
// the caller to replace with a counter. The ids are resolved in the
// statement; an id that is not a well-formed archive id matches nothing.
func pageSQL(a string, q mam.Query, size int) (sql string, args []any, backward bool, nids int) {
	ids := lookupIDs(q)
	raws := make([][]byte, 0, len(ids))
	for _, id := range ids {
		if raw, err := mam.ParseID(id); err == nil {
			raws = append(raws, raw[:])
		}
	}
	// The ids are read in a CTE only for an IDs filter, which needs the
	// set; an id compared with is read by scalar subqueries (two index
	// lookups cost less than materializing the CTE and counting it). A
	// missing id compares as NULL: the page is empty and Query then looks
	// the ids up.
	cte := len(q.IDs) > 0
	src := "mam_messages WHERE archive = $1 AND"
	var w where
	w.args = []any{a}
	if cte {
		src = "ids WHERE"
		w.args = append(w.args, raws)
	}
	w.add("archive = $1")
	at := func(id string) any {
		raw, _ := mam.ParseID(id)
		return raw[:]
	}
	if !zeroJID(q.With) {
		w.add("with_bare = ?", q.With.Bare().String())
		if r := q.With.Resourcepart(); r != "" {
			w.add("with_res = ?", r)
		}
	}
	if !q.IncludeGroupchat {
		w.add("NOT excluded")
	}
	if !q.Start.IsZero() {
		w.add("ts >= ?", nanos(q.Start))
	}
	if !q.End.IsZero() {
		w.add("ts <= ?", nanos(q.End))
	}
	// A row comparison with a subquery is no index condition: the scalar
	// bound on ts before it is (an InitPlan parameter), so a page in the
	// middle of an archive starts its index scan at the id instead of
	// filtering every row before it.
	after := "ts >= (SELECT ts FROM " + src + " id = ?) AND (ts, seq) > (SELECT ts, seq FROM " + src + " id = ?)"
	before := "ts <= (SELECT ts FROM " + src + " id = ?) AND (ts, seq) < (SELECT ts, seq FROM " + src + " id = ?)"
	if q.AfterID != "" {
		w.add(after, at(q.AfterID), at(q.AfterID))
	}
	if q.BeforeID != "" {
		w.add(before, at(q.BeforeID), at(q.BeforeID))
	}
	if len(q.IDs) > 0 {
		w.add("id IN (SELECT id FROM ids)")
	}
	if q.After != "" {
		w.add(after, at(q.After), at(q.After))
	}
	if q.Before != "" {
		w.add(before, at(q.Before), at(q.Before))
	}
	backward = q.Before != "" || q.Last
	order := "ts, seq"
	if backward {
		order = "ts DESC, seq DESC"
	}
	with, found := "", "0::bigint"
	if cte {
		with = "WITH ids AS (SELECT id, ts, seq FROM mam_messages WHERE archive = $1 AND id = ANY($2))\n"
		found = "(SELECT count(*) FROM ids)"
		nids = len(ids)
	}
	sql = fmt.Sprintf(`%sSELECT %s, %s AS found, -1::bigint AS n FROM mam_messages WHERE %s ORDER BY %s LIMIT %d`,
		with, msgColumns, found, w.String(), order, size+1)
	return sql, w.args, backward, nids
}

// countSQL returns a query of the number of messages matching q's With
// and IncludeGroupchat, from the counters, its archive being $1; it
// appends its other arguments to args.
func countSQL(q mam.Query, args []any) (string, []any) {
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	switch {
	case zeroJID(q.With):
		col := "n_incl"
		if q.IncludeGroupchat {
			col = "n_all"
		}
		return `SELECT coalesce(max(` + col + `), 0) FROM mam_archives WHERE archive = $1`, args
	case q.With.Resourcepart() == "":
		return `SELECT coalesce(sum(n), 0)::bigint FROM mam_counts WHERE archive = $1 AND with_bare = ` +
			arg(q.With.String()) + ` AND (` + arg(q.IncludeGroupchat) + ` OR NOT excluded)`, args
	default:
		return `SELECT coalesce(sum(n), 0)::bigint FROM mam_counts WHERE archive = $1 AND with_bare = ` +
			arg(q.With.Bare().String()) + ` AND with_res = ` + arg(q.With.Resourcepart()) +
			` AND (` + arg(q.IncludeGroupchat) + ` OR NOT excluded)`, args
	}
}

// Metadata implements mam.Store.
func (s *MAMStore) Metadata(ctx context.Context, archive jid.JID) (mam.Metadata, error) {
	a := archive.Bare().String()
	rows, err := s.pool.Query(ctx, `
		(SELECT `+msgColumns+` FROM mam_messages WHERE archive = $1 ORDER BY ts, seq LIMIT 1)
		UNION ALL
		(SELECT `+msgColumns+` FROM mam_messages WHERE archive = $1 ORDER BY ts DESC, seq DESC LIMIT 1)`, a)
	if err != nil {
		return mam.Metadata{}, fmt.Errorf("pgstore: metadata: %w", err)
	}
	ms, err := s.readMessages(rows, archive.Bare(), 2)
	if err != nil {
		return mam.Metadata{}, fmt.Errorf("pgstore: metadata: %w", err)
	}
	if len(ms) != 2 {
		return mam.Metadata{}, nil
	}
	return mam.Metadata{StartID: ms[0].ID, StartTime: ms[0].Time, EndID: ms[1].ID, EndTime: ms[1].Time}, nil
}

// Prefs implements mam.Store.
func (s *MAMStore) Prefs(ctx context.Context, owner jid.JID) (mam.Prefs, error) {
	var def string
	var always, never []string
	err := s.pool.QueryRow(ctx, `SELECT def, always, never FROM mam_prefs WHERE owner = $1`,
		owner.Bare().String()).Scan(&def, &always, &never)
	if errors.Is(err, pgx.ErrNoRows) {
		return mam.Prefs{}, nil
	}
	if err != nil {
		return mam.Prefs{}, fmt.Errorf("pgstore: prefs: %w", err)
	}
	p := mam.Prefs{Default: mam.Default(def)}
	for _, l := range []struct {
		in  []string
		out *[]jid.JID
	}{{always, &p.Always}, {never, &p.Never}} {
		for _, s := range l.in {
			j, err := jid.Parse(s)
			if err != nil {
				return mam.Prefs{}, fmt.Errorf("pgstore: stored prefs: %w", err)
			}
			*l.out = append(*l.out, j)
		}
	}
	return p, nil
}

// SetPrefs implements mam.Store.
func (s *MAMStore) SetPrefs(ctx context.Context, owner jid.JID, p mam.Prefs) error {
	if zeroJID(owner) {
		return fmt.Errorf("pgstore: prefs without owner: %w", mam.ErrBadRequest)
	}
	switch p.Default {
	case "", mam.DefaultNever, mam.DefaultAlways, mam.DefaultRoster:
	default:
		return fmt.Errorf("pgstore: unknown default: %w", mam.ErrBadRequest)
	}
	strs := func(js []jid.JID) []string {
		out := make([]string, len(js))
		for i, j := range js {
			out[i] = j.String()
		}
		return out
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO mam_prefs (owner, def, always, never) VALUES ($1, $2, $3, $4)
		ON CONFLICT (owner) DO UPDATE SET def = excluded.def, always = excluded.always, never = excluded.never`,
		owner.Bare().String(), string(p.Default), strs(p.Always), strs(p.Never))
	if err != nil {
		return fmt.Errorf("pgstore: set prefs: %w", err)
	}
	return nil
}

// Name implements mam.Store; it returns "mam".
func (s *MAMStore) Name() string { return "mam" }

// Export implements mam.Store. It reads the archive in pages of 1,000
// messages, so memory stays bounded for a large archive.
func (s *MAMStore) Export(ctx context.Context, user jid.JID, w io.Writer) error {
	user = user.Bare()
	p, err := s.Prefs(ctx, user)
	if err != nil {
		return err
	}
	a := user.String()
	return mam.WriteExport(w, p, func(yield func(mam.Message, error) bool) {
		last := pos{ts: math.MinInt64, seq: math.MinInt64}
		for {
			rows, err := s.pool.Query(ctx, `SELECT `+msgColumns+`, seq FROM mam_messages
				WHERE archive = $1 AND (ts, seq) > ($2, $3) ORDER BY ts, seq LIMIT 1000`, a, last.ts, last.seq)
			if err != nil {
				yield(mam.Message{}, fmt.Errorf("pgstore: export: %w", err))
				return
			}
			n := 0
			for m, err := range exportRows(rows, user, &last) {
				if err != nil {
					yield(mam.Message{}, fmt.Errorf("pgstore: export: %w", err))
					return
				}
				n++
				if !yield(m, nil) {
					rows.Close()
					return
				}
			}
			if n < 1000 {
				return
			}
		}
	})
}

// exportRows yields the messages of rows (msgColumns and seq), recording
// the position of the last one in last.
func exportRows(rows pgx.Rows, archive jid.JID, last *pos) iter.Seq2[mam.Message, error] {
	return func(yield func(mam.Message, error) bool) {
		defer rows.Close()
		for rows.Next() {
			var (
				raw       []byte
				bare, res string
				real      *string
				m         = mam.Message{Archive: archive}
			)
			if err := rows.Scan(&raw, &last.ts, &bare, &res, &m.Groupchat, &real, &m.Stanza, &last.seq); err != nil {
				yield(m, err)
				return
			}
			m.Time = fromNanos(last.ts)
			var a [16]byte
			copy(a[:], raw)
			m.ID = idFromRaw(a)
			if !yield(m, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(mam.Message{}, err)
		}
	}
}

// deleteSQL deletes the messages whose primary keys the subquery %s
// selects (at most batchSize), keeping the counters right, and returns how
// many it deleted.
const deleteSQL = `
WITH s AS (%s),
d AS (
	DELETE FROM mam_messages m USING s
	WHERE m.archive = s.archive AND m.ts = s.ts AND m.seq = s.seq
	RETURNING m.archive, m.with_bare, m.with_res, m.excluded
), g AS (
	SELECT archive, with_bare, with_res, excluded, count(*) AS n FROM d GROUP BY 1, 2, 3, 4
), ga AS (
	SELECT archive, sum(n) AS n, coalesce(sum(n) FILTER (WHERE NOT excluded), 0) AS ni FROM g GROUP BY 1
), uc AS (
	UPDATE mam_counts c SET n = c.n - g.n FROM g
	WHERE c.archive = g.archive AND c.with_bare = g.with_bare AND c.with_res = g.with_res AND c.excluded = g.excluded
), ua AS (
	UPDATE mam_archives a SET n_all = a.n_all - ga.n, n_incl = a.n_incl - ga.ni FROM ga
	WHERE a.archive = ga.archive
)
SELECT count(*) FROM d`

// deleteBatches runs deleteSQL with the subquery sel until it deletes
// nothing, one transaction per batch, and returns the total deleted.
func (s *MAMStore) deleteBatches(ctx context.Context, sel string, args ...any) (int, error) {
	total := 0
	stmt := fmt.Sprintf(deleteSQL, sel)
	for {
		var n int
		err := retry(ctx, func() error {
			return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
				if err := tx.QueryRow(ctx, stmt, args...).Scan(&n); err != nil {
					return err
				}
				// Counters of parties no longer in an archive name them:
				// drop them with their last message.
				_, err := tx.Exec(ctx, `DELETE FROM mam_counts WHERE n <= 0`)
				return err
			})
		})
		if err != nil {
			return total, err
		}
		total += n
		if n == 0 {
			return total, nil
		}
	}
}

// Erase implements mam.Store. The archive is deleted in batches of 1,000
// messages, each its own transaction; an Erase that fails part way may be
// run again.
func (s *MAMStore) Erase(ctx context.Context, user jid.JID) error {
	a := user.Bare().String()
	// The user's JID may be in the cache (as a peer or a real JID): forget
	// it here; other processes forget theirs within jidCacheTTL.
	s.jids.reset()
	if _, err := s.pool.Exec(ctx, `DELETE FROM mam_prefs WHERE owner = $1`, a); err != nil {
		return fmt.Errorf("pgstore: erase prefs: %w", err)
	}
	_, err := s.deleteBatches(ctx, fmt.Sprintf(`SELECT archive, ts, seq FROM mam_messages
		WHERE archive = $1 ORDER BY ts, seq LIMIT %d FOR UPDATE`, batchSize), a)
	if err != nil {
		return fmt.Errorf("pgstore: erase archive: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM mam_archives WHERE archive = $1 AND n_all = 0`, a); err != nil {
		return fmt.Errorf("pgstore: erase archive: %w", err)
	}
	if s.cfg.EraseGroupMessages {
		_, err := s.deleteBatches(ctx, fmt.Sprintf(`SELECT archive, ts, seq FROM mam_messages
			WHERE real_jid = $1 LIMIT %d FOR UPDATE`, batchSize), a)
		if err != nil {
			return fmt.Errorf("pgstore: erase group messages: %w", err)
		}
		return nil
	}
	for {
		tag, err := s.pool.Exec(ctx, fmt.Sprintf(`UPDATE mam_messages m SET real_jid = NULL
			FROM (SELECT archive, ts, seq FROM mam_messages WHERE real_jid = $1 LIMIT %d FOR UPDATE) s
			WHERE m.archive = s.archive AND m.ts = s.ts AND m.seq = s.seq`, batchSize), a)
		if err != nil {
			return fmt.Errorf("pgstore: erase real JID: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
	}
}

// Expire implements mam.Store. It deletes in batches of 1,000 messages,
// oldest first, each batch its own transaction.
func (s *MAMStore) Expire(ctx context.Context, before time.Time) (int, error) {
	n, err := s.deleteBatches(ctx, fmt.Sprintf(`SELECT archive, ts, seq FROM mam_messages
		WHERE ts < $1 ORDER BY ts LIMIT %d FOR UPDATE`, batchSize), nanos(before))
	if err != nil {
		return n, fmt.Errorf("pgstore: expire: %w", err)
	}
	return n, nil
}
