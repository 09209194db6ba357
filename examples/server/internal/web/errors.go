package web

import "errors"

// Errors a Backend returns, wrapped with %w, so that the pages can say what
// happened without revealing more than they should.
var (
	// ErrRateLimited is returned by a Backend when the client (or the
	// account) made too many failed attempts; the page answers 429.
	ErrRateLimited = errors.New("web: too many attempts")

	// ErrBadCredentials is returned by Backend.Authenticate when the username
	// is unknown or the password is wrong. Both cases must return it alike:
	// the page answers one generic "wrong username or password".
	ErrBadCredentials = errors.New("web: wrong username or password")

	// ErrAccountBlocked is returned by Backend.Authenticate for the right
	// password of an account whose processing is restricted (blocked by
	// the provider); the page says so, and that nothing was done.
	ErrAccountBlocked = errors.New("web: account blocked")

	// ErrPasswordRejected is returned by Backend.ChangePassword when the new
	// password does not meet the provider's rules (too short, too long,
	// only white space, the username, or one of the most common
	// passwords); the old password stays in force.
	ErrPasswordRejected = errors.New("web: new password rejected")
)
