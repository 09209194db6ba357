package mam_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"chatbx.eu/privacy/mam"
	"chatbx.eu/privacy/mam/mamtest"
	"mellium.im/xmpp/jid"
)

// TestBoltMatchesMemStore runs random queries (every filter, both paging
// directions, page bounds inside and outside the filter) against a
// BoltStore and the reference MemStore holding the same archive: the pages
// must hold the same messages and agree on Complete, and a Count or
// FirstIndex BoltStore reports (not -1) must be MemStore's.
func TestBoltMatchesMemStore(t *testing.T) {
	for _, cfg := range []mam.BoltConfig{{}, {CompactWithIndex: true}} {
		t.Run(fmt.Sprintf("%+v", cfg), func(t *testing.T) {
			bs, _ := newBoltStore(t, cfg)
			testMatchesMemStore(t, bs)
		})
	}
}

func testMatchesMemStore(t *testing.T, bs mam.Store) {
	ctx := t.Context()
	ms := mamtest.NewMemStore()
	rng := rand.New(rand.NewPCG(1, 2))
	peers := []jid.JID{
		jid.MustParse("bob@example.org"),
		jid.MustParse("bob@example.org/phone"),
		jid.MustParse("bob@example.org/laptop"),
		jid.MustParse("carol@example.org/x"),
		jid.MustParse("dave@example.net"),
	}
	occupant := jid.MustParse("room@conference.example.org/bob")
	// 80 messages, some sharing a time, a quarter of them groupchat
	// messages in alice's user archive.
	const n = 80
	var bids, mids []string // the ids of message i in each store
	index := map[string]int{}
	for i := range n {
		m := mam.Message{
			Archive: alice,
			With:    peers[rng.IntN(len(peers))],
			Time:    tA.Add(time.Duration(i/2) * time.Second),
			Stanza:  fmt.Appendf(nil, "<message xmlns='jabber:client'><body>%d</body></message>", i),
		}
		if rng.IntN(4) == 0 {
			m.With, m.Groupchat = occupant, true
		}
		b, err := bs.Append(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		mm, err := ms.Append(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		bids, mids = append(bids, b.ID), append(mids, mm.ID)
		index[b.ID], index[mm.ID] = i, i
	}
	withs := append([]jid.JID{{}, occupant, jid.MustParse("bob@example.org/none")}, peers...)
	at := func() time.Time { return tA.Add(time.Duration(rng.IntN(n/2+4)-2) * time.Second) }
	for range 4000 {
		var bq mam.Query
		bq.With = withs[rng.IntN(len(withs))]
		bq.IncludeGroupchat = rng.IntN(2) == 0
		bq.Max = 1 + rng.IntN(12)
		if rng.IntN(3) == 0 {
			bq.Start = at()
		}
		if rng.IntN(3) == 0 {
			bq.End = at()
		}
		// Ids as indexes, mapped to each store's ids below.
		pick := func(p int) int {
			if rng.IntN(p) == 0 {
				return rng.IntN(n)
			}
			return -1
		}
		afterID, beforeID, after, before := pick(4), pick(4), pick(3), pick(3)
		var idx []int
		if rng.IntN(6) == 0 {
			for range rng.IntN(8) {
				idx = append(idx, rng.IntN(n))
			}
		}
		bq.Last = before < 0 && rng.IntN(3) == 0
		mq := bq
		for _, v := range []struct {
			i      int
			bf, mf *string
		}{{afterID, &bq.AfterID, &mq.AfterID}, {beforeID, &bq.BeforeID, &mq.BeforeID}, {after, &bq.After, &mq.After}, {before, &bq.Before, &mq.Before}} {
			if v.i >= 0 {
				*v.bf, *v.mf = bids[v.i], mids[v.i]
			}
		}
		for _, i := range idx {
			bq.IDs, mq.IDs = append(bq.IDs, bids[i]), append(mq.IDs, mids[i])
		}
		bp, berr := bs.Query(ctx, alice, bq)
		mp, merr := ms.Query(ctx, alice, mq)
		what := fmt.Sprintf("with=%v start=%v end=%v after-id=%d before-id=%d ids=%v gc=%v max=%d after=%d before=%d last=%v",
			bq.With, bq.Start.Sub(tA), bq.End.Sub(tA), afterID, beforeID, idx, bq.IncludeGroupchat, bq.Max, after, before, bq.Last)
		if (berr == nil) != (merr == nil) {
			t.Fatalf("%s: errors %v (bolt), %v (mem)", what, berr, merr)
		}
		if berr != nil {
			continue
		}
		got, want := indexes(bp, index), indexes(mp, index)
		if !slices.Equal(got, want) || bp.Complete != mp.Complete {
			t.Fatalf("%s: bolt %v complete %v, mem %v complete %v", what, got, bp.Complete, want, mp.Complete)
		}
		if bp.Count >= 0 && bp.Count != mp.Count {
			t.Fatalf("%s: Count %d, mem %d", what, bp.Count, mp.Count)
		}
		if bp.FirstIndex >= 0 && bp.FirstIndex != mp.FirstIndex {
			t.Fatalf("%s: FirstIndex %d, mem %d", what, bp.FirstIndex, mp.FirstIndex)
		}
	}
}

func indexes(p mam.Page, index map[string]int) []int {
	out := make([]int, len(p.Messages))
	for i, m := range p.Messages {
		out[i] = index[m.ID]
	}
	return out
}
