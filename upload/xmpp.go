package upload

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/disco/info"
	"mellium.im/xmpp/form"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"
)

// Namespaces.
const (
	NS      = "urn:xmpp:http:upload:0"                // XEP-0363
	nsDisco = "http://jabber.org/protocol/disco#info" // XEP-0030
	nsForm  = "jabber:x:data"                         // XEP-0004
)

// Request is a parsed slot request. With ParseRequest and SlotXML it serves
// a server that does not route IQs through mellium's mux (Handle does all
// three): it parses the request, calls Service.RequestSlot and writes the
// slot.
type Request struct {
	Filename    string // as sent (sanitized later by RequestSlot)
	Size        int64
	ContentType string // may be empty
}

// ParseRequest reads a <request xmlns='urn:xmpp:http:upload:0'/> start
// element. A missing or empty filename, or a missing, non-numeric or
// negative size yields an error wrapping ErrBadRequest. It never panics.
func ParseRequest(start xml.StartElement) (Request, error) {
	if start.Name.Space != NS || start.Name.Local != "request" {
		return Request{}, fmt.Errorf("%w: not a slot request", ErrBadRequest)
	}
	var req Request
	var haveName, haveSize bool
	for _, a := range start.Attr {
		if a.Name.Space != "" {
			continue
		}
		switch a.Name.Local {
		case "filename":
			req.Filename, haveName = a.Value, true
		case "size":
			n, err := strconv.ParseInt(strings.TrimSpace(a.Value), 10, 64)
			if err != nil || n < 0 {
				return Request{}, fmt.Errorf("%w: invalid size", ErrBadRequest)
			}
			req.Size, haveSize = n, true
		case "content-type":
			req.ContentType = a.Value
		}
	}
	if !haveName || strings.TrimSpace(req.Filename) == "" {
		return Request{}, fmt.Errorf("%w: missing file name", ErrBadRequest)
	}
	if !haveSize {
		return Request{}, fmt.Errorf("%w: missing size", ErrBadRequest)
	}
	return req, nil
}

// Handle returns a mux option that answers slot requests and disco#info
// queries with s. Register it on the mux that serves the upload service's
// own JID (e.g. upload.example.org), since the disco#info answer describes
// that JID; the server must set each IQ's from to the authenticated sender.
func Handle(s *Service) mux.Option {
	return func(m *mux.ServeMux) {
		mux.IQ(stanza.GetIQ, xml.Name{Space: NS, Local: "request"}, s)(m)
		mux.IQ(stanza.GetIQ, xml.Name{Space: nsDisco, Local: "query"}, s)(m)
	}
}

// HandleRequests returns a mux option that answers only slot requests, for a
// mux that serves disco#info itself (mellium's disco.Handle, which panics
// next to Handle's disco#info registration). disco.Handle then finds the
// identity, features and form through s's ForIdentities, ForFeatures and
// ForForms, but marks the form type='submit' instead of 'result'.
func HandleRequests(s *Service) mux.Option {
	return mux.IQ(stanza.GetIQ, xml.Name{Space: NS, Local: "request"}, s)
}

// HandleIQ implements mux.IQHandler. It answers a slot request with a
// <slot/> or an IQ error, and a disco#info query with DiscoInfo. It returns
// an error only when writing the answer fails.
func (s *Service) HandleIQ(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	if iq.Type != stanza.GetIQ || start == nil {
		return writeIQError(t, iq, stanza.Error{Type: stanza.Cancel, Condition: stanza.ServiceUnavailable}, nil)
	}
	switch start.Name {
	case xml.Name{Space: nsDisco, Local: "query"}:
		for _, a := range start.Attr {
			if a.Name.Local == "node" && a.Value != "" {
				return writeIQError(t, iq, stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound}, nil)
			}
		}
		_, err := xmlstream.Copy(t, iq.Result(s.DiscoInfo()))
		return err
	case xml.Name{Space: NS, Local: "request"}:
	default:
		return writeIQError(t, iq, stanza.Error{Type: stanza.Cancel, Condition: stanza.ServiceUnavailable}, nil)
	}
	req, err := ParseRequest(*start)
	if err != nil {
		return writeIQError(t, iq, stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest}, nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	slot, err := s.RequestSlot(ctx, iq.From, req.Filename, req.Size, req.ContentType)
	if err != nil {
		se, payload := stanzaError(err)
		return writeIQError(t, iq, se, payload)
	}
	_, err = xmlstream.Copy(t, iq.Result(SlotXML(slot)))
	return err
}

// stanzaError maps RequestSlot's errors to XEP-0363's stanza errors.
func stanzaError(err error) (stanza.Error, xml.TokenReader) {
	var tl *TooLargeError
	var qe *QuotaError
	switch {
	case errors.As(err, &tl):
		return stanza.Error{Type: stanza.Modify, Condition: stanza.NotAcceptable},
			xmlstream.Wrap(
				xmlstream.Wrap(xmlstream.Token(xml.CharData(strconv.FormatInt(tl.Max, 10))),
					xml.StartElement{Name: xml.Name{Space: NS, Local: "max-file-size"}}),
				xml.StartElement{Name: xml.Name{Space: NS, Local: "file-too-large"}})
	case errors.As(err, &qe):
		return stanza.Error{Type: stanza.Wait, Condition: stanza.ResourceConstraint},
			xmlstream.Wrap(nil, xml.StartElement{
				Name: xml.Name{Space: NS, Local: "retry"},
				Attr: []xml.Attr{{Name: xml.Name{Local: "stamp"}, Value: qe.Retry.UTC().Format(time.RFC3339)}},
			})
	case errors.Is(err, ErrForbidden):
		return stanza.Error{Type: stanza.Auth, Condition: stanza.Forbidden}, nil
	case errors.Is(err, ErrBadRequest):
		return stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest}, nil
	}
	return stanza.Error{Type: stanza.Wait, Condition: stanza.InternalServerError}, nil
}

func writeIQError(t xmlstream.TokenWriter, iq stanza.IQ, se stanza.Error, payload xml.TokenReader) error {
	iq.Type = stanza.ErrorIQ
	iq.From, iq.To = iq.To, iq.From
	_, err := xmlstream.Copy(t, iq.Wrap(se.Wrap(payload)))
	return err
}

// SlotXML returns the <slot xmlns='urn:xmpp:http:upload:0'/> payload for s,
// the answer to a slot request for a server that writes its IQ results
// itself (see Request).
// Only the header names XEP-0363 allows (Authorization, Cookie, Expires)
// are written.
func SlotXML(s Slot) xml.TokenReader {
	var headers []xml.TokenReader
	for _, name := range []string{"Authorization", "Cookie", "Expires"} {
		for _, v := range s.Header.Values(name) {
			headers = append(headers, xmlstream.Wrap(
				xmlstream.Token(xml.CharData(v)),
				xml.StartElement{
					Name: xml.Name{Space: NS, Local: "header"},
					Attr: []xml.Attr{{Name: xml.Name{Local: "name"}, Value: name}},
				}))
		}
	}
	return xmlstream.Wrap(
		xmlstream.MultiReader(
			xmlstream.Wrap(xmlstream.MultiReader(headers...), xml.StartElement{
				Name: xml.Name{Space: NS, Local: "put"},
				Attr: []xml.Attr{{Name: xml.Name{Local: "url"}, Value: s.PutURL}},
			}),
			xmlstream.Wrap(nil, xml.StartElement{
				Name: xml.Name{Space: NS, Local: "get"},
				Attr: []xml.Attr{{Name: xml.Name{Local: "url"}, Value: s.GetURL}},
			}),
		),
		xml.StartElement{Name: xml.Name{Space: NS, Local: "slot"}},
	)
}

// identity is the service's disco identity (XEP-0363: category store, type
// file).
func identity() info.Identity {
	return info.Identity{Category: "store", Type: "file", Name: "HTTP File Upload"}
}

// ForFeatures implements info.FeatureIter: disco#info and XEP-0363.
func (s *Service) ForFeatures(node string, f func(info.Feature) error) error {
	if node != "" {
		return nil
	}
	if err := f(info.Feature{Var: nsDisco}); err != nil {
		return err
	}
	return f(info.Feature{Var: NS})
}

// ForIdentities implements info.IdentityIter: store/file.
func (s *Service) ForIdentities(node string, f func(info.Identity) error) error {
	if node != "" {
		return nil
	}
	return f(identity())
}

// ForForms implements form.Iter with the XEP-0128 form advertising
// max-file-size. (mellium's disco.Handle marks it type='submit'; DiscoInfo
// writes the proper type='result'.)
func (s *Service) ForForms(node string, f func(*form.Data) error) error {
	if node != "" {
		return nil
	}
	return f(form.New(
		form.Hidden("FORM_TYPE", form.Value(NS)),
		form.Text("max-file-size", form.Value(strconv.FormatInt(s.cfg.MaxFileSize, 10))),
	))
}

// DiscoInfo returns the complete disco#info <query/> payload describing the
// upload service's JID: identity store/file, the features, and the
// XEP-0128 extended form (FORM_TYPE urn:xmpp:http:upload:0, max-file-size).
func (s *Service) DiscoInfo() xml.TokenReader {
	field := func(name, typ, value string) xml.TokenReader {
		attr := []xml.Attr{{Name: xml.Name{Local: "var"}, Value: name}}
		if typ != "" {
			attr = append(attr, xml.Attr{Name: xml.Name{Local: "type"}, Value: typ})
		}
		return xmlstream.Wrap(
			xmlstream.Wrap(xmlstream.Token(xml.CharData(value)), xml.StartElement{Name: xml.Name{Space: nsForm, Local: "value"}}),
			xml.StartElement{Name: xml.Name{Space: nsForm, Local: "field"}, Attr: attr})
	}
	x := xmlstream.Wrap(
		xmlstream.MultiReader(
			field("FORM_TYPE", "hidden", NS),
			field("max-file-size", "", strconv.FormatInt(s.cfg.MaxFileSize, 10)),
		),
		xml.StartElement{Name: xml.Name{Space: nsForm, Local: "x"}, Attr: []xml.Attr{{Name: xml.Name{Local: "type"}, Value: "result"}}},
	)
	return xmlstream.Wrap(
		xmlstream.MultiReader(
			identity().TokenReader(),
			info.Feature{Var: nsDisco}.TokenReader(),
			info.Feature{Var: NS}.TokenReader(),
			x,
		),
		xml.StartElement{Name: xml.Name{Space: nsDisco, Local: "query"}},
	)
}
