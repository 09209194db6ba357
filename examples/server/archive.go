package main

import (
	"context"
	"encoding/xml"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
)

// archiveHooks is what routing needs from the message archive. The mam
// package is adapted to it in wire.go; a nil archiveHooks archives nothing.
type archiveHooks interface {
	// chat archives a 1:1 message per the sender's and the recipient's
	// preferences and returns the copy to deliver (stamped with the
	// recipient's stanza-id when stored for the recipient).
	chat(ctx context.Context, from, to jid.JID, e element) (out element, storedForRecipient bool)
	// room archives a groupchat message (from = occupant JID, sent by
	// realJID) of a room with archiving on and returns the stamped copy to
	// broadcast.
	room(ctx context.Context, room, occupant, realJID jid.JID, e element) element
	// roomQuery answers a MAM IQ addressed to a room.
	roomQuery(t xmlstream.TokenReadEncoder, start *xml.StartElement) error
	// features are the disco features of an account with an archive.
	features() []string
}
