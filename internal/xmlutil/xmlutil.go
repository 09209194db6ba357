// Package xmlutil reads the content of XML elements from an
// xml.TokenReader: an iterator over an element's children, its text with a
// size bound, and a skip, with or without a bound on nesting. The parsers
// of untrusted stanzas use them, so that each bound is written once.
//
// Every function starts right after an element's start element has been
// read from r and, when it succeeds, stops right after that element's end
// element. They accept a reader that returns a token together with an
// error, as xml.TokenReader allows, and expect it to return its error again
// when called after it, as xml.Decoder and readers ending in io.EOF do.
package xmlutil

import (
	"encoding/xml"
	"errors"
	"io"
	"iter"
)

var (
	// ErrTooLong is returned by ReadText when the element's text exceeds
	// its limit.
	ErrTooLong = errors.New("xmlutil: text too long")

	// ErrNotText is returned by ReadText when the element has a child
	// element.
	ErrNotText = errors.New("xmlutil: element inside a text value")

	// ErrTooDeep is returned by SkipDepth when the element nests deeper
	// than its limit.
	ErrTooDeep = errors.New("xmlutil: elements nested too deeply")
)

// unexpectedEOF turns io.EOF before an element's end into
// io.ErrUnexpectedEOF.
func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Children returns an iterator over the child elements of the element
// whose start element was just read from r. Each iteration yields a
// child's start element; the loop body must read that child through its
// end element (with ReadText, Skip or a nested Children loop) before the
// next iteration. Character data, comments and processing instructions
// between the children are ignored.
//
// The iteration ends without error at the element's end element, or when r
// returns io.EOF (a reader of the element's content alone, such as
// xmlstream.Inner, ends so). Any other error of r is yielded once, with a
// zero start element, and ends it.
func Children(r xml.TokenReader) iter.Seq2[xml.StartElement, error] {
	return func(yield func(xml.StartElement, error) bool) {
		for {
			tok, err := r.Token()
			switch t := tok.(type) {
			case xml.EndElement:
				return
			case xml.StartElement:
				if !yield(t, nil) {
					return
				}
			}
			if err == io.EOF {
				return
			}
			if err != nil {
				yield(xml.StartElement{}, err)
				return
			}
		}
	}
}

// ReadText reads the character data of the element whose start element was
// just read from r, through its end element, and returns it. It returns
// ErrTooLong as soon as the text exceeds limit bytes, ErrNotText for a
// child element, and io.ErrUnexpectedEOF when r ends before the end
// element. Its own buffer never exceeds limit bytes; bounding the size of
// one token is the job of the reader below (an xml.Decoder holds a whole
// character data token). A negative limit is 0.
func ReadText(r xml.TokenReader, limit int) (string, error) {
	limit = max(limit, 0)
	var b []byte
	for {
		tok, err := r.Token()
		switch t := tok.(type) {
		case xml.CharData:
			if len(t) > limit-len(b) {
				return "", ErrTooLong
			}
			b = append(b, t...)
		case xml.StartElement:
			return "", ErrNotText
		case xml.EndElement:
			return string(b), nil
		}
		if err != nil {
			return "", unexpectedEOF(err)
		}
	}
}

// Skip reads through the end element of the element whose start element
// was just read from r, whatever it holds. It returns io.ErrUnexpectedEOF
// when r ends before that end element.
//
// Skip neither recurses nor allocates: it keeps the depth in one integer,
// whatever the nesting. The reader below may still hold one entry per open
// element (an xml.Decoder does, to match end elements), so a parser of
// untrusted input that cannot bound the input's size uses SkipDepth, which
// stops at the first element beyond its limit.
func Skip(r xml.TokenReader) error {
	return skip(r, 0)
}

// SkipDepth is Skip with a bound on nesting: it returns ErrTooDeep as soon
// as it reads an element more than maxDepth levels deep, counting the
// skipped element itself as level 1, and leaves r there. An element of
// maxDepth levels or fewer is skipped as Skip does. A maxDepth below 1 is 1:
// only an element without child elements passes.
func SkipDepth(r xml.TokenReader, maxDepth int) error {
	return skip(r, max(maxDepth, 1))
}

// skip reads through the end of the element just opened; maxDepth 0 means
// no bound.
func skip(r xml.TokenReader, maxDepth int) error {
	for depth := 1; depth > 0; {
		tok, err := r.Token()
		switch tok.(type) {
		case xml.StartElement:
			depth++
			if maxDepth > 0 && depth > maxDepth {
				return ErrTooDeep
			}
		case xml.EndElement:
			depth--
		}
		if err != nil && depth > 0 {
			return unexpectedEOF(err)
		}
	}
	return nil
}
