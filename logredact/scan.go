package logredact

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
)

var errNotAddr = errors.New("not an address")

// The scanner finds IP addresses in free text without regular expressions:
// it jumps from one ':' or '.' to the next (IndexByte), takes the maximal
// run of [0-9A-Fa-f:.] around it, and validates the candidates in that run.
// IPv6 candidates are validated by netip.ParseAddr; dotted IPv4 quads are
// parsed here, leniently (leading zeros are accepted, since privacy wins
// over strictness).

const (
	cDigit = 1 << iota
	cHexLetter
	cColon
	cDot
	cWord // a letter that is not a hex digit, or '_': glues a run to a word
)

// classes maps a byte to its class. It is filled once and only read.
var classes = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = cDigit
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = cHexLetter
		t[c-'a'+'A'] = cHexLetter
	}
	for c := 'g'; c <= 'z'; c++ {
		t[c] = cWord
		t[c-'a'+'A'] = cWord
	}
	t['_'] = cWord
	t[':'] = cColon
	t['.'] = cDot
	return t
}()

const runClasses = cDigit | cHexLetter | cColon | cDot

// sepCounts maps '.' to 1 and ':' to 1<<8, for mayHoldAddr. Read-only.
var sepCounts = func() (t [256]uint16) {
	t['.'] = 1
	t[':'] = 1 << 8
	return t
}()

// maxExactLen bounds the text exactSpan tries: the longest address with a
// zone of a plausible length.
const maxExactLen = maxAddrLen + 1 + 32

// maxAddrLen is the longest textual IPv6 address without zone
// ("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255").
const maxAddrLen = 45

type spanKind uint8

const (
	// spanAddr is one address, held in span.addr.
	spanAddr spanKind = iota
	// spanChain is a dotted-decimal chain of more than four octets
	// ("1.192.0.2.7"): an address may hide in any four of them, so the
	// whole chain is anonymized.
	spanChain
	// spanMask is a run too tangled to search to the end (crafted input):
	// it is replaced by the marker in every mode.
	spanMask
)

type span struct {
	start, end int
	addr       netip.Addr
	kind       spanKind
}

// mayHoldAddr is a cheap test that s could hold an address at all: an IPv4
// address needs three dots, an IPv6 address two colons. It uses the
// vectorized strings.IndexByte.
func mayHoldAddr(s string) bool {
	if len(s) <= 32 {
		// Branch-free count: dots in the low byte, colons in the next.
		var n uint32
		for i := 0; i < len(s); i++ {
			n += uint32(sepCounts[s[i]])
		}
		return n&0xff >= 3 || n>>8 >= 2
	}
	if i := strings.IndexByte(s, ':'); i >= 0 && strings.IndexByte(s[i+1:], ':') >= 0 {
		return true
	}
	for n := 0; n < 3; n++ {
		i := strings.IndexByte(s, '.')
		if i < 0 {
			return false
		}
		s = s[i+1:]
	}
	return true
}

// scan appends to out the address spans found in s, in order and
// non-overlapping. It does not allocate when s is a string or when no
// IPv6-looking candidate is found.
//
// Every address holds a ':' or a '.', so scan jumps from separator to
// separator with the vectorized IndexByte and only then looks at the run
// of address characters around it.
func scan[T ~string | ~[]byte](s T, out []span) []span {
	n := len(s)
	nextColon, nextDot := -2, -2 // -2: not searched yet; -1: none left
	for pos := 0; pos < n; {
		if nextColon != -1 && nextColon < pos {
			nextColon = indexByteFrom(s, pos, ':')
		}
		if nextDot != -1 && nextDot < pos {
			nextDot = indexByteFrom(s, pos, '.')
		}
		p := nextColon
		if p < 0 || (nextDot >= 0 && nextDot < p) {
			p = nextDot
		}
		if p < 0 {
			break
		}
		// The run of address characters around p. Between pos and p there
		// is no separator, and pos is not inside a run.
		a, digits := p, 0
		for a > pos && classes[s[a-1]]&runClasses != 0 {
			a--
			if classes[s[a]] == cDigit {
				digits++
			}
		}
		b, colons, dots := p, 0, 0
		for b < n {
			c := classes[s[b]]
			if c&runClasses == 0 {
				break
			}
			switch c {
			case cColon:
				colons++
			case cDot:
				dots++
			case cDigit:
				digits++
			}
			b++
		}
		if colons >= 2 || (dots >= 3 && digits >= 4) {
			out = scanRun(s, a, b, colons >= 2, out)
		}
		pos = b
	}
	return out
}

// indexByteFrom returns the index of the first c in s[from:], counted from
// the start of s, or -1.
func indexByteFrom[T ~string | ~[]byte](s T, from int, c byte) int {
	var i int
	switch x := any(s).(type) {
	case string:
		i = strings.IndexByte(x[from:], c)
	case []byte:
		i = bytes.IndexByte(x[from:], c)
	default:
		i = -1
		for j := from; j < len(s); j++ {
			if s[j] == c {
				i = j - from
				break
			}
		}
	}
	if i < 0 {
		return -1
	}
	return from + i
}

// scanRun finds the addresses in the run s[a:b].
func scanRun[T ~string | ~[]byte](s T, a, b int, v6 bool, out []span) []span {
	if v6 {
		pos := a
		for pos < b {
			st, en, addr, ok := findV6(s, pos, b)
			if !ok {
				break
			}
			out = scanV4(s, pos, st, out)
			kind := spanAddr
			if !addr.IsValid() {
				kind = spanMask
			}
			out = append(out, span{start: st, end: en, addr: addr, kind: kind})
			pos = en
		}
		n := len(out)
		out = scanV4(s, pos, b, out)
		// A dotted address glued to hex digits in a run that has colons:
		// its anonymized text, shorter or with other digits, could join
		// them into an IPv6 address that the input did not hold
		// ("::0A000.00.000.000A" would become "::0A0.0.0.0A", which holds
		// ::a0). The rest of such a run is masked instead.
		for _, sp := range out[n:] {
			if (sp.start > pos && classes[s[sp.start-1]] == cHexLetter) || (sp.end < b && classes[s[sp.end]] == cHexLetter) {
				return append(out[:n], span{start: pos, end: b, kind: spanMask})
			}
		}
		return out
	}
	return scanV4(s, a, b, out)
}

// findV6 returns the leftmost (then longest) IPv6 address in s[a:b].
func findV6[T ~string | ~[]byte](s T, a, b int) (st, en int, addr netip.Addr, ok bool) {
	// Fast path: the whole run, trimmed of sentence punctuation and of a
	// single leading or trailing colon ("from 2001:db8::1: refused").
	ts, te := a, b
	for te > ts && s[te-1] == '.' {
		te--
	}
	if te-ts >= 2 && s[te-1] == ':' && s[te-2] != ':' {
		te--
	}
	if te-ts >= 2 && s[ts] == ':' && s[ts+1] != ':' {
		ts++
	}
	if addr, ok := parseV6(s, ts, te); ok && !wordGlued(s, a, b, ts, te) {
		return ts, te, addr, true
	}
	if !hasDoubleColon(s, a, b) && countColons(s, a, b) < 6 {
		return 0, 0, netip.Addr{}, false
	}
	// Slow path: try every start after a separator and every end before
	// one, longest first. Only runs that look like IPv6 but are not get here.
	// The first address found stands for the whole (trimmed) run, which is
	// replaced by its anonymized form: the rest of such a run is junk glued
	// to an address, and keeping it could leave a part of the address (or
	// form a new one) in the output.
	// The search is bounded: past maxFallbackTries candidates (only crafted
	// input gets there), the whole run is masked rather than searched on.
	tries := 0
	for st := a; st < b; st++ {
		if st > a && s[st-1] != ':' && s[st-1] != '.' {
			continue
		}
		if s[st] == ':' && (st+1 >= b || s[st+1] != ':') {
			continue
		}
		// No address holds ":::": end the window before one.
		limit := min(b, st+maxAddrLen)
		for i := st + 2; i < limit; i++ {
			if s[i] == ':' && s[i-1] == ':' && s[i-2] == ':' {
				limit = i
				break
			}
		}
		for en := limit; en >= st+2; en-- {
			if en < b && s[en] != ':' && s[en] != '.' && !(s[en-1] == ':' && s[en-2] == ':') {
				continue
			}
			if tries++; tries > maxFallbackTries {
				return ts, te, netip.Addr{}, true
			}
			if addr, ok := parseV6(s, st, en); ok && !wordGlued(s, a, b, st, en) {
				return ts, te, addr, true
			}
		}
	}
	return 0, 0, netip.Addr{}, false
}

// maxFallbackTries bounds the candidates findV6 tries in one run.
const maxFallbackTries = 512

// parseV6 validates s[a:b] as an IPv6 address (including IPv4-mapped).
// The unspecified address "::" is not reported: it identifies nobody and
// appears in ordinary text ("std::" is not an address either, see wordGlued).
func parseV6[T ~string | ~[]byte](s T, a, b int) (netip.Addr, bool) {
	if b-a < 2 || b-a > maxAddrLen {
		return netip.Addr{}, false
	}
	c := countColons(s, a, b)
	if c < 2 || (c < 7 && !hasDoubleColon(s, a, b) && !(c == 6 && hasDot(s, a, b))) {
		return netip.Addr{}, false
	}
	addr, err := netip.ParseAddr(string(s[a:b]))
	if err != nil {
		addr, err = parseV6LenientTail(s, a, b)
	}
	if err != nil || addr.Is4() || addr.IsUnspecified() {
		return netip.Addr{}, false
	}
	return addr, true
}

// parseV6LenientTail parses an IPv6 address whose embedded IPv4 tail has
// leading zeros ("::ffff:192.000.002.001"), which netip rejects but which
// must not escape as text.
func parseV6LenientTail[T ~string | ~[]byte](s T, a, b int) (netip.Addr, error) {
	colon := -1
	for i := b - 1; i >= a; i-- {
		if s[i] == ':' {
			colon = i
			break
		}
	}
	oct, ok := parseOctets(s, colon+1, b)
	if colon < 0 || !ok {
		return netip.Addr{}, errNotAddr
	}
	head, err := netip.ParseAddr(string(s[a:colon+1]) + "0.0.0.0")
	if err != nil {
		return netip.Addr{}, err
	}
	b16 := head.As16()
	copy(b16[12:], oct[:])
	return netip.AddrFrom16(b16), nil
}

// parseOctets parses s[a:b] as exactly four dot-separated decimal octets,
// leading zeros allowed.
func parseOctets[T ~string | ~[]byte](s T, a, b int) (oct [4]byte, ok bool) {
	n, v, digits := 0, 0, 0
	for i := a; i <= b; i++ {
		if i == b || s[i] == '.' {
			if digits == 0 || digits > 3 || v > 255 || n == 4 {
				return oct, false
			}
			oct[n] = byte(v)
			n, v, digits = n+1, 0, 0
			continue
		}
		if classes[s[i]] != cDigit {
			return oct, false
		}
		v = v*10 + int(s[i]-'0')
		digits++
	}
	return oct, n == 4
}

// wordGlued reports whether the candidate s[st:en] of the run s[a:b] holds
// no decimal digit and is glued to a word ("std::vector", "Foo::Bar"): such
// tokens are code, not addresses.
func wordGlued[T ~string | ~[]byte](s T, a, b, st, en int) bool {
	for i := st; i < en; i++ {
		if classes[s[i]] == cDigit {
			return false
		}
	}
	return (a > 0 && classes[s[a-1]] == cWord) || (b < len(s) && classes[s[b]] == cWord)
}

func countColons[T ~string | ~[]byte](s T, a, b int) int {
	n := 0
	for i := a; i < b; i++ {
		if s[i] == ':' {
			n++
		}
	}
	return n
}

func hasDoubleColon[T ~string | ~[]byte](s T, a, b int) bool {
	for i := a + 1; i < b; i++ {
		if s[i] == ':' && s[i-1] == ':' {
			return true
		}
	}
	return false
}

func hasDot[T ~string | ~[]byte](s T, a, b int) bool {
	for i := a; i < b; i++ {
		if s[i] == '.' {
			return true
		}
	}
	return false
}

// scanV4 finds dotted-decimal IPv4 addresses in s[a:b]: chains of decimal
// groups joined by single dots. Within a chain, each maximal stretch of valid
// octets (1 to 3 digits, at most 255) of length 4 is an address; a longer
// stretch is reported as a spanChain.
func scanV4[T ~string | ~[]byte](s T, a, b int, out []span) []span {
	k := a
	for k < b {
		if classes[s[k]] != cDigit {
			k++
			continue
		}
		// A stretch of valid octets.
		var oct [4]byte
		n := 0
		st := k
		en := k
		for {
			g := k
			v := 0
			for k < b && classes[s[k]] == cDigit {
				if k-g < 4 {
					v = v*10 + int(s[k]-'0')
				}
				k++
			}
			valid := k-g <= 3 && v <= 255
			if !valid {
				// The stretch ends before this group; a new one may
				// start after it.
				out = emitV4(out, st, en, n, oct)
				n = 0
				st, en = -1, -1
			} else {
				if n == 0 {
					st = g
				}
				if n < 4 {
					oct[n] = byte(v)
				}
				n++
				en = k
			}
			if k+1 < b && s[k] == '.' && classes[s[k+1]] == cDigit {
				k++
				if st < 0 {
					st = k
				}
				continue
			}
			break
		}
		out = emitV4(out, st, en, n, oct)
	}
	return out
}

func emitV4(out []span, st, en, n int, oct [4]byte) []span {
	switch {
	case n == 4:
		return append(out, span{start: st, end: en, addr: netip.AddrFrom4(oct)})
	case n > 4:
		return append(out, span{start: st, end: en, kind: spanChain})
	}
	return out
}

// exactSpan is a fast path for the commonest text that holds an address: a
// string that is nothing but one address, with at most a port or a zone
// ("192.0.2.7", "192.0.2.7:5222", "2001:db8::1", "fe80::1%eth0",
// "[2001:db8::1]:443", "::ffff:192.0.2.7"), as a remote address is logged.
// It reports the span of the address, the one scan would report for s; any
// other text (ok false) is left to scan.
//
// Nothing of s outside the span can hold an address: a port is 1 to 5
// digits, and a zone must hold no '.' or ':' (netip would accept
// "fe80::1%192.0.2.7", whose zone is an address).
func exactSpan(s string) (sp span, ok bool) {
	if len(s) < 2 {
		return span{}, false
	}
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 || !isPort(s[end+1:]) {
			return span{}, false
		}
		return exactV6(s, 1, end)
	}
	if classes[s[0]] == cDigit {
		if oct, n, ok := leadingV4(s); ok && isPort(s[n:]) {
			return span{start: 0, end: n, addr: netip.AddrFrom4(oct)}, true
		}
	}
	return exactV6(s, 0, len(s))
}

// leadingV4 parses the dotted-decimal IPv4 address at the start of s, as
// scanV4 would (leading zeros allowed), and returns its length.
func leadingV4(s string) (oct [4]byte, n int, ok bool) {
	for g := range 4 {
		if g > 0 {
			if n >= len(s) || s[n] != '.' {
				return oct, 0, false
			}
			n++
		}
		v, digits := 0, 0
		for n < len(s) && classes[s[n]] == cDigit && digits < 4 {
			v = v*10 + int(s[n]-'0')
			n++
			digits++
		}
		if digits == 0 || digits > 3 || v > 255 {
			return oct, 0, false
		}
		oct[g] = byte(v)
	}
	return oct, n, true
}

// isPort reports whether s is empty or ':' followed by 1 to 5 digits.
func isPort(s string) bool {
	if s == "" {
		return true
	}
	if len(s) < 2 || len(s) > 6 || s[0] != ':' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if classes[s[i]] != cDigit {
			return false
		}
	}
	return true
}

// exactV6 reports the span of s[a:b] when it is one IPv6 address, with or
// without a zone (which is left out of the span, as scan leaves it).
func exactV6(s string, a, b int) (span, bool) {
	if b-a > maxExactLen || classes[s[a]]&(cDigit|cHexLetter|cColon) == 0 {
		return span{}, false
	}
	end := b
	if i := strings.IndexByte(s[a:b], '%'); i >= 0 {
		end = a + i
		zone := s[end+1 : b]
		if zone == "" || strings.ContainsAny(zone, ".:") {
			return span{}, false
		}
	}
	// parseV6 is what scan validates a run with: it leaves out "::", and it
	// calls netip.ParseAddr (which allocates an error on failure) only on
	// text with the colons of an IPv6 address.
	addr, ok := parseV6(s, a, end)
	if !ok {
		return span{}, false
	}
	return span{start: a, end: end, addr: addr}, true
}
