package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"
)

// rawStream opens a plaintext TCP stream and returns what the server wrote
// after sending raw once the stream features arrived.
func rawExchange(t *testing.T, addr, raw string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(testTimeout))
	fmt.Fprint(conn, `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>`)
	r := bufio.NewReader(conn)
	var got strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(got.String(), "</stream:features>") {
		n, err := r.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("reading features: %v (got %q)", err, got.String())
		}
	}
	features := got.String()
	if strings.Contains(features, "mechanism") || strings.Contains(features, "iq-register") {
		t.Errorf("plaintext features offer authentication or registration: %s", features)
	}
	if !strings.Contains(features, "<required") {
		t.Errorf("STARTTLS not required: %s", features)
	}
	got.Reset()
	fmt.Fprint(conn, raw)
	b, _ := io.ReadAll(r) // until the server closes
	return string(b)
}

// TestPlaintextAuthRefused: no authentication or registration before TLS,
// ever: the features list only STARTTLS (required), and PLAIN or a register
// IQ sent anyway ends the stream with policy-violation.
func TestPlaintextAuthRefused(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "correct horse battery")
	for name, raw := range map[string]string{
		"sasl plain": `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAGNvcnJlY3QgaG9yc2UgYmF0dGVyeQ==</auth>`,
		"register":   `<iq type='set' id='r'><query xmlns='jabber:iq:register'><username>mallory</username><password>pw-pw-pw-pw</password></query></iq>`,
	} {
		t.Run(name, func(t *testing.T) {
			got := rawExchange(t, ts.C2S, raw)
			if !strings.Contains(got, "policy-violation") {
				t.Errorf("server answered %q, want a policy-violation stream error", got)
			}
			if strings.Contains(got, "success") {
				t.Errorf("plaintext authentication succeeded: %q", got)
			}
		})
	}
	if err := ts.register("mallory2", "whatever-password"); err != nil {
		t.Fatalf("registration over TLS after the refusals: %v", err)
	}
}

// TestLogin: the right password logs in on both ports; a wrong one, an
// unknown user and an empty password do not.
func TestLogin(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "correct horse battery")
	for _, tc := range []struct {
		name, user, pass string
		direct, ok       bool
	}{
		{"starttls", "alice", "correct horse battery", false, true},
		{"direct tls", "alice", "correct horse battery", true, true},
		{"wrong password", "alice", "wrong horse battery", false, false},
		{"wrong password direct", "alice", "Correct horse battery", true, false},
		{"unknown user", "bob", "correct horse battery", false, false},
		{"empty password", "alice", "", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ts.login(tc.user, tc.pass, tc.direct)
			if c != nil {
				defer c.Close()
			}
			if tc.ok && err != nil {
				t.Fatalf("login failed: %v", err)
			}
			if !tc.ok && err == nil {
				t.Fatalf("login succeeded")
			}
			if tc.ok && c.JID.Bare().String() != tc.user+"@localhost" {
				t.Errorf("bound %s", c.JID)
			}
		})
	}
}

// TestCertificateVerified: the harness verifies the server certificate; a
// client trusting another CA cannot connect.
func TestCertificateVerified(t *testing.T) {
	ts := startTestServer(t)
	conn, err := tls.Dial("tcp", ts.C2STLS, &tls.Config{ServerName: "localhost", MinVersion: tls.VersionTLS12})
	if err == nil {
		conn.Close()
		t.Fatal("a client without the server's certificate in its pool connected")
	}
	conn, err = tls.Dial("tcp", ts.C2STLS, &tls.Config{ServerName: "localhost", RootCAs: ts.CertPool, MaxVersion: tls.VersionTLS11})
	if err == nil {
		conn.Close()
		t.Fatal("TLS 1.1 accepted")
	}
}

// TestRegistration: duplicate names are refused with conflict.
func TestRegistration(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "correct horse battery")
	err := ts.register("alice", "another password")
	var se stanza.Error
	if !errors.As(err, &se) || se.Condition != stanza.Conflict {
		t.Fatalf("second registration: %v, want conflict", err)
	}
}

// TestRegistrationClosed: without -open-registration the feature is absent.
func TestRegistrationClosed(t *testing.T) {
	ts := startTestServer(t, withConfig(func(c *Config) { c.OpenRegistration = false }))
	if err := ts.register("alice", "correct horse battery"); err == nil {
		t.Fatal("registration succeeded without -open-registration")
	}
}

// TestForgedFromOverwritten: a client cannot send as someone else.
func TestForgedFromOverwritten(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	ts.Register(t, "bob", "bob password 1")
	a := ts.Login(t, "alice", "alice password")
	b := ts.Login(t, "bob", "bob password 1")
	for i, from := range []string{"bob@localhost/evil", "localhost", "carol@example.org"} {
		a.Send(t, fmt.Sprintf(`<message to="%s" from="%s" type="chat" id="m%d"><body>forged %d</body></message>`, b.JID, from, i, i))
		m := b.Next(t, isMessage)
		if got := m.attr("from"); got != a.JID.String() {
			t.Errorf("from %q arrived as %q, want %s", from, got, a.JID)
		}
		if body(m) != fmt.Sprintf("forged %d", i) {
			t.Errorf("body %q", body(m))
		}
	}
	// A forged from on an IQ: the server answers the real sender.
	resp := a.IQ(t, `<iq type="get" id="p1" to="localhost" from="bob@localhost/x"><ping xmlns="urn:xmpp:ping"/></iq>`)
	if resp.attr("type") != "result" {
		t.Errorf("ping: %s", resp.attr("type"))
	}
}

// TestMessageRouting: full and bare JIDs, both directions, both ports; an
// unknown or offline user gets service-unavailable (no offline storage).
func TestMessageRouting(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	ts.Register(t, "bob", "bob password 1")
	a := ts.Login(t, "alice", "alice password")
	b1 := ts.Login(t, "bob", "bob password 1")
	b2, err := ts.login("bob", "bob password 1", true)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()

	a.Send(t, fmt.Sprintf(`<message to="%s" type="chat"><body>to full</body></message>`, b2.JID))
	if m := b2.Next(t, isMessage); body(m) != "to full" {
		t.Errorf("full JID: got %q", body(m))
	}
	a.Send(t, `<message to="bob@localhost" type="chat"><body>to bare</body></message>`)
	for _, b := range []*testClient{b1, b2} {
		if m := b.Next(t, isMessage); body(m) != "to bare" {
			t.Errorf("bare JID to %s: got %q", b.JID, body(m))
		}
	}
	b1.Send(t, `<message to="alice@localhost" type="chat"><body>reply</body></message>`)
	if m := a.Next(t, isMessage); body(m) != "reply" || m.attr("from") != b1.JID.String() {
		t.Errorf("reply: %q from %q", body(m), m.attr("from"))
	}

	for _, to := range []string{"nobody@localhost", "nobody@localhost/res", "carol@example.org"} {
		a.Send(t, fmt.Sprintf(`<message to="%s" type="chat" id="x1"><body>hello?</body></message>`, to))
		e := a.Next(t, func(e element) bool { return e.attr("type") == "error" })
		if c := stanzaErrorCondition(e); c != "service-unavailable" {
			t.Errorf("message to %s: error %q, want service-unavailable", to, c)
		}
	}
}

// TestKick: deleting the account (<remove/>) ends every session with
// not-authorized, and the password no longer works.
func TestKick(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	a1 := ts.Login(t, "alice", "alice password")
	a2 := ts.Login(t, "alice", "alice password")
	resp := a1.IQ(t, `<iq type="set" id="rm"><query xmlns="jabber:iq:register"><remove/></query></iq>`)
	if resp.attr("type") != "result" {
		t.Fatalf("remove: %v", stanzaErrorCondition(resp))
	}
	for _, c := range []*testClient{a1, a2} {
		err := c.WaitEnd(t)
		var se stream.Error
		if !errors.As(err, &se) || se.Err != "not-authorized" {
			t.Errorf("%s ended with %v, want not-authorized", c.JID, err)
		}
	}
	if c, err := ts.login("alice", "alice password", false); err == nil {
		c.Close()
		t.Fatal("login after removal succeeded")
	}
}

// TestRegisterThenLoginOnOneStream: the form, the registration, then SASL
// and binding on the same stream, as Conversations does.
func TestRegisterThenLoginOnOneStream(t *testing.T) {
	ts := startTestServer(t)
	var regErr error
	s, err := ts.negotiate(t, "newbie@localhost",
		registerClientFeature("newbie", "newbie password", true, &regErr),
		xmpp.SASL("", "newbie password", sasl.Plain),
		xmpp.BindResource(),
	)
	if err != nil || regErr != nil {
		t.Fatalf("register and log in: %v / %v", err, regErr)
	}
	defer s.Close()
	if s.LocalAddr().Bare().String() != "newbie@localhost" {
		t.Errorf("bound %s", s.LocalAddr())
	}
	// And the account is real: a second login works.
	c := ts.Login(t, "newbie", "newbie password")
	c.Close()
}

// TestBindRefusedEndsStream: a client whose binding is refused gets no
// session, although mellium's BindCustom reports a refused bind as Ready
// (and its client takes the error for a success with an empty JID).
func TestBindRefusedEndsStream(t *testing.T) {
	// alice is let in without an account, as if hers was deleted between
	// authentication and binding.
	ts := startTestServer(t, withConfig(func(c *Config) {
		c.authenticate = func(context.Context, string, string, string) error { return nil }
	}))
	s, err := ts.negotiate(t, "alice@localhost", xmpp.SASL("", "alice password", sasl.Plain), xmpp.BindResource())
	if err == nil {
		if s.LocalAddr().Resourcepart() != "" {
			t.Fatalf("bound %s", s.LocalAddr())
		}
		// The server ends the stream instead of serving it.
		_ = s.Conn().SetDeadline(time.Now().Add(testTimeout))
		err = s.Serve(nil)
		var se stream.Error
		if !errors.As(err, &se) || se.Err != "not-authorized" {
			t.Errorf("stream ended with %v, want not-authorized", err)
		}
	}
	if n := len(ts.sessions.lookup(jid.MustParse("alice@localhost"))); n != 0 {
		t.Fatalf("%d sessions registered", n)
	}
}

// TestChangePassword: XEP-0077 password change from a session; the old
// password stops working, a too short one is refused.
func TestChangePassword(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	a := ts.Login(t, "alice", "alice password")
	form := a.IQ(t, `<iq type="get" id="f"><query xmlns="jabber:iq:register"/></iq>`)
	if raw, _ := form.bytes(); !bytes.Contains(raw, []byte("registered")) || !bytes.Contains(raw, []byte(">alice</username>")) {
		t.Errorf("form for a registered user: %s", raw)
	}
	if resp := a.IQ(t, `<iq type="set" id="s"><query xmlns="jabber:iq:register"><username>alice</username><password>short</password></query></iq>`); stanzaErrorCondition(resp) != "not-acceptable" {
		t.Errorf("short password: %s %s", resp.attr("type"), stanzaErrorCondition(resp))
	}
	if resp := a.IQ(t, `<iq type="set" id="o"><query xmlns="jabber:iq:register"><username>bob</username><password>bob's new password</password></query></iq>`); resp.attr("type") != "error" {
		t.Error("changed another user's password")
	}
	if resp := a.IQ(t, `<iq type="set" id="c"><query xmlns="jabber:iq:register"><username>alice</username><password>alice new password</password></query></iq>`); resp.attr("type") != "result" {
		t.Fatalf("change: %s", stanzaErrorCondition(resp))
	}
	if c, err := ts.login("alice", "alice password", false); err == nil {
		c.Close()
		t.Error("old password still works")
	}
	ts.Login(t, "alice", "alice new password").Close()
}
