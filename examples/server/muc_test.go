package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"chatbx.eu/privacy/examples/server/internal/web"
	"mellium.im/xmpp/jid"

	"mellium.im/xmpp/muc"
)

// adminIQ sends a muc#admin IQ (get or set) with items to room.
func adminIQ(t *testing.T, c *testClient, typ, room, items string) element {
	t.Helper()
	return c.IQ(t, `<iq type="`+typ+`" id="adm" to="`+room+`"><query xmlns="http://jabber.org/protocol/muc#admin">`+items+`</query></iq>`)
}

// configureRoom submits the owner form with fields (var → value).
func configureRoom(t *testing.T, c *testClient, room string, fields ...string) element {
	t.Helper()
	var b strings.Builder
	b.WriteString(`<field var="FORM_TYPE"><value>http://jabber.org/protocol/muc#roomconfig</value></field>`)
	for i := 0; i+1 < len(fields); i += 2 {
		fmt.Fprintf(&b, `<field var="%s"><value>%s</value></field>`, fields[i], xmlEscape(fields[i+1]))
	}
	return c.IQ(t, `<iq type="set" id="cfg" to="`+room+`"><query xmlns="http://jabber.org/protocol/muc#owner"><x xmlns="jabber:x:data" type="submit">`+b.String()+`</x></query></iq>`)
}

// statusCodes lists the muc#user status codes of e.
func statusCodes(e element) []string {
	x, ok := e.child(xml.Name{Space: muc.NSUser, Local: "x"})
	if !ok {
		return nil
	}
	var out []string
	for _, c := range x.children() {
		if c.start.Name.Local == "status" {
			out = append(out, c.attr("code"))
		}
	}
	return out
}

// presenceOf matches a presence from occupant of type typ ("" available).
func mucPresence(occupant, typ string) func(element) bool {
	return func(e element) bool {
		return e.start.Name.Local == "presence" && e.attr("from") == occupant && e.attr("type") == typ
	}
}

// tryJoin sends a join presence and returns the answer: the self-presence
// or an error.
func tryJoinRoom(t *testing.T, c *testClient, occupant string) element {
	t.Helper()
	c.Send(t, `<presence to="`+occupant+`"><x xmlns="http://jabber.org/protocol/muc"/></presence>`)
	return c.Next(t, func(e element) bool {
		return e.start.Name.Local == "presence" && e.attr("from") == occupant &&
			(e.attr("type") == "error" || slices.Contains(statusCodes(e), statusSelf))
	})
}

func mucUsers(t *testing.T, ts *testServer, names ...string) []*testClient {
	t.Helper()
	var out []*testClient
	for _, u := range names {
		ts.Register(t, u, u+" password")
		out = append(out, ts.Login(t, u, u+" password"))
	}
	return out
}

// TestRoomLocked: a new room is locked (201) until its owner submits the
// configuration form or accepts an instant room (XEP-0045 § 10.1); while
// locked, others get item-not-found, for joins and disco alike; a cancel
// keeps it locked.
func TestRoomLocked(t *testing.T) {
	ts := startTestServer(t)
	cl := mucUsers(t, ts, "alice", "bob")
	a, b := cl[0], cl[1]
	const room = "new@conference.localhost"

	self := joinLocked(t, a, room+"/Al")
	if codes := statusCodes(self); !slices.Contains(codes, statusCreated) {
		t.Fatalf("creator's codes: %v", codes)
	}
	refused := func(when string) {
		t.Helper()
		if e := tryJoinRoom(t, b, room+"/Bob"); stanzaErrorCondition(e) != "item-not-found" {
			t.Errorf("%s: join of a locked room: %q", when, stanzaErrorCondition(e))
		}
		if e := b.IQ(t, `<iq type="get" id="d" to="`+room+`"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`); stanzaErrorCondition(e) != "item-not-found" {
			t.Errorf("%s: disco of a locked room: %q", when, stanzaErrorCondition(e))
		}
		if _, e := mamQuery(t, b, room, ""); stanzaErrorCondition(e) == "" {
			t.Errorf("%s: archive of a locked room answered", when)
		}
	}
	refused("new")
	// The owner's second join (another session) is told the room still
	// waits for configuration.
	a2 := ts.Login(t, "alice", "alice password")
	if codes := statusCodes(joinLocked(t, a2, room+"/Al2")); !slices.Contains(codes, statusCreated) {
		t.Errorf("owner's second join of a locked room: %v", codes)
	}
	// A locked room its owner leaves is gone (never configured).
	joinLocked(t, a, "abandoned@conference.localhost/Al")
	a.Send(t, `<presence to="abandoned@conference.localhost/Al" type="unavailable"/>`)
	// The session's stanzas are handled in order: once this is answered,
	// the leave was handled.
	if e := a.IQ(t, `<iq type="get" id="d" to="abandoned@conference.localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`); stanzaErrorCondition(e) != "item-not-found" {
		t.Errorf("disco of an abandoned locked room: %q", stanzaErrorCondition(e))
	}
	if c, _ := ts.store.rooms(); c["abandoned"].Owner != "" {
		t.Error("an abandoned locked room is kept")
	}
	if r := a.IQ(t, `<iq type="set" id="x" to="`+room+`"><query xmlns="http://jabber.org/protocol/muc#owner"><x xmlns="jabber:x:data" type="cancel"/></query></iq>`); r.attr("type") != "result" {
		t.Fatalf("cancel: %s", stanzaErrorCondition(r))
	}
	refused("after cancel")
	// Instant room: the empty submitted form.
	if r := a.IQ(t, `<iq type="set" id="i" to="`+room+`"><query xmlns="http://jabber.org/protocol/muc#owner"><x xmlns="jabber:x:data" type="submit"/></query></iq>`); r.attr("type") != "result" {
		t.Fatalf("instant room: %s", stanzaErrorCondition(r))
	}
	if e := tryJoinRoom(t, b, room+"/Bob"); e.attr("type") == "error" {
		t.Fatalf("join after unlocking: %s", stanzaErrorCondition(e))
	} else if slices.Contains(statusCodes(e), statusCreated) {
		t.Error("201 for a joiner of an existing room")
	}

	// A configured room is unlocked as well, and the lock survives a
	// restart until then.
	joinLocked(t, a, "later@conference.localhost/Al")
	if c, _ := ts.store.rooms(); !c["later"].Locked || c["new"].Locked {
		t.Errorf("stored locks: later %v, new %v", c["later"].Locked, c["new"].Locked)
	}
	if r := configureRoom(t, a, "later@conference.localhost", "muc#roomconfig_roomname", "Later"); r.attr("type") != "result" {
		t.Fatalf("configure: %s", stanzaErrorCondition(r))
	}
	if e := tryJoinRoom(t, b, "later@conference.localhost/Bob"); e.attr("type") == "error" {
		t.Errorf("join after configuration: %s", stanzaErrorCondition(e))
	}
}

// TestOccupantPresence: the room repeats each occupant's own presence
// children (<show/>, <status/>, caps) on join, change and exit (XEP-0045
// § 7.14, § 17.3), and never the occupant's own muc <x/>.
func TestOccupantPresence(t *testing.T) {
	ts := startTestServer(t)
	cl := mucUsers(t, ts, "alice", "bob")
	a, b := cl[0], cl[1]
	const room = "talk@conference.localhost"
	joinRoom(t, a, room+"/Al")

	caps := `<c xmlns="http://jabber.org/protocol/caps" hash="sha-1" node="https://example.org" ver="abc="/>`
	b.Send(t, `<presence to="`+room+`/Bob"><x xmlns="http://jabber.org/protocol/muc"/><show>away</show><status>at lunch</status>`+caps+`</presence>`)
	for _, tc := range []struct {
		name, send, typ string
		want            []string
	}{
		{"join", "", "", []string{">away</show>", ">at lunch</status>", `ver="abc="`}},
		{"change", `<presence to="` + room + `/Bob"><show>dnd</show><status>busy</status></presence>`, "", []string{">dnd</show>", ">busy</status>"}},
		{"exit", `<presence to="` + room + `/Bob" type="unavailable"><status>gone home</status></presence>`, "unavailable", []string{">gone home</status>", `role="none"`}},
	} {
		if tc.send != "" {
			b.Send(t, tc.send)
		}
		e := a.Next(t, mucPresence(room+"/Bob", tc.typ))
		raw, _ := e.bytes()
		for _, w := range tc.want {
			if !bytes.Contains(raw, []byte(w)) {
				t.Errorf("%s: lacks %s: %s", tc.name, w, raw)
			}
		}
		if bytes.Contains(raw, []byte(`xmlns="http://jabber.org/protocol/muc"`)) {
			t.Errorf("%s: the occupant's muc <x/> is repeated: %s", tc.name, raw)
		}
		if tc.name == "change" && bytes.Contains(raw, []byte("at lunch")) {
			t.Errorf("change keeps the old status: %s", raw)
		}
	}
}

// TestRoomAdminLists: the owner and admins list and change affiliations
// with muc#admin (XEP-0045 §§ 9–10); the limits of each.
func TestRoomAdminLists(t *testing.T) {
	ts := startTestServer(t)
	cl := mucUsers(t, ts, "alice", "bob", "carol")
	a, b, c := cl[0], cl[1], cl[2]
	const room = "club@conference.localhost"
	joinRoom(t, a, room+"/Al")

	if r := adminIQ(t, a, "set", room, `<item affiliation="admin" jid="bob@localhost"/><item affiliation="member" jid="carol@localhost/phone"/><item affiliation="outcast" jid="eve@example.org"><reason>spam</reason></item>`); r.attr("type") != "result" {
		t.Fatalf("owner's set: %s", stanzaErrorCondition(r))
	}
	list := func(cl *testClient, attr string) (string, string) {
		t.Helper()
		r := adminIQ(t, cl, "get", room, `<item `+attr+`/>`)
		if r.attr("type") != "result" {
			return "", stanzaErrorCondition(r)
		}
		q, _ := r.child(xml.Name{Space: muc.NSAdmin, Local: "query"})
		var got []string
		for _, it := range q.children() {
			got = append(got, it.attr("jid"))
		}
		return strings.Join(got, " "), ""
	}
	for _, tc := range []struct {
		who      *testClient
		query    string
		want     string
		wantCond string
	}{
		{a, `affiliation="owner"`, "alice@localhost", ""},
		{a, `affiliation="admin"`, "bob@localhost", ""},
		{a, `affiliation="member"`, "carol@localhost", ""},
		{b, `affiliation="outcast"`, "eve@example.org", ""},
		{c, `affiliation="member"`, "", "forbidden"},
		{a, `affiliation="bogus"`, "", "bad-request"},
	} {
		got, cond := list(tc.who, tc.query)
		if got != tc.want || cond != tc.wantCond {
			t.Errorf("%s lists %s: %q %q, want %q %q", tc.who.JID.Localpart(), tc.query, got, cond, tc.want, tc.wantCond)
		}
	}
	for _, tc := range []struct {
		who   *testClient
		items string
		want  string
	}{
		{b, `<item affiliation="member" jid="dave@localhost"/>`, ""},                                                      // admins manage members
		{b, `<item affiliation="admin" jid="dave@localhost"/>`, "not-allowed"},                                            // but not admins
		{b, `<item affiliation="none" jid="alice@localhost"/>`, "not-allowed"},                                            // nor the owner
		{a, `<item affiliation="owner" jid="bob@localhost"/>`, "not-allowed"},                                             // one owner
		{a, `<item affiliation="none" jid="alice@localhost"/>`, "not-allowed"},                                            // who stays
		{c, `<item affiliation="member" jid="frank@localhost"/>`, "forbidden"},                                            // members do not
		{a, `<item affiliation="chief" jid="frank@localhost"/>`, "bad-request"},                                           // no such affiliation
		{a, `<item affiliation="member"/>`, "bad-request"},                                                                // no JID
		{a, `<item affiliation="member" jid="x@localhost"/><item affiliation="owner" jid="y@localhost"/>`, "not-allowed"}, // all or nothing
	} {
		r := adminIQ(t, tc.who, "set", room, tc.items)
		if got := stanzaErrorCondition(r); got != tc.want {
			t.Errorf("%s sets %s: %q, want %q", tc.who.JID.Localpart(), tc.items, got, tc.want)
		}
	}
	if got, _ := list(a, `affiliation="member"`); got != "carol@localhost dave@localhost" {
		t.Errorf("members after the changes: %q", got)
	}
	// Persisted with the room, and found through the index.
	if c, _ := ts.store.rooms(); c["club"].Affiliations["bob@localhost"] != affiliationAdmin {
		t.Errorf("stored affiliations: %v", c["club"].Affiliations)
	}
	if got, _ := ts.store.affiliationsOf("carol@localhost"); fmt.Sprint(got) != "[{club member}]" {
		t.Errorf("carol's index: %v", got)
	}

	// The bound on a room's affiliations.
	var many strings.Builder
	for i := range maxRoomAffiliations {
		fmt.Fprintf(&many, `<item affiliation="member" jid="m%d@localhost"/>`, i)
	}
	if r := adminIQ(t, a, "set", room, many.String()); stanzaErrorCondition(r) != "not-allowed" {
		t.Errorf("beyond %d affiliations: %q", maxRoomAffiliations, stanzaErrorCondition(r))
	}
}

// TestRoomKickBan: moderators kick (role none, 307) and ban (outcast,
// 301) occupants, with the reason; a kicked user may come back, a banned
// one may not; nobody kicks an admin, and participants kick nobody.
func TestRoomKickBan(t *testing.T) {
	ts := startTestServer(t)
	cl := mucUsers(t, ts, "alice", "bob", "carol")
	a, b, c := cl[0], cl[1], cl[2]
	const room = "ring@conference.localhost"
	joinRoom(t, a, room+"/Al")
	joinRoom(t, b, room+"/Bob")
	joinRoom(t, c, room+"/Cat")

	for _, tc := range []struct {
		who   *testClient
		items string
		want  string
	}{
		{c, `<item nick="Bob" role="none"/>`, "forbidden"},
		{a, `<item nick="Nobody" role="none"/>`, "item-not-found"},
		{a, `<item nick="Al" role="none"/>`, "not-allowed"},
		{a, `<item nick="Bob" role="moderator"/>`, "not-allowed"},
	} {
		if r := adminIQ(t, tc.who, "set", room, tc.items); stanzaErrorCondition(r) != tc.want {
			t.Errorf("%s: %q, want %q", tc.items, stanzaErrorCondition(r), tc.want)
		}
	}

	removed := func(how, items, code string) {
		t.Helper()
		if r := adminIQ(t, a, "set", room, items); r.attr("type") != "result" {
			t.Fatalf("%s: %s", how, stanzaErrorCondition(r))
		}
		self := c.Next(t, mucPresence(room+"/Cat", "unavailable"))
		if codes := statusCodes(self); !slices.Contains(codes, code) || !slices.Contains(codes, statusSelf) {
			t.Errorf("%s: own codes %v", how, codes)
		}
		if raw, _ := self.bytes(); !bytes.Contains(raw, []byte(">behave</reason>")) {
			t.Errorf("%s: no reason: %s", how, raw)
		}
		if codes := statusCodes(b.Next(t, mucPresence(room+"/Cat", "unavailable"))); !slices.Contains(codes, code) {
			t.Errorf("%s: others see %v", how, codes)
		}
	}
	removed("kick", `<item nick="Cat" role="none"><reason>behave</reason></item>`, statusKicked)
	if e := tryJoinRoom(t, c, room+"/Cat"); e.attr("type") == "error" {
		t.Fatalf("rejoin after a kick: %s", stanzaErrorCondition(e))
	}
	b.Next(t, mucPresence(room+"/Cat", ""))
	removed("ban", `<item affiliation="outcast" jid="carol@localhost"><reason>behave</reason></item>`, statusBanned)
	if e := tryJoinRoom(t, c, room+"/Cat"); stanzaErrorCondition(e) != "forbidden" {
		t.Errorf("rejoin after a ban: %q", stanzaErrorCondition(e))
	}
	c.Send(t, `<message to="`+room+`" type="groupchat"><body>still here?</body></message>`)
	if e := c.Next(t, func(e element) bool { return e.attr("type") == "error" }); stanzaErrorCondition(e) != "not-acceptable" {
		t.Errorf("banned user's message: %q", stanzaErrorCondition(e))
	}
	// An admin cannot be kicked, even by the owner.
	adminIQ(t, a, "set", room, `<item affiliation="admin" jid="bob@localhost"/>`)
	if r := adminIQ(t, a, "set", room, `<item nick="Bob" role="none"/>`); stanzaErrorCondition(r) != "not-allowed" {
		t.Errorf("kicking an admin: %q", stanzaErrorCondition(r))
	}
	// The moderators' role list.
	r := adminIQ(t, b, "get", room, `<item role="moderator"/>`)
	if raw, _ := r.bytes(); !bytes.Contains(raw, []byte(`nick="Al"`)) || !bytes.Contains(raw, []byte(`nick="Bob"`)) {
		t.Errorf("moderators: %s", raw)
	}
}

// TestMembersOnly: a members-only room refuses non-members
// (registration-required, § 7.2.5), removes them when it becomes
// members-only (322) or when they lose membership (321); the owner's
// mediated invitation (§ 7.8.2) reaches the invitee and makes it a member;
// a member's invitation is refused; the archive is the members'; archived
// messages carry the room's stanza-id, the archive's id for them.
func TestMembersOnly(t *testing.T) {
	ts := startTestServer(t)
	cl := mucUsers(t, ts, "alice", "bob", "carol", "dave")
	a, b, c, d := cl[0], cl[1], cl[2], cl[3]
	const room = "inner@conference.localhost"
	joinRoom(t, a, room+"/Al")
	joinRoom(t, c, room+"/Cat")
	adminIQ(t, a, "set", room, `<item affiliation="member" jid="bob@localhost"/>`)

	if r := configureRoom(t, a, room, "muc#roomconfig_membersonly", "1", "muc#roomconfig_enablearchiving", "1"); r.attr("type") != "result" {
		t.Fatalf("configure: %s", stanzaErrorCondition(r))
	}
	if codes := statusCodes(c.Next(t, mucPresence(room+"/Cat", "unavailable"))); !slices.Contains(codes, statusMembersOnly) {
		t.Errorf("non-member in a room made members-only: %v", codes)
	}
	if e := tryJoinRoom(t, c, room+"/Cat"); stanzaErrorCondition(e) != "registration-required" {
		t.Errorf("non-member's join: %q", stanzaErrorCondition(e))
	}
	joinRoom(t, b, room+"/Bob")

	// A member may not invite; the owner may, and the invitee becomes a
	// member.
	invite := `<message to="` + room + `"><x xmlns="http://jabber.org/protocol/muc#user"><invite to="carol@localhost"><reason>join us</reason></invite></x></message>`
	b.Send(t, invite)
	if e := b.Next(t, func(e element) bool { return e.attr("type") == "error" }); stanzaErrorCondition(e) != "forbidden" {
		t.Errorf("member's invitation: %q", stanzaErrorCondition(e))
	}
	a.Send(t, invite)
	inv := c.Next(t, func(e element) bool {
		x, _ := e.child(xml.Name{Space: muc.NSUser, Local: "x"})
		_, ok := x.child(xml.Name{Space: muc.NSUser, Local: "invite"})
		return ok && e.attr("from") == room
	})
	x, _ := inv.child(xml.Name{Space: muc.NSUser, Local: "x"})
	in, _ := x.child(xml.Name{Space: muc.NSUser, Local: "invite"})
	if rs, _ := in.child(xml.Name{Space: muc.NSUser, Local: "reason"}); in.attr("from") != "alice@localhost" || rs.text() != "join us" {
		raw, _ := inv.bytes()
		t.Errorf("invitation: %s", raw)
	}
	if e := tryJoinRoom(t, c, room+"/Cat"); e.attr("type") == "error" {
		t.Fatalf("invitee's join: %s", stanzaErrorCondition(e))
	}
	// The invitee declines another time: the decline reaches the inviter.
	c.Send(t, `<message to="`+room+`"><x xmlns="http://jabber.org/protocol/muc#user"><decline to="alice@localhost"><reason>busy</reason></decline></x></message>`)
	a.Next(t, func(e element) bool {
		x, _ := e.child(xml.Name{Space: muc.NSUser, Local: "x"})
		dc, ok := x.child(xml.Name{Space: muc.NSUser, Local: "decline"})
		return ok && e.attr("from") == room && dc.attr("from") == "carol@localhost"
	})

	// Archive: members read it (with the id the broadcast carried), others
	// do not.
	b.Send(t, `<message to="`+room+`" type="groupchat"><body>members only</body></message>`)
	got := b.Next(t, isGroupchat("members only"))
	sid := stanzaIDBy(got, room)
	if sid == "" {
		t.Error("archived room message without the room's stanza-id")
	}
	if raw := rawRoomArchive(t, c, room); !bytes.Contains(raw, []byte(`id="`+sid+`"`)) {
		t.Errorf("the archive's id is not the broadcast stanza-id %q: %s", sid, raw)
	}
	if _, e := mamQuery(t, d, room, ""); e.attr("type") != "error" {
		t.Error("a non-member reads a members-only archive")
	}

	// Losing membership removes the occupant (321) and its archive access.
	adminIQ(t, a, "set", room, `<item affiliation="none" jid="carol@localhost"/>`)
	if codes := statusCodes(c.Next(t, mucPresence(room+"/Cat", "unavailable"))); !slices.Contains(codes, statusNotMember) {
		t.Errorf("former member: %v", codes)
	}
	if _, e := mamQuery(t, c, room, ""); e.attr("type") != "error" {
		t.Error("a former member reads the archive")
	}
	// Invitations to nobody of this server.
	a.Send(t, `<message to="`+room+`"><x xmlns="http://jabber.org/protocol/muc#user"><invite to="eve@example.org"/></x></message>`)
	if e := a.Next(t, func(e element) bool { return e.attr("type") == "error" }); stanzaErrorCondition(e) != "remote-server-not-found" {
		t.Errorf("remote invitee: %q", stanzaErrorCondition(e))
	}
}

// TestRoomConfigFields: the fields clients send are applied (name,
// description, persistent, public, members-only, whois, change subject,
// archiving), unknown fields ignored, bad values refused; occupants get
// the status codes of the change (§ 10.2.1).
func TestRoomConfigFields(t *testing.T) {
	ts := startTestServer(t)
	cl := mucUsers(t, ts, "alice", "bob")
	a, b := cl[0], cl[1]
	const room = "conf@conference.localhost"
	joinRoom(t, a, room+"/Al")
	joinRoom(t, b, room+"/Bob")

	for _, tc := range []struct {
		fields []string
		want   string
	}{
		{[]string{"muc#roomconfig_membersonly", "maybe"}, "bad-request"},
		{[]string{"muc#roomconfig_whois", "everyone"}, "bad-request"},
		{[]string{"muc#roomconfig_roomname", strings.Repeat("n", maxRoomNameBytes+1)}, "bad-request"},
		{[]string{"FORM_TYPE", "urn:other"}, "bad-request"},
	} {
		if r := configureRoom(t, a, room, tc.fields...); stanzaErrorCondition(r) != tc.want {
			t.Errorf("%v: %q, want %q", tc.fields, stanzaErrorCondition(r), tc.want)
		}
	}
	r := configureRoom(t, a, room,
		"muc#roomconfig_roomname", "Conference", "muc#roomconfig_roomdesc", "talks",
		"muc#roomconfig_persistentroom", "0", "muc#roomconfig_publicroom", "0",
		"muc#roomconfig_whois", "anyone", "muc#roomconfig_changesubject", "1",
		"muc#roomconfig_enablearchiving", "1", "muc#roomconfig_maxusers", "30")
	if r.attr("type") != "result" {
		t.Fatalf("configure: %s", stanzaErrorCondition(r))
	}
	note := b.Next(t, func(e element) bool { return e.attr("from") == room && len(statusCodes(e)) > 0 })
	if codes := statusCodes(note); !slices.Equal(codes, []string{statusLogging, statusNowNonAnon, statusConfigChange}) {
		t.Errorf("configuration change codes: %v", codes)
	}
	info := b.IQ(t, `<iq type="get" id="d" to="`+room+`"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	raw, _ := info.bytes()
	for _, w := range []string{`name="Conference"`, "muc_nonanonymous", "muc_temporary", "muc_hidden", "muc_open", "urn:xmpp:mam:2"} {
		if !bytes.Contains(raw, []byte(w)) {
			t.Errorf("disco#info lacks %s: %s", w, raw)
		}
	}
	items := b.IQ(t, `<iq type="get" id="i" to="conference.localhost"><query xmlns="http://jabber.org/protocol/disco#items"/></iq>`)
	if raw, _ := items.bytes(); bytes.Contains(raw, []byte(room)) {
		t.Errorf("a hidden room is listed: %s", raw)
	}
	form := a.IQ(t, `<iq type="get" id="f" to="`+room+`"><query xmlns="http://jabber.org/protocol/muc#owner"/></iq>`)
	raw, _ = form.bytes()
	for _, w := range []string{`>Conference</value>`, `>talks</value>`, `>anyone</value>`} {
		if !bytes.Contains(raw, []byte(w)) {
			t.Errorf("form lacks %s: %s", w, raw)
		}
	}
	// whois anyone: a participant sees real JIDs; participants may set the
	// subject.
	a.Send(t, `<presence to="`+room+`/Al"><status>x</status></presence>`)
	update := b.Next(t, func(e element) bool {
		st, _ := e.child(xml.Name{Space: "jabber:client", Local: "status"})
		return mucPresence(room+"/Al", "")(e) && st.text() == "x"
	})
	if raw, _ := update.bytes(); !bytes.Contains(raw, []byte(`jid="alice@localhost/`)) {
		t.Errorf("a participant of a non-anonymous room does not see real JIDs: %s", raw)
	}
	b.Send(t, `<message to="`+room+`" type="groupchat"><subject>news</subject></message>`)
	a.Next(t, func(e element) bool {
		s, ok := e.child(xml.Name{Space: "jabber:client", Local: "subject"})
		return ok && s.text() == "news"
	})
	// A temporary room goes with its last occupant.
	for _, c := range []*testClient{a, b} {
		c.Send(t, `<presence to="`+room+`/x" type="unavailable"/>`)
	}
	b.Next(t, mucPresence(room+"/Bob", "unavailable"))
	a.Next(t, mucPresence(room+"/Al", "unavailable"))
	if self := joinLocked(t, b, room+"/Bob"); !slices.Contains(statusCodes(self), statusCreated) {
		t.Error("the temporary room outlived its occupants")
	}
}

// TestRoomSubjectForbidden: without changesubject only moderators set the
// subject; a joiner gets the current subject.
func TestRoomSubjectForbidden(t *testing.T) {
	ts := startTestServer(t)
	cl := mucUsers(t, ts, "alice", "bob")
	a, b := cl[0], cl[1]
	const room = "topic@conference.localhost"
	joinRoom(t, a, room+"/Al")
	joinRoom(t, b, room+"/Bob")
	b.Send(t, `<message to="`+room+`" type="groupchat"><subject>mine</subject></message>`)
	if e := b.Next(t, func(e element) bool { return e.attr("type") == "error" }); stanzaErrorCondition(e) != "forbidden" {
		t.Errorf("participant's subject: %q", stanzaErrorCondition(e))
	}
	a.Send(t, `<message to="`+room+`" type="groupchat"><subject>owner's</subject></message>`)
	b.Next(t, func(e element) bool {
		s, ok := e.child(xml.Name{Space: "jabber:client", Local: "subject"})
		return ok && s.text() == "owner's"
	})
	b.Send(t, `<presence to="`+room+`/Bob" type="unavailable"/>`)
	b.Next(t, mucPresence(room+"/Bob", "unavailable"))
	joinRoom(t, b, room+"/Bob")
	b.Next(t, func(e element) bool {
		s, ok := e.child(xml.Name{Space: "jabber:client", Local: "subject"})
		return ok && s.text() == "owner's" && e.attr("from") == room
	})
}

// TestRoomAffiliationErasure: room data is personal data of its members.
// The export lists the user's affiliations and owned rooms; deleting the
// account removes the user's affiliations from every room (memory, store
// and index) and destroys the rooms the user owns, occupants told.
func TestRoomAffiliationErasure(t *testing.T) {
	ts := startTestServer(t)
	cl := mucUsers(t, ts, "alice", "bob")
	a, b := cl[0], cl[1]
	joinRoom(t, a, "alices@conference.localhost/Al")
	joinRoom(t, b, "alices@conference.localhost/Bob")
	joinRoom(t, b, "bobs@conference.localhost/Bob")
	adminIQ(t, b, "set", "bobs@conference.localhost", `<item affiliation="admin" jid="alice@localhost"/><item affiliation="member" jid="carol@localhost"/>`)
	adminIQ(t, a, "set", "alices@conference.localhost", `<item affiliation="member" jid="bob@localhost"/>`)

	files := exportZip(t, ts, "alice", "alice password")
	all := strings.Join(slices.Collect(func(yield func(string) bool) {
		for _, v := range files {
			if !yield(v) {
				return
			}
		}
	}), "\n")
	for _, w := range []string{`room="bobs" affiliation="admin"`, `jid="alices"`} {
		if !strings.Contains(all, w) {
			t.Errorf("export lacks %s", w)
		}
	}
	if strings.Contains(all, "carol@localhost") || strings.Contains(all, `room="alices"`) {
		t.Error("export holds another user's affiliation")
	}

	// The privacy report names the data kind and when it goes.
	items, err := ts.privacyItems(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(items, func(it web.PrivacyItem) bool {
		return strings.Contains(it.Data, "affiliations in rooms") && it.Job != ""
	}) {
		t.Errorf("the privacy report does not list room affiliations: %v", items)
	}

	if err := ts.deleteAccount(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	notice := b.Next(t, mucPresence("alices@conference.localhost/Bob", "unavailable"))
	if raw, _ := notice.bytes(); !bytes.Contains(raw, []byte("<destroy")) {
		t.Errorf("occupant of the deleted owner's room: %s", raw)
	}
	stored, _ := ts.store.rooms()
	if _, ok := stored["alices"]; ok {
		t.Error("the deleted owner's room is stored")
	}
	if got := stored["bobs"].Affiliations; got["alice@localhost"] != "" || got["carol@localhost"] != affiliationMember {
		t.Errorf("bobs's affiliations after alice's deletion: %v", got)
	}
	for _, u := range []string{"alice@localhost", "bob@localhost"} {
		if got, _ := ts.store.affiliationsOf(u); len(got) != 0 {
			t.Errorf("%s's index after the deletion: %v", u, got)
		}
	}
	if r := adminIQ(t, b, "get", "bobs@conference.localhost", `<item affiliation="admin"/>`); bytes.Contains(mustBytes(r.bytes()), []byte("alice@")) {
		t.Error("alice is still listed as admin")
	}
	ts.muc.mu.Lock()
	_, live := ts.muc.rooms["alices"]
	ts.muc.mu.Unlock()
	if live {
		t.Error("the deleted owner's room lives on")
	}
}

func mustBytes(b []byte, _ error) []byte { return b }

// FuzzRoomStanza: whatever the owner or a participant of a live room sends
// to it (admin sets, configuration forms, invitations, presence), the
// service answers or drops it without panicking, the room keeps its one
// owner and its affiliations stay within bounds.
func FuzzRoomStanza(f *testing.F) {
	for _, seed := range []string{
		`<iq xmlns="jabber:client" type="set" id="1" to="room@conference.localhost"><query xmlns="http://jabber.org/protocol/muc#admin"><item affiliation="outcast" jid="bob@localhost"><reason>r</reason></item><item nick="Bob" role="none"/></query></iq>`,
		`<iq xmlns="jabber:client" type="get" id="2" to="room@conference.localhost"><query xmlns="http://jabber.org/protocol/muc#admin"><item role="moderator"/></query></iq>`,
		`<iq xmlns="jabber:client" type="set" id="3" to="room@conference.localhost"><query xmlns="http://jabber.org/protocol/muc#owner"><x xmlns="jabber:x:data" type="submit"><field var="muc#roomconfig_membersonly"><value>1</value></field><field var="muc#roomconfig_persistentroom"><value>0</value></field><field var="muc#roomconfig_whois"><value>anyone</value></field></x></query></iq>`,
		`<iq xmlns="jabber:client" type="set" id="4" to="room@conference.localhost"><query xmlns="http://jabber.org/protocol/muc#owner"><destroy jid="x@conference.localhost"><reason>bye</reason></destroy></query></iq>`,
		`<message xmlns="jabber:client" to="room@conference.localhost"><x xmlns="http://jabber.org/protocol/muc#user"><invite to="carol@localhost"><reason>hi</reason></invite><decline to="bob@localhost"/></x></message>`,
		`<message xmlns="jabber:client" to="room@conference.localhost" type="groupchat"><subject>s</subject></message>`,
		`<presence xmlns="jabber:client" to="room@conference.localhost/Al" type="unavailable"><status>bye</status></presence>`,
		`<presence xmlns="jabber:client" to="room@conference.localhost/Other"><show>away</show><x xmlns="http://jabber.org/protocol/muc#user"/></presence>`,
	} {
		f.Add(false, []byte(seed))
		f.Add(true, []byte(seed))
	}
	srv := newOfflineServer(f)
	owner, member := jid.MustParse("alice@localhost/fuzz"), jid.MustParse("bob@localhost/fuzz")
	f.Fuzz(func(t *testing.T, asMember bool, b []byte) {
		e, err := parseElement(b)
		if err != nil {
			return
		}
		var sessions []*session
		for _, j := range []jid.JID{owner, member} {
			conn, peer := net.Pipe()
			defer peer.Close()
			defer conn.Close()
			s := newSession(srv, conn, netip.MustParseAddr("192.0.2.7"))
			s.jid = j
			sessions = append(sessions, s)
		}
		rj := jid.MustParse("room@conference.localhost")
		r := &room{jid: rj, owner: owner.Bare(), occupants: map[string]*session{"Al": sessions[0], "Bob": sessions[1]},
			affiliations: map[string]string{"bob@localhost": affiliationMember}}
		srv.muc.mu.Lock()
		srv.muc.rooms["room"] = r
		srv.muc.mu.Unlock()
		if err := srv.store.saveRoom("room", r.config()); err != nil {
			t.Fatal(err)
		}
		s := sessions[0]
		if asMember {
			s = sessions[1]
		}
		rw := discardRW{TokenReader: e.innerReader(), Encoder: xml.NewEncoder(io.Discard)}
		_ = s.handle(rw, e)
		srv.muc.mu.Lock()
		if got := r.affiliation(owner); got != affiliationOwn {
			t.Errorf("the owner's affiliation became %q", got)
		}
		if len(r.affiliations) > maxRoomAffiliations {
			t.Errorf("%d affiliations", len(r.affiliations))
		}
		srv.muc.mu.Unlock()
		srv.muc.leaveAll(sessions[0])
		srv.muc.leaveAll(sessions[1])
		for _, s := range sessions {
			for s.out.len() > 0 {
				s.out.pop()
			}
		}
	})
}

// TestRoomRestart: a restart keeps a room's configuration and
// affiliations (a locked room its owner left is gone), a members-only room
// keeps refusing non-members and admitting members, a ban holds.
func TestRoomRestart(t *testing.T) {
	ts := startTestServer(t)
	cl := mucUsers(t, ts, "alice", "bob", "carol", "dave")
	a := cl[0]
	joinLocked(t, a, "shut@conference.localhost/Al")
	joinRoom(t, a, "club@conference.localhost/Al")
	configureRoom(t, a, "club@conference.localhost", "muc#roomconfig_membersonly", "1", "muc#roomconfig_roomname", "The club")
	adminIQ(t, a, "set", "club@conference.localhost", `<item affiliation="member" jid="bob@localhost"/><item affiliation="outcast" jid="dave@localhost"/>`)
	if err := ts.Stop(); err != nil {
		t.Fatal(err)
	}
	cfg := ts.cfg
	cfg.C2S, cfg.C2STLS, cfg.HTTP = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	ts2 := startWithConfig(t, cfg)
	login := func(u string) *testClient { return ts2.Login(t, u, u+" password") }
	b, c, d := login("bob"), login("carol"), login("dave")
	for _, tc := range []struct {
		who      *testClient
		occupant string
		want     string
	}{
		{b, "shut@conference.localhost/B", ""}, // left locked: gone, so bob creates it
		{c, "club@conference.localhost/C", "registration-required"},
		{d, "club@conference.localhost/D", "forbidden"},
		{b, "club@conference.localhost/B", ""},
	} {
		if e := tryJoinRoom(t, tc.who, tc.occupant); stanzaErrorCondition(e) != tc.want {
			t.Errorf("%s joins %s: %q, want %q", tc.who.JID.Localpart(), tc.occupant, stanzaErrorCondition(e), tc.want)
		}
	}
	info := b.IQ(t, `<iq type="get" id="d" to="club@conference.localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	if raw, _ := info.bytes(); !bytes.Contains(raw, []byte(`name="The club"`)) || !bytes.Contains(raw, []byte("muc_membersonly")) {
		t.Errorf("configuration after the restart: %s", raw)
	}
}
