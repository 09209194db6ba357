package logredact

import "errors"

var (
	// ErrKeySize is returned when an ipcrypt key has the wrong length
	// (ipcrypt-pfx: 32 bytes, ipcrypt-deterministic: 16 bytes).
	ErrKeySize = errors.New("logredact: wrong key size")

	// ErrWeakKey is returned when the two halves of an ipcrypt-pfx key are
	// equal, which draft-denis-ipcrypt forbids.
	ErrWeakKey = errors.New("logredact: the two halves of the key are equal")

	// ErrRevealTooLong is returned by Handler.Reveal when the requested
	// maintenance window is longer than Options.MaxReveal.
	ErrRevealTooLong = errors.New("logredact: reveal window longer than the allowed maximum")

	// ErrRevealInvalid is returned by Handler.Reveal for a duration that is
	// not positive or a reason that is empty.
	ErrRevealInvalid = errors.New("logredact: reveal needs a positive duration and a reason")

	// ErrClosed is returned when writing to a Scrubber or RotatingFile that
	// was closed.
	ErrClosed = errors.New("logredact: closed")

	// ErrEmptyPattern is returned by RotatingFile.EraseLines when asked to
	// erase lines containing the empty string (which would erase every line).
	ErrEmptyPattern = errors.New("logredact: empty erase pattern")

	// ErrBadConfig is returned when a RotateConfig cannot be used (no
	// directory, a period that is not a whole number of minutes, a name
	// prefix with a path separator).
	ErrBadConfig = errors.New("logredact: invalid configuration")
)
