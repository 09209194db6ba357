package web_test

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"chatbx.eu/privacy/account"
	"chatbx.eu/privacy/examples/server/internal/web"
)

// The pages act on an account.Manager as it is.
var _ web.Backend = (*account.Manager)(nil)

// fakeBackend keeps accounts in memory and limits failed logins per client
// key, like account.Manager.
type fakeBackend struct {
	mu        sync.Mutex
	passwords map[string]string // username → password
	files     map[string]string // username → content of its export
	failures  map[string]int    // clientKey → failed attempts
	limit     int               // failures allowed per client key; 0 means 5
	keys      []string          // client keys seen, in order
	blocked   map[string]bool   // accounts whose processing is restricted
	exportErr error             // returned by Export before writing
	breakOff  bool              // Export fails after writing part of the zip
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{
		passwords: map[string]string{"alice": "correct horse", "bob": "battery staple"},
		files:     map[string]string{"alice": "alice's archive", "bob": "bob's archive"},
		failures:  map[string]int{},
		blocked:   map[string]bool{},
	}
}

func (b *fakeBackend) Authenticate(_ context.Context, clientKey, username, password string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.keys = append(b.keys, clientKey)
	limit := b.limit
	if limit == 0 {
		limit = 5
	}
	if b.failures[clientKey] >= limit {
		return fmt.Errorf("fake: %w", account.ErrRateLimited)
	}
	if pw, ok := b.passwords[username]; !ok || pw != password {
		b.failures[clientKey]++
		return fmt.Errorf("fake: %w", account.ErrAuth)
	}
	if b.blocked[username] {
		return fmt.Errorf("fake: %w", account.ErrBlocked)
	}
	return nil
}

func (b *fakeBackend) ChangePassword(_ context.Context, username, newPassword string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(newPassword) < 4 {
		return &account.PolicyError{Reason: "too short"}
	}
	if _, ok := b.passwords[username]; !ok {
		return errors.New("fake: no such user")
	}
	b.passwords[username] = newPassword
	return nil
}

func (b *fakeBackend) Export(_ context.Context, username string, w io.Writer) error {
	b.mu.Lock()
	content, ok := b.files[username]
	exportErr, breakOff := b.exportErr, b.breakOff
	b.mu.Unlock()
	if exportErr != nil {
		return exportErr
	}
	if !ok {
		return errors.New("fake: no such user")
	}
	zw := zip.NewWriter(w)
	f, err := zw.Create("archive.txt")
	if err != nil {
		return err
	}
	if _, err := io.WriteString(f, content); err != nil {
		return err
	}
	if breakOff {
		if err := zw.Flush(); err != nil {
			return err
		}
		return errors.New("fake: storage failed mid-export")
	}
	return zw.Close()
}

func (b *fakeBackend) Delete(_ context.Context, username string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.passwords, username)
	delete(b.files, username)
	return nil
}

// password returns the current password of username and whether it exists.
func (b *fakeBackend) password(username string) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	pw, ok := b.passwords[username]
	return pw, ok
}
