package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"strings"
	"testing"
)

// The whitespace RFC 6120 allows between the elements of a stream (and
// that go-xmpp based clients send): after the XML declaration and the
// stream header, around every negotiation element, inside the bind IQ.
const ws = "\n \t\r\n"

// wsHeader is a client stream header with whitespace around it.
const wsHeader = `<?xml version='1.0'?>` + ws + `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>` + ws

// wsOpen sends wsHeader and returns the features.
func (c *rawClient) wsOpen(t testing.TB) element {
	t.Helper()
	c.write(t, wsHeader)
	e, err := c.next()
	if err != nil || e.start.Name.Local != "features" {
		t.Fatalf("stream features: %v %v", e.start.Name, err)
	}
	return e
}

// wsLogin authenticates and binds with whitespace between every element,
// then pings the server: the session works.
func (c *rawClient) wsLogin(t testing.TB, user, password string) {
	t.Helper()
	c.wsOpen(t)
	c.write(t, ws+`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>`+
		base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+password))+`</auth>`+ws)
	if e, err := c.next(); err != nil || e.start.Name.Local != "success" {
		t.Fatalf("auth: %v %v", e.start.Name, err)
	}
	c.wsOpen(t)
	c.write(t, ws+`<iq type='set' id='bind'>`+ws+`<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>`+ws+
		`<resource>ws</resource>`+ws+`</bind>`+ws+`</iq>`+ws)
	if e, err := c.next(); err != nil || e.attr("type") != "result" {
		t.Fatalf("bind: %v %v", e.attr("type"), err)
	}
	c.write(t, ws+`<iq type='get' id='ping'><ping xmlns='urn:xmpp:ping'/></iq>`+ws)
	if e, err := c.next(); err != nil || e.attr("id") != "ping" || e.attr("type") != "result" {
		t.Fatalf("ping after a whitespace negotiation: %v %v", e.attr("type"), err)
	}
}

// startTLS negotiates STARTTLS with whitespace before <starttls/> (none
// after it: the TLS handshake follows at once) and goes on over TLS.
func (c *rawClient) startTLS(t testing.TB, cfg *tls.Config) {
	t.Helper()
	c.wsOpen(t)
	c.write(t, ws+`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>`+ws+`</starttls>`)
	if e, err := c.next(); err != nil || e.start.Name.Local != "proceed" {
		t.Fatalf("starttls: %v %v", e.start.Name, err)
	}
	tc := tls.Client(c.conn, cfg.Clone())
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS handshake after STARTTLS: %v", err)
	}
	c.conn = tc
	c.dec = xml.NewDecoder(tc)
}

// TestNegotiationWhitespace: a client that puts whitespace everywhere RFC
// 6120 allows it negotiates over STARTTLS and over direct TLS, registers
// in-band, logs in and gets a working session.
func TestNegotiationWhitespace(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "secret pass")

	t.Run("starttls", func(t *testing.T) {
		c := dialRaw(t, ts.C2S, "127.0.0.1", nil)
		c.startTLS(t, ts.TLSConfig)
		c.wsLogin(t, "alice", "secret pass")
	})
	t.Run("direct-tls", func(t *testing.T) {
		c := dialRaw(t, ts.C2STLS, "127.0.0.1", ts.TLSConfig)
		c.wsLogin(t, "alice", "secret pass")
	})
	t.Run("register", func(t *testing.T) {
		c := dialRaw(t, ts.C2STLS, "127.0.0.1", ts.TLSConfig)
		c.wsOpen(t)
		c.write(t, ws+`<iq type='get' id='r1'>`+ws+`<query xmlns='jabber:iq:register'/>`+ws+`</iq>`+ws)
		if e, err := c.next(); err != nil || e.attr("type") != "result" {
			t.Fatalf("registration form: %v %v", e.attr("type"), err)
		}
		c.write(t, `<iq type='set' id='r2'>`+ws+`<query xmlns='jabber:iq:register'>`+ws+
			`<username>bob</username>`+ws+`<password>bob pass</password>`+ws+`</query>`+ws+`</iq>`+ws)
		if e, err := c.next(); err != nil || e.attr("type") != "result" {
			t.Fatalf("registration: %v %v", e.attr("type"), err)
		}
		c.write(t, `</stream:stream>`)
		_ = c.closed()
		ts.Login(t, "bob", "bob pass") // the account exists
	})
	t.Run("text-is-refused", func(t *testing.T) {
		c := dialRaw(t, ts.C2STLS, "127.0.0.1", ts.TLSConfig)
		c.wsOpen(t)
		c.write(t, ws+"hello"+ws+"<x/>") // the decoder ends text at the next tag
		if cond := c.streamError(t); cond != "bad-format" {
			t.Errorf("text between negotiation elements: %s, want bad-format", cond)
		}
	})
}

// TestNegotiationFailureLogged: a failed negotiation leaves one line in
// the connection log with its stage, its stream error and the client's
// anonymized IP, never the full IP or the credentials.
func TestNegotiationFailureLogged(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "secret pass")

	c := dialRaw(t, ts.C2STLS, "127.0.0.1", ts.TLSConfig)
	c.wsOpen(t)
	c.write(t, `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>`+
		base64.StdEncoding.EncodeToString([]byte("\x00alice\x00wrong pass"))+`</auth>`)
	if e, err := c.next(); err != nil || e.start.Name.Local != "failure" {
		t.Fatalf("auth: %v %v", e.start.Name, err)
	}
	c.write(t, `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>`+
		base64.StdEncoding.EncodeToString([]byte("\x00alice\x00wrong pass"))+`</auth>`)
	_, _ = c.readStreamError() // the server may give up at the first failure

	// A client that does not trust the certificate (it aborts the
	// handshake with an alert).
	raw := dialRaw(t, ts.C2STLS, "127.0.0.1", nil)
	if err := tls.Client(raw.conn, &tls.Config{ServerName: "localhost", RootCAs: x509.NewCertPool()}).Handshake(); err == nil {
		t.Fatal("handshake with an untrusted certificate succeeded")
	}
	if err := raw.closed(); err != nil { // the server handled the failure
		t.Fatal(err)
	}

	p := dialRaw(t, ts.C2S, "127.0.0.1", nil)
	p.open(t)
	p.write(t, `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>`)
	if cond := p.streamError(t); cond != "policy-violation" {
		t.Errorf("PLAIN before STARTTLS: %s", cond)
	}

	if err := ts.Stop(); err != nil {
		t.Fatal(err)
	}
	logs := logBytes(t, ts.LogDir)
	for _, want := range []string{
		`"msg":"negotiation failed","stage":"auth","condition":"not-authorized","ip":"127.0.0.0"`,
		`"msg":"negotiation failed","stage":"starttls","condition":"policy-violation","ip":"127.0.0.0"`,
		`"msg":"negotiation failed","stage":"tls","condition":"tls-handshake-failed","ip":"127.0.0.0"`,
	} {
		if !bytes.Contains(logs, []byte(want)) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
	for _, bad := range []string{"127.0.0.1", "wrong pass", base64.StdEncoding.EncodeToString([]byte("\x00alice\x00wrong pass"))} {
		if bytes.Contains(logs, []byte(bad)) {
			t.Errorf("log holds %q:\n%s", bad, logs)
		}
	}
}

// TestStanzaRefusedLogged: refused stanzas are counted by class and
// condition in the operational log, with no address and no content.
func TestStanzaRefusedLogged(t *testing.T) {
	stderr := &syncBuffer{}
	ts := startTestServer(t, withConfig(func(c *Config) { c.Stderr = stderr }))
	ts.Register(t, "alice", "secret pass")
	a := ts.Login(t, "alice", "secret pass")
	a.Send(t, `<message to='x@y@z' id='m1'><body>secret words</body></message>`)
	a.Next(t, func(e element) bool { return e.attr("id") == "m1" && e.attr("type") == "error" })
	if err := ts.Stop(); err != nil {
		t.Fatal(err)
	}
	out := stderr.String()
	if !strings.Contains(out, `msg="stanzas refused" message/jid-malformed=1`) {
		t.Errorf("no refused-stanza line:\n%s", out)
	}
	for _, bad := range []string{"secret words", "x@y@z"} {
		if strings.Contains(out, bad) {
			t.Errorf("log holds %q", bad)
		}
	}
}
