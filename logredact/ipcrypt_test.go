package logredact

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"testing"
)

// Test vectors of the Internet-Draft draft-denis-ipcrypt for ipcrypt-pfx.
func TestPFXVectors(t *testing.T) {
	const (
		key1 = "0123456789abcdeffedcba98765432101032547698badcfeefcdab8967452301"
		key2 = "2b7e151628aed2a6abf7158809cf4f3ca9f5ba40db214c3798f2e1c23456789a"
	)
	tests := []struct {
		source, key, ip, want string
	}{
		{"draft-denis-ipcrypt pfx #1", key1, "0.0.0.0", "151.82.155.134"},
		{"draft-denis-ipcrypt pfx #2", key1, "255.255.255.255", "94.185.169.89"},
		{"draft-denis-ipcrypt pfx #3", key1, "192.0.2.1", "100.115.72.131"},
		{"draft-denis-ipcrypt pfx #4", key1, "2001:db8::1", "c180:5dd4:2587:3524:30ab:fa65:6ab6:f88"},
		{"draft-denis-ipcrypt pfx #5", key2, "10.0.0.47", "19.214.210.244"},
		{"draft-denis-ipcrypt pfx #6", key2, "10.0.0.129", "19.214.210.80"},
		{"draft-denis-ipcrypt pfx #7", key2, "172.16.5.193", "210.78.229.136"},
	}
	for _, tt := range tests {
		t.Run(tt.source, func(t *testing.T) {
			key, err := hex.DecodeString(tt.key)
			if err != nil {
				t.Fatal(err)
			}
			p, err := newPFX(key)
			if err != nil {
				t.Fatal(err)
			}
			in := netip.MustParseAddr(tt.ip)
			got := p.Encrypt(in)
			if got.String() != tt.want {
				t.Errorf("Encrypt(%s) = %s, want %s", tt.ip, got, tt.want)
			}
			if back := p.Decrypt(got); back != in {
				t.Errorf("Decrypt(%s) = %s, want %s", got, back, in)
			}
		})
	}
}

func TestPFXPreservesPrefixes(t *testing.T) {
	key, _ := hex.DecodeString("2b7e151628aed2a6abf7158809cf4f3ca9f5ba40db214c3798f2e1c23456789a")
	p, _ := newPFX(key)
	tests := []struct {
		a, b string
		bits int
	}{
		{"192.0.2.1", "192.0.2.200", 24},
		{"198.51.100.7", "198.51.101.7", 23},
		{"2001:db8:1::1", "2001:db8:1:ffff::1", 48},
		{"::ffff:192.0.2.1", "::ffff:192.0.2.99", 96 + 24},
	}
	for _, tt := range tests {
		ea := p.Encrypt(netip.MustParseAddr(tt.a))
		eb := p.Encrypt(netip.MustParseAddr(tt.b))
		pa, _ := ea.Prefix(tt.bits)
		pb, _ := eb.Prefix(tt.bits)
		if pa != pb {
			t.Errorf("%s, %s: encrypted /%d prefixes differ: %s vs %s", tt.a, tt.b, tt.bits, pa, pb)
		}
		// One more bit must differ when the inputs differ right there:
		// ipcrypt-pfx is a bijection on each subtree.
		if ea == eb {
			t.Errorf("%s and %s encrypt to the same %s", tt.a, tt.b, ea)
		}
	}
	if got := p.Encrypt(netip.MustParseAddr("::ffff:192.0.2.1")); !got.Is4In6() {
		t.Errorf("a v4-mapped input must stay v4-mapped, got %s", got)
	}
}

func TestIPCryptKeyErrors(t *testing.T) {
	if _, err := newPFX(make([]byte, 31)); !errors.Is(err, errKeySize) {
		t.Errorf("31-byte pfx key: err = %v, want errKeySize", err)
	}
	same := make([]byte, 32)
	copy(same, "0123456789abcdef0123456789abcdef")
	if _, err := newPFX(same); !errors.Is(err, errWeakKey) {
		t.Errorf("equal halves: err = %v, want errWeakKey", err)
	}
	var p *pfx
	_ = p
	k, _ := hex.DecodeString("0123456789abcdeffedcba98765432101032547698badcfeefcdab8967452301")
	p, _ = newPFX(k)
	if got := p.Encrypt(netip.Addr{}); got.IsValid() {
		t.Errorf("invalid Addr encrypted to %s", got)
	}
}

// FuzzPFX checks, for any key and any two addresses, that Decrypt inverts
// Encrypt, that the family is kept, and that the common prefix length of the
// pseudonyms equals that of the addresses (prefix preservation, both ways)
// when both are IPv4 (or IPv4-mapped) or both are other IPv6 addresses: the
// draft encrypts an IPv4 address from bit 96 with the ::ffff:0:0/96 prefix
// kept, so the bits an IPv4-mapped and another IPv6 address share before
// bit 96 are not preserved (testdata/fuzz/FuzzPFX holds such a pair).
func FuzzPFX(f *testing.F) {
	f.Add([]byte("0123456789abcdeffedcba9876543210"), []byte{192, 0, 2, 1}, []byte{192, 0, 2, 200})
	f.Add([]byte("2b7e151628aed2a6abf7158809cf4f3c"), []byte("\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"), []byte("\x20\x01\x0d\xb8\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"))
	f.Fuzz(func(t *testing.T, key, ra, rb []byte) {
		p, err := newPFX(key)
		if err != nil {
			return
		}
		a, ok1 := netip.AddrFromSlice(ra)
		b, ok2 := netip.AddrFromSlice(rb)
		if !ok1 || !ok2 || a.BitLen() != b.BitLen() {
			return
		}
		ea, eb := p.Encrypt(a), p.Encrypt(b)
		if a.Is4In6() != b.Is4In6() {
			// Both round trips must still hold; the prefix is not compared.
			if p.Decrypt(ea) != a || p.Decrypt(eb) != b {
				t.Fatalf("Decrypt(Encrypt(x)) != x for %s or %s", a, b)
			}
			return
		}
		if ea.BitLen() != a.BitLen() || ea.Is4In6() != a.Is4In6() {
			t.Fatalf("%s -> %s changed family", a, ea)
		}
		if p.Decrypt(ea) != a {
			t.Fatalf("Decrypt(Encrypt(%s)) = %s", a, p.Decrypt(ea))
		}
		if common(a, b) != common(ea, eb) {
			t.Fatalf("%s,%s share %d bits; %s,%s share %d", a, b, common(a, b), ea, eb, common(ea, eb))
		}
	})
}

// common returns the length of the common prefix of a and b in bits.
func common(a, b netip.Addr) int {
	for n := a.BitLen(); n > 0; n-- {
		pa, _ := a.Prefix(n)
		pb, _ := b.Prefix(n)
		if pa == pb {
			return n
		}
	}
	return 0
}
