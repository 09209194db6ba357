// Package mam implements the server side of XEP-0313 Message Archive
// Management for one-to-one chats and group chats (XEP-0045 rooms), with
// XEP-0441 preferences whose default is "never" (archiving is opt-in),
// XEP-0359 stanza-ids and XEP-0334 processing hints.
//
// # Promise
//
// A message is archived only if its owner opted in. A user who never set
// preferences archives nothing; each message is judged separately for the
// sender's and for the recipient's archive, each by its own owner's
// preferences (a JID in the never list is never archived, one in the always
// list is, otherwise the default decides: never, always, or roster). Room
// archives exist only for rooms whose owner turned archiving on
// ([FieldEnableArchiving]); real JIDs of occupants are kept only for
// non-anonymous rooms and shown only to those the room allows.
//
// # Pieces
//
//   - [Store] keeps archives and preferences ([NewBoltStore] on bbolt; an
//     in-memory store and the conformance suite are in mamtest).
//   - [Archiver] decides what to store for each routed message, strips
//     forged stanza-ids, stamps <stanza-id/> and returns the stanza to
//     deliver.
//   - [Handler] answers the XMPP side: queries (with data form and RSM),
//     form discovery, metadata and preferences, over mellium.im/xmpp's mux.
//   - Servers built on another XMPP library call [Handler.HandleIQ] with
//     any [xmlstream.TokenReadEncoder] over their own stream; [Prefs] reads
//     and writes itself as XML ([Prefs.TokenReader]) for exports.
//
// # Wiring into a mellium server
//
// One Archiver and one Handler serve every session:
//
//	store, err := mam.NewBoltStore(db, mam.BoltConfig{})
//	cfg := mam.Config{Roster: myRoster, Rooms: myMUC}
//	archiver := mam.NewArchiver(store, cfg)
//	handler := mam.NewHandler(store, cfg)
//
// Each session's mux registers the handler; the server sets every IQ's
// from to the session's bound JID before passing it on (the handler trusts
// it), and serves disco#info per JID ([Features], [RoomFeatures]):
//
//	m := mux.New(stanza.NSClient, mam.Handle(handler), disco.Handle())
//
// The router calls the archiver for each one-to-one message, after it has
// overwritten the client's from with the session's JID, giving the message
// in the form it holds it ([Stanza]: bytes, or a start element and its
// inner tokens), and delivers what comes back in that same form (also when
// err is not nil: archiving failures never lose a message):
//
//	res, err := archiver.Archive(ctx, mam.Chat{
//		From:   boundJID,
//		To:     to,
//		Stanza: mam.Stanza{Start: start, Inner: children},
//	})
//	if err != nil {
//		log.Printf("mam: %v", err) // no message content in errors
//	}
//	if !res.Deliver.IsZero() {
//		recipient.Send(ctx, res.Deliver.TokenReader())
//	}
//
// A zero Deliver means the stanza was not a well-formed message: drop or
// bounce it, never forward the original, which may carry forged stanza-ids.
//
// A MUC calls [Archiver.ArchiveRoom] with a [RoomMessage] for each accepted
// groupchat message of a room with archiving on and broadcasts res.Deliver
// (setting to per occupant), and implements [Rooms] so that the Handler can
// authorize room archive queries addressed to the room JID.
//
// # Timestamps
//
// Every time mam writes (delay stamps of results and exports, metadata
// timestamps) is an XEP-0082 DateTime in UTC with exactly six fractional
// digits, e.g. 2026-12-04T13:21:09.863916Z: clients that parse at most
// microseconds (slixmpp, poezio) read it. Parsing accepts any precision
// and zone. A stored time may be finer; the Handler compares an end filter
// given at microseconds (or coarser) at microseconds, so a start or end
// filter with a stamp the client got back still selects that message.
//
// # Performance
//
// The Archiver sits on the routing hot path: it makes one streaming pass
// over the stanza and costs 1.4–1.5× merely decoding it with encoding/xml.
// A page of 50 from a 1,000,000-message BoltStore archive costs 1.5–1.9× a
// raw bbolt cursor reading the same 50 values. The method, the full tables
// and their history are in BENCHMARKS.md.
//
// # Errors
//
// Callers branch on the sentinel errors with errors.Is: [ErrBadRequest]
// (malformed input), [ErrNotFound], [ErrForbidden], [ErrUnsupported],
// [ErrTooLarge] and [ErrConfig]. The Handler maps them to stanza errors in
// one place. Error messages never hold message bodies or JIDs of third
// parties.
package mam
