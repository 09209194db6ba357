package main

import (
	"crypto/sha1" // ejabberd names upload owners by SHA-1; not used for security
	"encoding/hex"
)

func sha1Hex(s string) string {
	h := sha1.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}
