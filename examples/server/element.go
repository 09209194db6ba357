package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"

	"chatbx.eu/privacy/internal/xmlutil"
	"mellium.im/xmlstream"
)

// maxStanzaBytes bounds the character data and attributes of one stanza
// read into memory; a bigger stanza ends the session (policy-violation).
const maxStanzaBytes = 256 << 10

// errStanzaTooBig is returned when a stanza exceeds maxStanzaBytes.
var errStanzaTooBig = errors.New("stanza too big")

// element is one buffered XML element: its start and the tokens inside it,
// without the end element. Tokens are copied on read, so an element may be
// sent to many sessions concurrently.
type element struct {
	start xml.StartElement
	inner []xml.Token
}

// readElement buffers the rest of the element whose start was just read
// from r, which yields the inner tokens (and maybe the end element). The
// element, its own start included, must keep within maxStanzaBytes of
// names, attributes and text (errStanzaTooBig), maxAttrs attributes per
// element (errTooManyAttrs) and maxDepth levels of nesting (errTooDeep);
// every name must be namespace-well-formed (errBadName), and no element
// may carry one attribute twice (errDupAttr).
func readElement(r xml.TokenReader, start xml.StartElement) (element, error) {
	if len(start.Attr) > maxAttrs {
		return element{}, errTooManyAttrs
	}
	if !xmlutil.NamesWellFormed(start) {
		return element{}, errBadName
	}
	if !xmlutil.AttrsUnique(start) {
		return element{}, errDupAttr
	}
	size := startSize(start)
	if size > maxStanzaBytes {
		return element{}, errStanzaTooBig
	}
	e := element{start: start.Copy()}
	depth := 0
	for {
		tok, err := r.Token()
		if tok != nil {
			switch t := tok.(type) {
			case xml.StartElement:
				depth++
				if depth > maxDepth {
					return e, errTooDeep
				}
				if len(t.Attr) > maxAttrs {
					return e, errTooManyAttrs
				}
				if !xmlutil.NamesWellFormed(t) {
					return e, errBadName
				}
				if !xmlutil.AttrsUnique(t) {
					return e, errDupAttr
				}
				size += startSize(t)
			case xml.EndElement:
				if depth == 0 {
					return e, nil // the stanza's own end element
				}
				depth--
			case xml.CharData:
				size += len(t)
			case xml.Comment, xml.ProcInst, xml.Directive:
				return e, errRestrictedXML // not allowed in XMPP
			}
			if size > maxStanzaBytes {
				return e, errStanzaTooBig
			}
			e.inner = append(e.inner, xml.CopyToken(tok))
		}
		if err == io.EOF {
			return e, nil
		}
		if err != nil {
			return e, err
		}
	}
}

// startSize is what a start element counts against maxStanzaBytes.
func startSize(t xml.StartElement) int {
	size := len(t.Name.Local) + 8
	for _, a := range t.Attr {
		size += len(a.Value) + len(a.Name.Local) + len(a.Name.Space) + 4
	}
	return size
}

// attr returns the value of the unqualified attribute name of the start
// element.
func (e element) attr(name string) string {
	for _, a := range e.start.Attr {
		if a.Name.Space == "" && a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// withAttr returns a copy of e whose attribute name is value (removed when
// value is empty). The inner tokens are shared: they are never modified.
func (e element) withAttr(name, value string) element {
	start := xml.StartElement{Name: e.start.Name}
	for _, a := range e.start.Attr {
		if a.Name.Space == "" && a.Name.Local == name {
			continue
		}
		start.Attr = append(start.Attr, a)
	}
	if value != "" {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: name}, Value: value})
	}
	e.start = start
	return e
}

// withInner returns a copy of e with other inner tokens.
func (e element) withInner(inner []xml.Token) element {
	e.start = e.start.Copy()
	e.inner = inner
	return e
}

// payload returns the first child element's start, if any.
func (e element) payload() (xml.StartElement, bool) {
	for _, tok := range e.inner {
		if s, ok := tok.(xml.StartElement); ok {
			return s, true
		}
	}
	return xml.StartElement{}, false
}

// child returns the first direct child named name, as an element.
func (e element) child(name xml.Name) (element, bool) {
	depth := 0
	for i, tok := range e.inner {
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 && t.Name == name {
				c, _ := readElement(&sliceReader{toks: e.inner[i+1:]}, t)
				return c, true
			}
			depth++
		case xml.EndElement:
			depth--
		}
	}
	return element{}, false
}

// children returns the direct child elements.
func (e element) children() []element {
	var out []element
	depth := 0
	for i, tok := range e.inner {
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				c, _ := readElement(&sliceReader{toks: e.inner[i+1:]}, t)
				out = append(out, c)
			}
			depth++
		case xml.EndElement:
			depth--
		}
	}
	return out
}

// text returns the character data directly inside e.
func (e element) text() string {
	var b bytes.Buffer
	depth := 0
	for _, tok := range e.inner {
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 {
				b.Write(t)
			}
		}
	}
	return b.String()
}

// TokenReader returns the whole element (start, inner tokens, end).
func (e element) TokenReader() xml.TokenReader {
	return xmlstream.Wrap(&sliceReader{toks: e.inner}, e.start.Copy())
}

// innerReader returns the inner tokens followed by the end element, the way
// xmpp.Session.Serve hands a stanza's tokens to a handler.
func (e element) innerReader() xml.TokenReader {
	return &sliceReader{toks: append(e.inner[:len(e.inner):len(e.inner)], e.start.End())}
}

// bytes serializes e.
func (e element) bytes() ([]byte, error) {
	var b bytes.Buffer
	enc := xml.NewEncoder(&b)
	r := e.TokenReader()
	for {
		tok, err := r.Token()
		if tok != nil {
			if s, ok := tok.(xml.StartElement); ok {
				tok = stripXMLNS(s)
			}
			if err := enc.EncodeToken(tok); err != nil {
				return nil, err
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if err := enc.Flush(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// parseElement reads one element from serialized XML.
func parseElement(b []byte) (element, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := d.Token()
		if err != nil {
			return element{}, err
		}
		if s, ok := tok.(xml.StartElement); ok {
			return readElement(d, s)
		}
	}
}

// stripXMLNS drops xmlns attributes that duplicate the element's namespace
// (encoding/xml writes the namespace from Name.Space itself).
func stripXMLNS(s xml.StartElement) xml.StartElement {
	if s.Name.Space == "" {
		return s
	}
	out := xml.StartElement{Name: s.Name}
	for _, a := range s.Attr {
		if a.Name.Space == "" && a.Name.Local == "xmlns" {
			continue
		}
		out.Attr = append(out.Attr, a)
	}
	return out
}

// sliceReader yields copies of a slice of tokens.
type sliceReader struct {
	toks []xml.Token
	i    int
}

func (r *sliceReader) Token() (xml.Token, error) {
	if r.i >= len(r.toks) {
		return nil, io.EOF
	}
	tok := r.toks[r.i]
	r.i++
	return xml.CopyToken(tok), nil
}

// readWriter joins a reader over buffered tokens and the session's writer,
// so mux handlers can serve a buffered stanza.
type readWriter struct {
	xml.TokenReader
	xmlstream.Encoder
}

// marshalReader marshals v with encoding/xml and returns its tokens.
func marshalReader(v any) (xml.TokenReader, error) {
	b, err := xml.Marshal(v)
	if err != nil {
		return nil, err
	}
	e, err := parseElement(b)
	if err != nil {
		return nil, err
	}
	return e.TokenReader(), nil
}

// decodePayload unmarshals the IQ payload whose start a mux handler got
// (the rest of it is in r) into v.
func decodePayload(r xml.TokenReader, start *xml.StartElement, v any) error {
	return xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(start.Copy()), r)).Decode(v)
}
