package mam

import (
	"encoding/xml"
	"strconv"
	"unicode/utf8"
)

// xmlWriter serializes tokens as produced by xml.Decoder.Token (names with
// resolved namespaces) into canonical XML: one xmlns declaration where the
// default namespace changes, xml:lang kept, other namespaced attributes
// given generated prefixes, comments and processing instructions dropped.
// encoding/xml's Encoder cannot round-trip decoder tokens (it duplicates
// xmlns attributes and mangles prefixes), hence this writer.
type xmlWriter struct {
	buf []byte
	ns  []string // default namespace of each open element
}

func (w *xmlWriter) start(t xml.StartElement) {
	parent := ""
	if n := len(w.ns); n > 0 {
		parent = w.ns[n-1]
	}
	space := t.Name.Space
	if space == "" {
		space = parent
	}
	w.buf = append(w.buf, '<')
	w.buf = append(w.buf, t.Name.Local...)
	if space != parent || (len(w.ns) == 0 && space != "") {
		w.buf = append(w.buf, ` xmlns="`...)
		w.buf = appendEscaped(w.buf, []byte(space), true)
		w.buf = append(w.buf, '"')
	}
	prefixes := 0
	for _, a := range t.Attr {
		if a.Name.Local == "" || a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
			continue
		}
		w.buf = append(w.buf, ' ')
		switch a.Name.Space {
		case "":
		case "xml", nsXML:
			w.buf = append(w.buf, "xml:"...)
		default:
			p := "a" + strconv.Itoa(prefixes)
			prefixes++
			w.buf = append(w.buf, "xmlns:"...)
			w.buf = append(w.buf, p...)
			w.buf = append(w.buf, `="`...)
			w.buf = appendEscaped(w.buf, []byte(a.Name.Space), true)
			w.buf = append(w.buf, `" `...)
			w.buf = append(w.buf, p...)
			w.buf = append(w.buf, ':')
		}
		w.buf = append(w.buf, a.Name.Local...)
		w.buf = append(w.buf, `="`...)
		w.buf = appendEscaped(w.buf, []byte(a.Value), true)
		w.buf = append(w.buf, '"')
	}
	w.buf = append(w.buf, '>')
	w.ns = append(w.ns, space)
}

func (w *xmlWriter) end(t xml.EndElement) {
	w.buf = append(w.buf, "</"...)
	w.buf = append(w.buf, t.Name.Local...)
	w.buf = append(w.buf, '>')
	if n := len(w.ns); n > 0 {
		w.ns = w.ns[:n-1]
	}
}

// appendEscaped appends s with XML escaping; invalid UTF-8 and characters
// not allowed in XML become U+FFFD.
func appendEscaped(buf, s []byte, attr bool) []byte {
	for len(s) > 0 {
		r, size := utf8.DecodeRune(s)
		switch {
		case r == '&':
			buf = append(buf, "&amp;"...)
		case r == '<':
			buf = append(buf, "&lt;"...)
		case r == '>':
			buf = append(buf, "&gt;"...)
		case r == '"' && attr:
			buf = append(buf, "&quot;"...)
		case r == '\'' && attr:
			buf = append(buf, "&apos;"...)
		case r == '\n' && attr:
			buf = append(buf, "&#xA;"...)
		case r == '\t' && attr:
			buf = append(buf, "&#x9;"...)
		case r == '\r':
			buf = append(buf, "&#xD;"...)
		case r == utf8.RuneError && size == 1, !isXMLChar(r):
			buf = append(buf, "\uFFFD"...)
		default:
			buf = append(buf, s[:size]...)
		}
		s = s[size:]
	}
	return buf
}

func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		(r >= 0x20 && r <= 0xD7FF) ||
		(r >= 0xE000 && r <= 0xFFFD) ||
		(r >= 0x10000 && r <= 0x10FFFF)
}

// startAttr returns the value of the attribute local (no namespace).
func startAttr(s xml.StartElement, local string) (string, bool) {
	for _, a := range s.Attr {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value, true
		}
	}
	return "", false
}
