package main

import (
	"bytes"
	"net"
	"sync/atomic"
)

// wsFilter is a client connection whose reads lose the whitespace between
// the top-level elements of the stream (RFC 6120 § 11.7 allows it there)
// while the stream is negotiated.
//
// mellium.im/xmpp v0.22.0 reads each negotiation element with a bare
// Token() call and gives up when that token is character data: a newline
// after the stream header or between <starttls/>, <auth/> and the bind IQ,
// which go-xmpp based clients (go-sendxmpp) send, ends the negotiation. The
// filter works on bytes, below mellium's XML decoder, with a small lexer
// that only tracks the element depth: whitespace at depth 0 and 1 outside
// any tag is dropped, every other byte passes unchanged, so malformed input
// still reaches the decoder and gets its stream error.
//
// The lexer also refuses a tag that names one attribute twice, literally
// (two to='…' in the stream header, two xmlns in the bind IQ): mellium reads
// the stream header, <starttls/> and the bind IQ with its own decoder,
// which accepts duplicates, so readElement's check (xmlutil.AttrsUnique)
// does not see them. Read then returns errDupAttr, and the negotiation
// ends with not-well-formed. A duplicate only after namespace resolution
// (p:a and q:a, p and q bound to one URI) is not seen at this level; the
// elements read by our own features (SASL, registration, XEP-0198) go
// through readElement, which refuses both kinds.
//
// After the client's <starttls/> element the filter turns itself off (the
// bytes that follow are the TLS handshake); the caller wraps the TLS
// connection in a new filter. A comment or DTD (restricted XML, refused by
// the decoder) also turns it off. Off, reads go straight to the connection;
// handleConn turns it off once the session is bound.
type wsFilter struct {
	net.Conn
	off atomic.Bool // reads pass through unchanged

	// The lexer, used by the one reading goroutine only.
	st      wsState
	depth   int
	closing bool   // in an end tag
	slash   bool   // the last byte of the tag was '/'
	quote   byte   // in an attribute value delimited by quote
	named   bool   // the tag's name is complete
	name    []byte // the tag's name, at most maxWSName bytes
	matched int    // bytes of "[CDATA[" or "]]>" or "?>" seen

	attr      []byte // the attribute name being read in a tag
	attrs     []byte // the tag's attribute names so far, each after its length byte
	unchecked bool   // the tag's names outgrew the buffers: not checked
	dup       bool   // a tag named an attribute twice: Read fails
}

// maxWSAttrs bounds the bytes of attribute names the filter keeps per tag
// (a tag with more is not checked for duplicates; mellium's negotiation
// elements have a few short ones).
const maxWSAttrs = 2048

type wsState uint8

const (
	wsText  wsState = iota // character data or between elements
	wsLt                   // after '<'
	wsTag                  // in a start or end tag
	wsPI                   // in <?…?> (the XML declaration)
	wsBang                 // after "<!"
	wsCDATA                // in <![CDATA[…]]>
)

// maxWSName is the longest element name the filter remembers; it needs to
// recognize "stream:stream" and "starttls" only.
const maxWSName = 32

func newWSFilter(c net.Conn) *wsFilter {
	return &wsFilter{Conn: c, name: make([]byte, 0, maxWSName), attr: make([]byte, 0, 32), attrs: make([]byte, 0, 128)}
}

// stop turns the filter off for good.
func (f *wsFilter) stop() { f.off.Store(true) }

func (f *wsFilter) Read(p []byte) (int, error) {
	for {
		if f.off.Load() {
			return f.Conn.Read(p)
		}
		n, err := f.Conn.Read(p)
		w := f.filter(p[:n])
		if f.dup {
			return w, errDupAttr
		}
		// A read of whitespace only is read again rather than returned
		// empty (a reader may give up after many empty reads); the wire
		// budget under the filter bounds how much whitespace that is.
		if w > 0 || n == 0 || err != nil {
			return w, err
		}
	}
}

// filter removes the stream-level whitespace from b in place and returns
// the length of what is left.
func (f *wsFilter) filter(b []byte) int {
	w := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		if f.st == wsText && f.depth <= 1 && isXMLSpace(c) {
			continue
		}
		b[w] = c
		w++
		if f.step(c) {
			f.stop()
			return w + copy(b[w:], b[i+1:])
		}
		if f.dup {
			return w // the rest is not read: the stream ends
		}
	}
	return w
}

// step advances the lexer over c; true when the filter must stop after c.
func (f *wsFilter) step(c byte) bool {
	switch f.st {
	case wsText:
		if c == '<' {
			f.st = wsLt
		}
	case wsLt:
		f.closing, f.slash, f.quote, f.named, f.name = false, false, 0, false, f.name[:0]
		f.attr, f.attrs, f.unchecked = f.attr[:0], f.attrs[:0], false
		switch c {
		case '/':
			f.closing = true
			f.st = wsTag
		case '?':
			f.st, f.matched = wsPI, 0
		case '!':
			f.st, f.matched = wsBang, 0
		default:
			f.st = wsTag
			return f.tag(c)
		}
	case wsTag:
		return f.tag(c)
	case wsPI:
		switch {
		case c == '?':
			f.matched = 1
		case c == '>' && f.matched == 1:
			f.st = wsText
		default:
			f.matched = 0
		}
	case wsBang:
		const open = "[CDATA["
		if c != open[f.matched] {
			return true // a comment or DTD: the decoder refuses it
		}
		if f.matched++; f.matched == len(open) {
			f.st, f.matched = wsCDATA, 0
		}
	case wsCDATA:
		switch {
		case c == ']':
			f.matched = min(f.matched+1, 2)
		case c == '>' && f.matched == 2:
			f.st = wsText
		default:
			f.matched = 0
		}
	}
	return false
}

// tag advances the lexer over c inside a tag.
func (f *wsFilter) tag(c byte) bool {
	if f.quote != 0 {
		if c == f.quote {
			f.quote = 0
		}
		return false
	}
	switch {
	case c == '>':
		f.st = wsText
		return f.endTag()
	case c == '"' || c == '\'':
		f.quote = c
	case f.named && c == '=':
		f.endAttr()
	case isXMLSpace(c) || c == '/':
		f.named = true
	case !f.named && len(f.name) < maxWSName:
		f.name = append(f.name, c)
	case f.named && !f.unchecked:
		f.attr = append(f.attr, c)
	}
	f.slash = c == '/'
	return false
}

// endAttr checks the attribute name just read against the tag's others.
func (f *wsFilter) endAttr() {
	name := f.attr
	f.attr = f.attr[:0]
	if f.unchecked {
		return
	}
	if len(name) > 255 || len(f.attrs)+1+len(name) > maxWSAttrs {
		f.unchecked = true
		return
	}
	for rest := f.attrs; len(rest) > 0; {
		n := int(rest[0])
		if bytes.Equal(rest[1:1+n], name) {
			f.dup = true
			return
		}
		rest = rest[1+n:]
	}
	f.attrs = append(append(f.attrs, byte(len(name))), name...)
}

// endTag updates the depth at the end of a tag; true after the client's
// <starttls/> (its end at depth 1).
func (f *wsFilter) endTag() bool {
	local := f.name
	if i := bytes.IndexByte(local, ':'); i >= 0 {
		local = local[i+1:]
	}
	switch {
	case f.closing:
		f.depth = max(0, f.depth-1)
	case f.slash: // empty element: the depth is unchanged
	case f.depth <= 1 && string(local) == "stream":
		f.depth = 1 // a stream header, the first or a restart
		return false
	default:
		f.depth++
		return false
	}
	return f.depth == 1 && string(local) == "starttls"
}

func isXMLSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
