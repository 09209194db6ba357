package pgstore

import (
	"fmt"
	"reflect"
	"testing"
	"testing/synctest"
	"time"

	"chatbx.eu/privacy/mam"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"mellium.im/xmpp/jid"
)

// Pages decode the same in every pgx query mode: the cached-statement
// modes read bytea, bigint and boolean columns in binary, the simple
// protocol in text (a pool behind a transaction pooler uses it).
func TestMAMQueryExecModes(t *testing.T) {
	schema := freshSchema(t)
	ctx := t.Context()
	base, err := NewMAMStore(ctx, poolIn(t, schema), MAMConfig{})
	if err != nil {
		t.Fatal(err)
	}
	nick := jid.MustParse("room@conference.example.org/nick")
	for i := range 7 {
		m := msg(alice, bobR, time.Unix(int64(i), 0), fmt.Sprintf("body %d \x01\\x00 ' é", i))
		if i%3 == 0 {
			m = msg(room, nick, time.Unix(int64(i), 0), "in the room")
			m.Groupchat, m.RealJID = true, bob
		}
		if _, err := base.Append(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	queries := []struct {
		archive jid.JID
		q       mam.Query
	}{
		{alice, mam.Query{}}, {alice, mam.Query{Last: true, Max: 2}}, {alice, mam.Query{With: bob}},
		{room, mam.Query{}}, {room, mam.Query{Max: 1}},
	}
	var want []mam.Page
	for _, q := range queries {
		p, err := base.Query(ctx, q.archive, q.q)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, p)
	}
	if len(want[3].Messages) == 0 || zeroJID(want[3].Messages[0].RealJID) || len(want[0].Messages) == 0 {
		t.Fatalf("fixture: %+v", want)
	}
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeDescribeExec,
		pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol} {
		t.Run(mode.String(), func(t *testing.T) {
			cfg := base.pool.Config()
			cfg.ConnConfig.DefaultQueryExecMode = mode
			pool, err := pgxpool.NewWithConfig(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(pool.Close)
			s, err := NewMAMStore(ctx, pool, MAMConfig{})
			if err != nil {
				t.Fatal(err)
			}
			for i, q := range queries {
				got, err := s.Query(ctx, q.archive, q.q)
				if err != nil {
					t.Fatalf("%+v: %v", q.q, err)
				}
				if !reflect.DeepEqual(got, want[i]) {
					t.Errorf("%+v:\ngot  %+v\nwant %+v", q.q, got, want[i])
				}
			}
			md, err := s.Metadata(ctx, alice)
			if err != nil || md.StartID != want[0].Messages[0].ID {
				t.Errorf("Metadata = %+v, %v", md, err)
			}
		})
	}
}

// A page's stanzas share one allocation, each capped: appending to one
// cannot overwrite the next.
func TestMAMPageStanzasCapped(t *testing.T) {
	ctx := t.Context()
	s, err := NewMAMStore(ctx, newPool(t), MAMConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := s.Append(ctx, msg(alice, bob, time.Unix(int64(i), 0), fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	p, err := s.Query(ctx, alice, mam.Query{})
	if err != nil || len(p.Messages) != 3 {
		t.Fatal(p, err)
	}
	second := string(p.Messages[1].Stanza)
	_ = append(p.Messages[0].Stanza, "overwritten"...)
	if string(p.Messages[1].Stanza) != second {
		t.Errorf("appending to the first stanza changed the second: %q", p.Messages[1].Stanza)
	}
}

// The JID cache forgets within jidCacheTTL of its first entry, when reset
// (Erase), and when full.
func TestJIDCache(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c jidCache
		size := func() int {
			c.mu.RLock()
			defer c.mu.RUnlock()
			return len(c.m)
		}
		j, err := c.parse([]byte("Bob@Example.org/r"))
		if err != nil || !j.Equal(bobR) {
			t.Fatalf("parse = %v, %v", j, err)
		}
		if _, err := c.parse([]byte("a@b@c")); err == nil {
			t.Error("an invalid JID parsed")
		}
		time.Sleep(jidCacheTTL - time.Second)
		if _, err := c.parse([]byte("alice@example.org")); err != nil {
			t.Fatal(err)
		}
		if n := size(); n != 2 {
			t.Fatalf("%d entries before the TTL, want 2", n)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if n := size(); n != 0 {
			t.Errorf("%d entries %v after the first, want 0", n, jidCacheTTL)
		}
		// Learning again starts a new period; reset forgets at once.
		if _, err := c.parse([]byte("alice@example.org")); err != nil || size() != 1 {
			t.Fatal(err, size())
		}
		c.reset()
		if n := size(); n != 0 {
			t.Errorf("%d entries after reset", n)
		}
		for i := range jidCacheMax + 1 {
			if _, err := c.parse(fmt.Appendf(nil, "u%d@example.org", i)); err != nil {
				t.Fatal(err)
			}
		}
		if n := size(); n > jidCacheMax {
			t.Errorf("%d entries, bound %d", n, jidCacheMax)
		}
		c.reset() // stops the timer: the bubble ends with no goroutine left
	})
}

// An erased user's JIDs leave the store's cache with the erasure.
func TestMAMEraseForgetsJIDs(t *testing.T) {
	ctx := t.Context()
	s, err := NewMAMStore(ctx, newPool(t), MAMConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, msg(alice, bobR, time.Unix(1, 0), "x")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Query(ctx, alice, mam.Query{}); err != nil {
		t.Fatal(err)
	}
	s.jids.mu.RLock()
	_, cached := s.jids.m[bobR.String()]
	s.jids.mu.RUnlock()
	if !cached {
		t.Fatal("the page's peer is not cached")
	}
	if err := s.Erase(ctx, bob); err != nil {
		t.Fatal(err)
	}
	s.jids.mu.RLock()
	defer s.jids.mu.RUnlock()
	if len(s.jids.m) != 0 {
		t.Errorf("%d JIDs cached after an erasure", len(s.jids.m))
	}
}
