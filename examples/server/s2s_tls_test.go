package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmpp/stanza"
)

// Direct TLS federation (XEP-0368): the -s2s-tls listener, tls:// entries
// of -s2s-hosts, and the order of SRV targets of both kinds.

// startFedPairTLS is startFedPair with direct TLS listeners on both
// servers, each reaching the other's through tls:// entries of
// -s2s-hosts (the STARTTLS listeners stay open, unused).
func startFedPairTLS(t *testing.T, trust bool) *fedPair {
	t.Helper()
	aTLS, bTLS := listenLoopback(t), listenLoopback(t)
	hosts := func(peer, addr string) string {
		return peer + "=tls://" + addr + ",conference." + peer + "=tls://" + addr
	}
	return startFedPairWith(t, trust, func(c *Config) {
		c.S2STLS, c.s2sTLSListener = aTLS.Addr().String(), aTLS
		c.S2SHosts = hosts("b.example", bTLS.Addr().String())
	}, func(c *Config) {
		c.S2STLS, c.s2sTLSListener = bTLS.Addr().String(), bTLS
		c.S2SHosts = hosts("a.example", aTLS.Addr().String())
	})
}

// TestS2SDirectTLS: two servers federating over their direct TLS ports
// only, with SASL EXTERNAL (each trusts the other's certificate) and with
// dialback (whose verification connects back over direct TLS too): chat
// both ways, and every s2s stream in both connection logs is a direct TLS
// one authenticated the expected way.
func TestS2SDirectTLS(t *testing.T) {
	for _, tc := range []struct {
		name  string
		trust bool
		auth  string
	}{
		{"external", true, "external"},
		{"dialback", false, "dialback"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startFedPairTLS(t, tc.trust)
			alice := loginUser(t, p.a, "alice")
			bob := loginUser(t, p.b, "bob")
			alice.Send(t, `<message to="bob@b.example" type="chat"><body>over direct tls</body></message>`)
			if m := bob.Next(t, isMessage); body(m) != "over direct tls" {
				t.Fatalf("bob got %q", body(m))
			}
			bob.Send(t, `<message to="alice@a.example" type="chat"><body>and back</body></message>`)
			if m := alice.Next(t, isMessage); body(m) != "and back" {
				t.Fatalf("alice got %q", body(m))
			}
			for _, ts := range []*testServer{p.a, p.b} {
				for _, dir := range []string{"in", "out"} {
					lines := s2sConnected(t, ts, dir)
					if len(lines) == 0 {
						t.Errorf("%s: no %s s2s stream logged:\n%s", ts.Domain, dir, connLog(t, ts))
					}
					for _, line := range lines {
						if !strings.Contains(line, `"tls":"direct"`) || !strings.Contains(line, `"auth":"`+tc.auth+`"`) {
							t.Errorf("%s: s2s stream not direct TLS with %s: %s", ts.Domain, tc.auth, line)
						}
					}
				}
			}
		})
	}
}

// s2sConnected returns the "s2s connected" lines of ts's connection log
// for direction dir ("in" or "out").
func s2sConnected(t *testing.T, ts *testServer, dir string) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(connLog(t, ts), "\n") {
		if strings.Contains(line, `"s2s connected"`) && strings.Contains(line, fmt.Sprintf(`"dir":%q`, dir)) {
			out = append(out, line)
		}
	}
	return out
}

// fakeSRV is an srvResolver answering from a table keyed
// "_service._proto.name"; other names are not found. It counts lookups.
type fakeSRV struct {
	mu      sync.Mutex
	recs    map[string][]*net.SRV
	lookups atomic.Int32
}

// set replaces the table (the servers may be looking up meanwhile).
func (f *fakeSRV) set(recs map[string][]*net.SRV) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recs = recs
}

func (f *fakeSRV) LookupSRV(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
	f.lookups.Add(1)
	key := "_" + service + "._" + proto + "." + name
	f.mu.Lock()
	recs, ok := f.recs[key]
	f.mu.Unlock()
	if !ok {
		return "", nil, &net.DNSError{Err: "no such host", Name: key, IsNotFound: true}
	}
	return key, recs, nil
}

// srvAt is an SRV record for the loopback address of addr (host:port).
func srvAt(t *testing.T, addr string, prio, weight uint16) *net.SRV {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	var p uint16
	if _, err := fmt.Sscan(port, &p); err != nil {
		t.Fatal(err)
	}
	return &net.SRV{Target: host + ".", Port: p, Priority: prio, Weight: weight}
}

// TestS2SSRVPrefersDirectTLS: a.example finds b.example through SRV
// records only (a fake resolver): _xmpps-server and _xmpp-server at equal
// priority, both reachable; a connects to the direct TLS one.
func TestS2SSRVPrefersDirectTLS(t *testing.T) {
	bTLS := listenLoopback(t)
	res := &fakeSRV{}
	p := startFedPairWith(t, false, func(c *Config) {
		c.S2SHosts = "" // DNS (the fake) for b.example
		c.s2sResolver = res
	}, func(c *Config) {
		c.S2STLS, c.s2sTLSListener = bTLS.Addr().String(), bTLS
	})
	res.set(map[string][]*net.SRV{
		"_xmpp-server._tcp.b.example":  {srvAt(t, p.bS2S, 5, 0)},
		"_xmpps-server._tcp.b.example": {srvAt(t, bTLS.Addr().String(), 5, 0)},
	})
	alice := loginUser(t, p.a, "alice")
	bob := loginUser(t, p.b, "bob")
	alice.Send(t, `<message to="bob@b.example" type="chat"><body>via srv</body></message>`)
	if m := bob.Next(t, isMessage); body(m) != "via srv" {
		t.Fatalf("bob got %q", body(m))
	}
	out := s2sConnected(t, p.a, "out")
	if len(out) != 1 || !strings.Contains(out[0], `"domain":"b.example"`) || !strings.Contains(out[0], `"tls":"direct"`) {
		t.Errorf("a's outbound streams, want one over direct TLS: %q", out)
	}
	if res.lookups.Load() == 0 {
		t.Error("the resolver was never asked")
	}
}

// TestS2SResolveOrder: the addresses tried for a domain, from -s2s-hosts
// or from both kinds of SRV records (RFC 6120 § 3.2.1, RFC 2782, XEP-0368
// § 3): by priority, direct TLS first at equal priority, by weight within
// one priority and kind (rnd picks the lowest or the highest draw), a lone
// "." target turns its kind off, and no record at all means the domain on
// 5269.
func TestS2SResolveOrder(t *testing.T) {
	srv := func(target string, port, prio, weight uint16) *net.SRV {
		return &net.SRV{Target: target, Port: port, Priority: prio, Weight: weight}
	}
	low := func(int) int { return 0 }
	high := func(n int) int { return n - 1 }
	for _, tc := range []struct {
		name        string
		hosts       string
		xmpps, xmpp []*net.SRV
		rnd         func(int) int
		want        string // targets joined by " ", or "error"
	}{
		{name: "no records", want: "d.example:5269"},
		{name: "hosts entry wins", hosts: "d.example=tls://127.0.0.1:1",
			xmpp: []*net.SRV{srv("x.example.", 5269, 0, 0)}, want: "tls://127.0.0.1:1"},
		{name: "hosts entry starttls", hosts: "d.example=127.0.0.1:2", want: "127.0.0.1:2"},
		{name: "starttls by priority",
			xmpp: []*net.SRV{srv("b.example.", 5269, 20, 0), srv("a.example.", 5269, 10, 0)},
			want: "a.example:5269 b.example:5269"},
		{name: "direct first at equal priority",
			xmpps: []*net.SRV{srv("t.example.", 5270, 10, 0)},
			xmpp:  []*net.SRV{srv("s.example.", 5269, 10, 0)},
			want:  "tls://t.example:5270 s.example:5269"},
		{name: "priority before kind",
			xmpps: []*net.SRV{srv("t.example.", 5270, 20, 0)},
			xmpp:  []*net.SRV{srv("s.example.", 5269, 10, 0)},
			want:  "s.example:5269 tls://t.example:5270"},
		{name: "interleaved",
			xmpps: []*net.SRV{srv("t2.example.", 5270, 30, 0), srv("t1.example.", 5270, 10, 0)},
			xmpp:  []*net.SRV{srv("s1.example.", 5269, 10, 0), srv("s2.example.", 5269, 20, 0)},
			want:  "tls://t1.example:5270 s1.example:5269 s2.example:5269 tls://t2.example:5270"},
		{name: "weight low draw",
			xmpp: []*net.SRV{srv("light.example.", 1, 0, 10), srv("heavy.example.", 2, 0, 90)},
			rnd:  low, want: "light.example:1 heavy.example:2"},
		{name: "weight high draw",
			xmpp: []*net.SRV{srv("light.example.", 1, 0, 10), srv("heavy.example.", 2, 0, 90)},
			rnd:  high, want: "heavy.example:2 light.example:1"},
		{name: "weight zero first on a low draw",
			xmpp: []*net.SRV{srv("w5.example.", 1, 0, 5), srv("w0.example.", 2, 0, 0)},
			rnd:  low, want: "w0.example:2 w5.example:1"},
		{name: "weight zero last on a high draw",
			xmpp: []*net.SRV{srv("w0.example.", 2, 0, 0), srv("w5.example.", 1, 0, 5)},
			rnd:  high, want: "w5.example:1 w0.example:2"},
		{name: "direct off, starttls on",
			xmpps: []*net.SRV{srv(".", 0, 0, 0)},
			xmpp:  []*net.SRV{srv("s.example.", 5269, 0, 0)},
			want:  "s.example:5269"},
		{name: "starttls off, direct on",
			xmpps: []*net.SRV{srv("t.example.", 5270, 0, 0)},
			xmpp:  []*net.SRV{srv(".", 0, 0, 0)},
			want:  "tls://t.example:5270"},
		{name: "no federation", xmpp: []*net.SRV{srv(".", 0, 0, 0)}, want: "error"},
		{name: "no federation either kind",
			xmpps: []*net.SRV{srv(".", 0, 0, 0)}, xmpp: []*net.SRV{srv(".", 0, 0, 0)}, want: "error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := &fakeSRV{recs: map[string][]*net.SRV{}}
			if tc.xmpps != nil {
				res.recs["_xmpps-server._tcp.d.example"] = tc.xmpps
			}
			if tc.xmpp != nil {
				res.recs["_xmpp-server._tcp.d.example"] = tc.xmpp
			}
			hosts, err := parseS2SHosts(tc.hosts)
			if err != nil {
				t.Fatal(err)
			}
			rnd := tc.rnd
			if rnd == nil {
				rnd = low
			}
			f := &s2sService{hosts: hosts, resolver: res, rnd: rnd}
			got, err := f.resolve(context.Background(), "d.example")
			if tc.want == "error" {
				if !errors.Is(err, errS2SRefused) {
					t.Fatalf("got %v, %v; want errS2SRefused", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var s []string
			for _, g := range got {
				s = append(s, g.String())
			}
			if strings.Join(s, " ") != tc.want {
				t.Errorf("got %q, want %q", strings.Join(s, " "), tc.want)
			}
			if tc.hosts != "" && res.lookups.Load() != 0 {
				t.Error("DNS asked for a domain of -s2s-hosts")
			}
		})
	}
}

// TestWeightedOrderSpread: over many draws, a record of weight 90 comes
// first about nine times as often as one of weight 10 (RFC 2782); the
// draws are a fixed sequence, not chance.
func TestWeightedOrderSpread(t *testing.T) {
	recs := []*net.SRV{{Target: "light.", Weight: 10}, {Target: "heavy.", Weight: 90}}
	first := map[string]int{}
	for i := range 101 {
		draw := i
		got := weightedOrder(recs, func(n int) int { return draw % n })
		first[got[0].Target]++
		if len(got) != 2 || got[0] == got[1] {
			t.Fatalf("draw %d: %v", i, got)
		}
	}
	// Draws 0..10 pick light (running sum 10 reaches them), 11..100 heavy.
	if first["light."] != 11 || first["heavy."] != 90 {
		t.Errorf("first picks: %v", first)
	}
}

// TestS2SDirectTLSRefused: the direct TLS port takes only TLS for one of
// our names with ALPN xmpp-server (or none), and a peer that does not
// finish its handshake is dropped at the negotiation deadline, as on the
// STARTTLS port.
func TestS2SDirectTLSRefused(t *testing.T) {
	ts := startTestServer(t, withConfig(func(c *Config) {
		c.Domain = "b.example"
		c.S2S, c.S2STLS = "127.0.0.1:0", "127.0.0.1:0"
		c.NegotiationTimeout = 300 * time.Millisecond
	}))
	addr := ts.S2STLSAddr()
	if addr == "" {
		t.Fatal("no direct TLS listener")
	}
	for _, tc := range []struct {
		name   string
		sni    string
		protos []string
		ok     bool
	}{
		{"ours with alpn", "b.example", []string{"xmpp-server"}, true},
		{"service subdomain", "conference.b.example", []string{"xmpp-server"}, true},
		{"no alpn", "b.example", nil, true},
		{"client alpn", "b.example", []string{"xmpp-client"}, false},
		{"http alpn", "b.example", []string{"h2", "http/1.1"}, false},
		{"other domain", "evil.example", []string{"xmpp-server"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &net.Dialer{Timeout: testTimeout}
			c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{
				ServerName: tc.sni, NextProtos: tc.protos, InsecureSkipVerify: true,
			})
			if c != nil {
				defer c.Close()
			}
			if tc.ok != (err == nil) {
				t.Fatalf("handshake error %v, want success %v", err, tc.ok)
			}
			if err == nil && len(tc.protos) > 0 && c.ConnectionState().NegotiatedProtocol != alpnXMPPServer {
				t.Errorf("ALPN %q", c.ConnectionState().NegotiatedProtocol)
			}
		})
	}
	// Silent peers: nothing at all, half a ClientHello, plaintext XML.
	for _, tc := range []struct{ name, send string }{
		{"silent", ""},
		{"half hello", "\x16\x03\x01\x00\x80\x01\x00\x00\x7c\x03\x03"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.DialTimeout("tcp", addr, testTimeout)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(testTimeout))
			if _, err := io.WriteString(c, tc.send); err != nil {
				t.Fatal(err)
			}
			// The server closes at its 300 ms deadline; the test's own
			// deadline only catches a server that never does.
			n, err := io.Copy(io.Discard, c)
			if err != nil {
				t.Fatalf("connection not closed by the server (%d bytes read): %v", n, err)
			}
		})
	}
	t.Run("plaintext stream", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", addr, testTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(testTimeout))
		_, _ = io.WriteString(c, `<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='b.example' version='1.0'>`)
		b, _ := io.ReadAll(c)
		if strings.Contains(string(b), "<stream") {
			t.Errorf("the direct TLS port answered plaintext with XML: %q", b)
		}
	})
}

// TestS2SDirectTLSRemoteTimeout: a direct TLS target that accepts and
// never answers the handshake makes the queue bounce with
// remote-server-timeout after the negotiation deadline, as a mute
// STARTTLS target does (TestS2SRemoteTimeout).
func TestS2SDirectTLSRemoteTimeout(t *testing.T) {
	ln := listenLoopback(t)
	held := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held <- c // open and silent until the test ends
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		for {
			select {
			case c := <-held:
				_ = c.Close()
			default:
				return
			}
		}
	})
	ts := startTestServer(t, withConfig(func(c *Config) {
		c.Domain = "a.example"
		c.S2S, c.S2SHosts = "127.0.0.1:0", "mute.example=tls://"+ln.Addr().String()
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

// FuzzOrderSRV: SRV records come from DNS, which anyone can fill. From
// any records and any random draws, orderSRV returns every usable record
// once, by priority, direct TLS before STARTTLS at equal priority, and
// never panics.
func FuzzOrderSRV(f *testing.F) {
	f.Add([]byte{0, 10, 1, 0, 0, 90, 0, 1, 5, 0, 1, 2}, []byte{3, 7, 200})
	f.Add([]byte{1, 0, 0, 0, 1, 0, 1, 0}, []byte{})
	f.Fuzz(func(t *testing.T, data, draws []byte) {
		var direct, plain []*net.SRV
		for i := 0; i+4 <= len(data) && i < 4*64; i += 4 {
			r := &net.SRV{
				Target:   fmt.Sprintf("h%d.example.", i),
				Port:     uint16(i),
				Priority: uint16(data[i] % 4),
				Weight:   uint16(data[i+1]) << (data[i+3] % 9),
			}
			if data[i+2]%2 == 1 {
				direct = append(direct, r)
			} else {
				plain = append(plain, r)
			}
		}
		k := 0
		rnd := func(n int) int {
			if n <= 0 {
				t.Fatalf("rnd(%d)", n)
			}
			v := 0
			if len(draws) > 0 {
				v = int(draws[k%len(draws)]) + 256*k
				k++
			}
			return (v%n + n) % n
		}
		got := orderSRV(direct, plain, rnd)
		if len(got) != len(direct)+len(plain) {
			t.Fatalf("%d targets from %d records", len(got), len(direct)+len(plain))
		}
		prio := map[string]uint16{}
		for _, r := range append(direct[:len(direct):len(direct)], plain...) {
			prio[net.JoinHostPort(strings.TrimSuffix(r.Target, "."), fmt.Sprint(r.Port))] = r.Priority
		}
		seen := map[string]bool{}
		for i, g := range got {
			p, ok := prio[g.addr]
			if !ok || seen[g.addr] {
				t.Fatalf("target %v unknown or repeated", g)
			}
			seen[g.addr] = true
			if i == 0 {
				continue
			}
			q := prio[got[i-1].addr]
			if q > p || q == p && !got[i-1].directTLS && g.directTLS {
				t.Fatalf("order: %v (%d) after %v (%d)", g, p, got[i-1], q)
			}
		}
	})
}
