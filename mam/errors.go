package mam

import "errors"

var (
	// ErrNotFound is returned when a query names an archive id that is not
	// in the archive.
	ErrNotFound = errors.New("mam: item not found")

	// ErrBadQuery is returned when a query or preference is malformed: a bad
	// timestamp or JID, an unknown default, an invalid page size.
	ErrBadQuery = errors.New("mam: bad query")

	// ErrForbidden is returned when the requester may not read or change an
	// archive.
	ErrForbidden = errors.New("mam: forbidden")

	// ErrTooLarge is returned when a message exceeds the stored size cap.
	ErrTooLarge = errors.New("mam: message too large")

	// ErrMalformed is returned by the Archiver when the stanza it is given
	// is not a well-formed <message/> element.
	ErrMalformed = errors.New("mam: malformed message stanza")

	// ErrUnsupported is returned when a query uses a data form field or a
	// result set feature (RSM <index/>) the server does not support.
	// XEP-0313 names feature-not-implemented for it.
	ErrUnsupported = errors.New("mam: unsupported query field")
)
