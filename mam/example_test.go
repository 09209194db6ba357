package mam_test

import (
	"context"
	"fmt"

	"chatbx.eu/privacy/mam"
	"chatbx.eu/privacy/mam/mamtest"
	"mellium.im/xmpp/jid"
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

	res, _ := archiver.Archive(ctx, romeo, juliet, msg)
	fmt.Println("before opting in, stored:", res.RecipientID != "")

	// What the Handler does for <prefs xmlns='urn:xmpp:mam:2' default='always'/>.
	_ = store.SetPrefs(ctx, juliet, mam.Prefs{Default: mam.DefaultAlways})

	res, _ = archiver.Archive(ctx, romeo, juliet, msg)
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

// ParsePrefs reads an XEP-0441 <prefs/> element; an unknown default is
// refused with ErrBadQuery (bad-request).
func ExampleParsePrefsBytes() {
	p, err := mam.ParsePrefsBytes([]byte(`<prefs xmlns='urn:xmpp:mam:2' default='roster'>
	  <always><jid>romeo@example.org</jid></always>
	  <never/>
	</prefs>`))
	fmt.Println(p.Default, p.Always, err)

	_, err = mam.ParsePrefsBytes([]byte(`<prefs xmlns='urn:xmpp:mam:2' default='sometimes'/>`))
	fmt.Println(err)
	// Output:
	// roster [romeo@example.org] <nil>
	// mam: bad query: unknown default
}
