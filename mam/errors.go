package mam

import "errors"

var (
	// ErrNotFound is returned when a query names an archive id that is not
	// in the archive.
	ErrNotFound = errors.New("mam: item not found")

	// ErrBadRequest is returned for malformed input: a query or preference
	// with a bad timestamp or JID, an unknown default or an invalid page
	// size, and a stanza given to the Archiver that is not a well-formed
	// <message/> element.
	ErrBadRequest = errors.New("mam: bad request")

	// ErrForbidden is returned when the requester may not read or change an
	// archive.
	ErrForbidden = errors.New("mam: forbidden")

	// ErrTooLarge is returned when a message exceeds the stored size cap.
	ErrTooLarge = errors.New("mam: message too large")

	// ErrUnsupported is returned when a query uses a data form field or a
	// result set feature (RSM <index/>) the server does not support.
	// XEP-0313 names feature-not-implemented for it.
	ErrUnsupported = errors.New("mam: unsupported query field")

	// ErrConfig is returned by a constructor given an unusable
	// configuration, such as a nil database.
	ErrConfig = errors.New("mam: invalid configuration")
)
