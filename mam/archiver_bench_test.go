package mam_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"testing"
	"time"

	"chatbx.eu/privacy/mam"
	"mellium.im/xmlstream"
)

// benchStanza is a typical OMEMO chat message (~1 KiB).
var benchStanza = []byte(`<message xmlns='jabber:client' type='chat' id='8a54s' to='juliet@example.org'>` +
	`<body>I sent you an OMEMO encrypted message but your client doesn't seem to support that.</body>` +
	`<encrypted xmlns='urn:xmpp:omemo:2'><header sid='27183'><keys jid='juliet@example.org'>` +
	`<key rid='31415'>` + string(bytes.Repeat([]byte("QUFBQUFB"), 20)) + `</key></keys>` +
	`<keys jid='romeo@example.org'><key rid='1'>` + string(bytes.Repeat([]byte("QkJCQkJC"), 20)) + `</key></keys></header>` +
	`<payload>` + string(bytes.Repeat([]byte("Q0NDQ0ND"), 40)) + `</payload></encrypted>` +
	`<stanza-id xmlns='urn:xmpp:sid:0' by='juliet@example.org' id='FORGED'/>` +
	`<origin-id xmlns='urn:xmpp:sid:0' id='origin-1'/><store xmlns='urn:xmpp:hints'/></message>`)

// BenchmarkArchive measures the Archiver's hot path against the floor of
// any XML-aware archiver: decoding every token of the same stanza
// (Baseline/decode), and decoding plus re-encoding it with encoding/xml
// (Baseline/decode+encode).
func BenchmarkArchive(b *testing.B) {
	b.Run("Baseline/decode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(benchStanza)))
		for b.Loop() {
			d := xml.NewDecoder(bytes.NewReader(benchStanza))
			for {
				if _, err := d.Token(); err == io.EOF {
					break
				} else if err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("Baseline/decode+encode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(benchStanza)))
		var out bytes.Buffer
		for b.Loop() {
			out.Reset()
			d := xml.NewDecoder(bytes.NewReader(benchStanza))
			e := xml.NewEncoder(&out)
			if _, err := xmlstream.Copy(e, d); err != nil {
				b.Fatal(err)
			}
			e.Flush()
		}
	})
	b.Run("NotArchived", func(b *testing.B) {
		s := newStore() // nobody opted in: parse, strip, re-serialize, two prefs lookups
		a := mam.NewArchiver(s, mam.Config{})
		b.ReportAllocs()
		b.SetBytes(int64(len(benchStanza)))
		for b.Loop() {
			if _, err := a.Archive(ctx, mam.Chat{From: romeo, To: juliet.Bare(), Stanza: mam.Stanza{Bytes: benchStanza}}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ArchivedTwice", func(b *testing.B) {
		s := newStore() // both archives store it, deliver is stamped
		setPrefs(b, s, romeo, always)
		setPrefs(b, s, juliet, always)
		a := mam.NewArchiver(discardStore{s}, mam.Config{})
		b.ReportAllocs()
		b.SetBytes(int64(len(benchStanza)))
		for b.Loop() {
			if _, err := a.Archive(ctx, mam.Chat{From: romeo, To: juliet.Bare(), Stanza: mam.Stanza{Bytes: benchStanza}}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkArchiveTokens measures the call a mellium server makes: the
// message held as tokens in, the message to deliver as tokens out (before
// Stanza, this meant parsing the delivered bytes again).
func BenchmarkArchiveTokens(b *testing.B) {
	toks, ok := tokensOf(b, benchStanza)
	if !ok {
		b.Fatal("benchStanza does not decode")
	}
	for _, bc := range []struct {
		name string
		opt  bool
	}{{"NotArchived", false}, {"ArchivedTwice", true}} {
		b.Run(bc.name, func(b *testing.B) {
			s := newStore()
			if bc.opt {
				setPrefs(b, s, romeo, always)
				setPrefs(b, s, juliet, always)
			}
			a := mam.NewArchiver(discardStore{s}, mam.Config{})
			b.ReportAllocs()
			b.SetBytes(int64(len(benchStanza)))
			for b.Loop() {
				if _, err := a.Archive(ctx, mam.Chat{From: romeo, To: juliet.Bare(), Stanza: toks}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// discardStore drops appended messages, so that benchmarks measure the
// Archiver and not a store.
type discardStore struct{ mam.Store }

func (discardStore) Append(_ context.Context, m mam.Message) (mam.Message, error) {
	m.ID = "0123456789abcdefghijkl"
	return m, nil
}

// BenchmarkArchiveRatio interleaves the baseline (decoding every token of
// the stanza) and Archive (both archives storing, into a discarding store)
// in each iteration and reports their time ratio, which stays meaningful on
// a busy machine where absolute figures drift.
func BenchmarkArchiveRatio(b *testing.B) {
	s := newStore()
	setPrefs(b, s, romeo, always)
	setPrefs(b, s, juliet, always)
	a := mam.NewArchiver(discardStore{s}, mam.Config{})
	var base, arch time.Duration
	for b.Loop() {
		t0 := time.Now()
		d := xml.NewDecoder(bytes.NewReader(benchStanza))
		for {
			if _, err := d.Token(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		if _, err := a.Archive(ctx, mam.Chat{From: romeo, To: juliet.Bare(), Stanza: mam.Stanza{Bytes: benchStanza}}); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		base += t1.Sub(t0)
		arch += t2.Sub(t1)
	}
	b.ReportMetric(float64(arch)/float64(base), "x-decode")
}
