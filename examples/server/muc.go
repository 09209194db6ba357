package main

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"sort"
	"sync"

	"chatbx.eu/privacy/mam"
	"mellium.im/xmlstream"
	"mellium.im/xmpp/disco"
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

// mucService is the XEP-0045 service at conference.<domain>.
//
// Rooms are semi-anonymous by default: occupants see each other's
// nicknames; real JIDs are shown to moderators (the owner and admins), or
// to everyone in a room configured non-anonymous. The room archive stores
// each message with the sender's bare real JID beside the stored stanza
// (archiveRoom passes anonymous false, so mam keeps Message.RealJID). A
// query shows it to those who see real JIDs in the room (roomAccess in
// wire.go), and an account's deletion erases the user's room messages by
// it (mam.BoltConfig.EraseGroupMessages). A room is created by joining it
// and stays locked until configured (muc_config.go); its creator is its
// one owner, who may turn archiving on in the configuration form (off in
// a new room) and destroy the room. A user owns at most
// Config.MaxOwnedRooms rooms. Affiliations, kicks, bans, members-only
// rooms (muc_admin.go) and invitations (muc_invite.go) follow XEP-0045.
// Configuration and affiliations survive a restart, occupants and the
// subject do not. A joining occupant gets the last messages (discussion
// history, muc_history.go): from the archive of a room that archives, from
// memory otherwise. Moderated and password-protected rooms: muc_voice.go.
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

	// XEP-0045 configuration (muc_config.go) and affiliations other than
	// the owner's (muc_admin.go), persisted in roomConfig.
	locked       bool // new, until the owner configures it (§ 10.1)
	membersOnly  bool
	whoisAnyone  bool // non-anonymous; default semi-anonymous
	hidden       bool // not listed in the service's disco#items
	temporary    bool // destroyed when the last occupant leaves
	subjectByAll bool // participants may change the subject
	name, desc   string
	affiliations map[string]string // bare JID → admin, member or outcast
	moderated    bool              // visitors without voice (muc_voice.go)
	secretSalt   []byte            // password: salt and PBKDF2 hash (muc_voice.go)
	secretHash   []byte
	historyMax   int // muc#maxhistoryfetch: 0 default, < 0 none (muc_history.go)

	subject  string                   // in memory only
	presence map[*session][]xml.Token // occupant → its own presence children (§ 7.14)
	roles    map[*session]string      // voice granted or revoked by a moderator (muc_voice.go)
	history  []historyEntry           // a non-archiving room's last messages, in memory only
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
		r := &room{jid: rj, owner: owner, occupants: make(map[string]*session)}
		r.apply(c)
		m.rooms[name] = r
	}
	return m, nil
}

// nickOf returns the session's nick in r, if it is an occupant.
func (r *room) nickOf(s *session) (string, bool) {
	if r == nil {
		return "", false
	}
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
	return r.occupantPresenceWhy(nick, occ, viewer, typ, codes, newNick, "")
}

// occupantPresenceWhy is occupantPresence with the reason of a kick or ban
// in the item. The occupant's own presence children (<show/>, <status/>,
// caps …, XEP-0045 § 7.14) come first.
func (r *room) occupantPresenceWhy(nick string, occ, viewer *session, typ string, codes []string, newNick, reason string) element {
	affiliation := r.affiliation(occ.jid)
	role := r.roleOf(occ)
	if typ == "unavailable" {
		role = roleNone
	}
	item := xml.StartElement{Name: xml.Name{Space: muc.NSUser, Local: "item"}, Attr: []xml.Attr{
		{Name: xml.Name{Local: "affiliation"}, Value: affiliation},
		{Name: xml.Name{Local: "role"}, Value: role},
	}}
	if r.showsRealJIDs(viewer.jid) || viewer == occ {
		// Semi-anonymous: the real JID is shown to moderators (and to
		// itself); non-anonymous: to everyone.
		item.Attr = append(item.Attr, xml.Attr{Name: xml.Name{Local: "jid"}, Value: occ.jid.String()})
	}
	if newNick != "" {
		item.Attr = append(item.Attr, xml.Attr{Name: xml.Name{Local: "nick"}, Value: newNick})
	}
	x := xml.StartElement{Name: xml.Name{Space: muc.NSUser, Local: "x"}}
	toks := append([]xml.Token(nil), r.presence[occ]...)
	toks = append(toks, x, item)
	if reason != "" {
		rs := xml.StartElement{Name: xml.Name{Space: muc.NSUser, Local: "reason"}}
		toks = append(toks, rs, xml.CharData(reason), rs.End())
	}
	toks = append(toks, item.End())
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
		if _, in := r.nickOf(s); in {
			r.setPresence(s, e) // the exit's <status/> reaches the others
			m.leaveLocked(r, s)
		}
		return nil
	}
	if _, in := r.nickOf(s); !in {
		if se, refused := m.joinRefusal(r, s.jid); refused {
			return s.replyError(t, e, se)
		}
		if r != nil && !r.passwordOK(s.jid, e) { // § 7.2.6
			return s.replyError(t, e, stanza.Error{Type: stanza.Auth, Condition: stanza.NotAuthorized})
		}
	}
	created := false
	if r == nil {
		// A new room is locked until its owner configures it or accepts
		// the defaults (XEP-0045 § 10.1.1).
		r = &room{jid: to.Bare(), owner: s.jid.Bare(), occupants: make(map[string]*session), locked: true}
		// A new room starts with an empty archive. No live room has this
		// name, so an archive under it is a leftover of an earlier room
		// (its owner's account deleted, an erasure interrupted) that the
		// new room's occupants must not read.
		if err := m.eraseArchive(r.jid); err != nil {
			return s.replyError(t, e, stanza.Error{Type: stanza.Wait, Condition: stanza.InternalServerError})
		}
		limit := m.srv.cfg.roomLimit()
		if err := m.srv.store.createRoom(name, r.config(), limit); err != nil {
			return s.replyError(t, e, roomCreateError(err, limit))
		}
		m.rooms[name] = r
		created = true
	}
	if other, taken := r.occupants[nick]; taken && other != s {
		return s.replyError(t, e, stanza.Error{Type: stanza.Cancel, Condition: stanza.Conflict})
	}
	oldNick, joined := r.nickOf(s)
	r.setPresence(s, e)
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
		m.broadcastJoin(r, nick, s, r.joinCodes(created || r.locked))
		for _, h := range m.historyFor(r, s, parseHistoryRequest(e)) { // § 7.2.15
			s.send(h)
		}
		// The subject (maybe empty) ends the join, XEP-0045 § 7.2.15.
		subj := xml.StartElement{Name: xml.Name{Space: stanza.NSClient, Local: "subject"}}
		s.send(element{start: xml.StartElement{
			Name: xml.Name{Space: stanza.NSClient, Local: "message"},
			Attr: []xml.Attr{
				{Name: xml.Name{Local: "from"}, Value: r.jid.String()},
				{Name: xml.Name{Local: "to"}, Value: s.jid.String()},
				{Name: xml.Name{Local: "type"}, Value: "groupchat"},
				{Name: xml.Name{Local: "id"}, Value: randomResource()},
			},
		}, inner: subjectTokens(subj, r.subject)})
	}
	return nil
}

// mayJoin reports whether user may join r (nil: a room user would
// create): an account of this server that joinRefusal lets in. The archive
// of an archiving room is readable by exactly these users (roomAccess),
// also before they join. Called with m.mu held.
func (m *mucService) mayJoin(r *room, user jid.JID) bool {
	_, refused := m.joinRefusal(r, user)
	return !refused
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
	delete(r.presence, s)
	delete(r.roles, s)
	m.dropIfTemporary(r)
}

// leaveAll takes s out of every room (session ended or went unavailable).
func (m *mucService) leaveAll(s *session) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.rooms {
		m.leaveLocked(r, s)
	}
}

// forgetOwner removes user (account deleted) from every room: the rooms
// the user owns are destroyed (occupants told, archive erased; a room has
// one owner here, so there is nobody to hand it to), and the user's
// affiliations in other rooms go. The store's Erase removes the same from
// the file (and finishes the job after a crash).
func (m *mucService) forgetOwner(user jid.JID) {
	bare := user.Bare()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.rooms {
		if r.owner.Equal(bare) {
			m.destroyLocked(r, destroyNotice("", "the owner's account was deleted"))
			continue
		}
		delete(r.affiliations, bare.String())
		r.forgetHistoryOf(bare)
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
	if x, ok := e.child(xml.Name{Space: muc.NSUser, Local: "x"}); ok && to.Resourcepart() == "" && typ != "groupchat" {
		defer m.mu.Unlock()
		return m.mediate(s, t, e, r, x) // invitation or decline, § 7.8.2
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
	if r.roleOf(s) == roleVisitor { // § 7.4: no voice
		m.mu.Unlock()
		return s.replyError(t, e, stanza.Error{Type: stanza.Auth, Condition: stanza.Forbidden,
			Text: map[string]string{"en": "you have no voice in this moderated room"}})
	}
	if subj, ok := e.child(xml.Name{Space: stanza.NSClient, Local: "subject"}); ok {
		if !r.maySetSubject(s.jid) {
			m.mu.Unlock()
			return s.replyError(t, e, stanza.Error{Type: stanza.Auth, Condition: stanza.Forbidden})
		}
		r.subject = subj.text()
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
		if _, subject := e.child(xml.Name{Space: stanza.NSClient, Local: "subject"}); !subject {
			m.mu.Lock()
			if m.rooms[roomJID.Localpart()] == r && !r.archiving {
				r.remember(m.srv.cfg.Now(), s.jid, out.withAttr("to", ""))
			}
			m.mu.Unlock()
		}
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
		if !r.hidden && !r.locked {
			jids = append(jids, r.jid.String())
		}
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
	name := r.name
	if name == "" {
		name = r.jid.Localpart()
	}
	return discoInfo{
		Identities: []discoIdentity{{Category: "conference", Type: "text", Name: name}},
		Features:   append(r.features(), mam.RoomFeatures(r.archiving)...),
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
	if r.locked && !isOwner { // § 10.1.1: nobody else sees a locked room
		m.mu.Unlock()
		return s.replyError(t, e, stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound})
	}
	m.mu.Unlock()

	switch payload.Name.Space {
	case disco.NSInfo, disco.NSItems:
		return s.answerDisco(t, iq, payload, info)
	case muc.NSOwner:
		if !isOwner {
			return s.replyError(t, e, stanza.Error{Type: stanza.Auth, Condition: stanza.Forbidden})
		}
		if iq.Type == stanza.GetIQ {
			return m.sendConfigForm(t, iq, to)
		}
		if q, ok := e.child(xml.Name{Space: muc.NSOwner, Local: "query"}); ok {
			if d, ok := q.child(xml.Name{Space: muc.NSOwner, Local: "destroy"}); ok {
				return m.destroy(s, t, e, to, d)
			}
		}
		return m.setConfig(s, t, e, to)
	case muc.NSAdmin:
		return m.handleAdmin(s, t, e, iq, to)
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

// destroy destroys a room at its owner's request (XEP-0045 § 10.9): every
// occupant gets an unavailable presence carrying the <destroy/> (with the
// alternate room and reason the owner gave), then the room, its place in
// the owner index and its archive are deleted, and the owner may create
// another room in its stead.
func (m *mucService) destroy(s *session, t xmlstream.TokenReadEncoder, e element, to jid.JID, d element) error {
	iq, _ := stanza.NewIQ(e.start)
	name := to.Localpart()
	reason := ""
	if rs, ok := d.child(xml.Name{Space: muc.NSOwner, Local: "reason"}); ok {
		reason = rs.text()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rooms[name]
	if r == nil {
		return s.replyError(t, e, stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound})
	}
	if !s.jid.Bare().Equal(r.owner) {
		return s.replyError(t, e, stanza.Error{Type: stanza.Auth, Condition: stanza.Forbidden})
	}
	if err := m.destroyLocked(r, destroyNotice(d.attr("jid"), reason)); err != nil {
		return s.replyError(t, e, stanza.Error{Type: stanza.Wait, Condition: stanza.InternalServerError})
	}
	_, err := xmlstream.Copy(t, iq.Result(nil))
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
