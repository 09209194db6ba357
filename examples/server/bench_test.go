package main

import (
	"encoding/xml"
	"fmt"
	"syscall"
	"testing"
	"time"
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

// BenchmarkPipelined measures one sender pipelining chat messages to a
// contact (a window of pipelineWindow messages in flight, the client
// reading as they arrive), archive off, then both users archiving, with
// the server's CPU per message (the process's CPU time: client and server
// share the test binary, so it is an upper bound) reported as cpu-µs/msg:
//
//	go test -run XXX -bench Pipelined -benchtime 5000x -count 6 ./examples/server/
func BenchmarkPipelined(b *testing.B) {
	ts := startTestServer(b)
	ts.Register(b, "alice", "alice password")
	ts.Register(b, "bob", "bob password 1")
	a := ts.Login(b, "alice", "alice password")
	c := ts.Login(b, "bob", "bob password 1")
	run := func(b *testing.B) {
		const msg = `<message to="bob@localhost" type="chat"><body>benchmark message body of a usual length</body></message>`
		credit := make(chan struct{}, pipelineWindow)
		sent := make(chan error, 1)
		n := b.N
		b.ResetTimer()
		cpu0 := processCPU()
		go func() {
			for range n {
				credit <- struct{}{}
				if err := writeElements(a.Session, rawStanza(msg)); err != nil {
					sent <- err
					return
				}
			}
			sent <- nil
		}()
		for range n {
			c.Next(b, isMessage)
			<-credit
		}
		if err := <-sent; err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(n), "cpu-µs/msg")
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msg/s")
	}
	b.Run("plain", run)
	for _, cl := range []*testClient{a, c} {
		cl.IQ(b, `<iq type="set" id="prefs"><prefs xmlns="urn:xmpp:mam:2" default="always"><always/><never/></prefs></iq>`)
	}
	b.Run("archived-twice", run)
}

// pipelineWindow is how many messages BenchmarkPipelined keeps in flight:
// below the test client's buffer, which drops beyond 1,024.
const pipelineWindow = 200

// rawStanza decodes raw XML in the jabber:client namespace.
func rawStanza(raw string) xml.TokenReader { return clientXML(raw) }

// processCPU is the user and system CPU time of this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
