package mam

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"

	"chatbx.eu/privacy/internal/xmlutil"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/muc"
	"mellium.im/xmpp/stanza"
)

// Archiver decides, for each routed message, which archives store it, stores
// it there and stamps it with XEP-0359 stanza-ids. It is safe for concurrent
// use.
type Archiver struct {
	store Store
	cfg   Config
}

// NewArchiver returns an Archiver writing to store under cfg's policy.
func NewArchiver(store Store, cfg Config) *Archiver {
	return &Archiver{store: store, cfg: cfg}
}

// Result tells what the Archiver did with a message.
type Result struct {
	// Deliver is the message to deliver to the recipient, serialized: the
	// from and to the archiver was given, every stanza-id forged with the
	// by of an archive we stamp removed, and, when the recipient's (or
	// room's) archive stored it, <stanza-id id=RecipientID by=archive/>.
	// It is set whenever the stanza could be parsed, even with an error: an
	// archiving failure must not lose the message. A mellium server sends
	// it with sess.Send(ctx, xml.NewDecoder(bytes.NewReader(Deliver))).
	Deliver []byte

	// SenderID is the archive id in the sender's archive ("" if not stored
	// there). A server stamps the sender's carbon copies with it (by = the
	// sender's bare JID); it must never reach the recipient.
	SenderID string

	// RecipientID is the archive id in the recipient's archive, or in the
	// room's archive for ArchiveGroupchat ("" if not stored).
	RecipientID string
}

// Archive archives a routed one-to-one message in the sender's and the
// recipient's archives, each by its own owner's preferences, and returns
// the message to deliver.
//
// from must be the sender's full JID as the server authenticated it (the
// server overwrites any client-supplied from before routing); to is the
// address the message was sent to. Both are required (ErrBadRequest).
// Archive writes both into the stored and delivered copies and ignores the
// stanza's own from and to. stanza is the whole <message/> element; one
// that is not a well-formed <message/> is an error wrapping ErrBadRequest
// and leaves Deliver nil.
//
// A message is archived only when it is of type chat or normal (or has no
// type), carries a <body/> or an encrypted payload (OMEMO, OpenPGP) or an
// XEP-0334 <store/> hint, is not a carbon or MAM result copy, has no
// <no-store/> or <no-permanent-store/> hint, and the archive owner's
// preferences allow the peer (see Prefs.Allows: users who never set
// preferences archive nothing). A message larger than Config.MaxStanzaSize
// is not stored: the error wraps ErrTooLarge and Deliver is still set.
func (a *Archiver) Archive(ctx context.Context, from, to jid.JID, stanza []byte) (Result, error) {
	d := xml.NewDecoder(bytes.NewReader(stanza))
	start, err := messageStart(d)
	if err != nil {
		return Result{}, err
	}
	return a.archive(ctx, from, to, start, d, len(stanza))
}

// ArchiveTokens is Archive for a server that holds the message as tokens:
// start is the <message/> start element and inner its content as read by
// xmlstream.ReadAll(xmlstream.Inner(t)) (the closing end element may be
// included or not).
func (a *Archiver) ArchiveTokens(ctx context.Context, from, to jid.JID, start xml.StartElement, inner []xml.Token) (Result, error) {
	if !isMessage(start.Name) {
		return Result{}, fmt.Errorf("%w: not a message", ErrBadRequest)
	}
	return a.archive(ctx, from, to, start, &sliceReader{toks: inner}, 512)
}

func (a *Archiver) archive(ctx context.Context, from, to jid.JID, start xml.StartElement, r xml.TokenReader, sizeHint int) (Result, error) {
	var res Result
	if from.Domainpart() == "" || to.Domainpart() == "" {
		// The router always knows both ends of a routed message.
		return res, fmt.Errorf("%w: no sender or recipient", ErrBadRequest)
	}
	sender, recipient := from.Bare(), to.Bare()
	w := xmlWriter{buf: make([]byte, 0, sizeHint+160)}
	f, err := scan(r, start, scanOptions{
		strip: [2]jid.JID{sender, recipient},
		from:  from,
		to:    to,
	}, &w)
	if err != nil {
		return res, err
	}
	stored := w.buf
	res.Deliver = stored
	if f.typ == "groupchat" || !f.archivable() {
		return res, nil
	}
	if len(stored) > a.cfg.maxStanzaSize() {
		return res, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(stored))
	}
	now := a.cfg.now()
	var errs []error
	store := func(owner, peer jid.JID) string {
		ok, err := a.allows(ctx, owner, peer)
		if err != nil {
			errs = append(errs, err)
			return ""
		}
		if !ok {
			return ""
		}
		m, err := a.store.Append(ctx, Message{Archive: owner, With: peer, Time: now, Stanza: stored})
		if err != nil {
			errs = append(errs, fmt.Errorf("mam: append: %w", err))
			return ""
		}
		return m.ID
	}
	res.SenderID = store(sender, to)
	if recipient.Equal(sender) {
		// A message to oneself is archived once.
		res.RecipientID = res.SenderID
	} else {
		res.RecipientID = store(recipient, from)
	}
	switch {
	case res.RecipientID != "":
		res.Deliver = stamp(stored, res.RecipientID, recipient)
	case res.SenderID != "":
		// The store may keep stored; the caller owns Deliver.
		res.Deliver = bytes.Clone(stored)
	}
	return res, errors.Join(errs...)
}

// allows applies owner's preferences to a message with peer.
func (a *Archiver) allows(ctx context.Context, owner, peer jid.JID) (bool, error) {
	if owner.Domainpart() == "" || !a.cfg.isLocal(owner) {
		return false, nil
	}
	p, err := a.store.Prefs(ctx, owner)
	if err != nil {
		return false, fmt.Errorf("mam: prefs: %w", err)
	}
	return p.Allows(ctx, owner, peer, a.cfg.Roster)
}

// stamp returns a copy of the serialized message with
// <stanza-id xmlns='urn:xmpp:sid:0' id=id by=by/> before its end tag.
func stamp(msg []byte, id string, by jid.JID) []byte {
	const end = "</message>"
	body := msg[:len(msg)-len(end)]
	out := make([]byte, 0, len(msg)+len(id)+96)
	out = append(out, body...)
	out = append(out, `<stanza-id xmlns="`+stanza.NSSid+`" id="`...)
	out = appendEscaped(out, []byte(id), true)
	out = append(out, `" by="`...)
	out = appendEscaped(out, []byte(by.String()), true)
	out = append(out, `"></stanza-id>`+end...)
	return out
}

func isMessage(n xml.Name) bool {
	return n.Local == "message" && (n.Space == stanza.NSClient || n.Space == stanza.NSServer || n.Space == "")
}

func messageStart(d xml.TokenReader) (xml.StartElement, error) {
	for {
		tok, err := d.Token()
		if err != nil {
			return xml.StartElement{}, fmt.Errorf("%w: %v", ErrBadRequest, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if !isMessage(t.Name) {
				return t, fmt.Errorf("%w: not a message", ErrBadRequest)
			}
			return t, nil
		case xml.CharData, xml.ProcInst, xml.Comment:
		default:
			return xml.StartElement{}, fmt.Errorf("%w: unexpected token", ErrBadRequest)
		}
	}
}

type scanOptions struct {
	strip        [2]jid.JID // stanza-id 'by' values we stamp: remove forged ones
	stripMUCUser bool       // remove <x xmlns='muc#user'/>
	from, to     jid.JID    // written over the stanza's from and to
}

// scan copies the message (start, then r up to start's end element) into w
// as it will be stored, with from/to replaced and forged stanza-ids (and
// optionally muc#user elements) removed, and classifies its children.
func scan(r xml.TokenReader, start xml.StartElement, o scanOptions, w *xmlWriter) (facts, error) {
	var f facts
	f.typ, _ = startAttr(start, "type")
	out := xml.StartElement{Name: xml.Name{Space: stanza.NSClient, Local: "message"}, Attr: make([]xml.Attr, 0, len(start.Attr)+2)}
	for _, at := range start.Attr {
		if at.Name.Space == "" && (at.Name.Local == "from" || at.Name.Local == "to") {
			continue
		}
		out.Attr = append(out.Attr, at)
	}
	if s := o.from.String(); s != "" {
		out.Attr = append(out.Attr, xml.Attr{Name: xml.Name{Local: "from"}, Value: s})
	}
	if s := o.to.String(); s != "" {
		out.Attr = append(out.Attr, xml.Attr{Name: xml.Name{Local: "to"}, Value: s})
	}
	w.start(out)
	depth := 0
	for {
		tok, err := r.Token()
		if err == io.EOF && tok == nil {
			if depth != 0 {
				return f, fmt.Errorf("%w: unexpected end", ErrBadRequest)
			}
			break
		}
		if err != nil && err != io.EOF {
			return f, fmt.Errorf("%w: %v", ErrBadRequest, err)
		}
		if _, ok := tok.(xml.EndElement); ok && depth == 0 {
			break
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				if t.Name.Space == "" || t.Name.Space == stanza.NSServer {
					// Stored and delivered as jabber:client.
					t.Name.Space = stanza.NSClient
				}
				if o.drop(t) {
					if err := xmlutil.Skip(r); err != nil {
						return f, fmt.Errorf("%w: %v", ErrBadRequest, err)
					}
					continue
				}
				f.classify(t.Name)
			}
			depth++
			w.start(t)
		case xml.EndElement:
			depth--
			w.end(t)
		case xml.CharData:
			w.token(t)
		}
		if err == io.EOF {
			if depth != 0 {
				return f, fmt.Errorf("%w: unexpected end", ErrBadRequest)
			}
			break
		}
	}
	w.end(xml.EndElement{Name: out.Name})
	return f, nil
}

// drop reports whether a direct child of the message is to be removed.
func (o scanOptions) drop(t xml.StartElement) bool {
	if o.stripMUCUser && t.Name.Space == muc.NSUser && t.Name.Local == "x" {
		return true
	}
	if t.Name.Space != stanza.NSSid || t.Name.Local != "stanza-id" {
		return false
	}
	by, _ := startAttr(t, "by")
	j, err := jid.Parse(by)
	if err != nil {
		// Nobody can rely on an unparsable by; drop it rather than pass
		// something that may look like ours to a lenient client.
		return true
	}
	for _, s := range o.strip {
		if s.Domainpart() != "" && s.Equal(j) {
			return true
		}
	}
	return false
}

// sliceReader reads tokens from a slice.
type sliceReader struct {
	toks []xml.Token
	i    int
}

func (s *sliceReader) Token() (xml.Token, error) {
	if s.i >= len(s.toks) {
		return nil, io.EOF
	}
	t := s.toks[s.i]
	s.i++
	return t, nil
}
