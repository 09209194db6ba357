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
	// nsData is the namespace of XEP-0004 data forms (jabber:x:data), in
	// which the registration form is also offered (XEP-0077 §8) and may be
	// submitted.
	nsData = "jabber:x:data"
)

// maxFormFields bounds the <field/> elements of a submitted data form, and
// maxFieldValues the <value/> elements of one field this package reads.
const (
	maxFormFields  = 64
	maxFieldValues = 1
)

// maxFieldLen bounds the text of one query field, in bytes; longer values
// are a malformed query (the Manager's own limits are lower).
const maxFieldLen = 4096

// maxQueryDepth bounds element nesting inside a query, in levels below the
// <query/> element.
const maxQueryDepth = 16

// Query is a parsed XEP-0077 <query xmlns='jabber:iq:register'/> payload.
// Only the fields this package acts on are kept; others (email, name…) are
// ignored: no personal data beyond a username is asked for. The username
// and password may come as legacy <username/> and <password/> elements or
// as the fields "username" and "password" of an XEP-0004 data form of type
// submit whose FORM_TYPE is jabber:iq:register (XEP-0077 §8), not both.
// A server that wants to know what a request asked (examples/server logs
// the name of a new account) parses it with ParseQuery beside the Handler.
type Query struct {
	Username    string
	Password    string
	HasUsername bool // a <username/> element was present (maybe empty)
	HasPassword bool // a <password/> element was present (maybe empty)
	Remove      bool // <remove/>: cancel the registration
	Form        bool // the query held a data form (username and password read from it)
}

// ParseQuery reads one <query xmlns='jabber:iq:register'> element, start to
// end, from r. Duplicate or nested username/password fields (a field given
// both as a legacy element and in a data form included), text over 4 KiB
// per field, nesting deeper than 16 levels and truncated input are errors
// wrapping ErrBadRequest; so are a second data form, a data form whose type
// is not submit or whose FORM_TYPE is not jabber:iq:register, more than 64
// fields in it, and a username or password field with more than one value.
// Unknown fields of a data form are skipped unread. ParseQuery never
// panics.
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
			if tok.Name == (xml.Name{Space: nsData, Local: "x"}) {
				if q.Form {
					return q, fmt.Errorf("%w: more than one data form", ErrBadRequest)
				}
				if err := parseForm(r, tok, &q); err != nil {
					return q, err
				}
				continue
			}
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

// parseForm reads the data form whose start element was just read from r
// into q: its username and password fields, checking its type and
// FORM_TYPE.
func parseForm(r xml.TokenReader, start xml.StartElement, q *Query) error {
	q.Form = true
	var formType string
	var hasType bool
	fields := 0
	for child, err := range xmlutil.Children(r) {
		if err != nil {
			return parseErr(err)
		}
		if child.Name != (xml.Name{Space: nsData, Local: "field"}) {
			if err := xmlutil.SkipDepth(r, maxQueryDepth-1); err != nil {
				return parseErr(err)
			}
			continue
		}
		if fields++; fields > maxFormFields {
			return fmt.Errorf("%w: more than %d fields in the data form", ErrBadRequest, maxFormFields)
		}
		name := attr(child, "var")
		var dup *bool
		switch name {
		case "FORM_TYPE":
			dup = &hasType
		case "username":
			dup = &q.HasUsername
		case "password":
			dup = &q.HasPassword
		default:
			// Unknown fields are ignored, whatever they hold.
			if err := xmlutil.SkipDepth(r, maxQueryDepth-1); err != nil {
				return parseErr(err)
			}
			continue
		}
		if *dup {
			return fmt.Errorf("%w: duplicate field %s", ErrBadRequest, name)
		}
		*dup = true
		value, err := fieldValue(r)
		if err != nil {
			return err
		}
		switch name {
		case "FORM_TYPE":
			formType = value
		case "username":
			q.Username = value
		case "password":
			q.Password = value
		}
	}
	switch {
	case attr(start, "type") != "submit":
		return fmt.Errorf("%w: the data form is not of type submit", ErrBadRequest)
	case formType != NS:
		return fmt.Errorf("%w: the data form's FORM_TYPE is not %s", ErrBadRequest, NS)
	}
	return nil
}

// fieldValue reads the field whose start element was just read from r and
// returns its value: "" when it has none, an error when it has more than
// one.
func fieldValue(r xml.TokenReader) (string, error) {
	var value string
	n := 0
	for child, err := range xmlutil.Children(r) {
		if err != nil {
			return "", parseErr(err)
		}
		if child.Name != (xml.Name{Space: nsData, Local: "value"}) {
			if err := xmlutil.SkipDepth(r, maxQueryDepth-2); err != nil {
				return "", parseErr(err)
			}
			continue
		}
		if n++; n > maxFieldValues {
			return "", fmt.Errorf("%w: more than one value in a field", ErrBadRequest)
		}
		text, err := xmlutil.ReadText(r, maxFieldLen)
		if err != nil {
			return "", parseErr(err)
		}
		value = text
	}
	return value, nil
}

func attr(start xml.StartElement, local string) string {
	for _, a := range start.Attr {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
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
