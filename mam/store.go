package mam

import (
	"context"
	"io"
	"time"

	"mellium.im/xmpp/jid"
)

// Message is one archived stanza.
type Message struct {
	// ID is the archive id (the XEP-0359 stanza-id): random, at least 128
	// bits, unique in its archive and never reused. Store.Append assigns it.
	ID string

	// Archive is the bare JID of the archive's owner: a user or a room.
	Archive jid.JID

	// With is the other party as seen by the archive: the peer's JID (with
	// its resource, if any) in a user archive, the occupant JID
	// (room@service/nick) in a room archive.
	With jid.JID

	// Time is when the server archived the message (UTC, the delay stamp of
	// query results).
	Time time.Time

	// Groupchat is true for a type='groupchat' message.
	Groupchat bool

	// RealJID is, in a room archive, the sender's real bare JID when the room
	// is non-anonymous; the zero JID otherwise. It is stored apart from the
	// stanza and shown only to those allowed to see real JIDs.
	RealJID jid.JID

	// Stanza is the stored <message/> element, serialized XML as it will be
	// forwarded in query results.
	Stanza []byte
}

// Query selects messages of one archive. The zero Query selects every
// message, paged with the default page size.
type Query struct {
	// With, when set, keeps only messages with that party: a bare JID matches
	// the bare JID and any of its resources, a full JID matches exactly.
	With jid.JID

	// Start and End, when not zero, keep messages with Start <= Time <= End.
	// Start after End selects nothing (an empty page, not an error).
	Start, End time.Time

	// AfterID and BeforeID are the XEP-0313 form fields: only messages after
	// (before) the message with that id, exclusive. An id not in the archive
	// is an error wrapping ErrNotFound.
	AfterID, BeforeID string

	// IDs, when not empty, selects exactly these messages, in archive order.
	// An id not in the archive is an error wrapping ErrNotFound.
	IDs []string

	// IncludeGroupchat includes type='groupchat' messages in a user archive.
	// Room archives hold only group messages and ignore it: a groupchat
	// message whose With is an occupant of the archive itself (With.Bare()
	// equals the archive JID) is a room record and always included.
	IncludeGroupchat bool

	// Max is the RSM page size; 0 means the store's default (50). A
	// negative Max is an error wrapping ErrBadRequest.
	Max int

	// After is the RSM <after/> id: the page starts after it.
	After string

	// Before is the RSM <before/> id: the page ends before it, paging
	// backwards. Last with an empty Before is an empty <before/>: the last
	// page.
	Before string
	Last   bool
}

// Page is one page of query results.
type Page struct {
	// Messages are the matches on this page, in archive (chronological)
	// order, also when paging backwards.
	Messages []Message

	// FirstIndex is the RSM index of the first message on the page among all
	// matches, or -1 when unknown or the page is empty.
	FirstIndex int

	// Count is the number of messages matching the query, ignoring paging,
	// or -1 when unknown.
	Count int

	// Complete is true when the page reached the end of the results in the
	// paging direction (the last match going forwards, the first going
	// backwards).
	Complete bool
}

// Metadata describes the bounds of an archive (XEP-0313 metadata). Both ids
// are empty for an empty archive.
type Metadata struct {
	StartID   string
	StartTime time.Time
	EndID     string
	EndTime   time.Time
}

// Default is the XEP-0441 default archiving preference.
type Default string

// The XEP-0441 default values.
const (
	// DefaultNever archives nothing except JIDs in Prefs.Always. It is the
	// default for a user who never set preferences.
	DefaultNever Default = "never"
	// DefaultAlways archives everything except JIDs in Prefs.Never.
	DefaultAlways Default = "always"
	// DefaultRoster archives messages with contacts in the user's roster.
	DefaultRoster Default = "roster"
)

// Prefs are a user's XEP-0441 archiving preferences. The zero Prefs is
// DefaultNever with empty lists.
type Prefs struct {
	Default Default
	Always  []jid.JID // bare JIDs always archived
	Never   []jid.JID // bare JIDs never archived
}

// Store keeps message archives and preferences.
//
// A Store is safe for concurrent use. Each method is one logical
// transaction. Errors for unknown ids wrap ErrNotFound; invalid arguments
// wrap ErrBadRequest. Implementations prove themselves with
// mamtest.TestStore.
type Store interface {
	// Append stores m in the archive m.Archive, assigns a fresh random
	// m.ID (ignoring any id set by the caller) and returns the stored
	// message.
	Append(ctx context.Context, m Message) (Message, error)

	// Query returns one page of the archive's messages selected by q.
	Query(ctx context.Context, archive jid.JID, q Query) (Page, error)

	// Metadata returns the first and last message of the archive.
	Metadata(ctx context.Context, archive jid.JID) (Metadata, error)

	// Prefs returns the owner's preferences; an owner who never set them
	// gets the zero Prefs (DefaultNever).
	Prefs(ctx context.Context, owner jid.JID) (Prefs, error)

	// SetPrefs replaces the owner's preferences.
	SetPrefs(ctx context.Context, owner jid.JID, p Prefs) error

	// Name returns "mam", the name of this data in exports and reports.
	Name() string

	// Export writes every message of the user's archive and the user's
	// preferences to w (XEP-0227 <archive xmlns='urn:xmpp:pie:0#mam'>).
	Export(ctx context.Context, user jid.JID, w io.Writer) error

	// Erase deletes the user's archive and preferences and removes the
	// user's real JID from every room archive record. It is idempotent.
	Erase(ctx context.Context, user jid.JID) error

	// Expire deletes every message older than before, oldest first in each
	// archive (never leaving holes), and returns how many it deleted.
	Expire(ctx context.Context, before time.Time) (removed int, err error)
}
