package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestParseFlags: secrets come from files; an unusable configuration is a
// clear error before anything starts.
func TestParseFlags(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	admin := write("admin", adminSecret+"\n")
	prosody := write("prosody", prosodySecret+"\n")
	short := write("short", "short\n")
	empty := write("empty", "\n")
	base := []string{"-base-url", "https://upload.example.org/files", "-data", dir, "-admin-secret-file", admin}
	c, err := parseFlags(append(base, "-prosody-secret-file", prosody))
	if err != nil {
		t.Fatal(err)
	}
	if string(c.Secrets.Prosody) != prosodySecret || string(c.AdminSecret) != adminSecret {
		t.Fatalf("secrets %q %q (the trailing newline must be trimmed)", c.Secrets.Prosody, c.AdminSecret)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"no protocol", base},
		{"no base URL", []string{"-data", dir, "-admin-secret-file", admin, "-prosody-secret-file", prosody}},
		{"no admin secret", []string{"-base-url", "https://u.example/f", "-data", dir, "-prosody-secret-file", prosody}},
		{"short server secret", append(base, "-ejabberd-secret-file", short)},
		{"component without domains", append(base, "-component-addr", "127.0.0.1:5347", "-component-jid", "f.example.org", "-component-secret-file", prosody)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parseFlags(tc.args); !errors.Is(err, errConfig) {
				t.Fatalf("error %v, want errConfig", err)
			}
		})
	}
	if _, err := parseFlags(append(base, "-prosody-secret-file", empty)); err == nil {
		t.Fatal("an empty secret file was accepted")
	}
	if _, err := parseFlags(append(base, "-prosody-secret-file", filepath.Join(dir, "missing"))); err == nil {
		t.Fatal("a missing secret file was accepted")
	}
	if _, err := newApp(config{BaseURL: "http://upload.example.org/files", DataDir: dir,
		Secrets: secrets{Prosody: []byte(prosodySecret)}, AdminSecret: []byte(adminSecret)}); !errors.Is(err, errConfig) {
		t.Fatalf("http base URL: %v, want errConfig", err)
	}
}
