package mam

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"time"

	"chatbx.eu/privacy/internal/xmlutil"
	"mellium.im/xmlstream"
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

// Stanza is a <message/> element in one of the two forms a server holds it
// in: serialized (Bytes), or decoded into tokens (Start and Inner), as a
// mellium.im/xmpp server reads it. Exactly one form is set. The Archiver
// returns the message to deliver in the form it was given, built during
// its one pass over the stanza, so a caller never parses it again.
//
// A struct rather than an xml.TokenReader: the Archiver must know the form
// to answer in it, and a caller keeps the original to fall back on when the
// stanza cannot be read, which a consumed reader would not allow.
type Stanza struct {
	// Bytes is the whole serialized element.
	Bytes []byte

	// Start is the <message/> start element and Inner its content as read
	// by xmlstream.ReadAll(xmlstream.Inner(r)); the closing end element may
	// be included or not. In a Result, Inner never holds the end element,
	// names carry their namespace in Name.Space (no xmlns attributes are
	// added), and its tokens may be shared with the caller's Inner, which
	// the Archiver never modifies.
	Start xml.StartElement
	Inner []xml.Token
}

// IsZero reports whether s holds no element: neither Bytes nor Start is
// set. A Result's Deliver is zero only when the stanza could not be read.
func (s Stanza) IsZero() bool {
	return len(s.Bytes) == 0 && s.Start.Name.Local == ""
}

// TokenReader returns the element's tokens, whichever form s holds, for
// example for a mellium session's Send. Bytes are decoded lazily: a
// malformed element is reported by the reader.
func (s Stanza) TokenReader() xml.TokenReader {
	if s.Start.Name.Local == "" {
		return xml.NewDecoder(bytes.NewReader(s.Bytes))
	}
	inner := s.Inner
	if n := len(inner); n > 0 {
		if _, ok := inner[n-1].(xml.EndElement); ok && balanced(inner[:n-1]) {
			inner = inner[:n-1]
		}
	}
	return xmlstream.Wrap(&sliceReader{toks: inner}, s.Start)
}

// balanced reports whether toks closes every element it opens.
func balanced(toks []xml.Token) bool {
	depth := 0
	for _, t := range toks {
		switch t.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		}
	}
	return depth == 0
}

// Chat is a routed one-to-one message, as Archiver.Archive takes it.
type Chat struct {
	// From is the sender's full JID as the server authenticated it (the
	// server overwrites any client-supplied from before routing).
	// Required.
	From jid.JID

	// To is the address the message was sent to. Required.
	To jid.JID

	// Stanza is the whole <message/> element. Its own from and to are
	// ignored: From and To are written into the stored and delivered
	// copies. Required.
	Stanza Stanza
}

// Result tells what the Archiver did with a message.
type Result struct {
	// Deliver is the message to deliver, in the form the caller gave
	// (Bytes in, Bytes out; tokens in, tokens out): the from and to the
	// Archiver was given, every stanza-id forged with the by of an archive
	// we stamp removed, and, when the recipient's (or room's) archive
	// stored it, <stanza-id id=RecipientID by=archive/> as its last child.
	// It is set whenever the stanza could be read, even with an error: an
	// archiving failure must not lose the message. A mellium server sends
	// it with sess.Send(ctx, res.Deliver.TokenReader()). It is zero when
	// the stanza was not a well-formed <message/>: drop or bounce it then,
	// never forward the original, which may carry forged stanza-ids.
	Deliver Stanza

	// SenderID is the archive id in the sender's archive ("" if not stored
	// there). A server stamps the sender's carbon copies with it (by = the
	// sender's bare JID); it must never reach the recipient.
	SenderID string

	// RecipientID is the archive id in the recipient's archive, or in the
	// room's archive for ArchiveRoom ("" if not stored).
	RecipientID string
}

// Archive archives a routed one-to-one message in the sender's and the
// recipient's archives, each by its own owner's preferences, and returns
// the message to deliver.
//
// A Chat without From, To or Stanza, or with both forms of Stanza set, is
// an error wrapping ErrBadRequest and leaves Deliver zero; so is a stanza
// that is not a well-formed <message/>.
//
// A message is archived only when it is of type chat or normal (or has no
// type), carries a <body/> or an encrypted payload (OMEMO, OpenPGP) or an
// XEP-0334 <store/> hint, is not a carbon or MAM result copy, has no
// <no-store/> or <no-permanent-store/> hint, and the archive owner's
// preferences allow the peer (see Prefs.Allows: users who never set
// preferences archive nothing). A message larger than Config.MaxStanzaSize
// (serialized as stored) is not stored: the error wraps ErrTooLarge and
// Deliver is still set.
func (a *Archiver) Archive(ctx context.Context, c Chat) (Result, error) {
	var pl archivePlan // on the stack: Archive allocates no plan
	if err := a.plan(ctx, c, &pl); err != nil || len(pl.owners) == 0 {
		return pl.res, err
	}
	ids := make([]string, len(pl.owners))
	for i, o := range pl.owners {
		m, err := a.store.Append(ctx, pl.message(o))
		if err != nil {
			pl.errs = append(pl.errs, fmt.Errorf("mam: append: %w", err))
			continue
		}
		ids[i] = m.ID
	}
	return pl.finish(ids), errors.Join(pl.errs...)
}

// ArchiveAll is Archive for several messages, in the order given: results
// and errors are index for index those Archive would return for each. The
// messages' appends go to the store together and in order, which a
// BoltStore commits in one write transaction (one fsync) rather than one
// per message; other stores get one Append after the other. When it
// returns, every message stored is committed, as with Archive.
func (a *Archiver) ArchiveAll(ctx context.Context, cs []Chat) ([]Result, []error) {
	b := a.planAll(ctx, cs)
	var stored []Message
	var serrs []error
	if ba, ok := a.store.(batchAppender); ok && len(b.msgs) > 1 {
		stored, serrs = ba.appendAll(ctx, b.msgs)
	} else {
		stored, serrs = make([]Message, len(b.msgs)), make([]error, len(b.msgs))
		for i, m := range b.msgs {
			stored[i], serrs[i] = a.store.Append(ctx, m)
		}
	}
	ids := make([]string, len(stored))
	for k := range stored {
		ids[k] = stored[k].ID
	}
	b.finish(ids, serrs)
	return b.res, b.errs
}

// plannedBatch is ArchiveAll's or StageAll's batch once planned.
type plannedBatch struct {
	res   []Result
	errs  []error
	plans []archivePlan
	msgs  []Message // the appends, in order
	chat  []int     // chat[k] is the index in the batch of msgs[k]
}

// planAll plans every message of cs: res and errs are final for those no
// archive stores; the appends of the others are in msgs.
func (a *Archiver) planAll(ctx context.Context, cs []Chat) *plannedBatch {
	b := &plannedBatch{res: make([]Result, len(cs)), errs: make([]error, len(cs)), plans: make([]archivePlan, len(cs))}
	for i, c := range cs {
		pl := &b.plans[i]
		if err := a.plan(ctx, c, pl); err != nil || len(pl.owners) == 0 {
			b.res[i], b.errs[i] = pl.res, err
			pl.owners = nil // done: no append
			continue
		}
		for _, o := range pl.owners {
			b.msgs = append(b.msgs, pl.message(o))
			b.chat = append(b.chat, i)
		}
	}
	return b
}

// finish sets the results and errors of the planned messages from the ids
// and errors of their appends, index for index with b.msgs.
func (b *plannedBatch) finish(ids []string, serrs []error) {
	k := 0
	for i := range b.plans {
		pl := &b.plans[i]
		if len(pl.owners) == 0 {
			continue
		}
		pids := make([]string, len(pl.owners))
		for j := range pl.owners {
			if serrs[k] != nil {
				pl.errs = append(pl.errs, fmt.Errorf("mam: append: %w", serrs[k]))
			} else {
				pids[j] = ids[k]
			}
			k++
		}
		b.res[i], b.errs[i] = pl.finish(pids), errors.Join(pl.errs...)
	}
}

// batchAppender is a Store that appends several messages in order in one
// commit (BoltStore).
type batchAppender interface {
	appendAll(ctx context.Context, ms []Message) ([]Message, []error)
}

// archivePlan is a scanned message and the archives that store it.
type archivePlan struct {
	sc        scanner
	res       Result
	stored    []byte
	now       time.Time
	sender    jid.JID
	recipient jid.JID
	from, to  jid.JID
	owners    []jid.JID // the sender's archive first, then the recipient's
	errs      []error
}

// plan scans c and decides which archives store it: the sender's (peer:
// the address it was sent to) and the recipient's (peer: the sender's full
// JID), each by its owner's preferences; a message to oneself once. With
// no owner, pl.res is the answer.
func (a *Archiver) plan(ctx context.Context, c Chat, pl *archivePlan) error {
	switch {
	case c.From.Domainpart() == "":
		return fmt.Errorf("%w: Chat.From missing", ErrBadRequest)
	case c.To.Domainpart() == "":
		return fmt.Errorf("%w: Chat.To missing", ErrBadRequest)
	}
	pl.from, pl.to = c.From, c.To
	pl.sender, pl.recipient = c.From.Bare(), c.To.Bare()
	sc := &pl.sc
	if err := sc.init(c.Stanza, scanOptions{
		strip: [2]jid.JID{pl.sender, pl.recipient},
		from:  pl.from,
		to:    pl.to,
	}); err != nil {
		return err
	}
	f, err := sc.scan()
	if err != nil {
		return err
	}
	pl.stored = sc.w.buf
	pl.res.Deliver = sc.deliver(false)
	if f.typ == "groupchat" || !f.archivable() {
		return nil
	}
	if len(pl.stored) > a.cfg.maxStanzaSize() {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, len(pl.stored))
	}
	pl.now = a.cfg.now()
	owners := [2]jid.JID{pl.sender, pl.recipient}
	n := 2
	if pl.recipient.Equal(pl.sender) {
		n = 1 // a message to oneself is archived once
	}
	for i, owner := range owners[:n] {
		peer := pl.to
		if i == 1 {
			peer = pl.from
		}
		ok, err := a.allows(ctx, owner, peer)
		if err != nil {
			pl.errs = append(pl.errs, err)
			continue
		}
		if ok {
			pl.owners = append(pl.owners, owner)
		}
	}
	if len(pl.owners) == 0 && len(pl.errs) > 0 {
		return errors.Join(pl.errs...)
	}
	return nil
}

// message is the Message to append to owner's archive.
func (pl *archivePlan) message(owner jid.JID) Message {
	peer := pl.to
	if !owner.Equal(pl.sender) {
		peer = pl.from
	}
	return Message{Archive: owner, With: peer, Time: pl.now, Stanza: pl.stored}
}

// finish fills the result from the ids the owners' archives assigned ("" for
// a failed append), index for index with pl.owners.
func (pl *archivePlan) finish(ids []string) Result {
	res := pl.res
	for i, o := range pl.owners {
		if o.Equal(pl.sender) {
			res.SenderID = ids[i]
		}
		if o.Equal(pl.recipient) {
			res.RecipientID = ids[i]
		}
	}
	switch {
	case res.RecipientID != "":
		res.Deliver = pl.sc.stamp(res.RecipientID, pl.recipient)
	case res.SenderID != "":
		// The store may keep stored; the caller owns Deliver.
		res.Deliver = pl.sc.deliver(true)
	}
	return res
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

// appendStamp appends <stanza-id xmlns='urn:xmpp:sid:0' id=id by=by/>
// before the end tag of the serialized message msg, into out.
func appendStamp(out, msg []byte, id string, by jid.JID) []byte {
	const end = "</message>"
	out = append(out, msg[:len(msg)-len(end)]...)
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

// scanner makes the Archiver's one pass over a stanza: it writes the copy
// to store into w and, for a stanza given as tokens, collects the tokens to
// deliver on the way.
type scanner struct {
	r      xml.TokenReader
	start  xml.StartElement // the stanza's own start element
	o      scanOptions
	w      xmlWriter
	tokens bool             // given as tokens: answer with out and inner
	out    xml.StartElement // the start element written
	inner  []xml.Token      // the children written, when tokens
}

// init checks that s holds exactly one form of a <message/> and prepares
// to read it.
func (sc *scanner) init(s Stanza, o scanOptions) error {
	sc.o = o
	switch {
	case len(s.Bytes) > 0 && (s.Start.Name.Local != "" || len(s.Inner) > 0):
		return fmt.Errorf("%w: Stanza has both Bytes and Start/Inner", ErrBadRequest)
	case len(s.Bytes) > 0:
		d := xml.NewDecoder(bytes.NewReader(s.Bytes))
		start, err := messageStart(d)
		if err != nil {
			return err
		}
		sc.r, sc.start = d, start
		sc.w.buf = make([]byte, 0, len(s.Bytes)+160)
	case s.Start.Name.Local != "":
		if !isMessage(s.Start.Name) {
			return fmt.Errorf("%w: not a message", ErrBadRequest)
		}
		sc.r, sc.start, sc.tokens = &sliceReader{toks: s.Inner}, s.Start, true
		sc.w.buf = make([]byte, 0, 512+160)
		sc.inner = make([]xml.Token, 0, len(s.Inner)+2) // room for a stamp
	case len(s.Inner) > 0:
		return fmt.Errorf("%w: Stanza.Inner without Stanza.Start", ErrBadRequest)
	default:
		return fmt.Errorf("%w: Stanza missing (neither Bytes nor Start set)", ErrBadRequest)
	}
	return nil
}

// collect adds tok to the tokens to deliver, for a stanza given as tokens.
// Callers pass the token as read when unchanged, so that it is not boxed
// again.
func (sc *scanner) collect(tok xml.Token) {
	if sc.tokens {
		sc.inner = append(sc.inner, tok)
	}
}

// scan copies the message (start, then r up to start's end element) into w
// as it will be stored, with from/to replaced and forged stanza-ids (and
// optionally muc#user elements) removed, and classifies its children.
func (sc *scanner) scan() (facts, error) {
	var f facts
	o, r := sc.o, sc.r
	f.typ, _ = startAttr(sc.start, "type")
	out := xml.StartElement{Name: xml.Name{Space: stanza.NSClient, Local: "message"}, Attr: make([]xml.Attr, 0, len(sc.start.Attr)+2)}
	if !xmlutil.NamesWellFormed(sc.start) {
		return f, fmt.Errorf("%w: invalid XML name", ErrBadRequest)
	}
	for _, at := range sc.start.Attr {
		if at.Name.Space == "xmlns" || at.Name.Space == "" && (at.Name.Local == "from" || at.Name.Local == "to" || at.Name.Local == "xmlns") {
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
	sc.out = out
	sc.w.start(out)
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
			if !xmlutil.NamesWellFormed(t) {
				return f, fmt.Errorf("%w: invalid XML name", ErrBadRequest)
			}
			if depth == 0 {
				if sp := childSpace(t.Name.Space); sp != t.Name.Space {
					t.Name.Space = sp
					if sc.tokens {
						tok = t
					}
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
			sc.w.start(t)
			sc.collect(tok)
		case xml.EndElement:
			depth--
			if depth == 0 {
				if sp := childSpace(t.Name.Space); sp != t.Name.Space {
					t.Name.Space = sp
					if sc.tokens {
						tok = t
					}
				}
			}
			sc.w.end(t)
			sc.collect(tok)
		case xml.CharData:
			sc.w.buf = appendEscaped(sc.w.buf, t, false)
			sc.collect(tok)
		}
		if err == io.EOF {
			if depth != 0 {
				return f, fmt.Errorf("%w: unexpected end", ErrBadRequest)
			}
			break
		}
	}
	sc.w.end(xml.EndElement{Name: out.Name})
	return f, nil
}

// childSpace is the namespace a direct child of the message is stored and
// delivered in: a child in the stream's default namespace (none given, or
// jabber:server) is in jabber:client.
func childSpace(space string) string {
	if space == "" || space == stanza.NSServer {
		return stanza.NSClient
	}
	return space
}

// deliver returns the scanned message, unstamped, in the form it was
// given; with clone, serialized bytes are copied (the store may keep them).
func (sc *scanner) deliver(clone bool) Stanza {
	switch {
	case sc.tokens:
		return Stanza{Start: sc.out, Inner: sc.inner}
	case clone:
		return Stanza{Bytes: bytes.Clone(sc.w.buf)}
	}
	return Stanza{Bytes: sc.w.buf}
}

// stamp returns the scanned message, in the form it was given, with
// <stanza-id xmlns='urn:xmpp:sid:0' id=id by=by/> as its last child.
func (sc *scanner) stamp(id string, by jid.JID) Stanza {
	if !sc.tokens {
		msg := sc.w.buf
		return Stanza{Bytes: appendStamp(make([]byte, 0, len(msg)+len(id)+96), msg, id, by)}
	}
	sid := xml.StartElement{
		Name: xml.Name{Space: stanza.NSSid, Local: "stanza-id"},
		Attr: []xml.Attr{
			{Name: xml.Name{Local: "id"}, Value: id},
			{Name: xml.Name{Local: "by"}, Value: by.String()},
		},
	}
	return Stanza{Start: sc.out, Inner: append(sc.inner, sid, sid.End())}
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
