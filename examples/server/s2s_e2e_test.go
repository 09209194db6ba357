package main

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Two-instance federation tests of the federation promises that s2s_test.go does
// not hold: unavailable
// presence on a cancelled subscription across servers, an upload link
// followed from the other server, and IQ relay of version and disco both
// ways with clients that answer.

// TestS2SCancelSendsUnavailable: a subscription cancelled across servers
// takes the presence it granted with it (RFC 6121 § 3.2.2, § 3.3.3). bob
// has alice's presence; alice cancels it with unsubscribed: bob gets
// unavailable from alice's resource, then the unsubscribed. alice has
// bob's presence; alice unsubscribes: b.example sends her unavailable
// from bob's resource.
func TestS2SCancelSendsUnavailable(t *testing.T) {
	p := startFedPair(t, false)
	alice := loginUser(t, p.a, "alice")
	bob := loginUser(t, p.b, "bob")
	online(t, alice)
	online(t, bob)
	subscribeTo(t, bob, alice) // bob sees alice
	alice.Send(t, `<presence to="bob@b.example" type="unsubscribed"/>`)
	bob.Next(t, isPresence(alice.JID.String(), "unavailable"))
	bob.Next(t, isPresence("alice@a.example", "unsubscribed"))
	if got := itemState(t, bob, "alice@a.example"); got != "none" {
		t.Errorf("bob's item for alice: %s", got)
	}

	subscribeTo(t, alice, bob) // alice sees bob
	alice.Send(t, `<presence to="bob@b.example" type="unsubscribe"/>`)
	alice.Next(t, isPresence(bob.JID.String(), "unavailable"))
	bob.Next(t, isPresence("alice@a.example", "unsubscribe"))
	if got := itemState(t, alice, "bob@b.example"); got != "none" {
		t.Errorf("alice's item for bob: %s", got)
	}
}

// TestS2SUploadLinkFollowedRemotely: alice@a.example uploads a file to
// upload.a.example and sends its link to bob@b.example; bob's HTTPS
// client, trusting a.example's certificate, fetches the file from the
// link as it arrived.
func TestS2SUploadLinkFollowedRemotely(t *testing.T) {
	p := startFedPair(t, false)
	alice := loginUser(t, p.a, "alice")
	bob := loginUser(t, p.b, "bob")
	const content = "a file for a remote friend"
	resp := alice.IQ(t, fmt.Sprintf(`<iq type="get" id="slot" to="upload.a.example"><request xmlns="urn:xmpp:http:upload:0" filename="note.txt" size="%d" content-type="text/plain"/></iq>`, len(content)))
	slot, ok := resp.child(xml.Name{Space: "urn:xmpp:http:upload:0", Local: "slot"})
	if !ok {
		t.Fatalf("slot: %s", stanzaErrorCondition(resp))
	}
	put, _ := slot.child(xml.Name{Space: "urn:xmpp:http:upload:0", Local: "put"})
	get, _ := slot.child(xml.Name{Space: "urn:xmpp:http:upload:0", Local: "get"})
	// a.example is no real name: both HTTPS clients reach it on loopback,
	// with TLS verified for a.example against its certificate.
	client := func(pool *tls.Config) *http.Client {
		_, port, _ := net.SplitHostPort(strings.TrimPrefix(p.a.HTTPSURL, "https://"))
		return &http.Client{Timeout: testTimeout, Transport: &http.Transport{
			TLSClientConfig: pool,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				if addr != net.JoinHostPort("a.example", port) {
					return nil, fmt.Errorf("dial %s: only a.example is reachable here", addr)
				}
				return (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
			},
		}}
	}
	req, _ := http.NewRequest(http.MethodPut, put.attr("url"), strings.NewReader(content))
	for _, h := range put.children() {
		req.Header.Set(h.attr("name"), h.text())
	}
	req.Header.Set("Content-Type", "text/plain")
	res, err := client(p.a.TLSConfig.Clone()).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %s", res.Status)
	}
	link := get.attr("url")
	alice.Send(t, `<message to="bob@b.example" type="chat"><body>`+xmlEscape(link)+`</body><x xmlns="jabber:x:oob"><url>`+xmlEscape(link)+`</url></x></message>`)
	m := bob.Next(t, isMessage)
	oob, ok := m.child(xml.Name{Space: "jabber:x:oob", Local: "x"})
	if !ok || body(m) != link {
		t.Fatalf("bob's message: body %q, oob %v", body(m), ok)
	}
	u, _ := oob.child(xml.Name{Space: "jabber:x:oob", Local: "url"})
	if _, err := url.Parse(u.text()); err != nil || u.text() != link {
		t.Fatalf("oob url %q, want %q", u.text(), link)
	}
	// bob's client: trusts a.example's certificate, nothing of b's.
	bobTLS := &tls.Config{RootCAs: p.a.CertPool, MinVersion: tls.VersionTLS12}
	res, err = client(bobTLS).Get(u.text())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || string(got) != content {
		t.Fatalf("GET by bob: %s %q", res.Status, got)
	}
}

// TestS2SIQRelayBothWays: clients on a.example and b.example ask each
// other for their software version (XEP-0092) and disco#info (XEP-0030);
// each request arrives from the asker's full JID, each answer the client
// wrote comes back whole from the answerer's full JID.
func TestS2SIQRelayBothWays(t *testing.T) {
	p := startFedPair(t, false)
	// Raw clients (iqroute_test.go) answer nothing by themselves.
	p.a.Register(t, "alice", "secret pass")
	p.b.Register(t, "bob", "secret pass")
	alice, aliceJID := rawLogin(t, p.a, "alice", "secret pass", "pc"), "alice@a.example/pc"
	bob, bobJID := rawLogin(t, p.b, "bob", "secret pass", "phone"), "bob@b.example/phone"
	type side struct {
		c    *rawClient
		jid  string
		name string
	}
	a, b := side{alice, aliceJID, "alice-client"}, side{bob, bobJID, "bob-client"}
	for i, tc := range []struct {
		ask, answer side
		query       string
		reply       string
		want        string
	}{
		{a, b, `<query xmlns='jabber:iq:version'/>`,
			`<query xmlns='jabber:iq:version'><name>bob-client</name><version>1.0</version></query>`, "bob-client"},
		{b, a, `<query xmlns='jabber:iq:version'/>`,
			`<query xmlns='jabber:iq:version'><name>alice-client</name><version>2.0</version></query>`, "alice-client"},
		{a, b, `<query xmlns='http://jabber.org/protocol/disco#info'/>`,
			`<query xmlns='http://jabber.org/protocol/disco#info'><identity category='client' type='pc' name='bob-client'/><feature var='jabber:iq:version'/></query>`, "bob-client"},
		{b, a, `<query xmlns='http://jabber.org/protocol/disco#info'/>`,
			`<query xmlns='http://jabber.org/protocol/disco#info'><identity category='client' type='pc' name='alice-client'/><feature var='jabber:iq:version'/></query>`, "alice-client"},
	} {
		id := fmt.Sprintf("q%d", i)
		tc.ask.c.write(t, `<iq type='get' id='`+id+`' to='`+tc.answer.jid+`'>`+tc.query+`</iq>`)
		q := tc.answer.c.nextIQ(t)
		if q.attr("id") != id || q.attr("type") != "get" || q.attr("from") != tc.ask.jid {
			t.Fatalf("%s: request arrived as type %q from %q", id, q.attr("type"), q.attr("from"))
		}
		tc.answer.c.write(t, `<iq type='result' id='`+id+`' to='`+tc.ask.jid+`'>`+tc.reply+`</iq>`)
		r := tc.ask.c.nextIQ(t)
		raw, _ := r.bytes()
		if r.attr("id") != id || r.attr("type") != "result" || r.attr("from") != tc.answer.jid || !strings.Contains(string(raw), tc.want) {
			t.Fatalf("%s: answer %s", id, raw)
		}
	}
}

// TestS2SRemoteDisco: a user of a.example discovers b.example from
// outside (XEP-0030): the server's identity and its services, the MUC
// service and its public rooms; a query for a node is item-not-found, and
// other IQs to the server itself stay service-unavailable.
func TestS2SRemoteDisco(t *testing.T) {
	p := startFedPair(t, false)
	alice := loginUser(t, p.a, "alice")
	bob := loginUser(t, p.b, "bob")
	if e := tryJoinRoom(t, bob, "lounge@conference.b.example/bob"); e.attr("type") == "error" {
		t.Fatalf("bob creates the room: %s", stanzaErrorCondition(e))
	}
	if r := configureRoom(t, bob, "lounge@conference.b.example", "muc#roomconfig_publicroom", "1"); r.attr("type") != "result" {
		t.Fatalf("configure: %s", stanzaErrorCondition(r))
	}
	for _, tc := range []struct {
		to, query, want, cond string
	}{
		{"b.example", `<query xmlns="http://jabber.org/protocol/disco#info"/>`, `category="server"`, ""},
		{"b.example", `<query xmlns="http://jabber.org/protocol/disco#items"/>`, `jid="conference.b.example"`, ""},
		{"conference.b.example", `<query xmlns="http://jabber.org/protocol/disco#info"/>`, `category="conference"`, ""},
		{"conference.b.example", `<query xmlns="http://jabber.org/protocol/disco#items"/>`, `jid="lounge@conference.b.example"`, ""},
		{"b.example", `<query xmlns="http://jabber.org/protocol/disco#info" node="x"/>`, "", "item-not-found"},
		{"b.example", `<query xmlns="jabber:iq:version"/>`, "", "service-unavailable"},
	} {
		r := alice.IQ(t, `<iq type="get" id="d" to="`+tc.to+`">`+tc.query+`</iq>`)
		raw, _ := r.bytes()
		if r.attr("from") != tc.to {
			t.Errorf("%s %s: answer from %q", tc.to, tc.query, r.attr("from"))
		}
		if tc.cond != "" {
			if stanzaErrorCondition(r) != tc.cond {
				t.Errorf("%s %s: %s, want %s", tc.to, tc.query, raw, tc.cond)
			}
			continue
		}
		if r.attr("type") != "result" || !strings.Contains(string(raw), tc.want) {
			t.Errorf("%s %s: %s, want %s", tc.to, tc.query, raw, tc.want)
		}
	}
}
