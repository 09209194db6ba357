// Package argon hashes and verifies passwords with Argon2id (RFC 9106) in
// the PHC string format, and bounds the computations in flight (Hasher).
// It serves package account, which stores only these hashes; its parser of
// stored hashes accepts only canonical strings within MinParams..MaxParams,
// so a hostile or corrupt hash cannot make a login cost more than MaxParams.
package argon

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Errors. Their messages never hold a password or a hash.
var (
	// ErrMalformedHash is returned when a stored password hash is not a
	// valid Argon2id PHC string within the accepted parameter ranges.
	ErrMalformedHash = errors.New("argon2id: malformed password hash")

	// ErrWeakParams is returned when Argon2id parameters are below the
	// OWASP floor (m=19 MiB, t=2, p=1).
	ErrWeakParams = errors.New("argon2id: parameters below the minimum")

	// ErrParamsTooHigh is returned when Argon2id parameters exceed
	// MaxParams.
	ErrParamsTooHigh = errors.New("argon2id: parameters above the maximum")
)

// Params are Argon2id cost parameters (RFC 9106).
type Params struct {
	Time    uint32 // passes over memory (t)
	Memory  uint32 // memory in KiB (m)
	Threads uint8  // lanes (p)
}

// DefaultParams returns the second recommended option of RFC 9106 §4:
// t=3, m=64 MiB, p=4. Each hash in progress holds 64 MiB.
func DefaultParams() Params { return Params{Time: 3, Memory: 64 * 1024, Threads: 4} }

// MinParams returns the OWASP floor (m=19 MiB, t=2, p=1). Params below it in
// any dimension are refused with ErrWeakParams.
func MinParams() Params { return Params{Time: 2, Memory: 19 * 1024, Threads: 1} }

// MaxParams returns the largest parameters accepted, in new hashes and in
// stored ones: t=64, m=1 GiB, p=64. They bound the work a hostile or corrupt
// stored hash can cause.
func MaxParams() Params { return Params{Time: 64, Memory: 1 << 20, Threads: 64} }

// Validate reports whether p lies between MinParams and MaxParams. The error
// wraps ErrWeakParams or ErrParamsTooHigh.
func (p Params) Validate() error {
	lo, hi := MinParams(), MaxParams()
	switch {
	case p.Time < lo.Time || p.Memory < lo.Memory || p.Threads < lo.Threads:
		return fmt.Errorf("%w: need t≥%d, m≥%d KiB, p≥%d; have t=%d, m=%d, p=%d",
			ErrWeakParams, lo.Time, lo.Memory, lo.Threads, p.Time, p.Memory, p.Threads)
	case p.Time > hi.Time || p.Memory > hi.Memory || p.Threads > hi.Threads:
		return fmt.Errorf("%w: need t≤%d, m≤%d KiB, p≤%d; have t=%d, m=%d, p=%d",
			ErrParamsTooHigh, hi.Time, hi.Memory, hi.Threads, p.Time, p.Memory, p.Threads)
	}
	return nil
}

const (
	saltLen = 16 // bytes of salt in new hashes
	keyLen  = 32 // bytes of derived key in new hashes

	minSaltLen, maxSaltLen = 16, 64 // accepted in stored hashes
	minKeyLen, maxKeyLen   = 16, 64
	maxPHCLen              = 256 // longer strings are refused before parsing
	argonVersion           = 19  // 0x13, the only version defined by RFC 9106
)

// PHC is a parsed Argon2id hash in the PHC string format:
//
//	$argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>
//
// with salt and hash in base64 without padding (base64.RawStdEncoding).
type PHC struct {
	Params Params
	Salt   []byte
	Key    []byte
}

// String encodes h in the PHC string format.
func (h PHC) String() string {
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argonVersion,
		h.Params.Memory, h.Params.Time, h.Params.Threads,
		enc.EncodeToString(h.Salt), enc.EncodeToString(h.Key))
}

// ParsePHC parses an Argon2id PHC string. It accepts only variant argon2id,
// version 19, the parameters in the order m,t,p as decimal numbers without
// sign or leading zeros, within MinParams and MaxParams, a salt of 16 to 64
// bytes and a hash of 16 to 64 bytes in canonical unpadded base64. Any other
// input yields an error wrapping ErrMalformedHash; ParsePHC never panics.
func ParsePHC(s string) (PHC, error) {
	if len(s) > maxPHCLen {
		return PHC{}, fmt.Errorf("%w: longer than %d bytes", ErrMalformedHash, maxPHCLen)
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return PHC{}, fmt.Errorf("%w: want 5 fields separated by '$'", ErrMalformedHash)
	}
	if parts[1] != "argon2id" {
		return PHC{}, fmt.Errorf("%w: variant is not argon2id", ErrMalformedHash)
	}
	if parts[2] != "v="+strconv.Itoa(argonVersion) {
		return PHC{}, fmt.Errorf("%w: version is not 19", ErrMalformedHash)
	}
	kv := strings.Split(parts[3], ",")
	if len(kv) != 3 {
		return PHC{}, fmt.Errorf("%w: want parameters m,t,p", ErrMalformedHash)
	}
	var nums [3]uint32
	for i, name := range [3]string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(kv[i], name+"=")
		if !ok {
			return PHC{}, fmt.Errorf("%w: want parameters m,t,p", ErrMalformedHash)
		}
		n, err := parseDecimal(v)
		if err != nil {
			return PHC{}, fmt.Errorf("%w: parameter %s: %v", ErrMalformedHash, name, err)
		}
		nums[i] = n
	}
	if nums[2] > 255 {
		return PHC{}, fmt.Errorf("%w: parameter p out of range", ErrMalformedHash)
	}
	h := PHC{Params: Params{Memory: nums[0], Time: nums[1], Threads: uint8(nums[2])}}
	if err := h.Params.Validate(); err != nil {
		return PHC{}, fmt.Errorf("%w: %w", ErrMalformedHash, err)
	}
	var err error
	enc := base64.RawStdEncoding.Strict()
	if h.Salt, err = decodeField(enc, parts[4], minSaltLen, maxSaltLen); err != nil {
		return PHC{}, fmt.Errorf("%w: salt: %v", ErrMalformedHash, err)
	}
	if h.Key, err = decodeField(enc, parts[5], minKeyLen, maxKeyLen); err != nil {
		return PHC{}, fmt.Errorf("%w: hash: %v", ErrMalformedHash, err)
	}
	return h, nil
}

// parseDecimal parses a PHC decimal: digits only, no leading zero, fits
// in 32 bits.
func parseDecimal(s string) (uint32, error) {
	if s == "" || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("not a canonical decimal")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("not a canonical decimal")
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("out of range")
	}
	return uint32(n), nil
}

func decodeField(enc *base64.Encoding, s string, lo, hi int) ([]byte, error) {
	if len(s) > enc.EncodedLen(hi) {
		return nil, fmt.Errorf("longer than %d bytes", hi)
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("invalid base64")
	}
	if len(b) < lo {
		return nil, fmt.Errorf("shorter than %d bytes", lo)
	}
	// encoding/base64 skips '\r' and '\n' even in strict mode; a canonical
	// field is exactly the encoding of its bytes.
	if enc.EncodeToString(b) != s {
		return nil, fmt.Errorf("not canonical base64")
	}
	return b, nil
}

// Hash derives an Argon2id hash of password with a fresh 16-byte random salt
// and returns it as a PHC string. Params outside MinParams..MaxParams are
// refused. Hash is not bounded: servers should hash through a Hasher.
func Hash(password string, p Params) (string, error) {
	if err := p.Validate(); err != nil {
		return "", err
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("argon2id: reading salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, keyLen)
	return PHC{Params: p, Salt: salt, Key: key}.String(), nil
}

// Verify reports whether password matches the PHC string phc, comparing in
// constant time. A malformed phc is an error wrapping ErrMalformedHash (and
// never a panic); a wrong password is (false, nil).
func Verify(password, phc string) (bool, error) {
	h, err := ParsePHC(phc)
	if err != nil {
		return false, err
	}
	return verifyParsed(password, h), nil
}

func verifyParsed(password string, h PHC) bool {
	p := h.Params
	key := argon2.IDKey([]byte(password), h.Salt, p.Time, p.Memory, p.Threads, uint32(len(h.Key)))
	return subtle.ConstantTimeCompare(key, h.Key) == 1
}

// NeedsRehash reports whether the stored hash phc should be replaced by a
// new hash with params p: when it is malformed, when its parameters differ
// from p, or when its salt or key length differs from what Hash produces.
func NeedsRehash(phc string, p Params) bool {
	h, err := ParsePHC(phc)
	if err != nil {
		return true
	}
	return h.Params != p || len(h.Salt) != saltLen || len(h.Key) != keyLen
}

// Hasher hashes and verifies passwords with at most a fixed number of
// Argon2id computations in flight, so that a burst of logins holds at most
// limit × m of memory (m being the largest memory parameter in use: the
// Hasher's own, or a stored hash's, at most MaxParams().Memory). Callers
// beyond the limit wait their turn or give up when their context ends.
// A Hasher is safe for concurrent use.
type Hasher struct {
	params Params
	sem    chan struct{}
}

// NewHasher returns a Hasher producing hashes with params p and running at
// most limit computations at once; limit ≤ 0 means runtime.GOMAXPROCS(0).
func NewHasher(p Params, limit int) (*Hasher, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = runtime.GOMAXPROCS(0)
	}
	return &Hasher{params: p, sem: make(chan struct{}, limit)}, nil
}

// Params returns the parameters of new hashes.
func (h *Hasher) Params() Params { return h.params }

// Limit returns the maximum number of computations in flight.
func (h *Hasher) Limit() int { return cap(h.sem) }

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("argon2id: waiting to hash: %w", ctx.Err())
	}
}

func (h *Hasher) release() { <-h.sem }

// Hash is like the package function Hash, bounded.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	return Hash(password, h.params)
}

// Verify is like the package function Verify, bounded.
func (h *Hasher) Verify(ctx context.Context, password, phc string) (bool, error) {
	parsed, err := ParsePHC(phc)
	if err != nil {
		return false, err
	}
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	return verifyParsed(password, parsed), nil
}

// NeedsRehash reports whether phc should be rehashed with the Hasher's
// parameters (see the package function NeedsRehash).
func (h *Hasher) NeedsRehash(phc string) bool { return NeedsRehash(phc, h.params) }
