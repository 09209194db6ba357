package mam_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"chatbx.eu/privacy/mam"
	bolt "go.etcd.io/bbolt"
	"mellium.im/xmpp/jid"
)

// A BoltStore keeps archives in a bbolt file that the integrator opens;
// pages are read forwards with After and backwards with Before or Last.
func ExampleNewBoltStore() {
	dir, err := os.MkdirTemp("", "mam-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	db, err := bolt.Open(filepath.Join(dir, "mam.db"), 0o600, nil)
	if err != nil {
		panic(err)
	}
	defer db.Close()
	store, err := mam.NewBoltStore(db, mam.BoltConfig{})
	if err != nil {
		panic(err)
	}

	ctx := context.Background()
	juliet := jid.MustParse("juliet@example.org")
	romeo := jid.MustParse("romeo@example.org/balcony")
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i, body := range []string{"hi", "how are you?", "fine", "bye"} {
		_, err := store.Append(ctx, mam.Message{
			Archive: juliet,
			With:    romeo,
			Time:    t0.Add(time.Duration(i) * time.Minute),
			Stanza:  fmt.Appendf(nil, "<message xmlns='jabber:client' type='chat'><body>%s</body></message>", body),
		})
		if err != nil {
			panic(err)
		}
	}

	// The last page of two, as a client opening a conversation asks for it.
	page, err := store.Query(ctx, juliet, mam.Query{With: romeo.Bare(), Max: 2, Last: true})
	if err != nil {
		panic(err)
	}
	for _, m := range page.Messages {
		fmt.Println(m.Time.Format("15:04"), string(m.Stanza[len("<message xmlns='jabber:client' type='chat'>"):]))
	}
	fmt.Println("count", page.Count, "first index", page.FirstIndex, "complete", page.Complete)

	// Retention drops what is older than the cutoff, oldest first.
	removed, err := store.Expire(ctx, t0.Add(2*time.Minute))
	if err != nil {
		panic(err)
	}
	fmt.Println("expired", removed)
	// Output:
	// 12:02 <body>fine</body></message>
	// 12:03 <body>bye</body></message>
	// count 4 first index 2 complete false
	// expired 2
}
