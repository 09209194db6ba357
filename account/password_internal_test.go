package account

import (
	"slices"
	"strings"
	"testing"
)

func TestCommonPasswordList(t *testing.T) {
	lines := strings.Split(strings.TrimSuffix(commonPasswords, "\n"), "\n")
	if n := len(lines); n < 10000 {
		t.Fatalf("%d common passwords, want at least 10,000", n)
	}
	if !slices.IsSorted(lines) {
		t.Fatal("common-passwords.txt is not sorted in byte order: the binary search needs it")
	}
	for i, l := range lines {
		switch {
		case l == "" || l != passwordKey(l):
			t.Fatalf("line %d %q is not in key form (lowercase, trimmed, not empty)", i+1, l)
		case i > 0 && lines[i-1] == l:
			t.Fatalf("line %d %q is a duplicate", i+1, l)
		}
		if !isCommonPassword(l) {
			t.Fatalf("line %d %q not found by the search", i+1, l)
		}
	}
}

func TestInSortedLines(t *testing.T) {
	for _, list := range []string{"b\nd\nf", "b\nd\nf\n", "b\nd\nf\n\n"} {
		for s, want := range map[string]bool{
			"b": true, "d": true, "f": true,
			"": false, "a": false, "c": false, "e": false, "g": false,
			"bb": false, "b\nd": false, "\n": false, "d\n": false,
		} {
			if got := inSortedLines(list, s); got != want {
				t.Errorf("inSortedLines(%q, %q) = %v, want %v", list, s, got, want)
			}
		}
	}
	if inSortedLines("", "a") {
		t.Error("found a line in an empty list")
	}
}

func TestWeakPassword(t *testing.T) {
	for _, tc := range []struct {
		pw, user string
		reason   string // "" for a strong password
	}{
		{"        ", "", "only white space"},
		{"\u00a0\u00a0\u00a0\u00a0\u00a0\u00a0\u00a0\u00a0", "", "only white space"}, // no-break spaces
		{"\u3000\u3000\u3000\u3000\u3000\u3000\u3000\u3000", "", "only white space"}, // ideographic spaces
		{"\u2028 \u2029 \u1680 \u205f", "", "only white space"},
		{"password", "", "most common"},
		{"Password", "", "most common"},
		{"PASSWORD", "", "most common"},
		{"pAsSwOrD", "", "most common"},
		{"  password  ", "", "most common"},
		{"password1", "", "most common"},
		{"123456789", "", "most common"},
		{"12345678", "", "most common"},
		{"qwertyuiop", "", "most common"},
		{"iloveyou", "", "most common"},
		{"trustno1", "", "most common"},
		{"123456", "", "most common"}, // shorter than the default minimum, listed for lower ones
		{"Zoltan1974x", "zoltan1974x", "same as the username"},
		{"correct horse battery staple", "", ""},
		{"Tr0ub4dor&3x", "", ""},
		{"password is long enough", "", ""},
		{"p a s s w o r d", "", ""},
		{"пароль-надёжный", "", ""},
		{"Zoltan1974x", "alice", ""},
	} {
		if got := weakPassword(tc.pw, tc.user); (tc.reason == "") != (got == "") || !strings.Contains(got, tc.reason) {
			t.Errorf("weakPassword(%q) = %q, want a reason mentioning %q", tc.pw, got, tc.reason)
		}
	}
}

// FuzzCommonPassword checks the in-place binary search against a map of
// the same list, and that case does not matter.
func FuzzCommonPassword(f *testing.F) {
	set := map[string]bool{}
	for l := range strings.SplitSeq(strings.TrimSuffix(commonPasswords, "\n"), "\n") {
		set[l] = true
	}
	for _, s := range []string{"password", "Password", " 123456 ", "", "\n", "zzzzzzzzzzzz", "!", "password\npassword", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := inSortedLines(commonPasswords, s)
		if want := set[s] && !strings.Contains(s, "\n"); got != want {
			t.Fatalf("inSortedLines(%q) = %v, the map says %v", s, got, want)
		}
		if isCommonPassword(s) != isCommonPassword(strings.ToUpper(passwordKey(s))) && passwordKey(strings.ToUpper(passwordKey(s))) == passwordKey(s) {
			t.Fatalf("isCommonPassword(%q) depends on case", s)
		}
	})
}

// BenchmarkNewChecks measures what this package's name and password
// rules add to a registration: the script check, the skeleton (computed
// once for the index and once for the tombstone key's input) and the weak
// password checks; compare with BenchmarkIDKey.
func BenchmarkNewChecks(b *testing.B) {
	for _, tc := range []struct{ name, user, pw string }{
		{"latin", "alice.wonderland", "correct horse battery staple"},
		{"cyrillic", "алиса-чудесная", "правильная лошадь батарея"},
		{"max", strings.Repeat("\u0430", 64), strings.Repeat("p", 1024)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if mixed, _ := mixedScripts(tc.user); mixed {
					b.Fatal("mixed")
				}
				_ = Skeleton(tc.user)
				if r := weakPassword(tc.pw, tc.user); r != "" {
					b.Fatal(r)
				}
			}
		})
	}
}
