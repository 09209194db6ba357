package account

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestMixedScripts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mixed   bool
		scripts []string
	}{
		{"alice", false, []string{"Latin"}},
		{"alice_2026.x-y", false, []string{"Latin"}}, // digits, punctuation: Common
		{"josé", false, []string{"Latin"}},
		{"jose\u0301", false, []string{"Latin"}},    // combining acute: Inherited
		{"1234", false, nil},                        // Common only
		{"алиса", false, []string{"Cyrillic"}},      // one script, not Latin
		{"ελένη", false, []string{"Greek"}},         //
		{"соре", false, []string{"Cyrillic"}},       // whole-script look-alike: Skeleton's job
		{"山田taro", false, []string{"Han", "Latin"}}, // Japanese
		{"やまだtaro", false, []string{"Hiragana", "Latin"}},
		{"ヤマダ山田やまだtaro", false, []string{"Han", "Hiragana", "Katakana", "Latin"}},
		{"김철수kim", false, []string{"Hangul", "Latin"}},
		{"金김kim", false, []string{"Han", "Hangul", "Latin"}},
		{"ㄅ山a", false, []string{"Bopomofo", "Han", "Latin"}},
		{"\u0430lice", true, []string{"Cyrillic", "Latin"}}, // Cyrillic а
		{"p\u0430ypal", true, []string{"Cyrillic", "Latin"}},
		{"\u03b1lice", true, []string{"Greek", "Latin"}}, // Greek alpha
		{"alicε", true, []string{"Greek", "Latin"}},
		{"алиса\u03b1", true, []string{"Cyrillic", "Greek"}},
		{"aliceمرحبا", true, []string{"Arabic", "Latin"}},
		{"김やまだ", true, []string{"Hangul", "Hiragana"}},         // Korean with Japanese kana
		{"ㄅ김a", true, []string{"Bopomofo", "Hangul", "Latin"}}, // Bopomofo with Hangul
		{"\U000E0100a", false, []string{"Latin"}},              // variation selector: Inherited
		{"a\U0010FFFF", true, []string{"Latin", "Unknown"}},    // in no script
	} {
		mixed, found := mixedScripts(tc.name)
		if mixed != tc.mixed || !slices.Equal(found, tc.scripts) {
			t.Errorf("mixedScripts(%q) = %v, %v; want %v, %v", tc.name, mixed, found, tc.mixed, tc.scripts)
		}
	}
}

func TestSkeleton(t *testing.T) {
	same := [][]string{
		{"alice", "\u0430lice", "a1ice", "\u0430li\u0441e"}, // Cyrillic а, digit one, Cyrillic а and с
		{"cope", "соре", "c0pe"},                            // all Cyrillic; digit zero
		{"mallory", "rnallory"},                             // m and r+n
		{"bob", "b0b", "b\u03bfb"},                          // digit zero, Greek omicron
		{"paypal", "p\u0430yp\u0430l"},
	}
	for _, group := range same {
		want := Skeleton(group[0])
		for _, name := range group[1:] {
			if got := Skeleton(name); got != want {
				t.Errorf("Skeleton(%q) = %q, want %q as for %q", name, got, want, group[0])
			}
		}
	}
	for _, pair := range [][2]string{{"alice", "alicia"}, {"bob", "rob"}, {"cope", "cape"}, {"алиса", "alisa"}} {
		if Skeleton(pair[0]) == Skeleton(pair[1]) {
			t.Errorf("Skeleton(%q) == Skeleton(%q) = %q: unrelated names confused", pair[0], pair[1], Skeleton(pair[0]))
		}
	}
}

// FuzzSkeleton checks that Skeleton never panics, returns valid UTF-8 for
// valid UTF-8 and is idempotent: a skeleton is its own skeleton, so a
// name stored with it is found again whatever path computed it.
func FuzzSkeleton(f *testing.F) {
	for _, s := range []string{"alice", "\u0430lice", "rnallory", "ΑΒΓ", "ǅ", "ﬀ", "\u0301", "", "\xff", "İstanbul", "ß"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sk := Skeleton(s)
		if utf8.ValidString(s) && !utf8.ValidString(sk) {
			t.Fatalf("Skeleton(%q) = %q: invalid UTF-8", s, sk)
		}
		if again := Skeleton(sk); again != sk {
			t.Fatalf("Skeleton not idempotent: %q -> %q -> %q", s, sk, again)
		}
	})
}

// FuzzUsernameChecks checks the name checks of Register on any input:
// no panic; Normalize is idempotent; a normalized name that passes the
// script check still passes it after normalizing again, and every part
// of a name that passes passes too (removing characters never mixes
// scripts); its Skeleton is stable and holds no NUL.
func FuzzUsernameChecks(f *testing.F) {
	for _, s := range []string{"alice", "Alice", "\u0430lice", "山田taro", "ｱﾘｽ", "ǅemal", "ß", "\u212a", "a\u0301", ""} {
		f.Add(s, 2)
	}
	m, err := NewManager(&nopStore{}, Config{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string, cut int) {
		mixedRaw, _ := mixedScripts(s)
		if !mixedRaw && utf8.ValidString(s) {
			// Any part of a name that passes passes.
			runes := []rune(s)
			if len(runes) > 0 {
				cut = ((cut % len(runes)) + len(runes)) % len(runes)
				for _, part := range []string{string(runes[:cut]), string(runes[cut:])} {
					if mixed, _ := mixedScripts(part); mixed {
						t.Fatalf("%q passes the script check but its part %q does not", s, part)
					}
				}
			}
		}
		name, err := m.Normalize(s)
		if err != nil {
			return
		}
		again, err := m.Normalize(name)
		if err != nil || again != name {
			t.Fatalf("Normalize(%q) = %q but Normalize(%q) = %q, %v", s, name, name, again, err)
		}
		mixed, _ := mixedScripts(name)
		if mixedAgain, _ := mixedScripts(again); mixedAgain != mixed {
			t.Fatalf("script check of %q changed after normalizing again", name)
		}
		if sk := Skeleton(name); Skeleton(sk) != sk || strings.ContainsRune(sk, 0) {
			t.Fatalf("Skeleton(%q) = %q: not stable", name, sk)
		}
	})
}

// nopStore is a Store for tests that never touch it.
type nopStore struct{ Store }
