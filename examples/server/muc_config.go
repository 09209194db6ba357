package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"maps"
	"strconv"
	"strings"

	"chatbx.eu/privacy/mam"
	"mellium.im/xmlstream"
	"mellium.im/xmpp/form"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/muc"
	"mellium.im/xmpp/stanza"
)

// The muc#roomconfig fields of the owner's form (XEP-0045 § 15.5.3) that
// this service reads; a submitted form's other fields are ignored.
const (
	fieldRoomName      = "muc#roomconfig_roomname"
	fieldRoomDesc      = "muc#roomconfig_roomdesc"
	fieldPersistent    = "muc#roomconfig_persistentroom"
	fieldPublic        = "muc#roomconfig_publicroom"
	fieldMembersOnly   = "muc#roomconfig_membersonly"
	fieldWhois         = "muc#roomconfig_whois"
	fieldChangeSubject = "muc#roomconfig_changesubject"
	// fieldModerated, fieldPasswordProtected, fieldRoomSecret: muc_voice.go;
	// fieldMaxHistory: muc_history.go.

	// Bounds of the room's texts, kept in the store.
	maxRoomNameBytes = 256
	maxRoomDescBytes = 1024
)

// apply sets r's configuration and affiliations from a stored one.
func (r *room) apply(c roomConfig) {
	r.archiving, r.locked, r.membersOnly = c.Archiving, c.Locked, c.MembersOnly
	r.whoisAnyone, r.hidden, r.temporary, r.subjectByAll = c.WhoisAnyone, c.Hidden, c.Temporary, c.SubjectByAll
	r.name, r.desc = c.Name, c.Description
	r.affiliations = maps.Clone(c.Affiliations)
	r.moderated, r.historyMax = c.Moderated, c.HistoryMax
	r.secretSalt, r.secretHash = c.SecretSalt, c.SecretHash
}

// config is r's persistent part.
func (r *room) config() roomConfig {
	return roomConfig{
		Owner: r.owner.String(), Archiving: r.archiving, Locked: r.locked, MembersOnly: r.membersOnly,
		WhoisAnyone: r.whoisAnyone, Hidden: r.hidden, Temporary: r.temporary, SubjectByAll: r.subjectByAll,
		Name: r.name, Description: r.desc, Affiliations: maps.Clone(r.affiliations),
		Moderated: r.moderated, SecretSalt: r.secretSalt, SecretHash: r.secretHash, HistoryMax: r.historyMax,
	}
}

// features are r's disco#info features (XEP-0045 § 15.2).
func (r *room) features() []string {
	pick := func(b bool, yes, no string) string {
		if b {
			return yes
		}
		return no
	}
	return []string{muc.NS,
		pick(r.whoisAnyone, "muc_nonanonymous", "muc_semianonymous"),
		pick(r.membersOnly, "muc_membersonly", "muc_open"),
		pick(r.temporary, "muc_temporary", "muc_persistent"),
		pick(r.hidden, "muc_hidden", "muc_public"),
		pick(r.moderated, "muc_moderated", "muc_unmoderated"),
		pick(r.passwordProtected(), "muc_passwordprotected", "muc_unsecured"),
	}
}

// joinCodes are the status codes of a joining occupant's own presence,
// after 110: 201 for a new or still locked room, 100 if the room shows
// real JIDs to everyone, 170 if it archives (§ 7.2.12, § 7.2.16).
func (r *room) joinCodes(created bool) []string {
	var codes []string
	if created {
		codes = append(codes, statusCreated)
	}
	if r.whoisAnyone {
		codes = append(codes, statusNonAnonymous)
	}
	if r.archiving {
		codes = append(codes, statusLogging)
	}
	return codes
}

// subjectTokens is a <subject/> holding text.
func subjectTokens(subj xml.StartElement, text string) []xml.Token {
	if text == "" {
		return []xml.Token{subj, subj.End()}
	}
	return []xml.Token{subj, xml.CharData(text), subj.End()}
}

// maySetSubject reports whether user may change r's subject: moderators,
// and everyone if the owner allowed it (muc#roomconfig_changesubject).
func (r *room) maySetSubject(user jid.JID) bool {
	return r.subjectByAll || r.isModerator(user)
}

// sendConfigForm answers the owner's configuration request with the form
// of the fields this service reads, showing the room's current values.
func (m *mucService) sendConfigForm(t xmlstream.TokenReadEncoder, iq stanza.IQ, to jid.JID) error {
	m.mu.Lock()
	r := m.rooms[to.Localpart()]
	var c roomConfig
	if r != nil {
		c = r.config()
	}
	m.mu.Unlock()
	field := func(name, typ, label string, values ...string) xml.TokenReader {
		var inner []xml.TokenReader
		for _, v := range values {
			inner = append(inner, xmlstream.Wrap(xmlstream.Token(xml.CharData(v)), xml.StartElement{Name: xml.Name{Space: form.NS, Local: "value"}}))
		}
		attrs := []xml.Attr{{Name: xml.Name{Local: "var"}, Value: name}, {Name: xml.Name{Local: "type"}, Value: typ}}
		if label != "" {
			attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "label"}, Value: label})
		}
		return xmlstream.Wrap(xmlstream.MultiReader(inner...), xml.StartElement{Name: xml.Name{Space: form.NS, Local: "field"}, Attr: attrs})
	}
	boolean := func(b bool) string {
		if b {
			return "1"
		}
		return "0"
	}
	whois := "moderators"
	if c.WhoisAnyone {
		whois = "anyone"
	}
	option := func(label, value string) xml.TokenReader {
		return xmlstream.Wrap(
			xmlstream.Wrap(xmlstream.Token(xml.CharData(value)), xml.StartElement{Name: xml.Name{Space: form.NS, Local: "value"}}),
			xml.StartElement{Name: xml.Name{Space: form.NS, Local: "option"}, Attr: []xml.Attr{{Name: xml.Name{Local: "label"}, Value: label}}})
	}
	whoisField := xmlstream.Wrap(xmlstream.MultiReader(
		xmlstream.Wrap(xmlstream.Token(xml.CharData(whois)), xml.StartElement{Name: xml.Name{Space: form.NS, Local: "value"}}),
		option("Moderators only", "moderators"), option("Anyone", "anyone"),
	), xml.StartElement{Name: xml.Name{Space: form.NS, Local: "field"}, Attr: []xml.Attr{
		{Name: xml.Name{Local: "var"}, Value: fieldWhois}, {Name: xml.Name{Local: "type"}, Value: "list-single"},
		{Name: xml.Name{Local: "label"}, Value: "Who may discover real JIDs?"}}})
	title := xml.StartElement{Name: xml.Name{Space: form.NS, Local: "title"}}
	x := xml.StartElement{Name: xml.Name{Space: form.NS, Local: "x"}, Attr: []xml.Attr{{Name: xml.Name{Local: "type"}, Value: "form"}}}
	q := xml.StartElement{Name: xml.Name{Space: muc.NSOwner, Local: "query"}}
	_, err := xmlstream.Copy(t, iq.Result(xmlstream.Wrap(xmlstream.Wrap(xmlstream.MultiReader(
		xmlstream.Wrap(xmlstream.Token(xml.CharData("Room configuration")), title),
		field(fieldFormType, "hidden", "", nsRoomConfig),
		field(fieldRoomName, "text-single", "Name", c.Name),
		field(fieldRoomDesc, "text-single", "Description", c.Description),
		field(fieldPersistent, "boolean", "Keep the room when it is empty", boolean(!c.Temporary)),
		field(fieldPublic, "boolean", "List the room in the directory", boolean(!c.Hidden)),
		field(fieldMembersOnly, "boolean", "Members only", boolean(c.MembersOnly)),
		whoisField,
		field(fieldChangeSubject, "boolean", "Participants may change the subject", boolean(c.SubjectByAll)),
		field(fieldModerated, "boolean", "Moderated: only occupants with voice send messages", boolean(c.Moderated)),
		field(fieldPasswordProtected, "boolean", "Password required to enter", boolean(len(c.SecretHash) > 0)),
		field(fieldRoomSecret, "text-private", "Password (empty: keep the current one)"),
		field(fieldMaxHistory, "text-single", fmt.Sprintf("Messages sent to a new occupant (0 to %d)", maxRoomHistory), strconv.Itoa(historyLen(c.HistoryMax))),
		mam.RoomConfigField(c.Archiving),
	), x), q)))
	return err
}

// setConfig applies a submitted configuration form (or a cancel). Any
// submission, the empty instant-room form included (§ 10.1.2), unlocks a
// new room; a cancel leaves it locked. Occupants get the status codes of
// the change (§ 10.2.1); non-members leave a room made members-only (322).
func (m *mucService) setConfig(s *session, t xmlstream.TokenReadEncoder, e element, to jid.JID) error {
	iq, _ := stanza.NewIQ(e.start)
	bad := func(text string) error {
		se := stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest}
		if text != "" {
			se.Text = map[string]string{"en": text}
		}
		return s.replyError(t, e, se)
	}
	q, ok := e.child(xml.Name{Space: muc.NSOwner, Local: "query"})
	if !ok {
		return bad("")
	}
	x, ok := q.child(xml.Name{Space: form.NS, Local: "x"})
	if !ok {
		return bad("")
	}
	switch x.attr("type") {
	case "cancel":
		_, err := xmlstream.Copy(t, iq.Result(nil))
		return err
	case "submit":
	default:
		return bad("")
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rooms[to.Localpart()]
	if r == nil {
		return s.replyError(t, e, stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound})
	}
	c := r.config()
	protect, secret := len(c.SecretHash) > 0, ""
	for _, f := range x.children() {
		if f.start.Name.Local != "field" {
			continue
		}
		v, _ := f.child(xml.Name{Space: form.NS, Local: "value"})
		raw := v.text()
		val := strings.TrimSpace(raw)
		var target *bool
		invert := false
		switch f.attr("var") {
		case fieldFormType:
			if val != nsRoomConfig {
				return bad("FORM_TYPE is not " + nsRoomConfig)
			}
		case fieldRoomName, fieldRoomDesc:
			limit, dst := maxRoomNameBytes, &c.Name
			if f.attr("var") == fieldRoomDesc {
				limit, dst = maxRoomDescBytes, &c.Description
			}
			if len(raw) > limit || !xmlText(raw) {
				return bad(f.attr("var") + " is too long")
			}
			*dst = raw
		case fieldWhois:
			switch val {
			case "anyone":
				c.WhoisAnyone = true
			case "moderators", "":
				c.WhoisAnyone = false
			default:
				return bad("muc#roomconfig_whois is moderators or anyone")
			}
		case fieldRoomSecret:
			if len(raw) > maxRoomSecretBytes || !xmlText(raw) {
				return bad(fieldRoomSecret + " is too long")
			}
			secret = raw
		case fieldPasswordProtected:
			target = &protect
		case fieldModerated:
			target = &c.Moderated
		case fieldMaxHistory:
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 || n > maxRoomHistory {
				return bad(fmt.Sprintf("%s is a number from 0 to %d", fieldMaxHistory, maxRoomHistory))
			}
			c.HistoryMax = n
			if n == 0 {
				c.HistoryMax = -1
			}
		case mam.FieldEnableArchiving:
			target = &c.Archiving
		case fieldMembersOnly:
			target = &c.MembersOnly
		case fieldChangeSubject:
			target = &c.SubjectByAll
		case fieldPersistent:
			target, invert = &c.Temporary, true
		case fieldPublic:
			target, invert = &c.Hidden, true
		}
		if target != nil {
			b, ok := parseBool(val)
			if !ok {
				return bad(f.attr("var") + " is not a boolean")
			}
			*target = b != invert
		}
	}
	switch {
	case !protect:
		c.SecretSalt, c.SecretHash = nil, nil
	case secret != "":
		c.SecretSalt, c.SecretHash = newRoomSecret(secret)
	case len(c.SecretHash) == 0:
		return bad(fieldPasswordProtected + " needs a " + fieldRoomSecret)
	}
	c.Locked = false
	old := r.config()
	if err := m.srv.store.saveRoom(to.Localpart(), c); err != nil {
		return s.replyError(t, e, stanza.Error{Type: stanza.Wait, Condition: stanza.InternalServerError})
	}
	r.apply(c)
	if old.Archiving != c.Archiving || historyLen(old.HistoryMax) != historyLen(c.HistoryMax) {
		r.history = nil // memory history serves one setting only (muc_history.go)
	}
	if _, err := xmlstream.Copy(t, iq.Result(nil)); err != nil {
		return err
	}
	m.announceConfig(r, old, c)
	return nil
}

// announceConfig tells the occupants what a configuration change means for
// them (XEP-0045 § 10.2.1): 170/171 archiving on/off, 172/173 real JIDs
// shown to all/moderators, 104 for any other change; then removes the
// non-members from a room that became members-only. Called with m.mu held.
func (m *mucService) announceConfig(r *room, old, c roomConfig) {
	var codes []string
	if old.Archiving != c.Archiving {
		codes = append(codes, map[bool]string{true: statusLogging, false: statusNoLogging}[c.Archiving])
	}
	if old.WhoisAnyone != c.WhoisAnyone {
		codes = append(codes, map[bool]string{true: statusNowNonAnon, false: statusNowSemiAnon}[c.WhoisAnyone])
	}
	old.Archiving, old.WhoisAnyone, old.Locked = c.Archiving, c.WhoisAnyone, c.Locked
	if old.MembersOnly != c.MembersOnly || old.Hidden != c.Hidden || old.Temporary != c.Temporary ||
		old.SubjectByAll != c.SubjectByAll || old.Name != c.Name || old.Description != c.Description ||
		old.Moderated != c.Moderated || !bytes.Equal(old.SecretHash, c.SecretHash) || old.HistoryMax != c.HistoryMax {
		codes = append(codes, statusConfigChange)
	}
	if len(codes) > 0 {
		xs := xml.StartElement{Name: xml.Name{Space: muc.NSUser, Local: "x"}}
		inner := []xml.Token{xs}
		for _, code := range codes {
			st := xml.StartElement{Name: xml.Name{Space: muc.NSUser, Local: "status"},
				Attr: []xml.Attr{{Name: xml.Name{Local: "code"}, Value: code}}}
			inner = append(inner, st, st.End())
		}
		inner = append(inner, xs.End())
		for _, o := range r.occupants {
			o.send(element{start: xml.StartElement{
				Name: xml.Name{Space: stanza.NSClient, Local: "message"},
				Attr: []xml.Attr{
					{Name: xml.Name{Local: "from"}, Value: r.jid.String()},
					{Name: xml.Name{Local: "to"}, Value: o.jid.String()},
					{Name: xml.Name{Local: "type"}, Value: "groupchat"},
					{Name: xml.Name{Local: "id"}, Value: randomResource()},
				},
			}, inner: inner})
		}
	}
	if c.MembersOnly && !old.MembersOnly {
		for nick, o := range r.occupants {
			if r.affiliation(o.jid) == affiliationNone {
				m.removeOccupant(r, nick, "", statusMembersOnly)
			}
		}
	}
}
