package upload

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxFilenameLen is the longest sanitized file name, in bytes.
const maxFilenameLen = 255

// maxExtLen bounds the extension kept when a long name is shortened.
const maxExtLen = 16

// sanitizeFilename returns a file name that is safe to show in a URL path and
// in a Content-Disposition header: valid UTF-8, no path separators ('/' or
// '\'), no "..", no control or format characters (NUL, newlines, bidi
// overrides), no leading or trailing dots or spaces, at most maxFilenameLen
// bytes cut on a rune boundary keeping a short extension, and never empty
// ("file" instead). It is idempotent.
func sanitizeFilename(name string) string {
	if len(name) > 4096 {
		// Bound the work on absurd input; keep the end for the extension.
		name = name[:2048] + name[len(name)-64:]
	}
	var b strings.Builder
	b.Grow(min(len(name), maxFilenameLen*2))
	for _, r := range name { // invalid UTF-8 yields utf8.RuneError
		switch {
		case r == '/' || r == '\\':
			b.WriteByte('_')
		case r == utf8.RuneError:
			b.WriteByte('_')
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r) ||
			r == '\u2028' || r == '\u2029':
			// dropped: NUL, CR/LF, tabs, RTL overrides, zero-width joiners
		case unicode.IsSpace(r):
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	s := b.String()
	for strings.Contains(s, "..") {
		s = strings.ReplaceAll(s, "..", ".")
	}
	s = strings.Trim(s, ". ")
	if len(s) > maxFilenameLen {
		ext := ""
		if i := strings.LastIndexByte(s, '.'); i > 0 && len(s)-i <= maxExtLen {
			ext = s[i:]
		}
		s = truncateRunes(s[:len(s)-len(ext)], maxFilenameLen-len(ext))
		s = strings.TrimRight(s, ". ") + ext
		s = strings.Trim(s, ". ")
	}
	if s == "" {
		return "file"
	}
	return s
}

// truncateRunes cuts s to at most n bytes without splitting a rune.
func truncateRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
