package main

import (
	"fmt"
	"testing"
)

// BenchmarkRoute measures one stanza hop through the server against the
// baseline of one IQ round trip (ping) on the same TLS connection, so the
// figures compare as ratios on any machine:
//
//	go test -run XXX -bench Route -benchtime 2000x ./examples/server/
func BenchmarkRoute(b *testing.B) {
	ts := startTestServer(b)
	ts.Register(b, "alice", "alice password")
	ts.Register(b, "bob", "bob password 1")
	a := ts.Login(b, "alice", "alice password")
	c := ts.Login(b, "bob", "bob password 1")

	b.Run("ping-baseline", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			a.IQ(b, fmt.Sprintf(`<iq type="get" id="p%d" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`, i))
		}
	})
	hop := func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			a.Send(b, `<message to="bob@localhost" type="chat"><body>benchmark message body of a usual length</body></message>`)
			c.Next(b, isMessage)
		}
	}
	b.Run("message", hop)
	for _, cl := range []*testClient{a, c} {
		cl.IQ(b, `<iq type="set" id="prefs"><prefs xmlns="urn:xmpp:mam:2" default="always"><always/><never/></prefs></iq>`)
	}
	b.Run("message-archived-twice", hop)
}
