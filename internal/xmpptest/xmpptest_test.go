package xmpptest_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"chatbx.eu/privacy/internal/xmpptest"
)

// echo answers every IQ with a result holding the text of its payload,
// checking at each call what the driver already wrote.
type echo struct {
	out     *bytes.Buffer
	written string // what out held when the payload had been read
}

func (h *echo) HandleIQ(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	var b strings.Builder
	for {
		tok, err := t.Token()
		if err != nil {
			return err
		}
		if c, ok := tok.(xml.CharData); ok {
			b.Write(c)
		}
		if _, ok := tok.(xml.EndElement); ok {
			break
		}
	}
	_, err := xmlstream.Copy(t, iq.Result(xmlstream.Wrap(xmlstream.Token(xml.CharData(b.String())), xml.StartElement{Name: xml.Name{Space: "urn:example", Local: "echo"}})))
	if h.out != nil {
		h.written = h.out.String()
	}
	return err
}

func TestHandle(t *testing.T) {
	var out bytes.Buffer
	h := &echo{out: &out}
	m := mux.New(stanza.NSClient, mux.IQ(stanza.SetIQ, xml.Name{Space: "urn:example", Local: "echo"}, h))
	err := xmpptest.Handle(t, m, `<?xml version='1.0'?> <iq xmlns='jabber:client' type='set' id='e1'><echo xmlns='urn:example'>hi</echo></iq>`, &out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `id="e1"`) || !strings.Contains(out.String(), ">hi</echo>") {
		t.Fatalf("answer %q", out.String())
	}
	// Flushed token by token: the whole answer was in out before the
	// handler returned.
	if h.written != out.String() {
		t.Errorf("out held %q when the handler returned, want %q", h.written, out.String())
	}

	boom := errors.New("boom")
	err = xmpptest.Handle(t, xmpp.HandlerFunc(func(xmlstream.TokenReadEncoder, *xml.StartElement) error { return boom }), `<iq/>`, io.Discard)
	if !errors.Is(err, boom) {
		t.Errorf("Handle = %v, want the handler's error", err)
	}
}

// TestServeSession runs a real session's Serve loop with the Negotiator:
// the session reads the client's stream, routes each IQ in order, answers
// and ends with the client's stream.
func TestServeSession(t *testing.T) {
	m := mux.New(stanza.NSClient, mux.IQ(stanza.SetIQ, xml.Name{Space: "urn:example", Local: "echo"}, &echo{}))
	out := xmpptest.ServeSession(t, m,
		`<iq type='set' id='e2'><echo xmlns='urn:example'>over a session</echo></iq>`,
		`<iq type='set' id='e3'><echo xmlns='urn:example'>second</echo></iq>`)
	first, second := strings.Index(out, `id="e2"`), strings.Index(out, `id="e3"`)
	if first < 0 || second < first || !strings.Contains(out, ">over a session</echo>") || !strings.Contains(out, ">second</echo>") {
		t.Fatalf("client got %q", out)
	}
	if !strings.HasSuffix(out, "</stream:stream>") {
		t.Errorf("the session did not end its stream: %q", out)
	}
}

func TestNegotiatorNoHeader(t *testing.T) {
	_, err := xmpp.NewSession(context.Background(), jid.MustParse("example.org"), jid.JID{}, struct {
		io.Reader
		io.Writer
	}{strings.NewReader(""), io.Discard}, xmpp.Received, xmpptest.Negotiator)
	if err == nil {
		t.Fatal("a session without a stream header is ready")
	}
}
