package mam

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/forward"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/muc"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/paging"
	"mellium.im/xmpp/stanza"
)

// Payload names the Handler answers.
var (
	nameQuery    = xml.Name{Space: NS, Local: "query"}
	nameMetadata = xml.Name{Space: NS, Local: "metadata"}
	namePrefs    = xml.Name{Space: NS, Local: "prefs"}
)

// Handler answers XEP-0313 queries, form discovery and metadata requests
// and XEP-0441 preference requests over a Store. It is safe for concurrent
// use; one Handler serves every session.
//
// The Handler trusts the IQ's from attribute as the requester: the server
// must set it to the session's bound full JID before passing the IQ to the
// mux (as it must for routing anyway). An IQ without from is forbidden.
// A user archive is readable and configurable only by its owner (to empty
// or the owner's bare JID); a room archive (to = a room's bare JID) is
// readable by whoever Config.Rooms allows; everyone else gets forbidden.
//
// mellium's mux hands IQ handlers no context, so store calls run under
// context.Background(): a Store must not block indefinitely.
type Handler struct {
	store Store
	cfg   Config
}

// NewHandler returns a Handler reading and configuring store under cfg.
func NewHandler(store Store, cfg Config) *Handler {
	return &Handler{store: store, cfg: cfg}
}

// Handle returns a mux option registering h for every payload it answers:
// query (set: search, get: form discovery), metadata (get) and prefs (get,
// set), all in the urn:xmpp:mam:2 namespace.
func Handle(h *Handler) mux.Option {
	return func(m *mux.ServeMux) {
		mux.IQ(stanza.SetIQ, nameQuery, h)(m)
		mux.IQ(stanza.GetIQ, nameQuery, h)(m)
		mux.IQ(stanza.GetIQ, nameMetadata, h)(m)
		mux.IQ(stanza.GetIQ, namePrefs, h)(m)
		mux.IQ(stanza.SetIQ, namePrefs, h)(m)
	}
}

// errWrite marks a failure to write to the stream: the session is broken
// and the error is returned to end it.
type errWrite struct{ err error }

func (e errWrite) Error() string { return "mam: write: " + e.err.Error() }
func (e errWrite) Unwrap() error { return e.err }

// HandleIQ implements mux.IQHandler. Every failure is answered with an IQ
// error and nil is returned, except when writing to the stream fails.
func (h *Handler) HandleIQ(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	if start == nil {
		return h.replyError(iq, t, fmt.Errorf("%w: no payload", ErrBadRequest))
	}
	ctx := context.Background()
	var err error
	switch {
	case iq.Type == stanza.SetIQ && start.Name == nameQuery:
		err = h.query(ctx, iq, t, *start)
	case iq.Type == stanza.GetIQ && start.Name == nameQuery:
		err = h.form(ctx, iq, t)
	case iq.Type == stanza.GetIQ && start.Name == nameMetadata:
		err = h.metadata(ctx, iq, t)
	case iq.Type == stanza.GetIQ && start.Name == namePrefs:
		err = h.prefs(ctx, iq, t)
	case iq.Type == stanza.SetIQ && start.Name == namePrefs:
		err = h.setPrefs(ctx, iq, t, *start)
	case iq.Type == stanza.GetIQ || iq.Type == stanza.SetIQ:
		err = fmt.Errorf("%w: %s", ErrUnsupported, start.Name.Local)
	default:
		return nil // results and errors are not ours to answer
	}
	if err == nil {
		return nil
	}
	var we errWrite
	if errors.As(err, &we) {
		return err
	}
	return h.replyError(iq, t, err)
}

func (h *Handler) replyError(iq stanza.IQ, t xmlstream.TokenWriter, err error) error {
	se := stanzaError(err)
	if se.Condition == stanza.InternalServerError && h.cfg.Logger != nil {
		h.cfg.Logger.Error("mam: request failed", "err", err)
	}
	if _, err := xmlstream.Copy(t, iq.Error(se)); err != nil {
		return errWrite{err}
	}
	return nil
}

// stanzaError maps an error of this package to the stanza error a client
// gets: ErrNotFound → item-not-found, ErrBadRequest → bad-request,
// ErrUnsupported → feature-not-implemented, ErrForbidden → forbidden,
// anything else → internal-server-error. The result carries no
// text: details stay on the server.
func stanzaError(err error) stanza.Error {
	switch {
	case errors.Is(err, ErrNotFound):
		return stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound}
	case errors.Is(err, ErrBadRequest):
		return stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest}
	case errors.Is(err, ErrUnsupported):
		return stanza.Error{Type: stanza.Cancel, Condition: stanza.FeatureNotImplemented}
	case errors.Is(err, ErrForbidden):
		return stanza.Error{Type: stanza.Auth, Condition: stanza.Forbidden}
	}
	return stanza.Error{Type: stanza.Wait, Condition: stanza.InternalServerError}
}

// access is the outcome of authorizing a request.
type access struct {
	archive  jid.JID
	room     bool
	seeReals bool
}

// authorize finds the archive an IQ addresses and checks that its sender may
// read it. ownOnly refuses room archives (preferences).
func (h *Handler) authorize(ctx context.Context, iq stanza.IQ, ownOnly bool) (access, error) {
	from := iq.From
	if from.Domainpart() == "" || from.Localpart() == "" {
		return access{}, fmt.Errorf("%w: no requester", ErrForbidden)
	}
	own := from.Bare()
	if iq.To.Domainpart() == "" || iq.To.Equal(own) {
		return access{archive: own}, nil
	}
	if ownOnly || h.cfg.Rooms == nil || iq.To.Resourcepart() != "" {
		return access{}, fmt.Errorf("%w: not the archive owner", ErrForbidden)
	}
	allowed, see, err := h.cfg.Rooms.Access(ctx, iq.To, from)
	if err != nil {
		return access{}, fmt.Errorf("mam: room access: %w", err)
	}
	if !allowed {
		return access{}, fmt.Errorf("%w: not allowed in room archive", ErrForbidden)
	}
	return access{archive: iq.To, room: true, seeReals: see}, nil
}

func (h *Handler) query(ctx context.Context, iq stanza.IQ, t xmlstream.TokenReadEncoder, start xml.StartElement) error {
	acc, err := h.authorize(ctx, iq, false)
	if err != nil {
		return err
	}
	req, err := parseQuery(t, start, h.cfg)
	if err != nil {
		return err
	}
	// Stamps are written at microseconds: compare end at microseconds.
	req.Query.End = endAtMicro(req.Query.End)
	page, err := h.store.Query(ctx, acc.archive, req.Query)
	if err != nil {
		return err
	}
	if req.CountOnly {
		// Complete only when nothing matched: the client saw no message.
		page.Complete = page.Complete && len(page.Messages) == 0
		page.Messages = nil
		page.FirstIndex = -1
	}
	msgs := page.Messages
	for i := range msgs {
		m := msgs[i]
		if req.Flip {
			m = msgs[len(msgs)-1-i]
		}
		if err := h.writeResult(t, iq.From, acc, req.QueryID, m); err != nil {
			return errWrite{err}
		}
	}
	if _, err := xmlstream.Copy(t, iq.Result(finReader(page))); err != nil {
		return errWrite{err}
	}
	return nil
}

// writeResult writes one query result message.
func (h *Handler) writeResult(t xmlstream.TokenWriter, to jid.JID, acc access, queryID string, m Message) error {
	msgStart := xml.StartElement{
		Name: xml.Name{Space: stanza.NSClient, Local: "message"},
		Attr: []xml.Attr{
			{Name: xml.Name{Local: "from"}, Value: acc.archive.String()},
			{Name: xml.Name{Local: "to"}, Value: to.String()},
			{Name: xml.Name{Local: "id"}, Value: randomID()},
		},
	}
	resultAttr := make([]xml.Attr, 0, 2)
	if queryID != "" {
		resultAttr = append(resultAttr, xml.Attr{Name: xml.Name{Local: "queryid"}, Value: queryID})
	}
	resultAttr = append(resultAttr, xml.Attr{Name: xml.Name{Local: "id"}, Value: m.ID})
	var realJID jid.JID
	if acc.room && acc.seeReals {
		realJID = m.RealJID
	}
	forwarded := xmlstream.MultiReader(
		xmlstream.Wrap(nil, xml.StartElement{
			Name: xml.Name{Space: stanza.NSDelay, Local: "delay"},
			Attr: []xml.Attr{{Name: xml.Name{Local: "stamp"}, Value: formatTime(m.Time)}},
		}),
		storedMessage(m.Stanza, realJID),
	)
	_, err := xmlstream.Copy(t, xmlstream.Wrap(
		xmlstream.Wrap(
			xmlstream.Wrap(forwarded, xml.StartElement{Name: xml.Name{Space: forward.NS, Local: "forwarded"}}),
			xml.StartElement{Name: xml.Name{Space: NS, Local: "result"}, Attr: resultAttr},
		),
		msgStart,
	))
	return err
}

// storedMessage decodes a stored stanza into tokens ready for a mellium
// encoder (no xmlns attributes: names carry their namespace), adding the
// muc#user real JID when real is set. A stanza that does not decode is left
// out (XEP-0313 allows a result without the message) rather than breaking
// the stream.
func storedMessage(b []byte, realJID jid.JID) xml.TokenReader {
	d := xml.NewDecoder(bytes.NewReader(b))
	var toks []xml.Token
	depth := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil
		}
		switch t := tok.(type) {
		case xml.StartElement:
			attrs := t.Attr[:0:0]
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
					continue
				}
				attrs = append(attrs, a)
			}
			t.Attr = attrs
			depth++
			toks = append(toks, t)
		case xml.EndElement:
			depth--
			if depth == 0 && realJID.Domainpart() != "" {
				x, _ := xmlstream.ReadAll(realJIDElement(realJID))
				toks = append(toks, x...)
			}
			toks = append(toks, t)
		case xml.CharData:
			toks = append(toks, t.Copy())
		}
	}
	if depth != 0 || len(toks) == 0 {
		return nil
	}
	return &sliceReader{toks: toks}
}

// realJIDElement is <x xmlns='muc#user'><item jid=real/></x>.
func realJIDElement(realJID jid.JID) xml.TokenReader {
	return xmlstream.Wrap(
		xmlstream.Wrap(nil, xml.StartElement{
			Name: xml.Name{Space: muc.NSUser, Local: "item"},
			Attr: []xml.Attr{{Name: xml.Name{Local: "jid"}, Value: realJID.String()}},
		}),
		xml.StartElement{Name: xml.Name{Space: muc.NSUser, Local: "x"}},
	)
}

// finReader is the IQ result payload of a query: <fin/> with a hand-written
// RSM <set/> (mellium's paging.Set always writes first and last, which an
// empty page must not have).
func finReader(p Page) xml.TokenReader {
	var set []xml.TokenReader
	if n := len(p.Messages); n > 0 {
		var firstAttr []xml.Attr
		if p.FirstIndex >= 0 {
			firstAttr = []xml.Attr{{Name: xml.Name{Local: "index"}, Value: strconv.Itoa(p.FirstIndex)}}
		}
		set = append(set,
			xmlstream.Wrap(xmlstream.Token(xml.CharData(p.Messages[0].ID)),
				xml.StartElement{Name: xml.Name{Space: paging.NS, Local: "first"}, Attr: firstAttr}),
			xmlstream.Wrap(xmlstream.Token(xml.CharData(p.Messages[n-1].ID)),
				xml.StartElement{Name: xml.Name{Space: paging.NS, Local: "last"}}),
		)
	}
	if p.Count >= 0 {
		set = append(set, xmlstream.Wrap(xmlstream.Token(xml.CharData(strconv.Itoa(p.Count))),
			xml.StartElement{Name: xml.Name{Space: paging.NS, Local: "count"}}))
	}
	return xmlstream.Wrap(
		xmlstream.Wrap(xmlstream.MultiReader(set...), xml.StartElement{Name: xml.Name{Space: paging.NS, Local: "set"}}),
		xml.StartElement{
			Name: xml.Name{Space: NS, Local: "fin"},
			Attr: []xml.Attr{
				{Name: xml.Name{Local: "complete"}, Value: strconv.FormatBool(p.Complete)},
				{Name: xml.Name{Local: "stable"}, Value: "true"},
			},
		},
	)
}

func (h *Handler) form(ctx context.Context, iq stanza.IQ, t xmlstream.TokenWriter) error {
	if _, err := h.authorize(ctx, iq, false); err != nil {
		return err
	}
	if _, err := xmlstream.Copy(t, iq.Result(xmlstream.Wrap(queryForm(), xml.StartElement{Name: nameQuery}))); err != nil {
		return errWrite{err}
	}
	return nil
}

func (h *Handler) metadata(ctx context.Context, iq stanza.IQ, t xmlstream.TokenWriter) error {
	acc, err := h.authorize(ctx, iq, false)
	if err != nil {
		return err
	}
	md, err := h.store.Metadata(ctx, acc.archive)
	if err != nil {
		return err
	}
	var inner xml.TokenReader
	if md.StartID != "" {
		bound := func(name, id string, ts string) xml.TokenReader {
			return xmlstream.Wrap(nil, xml.StartElement{
				Name: xml.Name{Space: NS, Local: name},
				Attr: []xml.Attr{{Name: xml.Name{Local: "id"}, Value: id}, {Name: xml.Name{Local: "timestamp"}, Value: ts}},
			})
		}
		inner = xmlstream.MultiReader(
			bound("start", md.StartID, formatTime(md.StartTime)),
			bound("end", md.EndID, formatTime(md.EndTime)),
		)
	}
	if _, err := xmlstream.Copy(t, iq.Result(xmlstream.Wrap(inner, xml.StartElement{Name: nameMetadata}))); err != nil {
		return errWrite{err}
	}
	return nil
}

func (h *Handler) prefs(ctx context.Context, iq stanza.IQ, t xmlstream.TokenWriter) error {
	acc, err := h.authorize(ctx, iq, true)
	if err != nil {
		return err
	}
	p, err := h.store.Prefs(ctx, acc.archive)
	if err != nil {
		return err
	}
	if _, err := xmlstream.Copy(t, iq.Result(p.TokenReader())); err != nil {
		return errWrite{err}
	}
	return nil
}

func (h *Handler) setPrefs(ctx context.Context, iq stanza.IQ, t xmlstream.TokenReadEncoder, start xml.StartElement) error {
	acc, err := h.authorize(ctx, iq, true)
	if err != nil {
		return err
	}
	p, err := parsePrefs(t, start)
	if err != nil {
		return err
	}
	if err := h.store.SetPrefs(ctx, acc.archive, p); err != nil {
		return err
	}
	// Answer with what is stored now, not with what was asked.
	return h.prefs(ctx, iq, t)
}

// randomID returns a random stanza id for result messages.
func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}
