package mam

import (
	"context"
	"log/slog"
	"time"

	"mellium.im/xmpp/jid"
)

// Defaults of Config's zero fields.
const (
	defaultMaxStanzaSize = 64 << 10
	defaultPageSize      = 50
	defaultMaxPageSize   = 250
)

// Roster answers whether a contact is in a user's roster, for the XEP-0441
// default "roster". The integrator supplies it; it must be safe for
// concurrent use.
type Roster interface {
	// InRoster reports whether the bare JID contact is in owner's roster.
	InRoster(ctx context.Context, owner, contact jid.JID) (bool, error)
}

// Rooms decides who may read a room archive. The integrator's MUC service
// supplies it; it must be safe for concurrent use.
type Rooms interface {
	// Access reports whether requester (a full JID) may query the archive
	// of room (a bare JID) and whether it may see the occupants' real JIDs.
	// For a JID that is not a room with archiving enabled it returns
	// allowed == false.
	Access(ctx context.Context, room, requester jid.JID) (allowed, seeRealJIDs bool, err error)
}

// Config configures an Archiver and a Handler. The zero Config is the
// private default: nothing is archived for users who never set preferences,
// the roster default matches nobody, room archives are closed, messages over
// 64 KiB are not archived and pages hold 50 messages (at most 250).
type Config struct {
	// Roster looks up rosters for the preference default "roster"; nil
	// means no contact is in any roster (nothing is archived by that
	// default).
	Roster Roster

	// Rooms authorizes queries to room archives; nil means no room archive
	// can be queried.
	Rooms Rooms

	// IsLocal reports whether a bare JID is a user of this server, whose
	// archive the Archiver may write. nil means every JID is local: the
	// preferences of remote JIDs (never set, so "never") then keep their
	// archives empty anyway.
	IsLocal func(jid.JID) bool

	// MaxStanzaSize is the largest serialized message, in bytes, that is
	// archived; larger ones are delivered but not stored. 0 means 64 KiB.
	MaxStanzaSize int

	// PageSize is the page size of a query without RSM <max/>; 0 means 50.
	PageSize int

	// MaxPageSize caps the page size a client may ask for; 0 means 250.
	// It also caps the number of ids in one query.
	MaxPageSize int

	// Logger receives internal errors of the Handler (store failures),
	// never message content; nil discards them.
	Logger *slog.Logger

	// Now returns the current time; nil means time.Now. Tests inject a
	// clock.
	Now func() time.Time
}

func (c Config) maxStanzaSize() int {
	if c.MaxStanzaSize <= 0 {
		return defaultMaxStanzaSize
	}
	return c.MaxStanzaSize
}

func (c Config) maxPageSize() int {
	if c.MaxPageSize <= 0 {
		return defaultMaxPageSize
	}
	return c.MaxPageSize
}

func (c Config) pageSize() int {
	n := c.PageSize
	if n <= 0 {
		n = defaultPageSize
	}
	return min(n, c.maxPageSize())
}

func (c Config) now() time.Time {
	if c.Now != nil {
		return c.Now().UTC()
	}
	return time.Now().UTC()
}

func (c Config) isLocal(j jid.JID) bool {
	if c.IsLocal == nil {
		return true
	}
	return c.IsLocal(j.Bare())
}
