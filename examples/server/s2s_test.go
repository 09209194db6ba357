package main

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"
)

// Federation tests: two servers in the test process, a.example and
// b.example, each with its own certificate, reaching each other through
// -s2s-hosts on loopback.

// fedCert writes a self-signed certificate for domain and returns the
// paths of its certificate and key.
func fedCert(t *testing.T, domain string) (certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	c, k, err := selfSign(domain, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, c, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, k, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// listenLoopback opens a listener on a free loopback port, for a server
// whose address another must know before it starts; the server closes it
// (a test that does not start one: t.Cleanup).
func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// fedPair starts a.example and b.example federating. With trust, each
// trusts the other's certificate (SASL EXTERNAL); without, they
// authenticate with dialback. extraCA certificates are trusted by b too.
type fedPair struct {
	a, b         *testServer
	aCert, bCert string
	aS2S, bS2S   string
	aLog, bLog   *syncBuffer
}

func startFedPair(t *testing.T, trust bool, extraCA ...string) *fedPair {
	t.Helper()
	return startFedPairWith(t, trust, nil, nil, extraCA...)
}

// startFedPairWith is startFedPair with aOpt and bOpt, if not nil, applied
// last to the configurations of a.example and b.example.
func startFedPairWith(t *testing.T, trust bool, aOpt, bOpt func(*Config), extraCA ...string) *fedPair {
	t.Helper()
	aLn, bLn := listenLoopback(t), listenLoopback(t)
	p := &fedPair{aS2S: aLn.Addr().String(), bS2S: bLn.Addr().String(), aLog: &syncBuffer{}, bLog: &syncBuffer{}}
	aCert, aKey := fedCert(t, "a.example")
	bCert, bKey := fedCert(t, "b.example")
	p.aCert, p.bCert = aCert, bCert
	ca := func(peer string, extra ...string) string {
		if !trust && len(extra) == 0 {
			return ""
		}
		var pem []byte
		if trust {
			b, _ := os.ReadFile(peer)
			pem = append(pem, b...)
		}
		for _, f := range extra {
			b, _ := os.ReadFile(f)
			pem = append(pem, b...)
		}
		f := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(f, pem, 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	aCA, bCA := ca(bCert), ca(aCert, extraCA...)
	p.a = startTestServer(t, withConfig(func(c *Config) {
		c.Domain, c.CertFile, c.KeyFile, c.Stderr = "a.example", aCert, aKey, p.aLog
		c.S2S, c.S2SHosts, c.S2SCA = p.aS2S, "b.example="+p.bS2S+",conference.b.example="+p.bS2S, aCA
		c.s2sListener = aLn
		if aOpt != nil {
			aOpt(c)
		}
	}))
	p.b = startTestServer(t, withConfig(func(c *Config) {
		c.Domain, c.CertFile, c.KeyFile, c.Stderr = "b.example", bCert, bKey, p.bLog
		c.S2S, c.S2SHosts, c.S2SCA = p.bS2S, "a.example="+p.aS2S+",conference.a.example="+p.aS2S, bCA
		c.s2sListener = bLn
		if bOpt != nil {
			bOpt(c)
		}
	}))
	return p
}

// connLog returns the connection log files of ts, joined.
func connLog(t *testing.T, ts *testServer) string {
	t.Helper()
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(ts.LogDir, "xmpp*"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
	}
	return b.String()
}

func loginUser(t *testing.T, ts *testServer, user string) *testClient {
	t.Helper()
	ts.Register(t, user, "secret pass")
	return ts.Login(t, user, "secret pass")
}

func TestS2SChatDialback(t *testing.T) {
	p := startFedPair(t, false)
	alice := loginUser(t, p.a, "alice")
	bob := loginUser(t, p.b, "bob")
	setPrefs(t, alice, "always") // archive on at a only

	alice.Send(t, `<message to="bob@b.example" type="chat" id="m1"><body>hello bob</body></message>`)
	m := bob.Next(t, isMessage)
	if body(m) != "hello bob" || !strings.HasPrefix(m.attr("from"), "alice@a.example/") {
		t.Fatalf("bob got %q from %q", body(m), m.attr("from"))
	}
	bob.Send(t, `<message to="alice@a.example" type="chat" id="m2"><body>hello alice</body></message>`)
	m = alice.Next(t, isMessage)
	if body(m) != "hello alice" || !strings.HasPrefix(m.attr("from"), "bob@b.example/") {
		t.Fatalf("alice got %q from %q", body(m), m.attr("from"))
	}
	// Both directions archived at a, per alice's preference; nothing at b.
	got, _ := mamQuery(t, alice, "", "")
	if strings.Join(got, "|") != "hello bob|hello alice" {
		t.Errorf("alice's archive: %q", got)
	}
	if got, _ := mamQuery(t, bob, "", ""); len(got) != 0 {
		t.Errorf("bob's archive (never by default): %q", got)
	}
	// The connection log records the s2s streams: domain and an
	// anonymized IP, the way of authentication, never content.
	for _, ts := range []*testServer{p.a, p.b} {
		log := connLog(t, ts)
		if !strings.Contains(log, `"s2s connected"`) || !strings.Contains(log, `"auth":"dialback"`) {
			t.Errorf("%s connection log without the dialback s2s stream:\n%s", ts.Domain, log)
		}
		if strings.Contains(log, "hello") || strings.Contains(log, "127.0.0.1") {
			t.Errorf("%s connection log holds content or a full IP:\n%s", ts.Domain, log)
		}
	}
}

func TestS2SExternal(t *testing.T) {
	p := startFedPair(t, true)
	alice := loginUser(t, p.a, "alice")
	bob := loginUser(t, p.b, "bob")
	alice.Send(t, `<message to="bob@b.example" type="chat"><body>over external</body></message>`)
	if m := bob.Next(t, isMessage); body(m) != "over external" {
		t.Fatalf("bob got %q", body(m))
	}
	if log := connLog(t, p.a); !strings.Contains(log, `"auth":"external"`) {
		t.Errorf("a's outbound stream not authenticated with EXTERNAL:\n%s", log)
	}
}

func TestS2SPresenceAndIQ(t *testing.T) {
	p := startFedPair(t, false)
	alice := loginUser(t, p.a, "alice")
	bob := loginUser(t, p.b, "bob")
	alice.Send(t, `<presence/>`)
	bob.Send(t, `<presence/>`)

	// alice subscribes to bob, bob approves: alice gets subscribed and
	// bob's presence.
	alice.Send(t, `<presence to="bob@b.example" type="subscribe"/>`)
	req := bob.Next(t, func(e element) bool { return e.start.Name.Local == "presence" && e.attr("type") == "subscribe" })
	if req.attr("from") != "alice@a.example" {
		t.Fatalf("subscribe from %q", req.attr("from"))
	}
	bob.Send(t, `<presence to="alice@a.example" type="subscribed"/>`)
	alice.Next(t, func(e element) bool {
		return e.start.Name.Local == "presence" && e.attr("type") == "subscribed" && e.attr("from") == "bob@b.example"
	})
	alice.Next(t, func(e element) bool {
		return e.start.Name.Local == "presence" && e.attr("type") == "" && strings.HasPrefix(e.attr("from"), "bob@b.example/")
	})
	// bob changes presence: alice (subscribed) sees it.
	bob.Send(t, `<presence><show>away</show></presence>`)
	alice.Next(t, func(e element) bool {
		_, away := e.child(xml.Name{Space: stanza.NSClient, Local: "show"})
		return e.start.Name.Local == "presence" && away && strings.HasPrefix(e.attr("from"), "bob@b.example/")
	})

	// IQ relay: alice asks bob's client for its version. The mellium
	// client under bob answers every IQ its handler leaves, here with
	// service-unavailable: that answer comes back from bob's full JID, and
	// the result bob sends afterwards answers nothing and stays out.
	alice.Send(t, `<iq type="get" id="v1" to="`+bob.JID.String()+`"><query xmlns="jabber:iq:version"/></iq>`)
	q := bob.Next(t, func(e element) bool { return e.start.Name.Local == "iq" && e.attr("id") == "v1" })
	if q.attr("from") != alice.JID.String() {
		t.Fatalf("relayed IQ from %q", q.attr("from"))
	}
	r := alice.Next(t, func(e element) bool { return e.start.Name.Local == "iq" && e.attr("id") == "v1" })
	if r.attr("type") != "error" || stanzaErrorCondition(r) != "service-unavailable" || r.attr("from") != bob.JID.String() {
		t.Fatalf("answer: type %q (%s) from %q", r.attr("type"), stanzaErrorCondition(r), r.attr("from"))
	}
	// An answer nobody asked for (any more) is not let in.
	bob.Send(t, `<iq type="result" id="v1" to="`+alice.JID.String()+`"><query xmlns="jabber:iq:version"><name>test</name></query></iq>`)
	bob.Send(t, `<message to="alice@a.example" type="chat"><body>marker</body></message>`)
	alice.Next(t, isMessage)
	if e, err := alice.next(func(e element) bool { return e.start.Name.Local == "iq" && e.attr("id") == "v1" }, 0); err == nil {
		t.Fatalf("unsolicited answer delivered: %v", e.start)
	}
}

// TestS2SServerPing: a remote user's ping of our domain or a service of
// it is answered with a result (XEP-0199 § 4.3); other IQs to the domain,
// and pings of a user's bare JID, still get service-unavailable.
func TestS2SServerPing(t *testing.T) {
	p := startFedPair(t, false)
	alice := loginUser(t, p.a, "alice")
	loginUser(t, p.b, "bob")
	for _, tc := range []struct{ to, payload, want string }{
		{"b.example", `<ping xmlns="urn:xmpp:ping"/>`, "result"},
		{"conference.b.example", `<ping xmlns="urn:xmpp:ping"/>`, "result"},
		{"b.example", `<query xmlns="jabber:iq:version"/>`, "service-unavailable"},
		{"b.example", `<ping xmlns="urn:xmpp:ping"/><ping xmlns="urn:xmpp:ping"/>`, "service-unavailable"},
		{"bob@b.example", `<ping xmlns="urn:xmpp:ping"/>`, "service-unavailable"},
	} {
		r := alice.IQ(t, `<iq type="get" id="sp" to="`+tc.to+`">`+tc.payload+`</iq>`)
		got := r.attr("type")
		if got == "error" {
			got = stanzaErrorCondition(r)
		}
		if got != tc.want || r.attr("from") != tc.to {
			t.Errorf("%s to %s: %s from %q, want %s", tc.payload, tc.to, got, r.attr("from"), tc.want)
		}
	}
}

// TestS2SRemoveContactTellsRemote: when alice@a.example removes her
// remote contact bob@b.example from her roster, or deletes her account,
// b.example is told (unavailable, unsubscribe, unsubscribed: RFC 6121
// § 2.5.2) and bob's item for alice ends without subscription; a
// request bob had pending at alice is declined.
func TestS2SRemoveContactTellsRemote(t *testing.T) {
	for _, how := range []string{"roster remove", "account deletion"} {
		t.Run(how, func(t *testing.T) {
			p := startFedPair(t, false)
			alice := loginUser(t, p.a, "alice")
			bob := loginUser(t, p.b, "bob")
			online(t, alice)
			online(t, bob)
			subscribeTo(t, alice, bob)
			subscribeTo(t, bob, alice)
			if s := itemState(t, bob, "alice@a.example"); s != "both" {
				t.Fatalf("bob's item for alice before: %s", s)
			}
			if how == "roster remove" {
				alice.IQ(t, `<iq type="set" id="rm"><query xmlns="jabber:iq:roster"><item jid="bob@b.example" subscription="remove"/></query></iq>`)
			} else {
				alice.Send(t, `<iq type="set" id="rm"><query xmlns="jabber:iq:register"><remove/></query></iq>`)
			}
			bob.Next(t, isPresence(alice.JID.String(), "unavailable"))
			bob.Next(t, isPresence("alice@a.example", "unsubscribe"))
			bob.Next(t, isPresence("alice@a.example", "unsubscribed"))
			bob.Next(t, isPush("alice@a.example", "none", false))
			if it, ok := p.b.store.rosterItem("bob", "alice@a.example"); ok && (it.Sub != "" || it.Ask) {
				t.Errorf("bob's item for alice afterwards: %+v", it)
			}
			if how != "roster remove" {
				return
			}
			// A pending request from a remote user is declined.
			carol := loginUser(t, p.b, "carol")
			online(t, carol)
			carol.Send(t, `<presence to="alice@a.example" type="subscribe"/>`)
			alice.Next(t, isPresence("carol@b.example", "subscribe"))
			alice.IQ(t, `<iq type="set" id="rm2"><query xmlns="jabber:iq:roster"><item jid="carol@b.example" subscription="remove"/></query></iq>`)
			carol.Next(t, isPresence("alice@a.example", "unsubscribed"))
		})
	}
}

func TestS2SUnreachableBounces(t *testing.T) {
	dead := freeAddr(t) // closed: connection refused
	ts := startTestServer(t, withConfig(func(c *Config) {
		c.Domain = "a.example"
		c.S2S, c.S2SHosts = "127.0.0.1:0", "dead.example="+dead
		c.s2sRetry = []time.Duration{0}
	}))
	alice := loginUser(t, ts, "alice")
	alice.Send(t, `<message to="bob@dead.example" type="chat" id="x1"><body>lost?</body></message>`)
	e := alice.Next(t, func(e element) bool { return e.start.Name.Local == "message" && e.attr("id") == "x1" })
	if e.attr("type") != "error" || stanzaErrorCondition(e) != string(stanza.RemoteServerNotFound) || e.attr("from") != "bob@dead.example" {
		t.Fatalf("bounce: type %q cond %q from %q", e.attr("type"), stanzaErrorCondition(e), e.attr("from"))
	}
	// IQs too.
	r := alice.IQ(t, `<iq type="get" id="x2" to="bob@dead.example/r"><query xmlns="jabber:iq:version"/></iq>`)
	if stanzaErrorCondition(r) != string(stanza.RemoteServerNotFound) {
		t.Fatalf("iq bounce: %q", stanzaErrorCondition(r))
	}
}

// TestS2SRemoteTimeout: a peer that accepts and never answers makes the
// queue bounce with remote-server-timeout after the negotiation deadline.
func TestS2SRemoteTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, silent, until the test ends
		}
	}()
	ts := startTestServer(t, withConfig(func(c *Config) {
		c.Domain = "a.example"
		c.S2S, c.S2SHosts = "127.0.0.1:0", "mute.example="+ln.Addr().String()
		c.s2sTimeout = 200 * time.Millisecond
		c.s2sRetry = []time.Duration{0}
	}))
	alice := loginUser(t, ts, "alice")
	alice.Send(t, `<message to="bob@mute.example" type="chat" id="t1"><body>anyone?</body></message>`)
	e := alice.Next(t, func(e element) bool { return e.attr("id") == "t1" })
	if stanzaErrorCondition(e) != string(stanza.RemoteServerTimeout) {
		t.Fatalf("bounce condition %q", stanzaErrorCondition(e))
	}
}

// rawPeer is a hand-driven server-to-server stream to a test server.
type rawPeer struct {
	t    *testing.T
	st   *s2sStream
	from string // the from of the server's last stream header
}

func dialRawPeer(t *testing.T, addr, from, to string) *rawPeer {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	p := &rawPeer{t: t, st: newS2SStream(c, 1<<20)}
	p.open(from, to)
	return p
}

func (p *rawPeer) open(from, to string) element {
	p.t.Helper()
	if err := p.st.writeHeader(from, to, ""); err != nil {
		p.t.Fatal(err)
	}
	from, _, id, err := p.st.readHeader()
	if err != nil {
		p.t.Fatal(err)
	}
	p.st.id, p.from = id, from
	f, err := p.st.features()
	if err != nil {
		p.t.Fatal(err)
	}
	return f
}

// startTLS upgrades the stream, offering cert as client certificate.
func (p *rawPeer) startTLS(from, to string, cert *tls.Certificate) element {
	p.t.Helper()
	if err := p.st.writeElement(simpleElement(nsTLS, "starttls", "")); err != nil {
		p.t.Fatal(err)
	}
	if e, err := p.st.next(1 << 20); err != nil || e.start.Name != nameProceed {
		p.t.Fatalf("starttls: %v %v", e.start.Name, err)
	}
	cfg := &tls.Config{InsecureSkipVerify: true, ServerName: to}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	tc := tls.Client(p.st.lc, cfg)
	if err := tc.Handshake(); err != nil {
		p.t.Fatal(err)
	}
	p.st.conn = tc
	p.st.restart()
	return p.open(from, to)
}

// streamError reads until the stream ends and returns the stream error's
// condition ("" if none).
func (p *rawPeer) streamError() string {
	p.t.Helper()
	for {
		_, err := p.st.next(1 << 20)
		if err == nil {
			continue
		}
		if i := strings.Index(err.Error(), "stream error "); i >= 0 {
			return err.Error()[i+len("stream error "):]
		}
		return ""
	}
}

// TestS2SForgedFrom: a peer authenticated (EXTERNAL) as c.example sending
// for a.example gets invalid-from; one addressing another domain gets
// host-unknown.
func TestS2SForgedFrom(t *testing.T) {
	cCert, cKey := fedCert(t, "c.example")
	p := startFedPair(t, false, cCert)
	pair, err := tls.LoadX509KeyPair(cCert, cKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ stanza, want string }{
		{`<message from="mallory@a.example" to="bob@b.example"><body>x</body></message>`, "invalid-from"},
		{`<message from="mallory@c.example" to="bob@elsewhere.example"><body>x</body></message>`, "host-unknown"},
		{`<message from="mallory@c.example"><body>x</body></message>`, "improper-addressing"},
	} {
		peer := dialRawPeer(t, p.bS2S, "c.example", "b.example")
		feats := peer.startTLS("c.example", "b.example", &pair)
		if !offersExternal(feats) {
			t.Fatal("EXTERNAL not offered for a trusted certificate")
		}
		if err := peer.st.writeElement(simpleElement(nsSASL, "auth", base64.StdEncoding.EncodeToString([]byte("c.example")), "mechanism", "EXTERNAL")); err != nil {
			t.Fatal(err)
		}
		if e, err := peer.st.next(1 << 20); err != nil || e.start.Name != nameSASLSuccess {
			t.Fatalf("EXTERNAL: %v %v", e.start.Name, err)
		}
		peer.st.restart()
		peer.open("c.example", "b.example")
		if err := peer.st.writeRaw([]byte(tc.stanza)); err != nil {
			t.Fatal(err)
		}
		if got := peer.streamError(); got != tc.want {
			t.Errorf("%s: stream error %q, want %q", tc.stanza, got, tc.want)
		}
	}
}

// TestS2SResponseHeaderFrom: every stream header b.example answers with
// (before TLS, after TLS, after SASL) names in from the domain the peer
// asked for in to (RFC 6120 § 4.7.1), a service subdomain included.
func TestS2SResponseHeaderFrom(t *testing.T) {
	cCert, cKey := fedCert(t, "c.example")
	p := startFedPair(t, false, cCert)
	pair, err := tls.LoadX509KeyPair(cCert, cKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, to := range []string{"b.example", "conference.b.example"} {
		peer := dialRawPeer(t, p.bS2S, "c.example", to)
		if peer.from != to {
			t.Errorf("to %s: header before TLS from %q", to, peer.from)
		}
		peer.startTLS("c.example", to, &pair)
		if peer.from != to {
			t.Errorf("to %s: header after TLS from %q", to, peer.from)
		}
		if err := peer.st.writeElement(simpleElement(nsSASL, "auth", base64.StdEncoding.EncodeToString([]byte("c.example")), "mechanism", "EXTERNAL")); err != nil {
			t.Fatal(err)
		}
		if e, err := peer.st.next(1 << 20); err != nil || e.start.Name != nameSASLSuccess {
			t.Fatalf("EXTERNAL: %v %v", e.start.Name, err)
		}
		peer.st.restart()
		peer.open("c.example", to)
		if peer.from != to {
			t.Errorf("to %s: header after SASL from %q", to, peer.from)
		}
	}
}

// TestS2SDialbackReplay: a dialback key a.example never sent, even the
// right one for the stream, is refused: a answers the verification
// invalid, and b ends the stream with not-authorized.
func TestS2SDialbackReplay(t *testing.T) {
	p := startFedPair(t, false)
	peer := dialRawPeer(t, p.bS2S, "a.example", "b.example")
	peer.startTLS("a.example", "b.example", nil)
	key := p.a.s2s.keys.key(dialbackID{receiving: "b.example", originating: "a.example", streamID: peer.st.id})
	if err := peer.st.writeElement(simpleElement(nsDialback, "result", key, "from", "a.example", "to", "b.example")); err != nil {
		t.Fatal(err)
	}
	e, err := peer.st.next(1 << 20)
	if err != nil || e.start.Name != dbResult || e.attr("type") != "invalid" {
		t.Fatalf("dialback answer %v type %q: %v", e.start.Name, e.attr("type"), err)
	}
	if got := peer.streamError(); got != "not-authorized" {
		t.Fatalf("stream error %q", got)
	}
	// A stanza before authentication ends the stream too.
	peer = dialRawPeer(t, p.bS2S, "a.example", "b.example")
	peer.startTLS("a.example", "b.example", nil)
	_ = peer.st.writeRaw([]byte(`<message from="x@a.example" to="bob@b.example"/>`))
	if got := peer.streamError(); got != "not-authorized" {
		t.Fatalf("stanza before auth: stream error %q", got)
	}
}

// TestS2SStallBeforeTLS: a peer that opens a stream and never starts TLS
// is cut at the negotiation deadline (connection-timeout), and one that
// sends dialback before TLS gets policy-violation.
func TestS2SStallBeforeTLS(t *testing.T) {
	ts := startTestServer(t, withConfig(func(c *Config) {
		c.Domain = "b.example"
		c.S2S = "127.0.0.1:0"
		c.NegotiationTimeout = 300 * time.Millisecond
	}))
	peer := dialRawPeer(t, ts.S2SAddr(), "a.example", "b.example")
	if got := peer.streamError(); got != "connection-timeout" {
		t.Fatalf("stall: stream error %q", got)
	}
	peer = dialRawPeer(t, ts.S2SAddr(), "a.example", "b.example")
	_ = peer.st.writeElement(simpleElement(nsDialback, "result", "k", "from", "a.example", "to", "b.example"))
	if got := peer.streamError(); got != "policy-violation" {
		t.Fatalf("dialback before TLS: stream error %q", got)
	}
}

// bytesConn is a net.Conn whose reads come from a byte slice.
type bytesConn struct {
	net.Conn
	r *bytes.Reader
}

func (c bytesConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// FuzzS2SStream feeds arbitrary bytes to the reader of an inbound server
// stream and the checks of each stanza: never a panic, every element
// within the stanza limits, and a stanza let through always comes from the
// authenticated domain and goes to ours; its jabber:client form names the
// same addresses.
func FuzzS2SStream(f *testing.F) {
	for _, s := range []string{
		`<stream:stream xmlns="jabber:server" xmlns:stream="http://etherx.jabber.org/streams" xmlns:db="jabber:server:dialback" from="a.example" to="b.example" version="1.0">`,
		`<stream:stream xmlns="jabber:server" xmlns:stream="http://etherx.jabber.org/streams"><message from="x@a.example" to="y@b.example" type="chat"><body>hi</body></message>`,
		`<stream:stream xmlns="jabber:server" xmlns:stream="http://etherx.jabber.org/streams"><message from="x@c.example" to="y@b.example"/><iq to="b.example" from="a.example" type="get" id="1"><query xmlns="jabber:iq:version"/></iq>`,
		`<stream:stream xmlns="jabber:server" xmlns:stream="http://etherx.jabber.org/streams" xmlns:db="jabber:server:dialback"><db:result from="a.example" to="b.example">abc</db:result><starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"/>`,
		`<stream:stream xmlns="jabber:server" xmlns:stream="http://etherx.jabber.org/streams"><presence from="x@a.example/r" to="y@conference.b.example/nick"><x xmlns="http://jabber.org/protocol/muc"/></presence></stream:stream>`,
		`<stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams"><stream:error><host-unknown xmlns="urn:ietf:params:xml:ns:xmpp-streams"/></stream:error>`,
	} {
		f.Add([]byte(s))
	}
	ours := func(d string) bool { return d == "b.example" || d == "conference.b.example" }
	f.Fuzz(func(t *testing.T, data []byte) {
		st := newS2SStream(bytesConn{r: bytes.NewReader(data)}, maxNegotiationBytes)
		if _, _, _, err := st.readHeader(); err != nil {
			return
		}
		for range 100 {
			e, err := st.next(maxStanzaWireBytes)
			if err != nil {
				return
			}
			if elementSize(e) > maxStanzaBytes {
				t.Fatalf("element over the limit: %d bytes", elementSize(e))
			}
			from, to, err := checkInbound(e, "a.example", ours)
			if err != nil {
				continue
			}
			if from.Domainpart() != "a.example" || !ours(to.Domainpart()) {
				t.Fatalf("let through from %q to %q", from, to)
			}
			c := toClientNS(e)
			if c.attr("from") != e.attr("from") || c.attr("to") != e.attr("to") || c.start.Name.Space != stanza.NSClient {
				t.Fatalf("namespace rewrite changed %v into %v", e.start, c.start)
			}
			if _, err := toServerNS(c).bytes(); err != nil {
				t.Fatalf("rewritten stanza does not serialize: %v", err)
			}
		}
	})
}

// TestS2SRemoteOccupant: alice@a.example joins a room of b.example with
// archiving on, sees bob's message and bob sees hers; both are in the
// room's archive; when alice leaves, bob sees her go.
func TestS2SRemoteOccupant(t *testing.T) {
	p := startFedPair(t, false)
	alice := loginUser(t, p.a, "alice")
	bob := loginUser(t, p.b, "bob")
	room := "lounge@conference.b.example"
	if e := tryJoinRoom(t, bob, room+"/bob"); e.attr("type") == "error" {
		t.Fatalf("bob creates the room: %s", stanzaErrorCondition(e))
	}
	if r := configureRoom(t, bob, room, "muc#roomconfig_enablearchiving", "1"); r.attr("type") != "result" {
		t.Fatalf("configure: %s", stanzaErrorCondition(r))
	}
	// A remote user cannot create rooms here.
	if e := tryJoinRoom(t, alice, "other@conference.b.example/alice"); stanzaErrorCondition(e) != "forbidden" {
		t.Fatalf("remote room creation: %q", stanzaErrorCondition(e))
	}
	if e := tryJoinRoom(t, alice, room+"/alice"); e.attr("type") == "error" {
		t.Fatalf("alice joins: %s", stanzaErrorCondition(e))
	}
	bob.Next(t, mucPresence(room+"/alice", ""))

	isGroupchat := func(text string) func(element) bool {
		return func(e element) bool { return e.attr("type") == "groupchat" && body(e) == text }
	}
	alice.Send(t, `<message to="`+room+`" type="groupchat"><body>hi from a</body></message>`)
	if m := bob.Next(t, isGroupchat("hi from a")); m.attr("from") != room+"/alice" {
		t.Fatalf("bob got it from %q", m.attr("from"))
	}
	alice.Next(t, isGroupchat("hi from a")) // the room's echo crosses back
	bob.Send(t, `<message to="`+room+`" type="groupchat"><body>hi from b</body></message>`)
	if m := alice.Next(t, isGroupchat("hi from b")); m.attr("from") != room+"/bob" {
		t.Fatalf("alice got it from %q", m.attr("from"))
	}
	if got, _ := mamQuery(t, bob, room, ""); strings.Join(got, "|") != "hi from a|hi from b" {
		t.Errorf("room archive: %q", got)
	}
	alice.Send(t, `<presence to="`+room+`/alice" type="unavailable"/>`)
	bob.Next(t, mucPresence(room+"/alice", "unavailable"))
	if s := p.b.s2s.remoteOccupant(alice.JID, false); s != nil {
		t.Error("b still holds alice's occupant session after she left")
	}
}

// s2sLoadMessages is the size of TestS2SLoad's run.
const s2sLoadMessages = 10000

// s2sLoadWindow is how many messages the sender has in flight: below the
// recipient session's queue (Config.QueueSize, 256), which ends a client
// that falls that far behind.
const s2sLoadWindow = 200

// TestS2SLoad: 10,000 chat messages from alice@a.example to bob@b.example
// across the federation link, every one delivered once and in order; the
// same run sends as many from alice to carol on a.example (no federation)
// as the baseline, and logs both times and their ratio (README,
// "Federation"). Skipped with -short and under the race detector, like
// TestLoad.
func TestS2SLoad(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("load figures need a build without the race detector")
	}
	// b.example takes the whole run from a.example at full speed: its
	// per-domain limit (200 stanzas a second by default) would refuse
	// most of it (TestS2SDomainLimits tests the limit).
	unlimited := func(c *Config) { c.S2SStanzaRate, c.S2SByteRate = 1<<30, 1<<30 }
	p := startFedPairWith(t, false, nil, unlimited)
	alice := loginUser(t, p.a, "alice")
	carol := loginUser(t, p.a, "carol")
	bob := loginUser(t, p.b, "bob")
	run := func(to *testClient) time.Duration {
		start := time.Now()
		next := 0
		for sent := 0; sent < s2sLoadMessages; {
			n := min(s2sLoadWindow, s2sLoadMessages-sent)
			var b strings.Builder
			for i := range n {
				fmt.Fprintf(&b, `<message to="%s" type="chat"><body>%d</body></message>`, to.JID.Bare(), sent+i)
			}
			alice.Send(t, b.String())
			sent += n
			for next < sent {
				m := to.Next(t, isMessage)
				if body(m) != strconv.Itoa(next) {
					t.Fatalf("%s: message %q where %d was due", to.JID, body(m), next)
				}
				next++
			}
		}
		return time.Since(start)
	}
	local := run(carol)
	remote := run(bob)
	t.Logf("%d messages: local %v, federated %v, ratio %.2f", s2sLoadMessages, local, remote, float64(remote)/float64(local))
}

// TestS2SPrivacyPage: /privacy says federation is off by default, and
// what leaves the server when the operator turns it on: over TLS only, and
// the direct TLS port when one is open.
func TestS2SPrivacyPage(t *testing.T) {
	off := privacyPageText(t, startTestServer(t))
	if !strings.Contains(off, "nothing is sent to other servers") {
		t.Errorf("/privacy without -s2s does not say federation is off:\n%s", off)
	}
	on := privacyPageText(t, startTestServer(t, withConfig(func(c *Config) { c.S2S = "127.0.0.1:0" })))
	if !strings.Contains(on, "federation is on") || strings.Contains(on, "nothing is sent to other servers") ||
		!strings.Contains(on, "never in plaintext") || strings.Contains(on, "TLS from the first byte") {
		t.Errorf("/privacy with -s2s:\n%s", on)
	}
	direct := privacyPageText(t, startTestServer(t, withConfig(func(c *Config) { c.S2S, c.S2STLS = "127.0.0.1:0", "127.0.0.1:0" })))
	if !strings.Contains(direct, "TLS from the first byte (direct TLS, XEP-0368)") {
		t.Errorf("/privacy with -s2s-tls does not name direct TLS:\n%s", direct)
	}
}

func TestParseS2SHosts(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[string]string
		ok   bool
	}{
		{"", map[string]string{}, true},
		{"a.example=127.0.0.1:5269, b.example=[::1]:5270", map[string]string{"a.example": "127.0.0.1:5269", "b.example": "[::1]:5270"}, true},
		{"a.example=tls://127.0.0.1:5270,b.example=127.0.0.1:5269", map[string]string{"a.example": "tls://127.0.0.1:5270", "b.example": "127.0.0.1:5269"}, true},
		{"a.example=tls://127.0.0.1", nil, false},
		{"a.example=tls://", nil, false},
		{"a.example", nil, false},
		{"a.example=127.0.0.1", nil, false},
		{"user@a.example=127.0.0.1:1", nil, false},
		{"=127.0.0.1:1", nil, false},
	} {
		got, err := parseS2SHosts(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("%q: error %v", tc.in, err)
			continue
		}
		if tc.ok && fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%q: %v, want %v", tc.in, got, tc.want)
		}
	}
	if _, err := parseFlags([]string{"-s2s-hosts", "a.example=127.0.0.1:1"}, io.Discard); err == nil {
		t.Error("-s2s-hosts without -s2s accepted")
	}
	if _, err := parseFlags([]string{"-s2s-tls", "127.0.0.1:5270"}, io.Discard); err == nil {
		t.Error("-s2s-tls without -s2s accepted")
	}
	if c, err := parseFlags([]string{"-s2s", "127.0.0.1:5269", "-s2s-tls", "127.0.0.1:5270"}, io.Discard); err != nil || c.S2STLS != "127.0.0.1:5270" {
		t.Errorf("-s2s-tls: %v %q", err, c.S2STLS)
	}
}

// TestS2SDomainLimits: the per-remote-domain limits of s2slimit.go hold on
// a live link. a.example takes 1 stanza a second from b.example (5 at
// once) and 1 pending subscription request: a second request is refused
// until alice answered the first, and of 50 messages sent at once some are
// refused with policy-violation; the operator log counts both by domain.
func TestS2SDomainLimits(t *testing.T) {
	p := startFedPairWith(t, false, func(c *Config) {
		c.S2SStanzaRate, c.S2SMaxPendingSubs = 1, 1
	}, nil)
	alice := loginUser(t, p.a, "alice")
	bob := loginUser(t, p.b, "bob")
	carol := loginUser(t, p.b, "carol")
	alice.Send(t, `<presence/>`) // requests and answers reach available resources
	bob.Send(t, `<presence/>`)

	// Subscription requests: one may wait for alice's answer.
	bob.Send(t, `<presence to="alice@a.example" type="subscribe"/>`)
	alice.Next(t, isPresence("bob@b.example", "subscribe"))
	carol.Send(t, `<presence to="alice@a.example" type="subscribe" id="first"/>`) // refused
	// The link keeps order: once carol's message is at alice, her request
	// was judged.
	carol.Send(t, `<message to="alice@a.example" type="chat" id="after"><body>hi</body></message>`)
	alice.Next(t, func(e element) bool { return isMessage(e) && e.attr("id") == "after" })
	alice.Send(t, `<presence to="bob@b.example" type="subscribed"/>`)
	// Answered: carol's next request passes. (The refused one never
	// reached alice: the first request alice sees from carol is this one,
	// sent after her answer to bob.)
	bob.Next(t, isPresence("alice@a.example", "subscribed"))
	carol.Send(t, `<presence to="alice@a.example" type="subscribe" id="again"/>`)
	if e := alice.Next(t, isPresence("carol@b.example", "subscribe")); e.attr("id") != "again" {
		t.Fatalf("alice got carol's request %q, want only the one after her answer to bob", e.attr("id"))
	}

	// Messages: 1 a second; 50 at once cannot all pass.
	for i := range 50 {
		bob.Send(t, fmt.Sprintf(`<message to="alice@a.example" type="chat" id="f%d"><body>%d</body></message>`, i, i))
	}
	e := bob.Next(t, func(e element) bool { return e.start.Name.Local == "message" && e.attr("type") == "error" })
	if stanzaErrorCondition(e) != string(stanza.PolicyViolation) || e.attr("from") != "alice@a.example" {
		t.Fatalf("refused message: %q from %q, want policy-violation from alice@a.example", stanzaErrorCondition(e), e.attr("from"))
	}

	// The operator log counts the refusals by domain and limit (the
	// summary still counted is written at shutdown), never a JID.
	if err := p.a.Stop(); err != nil {
		logStacks(t)
		t.Fatal(err)
	}
	log := p.aLog.String()
	for _, want := range []string{"b.example/subscriptions=1", "b.example/stanzas="} {
		if !strings.Contains(log, want) {
			t.Errorf("a.example's log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "carol@") || strings.Contains(log, "bob@") {
		t.Errorf("a.example's log names a remote user:\n%s", log)
	}
}

// TestS2SDuplicateAttributes: an inbound server stream whose header or
// element carries an attribute twice (literally or after namespace
// resolution) ends with not-well-formed; read by the s2s reader itself,
// then once over a live connection.
func TestS2SDuplicateAttributes(t *testing.T) {
	const header = `<stream:stream xmlns="jabber:server" xmlns:stream="http://etherx.jabber.org/streams" from="a.example" to="b.example" version="1.0">`
	const clean = `<message from="x@a.example" to="y@b.example"><body>hi</body></message>`
	for _, tc := range []struct {
		name, in string
		dup      bool
	}{
		{"clean", header + clean, false},
		{"header: two to", `<stream:stream xmlns="jabber:server" xmlns:stream="http://etherx.jabber.org/streams" to="b.example" to="c.example">` + clean, true},
		{"header: two xmlns", `<stream:stream xmlns="jabber:server" xmlns="jabber:server" xmlns:stream="http://etherx.jabber.org/streams">` + clean, true},
		{"stanza: two from", header + `<message from="x@a.example" from="x@c.example" to="y@b.example"/>`, true},
		{"child: two xmlns", header + `<iq from="a.example" to="b.example" type="get" id="1"><query xmlns="jabber:iq:version" xmlns="jabber:iq:version"/></iq>`, true},
		{"child: one name after resolution", header + `<message from="x@a.example" to="y@b.example"><x xmlns:p="urn:a" xmlns:q="urn:a" p:k="1" q:k="2"/></message>`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newS2SStream(bytesConn{r: bytes.NewReader([]byte(tc.in))}, maxNegotiationBytes)
			_, _, _, err := st.readHeader()
			if err == nil {
				_, err = st.next(maxStanzaWireBytes)
			}
			switch {
			case !tc.dup && err != nil:
				t.Fatalf("clean stream refused: %v", err)
			case tc.dup && err == nil:
				t.Fatal("duplicate attribute accepted")
			case tc.dup && s2sStreamError(err, st.lc).Err != stream.NotWellFormed.Err:
				t.Fatalf("error %v maps to %v, want not-well-formed", err, s2sStreamError(err, st.lc))
			}
		})
	}
	ts := startTestServer(t, withConfig(func(c *Config) {
		c.Domain = "b.example"
		c.S2S = "127.0.0.1:0"
	}))
	peer := dialRawPeer(t, ts.S2SAddr(), "a.example", "b.example")
	if err := peer.st.writeRaw([]byte(`<db:result from="a.example" from="a.example" to="b.example">k</db:result>`)); err != nil {
		t.Fatal(err)
	}
	if got := peer.streamError(); got != "not-well-formed" {
		t.Fatalf("live stream: stream error %q, want not-well-formed", got)
	}
}
