package account

import "errors"

// Sentinel errors. Functions wrap them with context; callers branch with
// errors.Is. No error of this package carries a password, a hash or a
// username.
var (
	// ErrExists is returned when a username is already taken: by a live
	// account, by an account being deleted, or by the tombstone of a deleted
	// one.
	ErrExists = errors.New("account: username not available")

	// ErrNotFound is returned when no account (or journal entry, or
	// tombstone) exists under the given key. Delete returns it both for a
	// name that never existed and for one that is already deleted.
	ErrNotFound = errors.New("account: not found")

	// ErrAuth is returned when authentication fails. It is the same error
	// for an unknown username and for a wrong password, so that callers
	// cannot reveal which names exist.
	ErrAuth = errors.New("account: authentication failed")

	// ErrBlocked is returned when the correct password was given for an
	// account whose processing is restricted (Block): the data is kept,
	// login is refused.
	ErrBlocked = errors.New("account: account blocked")

	// ErrRateLimited is returned when a caller key exceeded its budget of
	// registrations or failed logins.
	ErrRateLimited = errors.New("account: too many attempts, try again later")

	// ErrPolicy is returned (wrapped in a *PolicyError carrying the reason)
	// when a username or password is refused by policy.
	ErrPolicy = errors.New("account: refused by policy")

	// ErrWeakPassword is returned (in a *PolicyError, so ErrPolicy holds
	// too) when a new password is one of the most common passwords, is
	// only white space, or is the username. The error says which, never
	// the password.
	ErrWeakPassword = errors.New("account: password too weak")

	// ErrMixedScripts is returned (in a *PolicyError, so ErrPolicy holds
	// too) when a new username mixes scripts that look alike, such as
	// Latin with Cyrillic or Greek (Unicode TR39, Highly Restrictive).
	ErrMixedScripts = errors.New("account: username mixes scripts")

	// ErrErasureIncomplete is returned by Delete and Resume when at least one
	// Holder could not erase a user's data. The erasure stays in the journal
	// and is retried by the next Delete of the same name or by Resume.
	ErrErasureIncomplete = errors.New("account: erasure incomplete")

	// ErrBadRequest is returned by ParseQuery for a malformed XEP-0077
	// query (bad input, as upload's and mam's ErrBadRequest).
	ErrBadRequest = errors.New("account: malformed registration query")

	// ErrConfig is returned by NewManager for an invalid Config (for
	// example two Holders with the same name, or Params outside the
	// accepted range).
	ErrConfig = errors.New("account: invalid configuration")
)

// PolicyError is a refusal by policy with a reason that is safe to show to
// the user (it never repeats the refused value). errors.Is(err, ErrPolicy)
// holds for every *PolicyError; errors.Is(err, Err) too when Err is set.
type PolicyError struct {
	Reason string // e.g. "password shorter than 8 characters"
	// Err is the more specific sentinel (ErrWeakPassword,
	// ErrMixedScripts), or nil.
	Err error
}

// Error implements error.
func (e *PolicyError) Error() string { return "account: refused by policy: " + e.Reason }

// Unwrap returns ErrPolicy and, when set, Err, so that errors.Is finds
// both (as upload's TooLargeError unwraps to its sentinel).
func (e *PolicyError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrPolicy}
	}
	return []error{ErrPolicy, e.Err}
}

func policy(reason string) error { return &PolicyError{Reason: reason} }

func weak(reason string) error { return &PolicyError{Reason: reason, Err: ErrWeakPassword} }
