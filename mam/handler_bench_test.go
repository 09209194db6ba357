package mam_test

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"time"

	"chatbx.eu/privacy/mam"
	"mellium.im/xmlstream"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"
)

// BenchmarkHandlerQuery measures answering a query for the last page of 50
// through mellium's mux, results and fin encoded with encoding/xml, against
// the floor of any token-based handler in the same iteration: the store
// call for the same page plus decoding and re-encoding its 50 stored
// stanzas. It reports the ratio (x-floor).
func BenchmarkHandlerQuery(b *testing.B) {
	s := newStore()
	setPrefs(b, s, juliet, always)
	a := mam.NewArchiver(s, mam.Config{Now: clock()})
	for range 1000 {
		if _, err := a.Archive(ctx, mam.Chat{From: romeo, To: juliet.Bare(), Stanza: mam.Stanza{Bytes: benchStanza}}); err != nil {
			b.Fatal(err)
		}
	}
	m := mux.New(stanza.NSClient, mam.Handle(mam.NewHandler(s, mam.Config{})))
	in := iq("set", "", `<query xmlns='urn:xmpp:mam:2' queryid='b'><set xmlns='http://jabber.org/protocol/rsm'><max>50</max><before/></set></query>`)
	var base, full time.Duration
	for b.Loop() {
		t0 := time.Now()
		page, err := s.Query(ctx, juliet.Bare(), mam.Query{Max: 50, Last: true})
		if err != nil {
			b.Fatal(err)
		}
		for _, msg := range page.Messages {
			e := xml.NewEncoder(io.Discard)
			if _, err := xmlstream.Copy(e, xml.NewDecoder(bytes.NewReader(msg.Stanza))); err != nil {
				b.Fatal(err)
			}
			e.Flush()
		}
		t1 := time.Now()
		d := xml.NewDecoder(strings.NewReader(in))
		tok, _ := d.Token()
		start := tok.(xml.StartElement)
		e := xml.NewEncoder(io.Discard)
		if err := m.HandleXMPP(struct {
			xml.TokenReader
			xmlstream.Encoder
		}{d, e}, &start); err != nil {
			b.Fatal(err)
		}
		e.Flush()
		t2 := time.Now()
		base += t1.Sub(t0)
		full += t2.Sub(t1)
	}
	b.ReportMetric(float64(full)/float64(base), "x-floor")
	b.ReportMetric(float64(full)/float64(b.N)/50, "ns/result")
}
