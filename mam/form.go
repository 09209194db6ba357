package mam

import (
	"encoding/xml"
	"fmt"
	"strings"
	"time"

	"chatbx.eu/privacy/internal/xmlutil"
	"mellium.im/xmlstream"
	"mellium.im/xmpp/form"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/paging"
)

// The XEP-0313 query form fields.
const (
	fieldFormType         = "FORM_TYPE"
	fieldWith             = "with"
	fieldStart            = "start"
	fieldEnd              = "end"
	fieldBeforeID         = "before-id"
	fieldAfterID          = "after-id"
	fieldIDs              = "ids"
	fieldIncludeGroupchat = "include-groupchat"
)

// Limits on untrusted input.
const (
	maxTextLen  = 3072 // a JID is at most 3071 bytes
	maxIDLen    = 256  // archive ids and query ids
	maxFormSize = 64   // fields in one form

	// maxSkipDepth bounds the nesting of an unknown element a parser
	// skips.
	maxSkipDepth = 32
)

// request is a parsed <query xmlns='urn:xmpp:mam:2'/>.
type request struct {
	// QueryID is the client's queryid attribute, echoed in every result.
	QueryID string

	// Query holds the filters and paging; Query.Max is always set (between
	// 1 and the configured ceiling).
	Query Query

	// Flip asks for the page's results in reverse order (<flip-page/>).
	Flip bool

	// CountOnly is true for RSM <max>0</max>: the client wants only the
	// count, no messages.
	CountOnly bool
}

// parseQuery parses a MAM query: start is the <query/> start element and r
// yields its content (its end element or io.EOF ends it). It parses the
// optional data form and RSM set, trims values, caps the page size as c
// says, and returns errors wrapping ErrBadRequest (malformed values: bad-request)
// or ErrUnsupported (unknown fields: feature-not-implemented). It never
// panics on any input.
func parseQuery(r xml.TokenReader, start xml.StartElement, c Config) (request, error) {
	var req request
	if start.Name.Local != "query" || start.Name.Space != NS {
		return req, fmt.Errorf("%w: not a mam:2 query", ErrBadRequest)
	}
	if v, ok := startAttr(start, "queryid"); ok {
		if len(v) > maxIDLen {
			return req, fmt.Errorf("%w: queryid too long", ErrBadRequest)
		}
		req.QueryID = v
	}
	if _, ok := startAttr(start, "node"); ok {
		return req, fmt.Errorf("%w: pubsub node archives", ErrUnsupported)
	}
	req.Query.Max = c.pageSize()
	var sawForm, sawSet bool
	for se, err := range xmlutil.Children(r) {
		if err != nil {
			return req, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		switch {
		case se.Name.Space == form.NS && se.Name.Local == "x":
			if sawForm {
				return req, fmt.Errorf("%w: more than one form", ErrBadRequest)
			}
			sawForm = true
			err = parseForm(r, se, &req.Query, c)
		case se.Name.Space == paging.NS && se.Name.Local == "set":
			if sawSet {
				return req, fmt.Errorf("%w: more than one set", ErrBadRequest)
			}
			sawSet = true
			err = parseRSM(r, &req, c)
		case se.Name.Space == NS && se.Name.Local == "flip-page":
			req.Flip = true
			err = skip(r)
		default:
			// Unknown extension elements are ignored, as XMPP wants; form
			// fields are never ignored.
			err = skip(r)
		}
		if err != nil {
			return req, err
		}
	}
	q := &req.Query
	if !q.Start.IsZero() && !q.End.IsZero() && q.Start.After(q.End) {
		return req, fmt.Errorf("%w: start after end", ErrBadRequest)
	}
	if len(q.IDs) > c.maxPageSize() {
		return req, fmt.Errorf("%w: too many ids", ErrBadRequest)
	}
	return req, nil
}

// parseQueryBytes is parseQuery for a whole <query/> element in XML.
func parseQueryBytes(b []byte, c Config) (request, error) {
	d := xml.NewDecoder(strings.NewReader(string(b)))
	start, err := firstStart(d)
	if err != nil {
		return request{}, err
	}
	return parseQuery(d, start, c)
}

func firstStart(d xml.TokenReader) (xml.StartElement, error) {
	for {
		tok, err := d.Token()
		if err != nil {
			return xml.StartElement{}, fmt.Errorf("%w: %v", ErrBadRequest, err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			return se, nil
		}
	}
}

// parseForm parses a jabber:x:data form into q. The form's start element
// has been read.
func parseForm(r xml.TokenReader, start xml.StartElement, q *Query, c Config) error {
	if typ, _ := startAttr(start, "type"); typ != "" && typ != "submit" && typ != "form" {
		return fmt.Errorf("%w: form type %q", ErrBadRequest, limitStr(typ))
	}
	seen := map[string]bool{}
	for se, err := range xmlutil.Children(r) {
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		if se.Name.Local != "field" || se.Name.Space != form.NS {
			// <title/>, <instructions/> and the like carry no filter.
			if err := skip(r); err != nil {
				return err
			}
			continue
		}
		name, _ := startAttr(se, "var")
		values, err := fieldValues(r)
		if err != nil {
			return err
		}
		if seen[name] {
			return fmt.Errorf("%w: field %q repeated", ErrBadRequest, limitStr(name))
		}
		seen[name] = true
		if len(seen) > maxFormSize {
			return fmt.Errorf("%w: too many fields", ErrBadRequest)
		}
		if err := setField(q, name, values, c); err != nil {
			return err
		}
	}
	return nil
}

// fieldValues reads the <value/> children of a <field/>, trimmed; empty
// values are dropped. The field's start element has been read.
func fieldValues(r xml.TokenReader) ([]string, error) {
	var vals []string
	for se, err := range xmlutil.Children(r) {
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		if se.Name.Local != "value" || se.Name.Space != form.NS {
			if err := skip(r); err != nil {
				return nil, err
			}
			continue
		}
		v, err := readText(r)
		if err != nil {
			return nil, err
		}
		if v = strings.TrimSpace(v); v != "" {
			vals = append(vals, v)
		}
		if len(vals) > defaultMaxPageSize*4 {
			return nil, fmt.Errorf("%w: too many values", ErrBadRequest)
		}
	}
	return vals, nil
}

// readText reads the character data of an element whose start was just
// read, up to its end, at most maxTextLen bytes. Child elements are an
// error.
func readText(r xml.TokenReader) (string, error) {
	v, err := xmlutil.ReadText(r, maxTextLen)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return v, nil
}

// skip consumes the rest of an element whose start was just read, at most
// maxSkipDepth levels deep: a query is untrusted input.
func skip(r xml.TokenReader) error {
	if err := xmlutil.SkipDepth(r, maxSkipDepth); err != nil {
		return fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return nil
}

func single(name string, values []string) (string, error) {
	switch len(values) {
	case 0:
		return "", nil
	case 1:
		return values[0], nil
	}
	return "", fmt.Errorf("%w: field %q has several values", ErrBadRequest, name)
}

func setField(q *Query, name string, values []string, c Config) error {
	if name == fieldIDs {
		var ids []string
		for _, v := range values {
			// text-multi: one id per line.
			for _, id := range strings.Split(v, "\n") {
				if id = strings.TrimSpace(id); id == "" {
					continue
				}
				if len(id) > maxIDLen {
					return fmt.Errorf("%w: id too long", ErrBadRequest)
				}
				ids = append(ids, id)
			}
		}
		if len(ids) > c.maxPageSize() {
			return fmt.Errorf("%w: too many ids", ErrBadRequest)
		}
		q.IDs = ids
		return nil
	}
	v, err := single(name, values)
	if err != nil {
		return err
	}
	switch name {
	case fieldFormType:
		if v != NS {
			return fmt.Errorf("%w: FORM_TYPE is not %s", ErrBadRequest, NS)
		}
	case fieldWith:
		if v == "" {
			return nil
		}
		j, err := jid.Parse(v)
		if err != nil {
			return fmt.Errorf("%w: with is not a JID", ErrBadRequest)
		}
		q.With = j
	case fieldStart, fieldEnd:
		if v == "" {
			return nil
		}
		t, err := parseTime(v)
		if err != nil {
			return err
		}
		if name == fieldStart {
			q.Start = t
		} else {
			q.End = t
		}
	case fieldBeforeID, fieldAfterID:
		if len(v) > maxIDLen {
			return fmt.Errorf("%w: %s too long", ErrBadRequest, name)
		}
		if name == fieldBeforeID {
			q.BeforeID = v
		} else {
			q.AfterID = v
		}
	case fieldIncludeGroupchat:
		if v == "" {
			return nil
		}
		b, err := parseBool(v)
		if err != nil {
			return fmt.Errorf("%w: include-groupchat", err)
		}
		q.IncludeGroupchat = b
	default:
		return fmt.Errorf("%w: %q", ErrUnsupported, limitStr(name))
	}
	return nil
}

// parseBool parses an XEP-0004 boolean field value ("1", "true", "0",
// "false", surrounding whitespace ignored). Anything else wraps
// ErrBadRequest.
func parseBool(v string) (bool, error) {
	switch strings.TrimSpace(v) {
	case "1", "true":
		return true, nil
	case "0", "false":
		return false, nil
	}
	return false, fmt.Errorf("%w: not a boolean", ErrBadRequest)
}

// parseTime parses an XEP-0082 DateTime (2006-01-02T15:04:05[.frac](Z|±hh:mm))
// and returns it in UTC. Anything else wraps ErrBadRequest.
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	// XEP-0082 requires the T separator and a time zone; time.RFC3339
	// checks both and accepts fractional seconds.
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || len(s) < len("2006-01-02T15:04:05Z") || s[10] != 'T' {
		return time.Time{}, fmt.Errorf("%w: malformed timestamp", ErrBadRequest)
	}
	return t.UTC(), nil
}

// stampLayout is the XEP-0082 DateTime layout of every time mam writes:
// UTC with exactly six fractional digits (microseconds, truncated). Clients
// whose parsers stop at microseconds (slixmpp and poezio on Python's
// datetime, which also rejects other digit counts before Python 3.11)
// read it; nanosecond stamps were refused there.
const stampLayout = "2006-01-02T15:04:05.000000Z"

// formatTime formats t as an XEP-0082 DateTime in UTC with microsecond
// precision (stampLayout). A stored time may be finer; the Handler compares
// a start or end filter at microseconds (endAtMicro), so a stamp a client
// got back still selects that very message.
func formatTime(t time.Time) string {
	return t.UTC().Format(stampLayout)
}

// endAtMicro widens an end filter given at microsecond precision (or
// coarser) to the last nanosecond of that microsecond, so that a message
// whose written stamp (formatTime) equals end is kept: its stored time may
// have nanoseconds the stamp truncated. A start filter needs no change:
// truncation never raises a time above the stored one. An end with
// sub-microsecond digits is taken as given.
func endAtMicro(end time.Time) time.Time {
	if end.IsZero() || end.Nanosecond()%int(time.Microsecond) != 0 {
		return end
	}
	return end.Add(time.Microsecond - time.Nanosecond)
}

// limitStr shortens client-supplied names quoted in error messages.
func limitStr(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// queryForm returns the form a client gets for form discovery (an IQ get
// with an empty query): every field parseQuery supports.
func queryForm() xml.TokenReader {
	field := func(name, typ string, inner xml.TokenReader) xml.TokenReader {
		return xmlstream.Wrap(inner, xml.StartElement{
			Name: xml.Name{Space: form.NS, Local: "field"},
			Attr: []xml.Attr{{Name: xml.Name{Local: "type"}, Value: typ}, {Name: xml.Name{Local: "var"}, Value: name}},
		})
	}
	value := func(v string) xml.TokenReader {
		return xmlstream.Wrap(xmlstream.Token(xml.CharData(v)), xml.StartElement{Name: xml.Name{Space: form.NS, Local: "value"}})
	}
	validate := xmlstream.Wrap(
		xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: "http://jabber.org/protocol/xdata-validate", Local: "open"}}),
		xml.StartElement{
			Name: xml.Name{Space: "http://jabber.org/protocol/xdata-validate", Local: "validate"},
			Attr: []xml.Attr{{Name: xml.Name{Local: "datatype"}, Value: "xs:string"}},
		},
	)
	return xmlstream.Wrap(xmlstream.MultiReader(
		field(fieldFormType, "hidden", value(NS)),
		field(fieldWith, "jid-single", nil),
		field(fieldStart, "text-single", nil),
		field(fieldEnd, "text-single", nil),
		field(fieldBeforeID, "text-single", nil),
		field(fieldAfterID, "text-single", nil),
		field(fieldIDs, "list-multi", validate),
		field(fieldIncludeGroupchat, "boolean", nil),
	), xml.StartElement{
		Name: xml.Name{Space: form.NS, Local: "x"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "type"}, Value: "form"}},
	})
}
