package mam_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"strings"

	"chatbx.eu/privacy/mam"
	"chatbx.eu/privacy/mam/mamtest"
	"mellium.im/xmlstream"
	"mellium.im/xmpp/disco/info"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"
)

// Archiving is opt-in: a message to a user who never set preferences is not
// stored; once she sets default='always' it is, and the delivered stanza
// carries her archive's stanza-id.
func Example() {
	ctx := context.Background()
	store := mamtest.NewMemStore()
	archiver := mam.NewArchiver(store, mam.Config{})

	romeo := jid.MustParse("romeo@example.org/orchard")
	juliet := jid.MustParse("juliet@example.org")
	msg := []byte(`<message xmlns='jabber:client' type='chat'><body>Hi</body></message>`)

	res, _ := archiver.Archive(ctx, mam.Chat{From: romeo, To: juliet, Stanza: mam.Stanza{Bytes: msg}})
	fmt.Println("before opting in, stored:", res.RecipientID != "")

	// What the Handler does for <prefs xmlns='urn:xmpp:mam:2' default='always'/>.
	_ = store.SetPrefs(ctx, juliet, mam.Prefs{Default: mam.DefaultAlways})

	res, _ = archiver.Archive(ctx, mam.Chat{From: romeo, To: juliet, Stanza: mam.Stanza{Bytes: msg}})
	fmt.Println("after opting in, stored:", res.RecipientID != "")

	page, _ := store.Query(ctx, juliet, mam.Query{})
	fmt.Println("juliet's archive holds", len(page.Messages), "message")
	romeos, _ := store.Query(ctx, romeo.Bare(), mam.Query{})
	fmt.Println("romeo's archive holds", len(romeos.Messages), "messages")
	// Output:
	// before opting in, stored: false
	// after opting in, stored: true
	// juliet's archive holds 1 message
	// romeo's archive holds 0 messages
}

// A server mounts one Handler in each session's mux, beside its other
// handlers, and calls one Archiver from its router.
func ExampleHandle() {
	store := mamtest.NewMemStore()
	cfg := mam.Config{} // private defaults: opt-in archiving, no room access
	handler := mam.NewHandler(store, cfg)
	m := mux.New(stanza.NSClient, mam.Handle(handler))
	_ = m // serve each session with m (after setting every IQ's from)

	// What disco#info gathers from the mux (it drops the repeats of a
	// handler registered for several payloads).
	var features []string
	seen := map[string]bool{}
	_ = m.ForFeatures("", func(f info.Feature) error {
		if !seen[f.Var] {
			seen[f.Var] = true
			features = append(features, f.Var)
		}
		return nil
	})
	fmt.Println(features)
	// Output:
	// [urn:xmpp:mam:2 urn:xmpp:mam:2#extended urn:xmpp:mam:2#groupchat-field]
}

// A mellium server holds each routed message as tokens (a start element
// and the tokens inside it) and gets the message to deliver back as tokens,
// without parsing it again: forged stanza-ids removed, from and to set, and
// the recipient's archive id stamped when her archive stored it.
func ExampleArchiver_Archive() {
	ctx := context.Background()
	store := mamtest.NewMemStore()
	archiver := mam.NewArchiver(store, mam.Config{})
	juliet := jid.MustParse("juliet@example.org")
	_ = store.SetPrefs(ctx, juliet, mam.Prefs{Default: mam.DefaultAlways})

	// What the server read from romeo's stream.
	d := xml.NewDecoder(strings.NewReader(`<message xmlns='jabber:client' type='chat' to='juliet@example.org'>` +
		`<body>Hi</body><stanza-id xmlns='urn:xmpp:sid:0' by='juliet@example.org' id='forged'/></message>`))
	tok, _ := d.Token()
	inner, _ := xmlstream.ReadAll(xmlstream.Inner(d))

	res, err := archiver.Archive(ctx, mam.Chat{
		From:   jid.MustParse("romeo@example.org/orchard"), // as authenticated
		To:     juliet,
		Stanza: mam.Stanza{Start: tok.(xml.StartElement), Inner: inner},
	})
	if err != nil {
		fmt.Println(err)
	}
	// A session sends it with sess.Send(ctx, res.Deliver.TokenReader()).
	for _, t := range res.Deliver.Inner {
		if s, ok := t.(xml.StartElement); ok {
			id := ""
			for _, a := range s.Attr {
				if a.Name.Local == "id" {
					id = a.Value
				}
			}
			fmt.Println(s.Name.Local, id == res.RecipientID)
		}
	}
	// Output:
	// body false
	// stanza-id true
}

// A room with archiving on stores each groupchat message under the room's
// JID, from the occupant JID, without to and without the muc#user element;
// the real JID is kept apart (non-anonymous room).
func ExampleArchiver_ArchiveRoom() {
	ctx := context.Background()
	store := mamtest.NewMemStore()
	archiver := mam.NewArchiver(store, mam.Config{})

	room := jid.MustParse("coven@muc.example.org")
	occupant := jid.MustParse("coven@muc.example.org/firstwitch")
	realJID := jid.MustParse("witch1@example.org/cauldron")
	msg := []byte(`<message xmlns='jabber:client' type='groupchat' to='coven@muc.example.org'>` +
		`<body>Thrice the brinded cat hath mew'd.</body>` +
		`<x xmlns='http://jabber.org/protocol/muc#user'><item jid='spoofed@example.net'/></x></message>`)

	res, err := archiver.ArchiveRoom(ctx, mam.RoomMessage{
		Room:     room,
		Occupant: occupant,
		RealJID:  realJID, // kept apart: the room is not Anonymous
		Stanza:   mam.Stanza{Bytes: msg},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	page, _ := store.Query(ctx, room, mam.Query{})
	m := page.Messages[0]
	fmt.Println(m.ID == res.RecipientID, m.With, m.RealJID)
	fmt.Println(string(m.Stanza))
	// Output:
	// true coven@muc.example.org/firstwitch witch1@example.org
	// <message xmlns="jabber:client" type="groupchat" from="coven@muc.example.org/firstwitch"><body>Thrice the brinded cat hath mew'd.</body></message>
}
