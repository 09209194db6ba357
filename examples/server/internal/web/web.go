package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// Backend is what the pages need from the account store: the method set of
// *account.Manager, which the server hands in (with Delete ending the
// user's sessions first). Its methods are called concurrently. The pages
// answer the account package's sentinel errors: account.ErrAuth (and
// account.ErrNotFound) as one "wrong username or password",
// account.ErrRateLimited with 429, account.ErrBlocked (said only after the
// right password) and, from ChangePassword, account.ErrPolicy; any other
// error is shown as an internal failure and logged.
type Backend interface {
	// Authenticate checks the password of username, as
	// account.Manager.Authenticate. clientKey identifies the client for
	// rate limiting (its IP address); it is never logged or shown.
	Authenticate(ctx context.Context, clientKey, username, password string) error
	// ChangePassword replaces the password of an authenticated user, as
	// account.Manager.ChangePassword (account.ErrPolicy for a refused
	// password).
	ChangePassword(ctx context.Context, username, newPassword string) error
	// Export writes every piece of data held about username to w as a zip
	// archive.
	Export(ctx context.Context, username string, w io.Writer) error
	// Delete removes the account of username and erases all of its data.
	Delete(ctx context.Context, username string) error
}

// PrivacyItem is one line of the privacy report shown at /privacy: a kind of
// data, how long it is kept, and the job that deletes it.
type PrivacyItem struct {
	Data     string        // what is kept, e.g. "uploaded files"
	Lifetime time.Duration // how long; 0 or less means until the user deletes it
	Job      string        // the retention job that enforces it
	// Kept, when set, replaces the words made from Lifetime, for data
	// whose lifetime is no duration ("until the erasure succeeds,
	// retried hourly").
	Kept string
}

// Config configures the pages. Only Backend is required.
type Config struct {
	// Backend checks passwords and acts on accounts. Required.
	Backend Backend
	// Privacy lists the retention promises shown at /privacy. nil shows an
	// empty list.
	Privacy func(ctx context.Context) ([]PrivacyItem, error)
	// Domain is the XMPP domain named on the pages; a username typed as
	// "user@Domain" is accepted as "user". Empty means "this server".
	Domain string
	// Logger receives failures of the Backend, never usernames, passwords
	// or addresses. nil discards.
	Logger *slog.Logger
	// ClientKey derives the rate-limiting key of a request. nil means the
	// remote IP address of the connection (proxy headers are not trusted).
	ClientKey func(*http.Request) string
	// FormTimeout bounds how long a form's body may take to arrive, from
	// the moment the handler starts reading it: the connection's read
	// deadline (http.ResponseController), so a client that sends its form
	// slowly, or stops, is answered 408 and its connection closed. The
	// deadline is cleared once the form is read, so an export that takes
	// longer is not cut. 0 means DefaultFormTimeout.
	FormTimeout time.Duration
}

// DefaultFormTimeout is the FormTimeout of a zero Config: a form of at most
// 16 KiB arrives in far less on any working connection.
const DefaultFormTimeout = 15 * time.Second
