package main

import (
	"context"
	"errors"
	"io"
)

// accountBackend is what the server needs from account management. The
// account package's Manager is adapted to it in wire.go.
type accountBackend interface {
	// Authenticate checks a password and returns the canonical username.
	Authenticate(ctx context.Context, clientKey, username, password string) (string, error)
	// ChangePassword replaces the user's password.
	ChangePassword(ctx context.Context, username, newPassword string) error
	// Delete erases the account and every piece of its data.
	Delete(ctx context.Context, username string) error
	// Export writes the user's data.
	Export(ctx context.Context, username string, w io.Writer) error
	// Exists reports whether the account exists and is not being deleted.
	Exists(ctx context.Context, username string) bool
}

// Errors the account backend's errors are mapped to.
var (
	errRateLimited    = errors.New("too many attempts, try again later")
	errNotAcceptable  = errors.New("username or password not acceptable")
	errBadCredentials = errors.New("wrong username or password")
)
