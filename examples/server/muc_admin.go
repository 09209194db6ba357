package main

import (
	"encoding/xml"
	"fmt"
	"maps"
	"slices"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/muc"
	"mellium.im/xmpp/stanza"
)

// XEP-0045 affiliations, roles and status codes used by the room service.
// A room has exactly one owner, its creator (room.owner, counted against
// Config.MaxOwnedRooms); the other affiliations are in room.affiliations.
// Roles follow affiliations: owners and admins are moderators, everyone
// else a participant, or a visitor in a moderated room (muc_voice.go).
const (
	affiliationAdmin   = "admin"
	affiliationMember  = "member"
	affiliationOutcast = "outcast"
	roleModerator      = "moderator"
	roleParticipant    = "participant"
	roleNone           = "none"

	statusNonAnonymous = "100" // on join: the room shows real JIDs to all
	statusConfigChange = "104" // a configuration change that is not about privacy
	statusLogging      = "170" // archiving on (on join, and when turned on)
	statusNoLogging    = "171" // archiving turned off
	statusNowNonAnon   = "172"
	statusNowSemiAnon  = "173"
	statusBanned       = "301"
	statusKicked       = "307"
	statusNotMember    = "321" // removed: no longer a member of a members-only room
	statusMembersOnly  = "322" // removed: the room became members-only
)

// affiliation returns user's affiliation with r.
func (r *room) affiliation(user jid.JID) string {
	bare := user.Bare()
	if bare.Equal(r.owner) {
		return affiliationOwn
	}
	if a := r.affiliations[bare.String()]; a != "" {
		return a
	}
	return affiliationNone
}

// roleFor is the role of an occupant with affiliation a.
func roleFor(a string) string {
	if a == affiliationOwn || a == affiliationAdmin {
		return roleModerator
	}
	return roleParticipant
}

// isModerator reports whether user, in r, is an owner or admin.
func (r *room) isModerator(user jid.JID) bool {
	return roleFor(r.affiliation(user)) == roleModerator
}

// showsRealJIDs reports whether viewer sees occupants' real JIDs: in a
// non-anonymous room everyone, else moderators only.
func (r *room) showsRealJIDs(viewer jid.JID) bool {
	return r.whoisAnyone || r.isModerator(viewer)
}

// setPresence keeps the children of the occupant's presence e (its
// <show/>, <status/>, caps …, XEP-0045 § 7.14 and § 17.3) to repeat them
// in the presence the room broadcasts; the MUC <x/> elements are the
// room's, not the occupant's.
func (r *room) setPresence(s *session, e element) {
	if r == nil {
		return
	}
	var keep []xml.Token
	for _, c := range e.children() {
		if c.start.Name.Space == muc.NS || c.start.Name.Space == muc.NSUser {
			continue
		}
		keep = append(keep, c.start.Copy())
		keep = append(keep, c.inner...)
		keep = append(keep, c.start.End())
	}
	if r.presence == nil {
		r.presence = make(map[*session][]xml.Token)
	}
	r.presence[s] = keep
}

// joinRefusal is the error for user's attempt to enter r (nil: create it),
// if refused: only accounts of this server; a locked room only its owner
// (item-not-found, as if it did not exist, § 10.1.1); never an outcast
// (forbidden, § 7.2.7); a members-only room only its members, admins and
// owner (registration-required, § 7.2.5). Called with m.mu held.
func (m *mucService) joinRefusal(r *room, user jid.JID) (stanza.Error, bool) {
	// Remote users (federation) may join existing rooms, not create any.
	remote := r != nil && m.srv.isRemote(user)
	if user.Localpart() == "" || user.Domainpart() != m.srv.cfg.Domain && !remote {
		return stanza.Error{Type: stanza.Auth, Condition: stanza.Forbidden}, true
	}
	if r == nil {
		return stanza.Error{}, false
	}
	aff := r.affiliation(user)
	switch {
	case r.locked && aff != affiliationOwn:
		return stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound}, true
	case aff == affiliationOutcast:
		return stanza.Error{Type: stanza.Auth, Condition: stanza.Forbidden}, true
	case r.membersOnly && aff == affiliationNone:
		return stanza.Error{Type: stanza.Auth, Condition: stanza.RegistrationRequired}, true
	}
	return stanza.Error{}, false
}

// archiveAccess says whether requester may read r's archive (whoever may
// join it) and see the real JIDs in it (whoever sees them in the room).
func (m *mucService) archiveAccess(roomJID, requester jid.JID) (allowed, seeReal bool) {
	if roomJID.Domainpart() != conferenceHost(m.srv.cfg.Domain) {
		return false, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rooms[roomJID.Localpart()]
	if r == nil || !r.archiving || !m.mayJoin(r, requester) {
		return false, false
	}
	if r.passwordProtected() && r.affiliation(requester) == affiliationNone && !r.occupiedBy(requester) {
		return false, false // a query carries no password (muc_voice.go)
	}
	return true, r.showsRealJIDs(requester)
}

// destroyNotice is the <destroy/> of the unavailable presence occupants get
// when their room goes: the alternate room only if it is a JID, the
// reason as text.
func destroyNotice(alt, reason string) []xml.Token {
	notice := xml.StartElement{Name: xml.Name{Space: muc.NSUser, Local: "destroy"}}
	if j, err := jid.Parse(alt); err == nil && alt != "" {
		notice.Attr = []xml.Attr{{Name: xml.Name{Local: "jid"}, Value: j.Bare().String()}}
	}
	toks := []xml.Token{notice}
	if reason != "" {
		rs := xml.StartElement{Name: xml.Name{Space: muc.NSUser, Local: "reason"}}
		toks = append(toks, rs, xml.CharData(reason), rs.End())
	}
	return append(toks, notice.End())
}

// destroyLocked deletes r (XEP-0045 § 10.9): its configuration and
// affiliations from the store, then every occupant gets an unavailable
// presence with notice, and the archive is erased. Called with m.mu held.
func (m *mucService) destroyLocked(r *room, notice []xml.Token) error {
	name := r.jid.Localpart()
	if err := m.srv.store.deleteRoom(name); err != nil {
		return fmt.Errorf("deleting room: %w", err)
	}
	delete(m.rooms, name)
	for nick, o := range r.occupants {
		x := xml.StartElement{Name: xml.Name{Space: muc.NSUser, Local: "x"}}
		item := xml.StartElement{Name: xml.Name{Space: muc.NSUser, Local: "item"}, Attr: []xml.Attr{
			{Name: xml.Name{Local: "affiliation"}, Value: affiliationNone},
			{Name: xml.Name{Local: "role"}, Value: roleNone},
		}}
		inner := append([]xml.Token{x, item, item.End()}, notice...)
		inner = append(inner, x.End())
		o.send(element{start: presenceStart(r.occupantJID(nick), o.jid, "unavailable"), inner: inner})
	}
	if err := m.eraseArchive(r.jid); err != nil {
		// Erased at the latest when the name is taken again.
		m.srv.log.Error("erasing the archive of a destroyed room", "err", err)
	}
	return nil
}

// dropIfTemporary destroys r if it is empty and temporary, or still locked
// (its owner left before configuring it: nothing to keep, and it would
// count against the owner's rooms). Called with m.mu held.
func (m *mucService) dropIfTemporary(r *room) {
	if (r.temporary || r.locked) && len(r.occupants) == 0 && m.rooms[r.jid.Localpart()] == r {
		if err := m.destroyLocked(r, nil); err != nil {
			m.srv.log.Error("dropping an empty temporary room", "err", err)
		}
	}
}

// removeOccupant takes occupant nick out of r with status codes (kick,
// ban, membership lost) and tells everyone, the occupant included (with
// 110). Called with m.mu held.
func (m *mucService) removeOccupant(r *room, nick string, reason string, code string) {
	o := r.occupants[nick]
	if o == nil {
		return
	}
	delete(r.presence, o) // the room's notice, not the occupant's status
	delete(r.roles, o)
	for _, v := range r.occupants {
		codes := []string{code}
		if v == o {
			codes = append(codes, statusSelf)
		}
		v.send(r.occupantPresenceWhy(nick, o, v, "unavailable", codes, "", reason))
	}
	delete(r.occupants, nick)
}

// handleAdmin answers muc#admin IQs (XEP-0045 §§ 8–10): a get lists the
// JIDs with one affiliation or the occupants with one role; a set changes
// affiliations (ban = outcast) or kicks (role none). Only the owner and
// admins may; an admin may not touch the owner or other admins, and
// nobody makes an owner (a room has one).
func (m *mucService) handleAdmin(s *session, t xmlstream.TokenReadEncoder, e element, iq stanza.IQ, to jid.JID) error {
	q, _ := e.child(xml.Name{Space: muc.NSAdmin, Local: "query"})
	var items []element
	for _, c := range q.children() {
		if c.start.Name == (xml.Name{Space: muc.NSAdmin, Local: "item"}) {
			items = append(items, c)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rooms[to.Localpart()]
	if r == nil || (r.locked && !s.jid.Bare().Equal(r.owner)) {
		return s.replyError(t, e, stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound})
	}
	if !r.isModerator(s.jid) {
		return s.replyError(t, e, stanza.Error{Type: stanza.Auth, Condition: stanza.Forbidden})
	}
	if len(items) == 0 {
		return s.replyError(t, e, stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest})
	}
	if iq.Type == stanza.GetIQ {
		return m.adminList(s, t, e, iq, r, items[0])
	}
	return m.adminSet(s, t, e, iq, r, items)
}

// adminList answers a muc#admin get.
func (m *mucService) adminList(s *session, t xmlstream.TokenReadEncoder, e element, iq stanza.IQ, r *room, want element) error {
	item := func(attrs ...string) []xml.Token {
		st := xml.StartElement{Name: xml.Name{Space: muc.NSAdmin, Local: "item"}}
		for i := 0; i+1 < len(attrs); i += 2 {
			if attrs[i+1] != "" {
				st.Attr = append(st.Attr, xml.Attr{Name: xml.Name{Local: attrs[i]}, Value: attrs[i+1]})
			}
		}
		return []xml.Token{st, st.End()}
	}
	var toks []xml.Token
	switch aff, role := want.attr("affiliation"), want.attr("role"); {
	case aff == affiliationOwn:
		toks = item("affiliation", aff, "jid", r.owner.String())
	case aff == affiliationAdmin || aff == affiliationMember || aff == affiliationOutcast:
		for _, j := range slices.Sorted(maps.Keys(r.affiliations)) {
			if r.affiliations[j] == aff {
				toks = append(toks, item("affiliation", aff, "jid", j)...)
			}
		}
	case role == roleModerator || role == roleParticipant || role == roleVisitor:
		nicks := slices.Sorted(maps.Keys(r.occupants))
		for _, n := range nicks {
			o := r.occupants[n]
			if r.roleOf(o) == role {
				toks = append(toks, item("nick", n, "role", role, "affiliation", r.affiliation(o.jid), "jid", o.jid.String())...)
			}
		}
	default:
		return s.replyError(t, e, stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest})
	}
	q := xml.StartElement{Name: xml.Name{Space: muc.NSAdmin, Local: "query"}}
	_, err := xmlstream.Copy(t, iq.Result(xmlstream.Wrap(&sliceReader{toks: toks}, q)))
	return err
}

// adminChange is one validated item of a muc#admin set.
type adminChange struct {
	kick        string // nick to kick (role none)
	voice       string // nick whose role becomes role (participant or visitor)
	role        string
	user        string // bare JID whose affiliation changes
	affiliation string
	reason      string
}

// adminSet applies a muc#admin set: every item is checked first, then all
// are applied and stored at once.
func (m *mucService) adminSet(s *session, t xmlstream.TokenReadEncoder, e element, iq stanza.IQ, r *room, items []element) error {
	refuse := func(cond stanza.Condition, typ stanza.ErrorType, text string) error {
		se := stanza.Error{Type: typ, Condition: cond}
		if text != "" {
			se.Text = map[string]string{"en": text}
		}
		return s.replyError(t, e, se)
	}
	actor := r.affiliation(s.jid)
	var changes []adminChange
	for _, it := range items {
		c := adminChange{affiliation: it.attr("affiliation")}
		if rs, ok := it.child(xml.Name{Space: muc.NSAdmin, Local: "reason"}); ok {
			c.reason = rs.text()
		}
		if c.affiliation == "" { // a role change
			role := it.attr("role")
			switch role {
			case roleNone, roleParticipant, roleVisitor:
			case roleModerator:
				return refuse(stanza.NotAllowed, stanza.Cancel, "moderators are the owner and admins: make the user an admin")
			default:
				return refuse(stanza.BadRequest, stanza.Modify, "")
			}
			o := r.occupants[it.attr("nick")]
			if o == nil {
				return refuse(stanza.ItemNotFound, stanza.Cancel, "")
			}
			if r.isModerator(o.jid) {
				return refuse(stanza.NotAllowed, stanza.Cancel, "the roles of owners and admins cannot be changed")
			}
			if role == roleNone {
				c.kick = it.attr("nick")
			} else {
				c.voice, c.role = it.attr("nick"), role
			}
			changes = append(changes, c)
			continue
		}
		target, err := jid.Parse(it.attr("jid"))
		if err != nil && it.attr("nick") != "" && r.occupants[it.attr("nick")] != nil {
			target, err = r.occupants[it.attr("nick")].jid, nil
		}
		if err != nil || target.Domainpart() == "" {
			return refuse(stanza.BadRequest, stanza.Modify, "")
		}
		target = target.Bare()
		current := r.affiliation(target)
		switch {
		case c.affiliation != affiliationAdmin && c.affiliation != affiliationMember &&
			c.affiliation != affiliationOutcast && c.affiliation != affiliationNone && c.affiliation != affiliationOwn:
			return refuse(stanza.BadRequest, stanza.Modify, "")
		case c.affiliation == affiliationOwn || current == affiliationOwn:
			return refuse(stanza.NotAllowed, stanza.Cancel, "a room has one owner, its creator")
		case actor != affiliationOwn && (c.affiliation == affiliationAdmin || current == affiliationAdmin):
			return refuse(stanza.NotAllowed, stanza.Cancel, "only the owner changes admins")
		}
		c.user = target.String()
		changes = append(changes, c)
	}

	next := maps.Clone(r.affiliations)
	if next == nil {
		next = make(map[string]string)
	}
	for _, c := range changes {
		if c.user == "" {
			continue
		}
		if c.affiliation == affiliationNone {
			delete(next, c.user)
		} else {
			next[c.user] = c.affiliation
		}
	}
	if len(next) > maxRoomAffiliations && len(next) > len(r.affiliations) {
		return refuse(stanza.NotAllowed, stanza.Cancel, fmt.Sprintf("a room names at most %d admins, members and outcasts", maxRoomAffiliations))
	}
	prev := r.affiliations
	r.affiliations = next
	if err := m.srv.store.saveRoom(r.jid.Localpart(), r.config()); err != nil {
		r.affiliations = prev
		return refuse(stanza.InternalServerError, stanza.Wait, "")
	}
	if _, err := xmlstream.Copy(t, iq.Result(nil)); err != nil {
		return err
	}

	// The effects on occupants: kicked, banned, no longer members, or a
	// new affiliation to show.
	for _, c := range changes {
		if c.kick != "" {
			m.removeOccupant(r, c.kick, c.reason, statusKicked)
			continue
		}
		if c.voice != "" { // § 8.3, § 8.4: everyone sees the new role
			if o := r.occupants[c.voice]; o != nil {
				r.setRole(o, c.role)
				m.broadcastJoin(r, c.voice, o, nil)
			}
			continue
		}
		for _, nick := range slices.Sorted(maps.Keys(r.occupants)) {
			o := r.occupants[nick]
			if o.jid.Bare().String() != c.user {
				continue
			}
			switch {
			case c.affiliation == affiliationOutcast:
				m.removeOccupant(r, nick, c.reason, statusBanned)
			case c.affiliation == affiliationNone && r.membersOnly:
				m.removeOccupant(r, nick, c.reason, statusNotMember)
			default:
				delete(r.roles, o) // the new affiliation's default role
				m.broadcastJoin(r, nick, o, nil)
			}
		}
	}
	m.dropIfTemporary(r)
	return nil
}
