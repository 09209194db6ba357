package account

import (
	_ "embed"
	"strings"
	"unicode"
)

// commonPasswords is the list of common passwords refused for new
// passwords: lowercase, one a line, sorted in byte order. Its source and
// licence are in data/README.md.
//
//go:embed data/common-passwords.txt
var commonPasswords string

// isWhiteSpace reports whether r has the Unicode White_Space property.
func isWhiteSpace(r rune) bool { return unicode.Is(unicode.White_Space, r) }

// onlyWhiteSpace reports whether s is made of White_Space characters only
// (true for "").
func onlyWhiteSpace(s string) bool {
	return strings.TrimFunc(s, isWhiteSpace) == ""
}

// passwordKey is how a password is compared with the list of common ones:
// without surrounding white space and lowercased, so that "Password" and
// " password " are as weak as "password".
func passwordKey(pw string) string {
	return strings.ToLower(strings.TrimFunc(pw, isWhiteSpace))
}

// isCommonPassword reports whether pw, compared by passwordKey, is in the
// list of common passwords.
func isCommonPassword(pw string) bool {
	return inSortedLines(commonPasswords, passwordKey(pw))
}

// inSortedLines reports whether s is a line of list, whose lines are
// sorted in byte order and separated by '\n'. It searches list in place
// (a binary search on byte offsets), without allocating.
func inSortedLines(list, s string) bool {
	if s == "" || strings.IndexByte(s, '\n') >= 0 {
		return false
	}
	// Invariant: list[lo:hi] is a run of whole lines (lo is 0 or follows
	// a '\n'; hi is len(list) or is a '\n' or follows one) that holds s if
	// list does.
	lo, hi := 0, len(list)
	for lo < hi {
		mid := lo + (hi-lo)/2
		start := lo + strings.LastIndexByte(list[lo:mid], '\n') + 1
		end := strings.IndexByte(list[mid:hi], '\n')
		if end < 0 {
			end = hi
		} else {
			end += mid
		}
		switch c := strings.Compare(s, list[start:end]); {
		case c == 0:
			return true
		case c < 0:
			hi = start
		default:
			lo = end + 1
		}
	}
	return false
}

// weakPassword returns why the prepared password pw of the account named
// username (normalized; "" if unknown) is too weak, or "" if it is not.
func weakPassword(pw, username string) string {
	switch {
	case onlyWhiteSpace(pw):
		return "password is only white space"
	case isCommonPassword(pw):
		return "password is one of the most common passwords"
	case username != "" && passwordKey(pw) == strings.ToLower(username):
		return "password is the same as the username"
	}
	return ""
}
