package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"
)

func newTestStore(t testing.TB) *serverStore {
	t.Helper()
	db, err := openDB(filepath.Join(t.TempDir(), "server.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := newServerStore(db)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestServerStoreHolder: the roster and owned rooms are exported and erased
// with the account; other users' data stays.
func TestServerStoreHolder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newTestStore(t)
	alice := jid.MustParse("alice@localhost")
	for _, it := range []rosterItem{{JID: "bob@localhost", Name: "Bob", Groups: []string{"friends"}}, {JID: "carol@localhost"}} {
		if err := st.setRosterItem("alice", it, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.setRosterItem("bob", rosterItem{JID: "alice@localhost"}, 0); err != nil {
		t.Fatal(err)
	}
	if err := st.saveRoom("alicesroom", roomConfig{Owner: "alice@localhost", Archiving: true}); err != nil {
		t.Fatal(err)
	}
	if err := st.saveRoom("bobsroom", roomConfig{Owner: "bob@localhost"}); err != nil {
		t.Fatal(err)
	}
	if !st.inRoster("alice", jid.MustParse("bob@localhost/phone")) || st.inRoster("alice", jid.MustParse("dave@localhost")) {
		t.Error("inRoster wrong")
	}
	if err := st.removeRosterItem("alice", "carol@localhost"); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := st.Export(ctx, alice, &b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`jid="bob@localhost"`, `name="Bob"`, "<group>friends</group>", `jid="alicesroom"`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("export lacks %s:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "carol") || strings.Contains(b.String(), "bobsroom") {
		t.Errorf("export holds others' data:\n%s", b.String())
	}
	for range 2 { // idempotent
		if err := st.Erase(ctx, alice); err != nil {
			t.Fatal(err)
		}
	}
	if items, _ := st.roster("alice"); len(items) != 0 {
		t.Errorf("roster after erase: %v", items)
	}
	rooms, _ := st.rooms()
	if _, ok := rooms["alicesroom"]; ok {
		t.Error("owned room kept")
	}
	if _, ok := rooms["bobsroom"]; !ok {
		t.Error("bob's room erased")
	}
	if items, _ := st.roster("bob"); len(items) != 1 {
		t.Errorf("bob's roster: %v", items)
	}
}
