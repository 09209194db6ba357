package main

import (
	"bytes"
	"encoding/xml"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"chatbx.eu/privacy/mam"
	"mellium.im/xmpp/muc"
)

// roleIn is the muc#user role of an occupant presence.
func roleIn(e element) string {
	x, _ := e.child(xml.Name{Space: muc.NSUser, Local: "x"})
	it, _ := x.child(xml.Name{Space: muc.NSUser, Local: "item"})
	return it.attr("role")
}

// roomFeatures are the disco#info features of room as c sees them.
func roomFeatures(t *testing.T, c *testClient, room string) []string {
	t.Helper()
	r := c.IQ(t, `<iq type="get" id="di" to="`+room+`"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	q, _ := r.child(xml.Name{Space: "http://jabber.org/protocol/disco#info", Local: "query"})
	var out []string
	for _, f := range q.children() {
		if f.start.Name.Local == "feature" {
			out = append(out, f.attr("var"))
		}
	}
	return out
}

// TestRoomVoice: in a moderated room an occupant without affiliation
// enters as a visitor, whose groupchat message is refused (forbidden) and
// reaches nobody; a moderator grants voice by nick (everyone sees the
// role change), and revokes it; members enter as participants; only
// moderators change roles, and not to moderator.
func TestRoomVoice(t *testing.T) {
	ts := startTestServer(t)
	cl := mucUsers(t, ts, "alice", "bob", "carol")
	a, b, c := cl[0], cl[1], cl[2]
	const room = "stage@conference.localhost"
	joinLocked(t, a, room+"/Al")
	if r := configureRoom(t, a, room, fieldModerated, "1"); r.attr("type") != "result" {
		t.Fatalf("moderated: %s", stanzaErrorCondition(r))
	}
	if f := roomFeatures(t, a, room); !slices.Contains(f, "muc_moderated") {
		t.Errorf("features %v lack muc_moderated", f)
	}
	if self := tryJoinRoom(t, b, room+"/Bob"); roleIn(self) != roleVisitor {
		t.Fatalf("bob's role %q, want visitor", roleIn(self))
	}
	if p := a.Next(t, mucPresence(room+"/Bob", "")); roleIn(p) != roleVisitor {
		t.Errorf("the owner sees bob as %q", roleIn(p))
	}
	silenced := func(when string) {
		t.Helper()
		b.Send(t, `<message to="`+room+`" type="groupchat" id="v1"><body>hear me (`+when+`)</body></message>`)
		e := b.Next(t, func(e element) bool { return e.attr("id") == "v1" })
		if e.attr("type") != "error" || stanzaErrorCondition(e) != "forbidden" {
			t.Errorf("%s: visitor's message: type %q %q, want forbidden", when, e.attr("type"), stanzaErrorCondition(e))
		}
		// The room handles a session's stanzas in order: the owner's next
		// message arrives after the visitor's would have.
		say(t, a, room, "after "+when)
		if e, err := a.next(isGroupchat("hear me ("+when+")"), 0); err == nil {
			t.Errorf("%s: visitor's message reached the owner: %v", when, e)
		}
	}
	silenced("join")
	if r := adminIQ(t, a, "get", room, `<item role="visitor"/>`); !bytes.Contains(mustBytes(r.bytes()), []byte(`nick="Bob"`)) {
		t.Errorf("visitor list: %s", mustBytes(r.bytes()))
	}

	if r := adminIQ(t, a, "set", room, `<item nick="Bob" role="participant"><reason>go ahead</reason></item>`); r.attr("type") != "result" {
		t.Fatalf("granting voice: %s", stanzaErrorCondition(r))
	}
	if p := b.Next(t, mucPresence(room+"/Bob", "")); roleIn(p) != roleParticipant {
		t.Errorf("bob sees himself as %q after voice", roleIn(p))
	}
	if p := a.Next(t, mucPresence(room+"/Bob", "")); roleIn(p) != roleParticipant {
		t.Errorf("the owner sees bob as %q after voice", roleIn(p))
	}
	say(t, b, room, "thanks")
	a.Next(t, isGroupchat("thanks"))

	if r := adminIQ(t, a, "set", room, `<item nick="Bob" role="visitor"/>`); r.attr("type") != "result" {
		t.Fatalf("revoking voice: %s", stanzaErrorCondition(r))
	}
	if p := b.Next(t, mucPresence(room+"/Bob", "")); roleIn(p) != roleVisitor {
		t.Errorf("bob's role after revocation: %q", roleIn(p))
	}
	silenced("revoked")

	// A member enters with voice; a participant may not change roles;
	// nobody is made moderator by nick.
	adminIQ(t, a, "set", room, `<item affiliation="member" jid="carol@localhost"/>`)
	if self := tryJoinRoom(t, c, room+"/Cat"); roleIn(self) != roleParticipant {
		t.Errorf("member's role %q, want participant", roleIn(self))
	}
	for _, tc := range []struct {
		who   *testClient
		items string
		want  string
	}{
		{c, `<item nick="Bob" role="participant"/>`, "forbidden"},
		{a, `<item nick="Cat" role="moderator"/>`, "not-allowed"},
		{a, `<item nick="Al" role="visitor"/>`, "not-allowed"},
	} {
		if r := adminIQ(t, tc.who, "set", room, tc.items); stanzaErrorCondition(r) != tc.want {
			t.Errorf("%s: %q, want %q", tc.items, stanzaErrorCondition(r), tc.want)
		}
	}
	// A rejoining visitor is a visitor again: the grant was for the stay.
	b.Send(t, `<presence to="`+room+`/Bob" type="unavailable"/>`)
	b.Next(t, mucPresence(room+"/Bob", "unavailable"))
	adminIQ(t, a, "set", room, `<item nick="Bob" role="participant"/>`) // not there: item-not-found
	if self := tryJoinRoom(t, b, room+"/Bob"); roleIn(self) != roleVisitor {
		t.Errorf("rejoin: role %q", roleIn(self))
	}
}

// TestRoomPassword: a password-protected room admits only occupants with
// the password (not-authorized otherwise, § 7.2.6), the owner without; the
// password is kept only as a salted hash (not in the data directory, not
// in the form), kept when the form is resubmitted without one; its
// archive is read by members and occupants only.
func TestRoomPassword(t *testing.T) {
	ts := startTestServer(t)
	cl := mucUsers(t, ts, "alice", "bob", "carol")
	a, b, c := cl[0], cl[1], cl[2]
	const room = "vault@conference.localhost"
	const secret = "correct horse battery"
	joinLocked(t, a, room+"/Al")
	if r := configureRoom(t, a, room, fieldPasswordProtected, "1"); stanzaErrorCondition(r) != "bad-request" {
		t.Errorf("protection without a secret: %q, want bad-request", stanzaErrorCondition(r))
	}
	if r := configureRoom(t, a, room, fieldPasswordProtected, "1", fieldRoomSecret, secret, mam.FieldEnableArchiving, "1"); r.attr("type") != "result" {
		t.Fatalf("password: %s", stanzaErrorCondition(r))
	}
	say(t, a, room, "for the vault")
	if f := roomFeatures(t, b, room); !slices.Contains(f, "muc_passwordprotected") || slices.Contains(f, "muc_unsecured") {
		t.Errorf("features %v", f)
	}

	join := func(who *testClient, nick, password string) element {
		t.Helper()
		x := `<x xmlns="http://jabber.org/protocol/muc"/>`
		if password != "-" {
			x = `<x xmlns="http://jabber.org/protocol/muc"><password>` + xmlEscape(password) + `</password></x>`
		}
		who.Send(t, `<presence to="`+room+`/`+nick+`">`+x+`</presence>`)
		return who.Next(t, func(e element) bool {
			return e.attr("from") == room+"/"+nick && (e.attr("type") == "error" || slices.Contains(statusCodes(e), statusSelf))
		})
	}
	for _, pw := range []string{"-", "", "wrong", secret + " "} {
		if e := join(b, "Bob", pw); stanzaErrorCondition(e) != "not-authorized" {
			t.Errorf("password %q: %q, want not-authorized", pw, stanzaErrorCondition(e))
		}
	}
	// Without the password, the archive is closed to a stranger too.
	if _, e := mamQuery(t, c, room, ""); stanzaErrorCondition(e) == "" {
		t.Error("a stranger read the archive of a password-protected room")
	}
	if e := join(b, "Bob", secret); e.attr("type") == "error" {
		t.Fatalf("right password: %s", stanzaErrorCondition(e))
	}
	if got, e := mamQuery(t, b, room, ""); !slices.Contains(got, "for the vault") {
		t.Errorf("an occupant's archive query: %v %s", got, stanzaErrorCondition(e))
	}
	a2 := ts.Login(t, "alice", "alice password")
	if e := join(a2, "Al2", "-"); e.attr("type") == "error" {
		t.Errorf("owner without password: %s", stanzaErrorCondition(e))
	}

	// Never in clear: not in the form, not on disk.
	form := a.IQ(t, `<iq type="get" id="f" to="`+room+`"><query xmlns="http://jabber.org/protocol/muc#owner"/></iq>`)
	if raw := mustBytes(form.bytes()); bytes.Contains(raw, []byte(secret)) || !bytes.Contains(raw, []byte(fieldRoomSecret)) {
		t.Errorf("form: %s", raw)
	}
	if err := filepath.WalkDir(ts.DataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(p)
		if err == nil && bytes.Contains(raw, []byte(secret)) {
			t.Errorf("%s holds the room password in clear", p)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// A resubmitted form without a secret keeps it; protection off drops it.
	configureRoom(t, a, room, fieldRoomName, "Vault", fieldPasswordProtected, "1", fieldRoomSecret, "")
	if e := join(c, "Cat", "wrong"); stanzaErrorCondition(e) != "not-authorized" {
		t.Errorf("after resubmission: %q", stanzaErrorCondition(e))
	}
	configureRoom(t, a, room, fieldPasswordProtected, "0")
	if e := join(c, "Cat", "-"); e.attr("type") == "error" {
		t.Errorf("protection off: %s", stanzaErrorCondition(e))
	}
	if cfg, _ := ts.store.rooms(); len(cfg["vault"].SecretHash) != 0 || len(cfg["vault"].SecretSalt) != 0 {
		t.Error("protection off: the hash is kept")
	}
}
