package main

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chatbx.eu/privacy/mam"
	bolt "go.etcd.io/bbolt"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// TestRosterItemBounds: a roster item's name and groups are bounded, so the
// item limit bounds the bytes of a roster too.
func TestRosterItemBounds(t *testing.T) {
	t.Parallel()
	groups := func(n, size int) []string {
		g := make([]string, n)
		for i := range g {
			g[i] = fmt.Sprintf("%0*d", size, i)
		}
		return g
	}
	for _, tc := range []struct {
		name string
		it   rosterItem
		want error
	}{
		{"largest allowed", rosterItem{Name: strings.Repeat("n", maxRosterNameBytes), Groups: groups(maxRosterGroups, maxRosterGroupBytes)}, nil},
		{"no name, no group", rosterItem{}, nil},
		{"name too long", rosterItem{Name: strings.Repeat("n", maxRosterNameBytes+1)}, errRosterItem},
		{"name too long in bytes, not in characters", rosterItem{Name: strings.Repeat("é", maxRosterNameBytes/2+1)}, errRosterItem},
		{"too many groups", rosterItem{Groups: groups(maxRosterGroups+1, 1)}, errRosterItem},
		{"group too long", rosterItem{Groups: []string{strings.Repeat("g", maxRosterGroupBytes+1)}}, errRosterItem},
		{"empty group", rosterItem{Groups: []string{"a", ""}}, errRosterItem},
		{"duplicate group", rosterItem{Groups: []string{"a", "b", "a"}}, errDuplicateGroup},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newTestStore(t)
			tc.it.JID = "bob@localhost"
			err := st.setRosterItem("alice", tc.it, 0)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("setRosterItem: %v, want %v", err, tc.want)
			}
			items, _ := st.roster("alice")
			if stored := len(items) == 1; stored != (tc.want == nil) {
				t.Errorf("stored %v after %v", items, err)
			}
		})
	}
}

// TestRosterLimitStore: the item limit refuses a new item at the limit,
// lets existing items change, and admits a new one after a removal.
func TestRosterLimitStore(t *testing.T) {
	t.Parallel()
	st := newTestStore(t)
	const limit = 3
	set := func(contact, name string) error {
		return st.setRosterItem("alice", rosterItem{JID: contact + "@localhost", Name: name}, limit)
	}
	for i := range limit {
		if err := set(fmt.Sprint("c", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := set("extra", ""); !errors.Is(err, errRosterFull) {
		t.Fatalf("item %d: %v, want errRosterFull", limit+1, err)
	}
	if err := set("c1", "renamed"); err != nil {
		t.Fatalf("update at the limit: %v", err)
	}
	if err := st.setRosterItem("bob", rosterItem{JID: "extra@localhost"}, limit); err != nil {
		t.Fatalf("another user's roster: %v", err)
	}
	if err := st.removeRosterItem("alice", "c0@localhost"); err != nil {
		t.Fatal(err)
	}
	if err := set("extra", ""); err != nil {
		t.Fatalf("add after a removal: %v", err)
	}
	items, _ := st.roster("alice")
	if len(items) != limit || items[0].JID != "c1@localhost" || items[0].Name != "renamed" {
		t.Errorf("roster: %+v", items)
	}
}

// indexEntries lists the owner index as "owner/room".
func indexEntries(t *testing.T, st *serverStore) []string {
	t.Helper()
	var out []string
	err := st.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRoomOwners).ForEachBucket(func(owner []byte) error {
			return tx.Bucket(bucketRoomOwners).Bucket(owner).ForEach(func(room, _ []byte) error {
				out = append(out, string(owner)+"/"+string(room))
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRoomLimitStore: room creation counts the owner's rooms through the
// owner index; the index follows owner changes and erasure, and is built
// for a file written before it existed.
func TestRoomLimitStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newTestStore(t)
	const limit = 2
	create := func(room, owner string) error {
		return st.createRoom(room, roomConfig{Owner: owner + "@localhost"}, limit)
	}
	for _, r := range []string{"a1", "a2"} {
		if err := create(r, "alice"); err != nil {
			t.Fatal(err)
		}
	}
	if err := create("a3", "alice"); !errors.Is(err, errRoomLimit) {
		t.Fatalf("room %d: %v, want errRoomLimit", limit+1, err)
	}
	if err := create("a1", "bob"); !errors.Is(err, errRoomExists) {
		t.Fatalf("existing room: %v, want errRoomExists", err)
	}
	if err := create("b1", "bob"); err != nil {
		t.Fatalf("bob's first room: %v", err)
	}
	// A configuration change keeps the index; an owner change moves it.
	if err := st.saveRoom("a1", roomConfig{Owner: "alice@localhost", Archiving: true}); err != nil {
		t.Fatal(err)
	}
	if err := st.saveRoom("a2", roomConfig{Owner: "bob@localhost"}); err != nil {
		t.Fatal(err)
	}
	want := "[alice@localhost/a1 bob@localhost/a2 bob@localhost/b1]"
	if got := fmt.Sprint(indexEntries(t, st)); got != want {
		t.Fatalf("index %s, want %s", got, want)
	}
	if err := create("a3", "alice"); err != nil {
		t.Fatalf("alice below the limit again: %v", err)
	}
	if err := st.deleteRoom("a3"); err != nil {
		t.Fatal(err)
	}
	if err := st.deleteRoom("a3"); err != nil {
		t.Fatalf("deleting a deleted room: %v", err)
	}
	if got := fmt.Sprint(indexEntries(t, st)); got != want {
		t.Fatalf("index after deleteRoom %s, want %s", got, want)
	}
	if err := create("a3", "alice"); err != nil {
		t.Fatalf("alice after deleteRoom: %v", err)
	}

	for range 2 { // idempotent
		if err := st.Erase(ctx, jid.MustParse("alice@localhost")); err != nil {
			t.Fatal(err)
		}
	}
	if got := fmt.Sprint(indexEntries(t, st)); got != "[bob@localhost/a2 bob@localhost/b1]" {
		t.Errorf("index after erasing alice: %s", got)
	}
	rooms, _ := st.rooms()
	if len(rooms) != 2 || rooms["a2"].Owner != "bob@localhost" || rooms["b1"].Owner != "bob@localhost" {
		t.Errorf("rooms after erasing alice: %v", rooms)
	}

	// A file without the index (written by an earlier version) gets one.
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := openDB(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(bucketRooms)
		if err != nil {
			return err
		}
		for name, owner := range map[string]string{"x": "carol@localhost", "y": "carol@localhost", "z": "dave@localhost"} {
			v, _ := json.Marshal(roomConfig{Owner: owner})
			if err := b.Put([]byte(name), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	old, err := newServerStore(db)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(indexEntries(t, old)); got != "[carol@localhost/x carol@localhost/y dave@localhost/z]" {
		t.Errorf("index built for an old file: %s", got)
	}
	if err := old.createRoom("w", roomConfig{Owner: "carol@localhost"}, 2); !errors.Is(err, errRoomLimit) {
		t.Errorf("limit over the built index: %v", err)
	}
}

// TestConfigLimitDefaults: the per-user limits default to 1,000 roster
// items and 100 owned rooms.
func TestConfigLimitDefaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		c           Config
		items, room int
	}{
		{Config{}, 1000, 100},
		{Config{MaxRosterItems: -1, MaxOwnedRooms: -1}, 1000, 100},
		{Config{MaxRosterItems: 5, MaxOwnedRooms: 2}, 5, 2},
	} {
		if got, got2 := tc.c.rosterLimit(), tc.c.roomLimit(); got != tc.items || got2 != tc.room {
			t.Errorf("%+v: limits %d, %d; want %d, %d", tc.c, got, got2, tc.items, tc.room)
		}
	}
}

// stanzaErrorType returns the type attribute of a stanza's error child.
func stanzaErrorType(e element) string {
	errEl, _ := e.child(xml.Name{Space: stanza.NSClient, Local: "error"})
	return errEl.attr("type")
}

// fillRoster gives user n roster items in one transaction (n commits of
// roster sets would only slow the test down); each item is the largest
// allowed: a 256-byte name and 8 groups of 128 bytes.
func fillRoster(t *testing.T, st *serverStore, user string, n int) []rosterItem {
	t.Helper()
	items := make([]rosterItem, n)
	err := st.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketRoster).CreateBucketIfNotExists([]byte(user))
		if err != nil {
			return err
		}
		for i := range items {
			it := rosterItem{
				JID:  fmt.Sprintf("contact-%04d-%s@localhost", i, strings.Repeat("j", 40)),
				Name: fmt.Sprintf("%04d <&\"'> %s", i, strings.Repeat("ñ", (maxRosterNameBytes-12)/2)),
			}
			for g := range maxRosterGroups {
				it.Groups = append(it.Groups, fmt.Sprintf("%d-%04d-%s", g, i, strings.Repeat("g", maxRosterGroupBytes-7)))
			}
			if err := it.check(); err != nil {
				return err
			}
			items[i] = it
			v, _ := json.Marshal(it)
			if err := b.Put([]byte(it.JID), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return items
}

// TestLargestRosterGet: a roster get answers the largest allowed roster
// (the default 1,000 items, each with the longest name and the most and
// longest groups) in full. It answered internal-server-error for any
// roster over 256 KiB.
func TestLargestRosterGet(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	want := fillRoster(t, ts.store, "alice", defaultMaxRosterItems)
	a := ts.Login(t, "alice", "alice password")

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	resp, err := a.Session.SendIQ(ctx, clientXML(`<iq type="get" id="big"><query xmlns="jabber:iq:roster"/></iq>`))
	if err != nil {
		t.Fatal(err)
	}
	got, typ, size := readRoster(t, resp)
	resp.Close()
	if typ != "result" {
		t.Fatalf("roster get answered %q", typ)
	}
	if len(got) != len(want) {
		t.Fatalf("roster get: %d items, want %d", len(got), len(want))
	}
	for i := range want {
		if fmt.Sprint(got[i]) != fmt.Sprint(want[i]) {
			t.Fatalf("item %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	t.Logf("roster of %d items, %d bytes of names, JIDs and groups", len(got), size)
	if size <= maxStanzaBytes {
		t.Errorf("the roster (%d bytes) does not exceed the stanza cap: the test proves nothing", size)
	}

	// At the default limit, one more contact is refused, an update is not.
	resp2 := a.IQ(t, `<iq type="set" id="s"><query xmlns="jabber:iq:roster"><item jid="one-more@localhost"/></query></iq>`)
	if c, typ := stanzaErrorCondition(resp2), stanzaErrorType(resp2); c != "resource-constraint" || typ != "cancel" {
		t.Errorf("item %d: %s/%s, want resource-constraint/cancel", defaultMaxRosterItems+1, c, typ)
	}
	resp2 = a.IQ(t, fmt.Sprintf(`<iq type="set" id="u"><query xmlns="jabber:iq:roster"><item jid="%s" name="x"/></query></iq>`, want[0].JID))
	if resp2.attr("type") != "result" {
		t.Errorf("update at the limit: %s", stanzaErrorCondition(resp2))
	}
}

// TestRosterLimit: at the roster limit a roster set adding a contact is
// refused (resource-constraint, cancel) and pushes nothing; changing an
// existing item works; after a removal one more can be added. Items out of
// bounds are refused not-acceptable or bad-request (RFC 6121 § 2.3.3).
func TestRosterLimit(t *testing.T) {
	ts := startTestServer(t, withConfig(func(c *Config) { c.MaxRosterItems = 2 }))
	ts.Register(t, "alice", "alice password")
	a := ts.Login(t, "alice", "alice password")
	a2 := ts.Login(t, "alice", "alice password")
	rosterOf(t, a2) // an interested resource: it gets the pushes
	set := func(item string) element {
		return a.IQ(t, `<iq type="set" id="s"><query xmlns="jabber:iq:roster">`+item+`</query></iq>`)
	}
	isPush := func(contact string) func(element) bool {
		return func(e element) bool {
			raw, _ := e.bytes()
			return e.start.Name.Local == "iq" && e.attr("type") == "set" && strings.Contains(string(raw), `jid="`+contact+`"`)
		}
	}
	for _, c := range []string{"bob@localhost", "carol@localhost"} {
		if r := set(`<item jid="` + c + `"/>`); r.attr("type") != "result" {
			t.Fatalf("add %s: %s", c, stanzaErrorCondition(r))
		}
		a2.Next(t, isPush(c))
	}
	r := set(`<item jid="dave@localhost"/>`)
	if c, typ := stanzaErrorCondition(r), stanzaErrorType(r); c != "resource-constraint" || typ != "cancel" {
		t.Fatalf("third item: %q/%q, want resource-constraint/cancel", c, typ)
	}
	if r := set(`<item jid="bob@localhost" name="Bob"><group>Friends</group></item>`); r.attr("type") != "result" {
		t.Fatalf("update at the limit: %s", stanzaErrorCondition(r))
	}
	a2.Next(t, isPush("bob@localhost"))
	if r := set(`<item jid="carol@localhost" subscription="remove"/>`); r.attr("type") != "result" {
		t.Fatalf("remove: %s", stanzaErrorCondition(r))
	}
	a2.Next(t, isPush("carol@localhost"))
	if r := set(`<item jid="dave@localhost"/>`); r.attr("type") != "result" {
		t.Fatalf("add after a removal: %s", stanzaErrorCondition(r))
	}
	// The refused dave came with no push: the next push for dave is the
	// accepted one, and no push for erin follows below.
	a2.Next(t, isPush("dave@localhost"))

	for _, tc := range []struct{ item, cond string }{
		{`<item jid="bob@localhost" name="` + strings.Repeat("n", maxRosterNameBytes+1) + `"/>`, "not-acceptable"},
		{`<item jid="bob@localhost"><group></group></item>`, "not-acceptable"},
		{`<item jid="bob@localhost"><group>` + strings.Repeat("g", maxRosterGroupBytes+1) + `</group></item>`, "not-acceptable"},
		{`<item jid="bob@localhost"><group>g</group><group>h</group><group>g</group></item>`, "bad-request"},
		{`<item jid="bob@localhost">` + func() string {
			var b strings.Builder
			for i := range maxRosterGroups + 1 {
				fmt.Fprintf(&b, "<group>%d</group>", i)
			}
			return b.String()
		}() + `</item>`, "not-acceptable"},
	} {
		if r := set(tc.item); stanzaErrorCondition(r) != tc.cond {
			t.Errorf("%.60s…: %q, want %s", tc.item, stanzaErrorCondition(r), tc.cond)
		}
	}
	items, _ := ts.store.roster("alice")
	if fmt.Sprint(items) != "[{bob@localhost Bob [Friends]  false false} {dave@localhost  []  false false}]" {
		t.Errorf("roster: %v", items)
	}
	if e, err := a2.next(isPush("erin@localhost"), 0); err == nil {
		t.Errorf("push for a refused item: %v", e)
	}
}

// TestRoomLimit: a user who owns the maximum number of rooms cannot create
// another (not-allowed, cancel), but joins existing rooms; other users
// still create theirs; destroying a room frees a place; the deletion of
// the account frees the names and leaves no index entry.
func TestRoomLimit(t *testing.T) {
	ts := startTestServer(t, withConfig(func(c *Config) { c.MaxOwnedRooms = 2 }))
	ts.Register(t, "alice", "alice password")
	ts.Register(t, "bob", "bob password")
	a := ts.Login(t, "alice", "alice password")
	b := ts.Login(t, "bob", "bob password")
	joinRoom(t, a, "one@conference.localhost/A")
	joinRoom(t, a, "two@conference.localhost/A")

	a.Send(t, `<presence to="three@conference.localhost/A"><x xmlns="http://jabber.org/protocol/muc"/></presence>`)
	e := a.Next(t, func(e element) bool {
		return e.start.Name.Local == "presence" && e.attr("from") == "three@conference.localhost/A"
	})
	if c, typ := stanzaErrorCondition(e), stanzaErrorType(e); e.attr("type") != "error" || c != "not-allowed" || typ != "cancel" {
		raw, _ := e.bytes()
		t.Fatalf("third room: %s", raw)
	}
	ts.muc.mu.Lock()
	_, exists := ts.muc.rooms["three"]
	ts.muc.mu.Unlock()
	if exists {
		t.Error("the refused room exists")
	}
	joinRoom(t, b, "bobs@conference.localhost/B")
	joinRoom(t, a, "bobs@conference.localhost/A") // joining is not creating
	if got := fmt.Sprint(indexEntries(t, ts.store)); got != "[alice@localhost/one alice@localhost/two bob@localhost/bobs]" {
		t.Errorf("index: %s", got)
	}

	// Destroying a room (XEP-0045 § 10.9) tells the occupants, erases the
	// archive and frees the owner's place.
	const two = "two@conference.localhost"
	joinRoom(t, b, two+"/B")
	if r := a.IQ(t, `<iq type="set" id="c" to="`+two+`"><query xmlns="http://jabber.org/protocol/muc#owner"><x xmlns="jabber:x:data" type="submit"><field var="muc#roomconfig_enablearchiving"><value>1</value></field></x></query></iq>`); r.attr("type") != "result" {
		t.Fatalf("enable archiving: %s", stanzaErrorCondition(r))
	}
	b.Send(t, `<message to="`+two+`" type="groupchat"><body>in two</body></message>`)
	b.Next(t, isGroupchat("in two"))
	if md, _ := ts.mamStore.Metadata(context.Background(), jid.MustParse(two)); md.EndID == "" {
		t.Fatal("nothing archived in two: the test proves nothing")
	}
	destroy := `<iq type="set" id="d" to="` + two + `"><query xmlns="http://jabber.org/protocol/muc#owner"><destroy jid="one@conference.localhost"><reason>moving</reason></destroy></query></iq>`
	if r := b.IQ(t, destroy); stanzaErrorCondition(r) != "forbidden" {
		t.Errorf("destroy by an occupant: %q", stanzaErrorCondition(r))
	}
	if r := a.IQ(t, destroy); r.attr("type") != "result" {
		t.Fatalf("destroy by the owner: %s", stanzaErrorCondition(r))
	}
	notice := b.Next(t, func(e element) bool { return e.attr("from") == two+"/B" && e.attr("type") == "unavailable" })
	if raw, _ := notice.bytes(); !strings.Contains(string(raw), `<destroy xmlns="http://jabber.org/protocol/muc#user" jid="one@conference.localhost"><reason xmlns="http://jabber.org/protocol/muc#user">moving</reason></destroy>`) {
		t.Errorf("occupant's notice: %s", raw)
	}
	if md, _ := ts.mamStore.Metadata(context.Background(), jid.MustParse(two)); md.EndID != "" {
		t.Error("the destroyed room's archive is kept")
	}
	if raw, _ := joinRoom(t, a, "three@conference.localhost/A").bytes(); !strings.Contains(string(raw), `code="201"`) {
		t.Errorf("room after a destruction: %s", raw)
	}
	if got := fmt.Sprint(indexEntries(t, ts.store)); got != "[alice@localhost/one alice@localhost/three bob@localhost/bobs]" {
		t.Errorf("index after the destruction: %s", got)
	}

	if err := ts.deleteAccount(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(indexEntries(t, ts.store)); got != "[bob@localhost/bobs]" {
		t.Errorf("index after alice's deletion: %s", got)
	}
	// The names are free again.
	if raw, _ := joinRoom(t, b, "one@conference.localhost/B").bytes(); !strings.Contains(string(raw), `code="201"`) {
		t.Error("alice's room outlived her account")
	}
}

// readRoster reads a roster get's answer token by token: the test client's
// readElement caps an element at 256 KiB, like the server's input. It
// returns the items, the IQ type and the bytes of attribute values and
// text.
func readRoster(t *testing.T, resp xml.TokenReader) (got []rosterItem, typ string, size int) {
	t.Helper()
	var cur *rosterItem
	var text strings.Builder
	for {
		tok, err := resp.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			switch tk.Name.Local {
			case "iq":
				for _, at := range tk.Attr {
					if at.Name.Local == "type" {
						typ = at.Value
					}
				}
			case "item":
				got = append(got, rosterItem{})
				cur = &got[len(got)-1]
				for _, at := range tk.Attr {
					switch at.Name.Local {
					case "jid":
						cur.JID = at.Value
					case "name":
						cur.Name = at.Value
					}
					size += len(at.Value)
				}
			case "group":
				text.Reset()
			}
		case xml.CharData:
			text.Write(tk)
			size += len(tk)
		case xml.EndElement:
			if tk.Name.Local == "group" && cur != nil {
				cur.Groups = append(cur.Groups, text.String())
			}
		}
	}
	return got, typ, size
}

// FuzzRosterItem: the bounds of a roster item hold for any name and
// groups: an accepted item fits the per-item byte budget and comes back
// from the store unchanged; a refused one is not stored.
func FuzzRosterItem(f *testing.F) {
	f.Add("Bob", "Friends\x00Work")
	f.Add("", "")
	f.Add(strings.Repeat("n", maxRosterNameBytes+1), "a\x00a")
	f.Add("é", "\x00")
	st := newTestStore(f)
	f.Fuzz(func(t *testing.T, name, groups string) {
		it := rosterItem{JID: "bob@localhost", Name: name}
		if groups != "" {
			it.Groups = strings.Split(groups, "\x00")
		}
		_ = st.removeRosterItem("alice", it.JID)
		err := st.setRosterItem("alice", it, 1)
		items, rerr := st.roster("alice")
		if rerr != nil {
			t.Fatal(rerr)
		}
		if err != nil {
			if !errors.Is(err, errRosterItem) && !errors.Is(err, errDuplicateGroup) {
				t.Fatalf("unexpected error: %v", err)
			}
			if len(items) != 0 {
				t.Fatalf("refused item stored: %v", items)
			}
			return
		}
		size := len(it.Name)
		for _, g := range it.Groups {
			size += len(g)
		}
		if size > maxRosterNameBytes+maxRosterGroups*maxRosterGroupBytes {
			t.Fatalf("accepted an item of %d bytes", size)
		}
		if len(items) != 1 || fmt.Sprint(items[0]) != fmt.Sprint(it) {
			t.Fatalf("stored %v, set %v", items, it)
		}
	})
}

// TestRosterItemText: names and groups are stored unchanged, so text that
// XML cannot carry (invalid UTF-8, control characters) is refused rather
// than replaced.
func TestRosterItemText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s  string
		ok bool
	}{
		{"Bob", true}, {"tab\there", true}, {"\uFFFD", true}, {"日本語", true}, {"😀", true},
		{"\xff", false}, {"a\x00b", false}, {"\x01", false}, {"\uFFFE", false},
	} {
		if got := (rosterItem{Name: tc.s}).check() == nil; got != tc.ok {
			t.Errorf("name %q accepted %v, want %v", tc.s, got, tc.ok)
		}
		if got := (rosterItem{Groups: []string{tc.s}}).check() == nil; got != tc.ok {
			t.Errorf("group %q accepted %v, want %v", tc.s, got, tc.ok)
		}
	}
}

// TestRoomArchiveNotInherited: a room erased with its owner's account
// takes its archive along, and a room created under a name that still has
// an archive (left by an earlier room) starts with an empty one: its new
// occupants never read the messages of the earlier room.
func TestRoomArchiveNotInherited(t *testing.T) {
	ctx := context.Background()
	ts := startTestServer(t)
	for _, u := range []string{"alice", "bob", "carol"} {
		ts.Register(t, u, u+" password")
	}
	a := ts.Login(t, "alice", "alice password")
	b := ts.Login(t, "bob", "bob password")
	c := ts.Login(t, "carol", "carol password")
	const room = "one@conference.localhost"
	enableArchiving := func(c *testClient) {
		t.Helper()
		r := c.IQ(t, `<iq type="set" id="c" to="`+room+`"><query xmlns="http://jabber.org/protocol/muc#owner"><x xmlns="jabber:x:data" type="submit"><field var="muc#roomconfig_enablearchiving"><value>1</value></field></x></query></iq>`)
		if r.attr("type") != "result" {
			t.Fatalf("enable archiving: %s", stanzaErrorCondition(r))
		}
	}
	archived := func() string {
		t.Helper()
		md, err := ts.mamStore.Metadata(ctx, jid.MustParse(room))
		if err != nil {
			t.Fatal(err)
		}
		return md.EndID
	}

	joinRoom(t, a, room+"/A")
	enableArchiving(a)
	joinRoom(t, b, room+"/B")
	b.Send(t, `<message to="`+room+`" type="groupchat"><body>before</body></message>`)
	b.Next(t, isGroupchat("before"))
	if archived() == "" {
		t.Fatal("nothing archived: the test proves nothing")
	}
	b.Send(t, `<presence to="`+room+`/B" type="unavailable"/>`)
	b.Next(t, func(e element) bool { return e.attr("type") == "unavailable" && e.attr("from") == room+"/B" })
	if err := ts.deleteAccount(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if id := archived(); id != "" {
		t.Errorf("the deleted owner's empty room kept its archive (last id %s)", id)
	}

	// An archive left under the name (written here directly, as an
	// interrupted erasure or a room that outlived its owner would leave
	// it) is not inherited.
	_, err := ts.mamStore.Append(ctx, mam.Message{
		Archive: jid.MustParse(room), With: jid.MustParse(room + "/B"), Time: time.Now(), Groupchat: true,
		Stanza: []byte(`<message xmlns="jabber:client" type="groupchat" from="` + room + `/B"><body>leftover</body></message>`),
	})
	if err != nil {
		t.Fatal(err)
	}
	joinRoom(t, c, room+"/C")
	enableArchiving(c)
	if got, resp := mamQuery(t, c, room, ""); resp.attr("type") != "result" || len(got) != 0 {
		t.Errorf("the new room's owner reads %q (%s)", got, resp.attr("type"))
	}
}

// TestRoomListBounded: the service's disco#items answers however many rooms
// exist (a partial list, in JID order, once their JIDs pass
// maxListedRoomBytes); it answered internal-server-error once the list
// passed the 256 KiB parse cap.
func TestRoomListBounded(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	a := ts.Login(t, "alice", "alice password")
	const n = 400 // 400 JIDs of about 1,045 bytes: 418 KB
	ts.muc.mu.Lock()
	for i := range n {
		name := fmt.Sprintf("%04d%s", i, strings.Repeat("r", 1000))
		rj, err := jid.New(name, conferenceHost(ts.Domain), "")
		if err != nil {
			ts.muc.mu.Unlock()
			t.Fatal(err)
		}
		ts.muc.rooms[name] = &room{jid: rj, owner: jid.MustParse("alice@localhost"), occupants: map[string]*session{}}
	}
	ts.muc.mu.Unlock()
	resp := a.IQ(t, `<iq type="get" id="i" to="conference.localhost"><query xmlns="http://jabber.org/protocol/disco#items"/></iq>`)
	if resp.attr("type") != "result" {
		t.Fatalf("disco#items: %s", stanzaErrorCondition(resp))
	}
	q, _ := resp.child(xml.Name{Space: disco.NSItems, Local: "query"})
	items := q.children()
	if len(items) == 0 || len(items) >= n {
		t.Fatalf("%d items listed of %d", len(items), n)
	}
	size := 0
	for i, it := range items {
		size += len(it.attr("jid"))
		if want := fmt.Sprintf("%04d", i); !strings.HasPrefix(it.attr("jid"), want) {
			t.Fatalf("item %d: %.10s…, want the rooms in JID order", i, it.attr("jid"))
		}
	}
	if size > maxListedRoomBytes {
		t.Errorf("listed %d bytes of JIDs", size)
	}
	t.Logf("%d of %d rooms listed, %d bytes of JIDs", len(items), n, size)
}
