package account

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"chatbx.eu/privacy/internal/xmlutil"
)

// Namespaces of XEP-0077: In-Band Registration.
const (
	// NS is the namespace of registration queries (jabber:iq:register),
	// also the disco#info feature.
	NS = "jabber:iq:register"
	// NSFeature is the namespace of the stream feature
	// <register xmlns='http://jabber.org/features/iq-register'/>, which a
	// server that offers in-band registration lists before authentication.
	NSFeature = "http://jabber.org/features/iq-register"
)

// maxFieldLen bounds the text of one query field, in bytes; longer values
// are a malformed query (the Manager's own limits are lower).
const maxFieldLen = 4096

// maxQueryDepth bounds element nesting inside a query, in levels below the
// <query/> element.
const maxQueryDepth = 16

// Query is a parsed XEP-0077 <query xmlns='jabber:iq:register'/> payload.
// Only the fields this package acts on are kept; others (email, name, data
// forms…) are ignored: no personal data beyond a username is asked for.
// A server that wants to know what a request asked (examples/server logs
// the name of a new account) parses it with ParseQuery beside the Handler.
type Query struct {
	Username    string
	Password    string
	HasUsername bool // a <username/> element was present (maybe empty)
	HasPassword bool // a <password/> element was present (maybe empty)
	Remove      bool // <remove/>: cancel the registration
}

// ParseQuery reads one <query xmlns='jabber:iq:register'> element, start to
// end, from r. Duplicate or nested username/password fields, text over 4 KiB
// per field, nesting deeper than 16 levels and truncated input are errors
// wrapping ErrBadRequest. ParseQuery never panics.
func ParseQuery(r xml.TokenReader) (Query, error) {
	var q Query
	r = &splitEOF{r: r}
	start, err := firstStart(r)
	if err != nil {
		return q, err
	}
	if start.Name != (xml.Name{Space: NS, Local: "query"}) {
		return q, fmt.Errorf("%w: not a %s query", ErrBadRequest, NS)
	}
	for {
		tok, err := r.Token()
		if err != nil {
			return q, truncated(err)
		}
		switch tok := tok.(type) {
		case xml.EndElement:
			return q, nil
		case xml.StartElement:
			if tok.Name.Space != NS {
				if err := skip(r); err != nil {
					return q, err
				}
				continue
			}
			switch tok.Name.Local {
			case "username", "password":
				isUser := tok.Name.Local == "username"
				if (isUser && q.HasUsername) || (!isUser && q.HasPassword) {
					return q, fmt.Errorf("%w: duplicate <%s/>", ErrBadRequest, tok.Name.Local)
				}
				text, err := xmlutil.ReadText(r, maxFieldLen)
				if err != nil {
					return q, parseErr(err)
				}
				if isUser {
					q.Username, q.HasUsername = text, true
				} else {
					q.Password, q.HasPassword = text, true
				}
			case "remove":
				q.Remove = true
				if err := skip(r); err != nil {
					return q, err
				}
			default:
				if err := skip(r); err != nil {
					return q, err
				}
			}
		}
	}
}

func firstStart(r xml.TokenReader) (xml.StartElement, error) {
	for {
		tok, err := r.Token()
		if tok != nil {
			switch tok := tok.(type) {
			case xml.StartElement:
				return tok, nil
			case xml.CharData:
				if strings.TrimSpace(string(tok)) != "" {
					return xml.StartElement{}, fmt.Errorf("%w: text before the query", ErrBadRequest)
				}
			case xml.EndElement:
				return xml.StartElement{}, fmt.Errorf("%w: no query element", ErrBadRequest)
			}
		}
		if err != nil {
			return xml.StartElement{}, truncated(err)
		}
	}
}

func truncated(err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: truncated query", ErrBadRequest)
	}
	return fmt.Errorf("%w: %v", ErrBadRequest, err)
}

// parseErr turns an error of internal/xmlutil into one wrapping
// ErrBadRequest.
func parseErr(err error) error {
	switch {
	case errors.Is(err, xmlutil.ErrTooLong):
		return fmt.Errorf("%w: field longer than %d bytes", ErrBadRequest, maxFieldLen)
	case errors.Is(err, xmlutil.ErrNotText):
		return fmt.Errorf("%w: element inside a text field", ErrBadRequest)
	case errors.Is(err, xmlutil.ErrTooDeep):
		return fmt.Errorf("%w: nested too deeply", ErrBadRequest)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return truncated(io.EOF)
	}
	return truncated(err)
}

// skip consumes tokens through the end of a child of the query whose start
// was just consumed, refusing nesting deeper than maxQueryDepth levels
// below the query (the child being the first).
func skip(r xml.TokenReader) error {
	if err := xmlutil.SkipDepth(r, maxQueryDepth); err != nil {
		return parseErr(err)
	}
	return nil
}

// splitEOF turns a (token, io.EOF) answer, which xml.TokenReader allows,
// into (token, nil) followed by (nil, io.EOF).
type splitEOF struct {
	r   xml.TokenReader
	err error
}

func (s *splitEOF) Token() (xml.Token, error) {
	if s.err != nil {
		return nil, s.err
	}
	tok, err := s.r.Token()
	if tok != nil && err != nil {
		s.err = err
		return tok, nil
	}
	if tok == nil && err == nil {
		return nil, io.ErrNoProgress
	}
	return tok, err
}
