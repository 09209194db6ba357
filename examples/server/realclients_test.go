package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"
)

// TestDiscoMAMServerAndAccount: the archive's features are on the server's
// disco#info (where profanity looks) and on the account's bare JID.
func TestDiscoMAMServerAndAccount(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	a := ts.Login(t, "alice", "alice password")
	for _, to := range []string{"localhost", "alice@localhost"} {
		info := a.IQ(t, `<iq type="get" id="d" to="`+to+`"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
		raw, _ := info.bytes()
		for _, f := range []string{"urn:xmpp:mam:2", "urn:xmpp:mam:2#extended"} {
			if !bytes.Contains(raw, []byte(`var="`+f+`"`)) {
				t.Errorf("disco#info of %s lacks %s: %s", to, f, raw)
			}
		}
	}
}

// TestRoomArchiveBeforeJoin: an archiving room's archive is readable by
// anyone who may join the room (all rooms are open), also before joining,
// as clients fetch the history first; only the owner sees real JIDs.
func TestRoomArchiveBeforeJoin(t *testing.T) {
	ts := startTestServer(t)
	for _, u := range []string{"alice", "bob", "carol"} {
		ts.Register(t, u, u+" password")
	}
	a := ts.Login(t, "alice", "alice password")
	b := ts.Login(t, "bob", "bob password")
	c := ts.Login(t, "carol", "carol password")
	const room = "lounge@conference.localhost"

	joinRoom(t, a, room+"/Al")
	resp := a.IQ(t, `<iq type="set" id="c2" to="`+room+`"><query xmlns="http://jabber.org/protocol/muc#owner"><x xmlns="jabber:x:data" type="submit"><field var="FORM_TYPE"><value>http://jabber.org/protocol/muc#roomconfig</value></field><field var="muc#roomconfig_enablearchiving"><value>1</value></field></x></query></iq>`)
	if resp.attr("type") != "result" {
		t.Fatalf("config submit: %s", stanzaErrorCondition(resp))
	}
	joinRoom(t, b, room+"/Bobby")
	b.Send(t, `<message to="`+room+`" type="groupchat"><body>archived</body></message>`)
	b.Next(t, isGroupchat("archived"))
	a.Next(t, isGroupchat("archived"))

	// carol never joined: she reads the archive, without real JIDs.
	got, resp := mamQuery(t, c, room, "")
	if strings.Join(got, "|") != "archived" {
		t.Fatalf("non-occupant reading an open room's archive: %q (%s)", got, stanzaErrorCondition(resp))
	}
	// bob left: he still reads it (he may join again).
	b.Send(t, `<presence to="`+room+`/Bobby" type="unavailable"/>`)
	a.Next(t, func(e element) bool { return e.attr("from") == room+"/Bobby" && e.attr("type") == "unavailable" })
	if got, resp := mamQuery(t, b, room, ""); strings.Join(got, "|") != "archived" {
		t.Errorf("former occupant: %q (%s)", got, stanzaErrorCondition(resp))
	}

	// Real JIDs: the raw results, for carol and bob none, for alice bob's.
	for _, tc := range []struct {
		c        *testClient
		wantReal bool
	}{{c, false}, {b, false}, {a, true}} {
		raw := rawRoomArchive(t, tc.c, room)
		if has := bytes.Contains(raw, []byte(`jid="bob@localhost`)); has != tc.wantReal {
			t.Errorf("%s sees real JID = %v, want %v: %s", tc.c.JID, has, tc.wantReal, raw)
		}
	}

	// A room without archiving has no archive to read, for anyone.
	joinRoom(t, a, "quiet@conference.localhost/Al")
	if _, resp := mamQuery(t, c, "quiet@conference.localhost", ""); stanzaErrorCondition(resp) != "service-unavailable" {
		t.Errorf("non-archiving room: %s", stanzaErrorCondition(resp))
	}
	// Nor does a room that does not exist.
	if _, resp := mamQuery(t, c, "nowhere@conference.localhost", ""); stanzaErrorCondition(resp) != "item-not-found" {
		t.Errorf("missing room: %s", stanzaErrorCondition(resp))
	}

	// Who may join is who may read: a JID of another server may neither.
	acc := roomAccess{ts.muc}
	for _, tc := range []struct {
		requester        string
		allowed, seeReal bool
	}{
		{"carol@localhost/phone", true, false},
		{"alice@localhost/x", true, true},
		{"mallory@elsewhere.example/x", false, false},
		{"localhost", false, false},
	} {
		allowed, seeReal, err := acc.Access(context.Background(), jid.MustParse(room), jid.MustParse(tc.requester))
		if err != nil || allowed != tc.allowed || seeReal != tc.seeReal {
			t.Errorf("Access(%s) = %v, %v, %v; want %v, %v", tc.requester, allowed, seeReal, err, tc.allowed, tc.seeReal)
		}
	}
}

// rawRoomArchive queries room's archive and returns the result messages'
// bytes, joined.
func rawRoomArchive(t *testing.T, c *testClient, room string) []byte {
	t.Helper()
	queryCounter++
	qid := fmt.Sprintf("raw%d", queryCounter)
	resp := c.IQ(t, `<iq type="set" id="`+qid+`" to="`+room+`"><query xmlns="urn:xmpp:mam:2" queryid="`+qid+`"/></iq>`)
	if resp.attr("type") != "result" {
		t.Fatalf("%s: query: %s", c.JID, stanzaErrorCondition(resp))
	}
	var out []byte
	for {
		m, err := c.next(func(e element) bool {
			r, ok := e.child(nameResult)
			return ok && r.attr("queryid") == qid
		}, 0)
		if err != nil {
			break
		}
		raw, _ := m.bytes()
		out = append(out, raw...)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no results", c.JID)
	}
	return out
}
