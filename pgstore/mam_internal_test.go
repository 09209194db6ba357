package pgstore

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"chatbx.eu/privacy/mam"
	"github.com/jackc/pgx/v5"
	"mellium.im/xmpp/jid"
)

var (
	alice = jid.MustParse("alice@example.org")
	bob   = jid.MustParse("bob@example.org")
	room  = jid.MustParse("room@conference.example.org")
	bobR  = jid.MustParse("bob@example.org/r")
)

func msg(archive, with jid.JID, when time.Time, body string) mam.Message {
	return mam.Message{Archive: archive, With: with, Time: when,
		Stanza: fmt.Appendf(nil, "<message xmlns='jabber:client' type='chat'><body>%s</body></message>", body)}
}

// Two appenders, each with its own pool as two server processes would
// have, stamp messages with their clock before appending (as mam.Archiver
// does), while a reader pages forwards with RSM after. The reader must see
// every message: a message committed after the reader passed a later one
// would be skipped for good.
func TestMAMPagingSeesLateCommits(t *testing.T) {
	schema := freshSchema(t)
	ctx := t.Context()
	stores := make([]*MAMStore, 3)
	for i := range stores {
		s, err := NewMAMStore(ctx, poolIn(t, schema), MAMConfig{})
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = s
	}
	const each = 300
	var wg sync.WaitGroup
	var mu sync.Mutex
	appended := map[string]bool{}
	errs := make(chan error, 2)
	for w := range 2 {
		wg.Go(func() {
			for i := range each {
				m, err := stores[w].Append(ctx, msg(alice, bob, time.Now(), fmt.Sprintf("w%d %d", w, i)))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				appended[m.ID] = true
				mu.Unlock()
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	seen := map[string]bool{}
	var last string
	var prev mam.Message
	finished := false
	for {
		select {
		case <-done:
			finished = true
		default:
		}
		p, err := stores[2].Query(ctx, alice, mam.Query{After: last, Max: 7})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range p.Messages {
			if seen[m.ID] {
				t.Fatalf("message %s twice", m.ID)
			}
			if m.Time.Before(prev.Time) {
				t.Fatalf("message %s at %v before the previous one at %v", m.ID, m.Time, prev.Time)
			}
			seen[m.ID], prev, last = true, m, m.ID
		}
		// Once both appenders are done, one more pass reads the rest.
		if finished && p.Complete {
			break
		}
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(appended) != 2*each {
		t.Fatalf("%d messages appended, want %d", len(appended), 2*each)
	}
	missed := 0
	for id := range appended {
		if !seen[id] {
			missed++
		}
	}
	if missed > 0 || len(seen) != len(appended) {
		t.Errorf("reader paging forwards saw %d of %d messages (%d skipped)", len(seen), len(appended), missed)
	}
}

// Every query the store runs reads through an index: with sequential
// scans and sorts priced out, no plan may hold a Seq Scan, and the paging
// queries no Sort (an index gives archive order). Pricing out, rather than
// loading a million rows, keeps the test fast: the planner still picks a
// Seq Scan or a Sort when nothing else can answer the query.
func TestMAMQueriesUseIndexes(t *testing.T) {
	pool := newPool(t)
	ctx := t.Context()
	s, err := NewMAMStore(ctx, pool, MAMConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var ms []mam.Message
	for i := range 20 {
		m, err := s.Append(ctx, msg(alice, bobR, time.Unix(int64(i), 0), "x"))
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	a := alice.String()
	id := ms[5].ID
	type stmt struct {
		name   string
		sql    string
		args   []any
		sorted bool // the plan may sort (small sets only)
	}
	var stmts []stmt
	for _, q := range []mam.Query{
		{}, {Last: true}, {After: id}, {Before: id}, {With: bob}, {With: bob, Last: true},
		{With: bobR, After: id}, {IncludeGroupchat: true, Last: true},
		{Start: time.Unix(3, 0)}, {End: time.Unix(9, 0), Last: true}, {AfterID: id, BeforeID: ms[9].ID},
	} {
		sql, args, _, _ := pageSQL(a, q, 50)
		stmts = append(stmts, stmt{name: fmt.Sprintf("page %+v", q), sql: sql, args: args})
		if q.Start.IsZero() && q.End.IsZero() && q.AfterID == "" {
			csql, cargs := countSQL(q, []any{a})
			stmts = append(stmts, stmt{name: fmt.Sprintf("count %+v", q), sql: csql, args: cargs})
		}
	}
	raw, _ := mam.ParseID(id)
	sql, args, _, _ := pageSQL(a, mam.Query{IDs: []string{id}}, 50)
	stmts = append(stmts,
		stmt{name: "ids", sql: sql, args: args, sorted: true},
		stmt{name: "positions", sql: `SELECT id, ts, seq FROM mam_messages WHERE archive = $1 AND id = ANY($2)`, args: []any{a, [][]byte{raw[:]}}},
		stmt{name: "expiry", sql: fmt.Sprintf(deleteSQL, fmt.Sprintf(`SELECT archive, ts, seq FROM mam_messages
		WHERE ts < $1 ORDER BY ts LIMIT %d FOR UPDATE`, batchSize)), args: []any{int64(5e9)}, sorted: true},
		stmt{name: "erase", sql: fmt.Sprintf(deleteSQL, fmt.Sprintf(`SELECT archive, ts, seq FROM mam_messages
		WHERE archive = $1 ORDER BY ts, seq LIMIT %d FOR UPDATE`, batchSize)), args: []any{a}, sorted: true},
		stmt{name: "real JID", sql: fmt.Sprintf(`UPDATE mam_messages m SET real_jid = NULL
			FROM (SELECT archive, ts, seq FROM mam_messages WHERE real_jid = $1 LIMIT %d FOR UPDATE) s
			WHERE m.archive = s.archive AND m.ts = s.ts AND m.seq = s.seq`, batchSize), args: []any{a}},
		stmt{name: "empty counters", sql: `DELETE FROM mam_counts WHERE n <= 0`},
	)
	for _, st := range stmts {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SET LOCAL enable_seqscan = off; SET LOCAL enable_sort = off"); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, "EXPLAIN "+st.sql, st.args...)
			if err != nil {
				return err
			}
			lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			plan := strings.Join(lines, "\n")
			if strings.Contains(plan, "Seq Scan") {
				t.Errorf("%s: plan scans a table:\n%s", st.name, plan)
			}
			if !st.sorted && strings.Contains(plan, "Sort") {
				t.Errorf("%s: plan sorts:\n%s", st.name, plan)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
	}
}

// Erasure and expiry work in bounded batches and keep the counters right
// across batch boundaries.
func TestMAMBatches(t *testing.T) {
	ctx := t.Context()
	s, err := NewMAMStore(ctx, newPool(t), MAMConfig{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 2*batchSize + 17
	for i := range n {
		if _, err := s.Append(ctx, msg(alice, bob, time.Unix(int64(i), 0), "x")); err != nil {
			t.Fatal(err)
		}
		m := msg(room, jid.MustParse("room@conference.example.org/nick"), time.Unix(int64(i), 0), "y")
		m.Groupchat, m.RealJID = true, alice
		if _, err := s.Append(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Expire(ctx, time.Unix(batchSize+5, 0))
	if err != nil || got != 2*(batchSize+5) {
		t.Fatalf("Expire = %d, %v; want %d", got, err, 2*(batchSize+5))
	}
	p, err := s.Query(ctx, alice, mam.Query{With: bob, Last: true, Max: 1})
	if err != nil || p.Count != n-batchSize-5 || p.FirstIndex != p.Count-1 {
		t.Fatalf("after expiry: %+v, %v", p, err)
	}
	// Export reads in pages of 1,000: every message once, in order.
	var buf bytes.Buffer
	if err := s.Export(ctx, alice, &buf); err != nil {
		t.Fatal(err)
	}
	if got := bytes.Count(buf.Bytes(), []byte("<result ")); got != n-batchSize-5 {
		t.Errorf("export holds %d results, want %d", got, n-batchSize-5)
	}
	if err := s.Erase(ctx, alice); err != nil {
		t.Fatal(err)
	}
	p, err = s.Query(ctx, room, mam.Query{Max: n})
	if err != nil || len(p.Messages) != n-batchSize-5 || p.Count != len(p.Messages) {
		t.Fatalf("room after erase: %d messages, count %d, %v", len(p.Messages), p.Count, err)
	}
	for _, m := range p.Messages {
		if !zeroJID(m.RealJID) {
			t.Fatalf("record %s keeps the erased real JID", m.ID)
		}
	}
	var left int
	if err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM mam_messages WHERE archive = $1)
		+ (SELECT count(*) FROM mam_counts WHERE archive = $1 OR with_bare = $1)
		+ (SELECT count(*) FROM mam_archives WHERE archive = $1)`, alice.String()).Scan(&left); err != nil || left != 0 {
		t.Errorf("%d rows still name the erased user (%v)", left, err)
	}
}

// TestMAMGroupIsAtomic: a group whose last append fails stores none of the
// group (the batch is one implicit transaction), so the one-by-one retry
// that follows cannot store a message twice.
func TestMAMGroupIsAtomic(t *testing.T) {
	ctx := t.Context()
	s, err := NewMAMStore(ctx, newPool(t), MAMConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var group []*appendReq
	for i := range 3 {
		m := mam.Message{Archive: alice, With: bob, Time: time.Unix(int64(1000+i), 0), Stanza: []byte("<message/>")}
		group = append(group, &appendReq{m: m, args: []any{alice.String(), m.Time.UnixNano(), int64(1), s.skew(),
			bob.String(), "", false, nil, false, nil, m.Stanza}})
	}
	group[2].args[10] = nil // stanza NOT NULL: the third statement fails
	if err := s.commitGroup(ctx, group); err == nil {
		t.Fatal("the group with a failing append committed")
	}
	var msgs, archives int
	if err := s.pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM mam_messages), (SELECT count(*) FROM mam_archives)").Scan(&msgs, &archives); err != nil {
		t.Fatal(err)
	}
	if msgs != 0 || archives != 0 {
		t.Fatalf("a failed group left %d messages and %d counter rows", msgs, archives)
	}
}
