package mam

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
)

// rawIDLen is the number of random bytes in an archive id.
const rawIDLen = 16

// NewID returns a fresh archive id: 16 bytes (128 bits) from crypto/rand,
// encoded with base64.RawURLEncoding (22 characters of [A-Za-z0-9_-]).
// The id carries no time, counter or user information, so it cannot be
// predicted or used to order or count messages. Store implementations
// assign ids with it.
func NewID() string {
	var b [rawIDLen]byte
	// crypto/rand.Read never returns an error (Go 1.24+); it crashes the
	// program irrecoverably instead if the system source fails.
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ParseID decodes an archive id made by NewID. It returns an error wrapping
// ErrNotFound for a string that cannot be an archive id (no such id can be
// in any archive), as Store requires for ids in queries. Store
// implementations use it to key their id index by the 16 raw bytes.
func ParseID(id string) ([16]byte, error) {
	var b [rawIDLen]byte
	if base64.RawURLEncoding.DecodedLen(len(id)) != rawIDLen {
		return b, fmt.Errorf("archive id: %w", ErrNotFound)
	}
	n, err := base64.RawURLEncoding.Decode(b[:], []byte(id))
	if err != nil || n != rawIDLen {
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

func idString(raw []byte) string { return base64.RawURLEncoding.EncodeToString(raw) }

// idLen is the length of an encoded archive id,
// base64.RawURLEncoding.EncodedLen(rawIDLen).
const idLen = 22

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// encodeID writes the id raw (rawIDLen bytes) to dst as idString does,
// without the general encoder's loop.
func encodeID(dst *[idLen]byte, raw []byte) {
	raw = raw[:rawIDLen]
	for i := range 5 {
		v := uint(raw[3*i])<<16 | uint(raw[3*i+1])<<8 | uint(raw[3*i+2])
		dst[4*i] = idAlphabet[v>>18&0x3f]
		dst[4*i+1] = idAlphabet[v>>12&0x3f]
		dst[4*i+2] = idAlphabet[v>>6&0x3f]
		dst[4*i+3] = idAlphabet[v&0x3f]
	}
	v := uint(raw[15])
	dst[20] = idAlphabet[v>>2]
	dst[21] = idAlphabet[v<<4&0x3f]
}
