// Package xmpptest holds what the library's tests need to drive a handler
// the way a mellium server does: a negotiator that makes a real
// xmpp.Session ready without TLS or SASL, the client's stream header, and
// drivers that pass one stanza through a handler, or a few through a real
// session, and return the answer. Only tests import it.
package xmpptest

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"
)

// StreamHeader is the stream header a client sends to open a jabber:client
// stream to example.org, ready to be written before the stanzas of a test.
const StreamHeader = `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.org' version='1.0'>`

// Negotiator is an xmpp.Negotiator for the receiving side of a session:
// it reads the client's stream header and declares the session ready,
// without TLS, SASL or any stream feature, and without writing a header
// back. It is enough to run a real session's Serve loop in a test; a
// reader that ends or fails before a start element is its error.
func Negotiator(_ context.Context, in, out *stream.Info, s *xmpp.Session, _ interface{}) (xmpp.SessionState, io.ReadWriter, interface{}, error) {
	r := s.TokenReader()
	defer r.Close()
	for {
		tok, err := r.Token()
		if se, ok := tok.(xml.StartElement); ok {
			if err := in.FromStartElement(se); err != nil {
				return 0, nil, nil, err
			}
			out.XMLNS = stanza.NSClient
			return xmpp.Ready, nil, nil, nil
		}
		if err != nil {
			return 0, nil, nil, err
		}
	}
}

// Handle passes the first element of in, a stanza as XML text, to h as a
// session's Serve loop does: h reads the rest of the stanza from the same
// decoder and writes its answer to out, which is flushed after every token,
// so that out holds everything h wrote at each moment. Handle returns h's
// error; it ends the test with t.Fatal when in has no start element or out
// fails.
func Handle(t testing.TB, h xmpp.Handler, in string, out io.Writer) error {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(in))
	var start xml.StartElement
	for {
		tok, err := d.Token()
		if err != nil {
			t.Fatalf("xmpptest: no stanza in %q: %v", in, err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			start = se
			break
		}
	}
	e := flushing{xml.NewEncoder(out)}
	herr := h.HandleXMPP(struct {
		xml.TokenReader
		flushing
	}{d, e}, &start)
	if err := e.Flush(); err != nil {
		t.Fatalf("xmpptest: writing the answer: %v", err)
	}
	return herr
}

// ServeSession runs h in the Serve loop of a real mellium session on the
// receiving side, server example.org and client juliet@example.org/balcony,
// over an in-memory connection with the Negotiator. The client sends
// StreamHeader, the stanzas (XML text) and the end of its stream; the
// session answers and ends. ServeSession returns what the server wrote,
// and ends the test with t.Fatal when the session fails. A deadline of one
// minute on the connection guards against a hang; it measures nothing.
func ServeSession(t testing.TB, h xmpp.Handler, stanzas ...string) string {
	t.Helper()
	toServer, fromClient := net.Pipe()
	fromServer, toClient := net.Pipe()
	deadline := time.Now().Add(time.Minute)
	for _, c := range []net.Conn{toServer, fromClient, fromServer, toClient} {
		c.SetDeadline(deadline)
		defer c.Close()
	}
	var out bytes.Buffer
	read := make(chan struct{})
	go func() {
		io.Copy(&out, toClient)
		close(read)
	}()
	go func() {
		io.WriteString(fromClient, StreamHeader)
		for _, st := range stanzas {
			io.WriteString(fromClient, st)
		}
		io.WriteString(fromClient, `</stream:stream>`)
	}()
	sess, err := xmpp.NewSession(context.Background(), jid.MustParse("example.org"), jid.MustParse("juliet@example.org/balcony"), struct {
		io.Reader
		io.Writer
	}{toServer, fromServer}, xmpp.Received, Negotiator)
	if err != nil {
		t.Fatalf("xmpptest: session: %v", err)
	}
	if err := sess.Serve(h); err != nil && err != io.EOF {
		t.Fatalf("xmpptest: Serve: %v", err)
	}
	fromServer.Close()
	toServer.Close()
	<-read
	return out.String()
}

// flushing is an xmlstream.Encoder that flushes after every token.
type flushing struct{ *xml.Encoder }

func (f flushing) EncodeToken(tok xml.Token) error {
	if err := f.Encoder.EncodeToken(tok); err != nil {
		return err
	}
	return f.Encoder.Flush()
}
