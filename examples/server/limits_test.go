package main

import (
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"mellium.im/xmpp/ping"
	"strings"
	"testing"
	"time"
)

// maxAttackGrowth is what one hostile connection may make the server
// allocate (and so grow its heap by) while it sends 100 MiB.
const maxAttackGrowth = 16 << 20

// TestPreAuthElementBounded: before authentication, a 100 MiB element, a
// 100 MiB stream-header attribute, 100 MiB of registration text or a
// million attributes cost the server at most one negotiation budget: the
// whole process allocates less than 16 MiB while the client sends, and the
// client gets a policy-violation stream error.
func TestPreAuthElementBounded(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password") // warm up: hashing, stores
	const total = 100 << 20
	for _, tc := range []struct {
		name         string
		tls          bool   // direct TLS, features read first
		prefix, unit string // what the client floods
	}{
		{"stream header attribute", false, strings.TrimSuffix(streamHeader, ">") + ` x='`, "a"},
		{"stream header attributes", false, strings.TrimSuffix(streamHeader, ">") + " a='", "a"}, // one endless value: repeated names are refused as not-well-formed at once
		{"auth", true, `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>`, "AAAA"},
		{"auth attribute", true, `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN' x='`, "a"},
		{"registration text", true, `<iq type='set' id='r'><query xmlns='jabber:iq:register'><username>`, "a"},
		{"registration depth", true, `<iq type='set' id='r'><query xmlns='jabber:iq:register'>`, "<a>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cond string
			grew := allocated(func() {
				var c *rawClient
				if tc.tls {
					c = dialRaw(t, ts.C2STLS, "127.0.0.1", ts.TLSConfig)
					c.open(t)
				} else {
					c = dialRaw(t, ts.C2S, "127.0.0.1", nil)
				}
				done := c.flood(tc.prefix, tc.unit, total)
				cond = c.streamError(t)
				c.conn.Close()
				<-done
			})
			t.Logf("process allocated %.1f MiB while the client sent 100 MiB", float64(grew)/(1<<20))
			if cond != "policy-violation" {
				t.Errorf("stream error %q, want policy-violation", cond)
			}
			if grew > maxAttackGrowth {
				t.Errorf("process allocated %d bytes, want at most %d", grew, maxAttackGrowth)
			}
		})
	}
}

// TestStanzaLimits: a bound session's stanza counts whole, its own start
// element included: a 5 MiB attribute on <message>, a million attributes,
// 65 attributes on one element or 33 levels of nesting end the stream with
// policy-violation, are not delivered, and cost less than 16 MiB.
func TestStanzaLimits(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	ts.Register(t, "bob", "bob password")
	ts.Register(t, "carol", "carol password")
	bob := ts.Login(t, "bob", "bob password")
	carol := ts.Login(t, "carol", "carol password")
	manyAttrs := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, " a%d='1'", i)
		}
		return b.String()
	}
	for _, tc := range []struct {
		name         string
		prefix, unit string
		total        int
	}{
		{"5 MiB attribute", `<message to='bob@localhost' type='chat' x='`, "a", 5 << 20},
		{"1M attributes", `<message to='bob@localhost' type='chat'`, ` a='1'`, 6 << 20},
		{"65 attributes on the stanza", `<message to='bob@localhost'` + manyAttrs(64) + `><body>x</body></message>`, "", 0},
		{"65 attributes on a child", `<message to='bob@localhost'><body` + manyAttrs(65) + `>x</body></message>`, "", 0},
		{"33 levels", `<message to='bob@localhost'><body>x</body>` + strings.Repeat("<a>", 33) + strings.Repeat("</a>", 33) + `</message>`, "", 0},
		{"1 MiB body", `<message to='bob@localhost'><body>`, "a", 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cond string
			c := dialRaw(t, ts.C2STLS, "127.0.0.1", ts.TLSConfig)
			c.login(t, "alice", "alice password") // hashing is not the attack's
			grew := allocated(func() {
				done := c.flood(tc.prefix, tc.unit, tc.total)
				cond = c.streamError(t)
				c.conn.Close()
				<-done
			})
			t.Logf("process allocated %.1f MiB", float64(grew)/(1<<20))
			if cond != "policy-violation" {
				t.Errorf("stream error %q, want policy-violation", cond)
			}
			if grew > maxAttackGrowth {
				t.Errorf("process allocated %d bytes, want at most %d", grew, maxAttackGrowth)
			}
			// Nothing of it reached bob: the next message he gets is
			// carol's.
			carol.Send(t, `<message to='bob@localhost' type='chat'><body>marker</body></message>`)
			if m := bob.Next(t, isMessage); body(m) != "marker" {
				t.Errorf("bob got %q before the marker", body(m))
			}
		})
	}
}

// TestStreamErrors: every stream the server ends after bad input ends
// with the matching stream error (RFC 6120 § 4.9), read by a raw client.
func TestStreamErrors(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	for _, tc := range []struct {
		name  string
		bound bool // log in first
		send  string
		want  string
	}{
		{"malformed inside a stanza", true, `<message to='bob@localhost'><body>x</bod></message>`, "not-well-formed"},
		{"malformed start element", true, `<message to='bob@localhost' to=>`, "not-well-formed"},
		{"top-level text", true, `hello<message/>`, "bad-format"},
		{"top-level comment", true, `<!-- hello -->`, "restricted-xml"},
		{"processing instruction", true, `<?hello?>`, "restricted-xml"},
		{"comment in a stanza", true, `<message><!-- hello --></message>`, "restricted-xml"},
		{"DTD", true, `<!DOCTYPE x [<!ENTITY a "b">]>`, "restricted-xml"},
		{"XML declaration", true, `<?xml version='1.0'?>`, "restricted-xml"},
		{"stream restart", true, strings.TrimPrefix(streamHeader, "<?xml version='1.0'?>"), "bad-format"},
		{"end of another element", true, `</message>`, "not-well-formed"},
		{"local name not an XML name", true, `<message to='bob@localhost'><A:0/></message>`, "not-well-formed"},
		{"attribute local name not an XML name", true, `<message to='bob@localhost' A:1='x'/>`, "not-well-formed"},
		{"duplicate attribute", true, `<message to='bob@localhost' to='carol@localhost'><body>x</body></message>`, "not-well-formed"},
		{"duplicate xmlns", true, `<iq type='get' id='r1'><query xmlns='jabber:iq:roster' xmlns='jabber:iq:roster'/></iq>`, "not-well-formed"},
		{"duplicate xmlns on the stanza", true, `<message xmlns='jabber:client' xmlns='jabber:client' to='bob@localhost'/>`, "not-well-formed"},
		{"duplicate prefix declaration", true, `<message to='bob@localhost'><x xmlns:p='urn:a' xmlns:p='urn:b'/></message>`, "not-well-formed"},
		{"duplicate after namespace resolution", true, `<message to='bob@localhost'><x xmlns:p='urn:a' xmlns:q='urn:a' p:k='1' q:k='2'/></message>`, "not-well-formed"},
		{"duplicate attribute in auth", false, `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN' mechanism='PLAIN'>AGFsaWNlAGFsaWNlIHBhc3N3b3Jk</auth>`, "not-well-formed"},
		{"unknown top-level element", true, `<foo/>`, "unsupported-stanza-type"},
		{"stanza in another namespace", true, `<message xmlns='jabber:server'/>`, "unsupported-stanza-type"},
		{"stream-level element", true, `<stream:features/>`, "unsupported-stanza-type"},
		{"malformed auth", false, `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AA</aut>`, "not-well-formed"},
		{"feature not offered", false, `<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`, "policy-violation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, ts.C2STLS, "127.0.0.1", ts.TLSConfig)
			if tc.bound {
				c.login(t, "alice", "alice password")
			} else {
				c.open(t)
			}
			c.write(t, tc.send)
			if got := c.streamError(t); got != tc.want {
				t.Errorf("stream error %q, want %q", got, tc.want)
			}
			if err := c.closed(); err != nil {
				t.Errorf("connection not closed: %v", err)
			}
		})
	}
}

// TestNegotiationTimeout: a connection that does not finish negotiating in
// time is closed, whatever stage it stalls in: before the stream header,
// after it, in the TLS handshake (slowloris) or after it; with a
// connection-timeout stream error wherever a stream can carry one.
func TestNegotiationTimeout(t *testing.T) {
	ts := startTestServer(t, withConfig(func(c *Config) { c.NegotiationTimeout = time.Second }))
	for _, tc := range []struct {
		name string
		run  func(t *testing.T) *rawClient
		want string // "" for a plain close
	}{
		{"silent", func(t *testing.T) *rawClient { return dialRaw(t, ts.C2S, "127.0.0.1", nil) }, "connection-timeout"},
		{"after the header", func(t *testing.T) *rawClient {
			c := dialRaw(t, ts.C2S, "127.0.0.1", nil)
			c.open(t)
			return c
		}, "connection-timeout"},
		{"half a header", func(t *testing.T) *rawClient {
			c := dialRaw(t, ts.C2S, "127.0.0.1", nil)
			c.write(t, streamHeader[:60])
			return c
		}, "connection-timeout"},
		{"TLS handshake never starts", func(t *testing.T) *rawClient { return dialRaw(t, ts.C2STLS, "127.0.0.1", nil) }, ""},
		{"after the TLS handshake", func(t *testing.T) *rawClient { return dialRaw(t, ts.C2STLS, "127.0.0.1", ts.TLSConfig) }, "connection-timeout"},
		{"after the features over TLS", func(t *testing.T) *rawClient {
			c := dialRaw(t, ts.C2STLS, "127.0.0.1", ts.TLSConfig)
			c.open(t)
			return c
		}, "connection-timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.run(t)
			if tc.want != "" {
				if got := c.streamError(t); got != tc.want {
					t.Errorf("stream error %q, want %q", got, tc.want)
				}
			}
			if err := c.closed(); err != nil {
				t.Errorf("connection not closed: %v", err)
			}
		})
	}
}

// TestShutdownDuringNegotiation: connections still negotiating at
// shutdown end with system-shutdown, like bound sessions.
func TestShutdownDuringNegotiation(t *testing.T) {
	ts := startTestServer(t)
	plain := dialRaw(t, ts.C2S, "127.0.0.1", nil)
	plain.open(t)
	secure := dialRaw(t, ts.C2STLS, "127.0.0.1", ts.TLSConfig)
	secure.open(t)
	if err := ts.Stop(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*rawClient{"starttls": plain, "direct tls": secure} {
		if got := c.streamError(t); got != "system-shutdown" {
			t.Errorf("%s: stream error %q, want system-shutdown", name, got)
		}
	}
}

// isPing matches the server's XEP-0199 pings.
func isPing(e element) bool {
	_, ok := e.child(xml.Name{Space: ping.NS, Local: "ping"})
	return e.start.Name.Local == "iq" && e.attr("type") == "get" && ok
}

// TestIdleTimeout: a bound client that stays silent gets a ping; one that
// answers (an error counts: mellium answers service-unavailable) keeps its
// session, one that does not is ended with connection-timeout.
func TestIdleTimeout(t *testing.T) {
	ts := startTestServer(t, withConfig(func(c *Config) {
		c.NegotiationTimeout = time.Second // bound sessions outlive it
		c.IdleTimeout = 100 * time.Millisecond
		c.PingTimeout = time.Second
		fastLogins(c)
	}))
	createAccounts(t, ts, "u1", "u2")

	a := ts.Login(t, "u1", "pw-u1")
	// Answered, the pings go on past the negotiation timeout: the bound
	// session has none.
	start := time.Now()
	for time.Since(start) < 2*time.Second {
		if p := a.Next(t, isPing); p.attr("from") != "localhost" {
			t.Errorf("ping from %q", p.attr("from"))
		}
	}
	if e := a.IQ(t, `<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>`); e.attr("type") != "result" {
		t.Errorf("answering client's ping: %s", e.attr("type"))
	}

	c := dialRaw(t, ts.C2STLS, "127.0.0.1", ts.TLSConfig)
	c.login(t, "u2", "pw-u2")
	p, err := c.next()
	if err != nil || !isPing(p) {
		t.Fatalf("silent client: %v %v, want a ping", p.start.Name, err)
	}
	if got := c.streamError(t); got != "connection-timeout" {
		t.Errorf("silent client: stream error %q, want connection-timeout", got)
	}
	if err := c.closed(); err != nil {
		t.Errorf("connection not closed: %v", err)
	}
}

// TestLoginRateLimitedTemporaryFailure: a client over the failed-login
// limit is told temporary-auth-failure (RFC 6120 § 6.5.10), not
// not-authorized, even with the right password; another client key still
// gets not-authorized for a wrong password and in with the right one.
func TestLoginRateLimitedTemporaryFailure(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	failure := func(local, password string) string {
		c := dialRaw(t, ts.C2STLS, local, ts.TLSConfig)
		c.open(t)
		c.write(t, `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>`+
			b64("\x00alice\x00"+password)+`</auth>`)
		e, err := c.next()
		c.conn.Close()
		if err != nil {
			t.Fatalf("auth answer: %v", err)
		}
		if e.start.Name.Local == "success" {
			return "success"
		}
		if ch := e.children(); e.start.Name.Local == "failure" && len(ch) > 0 {
			return ch[0].start.Name.Local
		}
		return e.start.Name.Local
	}
	if got := failure("127.0.0.7", "wrong password"); got != "not-authorized" {
		t.Fatalf("first wrong password: %q", got)
	}
	got := ""
	for i := 0; i < 20 && got != "temporary-auth-failure"; i++ {
		got = failure("127.0.0.7", "wrong password")
	}
	if got != "temporary-auth-failure" {
		t.Fatalf("never rate limited: %q", got)
	}
	if got := failure("127.0.0.7", "alice password"); got != "temporary-auth-failure" {
		t.Errorf("right password while limited: %q, want temporary-auth-failure", got)
	}
	if got := failure("127.0.0.8", "wrong password"); got != "not-authorized" {
		t.Errorf("other client, wrong password: %q", got)
	}
	if got := failure("127.0.0.8", "alice password"); got != "success" {
		t.Errorf("other client, right password: %q", got)
	}
	// And a mellium client reads the condition.
	_, err := ts.login("alice", "wrong password", true) // from 127.0.0.1: not limited yet
	if err == nil || !strings.Contains(err.Error(), "not-authorized") {
		t.Errorf("mellium client, wrong password: %v", err)
	}
}

// TestSASLPlainMalformed: the PLAIN feature refuses what RFC 4616 does not
// allow, with the matching SASL failure, and never panics.
func TestSASLPlainMalformed(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	for _, tc := range []struct{ name, send, want string }{
		{"no NUL", `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>` + b64("alice") + `</auth>`, "malformed-request"},
		{"four parts", `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>` + b64("\x00alice\x00pw\x00x") + `</auth>`, "malformed-request"},
		{"not base64", `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>!!!</auth>`, "incorrect-encoding"},
		{"other mechanism", `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>` + b64("n,,n=alice,r=x") + `</auth>`, "invalid-mechanism"},
		{"abort", `<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>`, "aborted"},
		{"proxy authorization", `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>` + b64("bob\x00alice\x00alice password") + `</auth>`, "not-authorized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, ts.C2STLS, "127.0.0.1", ts.TLSConfig)
			c.open(t)
			c.write(t, tc.send)
			e, err := c.next()
			if err != nil {
				t.Fatal(err)
			}
			ch := e.children()
			if e.start.Name.Local != "failure" || len(ch) == 0 || ch[0].start.Name.Local != tc.want {
				t.Errorf("answer %v %v, want failure %s", e.start.Name.Local, ch, tc.want)
			}
		})
	}
	// Without an initial response the server asks for it.
	c := dialRaw(t, ts.C2STLS, "127.0.0.1", ts.TLSConfig)
	c.open(t)
	c.write(t, `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'/>`)
	if e, err := c.next(); err != nil || e.start.Name.Local != "challenge" {
		t.Fatalf("no initial response: %v %v, want a challenge", e.start.Name, err)
	}
	c.write(t, `<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>`+b64("\x00alice\x00alice password")+`</response>`)
	if e, err := c.next(); err != nil || e.start.Name.Local != "success" {
		t.Fatalf("response: %v %v, want success", e.start.Name, err)
	}
}

// TestClientStreamError: a client that ends its stream with a stream
// error gets the end of the server's stream, not an error back.
func TestClientStreamError(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	c := dialRaw(t, ts.C2STLS, "127.0.0.1", ts.TLSConfig)
	c.login(t, "alice", "alice password")
	c.write(t, `<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>`)
	if cond, err := c.readStreamError(); err == nil {
		t.Errorf("the server answered a stream error with %q", cond)
	}
}

// TestStreamClosedWhileNegotiating: a client that closes its stream
// between negotiation elements (after registering, say) gets the end of
// the server's stream, not a stream error.
func TestStreamClosedWhileNegotiating(t *testing.T) {
	ts := startTestServer(t)
	c := dialRaw(t, ts.C2STLS, "127.0.0.1", ts.TLSConfig)
	c.open(t)
	c.write(t, `<iq type='set' id='r'><query xmlns='jabber:iq:register'><username>dave</username><password>dave password</password></query></iq>`)
	if e, err := c.next(); err != nil || e.attr("type") != "result" {
		t.Fatalf("registration: %v %v", e.attr("type"), err)
	}
	c.write(t, `</stream:stream>`)
	if cond, err := c.readStreamError(); err == nil {
		t.Errorf("stream error %q after the client closed its stream", cond)
	} else if !strings.Contains(err.Error(), "EOF") {
		t.Errorf("stream end: %v", err)
	}
}

// TestUnansweredIQ: the server's own read loop answers an IQ get or set
// no handler answered with service-unavailable, as mellium's Serve did.
func TestUnansweredIQ(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	a := ts.Login(t, "alice", "alice password")
	e := a.IQ(t, `<iq type='get' id='q1' to='localhost'><query xmlns='urn:example:unknown'/></iq>`)
	if e.attr("type") != "error" || stanzaErrorCondition(e) != "service-unavailable" {
		t.Errorf("unanswered IQ: %s %s", e.attr("type"), stanzaErrorCondition(e))
	}
	if e.attr("id") != "q1" {
		t.Errorf("answer id %q", e.attr("id"))
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestNegotiationDuplicateAttributes: while the stream is negotiated,
// mellium reads the stream header, <starttls/> and the bind IQ with its
// own decoder, which accepts a repeated attribute; the whitespace filter
// below it refuses one (not-well-formed), at each of those steps.
func TestNegotiationDuplicateAttributes(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	dupHeader := strings.Replace(streamHeader, "to='localhost'", "to='localhost' to='example.org'", 1)
	auth := `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>` +
		base64.StdEncoding.EncodeToString([]byte("\x00alice\x00alice password")) + `</auth>`
	for _, tc := range []struct {
		name string
		run  func(t *testing.T) *rawClient
	}{
		{"stream header", func(t *testing.T) *rawClient {
			c := dialRaw(t, ts.C2STLS, "127.0.0.1", ts.TLSConfig)
			c.write(t, dupHeader)
			return c
		}},
		{"starttls", func(t *testing.T) *rawClient {
			c := dialRaw(t, ts.C2S, "127.0.0.1", nil)
			c.open(t)
			c.write(t, `<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls' xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`)
			return c
		}},
		{"restarted stream header", func(t *testing.T) *rawClient {
			c := dialRaw(t, ts.C2STLS, "127.0.0.1", ts.TLSConfig)
			c.open(t)
			c.write(t, auth)
			if e, err := c.next(); err != nil || e.start.Name.Local != "success" {
				t.Fatalf("auth: %v %v", e.start.Name, err)
			}
			c.write(t, dupHeader)
			return c
		}},
		{"bind", func(t *testing.T) *rawClient {
			c := dialRaw(t, ts.C2STLS, "127.0.0.1", ts.TLSConfig)
			c.open(t)
			c.write(t, auth)
			if e, err := c.next(); err != nil || e.start.Name.Local != "success" {
				t.Fatalf("auth: %v %v", e.start.Name, err)
			}
			c.open(t)
			c.write(t, `<iq type='set' id='bind' id='again'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>`)
			return c
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.run(t)
			if got := c.streamError(t); got != "not-well-formed" {
				t.Errorf("stream error %q, want not-well-formed", got)
			}
			if err := c.closed(); err != nil {
				t.Errorf("connection not closed: %v", err)
			}
		})
	}
}
