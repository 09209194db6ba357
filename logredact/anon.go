package logredact

import (
	"net/netip"
	"time"
)

// Mode says how an IP address is anonymized.
type Mode int

const (
	// Truncate keeps only the network prefix: IPv4 /24 and IPv6 /48 by
	// default (Options.IPv4Bits, Options.IPv6Bits). It is not reversible.
	// It is the zero Mode, the default.
	Truncate Mode = iota
	// Pseudonymize replaces each address with its ipcrypt-pfx encryption
	// under a key that changes every day (KeyRing) and is then destroyed:
	// the same client gets the same pseudonym all day, network structure is
	// kept, and pseudonyms of different days cannot be linked.
	Pseudonymize
	// Drop replaces each address with Options.Marker.
	Drop
)

// String returns the name of the mode.
func (m Mode) String() string {
	switch m {
	case Truncate:
		return "truncate"
	case Pseudonymize:
		return "pseudonymize"
	case Drop:
		return "drop"
	}
	return "unknown"
}

// defaultMarker replaces addresses when Options.Marker is empty.
const defaultMarker = "[ip]"

// Options configures a Handler and a Scrubber. The zero value is the private
// default: truncate to IPv4 /24 and IPv6 /48, maintenance windows of at most
// 24 hours, the system clock.
type Options struct {
	// Mode is how addresses are anonymized; the zero value is Truncate.
	Mode Mode

	// IPv4Bits is the IPv4 prefix length kept by Truncate: 0 means 24.
	// Values above 32 are treated as 32 (which keeps the full address).
	IPv4Bits int
	// IPv6Bits is the IPv6 prefix length kept by Truncate: 0 means 48.
	// Values above 128 are treated as 128.
	IPv6Bits int

	// Marker replaces addresses in Drop mode, and, in every mode, the
	// stretches of free text that cannot be anonymized otherwise (dotted
	// chains of more than four numbers outside Truncate, runs too tangled
	// to search): "" means "[ip]".
	Marker string

	// Keys supplies the daily ipcrypt-pfx keys for Pseudonymize. nil means a
	// new KeyRing private to this Handler or Scrubber (and to the handlers
	// derived from it). Share one KeyRing between a Handler and a Scrubber
	// to give a client the same pseudonym in both logs on a given day. A
	// KeyRing rotates by its own clock (NewKeyRing's now).
	Keys *KeyRing

	// MaxReveal caps the duration of a maintenance window (Handler.Reveal):
	// 0 means 24 hours. A longer request is refused with ErrRevealTooLong.
	MaxReveal time.Duration

	// RevealedKey is the key of the boolean attribute added to every record
	// written during a maintenance window: "" means "ip_revealed".
	RevealedKey string

	// MaxLine is how many bytes of a line without newline a Scrubber holds
	// before writing part of it out: 0 means 64 KiB. Values below 1024 are
	// raised to 1024.
	MaxLine int

	// Now is the clock, consulted on every record while a maintenance window
	// is open and for key rotation: nil means time.Now.
	Now func() time.Time
}

// anonymizer is the resolved, immutable form of Options.
type anonymizer struct {
	mode      Mode
	v4, v6    int
	marker    string
	keys      *KeyRing
	maxReveal time.Duration
	revealKey string
	maxLine   int
	now       func() time.Time
}

func newAnonymizer(o *Options) *anonymizer {
	var opts Options
	if o != nil {
		opts = *o
	}
	an := &anonymizer{
		mode:      opts.Mode,
		v4:        opts.IPv4Bits,
		v6:        opts.IPv6Bits,
		marker:    opts.Marker,
		keys:      opts.Keys,
		maxReveal: opts.MaxReveal,
		revealKey: opts.RevealedKey,
		maxLine:   opts.MaxLine,
		now:       opts.Now,
	}
	if an.v4 <= 0 {
		an.v4 = 24
	}
	an.v4 = min(an.v4, 32)
	if an.v6 <= 0 {
		an.v6 = 48
	}
	an.v6 = min(an.v6, 128)
	if an.marker == "" {
		an.marker = defaultMarker
	}
	if an.maxReveal <= 0 {
		an.maxReveal = 24 * time.Hour
	}
	if an.revealKey == "" {
		an.revealKey = "ip_revealed"
	}
	if an.maxLine <= 0 {
		an.maxLine = 64 << 10
	}
	an.maxLine = max(an.maxLine, 1024)
	if an.now == nil {
		an.now = time.Now
	}
	if an.mode != Truncate && an.mode != Pseudonymize && an.mode != Drop {
		// An unknown mode must not leak: fall back to the strictest.
		an.mode = Drop
	}
	if an.mode == Pseudonymize && an.keys == nil {
		an.keys = NewKeyRing(0, an.now)
	}
	return an
}

// view is what one record is anonymized with: the mode's key of the moment.
type view struct {
	an  *anonymizer
	day *dayKey // Pseudonymize only
}

func (an *anonymizer) view() view {
	v := view{an: an}
	if an.mode == Pseudonymize {
		v.day, _ = an.keys.current()
	}
	return v
}

// addr anonymizes a (Truncate or Pseudonymize; Drop is handled by callers
// because it does not yield an address). The zone is kept: it names a local
// interface, not a person.
func (v view) addr(a netip.Addr) netip.Addr {
	if !a.IsValid() {
		return a
	}
	zone := a.Zone()
	a = a.WithZone("")
	var r netip.Addr
	if v.day != nil {
		r = v.day.encrypt(a)
	} else {
		r = truncate(a, v.an.v4, v.an.v6)
	}
	if zone != "" {
		r = r.WithZone(zone)
	}
	return r
}

// truncate keeps the first v4 (IPv4) or v6 (IPv6) bits. Addresses that carry
// an IPv4 address inside (IPv4-mapped ::ffff:a.b.c.d, 6to4 2002:AABB:CCDD::)
// have that IPv4 address truncated to v4 bits too.
func truncate(a netip.Addr, v4, v6 int) netip.Addr {
	switch {
	case a.Is4():
		p, _ := a.Prefix(v4)
		return p.Addr()
	case a.Is4In6():
		p, _ := a.Prefix(96 + v4)
		return p.Addr()
	}
	bits := v6
	if b := a.As16(); b[0] == 0x20 && b[1] == 0x02 { // 6to4, RFC 3056
		bits = min(bits, 16+v4)
	}
	p, _ := a.Prefix(bits)
	return p.Addr()
}

// appendAddr appends the anonymized text of a.
func (v view) appendAddr(dst []byte, a netip.Addr) []byte {
	if v.an.mode == Drop {
		return append(dst, v.an.marker...)
	}
	return v.addr(a).AppendTo(dst)
}

// appendScrubbed appends src with every span replaced by its anonymized
// form.
func appendScrubbed[T ~string | ~[]byte](dst []byte, src T, spans []span, v view) []byte {
	last := 0
	for _, sp := range spans {
		dst = append(dst, src[last:sp.start]...)
		switch sp.kind {
		case spanAddr:
			dst = v.appendAddr(dst, sp.addr)
		case spanChain:
			dst = appendChain(v, dst, src[sp.start:sp.end])
		default:
			dst = append(dst, v.an.marker...)
		}
		last = sp.end
	}
	return append(dst, src[last:]...)
}

// appendChain anonymizes a dotted chain of more than four octets. Truncate
// keeps the leading IPv4Bits/8 octets and zeroes all the others, so that
// whichever four octets are the address, at most its /IPv4Bits survives;
// the other modes replace the chain with the marker.
func appendChain[T ~string | ~[]byte](v view, dst []byte, chain T) []byte {
	if v.an.mode != Truncate {
		return append(dst, v.an.marker...)
	}
	keep := v.an.v4 / 8
	group := 0
	for i := 0; i < len(chain); {
		if group > 0 {
			dst = append(dst, '.')
			i++ // the dot
		}
		j := i
		for j < len(chain) && chain[j] != '.' {
			j++
		}
		if group < keep {
			dst = append(dst, chain[i:j]...)
		} else {
			dst = append(dst, '0')
		}
		group++
		i = j
	}
	return dst
}
