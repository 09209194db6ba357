package mam_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"reflect"
	"strings"
	"testing"

	"chatbx.eu/privacy/mam"
	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// tokensOf decodes a serialized message into the token form a mellium
// server holds: its start element and its inner tokens.
func tokensOf(t testing.TB, b []byte) (mam.Stanza, bool) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := d.Token()
		if err != nil {
			return mam.Stanza{}, false
		}
		if start, ok := tok.(xml.StartElement); ok {
			inner, err := xmlstream.ReadAll(xmlstream.Inner(d))
			if err != nil {
				return mam.Stanza{}, false
			}
			return mam.Stanza{Start: start.Copy(), Inner: inner}, true
		}
	}
}

// encodeStanza serializes a Stanza with encoding/xml, through its
// TokenReader, dropping xmlns attributes as a mellium server does
// (encoding/xml writes namespaces from Name.Space). It fails the test if
// the encoder refuses the tokens (an end element not matching its start).
func encodeStanza(t testing.TB, s mam.Stanza) []byte {
	t.Helper()
	var b bytes.Buffer
	e := xml.NewEncoder(&b)
	r := s.TokenReader()
	for {
		tok, err := r.Token()
		if tok != nil {
			if st, ok := tok.(xml.StartElement); ok {
				attrs := st.Attr[:0:0]
				for _, a := range st.Attr {
					if a.Name.Space != "xmlns" && !(a.Name.Space == "" && a.Name.Local == "xmlns") {
						attrs = append(attrs, a)
					}
				}
				st.Attr = attrs
				tok = st
			}
			if err := e.EncodeToken(tok); err != nil {
				t.Fatalf("encoding delivered tokens: %v", err)
			}
		}
		if err != nil {
			break
		}
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// formsCase is one archiving call, made once with the stanza as bytes and
// once as tokens.
type formsCase struct {
	name  string
	room  bool
	optIn []jid.JID // who opted in to archiving everything
	in    string
}

var formsCases = []formsCase{
	{"chat, nobody opted in", false, nil, chat},
	{"chat, sender only", false, []jid.JID{romeo}, chat},
	{"chat, both", false, []jid.JID{romeo, juliet}, chat},
	{"chat, forged ids and OMEMO", false, []jid.JID{juliet}, string(benchStanza)},
	{"chat, jabber:server children", false, []jid.JID{juliet}, `<message xmlns='jabber:server' type='chat' xml:lang='en'><body>a &amp; b</body><thread>t1</thread></message>`},
	{"chat, foreign stanza-id kept", false, []jid.JID{juliet}, `<message xmlns='jabber:client' type='chat'><body>x</body><stanza-id xmlns='urn:xmpp:sid:0' by='other@example.net' id='kept'/></message>`},
	{"chat, no-store hint", false, []jid.JID{romeo, juliet}, `<message xmlns='jabber:client' type='chat'><body>x</body><no-store xmlns='urn:xmpp:hints'/></message>`},
	{"chat, groupchat type", false, []jid.JID{romeo, juliet}, roomMsg},
	{"room", true, nil, roomMsg},
	{"room, not archivable", true, nil, `<message xmlns='jabber:client' type='groupchat'><active xmlns='http://jabber.org/protocol/chatstates'/></message>`},
}

func (c formsCase) run(t *testing.T, st mam.Stanza) (mam.Result, []mam.Message, error) {
	s := newStore()
	for _, j := range c.optIn {
		setPrefs(t, s, j, always)
	}
	a := mam.NewArchiver(s, mam.Config{})
	if c.room {
		res, err := a.ArchiveRoom(ctx, mam.RoomMessage{Room: mucRoom, Occupant: mucOccupant, RealJID: mucWitch, Stanza: st})
		return res, archived(t, s, mucRoom), err
	}
	res, err := a.Archive(ctx, mam.Chat{From: romeo, To: juliet.Bare(), Stanza: st})
	return res, append(archived(t, s, romeo), archived(t, s, juliet)...), err
}

// The Archiver answers in the form it was given, and both forms deliver
// and store the same message.
func TestArchiveFormsAgree(t *testing.T) {
	for _, c := range formsCases {
		t.Run(c.name, func(t *testing.T) {
			toks, ok := tokensOf(t, []byte(c.in))
			if !ok {
				t.Fatal("test input does not decode")
			}
			rb, storedB, errB := c.run(t, mam.Stanza{Bytes: []byte(c.in)})
			rt, storedT, errT := c.run(t, toks)
			if errB != nil || errT != nil {
				t.Fatalf("bytes: %v, tokens: %v", errB, errT)
			}
			if rb.Deliver.Bytes == nil || rb.Deliver.Start.Name.Local != "" || rb.Deliver.Inner != nil {
				t.Errorf("bytes in, Deliver not bytes only: %+v", rb.Deliver)
			}
			if rt.Deliver.Bytes != nil || rt.Deliver.Start.Name != (xml.Name{Space: stanza.NSClient, Local: "message"}) {
				t.Errorf("tokens in, Deliver not tokens only: %+v", rt.Deliver)
			}
			if (rb.SenderID == "") != (rt.SenderID == "") || (rb.RecipientID == "") != (rt.RecipientID == "") {
				t.Errorf("ids differ: bytes %+v, tokens %+v", rb, rt)
			}
			norm := func(b []byte, ids ...string) *elem {
				for _, id := range ids {
					if id != "" {
						b = bytes.ReplaceAll(b, []byte(id), []byte("ID"))
					}
				}
				return parseOne(t, b)
			}
			fromTokens := encodeStanza(t, rt.Deliver)
			if a, b := norm(rb.Deliver.Bytes, rb.RecipientID), norm(fromTokens, rt.RecipientID); !reflect.DeepEqual(a, b) {
				t.Errorf("delivered messages differ:\nbytes:  %s\ntokens: %s", rb.Deliver.Bytes, fromTokens)
			}
			if len(storedB) != len(storedT) {
				t.Fatalf("stored %d copies from bytes, %d from tokens", len(storedB), len(storedT))
			}
			for i := range storedB {
				if !storedB[i].RealJID.Equal(storedT[i].RealJID) || !storedB[i].With.Equal(storedT[i].With) {
					t.Errorf("stored real JID or peer differ: %+v, %+v", storedB[i], storedT[i])
				}
				if !bytes.Equal(storedB[i].Stanza, storedT[i].Stanza) {
					t.Errorf("stored copies differ:\n%s\n%s", storedB[i].Stanza, storedT[i].Stanza)
				}
			}
			ours := map[string]bool{romeo.Bare().String(): !c.room, juliet.Bare().String(): !c.room, mucRoom.String(): c.room}
			for _, e := range parseOne(t, fromTokens).all(stanza.NSSid, "stanza-id") {
				if ours[e.Attr["by"]] && e.Attr["id"] != rt.RecipientID {
					t.Errorf("forged stanza-id delivered: %s", fromTokens)
				}
			}
		})
	}
}

// Tokens built by hand, without namespaces, come back with the children in
// jabber:client, end elements matching their start (encoding/xml refuses
// anything else), and the stamp last.
func TestArchiveTokensWithoutNamespaces(t *testing.T) {
	s := newStore()
	setPrefs(t, s, juliet, always)
	body := xml.StartElement{Name: xml.Name{Local: "body"}}
	in := mam.Stanza{
		Start: xml.StartElement{Name: xml.Name{Local: "message"}, Attr: []xml.Attr{{Name: xml.Name{Local: "type"}, Value: "chat"}}},
		Inner: []xml.Token{body, xml.CharData("hi"), body.End(), xml.EndElement{Name: xml.Name{Local: "message"}}},
	}
	keep := []xml.Token{body, xml.CharData("hi"), body.End(), xml.EndElement{Name: xml.Name{Local: "message"}}}
	res, err := mam.NewArchiver(s, mam.Config{}).Archive(ctx, mam.Chat{From: romeo, To: juliet.Bare(), Stanza: in})
	if err != nil || res.RecipientID == "" {
		t.Fatal(res, err)
	}
	if !reflect.DeepEqual(in.Inner, keep) {
		t.Errorf("caller's tokens modified: %v", in.Inner)
	}
	msg := parseOne(t, encodeStanza(t, res.Deliver))
	if b := msg.child(stanza.NSClient, "body"); b == nil || b.Text != "hi" {
		t.Errorf("body lost: %+v", msg)
	}
	last := res.Deliver.Inner[len(res.Deliver.Inner)-2]
	if st, ok := last.(xml.StartElement); !ok || st.Name.Local != "stanza-id" {
		t.Errorf("stamp not last: %v", res.Deliver.Inner)
	}
	if msg.Attr["from"] != romeo.String() || msg.Attr["to"] != juliet.Bare().String() {
		t.Errorf("from/to not set: %v", msg.Attr)
	}
}

// The Archiver never changes the caller's tokens, and appending to the
// delivered tokens does not reach them either.
func TestArchiveTokensNotAliased(t *testing.T) {
	for _, room := range []bool{false, true} {
		in := roomMsg
		if !room {
			in = string(benchStanza)
		}
		toks, _ := tokensOf(t, []byte(in))
		before, _ := tokensOf(t, []byte(in))
		c := formsCase{room: room, optIn: []jid.JID{juliet}}
		res, _, err := c.run(t, toks)
		if err != nil || res.RecipientID == "" {
			t.Fatal(res, err)
		}
		_ = append(res.Deliver.Inner, xml.CharData("extra"))
		res.Deliver.Start.Attr[0].Value = "changed"
		if !reflect.DeepEqual(toks, before) {
			t.Errorf("room=%v: caller's stanza changed", room)
		}
	}
}

func TestArchiveBadRequest(t *testing.T) {
	msg := mam.Stanza{Bytes: []byte(chat)}
	toks, _ := tokensOf(t, []byte(chat))
	tests := []struct {
		name string
		chat *mam.Chat
		room *mam.RoomMessage
		want string
	}{
		{"zero Chat", &mam.Chat{}, nil, "Chat.From missing"},
		{"no To", &mam.Chat{From: romeo, Stanza: msg}, nil, "Chat.To missing"},
		{"no Stanza", &mam.Chat{From: romeo, To: juliet}, nil, "Stanza missing"},
		{"both forms", &mam.Chat{From: romeo, To: juliet, Stanza: mam.Stanza{Bytes: msg.Bytes, Start: toks.Start, Inner: toks.Inner}}, nil, "both Bytes and Start"},
		{"Bytes and Inner", &mam.Chat{From: romeo, To: juliet, Stanza: mam.Stanza{Bytes: msg.Bytes, Inner: toks.Inner}}, nil, "both Bytes and Start"},
		{"Inner without Start", &mam.Chat{From: romeo, To: juliet, Stanza: mam.Stanza{Inner: toks.Inner}}, nil, "Inner without"},
		{"tokens of an iq", &mam.Chat{From: romeo, To: juliet, Stanza: mam.Stanza{Start: xml.StartElement{Name: xml.Name{Space: stanza.NSClient, Local: "iq"}}}}, nil, "not a message"},
		{"zero RoomMessage", nil, &mam.RoomMessage{}, "Room missing"},
		{"no Occupant", nil, &mam.RoomMessage{Room: mucRoom, RealJID: mucWitch, Stanza: msg}, "Occupant missing"},
		{"Occupant elsewhere", nil, &mam.RoomMessage{Room: mucRoom, Occupant: jid.MustParse("other@muc.example.org/n"), RealJID: mucWitch, Stanza: msg}, "Occupant not in Room"},
		{"no RealJID", nil, &mam.RoomMessage{Room: mucRoom, Occupant: mucOccupant, Stanza: msg}, "RealJID missing"},
		{"room without Stanza", nil, &mam.RoomMessage{Room: mucRoom, Occupant: mucOccupant, Anonymous: true}, "Stanza missing"},
	}
	a := mam.NewArchiver(newStore(), mam.Config{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var res mam.Result
			var err error
			if tc.chat != nil {
				res, err = a.Archive(ctx, *tc.chat)
			} else {
				res, err = a.ArchiveRoom(ctx, *tc.room)
			}
			if !errors.Is(err, mam.ErrBadRequest) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want ErrBadRequest saying %q", err, tc.want)
			}
			if !res.Deliver.IsZero() {
				t.Errorf("Deliver set on bad request: %+v", res.Deliver)
			}
		})
	}
}

// An anonymous room needs no real JID and keeps none it is given.
func TestArchiveRoomAnonymous(t *testing.T) {
	for _, real := range []jid.JID{{}, mucWitch} {
		s := newStore()
		res, err := mam.NewArchiver(s, mam.Config{}).ArchiveRoom(ctx, mam.RoomMessage{Room: mucRoom, Occupant: mucOccupant, RealJID: real, Anonymous: true, Stanza: mam.Stanza{Bytes: []byte(roomMsg)}})
		if err != nil || res.RecipientID == "" {
			t.Fatal(res, err)
		}
		if got := archived(t, s, mucRoom); len(got) != 1 || !got[0].RealJID.Equal(jid.JID{}) {
			t.Errorf("real JID %v: stored %+v", real, got)
		}
	}
}

func TestStanzaTokenReader(t *testing.T) {
	toks, _ := tokensOf(t, []byte(chat))
	withEnd := toks
	withEnd.Inner = append(toks.Inner[:len(toks.Inner):len(toks.Inner)], toks.Start.End())
	want := parseOne(t, []byte(chat))
	for name, s := range map[string]mam.Stanza{
		"bytes":           {Bytes: []byte(chat)},
		"tokens":          toks,
		"tokens with end": withEnd,
	} {
		if got := parseOne(t, encodeStanza(t, s)); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %+v, want %+v", name, got, want)
		}
	}
	if !(mam.Stanza{}).IsZero() || (mam.Stanza{Bytes: []byte(chat)}).IsZero() || toks.IsZero() {
		t.Error("IsZero wrong")
	}
}

// An archiving failure never loses the message, in either form: Deliver is
// set, in the form given, when the stanza is too large to store or the
// store fails.
func TestArchiveFailureStillDelivers(t *testing.T) {
	toks, _ := tokensOf(t, []byte(roomMsg))
	chatToks, _ := tokensOf(t, []byte(chat))
	for _, tc := range []struct {
		name  string
		store func() mam.Store
		cfg   mam.Config
		want  error
	}{
		{"too large", func() mam.Store { return newStore() }, mam.Config{MaxStanzaSize: 60}, mam.ErrTooLarge},
		{"store fails", func() mam.Store { return failStore{newStore()} }, mam.Config{}, nil},
	} {
		for _, form := range []string{"bytes", "tokens"} {
			t.Run(tc.name+"/"+form, func(t *testing.T) {
				s := tc.store()
				setPrefs(t, s, juliet, always)
				a := mam.NewArchiver(s, tc.cfg)
				c := mam.Chat{From: romeo, To: juliet.Bare(), Stanza: mam.Stanza{Bytes: []byte(chat)}}
				r := mam.RoomMessage{Room: mucRoom, Occupant: mucOccupant, RealJID: mucWitch, Stanza: mam.Stanza{Bytes: []byte(roomMsg)}}
				if form == "tokens" {
					c.Stanza, r.Stanza = chatToks, toks
				}
				rc, errC := a.Archive(ctx, c)
				rr, errR := a.ArchiveRoom(ctx, r)
				for _, x := range []struct {
					res mam.Result
					err error
				}{{rc, errC}, {rr, errR}} {
					if x.err == nil || (tc.want != nil && !errors.Is(x.err, tc.want)) {
						t.Errorf("err = %v, want %v", x.err, tc.want)
					}
					if x.res.Deliver.IsZero() || (form == "tokens") != (x.res.Deliver.Bytes == nil) || x.res.RecipientID != "" {
						t.Errorf("result %+v", x.res)
					}
					if m := parseOne(t, encodeStanza(t, x.res.Deliver)); m.child(stanza.NSClient, "body") == nil {
						t.Errorf("body lost: %+v", x.res.Deliver)
					}
				}
			})
		}
	}
}
