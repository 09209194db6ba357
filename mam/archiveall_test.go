package mam_test

import (
	"fmt"
	"testing"

	"chatbx.eu/privacy/mam"
	"mellium.im/xmpp/stanza"
)

// TestArchiveAll: ArchiveAll answers each message as Archive would (ids,
// stamps, a malformed or unarchivable message in the middle) and stores
// the batch in the order given, in both archives, over every store.
func TestArchiveAll(t *testing.T) { forEachStore(t, testArchiveAll) }

func testArchiveAll(t *testing.T, newStore func() mam.Store) {
	s := newStore()
	setPrefs(t, s, romeo.Bare(), always)
	setPrefs(t, s, juliet, always)
	a := mam.NewArchiver(s, mam.Config{}) // one clock reading for all: order by arrival
	var cs []mam.Chat
	for i := range 6 {
		msg := fmt.Sprintf(`<message xmlns='jabber:client' type='chat'><body>m%d</body></message>`, i)
		switch i {
		case 2:
			msg = `<presence xmlns='jabber:client'/>` // not a message
		case 4:
			msg = `<message xmlns='jabber:client' type='chat'><body>m4</body><no-store xmlns='urn:xmpp:hints'/></message>`
		}
		cs = append(cs, mam.Chat{From: romeo, To: juliet.Bare(), Stanza: mam.Stanza{Bytes: []byte(msg)}})
	}
	res, errs := a.ArchiveAll(ctx, cs)
	if len(res) != len(cs) || len(errs) != len(cs) {
		t.Fatalf("%d results, %d errors for %d messages", len(res), len(errs), len(cs))
	}
	var wantBodies []string
	var recipientIDs, senderIDs []string
	for i, r := range res {
		switch i {
		case 2:
			if errs[i] == nil || !r.Deliver.IsZero() {
				t.Errorf("message %d (not a message): %+v, %v", i, r, errs[i])
			}
			continue
		case 4:
			if errs[i] != nil || r.SenderID != "" || r.RecipientID != "" || r.Deliver.IsZero() {
				t.Errorf("message %d (no-store): %+v, %v", i, r, errs[i])
			}
			continue
		}
		if errs[i] != nil || r.SenderID == "" || r.RecipientID == "" {
			t.Fatalf("message %d: %+v, %v", i, r, errs[i])
		}
		ids := parseOne(t, r.Deliver.Bytes).all(stanza.NSSid, "stanza-id")
		if len(ids) != 1 || ids[0].Attr["id"] != r.RecipientID || ids[0].Attr["by"] != juliet.Bare().String() {
			t.Errorf("message %d delivered as %s", i, r.Deliver.Bytes)
		}
		wantBodies = append(wantBodies, fmt.Sprintf("m%d", i))
		recipientIDs = append(recipientIDs, r.RecipientID)
		senderIDs = append(senderIDs, r.SenderID)
	}
	for _, arch := range []struct {
		name string
		ids  []string
		msgs []mam.Message
	}{
		{"juliet", recipientIDs, archived(t, s, juliet)},
		{"romeo", senderIDs, archived(t, s, romeo.Bare())},
	} {
		if len(arch.msgs) != len(wantBodies) {
			t.Fatalf("%s's archive holds %d messages, want %d", arch.name, len(arch.msgs), len(wantBodies))
		}
		for i, m := range arch.msgs {
			if m.ID != arch.ids[i] {
				t.Errorf("%s's archive, position %d: id %s, want %s (order of the batch)", arch.name, i, m.ID, arch.ids[i])
			}
			if b := parseOne(t, m.Stanza).child("jabber:client", "body"); b == nil || b.Text != wantBodies[i] {
				t.Errorf("%s's archive, position %d: %s, want body %s", arch.name, i, m.Stanza, wantBodies[i])
			}
		}
	}

	// A store failure fails each message as Archive would, delivering it
	// unstamped.
	fres, ferrs := mam.NewArchiver(failStore{s}, mam.Config{}).ArchiveAll(ctx, cs[:2])
	for i := range fres {
		if ferrs[i] == nil || fres[i].RecipientID != "" || fres[i].Deliver.IsZero() {
			t.Errorf("failing store, message %d: %+v, %v", i, fres[i], ferrs[i])
		}
	}
}
