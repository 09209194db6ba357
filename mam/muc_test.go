package mam_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"chatbx.eu/privacy/mam"
	"mellium.im/xmpp/form"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/muc"
	"mellium.im/xmpp/stanza"
)

var (
	mucRoom     = jid.MustParse("coven@muc.example.org")
	mucOccupant = jid.MustParse("coven@muc.example.org/firstwitch")
	mucWitch    = jid.MustParse("witch1@example.org/cauldron")
)

const roomMsg = `<message xmlns='jabber:client' type='groupchat' id='g1' to='coven@muc.example.org' from='witch1@example.org/cauldron'>` +
	`<body>Thrice the brinded cat hath mew'd.</body>` +
	`<x xmlns='http://jabber.org/protocol/muc#user'><item jid='mallory@example.net' affiliation='owner'/></x>` +
	`<stanza-id xmlns='urn:xmpp:sid:0' by='coven@muc.example.org' id='FORGED'/>` +
	`<origin-id xmlns='urn:xmpp:sid:0' id='o1'/></message>`

func TestArchiveGroupchat(t *testing.T) { forEachStore(t, testArchiveGroupchat) }

func testArchiveGroupchat(t *testing.T, newStore func() mam.Store) {
	for _, anonymous := range []bool{false, true} {
		s := newStore()
		a := mam.NewArchiver(s, mam.Config{Now: clock()})
		res, err := a.ArchiveRoom(ctx, mam.RoomMessage{Room: mucRoom, Occupant: mucOccupant, RealJID: mucWitch, Anonymous: anonymous, Stanza: mam.Stanza{Bytes: []byte(roomMsg)}})
		if err != nil {
			t.Fatal(err)
		}
		got := archived(t, s, mucRoom)
		if len(got) != 1 || got[0].ID != res.RecipientID || res.RecipientID == "" {
			t.Fatalf("anonymous=%v: room archive %+v, result %+v", anonymous, got, res)
		}
		m := got[0]
		if !m.Archive.Equal(mucRoom) || !m.With.Equal(mucOccupant) || !m.Groupchat {
			t.Errorf("stored %+v", m)
		}
		if anonymous && !m.RealJID.Equal(jid.JID{}) {
			t.Errorf("anonymous room stored real JID %v", m.RealJID)
		}
		if !anonymous && !m.RealJID.Equal(mucWitch.Bare()) {
			t.Errorf("non-anonymous room stored real JID %v, want %v", m.RealJID, mucWitch.Bare())
		}
		stored := parseOne(t, m.Stanza)
		if stored.Attr["from"] != mucOccupant.String() {
			t.Errorf("stored from %q, want the occupant JID", stored.Attr["from"])
		}
		if _, ok := stored.Attr["to"]; ok {
			t.Errorf("stored copy has a to: %s", m.Stanza)
		}
		if stored.child(muc.NSUser, "x") != nil || strings.Contains(string(m.Stanza), "mallory") {
			t.Errorf("muc#user <x/> not stripped: %s", m.Stanza)
		}
		if strings.Contains(string(m.Stanza), "witch1") {
			t.Errorf("real JID inside the stored stanza: %s", m.Stanza)
		}
		deliver := parseOne(t, res.Deliver.Bytes)
		ids := deliver.all(stanza.NSSid, "stanza-id")
		if len(ids) != 1 || ids[0].Attr["by"] != mucRoom.String() || ids[0].Attr["id"] != res.RecipientID {
			t.Errorf("broadcast stamp wrong: %s", res.Deliver.Bytes)
		}
		if deliver.child(stanza.NSSid, "origin-id") == nil {
			t.Errorf("origin-id lost: %s", res.Deliver.Bytes)
		}
		if strings.Contains(string(res.Deliver.Bytes), "FORGED") {
			t.Errorf("forged stanza-id broadcast: %s", res.Deliver.Bytes)
		}
	}
}

func TestArchiveGroupchatWhatIsStored(t *testing.T) {
	tests := []struct {
		name, in string
		want     bool
	}{
		{"body", `<message xmlns='jabber:client' type='groupchat'><body>x</body></message>`, true},
		{"subject change", `<message xmlns='jabber:client' type='groupchat'><subject>Cauldron</subject></message>`, true},
		{"OMEMO", `<message xmlns='jabber:client' type='groupchat'><encrypted xmlns='urn:xmpp:omemo:2'/></message>`, true},
		{"chat state", `<message xmlns='jabber:client' type='groupchat'><active xmlns='http://jabber.org/protocol/chatstates'/></message>`, false},
		{"private message (type chat)", `<message xmlns='jabber:client' type='chat'><body>x</body></message>`, false},
		{"error", `<message xmlns='jabber:client' type='error'><body>x</body></message>`, false},
		{"no-store hint", `<message xmlns='jabber:client' type='groupchat'><body>x</body><no-store xmlns='urn:xmpp:hints'/></message>`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore()
			res, err := mam.NewArchiver(s, mam.Config{}).ArchiveRoom(ctx, mam.RoomMessage{Room: mucRoom, Occupant: mucOccupant, RealJID: mucWitch, Stanza: mam.Stanza{Bytes: []byte(tc.in)}})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(archived(t, s, mucRoom)) == 1; got != tc.want || (res.RecipientID != "") != tc.want {
				t.Errorf("stored=%v, want %v", got, tc.want)
			}
		})
	}
}

func TestArchiveGroupchatErrors(t *testing.T) {
	a := mam.NewArchiver(newStore(), mam.Config{MaxStanzaSize: 100})
	if _, err := a.ArchiveRoom(ctx, mam.RoomMessage{Room: mucRoom, Occupant: jid.MustParse("other@muc.example.org/nick"), RealJID: mucWitch, Stanza: mam.Stanza{Bytes: []byte(roomMsg)}}); !errors.Is(err, mam.ErrBadRequest) {
		t.Errorf("occupant of another room: %v", err)
	}
	if _, err := a.ArchiveRoom(ctx, mam.RoomMessage{Room: mucRoom, Occupant: mucRoom, RealJID: mucWitch, Stanza: mam.Stanza{Bytes: []byte(roomMsg)}}); !errors.Is(err, mam.ErrBadRequest) {
		t.Errorf("occupant without nick: %v", err)
	}
	res, err := a.ArchiveRoom(ctx, mam.RoomMessage{Room: mucRoom, Occupant: mucOccupant, RealJID: mucWitch, Stanza: mam.Stanza{Bytes: []byte(roomMsg)}})
	if !errors.Is(err, mam.ErrTooLarge) || len(res.Deliver.Bytes) == 0 {
		t.Errorf("oversize: %v", err)
	}
}

// roomPolicy lets members in and shows real JIDs to moderators.
type roomPolicy struct{ members, moderators map[string]bool }

func (p roomPolicy) Access(_ context.Context, r, requester jid.JID) (bool, bool, error) {
	if !r.Equal(mucRoom) {
		return false, false, nil
	}
	b := requester.Bare().String()
	return p.members[b], p.moderators[b], nil
}

func TestRoomArchiveQuery(t *testing.T) { forEachStore(t, testRoomArchiveQuery) }

func testRoomArchiveQuery(t *testing.T, newStore func() mam.Store) {
	s := newStore()
	a := mam.NewArchiver(s, mam.Config{Now: clock()})
	res, err := a.ArchiveRoom(ctx, mam.RoomMessage{Room: mucRoom, Occupant: mucOccupant, RealJID: mucWitch, Stanza: mam.Stanza{Bytes: []byte(roomMsg)}})
	if err != nil {
		t.Fatal(err)
	}
	policy := roomPolicy{
		members:    map[string]bool{"juliet@example.org": true},
		moderators: map[string]bool{},
	}
	query := iq("set", mucRoom.String(), `<query xmlns='urn:xmpp:mam:2' queryid='g27'/>`)

	roomResults := func(cfg mam.Config) (results, *elem) {
		out := newSession(t, s, cfg).send(query)
		if len(out) != 2 {
			t.Fatalf("want one result and the fin, got %d elements", len(out))
		}
		if out[0].Attr["from"] != mucRoom.String() {
			t.Errorf("result from %q, want the room", out[0].Attr["from"])
		}
		// queryResults checks from=juliet's archive; rewrite for the room.
		out[0].Attr["from"] = "juliet@example.org"
		return queryResults(t, out, "g27"), out[1]
	}

	// A member who may not see real JIDs.
	r, _ := roomResults(mam.Config{Rooms: policy})
	if len(r.ids) != 1 || r.ids[0] != res.RecipientID {
		t.Fatalf("ids %v", r.ids)
	}
	m := r.msgs[0]
	if m.Attr["from"] != mucOccupant.String() || m.Attr["type"] != "groupchat" {
		t.Errorf("forwarded %v", m.Attr)
	}
	if _, ok := m.Attr["to"]; ok {
		t.Error("forwarded room message has a to")
	}
	if m.child(muc.NSUser, "x") != nil {
		t.Error("real JID shown to a member not allowed to see it")
	}

	// A moderator sees the real JID, as XEP-0045 item jid.
	policy.moderators["juliet@example.org"] = true
	r, _ = roomResults(mam.Config{Rooms: policy})
	x := r.msgs[0].child(muc.NSUser, "x")
	if x == nil || x.child(muc.NSUser, "item") == nil || x.child(muc.NSUser, "item").Attr["jid"] != mucWitch.Bare().String() {
		t.Errorf("real JID not shown to a moderator: %+v", x)
	}
	if len(r.msgs[0].all(muc.NSUser, "x")) != 1 {
		t.Error("more than one muc#user element")
	}

	// Metadata of the room.
	out := newSession(t, s, mam.Config{Rooms: policy}).send(iq("get", mucRoom.String(), `<metadata xmlns='urn:xmpp:mam:2'/>`))
	if md := out[0].child(mam.NS, "metadata"); md == nil || md.child(mam.NS, "start") == nil || md.child(mam.NS, "start").Attr["id"] != res.RecipientID {
		t.Errorf("room metadata %+v", out[0])
	}

	// Outsiders, and everyone when no room policy is configured.
	delete(policy.members, "juliet@example.org")
	wantError(t, newSession(t, s, mam.Config{Rooms: policy}).send(query), stanza.Forbidden)
	wantError(t, newSession(t, s, mam.Config{}).send(query), stanza.Forbidden)
	// Room preferences are not user preferences.
	policy.members["juliet@example.org"] = true
	wantError(t, newSession(t, s, mam.Config{Rooms: policy}).send(iq("get", mucRoom.String(), `<prefs xmlns='urn:xmpp:mam:2'/>`)), stanza.Forbidden)
}

type failingRooms struct{}

func (failingRooms) Access(context.Context, jid.JID, jid.JID) (bool, bool, error) {
	return false, false, errors.New("muc down")
}

func TestRoomAccessFailure(t *testing.T) {
	out := newSession(t, newStore(), mam.Config{Rooms: failingRooms{}}).send(iq("set", mucRoom.String(), `<query xmlns='urn:xmpp:mam:2'/>`))
	wantError(t, out, stanza.InternalServerError)
}

func TestRoomConfigField(t *testing.T) {
	if mam.FieldEnableArchiving != "muc#roomconfig_enablearchiving" {
		t.Errorf("field name %q", mam.FieldEnableArchiving)
	}
}

func TestRoomConfigFieldAndParseBool(t *testing.T) {
	for _, on := range []bool{false, true} {
		f := parseOne(t, []byte(encode(t, mam.RoomConfigField(on))))
		if f.Attr["var"] != "muc#roomconfig_enablearchiving" || f.Attr["type"] != "boolean" {
			t.Errorf("field %v", f.Attr)
		}
		v := f.child(form.NS, "value")
		if v == nil {
			t.Fatal("no value")
		}
		got, err := mam.ParseBool(v.Text)
		if err != nil || got != on {
			t.Errorf("round trip of %v: %v %v", on, got, err)
		}
	}
	for in, want := range map[string]bool{"1": true, " true ": true, "0": false, "false": false} {
		if got, err := mam.ParseBool(in); err != nil || got != want {
			t.Errorf("ParseBool(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "yes", "TRUE", "2"} {
		if _, err := mam.ParseBool(in); !errors.Is(err, mam.ErrBadRequest) {
			t.Errorf("ParseBool(%q) err = %v", in, err)
		}
	}
}
