package mam

import (
	"context"
	"encoding/xml"
	"fmt"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/form"
	"mellium.im/xmpp/jid"
)

// FieldEnableArchiving is the boolean field of the XEP-0045 room
// configuration form (muc#owner) with which the room owner turns the room
// archive on or off (Prosody's name for it). A new room does not archive.
// RoomConfigField writes it; a submitted value is an XEP-0004 boolean
// ("1" or "true", "0" or "false").
const FieldEnableArchiving = "muc#roomconfig_enablearchiving"

// RoomMessage is a message a room broadcasts, as Archiver.ArchiveRoom
// takes it.
type RoomMessage struct {
	// Room is the room's bare JID: the archive. Required.
	Room jid.JID

	// Occupant is the sender's occupant JID (room@service/nick). Required,
	// in Room.
	Occupant jid.JID

	// RealJID is the sender's real JID. Required unless Anonymous; it is
	// kept (bare) only for a room that is not anonymous.
	RealJID jid.JID

	// Anonymous tells that the room hides its occupants' real JIDs: RealJID
	// is then neither required nor stored.
	Anonymous bool

	// Stanza is the whole <message type='groupchat'/> element. Required.
	Stanza Stanza
}

// ArchiveRoom archives a message a room broadcasts. The server's MUC calls
// it only for rooms whose owner enabled archiving (FieldEnableArchiving)
// and only for messages the room accepted.
//
// The stored copy has from = m.Occupant and no to, with any muc#user <x/>
// and any stanza-id forged with by = m.Room removed; the real JID is kept
// apart (Message.RealJID, bare) only when the room is not anonymous, and
// shown in query results only to those Config.Rooms allows to see real
// JIDs.
//
// Messages of another type than groupchat, without a body, subject or
// encrypted payload, or with a <no-store/> or <no-permanent-store/> hint
// are not stored. Result.Deliver is the message to broadcast, in the form
// m.Stanza was given (from = occupant, no to: the MUC sets to per
// occupant; muc#user <x/> removed: the MUC adds its own if it wants) with
// <stanza-id by=room/> when stored; Result.RecipientID is the archive id.
//
// A RoomMessage without Room, Stanza, an Occupant in Room, or (unless
// Anonymous) RealJID is an error wrapping ErrBadRequest and leaves Deliver
// zero, as does a stanza that is not a well-formed <message/>. A message
// larger than Config.MaxStanzaSize is not stored (ErrTooLarge) and Deliver
// is still set.
func (a *Archiver) ArchiveRoom(ctx context.Context, m RoomMessage) (Result, error) {
	var res Result
	room := m.Room.Bare()
	switch {
	case room.Domainpart() == "":
		return res, fmt.Errorf("%w: RoomMessage.Room missing", ErrBadRequest)
	case m.Occupant.Domainpart() == "":
		return res, fmt.Errorf("%w: RoomMessage.Occupant missing", ErrBadRequest)
	case m.Occupant.Resourcepart() == "" || !m.Occupant.Bare().Equal(room):
		return res, fmt.Errorf("%w: RoomMessage.Occupant not in Room", ErrBadRequest)
	case !m.Anonymous && m.RealJID.Domainpart() == "":
		return res, fmt.Errorf("%w: RoomMessage.RealJID missing in a room that is not Anonymous", ErrBadRequest)
	}
	var sc scanner
	if err := sc.init(m.Stanza, scanOptions{
		strip:        [2]jid.JID{room},
		stripMUCUser: true,
		from:         m.Occupant,
	}); err != nil {
		return res, err
	}
	f, err := sc.scan()
	if err != nil {
		return res, err
	}
	stored := sc.w.buf
	res.Deliver = sc.deliver(false)
	if !f.archivableGroupchat() {
		return res, nil
	}
	if len(stored) > a.cfg.maxStanzaSize() {
		return res, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(stored))
	}
	msg := Message{
		Archive:   room,
		With:      m.Occupant,
		Time:      a.cfg.now(),
		Groupchat: true,
		Stanza:    stored,
	}
	if !m.Anonymous {
		msg.RealJID = m.RealJID.Bare()
	}
	msg, err = a.store.Append(ctx, msg)
	if err != nil {
		return res, fmt.Errorf("mam: append: %w", err)
	}
	res.RecipientID = msg.ID
	res.Deliver = sc.stamp(msg.ID, room)
	return res, nil
}

// RoomConfigField returns the FieldEnableArchiving field for a room's
// XEP-0045 owner configuration form (type boolean), showing the room's
// current setting. A MUC service adds it to the form it sends the owner.
func RoomConfigField(enabled bool) xml.TokenReader {
	v := "0"
	if enabled {
		v = "1"
	}
	return xmlstream.Wrap(
		xmlstream.Wrap(xmlstream.Token(xml.CharData(v)), xml.StartElement{Name: xml.Name{Space: form.NS, Local: "value"}}),
		xml.StartElement{
			Name: xml.Name{Space: form.NS, Local: "field"},
			Attr: []xml.Attr{
				{Name: xml.Name{Local: "var"}, Value: FieldEnableArchiving},
				{Name: xml.Name{Local: "type"}, Value: "boolean"},
				{Name: xml.Name{Local: "label"}, Value: "Archive the room's messages"},
			},
		},
	)
}

// RoomFeatures returns the disco#info features of a room: the MAM features
// while archiving is enabled, none otherwise. A MUC service adds them to
// its room's disco#info.
func RoomFeatures(archiving bool) []string {
	if !archiving {
		return nil
	}
	return []string{NS, nsExt}
}
