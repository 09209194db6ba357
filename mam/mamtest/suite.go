package mamtest

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"chatbx.eu/privacy/mam"
	"mellium.im/xmpp/jid"
)

// Test data, all on documentation domains.
var (
	alice = jid.MustParse("alice@example.org")
	bob   = jid.MustParse("bob@example.org")
	carol = jid.MustParse("carol@example.net")
	room  = jid.MustParse("room@conference.example.org")

	// t0 is the time of the first message of generated archives; message i
	// is at t0 + i minutes.
	t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

func at(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }

func must(t testing.TB, s string) jid.JID {
	t.Helper()
	j, err := jid.Parse(s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return j
}

// stanza returns a stored <message/> for a message in archive owner's
// archive with peer, carrying body.
func stanza(owner, with jid.JID, typ, body string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "<message xmlns='jabber:client' from='%s' to='%s' type='%s'><body>", with, owner, typ)
	xml.EscapeText(&b, []byte(body))
	b.WriteString("</body></message>")
	return b.Bytes()
}

func chat(owner, with jid.JID, when time.Time, body string) mam.Message {
	return mam.Message{Archive: owner, With: with, Time: when, Stanza: stanza(owner, with, "chat", body)}
}

func groupchat(archive, occupant, real jid.JID, when time.Time, body string) mam.Message {
	return mam.Message{Archive: archive, With: occupant, Time: when, Groupchat: true, RealJID: real,
		Stanza: stanza(archive, occupant, "groupchat", body)}
}

type fixture struct {
	t   *testing.T
	ctx context.Context
	s   mam.Store
}

func (f fixture) append(m mam.Message) mam.Message {
	f.t.Helper()
	got, err := f.s.Append(f.ctx, m)
	if err != nil {
		f.t.Fatalf("Append: %v", err)
	}
	return got
}

// fill appends n chat messages with peer to owner's archive at at(0)…at(n-1)
// and returns them.
func (f fixture) fill(owner, peer jid.JID, n int) []mam.Message {
	f.t.Helper()
	out := make([]mam.Message, n)
	for i := range n {
		out[i] = f.append(chat(owner, peer, at(i), fmt.Sprintf("message %d", i)))
	}
	return out
}

func (f fixture) query(archive jid.JID, q mam.Query) mam.Page {
	f.t.Helper()
	p, err := f.s.Query(f.ctx, archive, q)
	if err != nil {
		f.t.Fatalf("Query(%v, %+v): %v", archive, q, err)
	}
	return p
}

func ids(ms []mam.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func wantIDs(t testing.TB, what string, got []mam.Message, want []mam.Message) {
	t.Helper()
	if g, w := ids(got), ids(want); !slices.Equal(g, w) {
		t.Errorf("%s: got ids %v, want %v", what, g, w)
	}
}

// wantPage checks a page: its messages, Complete, and Count and FirstIndex,
// which may be -1 (unknown) unless exact is set.
func wantPage(t testing.TB, what string, p mam.Page, want []mam.Message, count, first int, complete, exact bool) {
	t.Helper()
	wantIDs(t, what, p.Messages, want)
	if p.Complete != complete {
		t.Errorf("%s: Complete = %v, want %v", what, p.Complete, complete)
	}
	if p.Count != count && (exact || p.Count != -1) {
		t.Errorf("%s: Count = %d, want %d", what, p.Count, count)
	}
	if len(want) == 0 {
		first = -1
	}
	if p.FirstIndex != first && (exact || p.FirstIndex != -1) {
		t.Errorf("%s: FirstIndex = %d, want %d", what, p.FirstIndex, first)
	}
}

func wantErr(t testing.TB, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error %v, want one wrapping %v", what, err, target)
	}
}

// TestStore checks that a mam.Store meets the contract documented on
// mam.Store, mam.Query and mam.Page. newStore must return a new, empty
// store each time it is called; it is called once per subtest.
//
// Where the contract allows "unknown" (-1) for Page.Count or
// Page.FirstIndex, TestStore accepts -1, except for queries without Start,
// End, AfterID, BeforeID and RSM ids, where both must be exact.
//
// If the store deletes a user's group messages on Erase (an option of the
// stores in this module), TestStore accepts that too; it checks that no
// record names the erased user's real JID either way.
func TestStore(t *testing.T, newStore func(t *testing.T) mam.Store) {
	for _, tc := range []struct {
		name string
		fn   func(fixture)
	}{
		{"Append", testAppend},
		{"AppendBad", testAppendBad},
		{"Order", testOrder},
		{"Archives", testArchives},
		{"EmptyArchive", testEmptyArchive},
		{"PageForward", testPageForward},
		{"PageBackward", testPageBackward},
		{"PageEdges", testPageEdges},
		{"PageOwned", testPageOwned},
		{"DefaultMax", testDefaultMax},
		{"UnknownIDs", testUnknownIDs},
		{"FilterWith", testFilterWith},
		{"FilterWithPaging", testFilterWithPaging},
		{"FilterTime", testFilterTime},
		{"FilterAfterBeforeID", testFilterAfterBeforeID},
		{"FilterIDs", testFilterIDs},
		{"FilterGroupchat", testFilterGroupchat},
		{"Metadata", testMetadata},
		{"Prefs", testPrefs},
		{"Expire", testExpire},
		{"Erase", testErase},
		{"EraseRealJID", testEraseRealJID},
		{"Export", testExport},
		{"IDsUnique", testIDsUnique},
		{"IDsNotReused", testIDsNotReused},
		{"Concurrent", testConcurrent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(fixture{t: t, ctx: t.Context(), s: newStore(t)})
		})
	}
}

func testAppend(f fixture) {
	t := f.t
	if n := f.s.Name(); n != "mam" {
		t.Errorf("Name() = %q, want mam", n)
	}
	in := chat(must(t, "alice@example.org/phone"), must(t, "bob@example.org/laptop"), at(0), "hello <&> world")
	in.ID = "caller-chosen"
	got := f.append(in)
	if got.ID == "" || got.ID == "caller-chosen" {
		t.Errorf("Append kept id %q, want a fresh one", got.ID)
	}
	if !got.Archive.Equal(alice) {
		t.Errorf("Append: Archive = %v, want the bare %v", got.Archive, alice)
	}
	if !got.Time.Equal(at(0)) || got.Time.Location() != time.UTC {
		t.Errorf("Append: Time = %v, want %v in UTC", got.Time, at(0))
	}
	p := f.query(alice, mam.Query{})
	if len(p.Messages) != 1 {
		t.Fatalf("Query: %d messages, want 1", len(p.Messages))
	}
	m := p.Messages[0]
	if m.ID != got.ID || !m.Archive.Equal(alice) || !m.With.Equal(in.With) || m.Groupchat ||
		!m.Time.Equal(at(0)) || !bytes.Equal(m.Stanza, in.Stanza) || !m.RealJID.Equal(jid.JID{}) {
		t.Errorf("Query returned %+v, want %+v", m, got)
	}

	// Zero time: stamped by the store.
	z := f.append(chat(alice, bob, time.Time{}, "now"))
	if z.Time.IsZero() {
		t.Error("Append with zero Time: Time still zero, want the store's clock")
	}

	// Group record with a real JID round-trips.
	g := f.append(groupchat(room, must(t, "room@conference.example.org/ally"), must(t, "alice@example.org/phone"), at(1), "hi all"))
	rp := f.query(room, mam.Query{})
	if len(rp.Messages) != 1 || rp.Messages[0].ID != g.ID || !rp.Messages[0].Groupchat ||
		!rp.Messages[0].RealJID.Equal(alice) {
		t.Errorf("room Query = %+v, want the record with real JID %v", rp.Messages, alice)
	}

	// The caller's slice is not retained.
	buf := stanza(alice, bob, "chat", "mutable")
	m2 := f.append(mam.Message{Archive: bob, With: alice, Time: at(2), Stanza: buf})
	buf[1] = 'X'
	bp := f.query(bob, mam.Query{})
	if len(bp.Messages) != 1 || bp.Messages[0].ID != m2.ID || bp.Messages[0].Stanza[1] != 'm' {
		t.Error("store aliases the caller's Stanza slice")
	}
}

func testAppendBad(f fixture) {
	_, err := f.s.Append(f.ctx, mam.Message{With: bob, Time: at(0), Stanza: []byte("<message/>")})
	wantErr(f.t, "Append without archive", err, mam.ErrBadRequest)
	_, err = f.s.Append(f.ctx, mam.Message{Archive: alice, With: bob, Time: at(0)})
	wantErr(f.t, "Append of an empty stanza", err, mam.ErrBadRequest)
	if p := f.query(alice, mam.Query{}); len(p.Messages) != 0 {
		f.t.Errorf("failed appends stored %d messages", len(p.Messages))
	}
}

func testOrder(f fixture) {
	// Archive order is by Time; equal times keep append order.
	var want []mam.Message
	late := f.append(chat(alice, bob, at(10), "late"))
	early := f.append(chat(alice, bob, at(1), "early"))
	want = append(want, early)
	for i := range 5 {
		want = append(want, f.append(chat(alice, bob, at(5), fmt.Sprintf("same %d", i))))
	}
	want = append(want, late)
	wantPage(f.t, "archive order", f.query(alice, mam.Query{}), want, len(want), 0, true, true)
	back := f.query(alice, mam.Query{Last: true, Max: 3})
	wantPage(f.t, "archive order, last page", back, want[4:], len(want), 4, false, true)
}

func testArchives(f fixture) {
	a := f.fill(alice, bob, 3)
	b := f.fill(bob, alice, 2)
	wantPage(f.t, "alice", f.query(must(f.t, "alice@example.org/phone"), mam.Query{}), a, 3, 0, true, true)
	wantPage(f.t, "bob", f.query(bob, mam.Query{}), b, 2, 0, true, true)
	wantPage(f.t, "carol", f.query(carol, mam.Query{}), nil, 0, -1, true, true)
	// An id of another archive is not in this one.
	_, err := f.s.Query(f.ctx, alice, mam.Query{After: b[0].ID})
	wantErr(f.t, "RSM after with an id of another archive", err, mam.ErrNotFound)
}

func testEmptyArchive(f fixture) {
	for _, q := range []mam.Query{{}, {Last: true}, {Max: 1}, {With: bob}, {Start: at(0)}} {
		wantPage(f.t, fmt.Sprintf("empty archive %+v", q), f.query(alice, q), nil, 0, -1, true, true)
	}
	md, err := f.s.Metadata(f.ctx, alice)
	if err != nil || md != (mam.Metadata{}) {
		f.t.Errorf("Metadata of an empty archive = %+v, %v; want zero", md, err)
	}
}

func testPageForward(f fixture) {
	all := f.fill(alice, bob, 10)
	q := mam.Query{Max: 3}
	var got []mam.Message
	for i := 0; ; i++ {
		p := f.query(alice, q)
		end := min(len(all), 3*i+3)
		complete := end == len(all)
		exactIndex := q.After == ""
		wantPage(f.t, fmt.Sprintf("forward page %d", i), p, all[3*i:end], 10, 3*i, complete, exactIndex)
		got = append(got, p.Messages...)
		if p.Complete || len(p.Messages) == 0 || i > 10 {
			break
		}
		q.After = p.Messages[len(p.Messages)-1].ID
	}
	wantIDs(f.t, "all forward pages", got, all)
}

func testPageBackward(f fixture) {
	all := f.fill(alice, bob, 10)
	q := mam.Query{Max: 3, Last: true}
	var got []mam.Message
	for i := 0; ; i++ {
		p := f.query(alice, q)
		end := len(all) - 3*i
		start := max(0, end-3)
		wantPage(f.t, fmt.Sprintf("backward page %d", i), p, all[start:end], 10, start, start == 0, i == 0)
		got = append(slices.Clone(p.Messages), got...)
		if p.Complete || len(p.Messages) == 0 || i > 10 {
			break
		}
		q.Before = p.Messages[0].ID
	}
	wantIDs(f.t, "all backward pages", got, all)
}

func testPageEdges(f fixture) {
	all := f.fill(alice, bob, 5)
	t := f.t
	wantPage(t, "max = archive size", f.query(alice, mam.Query{Max: 5}), all, 5, 0, true, true)
	wantPage(t, "max > archive size", f.query(alice, mam.Query{Max: 500}), all, 5, 0, true, true)
	wantPage(t, "last, max = archive size", f.query(alice, mam.Query{Max: 5, Last: true}), all, 5, 0, true, true)
	wantPage(t, "after the last", f.query(alice, mam.Query{After: all[4].ID}), nil, 5, -1, true, false)
	wantPage(t, "before the first", f.query(alice, mam.Query{Before: all[0].ID}), nil, 5, -1, true, false)
	wantPage(t, "after the first", f.query(alice, mam.Query{After: all[0].ID, Max: 2}), all[1:3], 5, 1, false, false)
	wantPage(t, "before the last", f.query(alice, mam.Query{Before: all[4].ID, Max: 2}), all[2:4], 5, 2, false, false)
	wantPage(t, "before the last, reaching the start", f.query(alice, mam.Query{Before: all[4].ID, Max: 4}), all[0:4], 5, 0, true, false)
	wantPage(t, "after and before", f.query(alice, mam.Query{After: all[0].ID, Before: all[4].ID}), all[1:4], 5, 1, true, false)
	wantPage(t, "max 1 forward", f.query(alice, mam.Query{Max: 1}), all[:1], 5, 0, false, true)
	wantPage(t, "max 1 last", f.query(alice, mam.Query{Max: 1, Last: true}), all[4:], 5, 4, false, true)
	_, err := f.s.Query(f.ctx, alice, mam.Query{Max: -1})
	wantErr(t, "negative max", err, mam.ErrBadRequest)
}

// testPageOwned checks that the stanzas of a page belong to the caller:
// writing to one or appending to it changes neither the other messages of
// the page nor what a later query returns.
func testPageOwned(f fixture) {
	t := f.t
	all := f.fill(alice, bob, 3)
	p := f.query(alice, mam.Query{})
	if len(p.Messages) != 3 {
		t.Fatalf("Query: %d messages, want 3", len(p.Messages))
	}
	first := p.Messages[0].Stanza
	first[1] = 'X'
	grown := append(first, "<extra/>"...)
	if !bytes.Equal(p.Messages[1].Stanza, all[1].Stanza) {
		t.Errorf("appending to one stanza of a page changed the next: %q", p.Messages[1].Stanza)
	}
	if !bytes.HasSuffix(grown, []byte("<extra/>")) || grown[1] != 'X' {
		t.Errorf("append to a page's stanza = %q", grown)
	}
	again := f.query(alice, mam.Query{})
	for i, m := range again.Messages {
		if !bytes.Equal(m.Stanza, all[i].Stanza) {
			t.Errorf("message %d after the caller wrote to a page: %q, want %q", i, m.Stanza, all[i].Stanza)
		}
	}
}

func testDefaultMax(f fixture) {
	all := f.fill(alice, bob, 60)
	wantPage(f.t, "default page", f.query(alice, mam.Query{}), all[:50], 60, 0, false, true)
	wantPage(f.t, "default last page", f.query(alice, mam.Query{Last: true}), all[10:], 60, 10, false, true)
}

func testUnknownIDs(f fixture) {
	all := f.fill(alice, bob, 3)
	other := f.fill(bob, alice, 1)
	unknown := []string{mam.NewID(), other[0].ID, "not-an-id", "", "!!!!", strings.Repeat("A", 22), all[0].ID + "A"}
	for _, id := range unknown {
		if id == "" {
			continue
		}
		for _, q := range []mam.Query{
			{After: id}, {Before: id}, {AfterID: id}, {BeforeID: id},
			{IDs: []string{id}}, {IDs: []string{all[0].ID, id}},
		} {
			_, err := f.s.Query(f.ctx, alice, q)
			wantErr(f.t, fmt.Sprintf("query %+v", q), err, mam.ErrNotFound)
		}
	}
}

func testFilterWith(f fixture) {
	t := f.t
	phone := must(t, "bob@example.org/phone")
	laptop := must(t, "bob@example.org/laptop")
	c := must(t, "carol@example.net/x")
	var bobAll, bobPhone, bobBare, carolAll []mam.Message
	for i := range 12 {
		var m mam.Message
		switch i % 4 {
		case 0:
			m = f.append(chat(alice, phone, at(i), "p"))
			bobPhone = append(bobPhone, m)
		case 1:
			m = f.append(chat(alice, laptop, at(i), "l"))
		case 2:
			m = f.append(chat(alice, bob, at(i), "b"))
			bobBare = append(bobBare, m)
		case 3:
			m = f.append(chat(alice, c, at(i), "c"))
			carolAll = append(carolAll, m)
		}
		if i%4 != 3 {
			bobAll = append(bobAll, m)
		}
	}
	for _, tc := range []struct {
		with jid.JID
		want []mam.Message
	}{
		{bob, bobAll},
		{phone, bobPhone},
		{must(t, "bob@example.org/tablet"), nil},
		{carol, carolAll},
		{c, carolAll},
		{must(t, "dave@example.org"), nil},
		{must(t, "example.org"), nil},
	} {
		p := f.query(alice, mam.Query{With: tc.with})
		wantPage(t, "with "+tc.with.String(), p, tc.want, len(tc.want), 0, true, true)
	}
	_ = bobBare
}

func testFilterWithPaging(f fixture) {
	var bobs []mam.Message
	for i := range 20 {
		if i%3 == 0 {
			bobs = append(bobs, f.append(chat(alice, bob, at(i), "b")))
		} else {
			f.append(chat(alice, carol, at(i), "c"))
		}
	}
	// 7 matches at positions 0,3,…,18.
	p := f.query(alice, mam.Query{With: bob, Max: 3})
	wantPage(f.t, "with, page 1", p, bobs[0:3], 7, 0, false, true)
	p = f.query(alice, mam.Query{With: bob, Max: 3, After: p.Messages[2].ID})
	wantPage(f.t, "with, page 2", p, bobs[3:6], 7, 3, false, false)
	p = f.query(alice, mam.Query{With: bob, Max: 3, After: p.Messages[2].ID})
	wantPage(f.t, "with, page 3", p, bobs[6:], 7, 6, true, false)
	p = f.query(alice, mam.Query{With: bob, Max: 3, Last: true})
	wantPage(f.t, "with, last page", p, bobs[4:], 7, 4, false, true)
	p = f.query(alice, mam.Query{With: bob, Max: 3, Before: p.Messages[0].ID})
	wantPage(f.t, "with, before", p, bobs[1:4], 7, 1, false, false)
	p = f.query(alice, mam.Query{With: bob, Max: 3, Before: p.Messages[0].ID})
	wantPage(f.t, "with, first page backwards", p, bobs[:1], 7, 0, true, false)

	// An RSM id that does not match the filter still marks a position:
	// message 4 is carol's; bob's after it start at 6.
	all := f.query(alice, mam.Query{Max: 20})
	p = f.query(alice, mam.Query{With: bob, Max: 2, After: all.Messages[4].ID})
	wantPage(f.t, "with, after a non-matching id", p, bobs[2:4], 7, 2, false, false)
	p = f.query(alice, mam.Query{With: bob, Max: 2, Before: all.Messages[4].ID})
	wantPage(f.t, "with, before a non-matching id", p, bobs[0:2], 7, 0, true, false)
}

func testFilterTime(f fixture) {
	all := f.fill(alice, bob, 10)
	t := f.t
	for _, tc := range []struct {
		name       string
		start, end time.Time
		want       []mam.Message
	}{
		{"start and end inclusive", at(3), at(6), all[3:7]},
		{"start only", at(7), time.Time{}, all[7:]},
		{"end only", time.Time{}, at(2), all[:3]},
		{"between messages", at(3).Add(time.Second), at(6).Add(-time.Second), all[4:6]},
		{"start = end", at(5), at(5), all[5:6]},
		{"start after end", at(6), at(3), nil},
		{"before everything", at(-10), at(-5), nil},
		{"after everything", at(20), time.Time{}, nil},
		{"other zone", at(3).In(time.FixedZone("X", 3600)), at(4).In(time.FixedZone("Y", -7200)), all[3:5]},
	} {
		q := mam.Query{Start: tc.start, End: tc.end}
		wantPage(t, tc.name, f.query(alice, q), tc.want, len(tc.want), 0, true, false)
		q.Last = true
		wantPage(t, tc.name+", last", f.query(alice, q), tc.want, len(tc.want), 0, true, false)
	}
	// Paging inside a time range.
	q := mam.Query{Start: at(2), End: at(8), Max: 2}
	p := f.query(alice, q)
	wantPage(t, "time range page 1", p, all[2:4], 7, 0, false, false)
	q.After = p.Messages[1].ID
	wantPage(t, "time range page 2", f.query(alice, q), all[4:6], 7, 2, false, false)
	q.After, q.Last = "", true
	p = f.query(alice, q)
	wantPage(t, "time range last page", p, all[7:9], 7, 5, false, false)
}

func testFilterAfterBeforeID(f fixture) {
	all := f.fill(alice, bob, 10)
	t := f.t
	wantPage(t, "after-id", f.query(alice, mam.Query{AfterID: all[6].ID}), all[7:], 3, 0, true, false)
	wantPage(t, "before-id", f.query(alice, mam.Query{BeforeID: all[2].ID}), all[:2], 2, 0, true, false)
	wantPage(t, "after-id and before-id", f.query(alice, mam.Query{AfterID: all[2].ID, BeforeID: all[6].ID}), all[3:6], 3, 0, true, false)
	wantPage(t, "after-id = before-id", f.query(alice, mam.Query{AfterID: all[4].ID, BeforeID: all[4].ID}), nil, 0, -1, true, false)
	wantPage(t, "after-id after before-id", f.query(alice, mam.Query{AfterID: all[7].ID, BeforeID: all[2].ID}), nil, 0, -1, true, false)
	wantPage(t, "after-id of the last", f.query(alice, mam.Query{AfterID: all[9].ID}), nil, 0, -1, true, false)
	p := f.query(alice, mam.Query{AfterID: all[1].ID, Max: 3})
	wantPage(t, "after-id paged", p, all[2:5], 8, 0, false, false)
	p = f.query(alice, mam.Query{AfterID: all[1].ID, Max: 3, After: p.Messages[2].ID})
	wantPage(t, "after-id paged, page 2", p, all[5:8], 8, 3, false, false)
	p = f.query(alice, mam.Query{AfterID: all[1].ID, BeforeID: all[9].ID, Max: 3, Last: true})
	wantPage(t, "after-id and before-id, last page", p, all[6:9], 7, 4, false, false)
	// Combined with a time range: both apply.
	wantPage(t, "after-id and end", f.query(alice, mam.Query{AfterID: all[2].ID, End: at(4)}), all[3:5], 2, 0, true, false)
}

func testFilterIDs(f fixture) {
	t := f.t
	var all []mam.Message
	for i := range 10 {
		with := bob
		if i%2 == 1 {
			with = carol
		}
		all = append(all, f.append(chat(alice, with, at(i), "m")))
	}
	q := mam.Query{IDs: []string{all[7].ID, all[1].ID, all[4].ID}}
	want := []mam.Message{all[1], all[4], all[7]}
	wantPage(t, "ids, archive order", f.query(alice, q), want, 3, 0, true, false)
	q.Max = 2
	p := f.query(alice, q)
	wantPage(t, "ids, paged", p, want[:2], 3, 0, false, false)
	q.After = p.Messages[1].ID
	wantPage(t, "ids, page 2", f.query(alice, q), want[2:], 3, 2, true, false)
	q = mam.Query{IDs: []string{all[7].ID, all[1].ID, all[4].ID}, With: carol}
	wantPage(t, "ids and with", f.query(alice, q), []mam.Message{all[1], all[7]}, 2, 0, true, false)
	q = mam.Query{IDs: []string{all[9].ID}, Last: true}
	wantPage(t, "ids, last", f.query(alice, q), all[9:], 1, 0, true, false)
}

func testFilterGroupchat(f fixture) {
	t := f.t
	occupant := must(t, "room@conference.example.org/bob")
	var chats, everything []mam.Message
	for i := range 6 {
		var m mam.Message
		if i%2 == 0 {
			m = f.append(chat(alice, bob, at(i), "1:1"))
			chats = append(chats, m)
		} else {
			// A group message in a user archive.
			m = f.append(groupchat(alice, occupant, jid.JID{}, at(i), "group"))
		}
		everything = append(everything, m)
	}
	wantPage(t, "user archive without groupchat", f.query(alice, mam.Query{}), chats, 3, 0, true, true)
	wantPage(t, "user archive, last", f.query(alice, mam.Query{Last: true, Max: 2}), chats[1:], 3, 1, false, true)
	wantPage(t, "user archive with groupchat", f.query(alice, mam.Query{IncludeGroupchat: true}), everything, 6, 0, true, true)
	wantPage(t, "with a room, no groupchat", f.query(alice, mam.Query{With: room}), nil, 0, -1, true, true)
	wantPage(t, "with a room, groupchat", f.query(alice, mam.Query{With: room, IncludeGroupchat: true}),
		[]mam.Message{everything[1], everything[3], everything[5]}, 3, 0, true, true)

	// A room archive ignores IncludeGroupchat.
	var recs []mam.Message
	for i := range 3 {
		recs = append(recs, f.append(groupchat(room, occupant, bob, at(i), "room")))
	}
	wantPage(t, "room archive", f.query(room, mam.Query{}), recs, 3, 0, true, true)
	wantPage(t, "room archive, include", f.query(room, mam.Query{IncludeGroupchat: true}), recs, 3, 0, true, true)
	wantPage(t, "room archive, with occupant", f.query(room, mam.Query{With: occupant}), recs, 3, 0, true, true)
}

func testMetadata(f fixture) {
	all := f.fill(alice, bob, 4)
	md, err := f.s.Metadata(f.ctx, must(f.t, "alice@example.org/x"))
	if err != nil {
		f.t.Fatal(err)
	}
	if md.StartID != all[0].ID || !md.StartTime.Equal(all[0].Time) || md.EndID != all[3].ID || !md.EndTime.Equal(all[3].Time) {
		f.t.Errorf("Metadata = %+v, want %s@%v … %s@%v", md, all[0].ID, all[0].Time, all[3].ID, all[3].Time)
	}
}

func equalJIDs(a, b []jid.JID) bool {
	return slices.EqualFunc(a, b, func(x, y jid.JID) bool { return x.Equal(y) })
}

func testPrefs(f fixture) {
	t := f.t
	p, err := f.s.Prefs(f.ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if (p.Default != "" && p.Default != mam.DefaultNever) || len(p.Always) != 0 || len(p.Never) != 0 {
		t.Errorf("Prefs of a new user = %+v, want default never", p)
	}
	for _, want := range []mam.Prefs{
		{Default: mam.DefaultAlways, Never: []jid.JID{carol}},
		{Default: mam.DefaultRoster, Always: []jid.JID{bob, carol}, Never: []jid.JID{must(t, "dave@example.org")}},
		{Default: mam.DefaultNever, Always: []jid.JID{bob}},
	} {
		if err := f.s.SetPrefs(f.ctx, must(t, "alice@example.org/phone"), want); err != nil {
			t.Fatalf("SetPrefs(%+v): %v", want, err)
		}
		got, err := f.s.Prefs(f.ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		if got.Default != want.Default || !equalJIDs(got.Always, want.Always) || !equalJIDs(got.Never, want.Never) {
			t.Errorf("Prefs = %+v, want %+v", got, want)
		}
	}
	err = f.s.SetPrefs(f.ctx, alice, mam.Prefs{Default: "sometimes"})
	wantErr(t, "SetPrefs with an unknown default", err, mam.ErrBadRequest)
	got, _ := f.s.Prefs(f.ctx, alice)
	if got.Default != mam.DefaultNever || !equalJIDs(got.Always, []jid.JID{bob}) {
		t.Errorf("a rejected SetPrefs changed the prefs to %+v", got)
	}
	other, _ := f.s.Prefs(f.ctx, bob)
	if other.Default != "" && other.Default != mam.DefaultNever || len(other.Always) != 0 {
		t.Errorf("bob's prefs = %+v, want untouched", other)
	}
}

func testExpire(f fixture) {
	t := f.t
	a := f.fill(alice, bob, 10)
	b := f.fill(bob, alice, 10)
	r := []mam.Message{
		f.append(groupchat(room, must(t, "room@conference.example.org/a"), alice, at(1), "old")),
		f.append(groupchat(room, must(t, "room@conference.example.org/a"), alice, at(8), "new")),
	}
	n, err := f.s.Expire(f.ctx, at(5))
	if err != nil || n != 11 {
		t.Fatalf("Expire = %d, %v; want 11", n, err)
	}
	wantPage(t, "alice after expiry", f.query(alice, mam.Query{}), a[5:], 5, 0, true, true)
	wantPage(t, "bob after expiry", f.query(bob, mam.Query{}), b[5:], 5, 0, true, true)
	wantPage(t, "bob's with-index after expiry", f.query(bob, mam.Query{With: alice}), b[5:], 5, 0, true, true)
	wantPage(t, "room after expiry", f.query(room, mam.Query{}), r[1:], 1, 0, true, true)
	md, _ := f.s.Metadata(f.ctx, alice)
	if md.StartID != a[5].ID {
		t.Errorf("Metadata start after expiry = %q, want %q", md.StartID, a[5].ID)
	}
	_, err = f.s.Query(f.ctx, alice, mam.Query{After: a[2].ID})
	wantErr(t, "RSM after an expired id", err, mam.ErrNotFound)

	if n, err := f.s.Expire(f.ctx, at(5)); err != nil || n != 0 {
		t.Errorf("second Expire = %d, %v; want 0", n, err)
	}
	n, err = f.s.Expire(f.ctx, at(9))
	if err != nil || n != 9 {
		t.Errorf("Expire(at(9)) = %d, %v; want 9", n, err)
	}
	wantPage(t, "alice after second expiry", f.query(alice, mam.Query{}), a[9:], 1, 0, true, true)
	n, err = f.s.Expire(f.ctx, at(100))
	if err != nil || n != 2 {
		t.Errorf("Expire(everything) = %d, %v; want 2", n, err)
	}
	wantPage(t, "alice after full expiry", f.query(alice, mam.Query{With: bob}), nil, 0, -1, true, true)
	md, _ = f.s.Metadata(f.ctx, alice)
	if md != (mam.Metadata{}) {
		t.Errorf("Metadata after full expiry = %+v, want zero", md)
	}
	// The archive keeps working.
	m := f.append(chat(alice, bob, at(200), "again"))
	wantPage(t, "append after expiry", f.query(alice, mam.Query{}), []mam.Message{m}, 1, 0, true, true)
}

func testErase(f fixture) {
	t := f.t
	f.fill(alice, bob, 5)
	b := f.fill(bob, alice, 5)
	if err := f.s.SetPrefs(f.ctx, alice, mam.Prefs{Default: mam.DefaultAlways}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.SetPrefs(f.ctx, bob, mam.Prefs{Default: mam.DefaultRoster}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := f.s.Erase(f.ctx, must(t, "alice@example.org/phone")); err != nil {
			t.Fatalf("Erase #%d: %v", i+1, err)
		}
		wantPage(t, "alice after erase", f.query(alice, mam.Query{}), nil, 0, -1, true, true)
		wantPage(t, "alice with bob after erase", f.query(alice, mam.Query{With: bob}), nil, 0, -1, true, true)
		if md, _ := f.s.Metadata(f.ctx, alice); md != (mam.Metadata{}) {
			t.Errorf("Metadata after erase = %+v", md)
		}
		p, _ := f.s.Prefs(f.ctx, alice)
		if p.Default != "" && p.Default != mam.DefaultNever {
			t.Errorf("prefs after erase = %+v, want default never", p)
		}
		wantPage(t, "bob after alice's erase", f.query(bob, mam.Query{}), b, 5, 0, true, true)
		if p, _ := f.s.Prefs(f.ctx, bob); p.Default != mam.DefaultRoster {
			t.Errorf("bob's prefs after alice's erase = %+v", p)
		}
	}
	_, err := f.s.Query(f.ctx, alice, mam.Query{After: b[0].ID})
	wantErr(t, "RSM after, erased archive", err, mam.ErrNotFound)
	if err := f.s.Erase(f.ctx, must(t, "nobody@example.org")); err != nil {
		t.Errorf("Erase of an unknown user: %v", err)
	}
	m := f.append(chat(alice, bob, at(50), "fresh start"))
	wantPage(t, "append after erase", f.query(alice, mam.Query{}), []mam.Message{m}, 1, 0, true, true)
}

func testEraseRealJID(f fixture) {
	t := f.t
	occA := must(t, "room@conference.example.org/ally")
	occB := must(t, "room@conference.example.org/bobby")
	room2 := must(t, "other@conference.example.org")
	var aliceRecs, bobRecs []mam.Message
	for i := range 6 {
		if i%2 == 0 {
			aliceRecs = append(aliceRecs, f.append(groupchat(room, occA, must(t, "alice@example.org/phone"), at(i), "a")))
		} else {
			bobRecs = append(bobRecs, f.append(groupchat(room, occB, bob, at(i), "b")))
		}
	}
	aliceRecs = append(aliceRecs, f.append(groupchat(room2, must(t, "other@conference.example.org/al"), alice, at(1), "a2")))
	anon := f.append(groupchat(room2, must(t, "other@conference.example.org/anon"), jid.JID{}, at(2), "anon"))

	for range 2 {
		if err := f.s.Erase(f.ctx, alice); err != nil {
			t.Fatal(err)
		}
	}
	var kept []mam.Message
	for _, r := range []jid.JID{room, room2} {
		p := f.query(r, mam.Query{Max: 100})
		for _, m := range p.Messages {
			if m.RealJID.Bare().Equal(alice) {
				t.Errorf("record %s still names the erased user's real JID", m.ID)
			}
		}
		kept = append(kept, p.Messages...)
	}
	byID := map[string]mam.Message{}
	for _, m := range kept {
		byID[m.ID] = m
	}
	for _, m := range bobRecs {
		got, ok := byID[m.ID]
		if !ok || !got.RealJID.Equal(bob) || !bytes.Equal(got.Stanza, m.Stanza) {
			t.Errorf("bob's record %s changed by alice's erase: %+v, present %v", m.ID, got, ok)
		}
	}
	if got, ok := byID[anon.ID]; !ok || !got.RealJID.Equal(jid.JID{}) {
		t.Errorf("anonymous record changed by erase: %+v, present %v", got, ok)
	}
	// Alice's records are either all kept (stripped) or all deleted.
	n := 0
	for _, m := range aliceRecs {
		if got, ok := byID[m.ID]; ok {
			n++
			if !bytes.Equal(got.Stanza, m.Stanza) || !got.With.Equal(m.With) {
				t.Errorf("alice's kept record %s altered beyond its real JID", m.ID)
			}
		}
	}
	if n != 0 && n != len(aliceRecs) {
		t.Errorf("%d of alice's %d records kept; want all or none", n, len(aliceRecs))
	}
}

// exported is the XEP-0227 archive element as TestStore reads it.
type exported struct {
	XMLName xml.Name `xml:"urn:xmpp:pie:0#mam archive"`
	Prefs   struct {
		Default string   `xml:"default,attr"`
		Always  []string `xml:"always>jid"`
		Never   []string `xml:"never>jid"`
	} `xml:"urn:xmpp:mam:2 prefs"`
	Results []struct {
		ID        string `xml:"id,attr"`
		Forwarded struct {
			Delay struct {
				Stamp string `xml:"stamp,attr"`
			} `xml:"urn:xmpp:delay delay"`
			Message struct {
				From string `xml:"from,attr"`
				Body string `xml:"body"`
			} `xml:"jabber:client message"`
		} `xml:"urn:xmpp:forward:0 forwarded"`
	} `xml:"urn:xmpp:mam:2 result"`
}

func testExport(f fixture) {
	t := f.t
	a := f.fill(alice, bob, 3)
	f.fill(bob, alice, 2)
	if err := f.s.SetPrefs(f.ctx, alice, mam.Prefs{Default: mam.DefaultRoster, Always: []jid.JID{carol}}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := f.s.Export(f.ctx, must(t, "alice@example.org/phone"), &buf); err != nil {
		t.Fatalf("Export: %v", err)
	}
	var ex exported
	if err := xml.Unmarshal(buf.Bytes(), &ex); err != nil {
		t.Fatalf("Export wrote invalid XML: %v\n%s", err, buf.String())
	}
	if ex.Prefs.Default != "roster" || !slices.Equal(ex.Prefs.Always, []string{carol.String()}) || len(ex.Prefs.Never) != 0 {
		t.Errorf("exported prefs = %+v", ex.Prefs)
	}
	if len(ex.Results) != len(a) {
		t.Fatalf("export holds %d results, want %d:\n%s", len(ex.Results), len(a), buf.String())
	}
	for i, r := range ex.Results {
		stamp, err := time.Parse(time.RFC3339Nano, r.Forwarded.Delay.Stamp)
		if r.ID != a[i].ID || err != nil || !stamp.Equal(a[i].Time) ||
			r.Forwarded.Message.Body != fmt.Sprintf("message %d", i) || r.Forwarded.Message.From != bob.String() {
			t.Errorf("result %d = %+v, want id %s at %v", i, r, a[i].ID, a[i].Time)
		}
	}

	// A user without data gets a valid, empty archive.
	buf.Reset()
	if err := f.s.Export(f.ctx, carol, &buf); err != nil {
		t.Fatal(err)
	}
	ex = exported{}
	if err := xml.Unmarshal(buf.Bytes(), &ex); err != nil || len(ex.Results) != 0 {
		t.Errorf("export of an empty archive: %v, %d results:\n%s", err, len(ex.Results), buf.String())
	}
	if ex.Prefs.Default != "never" {
		t.Errorf("export of a user without prefs: default %q, want never", ex.Prefs.Default)
	}
}

func testIDsUnique(f fixture) {
	const n = 300
	seen := make(map[string]bool, n)
	var got []string
	ones := 0
	for i := range n {
		// Same time for all, so a time-based id would repeat a prefix.
		m := f.append(chat(alice, bob, at(0), fmt.Sprint(i)))
		if seen[m.ID] {
			f.t.Fatalf("id %q assigned twice", m.ID)
		}
		seen[m.ID] = true
		got = append(got, m.ID)
		raw, err := mam.ParseID(m.ID)
		if err != nil {
			f.t.Fatalf("id %q is not 16 random bytes in URL-safe base64: %v", m.ID, err)
		}
		for _, b := range raw {
			ones += bits.OnesCount8(b)
		}
	}
	// 300×128 random bits: mean 19200 ones, σ ≈ 98. A counter, a timestamp
	// or a short random part falls far outside ±8σ.
	if ones < 19200-800 || ones > 19200+800 {
		f.t.Errorf("ids have %d one-bits in %d bits: not 128 uniformly random bits", ones, n*128)
	}
	if slices.IsSorted(got) {
		f.t.Error("ids are increasing: predictable")
	}
}

func testIDsNotReused(f fixture) {
	first := f.fill(alice, bob, 50)
	if _, err := f.s.Expire(f.ctx, at(25)); err != nil {
		f.t.Fatal(err)
	}
	if err := f.s.Erase(f.ctx, alice); err != nil {
		f.t.Fatal(err)
	}
	again := f.fill(alice, bob, 50)
	old := map[string]bool{}
	for _, m := range first {
		old[m.ID] = true
	}
	for _, m := range again {
		if old[m.ID] {
			f.t.Errorf("id %q reused after deletion", m.ID)
		}
	}
}

func testConcurrent(f fixture) {
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each+writers)
	var mu sync.Mutex
	seen := map[string]bool{}
	for w := range writers {
		wg.Go(func() {
			owner := alice
			if w%2 == 1 {
				owner = bob
			}
			for i := range each {
				m, err := f.s.Append(f.ctx, chat(owner, carol, at(i), fmt.Sprintf("w%d m%d", w, i)))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if seen[m.ID] {
					errs <- fmt.Errorf("id %q assigned twice", m.ID)
				}
				seen[m.ID] = true
				mu.Unlock()
			}
		})
		wg.Go(func() {
			for range each {
				if _, err := f.s.Query(f.ctx, alice, mam.Query{Last: true, Max: 5}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		f.t.Error(err)
	}
	for _, owner := range []jid.JID{alice, bob} {
		p := f.query(owner, mam.Query{Max: writers * each})
		if len(p.Messages) != writers*each/2 || p.Count != writers*each/2 || !p.Complete {
			f.t.Errorf("%v: %d messages (count %d), want %d", owner, len(p.Messages), p.Count, writers*each/2)
		}
		for i := 1; i < len(p.Messages); i++ {
			if p.Messages[i].Time.Before(p.Messages[i-1].Time) {
				f.t.Errorf("%v: message %d out of time order", owner, i)
			}
		}
	}
}
