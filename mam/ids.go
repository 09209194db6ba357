package mam

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
)

// IDLen is the number of random bytes in an archive id.
const IDLen = 16

// NewID returns a fresh archive id: 16 bytes (128 bits) from crypto/rand,
// encoded with base64.RawURLEncoding (22 characters of [A-Za-z0-9_-]).
// The id carries no time, counter or user information, so it cannot be
// predicted or used to order or count messages.
func NewID() string {
	var b [IDLen]byte
	// crypto/rand.Read never returns an error (Go 1.24+); it crashes the
	// program irrecoverably instead if the system source fails.
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ParseID decodes an archive id made by NewID. It returns an error wrapping
// ErrNotFound for a string that cannot be an archive id (no such id can be
// in any archive).
func ParseID(id string) ([IDLen]byte, error) {
	var b [IDLen]byte
	if base64.RawURLEncoding.DecodedLen(len(id)) != IDLen {
		return b, fmt.Errorf("archive id: %w", ErrNotFound)
	}
	n, err := base64.RawURLEncoding.Decode(b[:], []byte(id))
	if err != nil || n != IDLen {
		return b, fmt.Errorf("archive id: %w", ErrNotFound)
	}
	// Reject non-canonical encodings (trailing bits set) so one id has
	// exactly one spelling.
	var enc [idLen]byte
	if encodeID(&enc, b[:]); string(enc[:]) != id {
		return b, fmt.Errorf("archive id: %w", ErrNotFound)
	}
	return b, nil
}
