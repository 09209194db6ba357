package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"

	"chatbx.eu/privacy/internal/xmlutil"
)

// Namespaces of server-to-server streams (RFC 6120 § 4.8.3, XEP-0220,
// RFC 6120 § 5 and § 6).
const (
	nsServer       = "jabber:server"
	nsStream       = "http://etherx.jabber.org/streams"
	nsDialback     = "jabber:server:dialback"
	nsDialbackFeat = "urn:xmpp:features:dialback"
	nsTLS          = "urn:ietf:params:xml:ns:xmpp-tls"
	nsStreamErr    = "urn:ietf:params:xml:ns:xmpp-streams"
)

// Errors of the s2s stream layer.
var (
	errS2SNoTLS     = errors.New("s2s: peer offers no STARTTLS")
	errS2SProtocol  = errors.New("s2s: unexpected element")
	errS2SRefused   = errors.New("s2s: peer refused authentication")
	errS2SStreamEnd = errors.New("s2s: peer closed the stream")
)

// s2sStream is one server-to-server XML stream over a connection: our
// own small reader and writer instead of mellium's session, which has no
// server dialback and no server side of SASL EXTERNAL. Reads go through
// limitConn (raw) under TLS; the decoder is replaced at each stream
// restart. Writes are serialized by mu, each with its own deadline.
type s2sStream struct {
	raw  net.Conn   // the TCP connection
	lc   *limitConn // raw with a byte budget
	conn net.Conn   // lc, or TLS over lc
	dec  *xml.Decoder
	id   string // the receiving side's stream id of the current stream

	mu sync.Mutex // serializes writes
}

func newS2SStream(raw net.Conn, budget int64) *s2sStream {
	lc := newLimitConn(raw, budget)
	st := &s2sStream{raw: raw, lc: lc, conn: lc}
	st.restart()
	return st
}

// restart begins reading a new stream on conn (after TLS or SASL).
func (st *s2sStream) restart() {
	st.dec = xml.NewDecoder(st.conn)
	st.dec.Strict = true
}

// writeRaw writes b under the write lock with a deadline of writeTimeout.
func (st *s2sStream) writeRaw(b []byte) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	_ = st.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := st.conn.Write(b)
	return err
}

// writeHeader opens our side of a stream. id is set by the receiving
// side only.
func (st *s2sStream) writeHeader(from, to, id string) error {
	var b bytes.Buffer
	b.WriteString(`<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' version='1.0'`)
	for _, a := range [][2]string{{"from", from}, {"to", to}, {"id", id}} {
		if a[1] == "" {
			continue
		}
		b.WriteString(" " + a[0] + "='")
		_ = xml.EscapeText(&b, []byte(a[1]))
		b.WriteString("'")
	}
	b.WriteString(">")
	return st.writeRaw(b.Bytes())
}

// writeElement serializes e in the jabber:server namespace.
func (st *s2sStream) writeElement(e element) error {
	b, err := toServerNS(e).bytes()
	if err != nil {
		return err
	}
	return st.writeRaw(b)
}

// writeStreamError sends a stream error and closes our stream.
func (st *s2sStream) writeStreamError(se stream.Error) {
	_ = st.writeRaw([]byte(`<stream:error><` + se.Err + ` xmlns='` + nsStreamErr + `'/></stream:error></stream:stream>`))
}

// close ends our stream and the connection.
func (st *s2sStream) close() {
	_ = st.writeRaw([]byte(`</stream:stream>`))
	_ = st.raw.Close()
}

// readHeader reads the peer's stream header and returns its attributes.
func (st *s2sStream) readHeader() (from, to, id string, err error) {
	for {
		tok, err := st.dec.Token()
		if err != nil {
			return "", "", "", err
		}
		switch t := tok.(type) {
		case xml.ProcInst, xml.CharData:
			continue
		case xml.StartElement:
			if t.Name.Space != nsStream || t.Name.Local != "stream" {
				return "", "", "", stream.BadFormat
			}
			if !xmlutil.AttrsUnique(t) {
				return "", "", "", stream.NotWellFormed // e.g. two to='' (errDupAttr)
			}
			e := element{start: t}
			if e.attr("xmlns") != "" && e.attr("xmlns") != nsServer {
				return "", "", "", stream.InvalidNamespace
			}
			return e.attr("from"), e.attr("to"), e.attr("id"), nil
		default:
			return "", "", "", stream.NotWellFormed
		}
	}
}

// next reads the next top-level element of the stream with the byte budget
// reset to budget: whitespace between elements is skipped, the end of the
// peer's stream is errS2SStreamEnd, a stream error is returned as such.
func (st *s2sStream) next(budget int64) (element, error) {
	st.lc.reset(budget)
	for {
		tok, err := st.dec.Token()
		if err != nil {
			if st.lc.exceeded() {
				return element{}, errWireLimit
			}
			return element{}, err
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return element{}, errStreamText
			}
			st.lc.reset(budget)
			continue
		case xml.EndElement:
			return element{}, errS2SStreamEnd
		case xml.StartElement:
			e, err := readElement(st.dec, t)
			if err != nil {
				return element{}, err
			}
			if e.start.Name.Space == nsStream && e.start.Name.Local == "error" {
				return element{}, peerStreamError(e)
			}
			return e, nil
		default:
			return element{}, errRestrictedXML
		}
	}
}

// peerStreamError is the stream error the peer sent in e.
func peerStreamError(e element) error {
	for _, c := range e.children() {
		if c.start.Name.Space == nsStreamErr && c.start.Name.Local != "text" {
			return fmt.Errorf("s2s: peer sent stream error %w", stream.Error{Err: c.start.Name.Local})
		}
	}
	return fmt.Errorf("s2s: peer sent stream error %w", stream.UndefinedCondition)
}

// features reads a stream features element.
func (st *s2sStream) features() (element, error) {
	e, err := st.next(maxNegotiationBytes)
	if err != nil {
		return e, err
	}
	if e.start.Name.Space != nsStream || e.start.Name.Local != "features" {
		return e, fmt.Errorf("%w: %s instead of features", errS2SProtocol, e.start.Name.Local)
	}
	return e, nil
}

// rewriteNS returns the tokens of e with every name in namespace from
// moved to namespace to (jabber:client and jabber:server differ only in
// name, RFC 6120 § 4.8.3).
func rewriteNS(e element, from, to string) element {
	start := e.start.Copy()
	fix := func(s xml.StartElement) xml.StartElement {
		if s.Name.Space == from {
			s.Name.Space = to
		}
		attrs := s.Attr[:0:0]
		for _, a := range s.Attr {
			if a.Name.Space == "" && a.Name.Local == "xmlns" {
				continue // the encoder writes the namespace from Name.Space
			}
			attrs = append(attrs, a)
		}
		s.Attr = attrs
		return s
	}
	start = fix(start)
	inner := make([]xml.Token, len(e.inner))
	for i, tok := range e.inner {
		switch t := tok.(type) {
		case xml.StartElement:
			inner[i] = fix(t.Copy())
		case xml.EndElement:
			if t.Name.Space == from {
				t.Name.Space = to
			}
			inner[i] = t
		default:
			inner[i] = tok
		}
	}
	return element{start: start, inner: inner}
}

// toServerNS is e (a stanza of ours, jabber:client) as sent to a peer.
func toServerNS(e element) element { return rewriteNS(e, stanza.NSClient, nsServer) }

// toClientNS is e (a stanza from a peer, jabber:server) as routed here.
func toClientNS(e element) element { return rewriteNS(e, nsServer, stanza.NSClient) }

// simpleElement builds <name xmlns=space attrs...>text</name>.
func simpleElement(space, local, text string, attrs ...string) element {
	start := xml.StartElement{Name: xml.Name{Space: space, Local: local}}
	for i := 0; i+1 < len(attrs); i += 2 {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: attrs[i]}, Value: attrs[i+1]})
	}
	e := element{start: start}
	if text != "" {
		e.inner = []xml.Token{xml.CharData(text)}
	}
	return e
}

// errIsTimeout reports whether err is a deadline.
func errIsTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
