package upload

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Callers branch on them with errors.Is; the XMPP handler and
// the HTTP handler turn them into stanza errors and status codes in one place
// each. No message ever contains a user name, a token or a file name.
var (
	// ErrTooLarge is returned when a requested file is larger than the
	// service accepts. The concrete error is a *TooLargeError carrying the
	// limit.
	ErrTooLarge = errors.New("upload: file too large")

	// ErrQuota is returned when a slot request would exceed the user's daily
	// or stored-bytes quota. The concrete error is a *QuotaError carrying the
	// time at which a retry can succeed.
	ErrQuota = errors.New("upload: quota exceeded")

	// ErrForbidden is returned when the requester may not upload at all
	// (Config.Allow refused it, or it is not a user JID).
	ErrForbidden = errors.New("upload: not allowed")

	// ErrBadRequest is returned when a slot request lacks a usable file name,
	// has a negative size or an unparsable content type.
	ErrBadRequest = errors.New("upload: bad request")

	// ErrNotFound is returned by stores when no record or blob has the key.
	// Store implementations must wrap it.
	ErrNotFound = errors.New("upload: not found")

	// ErrSlotUsed is returned by MetaStore.Claim when the slot was already
	// claimed by another upload (a slot is single-use).
	ErrSlotUsed = errors.New("upload: slot already used")

	// ErrConfig is returned by NewService when the Config is unusable (bad
	// BaseURL, short key).
	ErrConfig = errors.New("upload: invalid config")
)

// TooLargeError is returned (wrapped) when a file exceeds the maximum size.
// errors.Is(err, ErrTooLarge) reports true for it.
type TooLargeError struct {
	Max int64 // the largest size, in bytes, the service would accept
}

// Error implements error; the message holds only the limit.
func (e *TooLargeError) Error() string {
	return fmt.Sprintf("upload: file too large (max %d bytes)", e.Max)
}

// Unwrap returns ErrTooLarge.
func (e *TooLargeError) Unwrap() error { return ErrTooLarge }

// QuotaError is returned (wrapped) when a user's quota is exhausted.
// errors.Is(err, ErrQuota) reports true for it.
type QuotaError struct {
	Retry time.Time // earliest time at which the same request can succeed
}

// Error implements error; the message holds only the retry time.
func (e *QuotaError) Error() string {
	return "upload: quota exceeded, retry at " + e.Retry.UTC().Format(time.RFC3339)
}

// Unwrap returns ErrQuota.
func (e *QuotaError) Unwrap() error { return ErrQuota }

// errBadToken is returned when an upload token is malformed, forged,
// signed with an unknown key or bound to another slot. The HTTP handler
// answers it with 403; it never leaves the package.
var errBadToken = errors.New("upload: invalid token")
