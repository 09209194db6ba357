package upload

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"time"
)

// idBytes is the number of random bytes in a file ID (144 bits).
const idBytes = 18

// tokenVersion is the first byte of every token; a new layout gets a new one.
const tokenVersion = 1

const (
	tokenPayloadLen = 1 + idBytes + 8 + 8 + 16 + 16
	tokenLen        = tokenPayloadLen + sha256.Size
)

var b64 = base64.RawURLEncoding

// newID returns a fresh random ID: 144 bits from crypto/rand, base64url.
func newID() string {
	var b [idBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return b64.EncodeToString(b[:])
}

// validID reports whether s has the form newID returns.
func validID(s string) bool {
	if len(s) != b64.EncodedLen(idBytes) {
		return false
	}
	_, err := b64.DecodeString(s)
	return err == nil
}

// claims is what an upload token binds.
type claims struct {
	ID      string    // slot ID
	Size    int64     // exact body size
	Expires time.Time // end of the slot's validity (second precision)
	owner   [16]byte  // keyed hash of the owner's bare JID
	ctype   [16]byte  // keyed hash of the content type
}

// keyedHash is an opaque, key-dependent digest of a labelled string, so a
// token never reveals the owner or content type and cannot be matched across
// keys.
func keyedHash(key []byte, label, s string) (out [16]byte) {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	m.Write([]byte{0})
	m.Write([]byte(s))
	copy(out[:], m.Sum(nil))
	return out
}

// signToken returns the token for a record, signed with key.
func signToken(key []byte, r Record, exp time.Time) string {
	raw, _ := b64.DecodeString(r.ID)
	buf := make([]byte, 0, tokenLen)
	buf = append(buf, tokenVersion)
	buf = append(buf, raw...)
	buf = binary.BigEndian.AppendUint64(buf, uint64(r.Size))
	buf = binary.BigEndian.AppendUint64(buf, uint64(exp.Unix()))
	o := keyedHash(key, "owner", r.Owner)
	c := keyedHash(key, "content-type", r.ContentType)
	buf = append(buf, o[:]...)
	buf = append(buf, c[:]...)
	m := hmac.New(sha256.New, key)
	m.Write(buf)
	buf = m.Sum(buf)
	return b64.EncodeToString(buf)
}

// parseToken checks a token's MAC against each key in turn and returns its
// claims and the key that verified it. It never panics on any input.
func parseToken(keys [][]byte, tok string) (claims, []byte, error) {
	if len(tok) != b64.EncodedLen(tokenLen) {
		return claims{}, nil, fmt.Errorf("%w: bad length", errBadToken)
	}
	raw, err := b64.DecodeString(tok)
	if err != nil || len(raw) != tokenLen {
		return claims{}, nil, fmt.Errorf("%w: bad encoding", errBadToken)
	}
	payload, mac := raw[:tokenPayloadLen], raw[tokenPayloadLen:]
	var key []byte
	for _, k := range keys {
		if len(k) == 0 {
			continue
		}
		m := hmac.New(sha256.New, k)
		m.Write(payload)
		if hmac.Equal(m.Sum(nil), mac) {
			key = k
			break
		}
	}
	if key == nil {
		return claims{}, nil, fmt.Errorf("%w: bad signature", errBadToken)
	}
	if payload[0] != tokenVersion {
		return claims{}, nil, fmt.Errorf("%w: unknown version", errBadToken)
	}
	p := payload[1:]
	var c claims
	c.ID = b64.EncodeToString(p[:idBytes])
	p = p[idBytes:]
	size := binary.BigEndian.Uint64(p)
	exp := binary.BigEndian.Uint64(p[8:])
	if size > 1<<62 || exp > 1<<40 {
		return claims{}, nil, fmt.Errorf("%w: out of range", errBadToken)
	}
	c.Size = int64(size)
	c.Expires = time.Unix(int64(exp), 0)
	p = p[16:]
	copy(c.owner[:], p[:16])
	copy(c.ctype[:], p[16:32])
	return c, key, nil
}

// matches reports whether the token's claims bind exactly this record.
func (c claims) matches(key []byte, r Record) bool {
	o := keyedHash(key, "owner", r.Owner)
	t := keyedHash(key, "content-type", r.ContentType)
	return c.ID == r.ID && c.Size == r.Size &&
		hmac.Equal(o[:], c.owner[:]) && hmac.Equal(t[:], c.ctype[:])
}
