package mam_test

import (
	"bytes"
	"encoding/xml"
	"io"
	"reflect"
	"strings"
	"testing"

	"chatbx.eu/privacy/mam"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

func FuzzQuery(f *testing.F) {
	f.Add(q(field("with", "juliet@capulet.example")+field("start", "2010-06-07T00:00:00Z"), "<max>10</max><after>x</after>"))
	f.Add(q(field("ids", "a", "b")+field("include-groupchat", "true"), "<before/>"))
	f.Add(q(field("unknown", "x"), "<max>-1</max>"))
	f.Add(`<query xmlns='urn:xmpp:mam:2' queryid='f27'><flip-page/></query>`)
	f.Add(`<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data'><field var='end'><value>2010-07-07T13:23:54Z</value></field></x></query>`)
	f.Fuzz(func(t *testing.T, in string) {
		cfg := mam.Config{MaxPageSize: 100}
		req, err := mam.ParseQueryBytes([]byte(in), cfg)
		if err != nil {
			return
		}
		qq := req.Query
		if qq.Max < 1 || qq.Max > 100 {
			t.Errorf("Max = %d outside [1, 100]", qq.Max)
		}
		if len(qq.IDs) > 100 {
			t.Errorf("%d ids accepted", len(qq.IDs))
		}
		if !qq.Start.IsZero() && !qq.End.IsZero() && qq.Start.After(qq.End) {
			t.Error("start after end accepted")
		}
		if qq.After != "" && (qq.Before != "" || qq.Last) {
			t.Error("after and before both accepted")
		}
		if len(req.QueryID) > 256 {
			t.Error("overlong queryid accepted")
		}
	})
}

func FuzzPrefs(f *testing.F) {
	f.Add(`<prefs xmlns='urn:xmpp:mam:2' default='roster'><always><jid>romeo@montague.example</jid></always><never><jid>montague@montague.example</jid></never></prefs>`)
	f.Add(`<prefs xmlns='urn:xmpp:mam:2' default='never'/>`)
	f.Add(`<prefs xmlns='urn:xmpp:mam:2' default='bogus'><never><jid>a@b/c</jid></never></prefs>`)
	f.Fuzz(func(t *testing.T, in string) {
		p, err := mam.ParsePrefsBytes([]byte(in))
		if err != nil {
			return
		}
		switch p.Default {
		case mam.DefaultAlways, mam.DefaultNever, mam.DefaultRoster:
		default:
			t.Fatalf("accepted default %q", p.Default)
		}
		// Round trip: what we encode we parse back to the same prefs.
		back, err := mam.ParsePrefsBytes([]byte(encode(t, p.TokenReader())))
		if err != nil {
			t.Fatalf("re-parse of encoded prefs: %v", err)
		}
		if !equalPrefs(back, p) {
			t.Fatalf("round trip: got %+v, want %+v", back, p)
		}
	})
}

func FuzzArchive(f *testing.F) {
	f.Add(chat)
	f.Add(roomMsg)
	f.Add(`<message xmlns='jabber:client' type='chat'><body>x</body><stanza-id xmlns='urn:xmpp:sid:0' by='juliet@example.org' id='F'/></message>`)
	f.Add(`<message xmlns='jabber:client'><encrypted xmlns='urn:xmpp:omemo:2'/><store xmlns='urn:xmpp:hints'/><x xmlns:p='urn:p' p:a='&lt;'/></message>`)
	f.Add(`<message type='chat'><body>a]]&gt;b</body></message>`)
	f.Fuzz(func(t *testing.T, in string) {
		s := newStore()
		setPrefs(t, s, romeo, always)
		setPrefs(t, s, juliet, always)
		a := mam.NewArchiver(s, mam.Config{MaxStanzaSize: 4096})
		for _, group := range []bool{false, true} {
			var res mam.Result
			var err error
			by := "juliet@example.org"
			if group {
				by = "coven@muc.example.org"
				res, err = a.ArchiveRoom(ctx, mam.RoomMessage{Room: mucRoom, Occupant: mucOccupant, RealJID: mucWitch, Stanza: mam.Stanza{Bytes: []byte(in)}})
			} else {
				res, err = a.Archive(ctx, mam.Chat{From: romeo, To: juliet.Bare(), Stanza: mam.Stanza{Bytes: []byte(in)}})
			}
			if err != nil && res.Deliver.IsZero() {
				continue // unparsable: nothing to deliver
			}
			// The same message as tokens delivers the same message, as
			// tokens.
			if toks, ok := tokensOf(t, []byte(in)); ok {
				var rt mam.Result
				if group {
					rt, _ = a.ArchiveRoom(ctx, mam.RoomMessage{Room: mucRoom, Occupant: mucOccupant, RealJID: mucWitch, Stanza: toks})
				} else {
					rt, _ = a.Archive(ctx, mam.Chat{From: romeo, To: juliet.Bare(), Stanza: toks})
				}
				if rt.Deliver.Bytes != nil || rt.Deliver.IsZero() || (rt.RecipientID == "") != (res.RecipientID == "") {
					t.Fatalf("tokens path: %+v, bytes path: %+v", rt, res)
				}
				norm := func(b []byte, id string) *elem {
					if id != "" {
						b = bytes.ReplaceAll(b, []byte(id), []byte("ID"))
					}
					return parseOne(t, b)
				}
				if x, y := norm(res.Deliver.Bytes, res.RecipientID), norm(encodeStanza(t, rt.Deliver), rt.RecipientID); !reflect.DeepEqual(x, y) {
					t.Fatalf("forms deliver different messages:\n%s\n%s", res.Deliver.Bytes, encodeStanza(t, rt.Deliver))
				}
			}
			// Whatever is delivered is well-formed and holds exactly our
			// stanza-id, if any.
			msg := parseOne(t, res.Deliver.Bytes)
			n := 0
			for _, e := range msg.all(stanza.NSSid, "stanza-id") {
				if e.Attr["by"] == by || (!group && e.Attr["by"] == "romeo@example.org") {
					if e.Attr["id"] != res.RecipientID {
						t.Fatalf("forged stanza-id survived: %s", res.Deliver.Bytes)
					}
					n++
				}
			}
			if n > 1 || (n == 1) != (res.RecipientID != "") {
				t.Fatalf("%d stanza-ids of ours, RecipientID %q: %s", n, res.RecipientID, res.Deliver.Bytes)
			}
		}
		for _, owner := range []jid.JID{romeo, juliet, mucRoom} {
			for _, m := range archived(t, s, owner) {
				parseOne(t, m.Stanza)
				if len(m.Stanza) > 4096 {
					t.Fatalf("stored %d bytes over the cap", len(m.Stanza))
				}
			}
		}
	})
}

// FuzzHandlerQuery sends arbitrary query content through the mux: the
// handler never fails the session, always answers with exactly one IQ (a
// result or an error) after any result messages, and writes well-formed XML.
func FuzzHandlerQuery(f *testing.F) {
	f.Add(`<set xmlns='http://jabber.org/protocol/rsm'><max>2</max><before/></set>`)
	f.Add(`<x xmlns='jabber:x:data' type='submit'><field var='with'><value>romeo@example.org</value></field></x><flip-page/>`)
	f.Add(`<x xmlns='jabber:x:data'><field var='start'><value>2026-01-02T03:04:06Z</value></field><field var='ids'><value>nope</value></field></x>`)
	f.Add(`<set xmlns='http://jabber.org/protocol/rsm'><max>-3</max></set>`)
	f.Fuzz(func(t *testing.T, inner string) {
		in := iq("set", "", `<query xmlns='urn:xmpp:mam:2' queryid='f'>`+inner+`</query>`)
		d := xml.NewDecoder(strings.NewReader(in))
		for {
			_, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				return // not well-formed: the stream parser would have refused it
			}
		}
		s := newStore()
		fill(t, s, 3)
		out := newSession(t, s, mam.Config{MaxPageSize: 2}).send(in)
		iqs := 0
		for i, e := range out {
			switch e.Name.Local {
			case "iq":
				iqs++
				if i != len(out)-1 || e.Attr["id"] != "iq1" || (e.Attr["type"] != "result" && e.Attr["type"] != "error") {
					t.Fatalf("bad IQ answer at %d: %v", i, e.Attr)
				}
			case "message":
				if i >= 2 {
					t.Fatalf("more than MaxPageSize results")
				}
			default:
				t.Fatalf("unexpected %s", e.Name.Local)
			}
		}
		if iqs != 1 {
			t.Fatalf("%d IQ answers", iqs)
		}
	})
}
