package main

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"crypto/rand"
	"crypto/subtle"
	"golang.org/x/crypto/argon2"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/stanza"
)

// wire builds the account backend and the IQ muxes.
func (srv *Server) wire() error {
	srv.accounts = &memAccounts{users: make(map[string][]byte)}
	srv.userMux = mux.New(stanza.NSClient,
		ping.Handle(),
		mux.IQFunc(stanza.GetIQ, xml.Name{Space: nsRoster, Local: "query"}, srv.handleRoster),
		mux.IQFunc(stanza.SetIQ, xml.Name{Space: nsRoster, Local: "query"}, srv.handleRoster),
		mux.IQFunc(stanza.GetIQ, xml.Name{Space: nsRegister, Local: "query"}, srv.handleRegister),
		mux.IQFunc(stanza.SetIQ, xml.Name{Space: nsRegister, Local: "query"}, srv.handleRegister),
	)
	return nil
}

// wireHTTP builds the HTTPS server.
func (srv *Server) wireHTTP() error {
	srv.httpMux = http.NewServeMux()
	srv.httpSrv = &http.Server{
		Handler:           srv.httpMux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	return nil
}

// startBackground starts the retention scheduler.
func (srv *Server) startBackground() {}

// purge runs every retention job once.
func (srv *Server) purge(context.Context) error { return nil }

// memAccounts is a stand-in until account.Manager is wired: Argon2id at
// the OWASP floor, in memory.
type memAccounts struct {
	mu    sync.Mutex
	users map[string][]byte // salt | key
}

func memHash(salt []byte, p string) []byte {
	return argon2.IDKey([]byte(p), salt, 2, 19*1024, 1, 32)
}

func (m *memAccounts) Register(_ context.Context, _, u, p string) (string, error) {
	if u == "" || len(p) < 8 {
		return "", errNotAcceptable
	}
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	h := append(salt, memHash(salt, p)...)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[u]; ok {
		return "", errConflict
	}
	m.users[u] = h
	return u, nil
}

func (m *memAccounts) Authenticate(_ context.Context, _, u, p string) (string, error) {
	m.mu.Lock()
	h, ok := m.users[u]
	m.mu.Unlock()
	if !ok || subtle.ConstantTimeCompare(h[16:], memHash(h[:16], p)) != 1 {
		return "", errBadCredentials
	}
	return u, nil
}

func (m *memAccounts) ChangePassword(_ context.Context, u, p string) error {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.users[u] = append(salt, memHash(salt, p)...)
	return nil
}

func (m *memAccounts) Delete(_ context.Context, u string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.users, u)
	return nil
}

func (m *memAccounts) Export(_ context.Context, u string, w io.Writer) error {
	_, err := fmt.Fprintf(w, "user %s\n", u)
	return err
}
