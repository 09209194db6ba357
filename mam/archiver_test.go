package mam_test

import (
	"bytes"
	"context"
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

const chat = `<message xmlns='jabber:client' type='chat' id='m1' to='juliet@example.org'><body>Wherefore art thou</body></message>`

var always = mam.Prefs{Default: mam.DefaultAlways}

func TestArchiveOptIn(t *testing.T) { forEachStore(t, testArchiveOptIn) }

func testArchiveOptIn(t *testing.T, newStore func() mam.Store) {
	s := newStore()
	a := mam.NewArchiver(s, mam.Config{Now: clock()})

	// Nobody set preferences: nothing is stored, nothing stamped.
	res, err := a.Archive(ctx, mam.Chat{From: romeo, To: juliet.Bare(), Stanza: mam.Stanza{Bytes: []byte(chat)}})
	if err != nil {
		t.Fatal(err)
	}
	if res.SenderID != "" || res.RecipientID != "" {
		t.Errorf("stored without opt-in: %+v", res)
	}
	if n := len(archived(t, s, romeo)) + len(archived(t, s, juliet)); n != 0 {
		t.Fatalf("%d messages archived before anyone opted in", n)
	}
	if ids := parseOne(t, res.Deliver.Bytes).all(stanza.NSSid, "stanza-id"); len(ids) != 0 {
		t.Errorf("unarchived message stamped: %s", res.Deliver.Bytes)
	}

	// Juliet opts in: her archive stores it, Romeo's still does not.
	setPrefs(t, s, juliet, always)
	res, err = a.Archive(ctx, mam.Chat{From: romeo, To: juliet.Bare(), Stanza: mam.Stanza{Bytes: []byte(chat)}})
	if err != nil {
		t.Fatal(err)
	}
	if res.RecipientID == "" || res.SenderID != "" {
		t.Fatalf("want recipient-only archiving, got %+v", res)
	}
	got := archived(t, s, juliet)
	if len(got) != 1 || len(archived(t, s, romeo)) != 0 {
		t.Fatalf("juliet has %d, romeo %d messages; want 1 and 0", len(got), len(archived(t, s, romeo)))
	}
	m := got[0]
	if m.ID != res.RecipientID || !m.With.Equal(romeo) || !m.Archive.Equal(juliet.Bare()) || m.Groupchat {
		t.Errorf("stored %+v", m)
	}
	if !m.Time.Equal(epoch.Add(2 * 1e9)) {
		t.Errorf("stored time %v, want the injected clock", m.Time)
	}
	msg := parseOne(t, res.Deliver.Bytes)
	ids := msg.all(stanza.NSSid, "stanza-id")
	if len(ids) != 1 || ids[0].Attr["id"] != res.RecipientID || ids[0].Attr["by"] != "juliet@example.org" {
		t.Errorf("deliver stamped wrongly: %s", res.Deliver.Bytes)
	}
	if msg.Attr["from"] != romeo.String() || msg.Attr["to"] != "juliet@example.org" || msg.Attr["id"] != "m1" || msg.Attr["type"] != "chat" {
		t.Errorf("deliver attributes %v", msg.Attr)
	}
	if b := msg.child("jabber:client", "body"); b == nil || b.Text != "Wherefore art thou" {
		t.Errorf("body lost: %s", res.Deliver.Bytes)
	}
	// The stored copy has no stanza-id of ours (the result id carries it)
	// and keeps the body.
	stored := parseOne(t, m.Stanza)
	if len(stored.all(stanza.NSSid, "stanza-id")) != 0 || stored.child("jabber:client", "body") == nil {
		t.Errorf("stored stanza %s", m.Stanza)
	}
}

func TestArchiveSenderArchiveNotLeakedToRecipient(t *testing.T) {
	s := newStore()
	setPrefs(t, s, romeo, always)
	a := mam.NewArchiver(s, mam.Config{})
	res, err := a.Archive(ctx, mam.Chat{From: romeo, To: juliet.Bare(), Stanza: mam.Stanza{Bytes: []byte(chat)}})
	if err != nil {
		t.Fatal(err)
	}
	if res.SenderID == "" || res.RecipientID != "" {
		t.Fatalf("want sender-only archiving, got %+v", res)
	}
	got := archived(t, s, romeo)
	if len(got) != 1 || got[0].ID != res.SenderID || !got[0].With.Equal(juliet.Bare()) {
		t.Fatalf("romeo's archive: %+v", got)
	}
	// XEP-0313 §3.5: the recipient, who cannot read Romeo's archive, must
	// not get its stanza-id.
	if strings.Contains(string(res.Deliver.Bytes), "stanza-id") || strings.Contains(string(res.Deliver.Bytes), res.SenderID) {
		t.Errorf("sender's archive id delivered to the recipient: %s", res.Deliver.Bytes)
	}
}

func TestArchiveBothArchivesIndependentIDs(t *testing.T) {
	s := newStore()
	setPrefs(t, s, romeo, always)
	setPrefs(t, s, juliet, always)
	a := mam.NewArchiver(s, mam.Config{})
	res, err := a.Archive(ctx, mam.Chat{From: romeo, To: juliet.Bare(), Stanza: mam.Stanza{Bytes: []byte(chat)}})
	if err != nil {
		t.Fatal(err)
	}
	if res.SenderID == "" || res.RecipientID == "" || res.SenderID == res.RecipientID {
		t.Fatalf("ids %+v", res)
	}
	ids := parseOne(t, res.Deliver.Bytes).all(stanza.NSSid, "stanza-id")
	if len(ids) != 1 || ids[0].Attr["id"] != res.RecipientID {
		t.Errorf("deliver: %s", res.Deliver.Bytes)
	}
}

func TestArchiveEachOwnerOwnPrefs(t *testing.T) { forEachStore(t, testArchiveEachOwnerOwnPrefs) }

func testArchiveEachOwnerOwnPrefs(t *testing.T, newStore func() mam.Store) {
	j := jid.MustParse
	tests := []struct {
		name                 string
		romeo, juliet        mam.Prefs
		wantRomeo, wantJulie bool
	}{
		{"both never set", mam.Prefs{}, mam.Prefs{}, false, false},
		{"romeo always, juliet never", always, mam.Prefs{Default: mam.DefaultNever}, true, false},
		{"juliet never-lists romeo, romeo always", always, mam.Prefs{Default: mam.DefaultAlways, Never: []jid.JID{j("romeo@example.org")}}, true, false},
		{"romeo never-lists juliet", mam.Prefs{Default: mam.DefaultAlways, Never: []jid.JID{j("juliet@example.org")}}, always, false, true},
		{"always lists", mam.Prefs{Always: []jid.JID{j("juliet@example.org")}}, mam.Prefs{Always: []jid.JID{j("romeo@example.org")}}, true, true},
		{"always list of a third party", mam.Prefs{Always: []jid.JID{j("nurse@example.org")}}, mam.Prefs{Always: []jid.JID{j("nurse@example.org")}}, false, false},
		{"never wins over always", mam.Prefs{Default: mam.DefaultAlways, Always: []jid.JID{j("juliet@example.org")}, Never: []jid.JID{j("juliet@example.org")}}, always, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore()
			setPrefs(t, s, romeo, tc.romeo)
			setPrefs(t, s, juliet, tc.juliet)
			a := mam.NewArchiver(s, mam.Config{})
			res, err := a.Archive(ctx, mam.Chat{From: romeo, To: juliet.Bare(), Stanza: mam.Stanza{Bytes: []byte(chat)}})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(archived(t, s, romeo)) == 1; got != tc.wantRomeo || (res.SenderID != "") != tc.wantRomeo {
				t.Errorf("romeo's archive stored=%v, want %v", got, tc.wantRomeo)
			}
			if got := len(archived(t, s, juliet)) == 1; got != tc.wantJulie || (res.RecipientID != "") != tc.wantJulie {
				t.Errorf("juliet's archive stored=%v, want %v", got, tc.wantJulie)
			}
		})
	}
}

func TestArchiveRosterDefault(t *testing.T) {
	s := newStore()
	setPrefs(t, s, juliet, mam.Prefs{Default: mam.DefaultRoster})
	roster := rosterFunc(func(owner, contact jid.JID) bool {
		return owner.Equal(juliet.Bare()) && contact.Equal(romeo.Bare())
	})
	a := mam.NewArchiver(s, mam.Config{Roster: roster})
	if res, err := a.Archive(ctx, mam.Chat{From: romeo, To: juliet.Bare(), Stanza: mam.Stanza{Bytes: []byte(chat)}}); err != nil || res.RecipientID == "" {
		t.Fatalf("contact in roster not archived: %+v %v", res, err)
	}
	if res, err := a.Archive(ctx, mam.Chat{From: mallory, To: juliet.Bare(), Stanza: mam.Stanza{Bytes: []byte(chat)}}); err != nil || res.RecipientID != "" {
		t.Fatalf("stranger archived: %+v %v", res, err)
	}
	// Without a roster lookup the roster default archives nothing.
	a = mam.NewArchiver(s, mam.Config{})
	if res, err := a.Archive(ctx, mam.Chat{From: romeo, To: juliet.Bare(), Stanza: mam.Stanza{Bytes: []byte(chat)}}); err != nil || res.RecipientID != "" {
		t.Fatalf("archived without roster: %+v %v", res, err)
	}
	// A failing lookup is reported, not guessed, and the message still
	// delivered.
	a = mam.NewArchiver(s, mam.Config{Roster: failingRoster{}})
	res, err := a.Archive(ctx, mam.Chat{From: romeo, To: juliet.Bare(), Stanza: mam.Stanza{Bytes: []byte(chat)}})
	if err == nil || res.RecipientID != "" || len(res.Deliver.Bytes) == 0 {
		t.Fatalf("failing roster: %+v %v", res, err)
	}
}

func TestArchiveWhatIsStored(t *testing.T) { forEachStore(t, testArchiveWhatIsStored) }

func testArchiveWhatIsStored(t *testing.T, newStore func() mam.Store) {
	msg := func(typ, inner string) string {
		attr := ""
		if typ != "-" {
			attr = ` type='` + typ + `'`
		}
		return `<message xmlns='jabber:client' to='juliet@example.org'` + attr + `>` + inner + `</message>`
	}
	body := `<body>hi</body>`
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"chat with body", msg("chat", body), true},
		{"no type (normal) with body", msg("-", body), true},
		{"normal with body", msg("normal", body), true},
		{"headline", msg("headline", body), false},
		{"error", msg("error", body+`<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>`), false},
		{"groupchat via the 1:1 path", msg("groupchat", body), false},
		{"unknown type", msg("bogus", body), false},
		{"chat state only", msg("chat", `<active xmlns='http://jabber.org/protocol/chatstates'/>`), false},
		{"receipt only", msg("chat", `<received xmlns='urn:xmpp:receipts' id='x'/>`), false},
		{"empty body element counts as a body", msg("chat", `<body/>`), true},
		{"OMEMO 2 without body", msg("chat", `<encrypted xmlns='urn:xmpp:omemo:2'><header sid='1'/><payload>AAAA</payload></encrypted>`), true},
		{"legacy OMEMO without body", msg("chat", `<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'/></encrypted>`), true},
		{"OpenPGP", msg("chat", `<openpgp xmlns='urn:xmpp:openpgp:0'>BASE64</openpgp>`), true},
		{"body in a foreign namespace is no body", msg("chat", `<body xmlns='urn:example'>x</body>`), false},
		{"no-store hint", msg("chat", body+`<no-store xmlns='urn:xmpp:hints'/>`), false},
		{"no-permanent-store hint", msg("chat", body+`<no-permanent-store xmlns='urn:xmpp:hints'/>`), false},
		{"no-copy hint alone does not block archiving", msg("chat", body+`<no-copy xmlns='urn:xmpp:hints'/>`), true},
		{"store hint forces a payload-less message", msg("chat", `<store xmlns='urn:xmpp:hints'/><x xmlns='urn:example'/>`), true},
		{"store hint does not rescue an error", msg("error", `<store xmlns='urn:xmpp:hints'/>`), false},
		{"store and no-store: no-store wins", msg("chat", body+`<store xmlns='urn:xmpp:hints'/><no-store xmlns='urn:xmpp:hints'/>`), false},
		{"carbon sent copy", msg("chat", `<sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' type='chat'><body>hi</body></message></forwarded></sent>`), false},
		{"carbon received copy", msg("chat", `<received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' type='chat'><body>hi</body></message></forwarded></received>`), false},
		{"MAM result", msg("-", `<result xmlns='urn:xmpp:mam:2' id='x'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client'><body>hi</body></message></forwarded></result>`), false},
		{"nested body does not count", msg("chat", `<foo xmlns='urn:example'><body xmlns='jabber:client'>hi</body></foo>`), false},
		{"jabber:server stanza", `<message xmlns='jabber:server' type='chat'><body>hi</body></message>`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore()
			setPrefs(t, s, romeo, always)
			setPrefs(t, s, juliet, always)
			a := mam.NewArchiver(s, mam.Config{})
			res, err := a.Archive(ctx, mam.Chat{From: romeo, To: juliet.Bare(), Stanza: mam.Stanza{Bytes: []byte(tc.in)}})
			if err != nil {
				t.Fatal(err)
			}
			n := len(archived(t, s, romeo)) + len(archived(t, s, juliet))
			if tc.want && (n != 2 || res.SenderID == "" || res.RecipientID == "") {
				t.Errorf("not stored in both archives: %d stored, %+v", n, res)
			}
			if !tc.want && (n != 0 || res.SenderID != "" || res.RecipientID != "") {
				t.Errorf("stored %d times: %+v", n, res)
			}
			parseOne(t, res.Deliver.Bytes) // always deliverable, well-formed
		})
	}
}

func TestArchiveStoreHintDoesNotOverridePrefs(t *testing.T) {
	s := newStore()
	setPrefs(t, s, juliet, mam.Prefs{Default: mam.DefaultNever})
	a := mam.NewArchiver(s, mam.Config{})
	in := `<message xmlns='jabber:client' type='chat'><body>keep me</body><store xmlns='urn:xmpp:hints'/></message>`
	res, err := a.Archive(ctx, mam.Chat{From: romeo, To: juliet.Bare(), Stanza: mam.Stanza{Bytes: []byte(in)}})
	if err != nil {
		t.Fatal(err)
	}
	if res.RecipientID != "" || len(archived(t, s, juliet)) != 0 {
		t.Fatal("<store/> hint overrode prefs never")
	}
}

func TestArchiveStripsForgedStanzaIDs(t *testing.T) {
	forEachStore(t, testArchiveStripsForgedStanzaIDs)
}

func testArchiveStripsForgedStanzaIDs(t *testing.T, newStore func() mam.Store) {
	in := `<message xmlns='jabber:client' type='chat'>` +
		`<stanza-id xmlns='urn:xmpp:sid:0' by='juliet@example.org' id='FORGED1'/>` +
		`<body>hi</body>` +
		`<stanza-id xmlns='urn:xmpp:sid:0' by='Juliet@Example.org' id='FORGED2'/>` +
		`<stanza-id xmlns='urn:xmpp:sid:0' by='romeo@example.org' id='FORGED3'/>` +
		`<stanza-id xmlns='urn:xmpp:sid:0' by='@@' id='FORGED4'/>` +
		`<stanza-id xmlns='urn:xmpp:sid:0' by='muc.example.net' id='kept'/>` +
		`<origin-id xmlns='urn:xmpp:sid:0' id='origin-1'/>` +
		`</message>`
	for _, optIn := range []bool{false, true} {
		s := newStore()
		if optIn {
			setPrefs(t, s, juliet, always)
			setPrefs(t, s, romeo, always)
		}
		a := mam.NewArchiver(s, mam.Config{})
		res, err := a.Archive(ctx, mam.Chat{From: romeo, To: juliet.Bare(), Stanza: mam.Stanza{Bytes: []byte(in)}})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(res.Deliver.Bytes), "FORGED") {
			t.Errorf("optIn=%v: forged stanza-id delivered: %s", optIn, res.Deliver.Bytes)
		}
		msg := parseOne(t, res.Deliver.Bytes)
		var kept, ours int
		for _, e := range msg.all(stanza.NSSid, "stanza-id") {
			switch {
			case e.Attr["id"] == "kept" && e.Attr["by"] == "muc.example.net":
				kept++
			case e.Attr["by"] == "juliet@example.org" && e.Attr["id"] == res.RecipientID:
				ours++
			}
		}
		if kept != 1 {
			t.Errorf("optIn=%v: foreign stanza-id not kept: %s", optIn, res.Deliver.Bytes)
		}
		if optIn != (ours == 1) {
			t.Errorf("optIn=%v: %d stanza-ids of ours in %s", optIn, ours, res.Deliver.Bytes)
		}
		if o := msg.child(stanza.NSSid, "origin-id"); o == nil || o.Attr["id"] != "origin-1" {
			t.Errorf("origin-id lost: %s", res.Deliver.Bytes)
		}
		for _, owner := range []jid.JID{romeo, juliet} {
			for _, m := range archived(t, s, owner) {
				if strings.Contains(string(m.Stanza), "FORGED") {
					t.Errorf("forged stanza-id archived: %s", m.Stanza)
				}
			}
		}
	}
}

// TestArchiveUsesGivenFrom guards against forged from: the server
// overwrites a client's from with the session's JID and passes it to
// Archive; the archiver trusts only that argument.
func TestArchiveUsesGivenFrom(t *testing.T) {
	s := newStore()
	setPrefs(t, s, juliet, always)
	setPrefs(t, s, mallory, always)
	a := mam.NewArchiver(s, mam.Config{})
	in := `<message xmlns='jabber:client' type='chat' from='mallory@example.net/evil' to='mallory@example.net'><body>I am Mallory</body></message>`
	res, err := a.Archive(ctx, mam.Chat{From: romeo, To: juliet.Bare(), Stanza: mam.Stanza{Bytes: []byte(in)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(archived(t, s, mallory)) != 0 {
		t.Error("the stanza's own to/from chose an archive")
	}
	got := archived(t, s, juliet)
	if len(got) != 1 || !got[0].With.Equal(romeo) {
		t.Fatalf("juliet's archive: %+v", got)
	}
	for _, b := range [][]byte{got[0].Stanza, res.Deliver.Bytes} {
		m := parseOne(t, b)
		if m.Attr["from"] != romeo.String() || m.Attr["to"] != "juliet@example.org" {
			t.Errorf("from/to not the given ones: %s", b)
		}
	}
}

func TestArchiveTooLarge(t *testing.T) {
	s := newStore()
	setPrefs(t, s, juliet, always)
	a := mam.NewArchiver(s, mam.Config{MaxStanzaSize: 200})
	big := `<message xmlns='jabber:client' type='chat'><body>` + strings.Repeat("x", 300) + `</body><stanza-id xmlns='urn:xmpp:sid:0' by='juliet@example.org' id='FORGED'/></message>`
	res, err := a.Archive(ctx, mam.Chat{From: romeo, To: juliet.Bare(), Stanza: mam.Stanza{Bytes: []byte(big)}})
	if !errors.Is(err, mam.ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if len(archived(t, s, juliet)) != 0 || res.RecipientID != "" {
		t.Error("oversize message archived")
	}
	if len(res.Deliver.Bytes) == 0 || strings.Contains(string(res.Deliver.Bytes), "FORGED") {
		t.Errorf("oversize message not deliverable or not cleaned: %s", res.Deliver.Bytes)
	}
	// The default cap is 64 KiB.
	a = mam.NewArchiver(s, mam.Config{})
	big = `<message xmlns='jabber:client' type='chat'><body>` + strings.Repeat("x", 64<<10) + `</body></message>`
	if _, err := a.Archive(ctx, mam.Chat{From: romeo, To: juliet.Bare(), Stanza: mam.Stanza{Bytes: []byte(big)}}); !errors.Is(err, mam.ErrTooLarge) {
		t.Fatalf("default cap: err = %v", err)
	}
	small := `<message xmlns='jabber:client' type='chat'><body>` + strings.Repeat("x", 60<<10) + `</body></message>`
	if _, err := a.Archive(ctx, mam.Chat{From: romeo, To: juliet.Bare(), Stanza: mam.Stanza{Bytes: []byte(small)}}); err != nil {
		t.Fatalf("60 KiB refused: %v", err)
	}
}

func TestArchiveToSelfOnce(t *testing.T) {
	s := newStore()
	setPrefs(t, s, romeo, always)
	a := mam.NewArchiver(s, mam.Config{})
	res, err := a.Archive(ctx, mam.Chat{From: romeo, To: romeo.Bare(), Stanza: mam.Stanza{Bytes: []byte(chat)}})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(archived(t, s, romeo)); n != 1 || res.SenderID != res.RecipientID {
		t.Fatalf("note to self stored %d times, %+v", n, res)
	}
}

func TestArchiveIsLocal(t *testing.T) {
	s := newStore()
	setPrefs(t, s, juliet, always)
	setPrefs(t, s, mallory, always)
	local := func(j jid.JID) bool { return j.Domainpart() == "example.org" }
	a := mam.NewArchiver(s, mam.Config{IsLocal: local})
	if _, err := a.Archive(ctx, mam.Chat{From: juliet, To: mallory.Bare(), Stanza: mam.Stanza{Bytes: []byte(chat)}}); err != nil {
		t.Fatal(err)
	}
	if len(archived(t, s, mallory)) != 0 {
		t.Error("remote user's archive written")
	}
	if len(archived(t, s, juliet)) != 1 {
		t.Error("local user's archive not written")
	}
}

func TestArchiveStoreFailureStillDelivers(t *testing.T) {
	s := newStore()
	setPrefs(t, s, juliet, always)
	a := mam.NewArchiver(failStore{s}, mam.Config{})
	res, err := a.Archive(ctx, mam.Chat{From: romeo, To: juliet.Bare(), Stanza: mam.Stanza{Bytes: []byte(chat)}})
	if err == nil || res.RecipientID != "" {
		t.Fatalf("store failure hidden: %+v %v", res, err)
	}
	if strings.Contains(err.Error(), "Wherefore") {
		t.Error("error message leaks the body")
	}
	if m := parseOne(t, res.Deliver.Bytes); m.child("jabber:client", "body") == nil {
		t.Errorf("message lost on store failure: %s", res.Deliver.Bytes)
	}
}

func TestArchiveMalformed(t *testing.T) {
	a := mam.NewArchiver(newStore(), mam.Config{})
	for _, in := range []string{
		``,
		`hello`,
		`<message xmlns='jabber:client'><body>unclosed`,
		`<iq xmlns='jabber:client' type='get'/>`,
		`<message xmlns='jabber:client'><body>x</wrong></message>`,
	} {
		if _, err := a.Archive(ctx, mam.Chat{From: romeo, To: juliet.Bare(), Stanza: mam.Stanza{Bytes: []byte(in)}}); !errors.Is(err, mam.ErrBadRequest) {
			t.Errorf("%q: err = %v, want ErrBadRequest", in, err)
		}
	}
	// The router must say who sent it and to whom.
	if _, err := a.Archive(ctx, mam.Chat{From: jid.JID{}, To: juliet.Bare(), Stanza: mam.Stanza{Bytes: []byte(chat)}}); !errors.Is(err, mam.ErrBadRequest) {
		t.Errorf("no from: err = %v", err)
	}
	if _, err := a.Archive(ctx, mam.Chat{From: romeo, To: jid.JID{}, Stanza: mam.Stanza{Bytes: []byte(chat)}}); !errors.Is(err, mam.ErrBadRequest) {
		t.Errorf("no to: err = %v", err)
	}
}

func TestArchiveTokensMatchesBytes(t *testing.T) {
	in := `<message xmlns='jabber:client' type='chat' xml:lang='en' id='x1'><body>a &amp; b &lt;3</body>` +
		`<stanza-id xmlns='urn:xmpp:sid:0' by='juliet@example.org' id='FORGED'/>` +
		`<encrypted xmlns='urn:xmpp:omemo:2'><header sid='7'><keys jid='juliet@example.org'><key rid='1'>AAA=</key></keys></header></encrypted></message>`
	d := xml.NewDecoder(strings.NewReader(in))
	tok, _ := d.Token()
	start := tok.(xml.StartElement).Copy()
	inner, err := xmlstream.ReadAll(xmlstream.Inner(d))
	if err != nil {
		t.Fatal(err)
	}

	s1, s2 := newStore(), newStore()
	setPrefs(t, s1, juliet, always)
	setPrefs(t, s2, juliet, always)
	r1, err := mam.NewArchiver(s1, mam.Config{}).Archive(ctx, mam.Chat{From: romeo, To: juliet.Bare(), Stanza: mam.Stanza{Bytes: []byte(in)}})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := mam.NewArchiver(s2, mam.Config{}).Archive(ctx, mam.Chat{From: romeo, To: juliet.Bare(), Stanza: mam.Stanza{Start: start, Inner: inner}})
	if err != nil {
		t.Fatal(err)
	}
	if r2.RecipientID == "" {
		t.Fatal("tokens path did not archive")
	}
	norm := func(b []byte, id string) *elem { return parseOne(t, bytes.ReplaceAll(b, []byte(id), []byte("ID"))) }
	if a, b := norm(r1.Deliver.Bytes, r1.RecipientID), norm(encodeStanza(t, r2.Deliver), r2.RecipientID); !reflect.DeepEqual(a, b) {
		t.Errorf("bytes and tokens paths differ:\n%s\n%s", r1.Deliver.Bytes, encodeStanza(t, r2.Deliver))
	}
	if a, b := string(archived(t, s1, juliet)[0].Stanza), string(archived(t, s2, juliet)[0].Stanza); a != b {
		t.Errorf("stored copies differ:\n%s\n%s", a, b)
	}
	msg := parseOne(t, r1.Deliver.Bytes)
	if msg.child("jabber:client", "body").Text != "a & b <3" || msg.Attr["lang"] != "en" {
		t.Errorf("content or xml:lang lost: %s", r1.Deliver.Bytes)
	}
	if k := msg.child("urn:xmpp:omemo:2", "encrypted"); k == nil || len(k.Children) != 1 || k.Children[0].Attr["sid"] != "7" {
		t.Errorf("OMEMO payload mangled: %s", r1.Deliver.Bytes)
	}
}

// retainStore keeps the stanza slices it is given, as a store may.
type retainStore struct {
	mam.Store
	kept [][]byte
}

func (r *retainStore) Append(ctx context.Context, m mam.Message) (mam.Message, error) {
	r.kept = append(r.kept, m.Stanza)
	return r.Store.Append(ctx, m)
}

// The delivered bytes belong to the caller: changing them must not change
// what a store may have kept.
func TestArchiveDeliverIsNotAliased(t *testing.T) {
	for _, who := range []jid.JID{romeo, juliet} {
		s := &retainStore{Store: newStore()}
		setPrefs(t, s, who, always)
		a := mam.NewArchiver(s, mam.Config{})
		res, err := a.Archive(ctx, mam.Chat{From: romeo, To: juliet.Bare(), Stanza: mam.Stanza{Bytes: []byte(chat)}})
		if err != nil || len(s.kept) != 1 {
			t.Fatal(res, err)
		}
		before := string(s.kept[0])
		for i := range res.Deliver.Bytes {
			res.Deliver.Bytes[i] = 'X'
		}
		if after := string(s.kept[0]); after != before {
			t.Errorf("archive of %v: kept stanza changed with Deliver: %s", who, after)
		}
	}
}
