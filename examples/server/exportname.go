package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// maxExportNameBytes bounds a file name made by exportFileName (before
// its extension): common file systems allow 255 bytes per name.
const maxExportNameBytes = 200

// exportFileName turns a name chosen by a user or client (a PEP node, a
// private XML namespace) into a file name of the account export that is
// safe to unpack anywhere: lowercase ASCII letters, digits, '_', '-' and
// '.' (not first) stay, every other byte, upper-case letters included, is
// %XX. So no name holds a path separator, starts with a dot, differs from
// another only by case (case-insensitive file systems), or is a Windows
// device name (CON, NUL, COM1 …, whose first letter is escaped). A name
// longer than maxExportNameBytes is cut and ends with '~' and 16 hex
// digits of its SHA-256, so distinct names stay distinct; '~' is never
// kept otherwise. The result is never empty.
func exportFileName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '-':
			b.WriteByte(c)
		case c == '.' && i > 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	out := b.String()
	if base, _, _ := strings.Cut(out, "."); windowsDeviceName(base) {
		out = fmt.Sprintf("%%%02X", out[0]) + out[1:]
	}
	if out == "" {
		out = "%"
	}
	if len(out) > maxExportNameBytes {
		sum := sha256.Sum256([]byte(s))
		cut := maxExportNameBytes - 17
		for cut > 0 && out[cut-1] == '%' || cut > 1 && out[cut-2] == '%' {
			cut-- // never split a %XX
		}
		out = out[:cut] + "~" + hex.EncodeToString(sum[:8])
	}
	return out
}

// windowsDeviceName reports whether base (lower case) is a reserved
// device name on Windows, which no file may be called, whatever its
// extension.
func windowsDeviceName(base string) bool {
	switch base {
	case "con", "prn", "aux", "nul":
		return true
	}
	if len(base) == 4 && (strings.HasPrefix(base, "com") || strings.HasPrefix(base, "lpt")) && base[3] >= '0' && base[3] <= '9' {
		return true
	}
	return false
}
