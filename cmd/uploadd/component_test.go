package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"chatbx.eu/privacy/upload"
)

// TestAllowDomains: the component serves only users of its domains.
func TestAllowDomains(t *testing.T) {
	allow := allowDomains(map[string]bool{"example.org": true})
	for s, want := range map[string]bool{
		"alice@example.org":      true,
		"alice@example.org/r":    true,
		"alice@evil.example":     false,
		"alice@sub.example.org":  false,
		"example.org":            true, // the Service refuses JIDs without a localpart itself
		"mallory@example.org.ev": false,
	} {
		if got := allow(jid.MustParse(s)); got != want {
			t.Errorf("allow(%s) = %v, want %v", s, got, want)
		}
	}
}

// TestComponentSlotsRestricted: the Service the component answers with
// issues slots to users of the configured domains only.
func TestComponentSlotsRestricted(t *testing.T) {
	a, err := newApp(config{BaseURL: "https://upload.example.org/files", DataDir: t.TempDir(),
		Secrets: secrets{Prosody: []byte(prosodySecret)}, AdminSecret: []byte(adminSecret),
		Component: componentConfig{Domains: []string{"example.org"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	if _, err := a.svc.RequestSlot(ctx, jid.MustParse("mallory@evil.example"), "a.txt", 1, ""); !errors.Is(err, upload.ErrForbidden) {
		t.Fatalf("slot for another domain: %v, want ErrForbidden", err)
	}
	s, err := a.svc.RequestSlot(ctx, jid.MustParse("alice@example.org"), "a.txt", 1, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.PutURL, "https://upload.example.org/files/"+componentDir+"/") {
		t.Fatalf("component slot URL %s is not under the component's directory", s.PutURL)
	}
}
