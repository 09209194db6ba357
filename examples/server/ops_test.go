package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chatbx.eu/privacy/account"
	"mellium.im/xmpp/stream"
)

// logBytes returns the contents of every file in the log directory.
func logBytes(t *testing.T, dir string) []byte {
	t.Helper()
	var all []byte
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		all = append(all, b...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// TestConnectionLogAnonymized: the connection log has time, user and an
// anonymized IP (127.0.0.0), never the full client address; -reveal-ips
// opens a window in which it is logged in full, marked as such.
func TestConnectionLogAnonymized(t *testing.T) {
	for _, tc := range []struct {
		name   string
		reveal time.Duration
	}{{"default", 0}, {"maintenance window", time.Hour}} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startTestServer(t, withConfig(func(c *Config) { c.RevealIPs = tc.reveal }))
			ts.Register(t, "alice", "alice password")
			c := ts.Login(t, "alice", "alice password")
			if _, err := ts.login("alice", "wrong password", true); err == nil {
				t.Fatal("wrong password accepted")
			}
			c.Close()
			if err := ts.Stop(); err != nil {
				t.Fatal(err)
			}
			logs := logBytes(t, ts.LogDir)
			for _, want := range []string{`"msg":"connected"`, `"user":"alice"`, `"msg":"login failed"`, `"time":`} {
				if !bytes.Contains(logs, []byte(want)) {
					t.Errorf("log lacks %s:\n%s", want, logs)
				}
			}
			full := bytes.Contains(logs, []byte("127.0.0.1"))
			switch {
			case tc.reveal == 0 && full:
				t.Errorf("full client IP in the log:\n%s", logs)
			case tc.reveal == 0 && !bytes.Contains(logs, []byte(`"ip":"127.0.0.0"`)):
				t.Errorf("no anonymized IP in the log:\n%s", logs)
			case tc.reveal > 0 && (!full || !bytes.Contains(logs, []byte("ip_revealed"))):
				t.Errorf("maintenance window: full IP not logged or not marked:\n%s", logs)
			}
		})
	}
}

// TestRateLimits: registrations are limited per client IP except from
// loopback; failed logins are limited for everyone.
func TestRateLimits(t *testing.T) {
	ts := startTestServer(t)
	ctx := context.Background()
	limited := func(n int, f func() error) bool {
		for range n {
			if err := f(); errors.Is(err, account.ErrRateLimited) {
				return true
			}
		}
		return false
	}
	// Registrations go through the stream feature's own path.
	reg := func(ip string) func() error {
		return func() error {
			e, err := parseElement([]byte(`<iq xmlns="jabber:client" type="set" id="r"><query xmlns="jabber:iq:register"><username>someone</username><password>short</password></query></iq>`))
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			enc := xml.NewEncoder(&out)
			if _, err := ts.answerRegistration(ctx, enc, e, netip.MustParseAddr(ip)); err != nil {
				t.Fatal(err)
			}
			if err := enc.Flush(); err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(out.Bytes(), []byte("resource-constraint")) {
				return account.ErrRateLimited
			}
			return nil
		}
	}
	if !limited(12, reg("192.0.2.1")) {
		t.Error("registrations from 192.0.2.1 not limited")
	}
	if limited(15, reg("127.0.0.1")) {
		t.Error("loopback registrations limited")
	}
	if limited(15, reg("::1")) {
		t.Error("IPv6 loopback registrations limited")
	}
	ts.Register(t, "alice", "alice password")
	login := func(key string) func() error {
		return func() error { return ts.manager.Authenticate(ctx, key, "alice", "wrong password") }
	}
	if !limited(12, login("127.0.0.1")) {
		t.Error("failed logins from loopback not limited")
	}
}

// TestShutdownAndRestart: shutdown ends sessions with system-shutdown; a
// restart over the same data keeps accounts, rooms and the certificate.
func TestShutdownAndRestart(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	a := ts.Login(t, "alice", "alice password")
	joinRoom(t, a, "keep@conference.localhost/Al")
	a.IQ(t, `<iq type="set" id="c" to="keep@conference.localhost"><query xmlns="http://jabber.org/protocol/muc#owner"><x xmlns="jabber:x:data" type="submit"><field var="muc#roomconfig_enablearchiving"><value>true</value></field></x></query></iq>`)
	if err := ts.Stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	var se stream.Error
	if err := a.WaitEnd(t); !errors.As(err, &se) || se.Err != "system-shutdown" {
		t.Errorf("session ended with %v, want system-shutdown", err)
	}
	cfg := ts.cfg
	cfg.C2S, cfg.C2STLS, cfg.HTTP = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	ts2 := startWithConfig(t, cfg)
	if !ts2.Certificate().Equal(ts.Certificate()) {
		t.Error("certificate not reused")
	}
	a2 := ts2.Login(t, "alice", "alice password")
	info := a2.IQ(t, `<iq type="get" id="d" to="keep@conference.localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	if raw, _ := info.bytes(); !bytes.Contains(raw, []byte("urn:xmpp:mam:2")) {
		t.Errorf("room config lost: %s", raw)
	}
	fi, err := os.Stat(filepath.Join(ts.DataDir, selfSignedKey))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v", fi.Mode(), err)
	}
}

// TestParseFlags: the flag names scripts rely on, defaults and validation.
func TestParseFlags(t *testing.T) {
	var out bytes.Buffer
	c, err := parseFlags(nil, &out)
	if err != nil {
		t.Fatal(err)
	}
	if c.Domain != "localhost" || c.C2S != "127.0.0.1:5222" || c.C2STLS != "127.0.0.1:5223" || c.HTTP != "127.0.0.1:5443" ||
		c.DataDir != "./data" || c.LogDir != filepath.Join("data", "logs") || c.OpenRegistration || c.UploadMax != 104857600 ||
		c.UploadTTL != 720*time.Hour || c.RevealIPs != 0 || c.Purge {
		t.Errorf("defaults: %+v", c)
	}
	c, err = parseFlags(strings.Fields("-domain example.org -c2s :1 -c2s-tls :2 -http :3 -data /d -cert c.pem -key k.pem -open-registration -upload-max 5 -upload-ttl 1h -log-dir /l -reveal-ips 2h -purge"), &out)
	if err != nil {
		t.Fatal(err)
	}
	if c.Domain != "example.org" || c.C2S != ":1" || c.C2STLS != ":2" || c.HTTP != ":3" || c.DataDir != "/d" || c.CertFile != "c.pem" ||
		c.KeyFile != "k.pem" || !c.OpenRegistration || c.UploadMax != 5 || c.UploadTTL != time.Hour || c.LogDir != "/l" ||
		c.RevealIPs != 2*time.Hour || !c.Purge {
		t.Errorf("flags: %+v", c)
	}
	for _, bad := range []string{"-reveal-ips 25h", "-reveal-ips -1s", "-upload-max -1", "-cert c.pem", "-c2s=", "-nosuchflag", "extra"} {
		if _, err := parseFlags(strings.Fields(bad), &out); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestClientKey: one key per IPv4 address and per IPv6 /64.
func TestClientKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":             "192.0.2.7",
		"2001:db8:1:2:3:4:5:6":  "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1":  "2001:db8:1:2::/64",
		"::1":                   "::1",
		"::ffff:198.51.100.200": "198.51.100.200",
	} {
		if got := clientKey(netip.MustParseAddr(in)); got != want {
			t.Errorf("clientKey(%s) = %s, want %s", in, got, want)
		}
	}
}

// TestPrivacyPromisesKept: the configured jobs delete every kind of data
// within the lifetime the server promises (README.md), whatever -upload-ttl.
func TestPrivacyPromisesKept(t *testing.T) {
	for _, ttl := range []time.Duration{0, time.Hour, 7 * 24 * time.Hour} {
		ts := startTestServer(t, withConfig(func(c *Config) { c.UploadTTL = ttl }))
		report := ts.scheduler.PrivacyReport()
		uploads := ttl
		if uploads == 0 {
			uploads = 30 * 24 * time.Hour
		}
		for job, within := range map[string]time.Duration{
			"uploads":        uploads,
			"xmpp-log":       24 * time.Hour,
			"http-error-log": 30 * 24 * time.Hour,
			"purge-mam":      15 * time.Minute,
			"purge-accounts": 15 * time.Minute,
		} {
			if err := report.Check(job, within); err != nil {
				t.Errorf("-upload-ttl %v: %v", ttl, err)
			}
		}
		if err := ts.Stop(); err != nil {
			t.Fatal(err)
		}
	}
}

// Example shows the flags of the example server and their private
// defaults.
func Example() {
	cfg, err := parseFlags([]string{"-domain", "example.org", "-open-registration"}, io.Discard)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Domain, cfg.C2S, cfg.C2STLS, cfg.HTTP)
	fmt.Println("registration open:", cfg.OpenRegistration, "uploads kept:", cfg.UploadTTL, "full IPs logged for:", cfg.RevealIPs)
	// Output:
	// example.org 127.0.0.1:5222 127.0.0.1:5223 127.0.0.1:5443
	// registration open: true uploads kept: 720h0m0s full IPs logged for: 0s
}
