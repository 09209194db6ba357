package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
)

// TestPersonalStores: the stores of private XML, vCards and offline
// messages keep users apart, enforce their limits in the store (not only
// in the handlers), expire offline messages from the oldest and erase
// idempotently.
func TestPersonalStores(t *testing.T) {
	db, err := openDB(filepath.Join(t.TempDir(), "server.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	alice, bob := jid.MustParse("alice@localhost"), jid.MustParse("bob@localhost")

	priv, err := newPrivateStore(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := priv.set("alice", map[string][]byte{"urn:a": []byte(`<a xmlns="urn:a"/>`)}); err != nil {
		t.Fatal(err)
	}
	if v, _ := priv.get("bob", "urn:a"); v != nil {
		t.Fatal("bob reads alice's private XML")
	}
	if err := priv.set("alice", map[string][]byte{"urn:b": make([]byte, maxPrivateNSBytes+1)}); !errors.Is(err, errPrivateTooBig) {
		t.Errorf("too big: %v", err)
	}
	var out bytes.Buffer
	if err := priv.Export(ctx, alice, &out); err != nil || !strings.Contains(out.String(), `<a xmlns="urn:a"/>`) {
		t.Errorf("export %q, %v", out.String(), err)
	}
	for range 2 {
		if err := priv.Erase(ctx, alice); err != nil {
			t.Fatal(err)
		}
	}
	if v, _ := priv.get("alice", "urn:a"); v != nil {
		t.Error("private XML survives Erase")
	}
	if got := privateFileName("http://x/y:z.a"); got != "http%3A%2F%2Fx%2Fy%3Az.a" {
		t.Errorf("privateFileName = %q", got)
	}
	if got := privateFileName(".."); got != "%2E." {
		t.Errorf("privateFileName(..) = %q", got)
	}

	vc, err := newVCardStore(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := vc.set("alice", []byte("<vCard/>"), "abc"); err != nil {
		t.Fatal(err)
	}
	if err := vc.set("bob", make([]byte, maxVCardBytes+1), ""); !errors.Is(err, errVCardTooBig) {
		t.Errorf("too big: %v", err)
	}
	for range 2 {
		if err := vc.Erase(ctx, alice); err != nil {
			t.Fatal(err)
		}
	}
	if v, _ := vc.get("alice"); v != nil || vc.photoHash("alice") != "" {
		t.Error("vCard survives Erase")
	}

	off, err := newOfflineStore(db)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	yes := func() bool { return true }
	for i := range 3 {
		if err := off.put("bob", t0.Add(time.Duration(i)*time.Hour), []byte{byte('a' + i)}, 3, 100, yes); err != nil {
			t.Fatal(err)
		}
	}
	if err := off.put("bob", t0, []byte("d"), 3, 100, yes); !errors.Is(err, errOfflineFull) {
		t.Errorf("over the count: %v", err)
	}
	if err := off.put("alice", t0, make([]byte, 101), 3, 100, yes); !errors.Is(err, errOfflineFull) {
		t.Errorf("over the bytes: %v", err)
	}
	if err := off.put("alice", t0, []byte("x"), 3, 100, func() bool { return false }); !errors.Is(err, errOfflineRefused) {
		t.Errorf("refused account: %v", err)
	}
	if n, err := off.Expire(ctx, t0.Add(90*time.Minute)); n != 2 || err != nil {
		t.Errorf("Expire: %d, %v", n, err)
	}
	msgs, _ := off.list("bob", 10)
	if len(msgs) != 1 || string(msgs[0].xml) != "c" || !msgs[0].at.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("after expiry: %+v", msgs)
	}
	for range 2 {
		if err := off.Erase(ctx, bob); err != nil {
			t.Fatal(err)
		}
	}
	if msgs, _ := off.list("bob", 10); len(msgs) != 0 {
		t.Error("offline messages survive Erase")
	}
}
