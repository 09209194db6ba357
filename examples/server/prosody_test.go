package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"mellium.im/xmpp/stanza"

	"chatbx.eu/privacy/internal/prosodytest"
)

// Interoperability with Debian's Prosody (0.12): each test starts its own
// Prosody (internal/prosodytest) in a temporary directory, on free
// loopback ports, as the domain p.example, and federates our a.example
// with it in both directions. Without the binary the tests skip, unless CI
// is set: then they fail (.ci/run installs it).
//
// Our server reaches Prosody through -s2s-hosts. Prosody finds other
// servers through DNS only, so prosodytest gives it a resolver of its own
// (libunbound, Prosody's "unbound" option) that answers a.example with
// 127.0.0.1 and an SRV record naming our s2s port, and every other name
// with NXDOMAIN: the machine's resolver is neither changed nor asked, and
// nothing leaves the machine.
//
// Without trust (neither side trusts the other's self-signed certificate)
// both directions use Server Dialback over TLS, each side connecting back
// to the other to verify a key; with trust, SASL EXTERNAL.

// prosodyPeer is Prosody's p.example federating with our a.example.
type prosodyPeer struct {
	p     *prosodytest.Prosody
	a     *testServer
	c2s   string // Prosody's client port
	s2s   string // Prosody's server port
	pCert string // PEM certificate of p.example
}

// startProsodyPeer starts Prosody as p.example and our server as
// a.example, each reaching the other on loopback; with trust each trusts
// the other's certificate.
func startProsodyPeer(t *testing.T, trust bool) *prosodyPeer {
	t.Helper()
	aCert, aKey := fedCert(t, "a.example")
	pCert, pKey := fedCert(t, "p.example")
	aLn := listenLoopback(t)
	c2s, s2s := prosodytest.FreePort(t), prosodytest.FreePort(t)
	// Prosody's cafile: our certificate with trust, else one that has
	// nothing to do with a.example (Prosody would use the system's roots
	// without one).
	cafile := aCert
	if !trust {
		cafile, _ = fedCert(t, "unrelated.example")
	}
	p := prosodytest.Start(t, prosodytest.Options{
		Config: fmt.Sprintf(`
modules_enabled = { "roster", "saslauth", "tls", "dialback", "disco", "ping", "presence", "s2s_auth_certs", "s2s_bidi" }

c2s_require_encryption = true
s2s_require_encryption = true
s2s_secure_auth = false
authentication = "internal_plain"
storage = "internal"
ssl = { certificate = %[1]q, key = %[2]q, cafile = %[3]q }
VirtualHost "p.example"
	ssl = { certificate = %[1]q, key = %[2]q, cafile = %[3]q }
`, pCert, pKey, cafile),
		Services: []prosodytest.Service{{Name: "c2s", Port: c2s}, {Name: "s2s", Port: s2s}},
		Peers:    map[string]string{"a.example": aLn.Addr().String(), "conference.a.example": aLn.Addr().String()},
	})
	pp := &prosodyPeer{p: p, c2s: "127.0.0.1:" + strconv.Itoa(c2s), s2s: "127.0.0.1:" + strconv.Itoa(s2s), pCert: pCert}
	pp.a = startTestServer(t, withConfig(func(c *Config) {
		c.Domain, c.CertFile, c.KeyFile = "a.example", aCert, aKey
		c.S2S, c.S2SHosts = aLn.Addr().String(), "p.example="+pp.s2s
		c.s2sListener = aLn
		if trust {
			c.S2SCA = pCert
		}
	}))
	return pp
}

// login registers user on Prosody and logs in with our test client.
func (pp *prosodyPeer) login(t *testing.T, user string) *testClient {
	t.Helper()
	const pass = "prosody user pass"
	pp.p.Register(t, user, "p.example", pass)
	pem, err := os.ReadFile(pp.pCert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	ts := &testServer{Domain: "p.example", C2S: pp.c2s,
		TLSConfig: &tls.Config{ServerName: "p.example", RootCAs: pool, MinVersion: tls.VersionTLS12}}
	c, err := ts.login(user, pass, false)
	if err != nil {
		t.Fatalf("login to prosody: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// s2sAuth returns the way each s2s stream with domain in direction dir
// ("in", "out") was authenticated, from the connection log of ts.
func s2sAuth(t *testing.T, ts *testServer, dir, domain string) []string {
	t.Helper()
	var kinds []string
	for _, line := range strings.Split(connLog(t, ts), "\n") {
		var rec struct{ Msg, Dir, Domain, Auth string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "s2s connected" && rec.Dir == dir && rec.Domain == domain {
			kinds = append(kinds, rec.Auth)
		}
	}
	return kinds
}

// chatBothWays: first writes to second (first's server opens its stream
// to the other), then second answers (the stream the other way); each
// message arrives from the sender's full JID.
func chatBothWays(t *testing.T, first, second *testClient) {
	t.Helper()
	for _, c := range [][2]*testClient{{first, second}, {second, first}} {
		from, to := c[0], c[1]
		text := "hello from " + from.JID.Domainpart()
		from.Send(t, `<message to="`+to.JID.Bare().String()+`" type="chat"><body>`+text+`</body></message>`)
		m := to.Next(t, isMessage)
		if body(m) != text || m.attr("from") != from.JID.String() {
			t.Fatalf("%s got %q from %q, want %q from %s", to.JID, body(m), m.attr("from"), text, from.JID)
		}
	}
}

// TestProsodyFederationDialback: neither server trusts the other's
// certificate, so both streams, Prosody's to us and ours to Prosody,
// authenticate with dialback over TLS; chat goes both ways. Who writes
// first matters: the second stream's key is verified on the first,
// already authenticated stream, while the first stream's key needs a
// connection of its own back to the sender's domain (a stream that
// carries only db:verify, and may then carry db:result).
func TestProsodyFederationDialback(t *testing.T) {
	for _, prosodyFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("prosodyFirst=%v", prosodyFirst), func(t *testing.T) {
			pp := startProsodyPeer(t, false)
			paula := pp.login(t, "paula")
			paula.Send(t, `<presence/>`)
			alice := loginUser(t, pp.a, "alice")
			if prosodyFirst {
				chatBothWays(t, paula, alice)
			} else {
				chatBothWays(t, alice, paula)
			}
			for _, dir := range []string{"in", "out"} {
				if got := s2sAuth(t, pp.a, dir, "p.example"); len(got) == 0 || got[0] != "dialback" {
					t.Errorf("%s-bound stream with p.example authenticated by %q, want dialback", dir, got)
				}
			}
		})
	}
}

// TestProsodyFederationExternal: each server trusts the other's
// certificate, so both streams authenticate with SASL EXTERNAL.
func TestProsodyFederationExternal(t *testing.T) {
	pp := startProsodyPeer(t, true)
	paula := pp.login(t, "paula")
	paula.Send(t, `<presence/>`)
	alice := loginUser(t, pp.a, "alice")
	chatBothWays(t, paula, alice)
	for _, dir := range []string{"in", "out"} {
		if got := s2sAuth(t, pp.a, dir, "p.example"); len(got) == 0 || got[0] != "external" {
			t.Errorf("%s-bound stream with p.example authenticated by %q, want external", dir, got)
		}
	}
}

// TestProsodyFederationPresence: a Prosody user and ours subscribe to
// each other's presence (RFC 6121 § 3 across the two servers, dialback
// streams): each roster ends with subscription "both", each sees the
// other's presence changes and going offline, a probe from Prosody is
// answered with the current presence, and when our user deletes her
// account, Prosody's user loses both subscriptions to her.
func TestProsodyFederationPresence(t *testing.T) {
	pp := startProsodyPeer(t, false)
	paula := pp.login(t, "paula")
	alice := loginUser(t, pp.a, "alice")
	online(t, paula)
	online(t, alice)
	subscribeTo(t, alice, paula)
	subscribeTo(t, paula, alice)
	if s := itemState(t, alice, "paula@p.example"); s != "both" {
		t.Errorf("alice's roster item for paula: %s, want both", s)
	}
	if s := itemState(t, paula, "alice@a.example"); s != "both" {
		t.Errorf("paula's roster item for alice: %s, want both", s)
	}
	show := func(want string) func(element) bool {
		return func(e element) bool {
			s, ok := e.child(xml.Name{Space: stanza.NSClient, Local: "show"})
			return e.start.Name.Local == "presence" && ok && s.text() == want
		}
	}
	alice.Send(t, `<presence><show>away</show></presence>`)
	if e := paula.Next(t, show("away")); e.attr("from") != alice.JID.String() {
		t.Errorf("away from %q", e.attr("from"))
	}
	paula.Send(t, `<presence><show>dnd</show></presence>`)
	if e := alice.Next(t, show("dnd")); e.attr("from") != paula.JID.String() {
		t.Errorf("dnd from %q", e.attr("from"))
	}
	// Offline and back: alice sees paula go; when paula comes back,
	// Prosody probes alice's presence and our server answers it.
	paula.Send(t, `<presence type="unavailable"/>`)
	alice.Next(t, isPresence(paula.JID.String(), "unavailable"))
	paula.Send(t, `<presence/>`)
	alice.Next(t, isPresence(paula.JID.String(), ""))
	paula.Next(t, show("away"))
	// alice deletes her account: paula sees her go, and Prosody drops
	// both subscriptions, as our unsubscribe and unsubscribed tell it
	// (RFC 6121 § 3.2.3 and § 3.3.3 at Prosody's end).
	alice.Send(t, `<iq type="set" id="rm"><query xmlns="jabber:iq:register"><remove/></query></iq>`)
	paula.Next(t, isPresence(alice.JID.String(), "unavailable"))
	paula.Next(t, isPush("alice@a.example", "none", false))
	if s := itemState(t, paula, "alice@a.example"); s != "none" && s != "absent" {
		t.Errorf("paula's roster item for alice after alice's account deletion: %s", s)
	}
}

// TestProsodyFederationRoomAndIQ: a Prosody user joins a room of our
// conference.a.example (Prosody opens a stream of its own to the
// subdomain, dialback again) and chats in it, the room archiving; IQs
// cross both ways: pings of each server, and a version query relayed to
// a user's client, whose error answer comes back.
func TestProsodyFederationRoomAndIQ(t *testing.T) {
	pp := startProsodyPeer(t, false)
	paula := pp.login(t, "paula")
	alice := loginUser(t, pp.a, "alice")

	for _, c := range []struct {
		from *testClient
		to   string
	}{{paula, "a.example"}, {alice, "p.example"}} {
		r := c.from.IQ(t, `<iq type="get" id="ping-`+c.to+`" to="`+c.to+`"><ping xmlns="urn:xmpp:ping"/></iq>`)
		if r.attr("type") != "result" || r.attr("from") != c.to {
			t.Errorf("ping of %s: %s from %q (%s)", c.to, r.attr("type"), r.attr("from"), stanzaErrorCondition(r))
		}
	}
	r := alice.IQ(t, `<iq type="get" id="v1" to="`+paula.JID.String()+`"><query xmlns="jabber:iq:version"/></iq>`)
	if r.attr("type") != "error" || stanzaErrorCondition(r) != "service-unavailable" || r.attr("from") != paula.JID.String() {
		t.Errorf("version of paula's client: %s (%s) from %q", r.attr("type"), stanzaErrorCondition(r), r.attr("from"))
	}

	room := "lounge@conference.a.example"
	if e := tryJoinRoom(t, alice, room+"/alice"); e.attr("type") == "error" {
		t.Fatalf("alice creates the room: %s", stanzaErrorCondition(e))
	}
	if r := configureRoom(t, alice, room, "muc#roomconfig_enablearchiving", "1"); r.attr("type") != "result" {
		t.Fatalf("configure: %s", stanzaErrorCondition(r))
	}
	if e := tryJoinRoom(t, paula, room+"/paula"); e.attr("type") == "error" {
		t.Fatalf("paula joins: %s", stanzaErrorCondition(e))
	}
	alice.Next(t, mucPresence(room+"/paula", ""))
	isGroupchat := func(text string) func(element) bool {
		return func(e element) bool { return e.attr("type") == "groupchat" && body(e) == text }
	}
	paula.Send(t, `<message to="`+room+`" type="groupchat"><body>hi from prosody</body></message>`)
	if m := alice.Next(t, isGroupchat("hi from prosody")); m.attr("from") != room+"/paula" {
		t.Fatalf("alice got it from %q", m.attr("from"))
	}
	paula.Next(t, isGroupchat("hi from prosody")) // the room's echo
	alice.Send(t, `<message to="`+room+`" type="groupchat"><body>hi from a</body></message>`)
	if m := paula.Next(t, isGroupchat("hi from a")); m.attr("from") != room+"/alice" {
		t.Fatalf("paula got it from %q", m.attr("from"))
	}
	if got, _ := mamQuery(t, alice, room, ""); strings.Join(got, "|") != "hi from prosody|hi from a" {
		t.Errorf("room archive: %q", got)
	}
	paula.Send(t, `<presence to="`+room+`/paula" type="unavailable"/>`)
	alice.Next(t, mucPresence(room+"/paula", "unavailable"))
	// The room's traffic took a stream of its own, to the subdomain.
	if out := pp.p.Output(); !strings.Contains(out, "Outgoing s2s connection p.example->conference.a.example complete") {
		t.Errorf("Prosody logged no stream to conference.a.example:\n%s", out)
	}
}
