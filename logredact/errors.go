package logredact

import "errors"

// Sentinel errors; callers branch on them with errors.Is. No message holds
// an IP address or a log line.
var (
	// ErrRevealTooLong is returned by Handler.Reveal when the requested
	// maintenance window is longer than Options.MaxReveal.
	ErrRevealTooLong = errors.New("logredact: reveal window longer than the allowed maximum")

	// ErrBadRequest is returned for unusable arguments: by Handler.Reveal
	// for a duration that is not positive or a reason that is empty, and by
	// RotatingFile.EraseLines when asked to erase the lines containing the
	// empty string (which would erase every line).
	ErrBadRequest = errors.New("logredact: bad request")

	// ErrClosed is returned when writing to a Scrubber or RotatingFile that
	// was closed.
	ErrClosed = errors.New("logredact: closed")

	// ErrConfig is returned by OpenRotating when a RotateConfig cannot be
	// used (no directory, a period that is not a whole number of minutes, a
	// name prefix with a path separator).
	ErrConfig = errors.New("logredact: invalid configuration")
)

// Errors of the ipcrypt-pfx key schedule; KeyRing draws keys that avoid
// them, so they never leave the package.
var (
	// errKeySize is returned when an ipcrypt-pfx key is not 32 bytes.
	errKeySize = errors.New("logredact: wrong key size")

	// errWeakKey is returned when the two halves of an ipcrypt-pfx key are
	// equal, which draft-denis-ipcrypt forbids.
	errWeakKey = errors.New("logredact: the two halves of the key are equal")
)
