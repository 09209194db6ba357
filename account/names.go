package account

import (
	"slices"
	"strings"
	"sync"
	"unicode"

	"github.com/mtibben/confusables"
)

// SkeletonVersion names the algorithm and data of Skeleton. A Store that
// keeps skeletons records it and computes them again when it changes
// (BoltStore does so when it is opened). Tombstones are not recomputed
// (they hold no name): after a change of the table, the tombstone of a
// deleted name whose skeleton changed no longer reserves it, unless the
// name is its own old skeleton. A change of SkeletonVersion says so in
// the release notes.
const SkeletonVersion = "tr39-skeleton/unicode-13.0.0/lower/1"

// Skeleton returns the confusable skeleton of a normalized username (a
// Store backend needs it to fill in the skeletons of accounts written
// before they existed, see Store): the
// Unicode TR39 skeleton (NFD, every character replaced by the prototype
// of its confusables class, NFD again; data of confusables.txt, Unicode
// 13.0.0, as packaged by github.com/mtibben/confusables), then lowercased,
// repeated until nothing changes. Two names with the same skeleton look
// alike: "alice" with a Cyrillic "а", "a1ice", "aIice" and "alice" share
// one. Skeletons are for comparison only, never for display.
//
// Register refuses a name whose skeleton is that of an existing account,
// and tombstones are keyed by skeleton. Skeleton is a pure function of its
// argument (and SkeletonVersion); it accepts any string and never panics.
func Skeleton(username string) string {
	s := username
	// Lowercasing may turn a character into one with another prototype
	// (Greek capital Alpha has the prototype "A", which lowercases to
	// "a"); a few rounds reach the fixed point.
	for range 4 {
		next := strings.ToLower(confusables.Skeleton(s))
		if next == s {
			break
		}
		s = next
	}
	return s
}

// Sets of scripts that may be mixed in one username, after Unicode TR39
// §5.2 "Highly Restrictive" (and browsers' IDN display rules): Latin with
// the scripts of Japanese, Chinese and Korean writing.
var allowedScriptMixes = [][]string{
	{"Han", "Hiragana", "Katakana", "Latin"},
	{"Han", "Hangul", "Latin"},
	{"Bopomofo", "Han", "Latin"},
}

// orderedScripts returns the scripts of the unicode package, most likely
// in usernames first, the others by name.
var orderedScripts = sync.OnceValue(func() []script {
	first := []string{"Latin", "Common", "Inherited", "Cyrillic", "Greek", "Han", "Arabic", "Hiragana", "Katakana", "Hangul"}
	out := make([]script, 0, len(unicode.Scripts))
	for _, name := range first {
		out = append(out, script{name, unicode.Scripts[name]})
	}
	var rest []string
	for name := range unicode.Scripts {
		if !slices.Contains(first, name) {
			rest = append(rest, name)
		}
	}
	slices.Sort(rest)
	for _, name := range rest {
		out = append(out, script{name, unicode.Scripts[name]})
	}
	return out
})

type script struct {
	name  string
	table *unicode.RangeTable
}

// scriptOf returns the Unicode script (Script property) of r, "Unknown"
// for a code point in none.
func scriptOf(r rune) string {
	for _, s := range orderedScripts() {
		if unicode.Is(s.table, r) {
			return s.name
		}
	}
	return "Unknown"
}

// scripts returns the scripts of the characters of name, sorted, without
// Common and Inherited (digits, punctuation, combining marks), which go
// with any script.
func scripts(name string) []string {
	var out []string
	for _, r := range name {
		s := scriptOf(r)
		if s == "Common" || s == "Inherited" || slices.Contains(out, s) {
			continue
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// mixedScripts reports whether name mixes scripts in a way TR39's Highly
// Restrictive level refuses (e.g. Latin with Cyrillic or Greek), and
// returns the scripts of name.
func mixedScripts(name string) (mixed bool, found []string) {
	found = scripts(name)
	if len(found) <= 1 {
		return false, found
	}
	for _, allowed := range allowedScriptMixes {
		if subset(found, allowed) {
			return false, found
		}
	}
	return true, found
}

func subset(a, b []string) bool {
	for _, s := range a {
		if !slices.Contains(b, s) {
			return false
		}
	}
	return true
}
