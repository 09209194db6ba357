package logredact

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"fmt"
	"net/netip"
)

// pfx is ipcrypt-pfx, the prefix-preserving instantiation of
// draft-denis-ipcrypt (section "ipcrypt-pfx"): two addresses that share an
// n-bit prefix are encrypted to two addresses that share an n-bit prefix, and
// nothing more is revealed. IPv4 addresses are encrypted in their IPv4-mapped
// form and come back as IPv4; IPv6 addresses stay IPv6. The key is 32 bytes,
// split into two independent AES-128 keys whose XOR-combined outputs form the
// pseudorandom function.
//
// A pfx is safe for concurrent use.
type pfx struct {
	k1, k2 cipher.Block
}

// newPFX returns an ipcrypt-pfx cipher for a 32-byte key. It returns
// errKeySize for a key of any other length and errWeakKey when both halves of
// the key are equal (the draft forbids it: the PRF would be constant zero).
// The key bytes are not retained; the caller may zero them afterwards.
func newPFX(key []byte) (*pfx, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("logredact: ipcrypt-pfx key of %d bytes: %w", len(key), errKeySize)
	}
	if subtle.ConstantTimeCompare(key[:16], key[16:]) == 1 {
		return nil, fmt.Errorf("logredact: ipcrypt-pfx: %w", errWeakKey)
	}
	k1, err := aes.NewCipher(key[:16])
	if err != nil {
		return nil, fmt.Errorf("logredact: ipcrypt-pfx: %w", err)
	}
	k2, err := aes.NewCipher(key[16:])
	if err != nil {
		return nil, fmt.Errorf("logredact: ipcrypt-pfx: %w", err)
	}
	return &pfx{k1: k1, k2: k2}, nil
}

// Encrypt returns the ipcrypt-pfx pseudonym of a. A zone is dropped. An
// invalid Addr is returned unchanged.
func (p *pfx) Encrypt(a netip.Addr) netip.Addr { return p.crypt(a, true) }

// Decrypt inverts Encrypt.
func (p *pfx) Decrypt(a netip.Addr) netip.Addr { return p.crypt(a, false) }

// crypt implements both directions. Bits are numbered as in the draft:
// position 0 is the least significant bit of byte 15, position 127 the most
// significant bit of byte 0. For each bit, from the most significant one
// after the fixed ::ffff:0:0/96 prefix of an IPv4 address (or from bit 127
// for IPv6), the already processed prefix of the plaintext is padded as
// zeros || 1 || prefix, run through AES(K1) xor AES(K2), and the least
// significant output bit (position 0) is XORed onto the address bit.
func (p *pfx) crypt(a netip.Addr, encrypt bool) netip.Addr {
	if !a.IsValid() {
		return a
	}
	was4 := a.Is4()
	in := a.WithZone("").As16()
	// One scratch allocation: blocks passed to cipher.Block escape.
	sc := new(struct{ pad, e1, e2 [16]byte })
	pad := &sc.pad
	var out [16]byte
	first := 0 // number of bits already fixed (prefix length)
	if was4 || a.Is4In6() {
		first = 96
		out[10], out[11] = 0xff, 0xff
		// pad = 0^31 || 1 || 0^80 || 1^16: the separator at bit 96, then the
		// 96-bit prefix ::ffff.
		pad[3] = 0x01
		pad[14], pad[15] = 0xff, 0xff
	} else {
		pad[15] = 0x01
	}
	for plen := first; plen < 128; plen++ {
		p.k1.Encrypt(sc.e1[:], pad[:])
		p.k2.Encrypt(sc.e2[:], pad[:])
		prf := (sc.e1[15] ^ sc.e2[15]) & 1
		byteIdx := plen / 8
		shift := 7 - uint(plen%8)
		inBit := (in[byteIdx] >> shift) & 1
		outBit := inBit ^ prf
		out[byteIdx] |= outBit << shift
		// The prefix fed to the PRF is always plaintext.
		plain := inBit
		if !encrypt {
			plain = outBit
		}
		shiftLeft(pad)
		pad[15] |= plain
	}
	r := netip.AddrFrom16(out)
	if was4 {
		return r.Unmap()
	}
	return r
}

// shiftLeft shifts a 128-bit big-endian value left by one bit.
func shiftLeft(b *[16]byte) {
	for i := 0; i < 15; i++ {
		b[i] = b[i]<<1 | b[i+1]>>7
	}
	b[15] <<= 1
}
