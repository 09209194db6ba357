package mam

import (
	"bytes"
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

// ArchiveGroupchat archives a message a room broadcasts. The server's MUC
// calls it only for rooms whose owner enabled archiving
// (FieldEnableArchiving) and only for messages the room accepted.
//
// room is the room's bare JID (the archive), occupant the sender's occupant
// JID (room@service/nick) and realJID the sender's real JID. The stored copy
// has from = occupant and no to, with any muc#user <x/> and any stanza-id
// forged with by = room removed; realJID is kept apart (Message.RealJID,
// bare) only when the room is not anonymous, and shown in query results
// only to those Config.Rooms allows to see real JIDs.
//
// stanza is the whole <message type='groupchat'/> element; messages of
// another type, without a body, subject or encrypted payload, or with a
// <no-store/> or <no-permanent-store/> hint are not stored. Result.Deliver
// is the message to broadcast (from = occupant, no to: the MUC sets to per
// occupant; muc#user <x/> removed: the MUC adds its own if it wants) with
// <stanza-id by=room/> when stored; Result.RecipientID is the archive id.
func (a *Archiver) ArchiveGroupchat(ctx context.Context, room, occupant, realJID jid.JID, anonymous bool, stanza []byte) (Result, error) {
	d := xml.NewDecoder(bytes.NewReader(stanza))
	start, err := messageStart(d)
	if err != nil {
		return Result{}, err
	}
	return a.archiveGroupchat(ctx, room, occupant, realJID, anonymous, start, d, len(stanza))
}

// ArchiveGroupchatTokens is ArchiveGroupchat for a message held as tokens
// (see ArchiveTokens).
func (a *Archiver) ArchiveGroupchatTokens(ctx context.Context, room, occupant, realJID jid.JID, anonymous bool, start xml.StartElement, inner []xml.Token) (Result, error) {
	if !isMessage(start.Name) {
		return Result{}, fmt.Errorf("%w: not a message", ErrBadRequest)
	}
	return a.archiveGroupchat(ctx, room, occupant, realJID, anonymous, start, &sliceReader{toks: inner}, 512)
}

func (a *Archiver) archiveGroupchat(ctx context.Context, room, occupant, realJID jid.JID, anonymous bool, start xml.StartElement, r xml.TokenReader, sizeHint int) (Result, error) {
	var res Result
	room = room.Bare()
	if room.Domainpart() == "" || occupant.Resourcepart() == "" || !occupant.Bare().Equal(room) {
		return res, fmt.Errorf("%w: occupant JID not in room", ErrBadRequest)
	}
	w := xmlWriter{buf: make([]byte, 0, sizeHint+160)}
	f, err := scan(r, start, scanOptions{
		strip:        [2]jid.JID{room},
		stripMUCUser: true,
		from:         occupant,
	}, &w)
	if err != nil {
		return res, err
	}
	stored := w.buf
	res.Deliver = stored
	if !f.archivableGroupchat() {
		return res, nil
	}
	if len(stored) > a.cfg.maxStanzaSize() {
		return res, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(stored))
	}
	m := Message{
		Archive:   room,
		With:      occupant,
		Time:      a.cfg.now(),
		Groupchat: true,
		Stanza:    stored,
	}
	if !anonymous {
		m.RealJID = realJID.Bare()
	}
	m, err = a.store.Append(ctx, m)
	if err != nil {
		return res, fmt.Errorf("mam: append: %w", err)
	}
	res.RecipientID = m.ID
	res.Deliver = stamp(stored, m.ID, room)
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
