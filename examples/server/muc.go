package main

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"chatbx.eu/privacy/mam"
	"mellium.im/xmlstream"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/form"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/muc"
	"mellium.im/xmpp/stanza"
)

// The XEP-0045 names that neither mellium's muc package nor mam exports.
const (
	nsRoomConfig    = "http://jabber.org/protocol/muc#roomconfig" // FORM_TYPE of the owner's form
	fieldFormType   = "FORM_TYPE"
	statusSelf      = "110"
	statusCreated   = "201"
	statusNewNick   = "303"
	affiliationOwn  = "owner"
	affiliationNone = "none"
)

// mucService is a minimal XEP-0045 service at conference.<domain>.
//
// Rooms are semi-anonymous: occupants see each other's nicknames only; the
// real JIDs are shown to the room owner alone. The room archive does store
// real JIDs: each message with the sender's bare real JID beside the stored
// stanza (archiveRoom passes anonymous false, so mam keeps
// Message.RealJID). A query shows it to the owner only (roomAccess in
// wire.go), and an account's deletion erases the user's room messages by
// it (mam.BoltConfig.EraseGroupMessages). A room is created by joining it;
// its creator is the owner, who may turn archiving on in the owner
// configuration form (off in a new room) and destroy the room. A user owns at most Config.MaxOwnedRooms rooms.
// Rooms are open (anyone on the server may join) and persistent: the owner
// and the archiving switch survive a restart, occupants do not. Messages
// are not replayed on join (no MUC history): archived rooms are read with
// MAM.
type mucService struct {
	srv *Server

	mu    sync.Mutex
	rooms map[string]*room // room localpart → room
}

type room struct {
	jid       jid.JID // bare room JID
	owner     jid.JID // bare JID of the creator
	archiving bool
	occupants map[string]*session // nick → session
}

func newMUCService(srv *Server) (*mucService, error) {
	m := &mucService{srv: srv, rooms: make(map[string]*room)}
	saved, err := srv.store.rooms()
	if err != nil {
		return nil, err
	}
	for name, c := range saved {
		rj, err1 := jid.New(name, conferenceHost(srv.cfg.Domain), "")
		owner, err2 := jid.Parse(c.Owner)
		if err1 != nil || err2 != nil {
			continue
		}
		m.rooms[name] = &room{jid: rj, owner: owner, archiving: c.Archiving, occupants: make(map[string]*session)}
	}
	return m, nil
}

// nickOf returns the session's nick in r, if it is an occupant.
func (r *room) nickOf(s *session) (string, bool) {
	for nick, o := range r.occupants {
		if o == s {
			return nick, true
		}
	}
	return "", false
}

// occupantJID is room@service/nick.
func (r *room) occupantJID(nick string) jid.JID {
	j, _ := r.jid.WithResource(nick)
	return j
}

// presenceStart is a <presence/> start element.
func presenceStart(from, to jid.JID, typ string) xml.StartElement {
	start := xml.StartElement{Name: xml.Name{Space: stanza.NSClient, Local: "presence"}}
	if !from.Equal(jid.JID{}) {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "from"}, Value: from.String()})
	}
	if !to.Equal(jid.JID{}) {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "to"}, Value: to.String()})
	}
	if typ != "" {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "type"}, Value: typ})
	}
	return start
}

// occupantPresence is the presence of occupant nick as seen by viewer.
func (r *room) occupantPresence(nick string, occ, viewer *session, typ string, codes []string, newNick string) element {
	affiliation, role := affiliationNone, "participant"
	if occ.jid.Bare().Equal(r.owner) {
		affiliation, role = affiliationOwn, "moderator"
	}
	if typ == "unavailable" {
		role = "none"
	}
	item := xml.StartElement{Name: xml.Name{Space: muc.NSUser, Local: "item"}, Attr: []xml.Attr{
		{Name: xml.Name{Local: "affiliation"}, Value: affiliation},
		{Name: xml.Name{Local: "role"}, Value: role},
	}}
	if viewer.jid.Bare().Equal(r.owner) || viewer == occ {
		// Semi-anonymous: the real JID is shown to the owner (and to itself).
		item.Attr = append(item.Attr, xml.Attr{Name: xml.Name{Local: "jid"}, Value: occ.jid.String()})
	}
	if newNick != "" {
		item.Attr = append(item.Attr, xml.Attr{Name: xml.Name{Local: "nick"}, Value: newNick})
	}
	x := xml.StartElement{Name: xml.Name{Space: muc.NSUser, Local: "x"}}
	toks := []xml.Token{x, item, item.End()}
	for _, c := range codes {
		st := xml.StartElement{Name: xml.Name{Space: muc.NSUser, Local: "status"},
			Attr: []xml.Attr{{Name: xml.Name{Local: "code"}, Value: c}}}
		toks = append(toks, st, st.End())
	}
	toks = append(toks, x.End())
	return element{start: presenceStart(r.occupantJID(nick), viewer.jid, typ), inner: toks}
}

// handlePresence joins, changes nick in, updates presence in or leaves a
// room.
func (m *mucService) handlePresence(s *session, t xmlstream.TokenReadEncoder, e element, to jid.JID) error {
	typ := e.attr("type")
	nick := to.Resourcepart()
	if typ != "" && typ != "unavailable" {
		return nil // subscriptions and probes to rooms: ignored
	}
	if nick == "" {
		return s.replyError(t, e, stanza.Error{Type: stanza.Modify, Condition: stanza.JIDMalformed})
	}
	name := to.Localpart()

	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rooms[name]
	if typ == "unavailable" {
		if r != nil {
			m.leaveLocked(r, s)
		}
		return nil
	}
	if !m.mayJoin(r, s.jid) { // never today: every session is a local account
		return s.replyError(t, e, stanza.Error{Type: stanza.Auth, Condition: stanza.Forbidden})
	}
	created := false
	if r == nil {
		r = &room{jid: to.Bare(), owner: s.jid.Bare(), occupants: make(map[string]*session)}
		// A new room starts with an empty archive. No live room has this
		// name, so an archive under it is a leftover of an earlier room
		// (its owner's account deleted, an erasure interrupted) that the
		// new room's occupants must not read.
		if err := m.eraseArchive(r.jid); err != nil {
			return s.replyError(t, e, stanza.Error{Type: stanza.Wait, Condition: stanza.InternalServerError})
		}
		limit := m.srv.cfg.roomLimit()
		if err := m.srv.store.createRoom(name, roomConfig{Owner: r.owner.String()}, limit); err != nil {
			return s.replyError(t, e, roomCreateError(err, limit))
		}
		m.rooms[name] = r
		created = true
	}
	if other, taken := r.occupants[nick]; taken && other != s {
		return s.replyError(t, e, stanza.Error{Type: stanza.Cancel, Condition: stanza.Conflict})
	}
	oldNick, joined := r.nickOf(s)
	switch {
	case joined && oldNick != nick: // nick change
		for _, o := range r.occupants {
			codes := []string(nil)
			if o == s {
				codes = []string{statusNewNick, statusSelf}
			} else {
				codes = []string{statusNewNick}
			}
			o.send(r.occupantPresence(oldNick, s, o, "unavailable", codes, nick))
		}
		delete(r.occupants, oldNick)
		r.occupants[nick] = s
		m.broadcastJoin(r, nick, s, nil)
	case joined: // presence update: rebroadcast
		m.broadcastJoin(r, nick, s, nil)
	default: // join
		nicks := make([]string, 0, len(r.occupants))
		for n := range r.occupants {
			nicks = append(nicks, n)
		}
		sort.Strings(nicks)
		for _, n := range nicks {
			s.send(r.occupantPresence(n, r.occupants[n], s, "", nil, ""))
		}
		r.occupants[nick] = s
		var extra []string
		if created {
			extra = []string{statusCreated}
		}
		m.broadcastJoin(r, nick, s, extra)
		// The subject (empty) ends the join, XEP-0045 § 7.2.15.
		subj := xml.StartElement{Name: xml.Name{Space: stanza.NSClient, Local: "subject"}}
		s.send(element{start: xml.StartElement{
			Name: xml.Name{Space: stanza.NSClient, Local: "message"},
			Attr: []xml.Attr{
				{Name: xml.Name{Local: "from"}, Value: r.jid.String()},
				{Name: xml.Name{Local: "to"}, Value: s.jid.String()},
				{Name: xml.Name{Local: "type"}, Value: "groupchat"},
				{Name: xml.Name{Local: "id"}, Value: randomResource()},
			},
		}, inner: []xml.Token{subj, subj.End()}})
	}
	return nil
}

// mayJoin reports whether user may join r (nil: a room user would
// create). Every room is open (no members-only rooms, no bans): any account
// of this server may join. The archive of an archiving room is readable by
// exactly these users (roomAccess), also before they join. Called with m.mu
// held.
func (m *mucService) mayJoin(_ *room, user jid.JID) bool {
	return user.Localpart() != "" && user.Domainpart() == m.srv.cfg.Domain
}

// roomCreateError is the presence error for a refused room creation.
//
// A user who owns Config.MaxOwnedRooms rooms gets not-allowed (type
// cancel): XEP-0045 § 10.1 (Creating a Room) answers a user whom the
// service does not let create a room with not-allowed, and clients show it
// that way; the text says why. resource-constraint would say the service
// is short of resources, which it is not, and invite a retry.
func roomCreateError(err error, limit int) stanza.Error {
	if errors.Is(err, errRoomLimit) {
		return stanza.Error{Type: stanza.Cancel, Condition: stanza.NotAllowed, Text: map[string]string{
			"en": fmt.Sprintf("you own the maximum of %d rooms: destroy one of them or join an existing room", limit)}}
	}
	return stanza.Error{Type: stanza.Wait, Condition: stanza.InternalServerError}
}

// broadcastJoin sends occupant nick's presence to every occupant; the
// occupant itself gets status 110 and the extra codes.
func (m *mucService) broadcastJoin(r *room, nick string, s *session, extra []string) {
	for _, o := range r.occupants {
		var codes []string
		if o == s {
			codes = append([]string{statusSelf}, extra...)
		}
		o.send(r.occupantPresence(nick, s, o, "", codes, ""))
	}
}

// leaveLocked removes s from r and tells everyone, s included.
func (m *mucService) leaveLocked(r *room, s *session) {
	nick, ok := r.nickOf(s)
	if !ok {
		return
	}
	for _, o := range r.occupants {
		var codes []string
		if o == s {
			codes = []string{statusSelf}
		}
		o.send(r.occupantPresence(nick, s, o, "unavailable", codes, ""))
	}
	delete(r.occupants, nick)
}

// leaveAll takes s out of every room (session ended or went unavailable).
func (m *mucService) leaveAll(s *session) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.rooms {
		m.leaveLocked(r, s)
	}
}

// forgetOwner drops the ownership of rooms owned by user (account
// deleted). An empty room goes, with its archive: nobody could read the
// archive any more, and the room's name may be taken again. A room with
// occupants lives on without owner until the server stops.
func (m *mucService) forgetOwner(user jid.JID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, r := range m.rooms {
		if r.owner.Equal(user.Bare()) && len(r.occupants) == 0 {
			delete(m.rooms, name)
			if err := m.eraseArchive(r.jid); err != nil {
				// Erased at the latest when the name is taken again.
				m.srv.log.Error("erasing the archive of a deleted room", "err", err)
			}
		} else if r.owner.Equal(user.Bare()) {
			r.owner = jid.JID{}
		}
	}
}

// eraseArchive deletes the message archive of room (a bare room JID), if
// the server archives.
func (m *mucService) eraseArchive(room jid.JID) error {
	if m.srv.mamStore == nil {
		return nil
	}
	return m.srv.mamStore.Erase(context.Background(), room)
}

// handleMessage handles a message to a room (groupchat) or to an occupant
// (private message).
func (m *mucService) handleMessage(s *session, t xmlstream.TokenReadEncoder, e element, to jid.JID) error {
	typ := e.attr("type")
	m.mu.Lock()
	r := m.rooms[to.Localpart()]
	if r == nil {
		m.mu.Unlock()
		return s.replyError(t, e, stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound})
	}
	nick, joined := r.nickOf(s)
	if !joined {
		m.mu.Unlock()
		return s.replyError(t, e, stanza.Error{Type: stanza.Modify, Condition: stanza.NotAcceptable})
	}
	from := r.occupantJID(nick)
	if to.Resourcepart() != "" { // private message to an occupant
		target, ok := r.occupants[to.Resourcepart()]
		m.mu.Unlock()
		if !ok {
			return s.replyError(t, e, stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound})
		}
		target.send(e.withAttr("from", from.String()).withAttr("to", target.jid.String()))
		return nil
	}
	if typ != "groupchat" {
		m.mu.Unlock()
		return s.replyError(t, e, stanza.Error{Type: stanza.Modify, Condition: stanza.NotAcceptable})
	}
	archiving := r.archiving
	roomJID := r.jid
	targets := make([]*session, 0, len(r.occupants))
	for _, o := range r.occupants {
		targets = append(targets, o)
	}
	m.mu.Unlock()

	out := e.withAttr("from", from.String())
	if archiving {
		out = archiveRoom(context.Background(), m.srv.archiver, roomJID, from, s.jid, out)
	} else {
		out = out.withInner(stripStanzaIDs(out.inner, roomJID.String()))
	}
	for _, o := range targets {
		o.send(out.withAttr("to", o.jid.String()))
	}
	return nil
}

// archiveRoom stores a message of a room with archiving on, from occupant
// (sent by realJID), and returns the copy to broadcast, stamped with the
// room's stanza-id. Not anonymous for the archive: it keeps the sender's
// real JID apart from the stored stanza (shown to the owner only), so that
// the account's erasure finds the user's room messages.
func archiveRoom(ctx context.Context, a *mam.Archiver, room, occupant, realJID jid.JID, e element) element {
	res, _ := a.ArchiveRoom(ctx, mam.RoomMessage{
		Room:     room,
		Occupant: occupant,
		RealJID:  realJID, // semi-anonymous rooms: kept apart, shown to the owner
		Stanza:   mam.Stanza{Start: e.start, Inner: e.inner},
	})
	if !res.Deliver.IsZero() {
		return element{start: res.Deliver.Start, inner: res.Deliver.Inner}
	}
	// Unreadable for the archiver: broadcast unarchived, without any
	// stanza-id forged in the room's name.
	return e.withInner(stripStanzaIDs(e.inner, room.Bare().String()))
}

// stripStanzaIDs removes XEP-0359 stanza-ids claiming to be by, which only
// this server may set.
func stripStanzaIDs(inner []xml.Token, by string) []xml.Token {
	out := make([]xml.Token, 0, len(inner))
	skip := 0
	for _, tok := range inner {
		if skip > 0 {
			switch tok.(type) {
			case xml.StartElement:
				skip++
			case xml.EndElement:
				skip--
			}
			continue
		}
		if st, ok := tok.(xml.StartElement); ok && st.Name == (xml.Name{Space: stanza.NSSid, Local: "stanza-id"}) {
			for _, a := range st.Attr {
				if a.Name.Local == "by" && a.Value == by {
					skip = 1
				}
			}
			if skip > 0 {
				continue
			}
		}
		out = append(out, tok)
	}
	return out
}

// serviceInfo is the disco of conference.<domain>; items are the rooms.
func (m *mucService) serviceInfo() discoInfo {
	info := discoInfo{
		Identities: []discoIdentity{{Category: "conference", Type: "text", Name: "Group chats"}},
		Features:   []string{muc.NS},
	}
	m.mu.Lock()
	jids := make([]string, 0, len(m.rooms))
	for _, r := range m.rooms {
		jids = append(jids, r.jid.String())
	}
	m.mu.Unlock()
	sort.Strings(jids)
	size := 0
	for _, j := range jids {
		if size += len(j); size > maxListedRoomBytes {
			break // a partial list, as XEP-0045 § 6.3 allows
		}
		info.Items = append(info.Items, discoItem{JID: j})
	}
	return info
}

// maxListedRoomBytes bounds the room JIDs listed in the service's
// disco#items: the answer is built through marshalReader, whose parse step
// caps an element at maxStanzaBytes, so a full list of many rooms with
// long names was answered internal-server-error. The first rooms in JID
// order are listed (at least 62 rooms with the longest names, about 2,500
// with 25-byte JIDs); the others are still joined by name.
const maxListedRoomBytes = 64 << 10

// roomInfo is a room's disco: the archive's features only while archiving
// is on.
func roomInfo(r *room) discoInfo {
	return discoInfo{
		Identities: []discoIdentity{{Category: "conference", Type: "text", Name: r.jid.Localpart()}},
		Features: append([]string{muc.NS, "muc_semianonymous", "muc_open", "muc_persistent", "muc_unmoderated", "muc_unsecured"},
			mam.RoomFeatures(r.archiving)...),
	}
}

// handleIQ answers IQs to a room: disco, owner configuration, archive.
func (m *mucService) handleIQ(s *session, t xmlstream.TokenReadEncoder, e element, iq stanza.IQ, payload xml.StartElement, to jid.JID) error {
	m.mu.Lock()
	r := m.rooms[to.Localpart()]
	if r == nil {
		m.mu.Unlock()
		return s.replyError(t, e, stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound})
	}
	isOwner := s.jid.Bare().Equal(r.owner)
	info := roomInfo(r)
	archiving := r.archiving
	m.mu.Unlock()

	switch payload.Name.Space {
	case disco.NSInfo, disco.NSItems:
		return s.answerDisco(t, iq, payload, info)
	case muc.NSOwner:
		if !isOwner {
			return s.replyError(t, e, stanza.Error{Type: stanza.Auth, Condition: stanza.Forbidden})
		}
		if iq.Type == stanza.GetIQ {
			return m.sendConfigForm(t, iq, archiving)
		}
		if q, ok := e.child(xml.Name{Space: muc.NSOwner, Local: "query"}); ok {
			if d, ok := q.child(xml.Name{Space: muc.NSOwner, Local: "destroy"}); ok {
				return m.destroy(s, t, e, to, d)
			}
		}
		return m.setConfig(s, t, e, to)
	case mam.NS:
		if !archiving {
			return s.replyError(t, e, stanza.Error{Type: stanza.Cancel, Condition: stanza.ServiceUnavailable})
		}
		start := e.start.Copy()
		// mam's Handler answers it, authorized by roomAccess (wire.go).
		return m.srv.userMux.HandleXMPP(readWriter{TokenReader: e.innerReader(), Encoder: t}, &start)
	}
	return s.replyError(t, e, stanza.Error{Type: stanza.Cancel, Condition: stanza.FeatureNotImplemented})
}

// sendConfigForm answers the owner's configuration request: a form with
// the archiving switch (mam.RoomConfigField).
func (m *mucService) sendConfigForm(t xmlstream.TokenReadEncoder, iq stanza.IQ, archiving bool) error {
	field := func(name, typ, value string) xml.TokenReader {
		return xmlstream.Wrap(
			xmlstream.Wrap(xmlstream.Token(xml.CharData(value)), xml.StartElement{Name: xml.Name{Space: form.NS, Local: "value"}}),
			xml.StartElement{Name: xml.Name{Space: form.NS, Local: "field"}, Attr: []xml.Attr{
				{Name: xml.Name{Local: "var"}, Value: name}, {Name: xml.Name{Local: "type"}, Value: typ}}})
	}
	title := xml.StartElement{Name: xml.Name{Space: form.NS, Local: "title"}}
	x := xml.StartElement{Name: xml.Name{Space: form.NS, Local: "x"}, Attr: []xml.Attr{{Name: xml.Name{Local: "type"}, Value: "form"}}}
	q := xml.StartElement{Name: xml.Name{Space: muc.NSOwner, Local: "query"}}
	_, err := xmlstream.Copy(t, iq.Result(xmlstream.Wrap(xmlstream.Wrap(xmlstream.MultiReader(
		xmlstream.Wrap(xmlstream.Token(xml.CharData("Room configuration")), title),
		field(fieldFormType, "hidden", nsRoomConfig),
		mam.RoomConfigField(archiving),
	), x), q)))
	return err
}

// destroy destroys a room at its owner's request (XEP-0045 § 10.9): every
// occupant gets an unavailable presence carrying the <destroy/> (with the
// alternate room and reason the owner gave), then the room, its place in
// the owner index and its archive are deleted, and the owner may create
// another room in its stead.
func (m *mucService) destroy(s *session, t xmlstream.TokenReadEncoder, e element, to jid.JID, d element) error {
	iq, _ := stanza.NewIQ(e.start)
	name := to.Localpart()
	// The notice to occupants: the alternate room only if it is a JID,
	// the reason as text.
	notice := xml.StartElement{Name: xml.Name{Space: muc.NSUser, Local: "destroy"}}
	if alt, err := jid.Parse(d.attr("jid")); err == nil && d.attr("jid") != "" {
		notice.Attr = []xml.Attr{{Name: xml.Name{Local: "jid"}, Value: alt.Bare().String()}}
	}
	noticeToks := []xml.Token{notice}
	if rs, ok := d.child(xml.Name{Space: muc.NSOwner, Local: "reason"}); ok && rs.text() != "" {
		reason := xml.StartElement{Name: xml.Name{Space: muc.NSUser, Local: "reason"}}
		noticeToks = append(noticeToks, reason, xml.CharData(rs.text()), reason.End())
	}
	noticeToks = append(noticeToks, notice.End())

	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rooms[name]
	if r == nil {
		return s.replyError(t, e, stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound})
	}
	if !s.jid.Bare().Equal(r.owner) {
		return s.replyError(t, e, stanza.Error{Type: stanza.Auth, Condition: stanza.Forbidden})
	}
	if err := m.srv.store.deleteRoom(name); err != nil {
		return s.replyError(t, e, stanza.Error{Type: stanza.Wait, Condition: stanza.InternalServerError})
	}
	delete(m.rooms, name)
	for nick, o := range r.occupants {
		x := xml.StartElement{Name: xml.Name{Space: muc.NSUser, Local: "x"}}
		item := xml.StartElement{Name: xml.Name{Space: muc.NSUser, Local: "item"}, Attr: []xml.Attr{
			{Name: xml.Name{Local: "affiliation"}, Value: affiliationNone},
			{Name: xml.Name{Local: "role"}, Value: "none"},
		}}
		inner := append([]xml.Token{x, item, item.End()}, noticeToks...)
		inner = append(inner, x.End())
		o.send(element{start: presenceStart(r.occupantJID(nick), o.jid, "unavailable"), inner: inner})
	}
	if err := m.eraseArchive(r.jid); err != nil {
		// Erased at the latest when the name is taken again.
		m.srv.log.Error("erasing the archive of a destroyed room", "err", err)
	}
	_, err := xmlstream.Copy(t, iq.Result(nil))
	return err
}

// setConfig applies a submitted configuration form (or a cancel).
func (m *mucService) setConfig(s *session, t xmlstream.TokenReadEncoder, e element, to jid.JID) error {
	iq, _ := stanza.NewIQ(e.start)
	q, ok := e.child(xml.Name{Space: muc.NSOwner, Local: "query"})
	if !ok {
		return s.replyError(t, e, stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest})
	}
	x, ok := q.child(xml.Name{Space: form.NS, Local: "x"})
	if !ok {
		return s.replyError(t, e, stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest})
	}
	switch x.attr("type") {
	case "cancel":
		_, err := xmlstream.Copy(t, iq.Result(nil))
		return err
	case "submit":
	default:
		return s.replyError(t, e, stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest})
	}
	var archiving *bool
	for _, f := range x.children() {
		if f.start.Name.Local != "field" {
			continue
		}
		v, _ := f.child(xml.Name{Space: form.NS, Local: "value"})
		val := strings.TrimSpace(v.text())
		switch f.attr("var") {
		case fieldFormType:
			if val != nsRoomConfig {
				return s.replyError(t, e, stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest})
			}
		case mam.FieldEnableArchiving:
			b, ok := parseBool(val)
			if !ok {
				return s.replyError(t, e, stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest})
			}
			archiving = &b
		}
	}
	m.mu.Lock()
	r := m.rooms[to.Localpart()]
	var err error
	if r != nil && archiving != nil {
		r.archiving = *archiving
		err = m.srv.store.saveRoom(to.Localpart(), roomConfig{Owner: r.owner.String(), Archiving: r.archiving})
	}
	m.mu.Unlock()
	if err != nil {
		return s.replyError(t, e, stanza.Error{Type: stanza.Wait, Condition: stanza.InternalServerError})
	}
	_, err = xmlstream.Copy(t, iq.Result(nil))
	return err
}

// parseBool parses an XEP-0004 boolean (mam.FieldEnableArchiving's
// value). mellium's form package reads a boolean only from a field whose
// submission says type='boolean', which clients leave out.
func parseBool(s string) (v, ok bool) {
	switch s {
	case "1", "true":
		return true, true
	case "0", "false":
		return false, true
	}
	return false, false
}
