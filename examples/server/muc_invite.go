package main

import (
	"encoding/xml"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/muc"
	"mellium.im/xmpp/stanza"
)

// maxInvitesPerMessage bounds the <invite/> elements one message may carry.
const maxInvitesPerMessage = 20

// mediate relays an invitation or a decline sent through the room
// (XEP-0045 § 7.8.2, mediated invitations). x is the muc#user <x/>.
//
// An occupant of an open room may invite anyone of this server. In a
// members-only room only the owner and admins may, and an invitation
// makes the invitee a member (if it is not already affiliated), so that
// the invitee can enter. Invitations reach the invitee's online sessions
// only (no offline storage): with none, the inviter gets
// service-unavailable, but a membership granted stays. A decline goes to
// the inviter's sessions, from the room. Called with m.mu held.
func (m *mucService) mediate(s *session, t xmlstream.TokenReadEncoder, e element, r *room, x element) error {
	refuse := func(typ stanza.ErrorType, cond stanza.Condition) error {
		return s.replyError(t, e, stanza.Error{Type: typ, Condition: cond})
	}
	_, occupant := r.nickOf(s)
	var invites, declines []element
	for _, c := range x.children() {
		switch c.start.Name {
		case xml.Name{Space: muc.NSUser, Local: "invite"}:
			invites = append(invites, c)
		case xml.Name{Space: muc.NSUser, Local: "decline"}:
			declines = append(declines, c)
		}
	}
	if len(invites)+len(declines) == 0 || len(invites)+len(declines) > maxInvitesPerMessage {
		return refuse(stanza.Modify, stanza.BadRequest)
	}
	var targets []jid.JID
	for _, c := range append(invites, declines...) {
		to, err := jid.Parse(c.attr("to"))
		if err != nil || c.attr("to") == "" {
			return refuse(stanza.Modify, stanza.JIDMalformed)
		}
		if !m.srv.isLocalUser(to) {
			return refuse(stanza.Cancel, stanza.RemoteServerNotFound) // no s2s
		}
		targets = append(targets, to.Bare())
	}
	if len(invites) > 0 {
		switch {
		case r.locked && !r.owner.Equal(s.jid.Bare()):
			return refuse(stanza.Cancel, stanza.ItemNotFound)
		case r.membersOnly && !r.isModerator(s.jid):
			return refuse(stanza.Auth, stanza.Forbidden)
		case !occupant && !r.isModerator(s.jid):
			return refuse(stanza.Modify, stanza.NotAcceptable)
		}
		if r.membersOnly {
			prev := r.affiliations
			next := make(map[string]string, len(prev)+len(invites))
			for k, v := range prev {
				next[k] = v
			}
			for _, to := range targets[:len(invites)] {
				if next[to.String()] == "" && !to.Equal(r.owner) {
					next[to.String()] = affiliationMember
				}
			}
			if len(next) > maxRoomAffiliations && len(next) > len(prev) {
				return refuse(stanza.Cancel, stanza.NotAllowed)
			}
			r.affiliations = next
			if err := m.srv.store.saveRoom(r.jid.Localpart(), r.config()); err != nil {
				r.affiliations = prev
				return refuse(stanza.Wait, stanza.InternalServerError)
			}
		}
	}
	delivered := true
	for i, c := range append(invites, declines...) {
		kind := c.start.Name.Local
		inner := []xml.Token{xml.StartElement{Name: xml.Name{Space: muc.NSUser, Local: kind},
			Attr: []xml.Attr{{Name: xml.Name{Local: "from"}, Value: s.jid.Bare().String()}}}}
		if rs, ok := c.child(xml.Name{Space: muc.NSUser, Local: "reason"}); ok && rs.text() != "" {
			st := xml.StartElement{Name: xml.Name{Space: muc.NSUser, Local: "reason"}}
			inner = append(inner, st, xml.CharData(rs.text()), st.End())
		}
		inner = append(inner, xml.EndElement{Name: xml.Name{Space: muc.NSUser, Local: kind}})
		xs := xml.StartElement{Name: xml.Name{Space: muc.NSUser, Local: "x"}}
		inner = append(append([]xml.Token{xs}, inner...), xs.End())
		sessions := m.srv.sessions.lookup(targets[i])
		if len(sessions) == 0 {
			delivered = false
		}
		for _, o := range sessions {
			start := xml.StartElement{Name: xml.Name{Space: stanza.NSClient, Local: "message"}, Attr: []xml.Attr{
				{Name: xml.Name{Local: "from"}, Value: r.jid.String()},
				{Name: xml.Name{Local: "to"}, Value: o.jid.String()},
				{Name: xml.Name{Local: "id"}, Value: randomResource()},
			}}
			o.send(element{start: start, inner: inner})
		}
	}
	if !delivered {
		return refuse(stanza.Cancel, stanza.ServiceUnavailable)
	}
	return nil
}
