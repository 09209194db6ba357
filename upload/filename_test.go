package upload

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestSanitizeFilename(t *testing.T) {
	long := strings.Repeat("a", 10<<10)
	longUTF := strings.Repeat("é", 300) + ".jpeg"
	for _, tc := range []struct{ in, want string }{
		{"photo.jpg", "photo.jpg"},
		{"Holiday photo (1).JPG", "Holiday photo (1).JPG"},
		{"../../etc/passwd", "_._etc_passwd"},
		{"..", "file"},
		{"...", "file"},
		{"/", "_"},
		{"a/b\\c.txt", "a_b_c.txt"},
		{"a\x00b.txt", "ab.txt"},
		{"a\r\nb\t.txt", "ab.txt"},
		{"evil\u202Egpj.exe", "evilgpj.exe"},
		{"zero\u200Bwidth", "zerowidth"},
		{"  .hidden ", "hidden"},
		{"trailing.", "trailing"},
		{"bad\xffutf8", "bad_utf8"},
		{"", "file"},
		{"\x00\x01", "file"},
		{"a..b", "a.b"},
		{"a. .b", "a. .b"},
		{"日本語.png", "日本語.png"},
		{long + ".png", strings.Repeat("a", 251) + ".png"},
		{longUTF, strings.Repeat("é", 125) + ".jpeg"},
		{long, strings.Repeat("a", 255)},
	} {
		if got := sanitizeFilename(tc.in); got != tc.want {
			t.Errorf("sanitizeFilename(%.40q) = %.60q, want %.60q", tc.in, got, tc.want)
		}
	}
}

func checkSafeName(t *testing.T, in, s string) {
	t.Helper()
	switch {
	case s == "":
		t.Fatalf("%q: empty", in)
	case len(s) > maxFilenameLen:
		t.Fatalf("%q: %d bytes", in, len(s))
	case !utf8.ValidString(s):
		t.Fatalf("%q → %q: invalid UTF-8", in, s)
	case strings.ContainsAny(s, "/\\"):
		t.Fatalf("%q → %q: path separator", in, s)
	case strings.Contains(s, ".."):
		t.Fatalf("%q → %q: ..", in, s)
	case strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || strings.HasPrefix(s, " ") || strings.HasSuffix(s, " "):
		t.Fatalf("%q → %q: leading/trailing dot or space", in, s)
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			t.Fatalf("%q → %q: control/format char %U", in, s, r)
		}
	}
}

func FuzzSanitizeFilename(f *testing.F) {
	for _, s := range []string{"photo.jpg", "../../etc/passwd", "a\x00b", "\u202Eexe.jpg", strings.Repeat("é", 200) + ".png", ". . .", "a" + strings.Repeat(".", 300) + "b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s := sanitizeFilename(in)
		checkSafeName(t, in, s)
		if again := sanitizeFilename(s); again != s {
			t.Fatalf("not idempotent: %q → %q → %q", in, s, again)
		}
	})
}
