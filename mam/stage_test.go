package mam_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"chatbx.eu/privacy/mam"
	"chatbx.eu/privacy/mam/mamtest"
	bolt "go.etcd.io/bbolt"
	"mellium.im/xmpp/stanza"
)

// stageChats is n chat messages from romeo to juliet, bodies m0…m(n-1).
func stageChats(n int) []mam.Chat {
	var cs []mam.Chat
	for i := range n {
		msg := fmt.Sprintf(`<message xmlns='jabber:client' type='chat'><body>m%d</body></message>`, i)
		cs = append(cs, mam.Chat{From: romeo, To: juliet.Bare(), Stanza: mam.Stanza{Bytes: []byte(msg)}})
	}
	return cs
}

// TestStageAllIDsBeforeCommit: with a BoltStore, StageAll returns the
// messages stamped with their archive ids while the commit cannot run (a
// write transaction of the test holds bbolt's writer lock): Done is not
// closed and the archive does not hold them yet. Once the lock is
// released, Done closes, Wait reports no error, and both archives hold the
// batch in order under exactly the ids given in advance.
func TestStageAllIDsBeforeCommit(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "mam.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := mam.NewBoltStore(db, mam.BoltConfig{})
	if err != nil {
		t.Fatal(err)
	}
	setPrefs(t, s, romeo.Bare(), always)
	setPrefs(t, s, juliet, always)
	a := mam.NewArchiver(s, mam.Config{})

	held, err := db.Begin(true) // the commit waits for it
	if err != nil {
		t.Fatal(err)
	}
	cs := stageChats(3)
	st := a.StageAll(ctx, cs)
	var recipientIDs, senderIDs []string
	for i, r := range st.Results {
		if r.RecipientID == "" || r.SenderID == "" {
			t.Fatalf("message %d staged without ids: %+v", i, r)
		}
		ids := parseOne(t, r.Deliver.Bytes).all(stanza.NSSid, "stanza-id")
		if len(ids) != 1 || ids[0].Attr["id"] != r.RecipientID {
			t.Fatalf("message %d delivered as %s before the commit", i, r.Deliver.Bytes)
		}
		recipientIDs = append(recipientIDs, r.RecipientID)
		senderIDs = append(senderIDs, r.SenderID)
	}
	select {
	case <-st.Done():
		t.Fatal("Done closed while the commit could not run")
	default:
	}
	if err := held.Rollback(); err != nil {
		t.Fatal(err)
	}
	// No read of the archive before this point: a bbolt read transaction
	// could wait for the remap of the held write one.
	<-st.Done()
	for i, err := range st.Wait() {
		if err != nil {
			t.Errorf("message %d: %v", i, err)
		}
	}
	for _, arch := range []struct {
		name string
		want []string
		msgs []mam.Message
	}{
		{"juliet", recipientIDs, archived(t, s, juliet)},
		{"romeo", senderIDs, archived(t, s, romeo.Bare())},
	} {
		var got []string
		for _, m := range arch.msgs {
			got = append(got, m.ID)
		}
		if !slices.Equal(got, arch.want) {
			t.Errorf("%s's archive holds %v, want the ids given in advance %v", arch.name, got, arch.want)
		}
	}
}

// TestStageAllOtherStores: a store that cannot take ids in advance (the
// in-memory one) commits in StageAll, whose Staged is done at once, with
// ids in the archive; a message no archive stores has no id.
func TestStageAllOtherStores(t *testing.T) {
	s := mamtest.NewMemStore()
	setPrefs(t, s, juliet, always) // romeo does not archive
	st := mam.NewArchiver(s, mam.Config{}).StageAll(ctx, stageChats(2))
	select {
	case <-st.Done():
	default:
		t.Fatal("Staged of a store without ids in advance not done")
	}
	if errs := st.Wait(); errs[0] != nil || errs[1] != nil {
		t.Fatalf("errors %v", errs)
	}
	msgs := archived(t, s, juliet)
	if len(msgs) != 2 || msgs[0].ID != st.Results[0].RecipientID || msgs[1].ID != st.Results[1].RecipientID || st.Results[0].SenderID != "" {
		t.Fatalf("results %+v, archive %+v", st.Results, msgs)
	}
}
