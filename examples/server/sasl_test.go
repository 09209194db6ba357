package main

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"
)

// TestParsePlain: RFC 4616's message, [authzid] NUL authcid NUL passwd.
func TestParsePlain(t *testing.T) {
	for _, tc := range []struct {
		in                  string
		authz, user, passwd string
		ok                  bool
	}{
		{"\x00alice\x00secret", "", "alice", "secret", true},
		{"alice@localhost\x00alice\x00secret", "alice@localhost", "alice", "secret", true},
		{"\x00alice\x00pass word\xff", "", "alice", "pass word\xff", true},
		{"alice\x00secret", "", "", "", false},
		{"\x00\x00secret", "", "", "", false},
		{"\x00alice\x00", "", "", "", false},
		{"\x00alice\x00se\x00cret", "", "", "", false},
		{"", "", "", "", false},
	} {
		authz, user, passwd, ok := parsePlain([]byte(tc.in))
		if ok != tc.ok || authz != tc.authz || user != tc.user || passwd != tc.passwd {
			t.Errorf("parsePlain(%q) = %q %q %q %v", tc.in, authz, user, passwd, ok)
		}
	}
}

// FuzzParsePlain: never panics, and what it accepts is exactly its three
// parts joined by NUL.
func FuzzParsePlain(f *testing.F) {
	f.Add([]byte("\x00alice\x00secret"))
	f.Add([]byte("a\x00b\x00c\x00d"))
	f.Fuzz(func(t *testing.T, b []byte) {
		authz, user, passwd, ok := parsePlain(b)
		if ok && authz+"\x00"+user+"\x00"+passwd != string(b) {
			t.Errorf("parsePlain(%q) lost bytes", b)
		}
	})
}

// nopFlusher is a token writer that discards.
type nopFlusher struct{ n int }

func (w *nopFlusher) EncodeToken(xml.Token) error { w.n++; return nil }
func (w *nopFlusher) Flush() error                { return nil }

// FuzzSASLAuth: whatever a client sends as its SASL element, readAuth
// answers with a payload or an error (after a <failure/> where SASL
// defines one), and never panics.
func FuzzSASLAuth(f *testing.F) {
	for _, s := range []string{
		`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>`,
		`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'/><response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>=</response>`,
		`<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>`,
		`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='X'>!!</auth>`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w := &nopFlusher{}
		_, err := readAuth(xml.NewDecoder(strings.NewReader(s)), w)
		if (errors.Is(err, errSASLBad) || errors.Is(err, errSASLAborted)) && w.n == 0 {
			t.Errorf("%q: refused without a <failure/>", s)
		}
	})
}
