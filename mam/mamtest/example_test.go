package mamtest_test

import (
	"context"
	"fmt"
	"time"

	"chatbx.eu/privacy/mam"
	"chatbx.eu/privacy/mam/mamtest"
	"mellium.im/xmpp/jid"
)

// A MemStore stands in for a real Store in tests of code that archives or
// queries messages.
func ExampleNewMemStore() {
	ctx := context.Background()
	store := mamtest.NewMemStore()
	alice := jid.MustParse("alice@example.org")
	bob := jid.MustParse("bob@example.org/phone")
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range 3 {
		m := mam.Message{Archive: alice, With: bob, Time: t0.Add(time.Duration(i) * time.Minute),
			Stanza: fmt.Appendf(nil, "<message><body>%d</body></message>", i)}
		if _, err := store.Append(ctx, m); err != nil {
			panic(err)
		}
	}
	page, err := store.Query(ctx, alice, mam.Query{With: bob.Bare(), Max: 2})
	if err != nil {
		panic(err)
	}
	for _, m := range page.Messages {
		fmt.Printf("%s %s\n", m.Time.Format("15:04"), m.Stanza)
	}
	fmt.Println("count", page.Count, "complete", page.Complete)
	// Output:
	// 12:00 <message><body>0</body></message>
	// 12:01 <message><body>1</body></message>
	// count 3 complete false
}
