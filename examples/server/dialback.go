package main

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"sync"
)

// dialbackKeys makes and checks Server Dialback keys (XEP-0220) the way
// XEP-0185 recommends: HMAC-SHA256 over "receiving originating stream-id"
// keyed with SHA-256 of a secret. The secret is random per server start
// and held in memory only.
//
// A key is also good for one verification only: the originating side
// notes each key it sent (sent) and the authoritative side answers "valid"
// for a noted key once (verify). A key seen on the wire and played again,
// on the same stream id or another, is refused.
type dialbackKeys struct {
	secret [32]byte

	mu      sync.Mutex
	pending map[dialbackID]bool // keys sent and not yet verified
}

// dialbackID names one dialback attempt: the two domains and the
// receiving server's stream id.
type dialbackID struct{ receiving, originating, streamID string }

// maxPendingDialback bounds the keys waiting for verification.
const maxPendingDialback = 4096

func newDialbackKeys() *dialbackKeys {
	k := &dialbackKeys{pending: make(map[dialbackID]bool)}
	_, _ = rand.Read(k.secret[:])
	return k
}

// key is the dialback key for id.
func (k *dialbackKeys) key(id dialbackID) string {
	sum := sha256.Sum256(k.secret[:])
	m := hmac.New(sha256.New, []byte(hex.EncodeToString(sum[:])))
	m.Write([]byte(id.receiving + " " + id.originating + " " + id.streamID))
	return hex.EncodeToString(m.Sum(nil))
}

// sent returns the key for id and notes it as waiting for verification.
func (k *dialbackKeys) sent(id dialbackID) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.pending) >= maxPendingDialback {
		clear(k.pending) // the oldest attempts fail; no memory for floods
	}
	k.pending[id] = true
	return k.key(id)
}

// forget drops a noted key (its stream ended unverified).
func (k *dialbackKeys) forget(id dialbackID) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.pending, id)
}

// verify reports whether key is the one we sent for id and not verified
// before; it is then used up.
func (k *dialbackKeys) verify(id dialbackID, key string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.pending[id] || !hmac.Equal([]byte(key), []byte(k.key(id))) {
		return false
	}
	delete(k.pending, id)
	return true
}
