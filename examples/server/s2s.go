package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"chatbx.eu/privacy/examples/server/internal/web"
	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// Federation (RFC 6120 server-to-server streams). Off unless -s2s is set.
//
// Outbound: a stanza for a remote domain goes to that domain's queue
// (s2sOut, s2s_out.go), whose goroutine connects, secures the stream with
// STARTTLS, authenticates with SASL EXTERNAL when the peer's certificate
// is valid for its domain and the peer offers it, else with Server
// Dialback over TLS, and then writes the queue. A queue that cannot be
// delivered is bounced to its senders.
//
// Inbound: a peer's stream (s2s_in.go) must use STARTTLS and authenticate
// the same two ways; each stanza it sends must come from the domain it
// authenticated and go to ours, and is then routed like a local one.

// Limits of federation.
const (
	// maxS2SQueue is the most stanzas waiting for one remote domain; one
	// more is bounced with resource-constraint.
	maxS2SQueue = 1000
	// maxS2SDomains bounds the remote domains with a queue at once.
	maxS2SDomains = 1000
	// maxS2SPendingIQs bounds the IQs of local users waiting for a remote
	// answer.
	maxS2SPendingIQs = 10000
	// s2sIdleClose is how long an outbound stream stays open unused.
	s2sIdleClose = 5 * time.Minute
	// defaultS2SPort is the port tried when DNS has no SRV record.
	defaultS2SPort = "5269"
)

// defaultS2SRetry are the delays between connection attempts to a
// remote domain before its queue is bounced.
var defaultS2SRetry = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second}

// s2sService is the federation state of a server.
type s2sService struct {
	srv   *Server
	hosts map[string]s2sTarget // -s2s-hosts: domain → address
	roots *x509.CertPool       // trusted for peer certificates (system + -s2s-ca)
	keys  *dialbackKeys
	retry []time.Duration

	// s2sAllow, if set, is asked for every inbound stanza of n bytes from
	// an authenticated remote domain; false refuses the stanza with
	// policy-violation (per-domain rate limits, s2slimit.go). nil allows.
	s2sAllow func(domain string, n int) bool
	// limits holds the per-remote-domain limits behind s2sAllow and the
	// pending subscription requests (s2slimit.go).
	limits *domainLimiter

	// resolver looks up SRV records (s2s_dns.go); nil means
	// net.DefaultResolver. rnd(n), in [0, n), orders SRV targets of equal
	// priority by weight; nil means math/rand.
	resolver srvResolver
	rnd      func(int) int

	ln    net.Listener // -s2s: STARTTLS
	tlsLn net.Listener // -s2s-tls: direct TLS (XEP-0368); nil when off

	mu     sync.Mutex
	out    map[string]*s2sOut      // "our-domain remote-domain" → queue
	in     map[*s2sStream]struct{} // inbound streams, for shutdown
	iqs    map[s2sIQKey]time.Time  // IQs sent out, awaiting an answer
	relays map[s2sIQKey]time.Time  // remote IQs relayed to local sessions
	// occupants are the remote users in our rooms (s2s_muc.go).
	occupants map[string]*session
	down      bool
	wg        sync.WaitGroup
}

// s2sIQKey names an IQ between a local and a remote full JID.
type s2sIQKey struct{ local, remote, id string }

// newS2S sets up federation for srv (cfg.S2S is set).
func newS2S(srv *Server) (*s2sService, error) {
	hosts, err := parseS2SHosts(srv.cfg.S2SHosts)
	if err != nil {
		return nil, err
	}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if srv.cfg.S2SCA != "" {
		pem, err := os.ReadFile(srv.cfg.S2SCA)
		if err != nil {
			return nil, fmt.Errorf("-s2s-ca: %w", err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, errors.New("-s2s-ca: no PEM certificate in the file")
		}
	}
	retry := srv.cfg.s2sRetry
	if retry == nil {
		retry = defaultS2SRetry
	}
	limits := newDomainLimiter(srv.cfg.domainLimits(srv.log))
	return &s2sService{
		s2sAllow: limits.allow,
		limits:   limits,
		srv:      srv,
		hosts:    hosts,
		roots:    roots,
		keys:     newDialbackKeys(),
		retry:    retry,
		resolver: srv.cfg.s2sResolver,
		out:      make(map[string]*s2sOut),
		in:       make(map[*s2sStream]struct{}),
		iqs:      make(map[s2sIQKey]time.Time),
		relays:   make(map[s2sIQKey]time.Time),

		occupants: make(map[string]*session),
	}, nil
}

// isOurs reports whether domain is served here: our domain or one of its
// service subdomains.
func (srv *Server) isOurs(domain string) bool {
	d := srv.cfg.Domain
	return domain == d || domain == conferenceHost(d) || domain == uploadHost(d)
}

// isRemote reports whether a stanza to j leaves the server (federation on,
// a domain not ours).
func (srv *Server) isRemote(j jid.JID) bool {
	return srv.s2s != nil && j.Domainpart() != "" && !srv.isOurs(j.Domainpart())
}

// certValidFor reports whether cert (with intermediates) chains to a
// trusted root and names domain (RFC 6125 DNS-ID).
func (f *s2sService) certValidFor(certs []*x509.Certificate, domain string) bool {
	if len(certs) == 0 {
		return false
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{
		DNSName:       domain,
		Roots:         f.roots,
		Intermediates: inter,
		CurrentTime:   f.srv.cfg.Now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	return err == nil
}

// alpnXMPPServer is the ALPN protocol of direct TLS server streams
// (XEP-0368 § 3).
const alpnXMPPServer = "xmpp-server"

// clientTLS is the TLS configuration of an outbound stream to domain: our
// certificate offered for SASL EXTERNAL, the peer's checked by us after
// the handshake (an invalid one means dialback instead of EXTERNAL). SNI
// names the remote domain (not the SRV target), and direct TLS asks for
// ALPN xmpp-server.
func (f *s2sService) clientTLS(domain string, directTLS bool) *tls.Config {
	c := &tls.Config{
		ServerName:         domain,
		Certificates:       f.srv.tls.Certificates,
		MinVersion:         tls.VersionTLS12,
		CipherSuites:       aeadSuites,
		InsecureSkipVerify: true, // checked in certValidFor; dialback otherwise
	}
	if directTLS {
		c.NextProtos = []string{alpnXMPPServer}
	}
	return c
}

// errS2SUnknownSNI refuses a direct TLS handshake for a name not served here.
var errS2SUnknownSNI = errors.New("s2s: TLS server name not served here")

// serverTLS asks inbound peers for a certificate (for SASL EXTERNAL). On
// the direct TLS port (XEP-0368) it speaks ALPN xmpp-server only (a peer
// offering other protocols alone fails the handshake) and refuses an SNI
// name that is not one of our domains; without SNI the stream's to
// decides, as after STARTTLS.
func (f *s2sService) serverTLS(directTLS bool) *tls.Config {
	c := f.srv.tls.Clone()
	c.ClientAuth = tls.RequestClientCert
	if directTLS {
		c.NextProtos = []string{alpnXMPPServer}
		c.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			if hello.ServerName != "" && !f.srv.isOurs(hello.ServerName) {
				return nil, errS2SUnknownSNI
			}
			return nil, nil
		}
	}
	return c
}

// send queues the stanza e (jabber:client, from a local JID) for the
// remote domain of to. A full queue, or too many remote domains, bounces
// e at once.
func (f *s2sService) send(e element, to jid.JID) {
	domain := to.Domainpart()
	// One stream per pair of domains: a stream authenticates one domain of
	// ours (XEP-0220 § 2.1), and a room's stanzas come from the
	// conference subdomain.
	from := f.srv.cfg.Domain
	if j, err := jid.Parse(e.attr("from")); err == nil && f.srv.isOurs(j.Domainpart()) {
		from = j.Domainpart()
	}
	key := from + " " + domain
	f.mu.Lock()
	if f.down {
		f.mu.Unlock()
		f.srv.bounce(e, stanza.RemoteServerTimeout)
		return
	}
	q := f.out[key]
	if q == nil {
		if len(f.out) >= maxS2SDomains {
			f.mu.Unlock()
			f.srv.bounce(e, stanza.ResourceConstraint)
			return
		}
		q = newS2SOut(f, from, domain)
		f.out[key] = q
		f.wg.Add(1)
		go q.run()
	}
	ok := q.push(e)
	f.mu.Unlock()
	if !ok {
		f.srv.bounce(e, stanza.ResourceConstraint)
	}
}

// noteIQ records an IQ get/set from a local full JID to a remote one, so
// that only its answer is let back in. false when too many are pending.
func (f *s2sService) noteIQ(tab map[s2sIQKey]time.Time, k s2sIQKey) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.srv.cfg.Now()
	if len(tab) >= maxS2SPendingIQs {
		for k, t := range tab { // expire what waited longer than a relay may
			if now.Sub(t) > relayTimeout {
				delete(tab, k)
			}
		}
		if len(tab) >= maxS2SPendingIQs {
			return false
		}
	}
	tab[k] = now
	return true
}

// takeIQ removes k from tab and reports whether it was there.
func (f *s2sService) takeIQ(tab map[s2sIQKey]time.Time, k s2sIQKey) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := tab[k]
	delete(tab, k)
	return ok
}

// shutdown closes the listener and every stream; queued stanzas are
// bounced.
func (f *s2sService) shutdown() {
	if f.limits != nil {
		defer f.limits.stop() // logs the refusals still counted
	}
	f.mu.Lock()
	f.down = true
	if f.ln != nil {
		_ = f.ln.Close()
	}
	if f.tlsLn != nil {
		_ = f.tlsLn.Close()
	}
	outs := make([]*s2sOut, 0, len(f.out))
	for _, q := range f.out {
		outs = append(outs, q)
	}
	ins := make([]*s2sStream, 0, len(f.in))
	for st := range f.in {
		ins = append(ins, st)
	}
	for _, s := range f.occupants {
		s.finish()
	}
	f.mu.Unlock()
	for _, q := range outs {
		q.stop()
	}
	for _, st := range ins {
		_ = st.raw.SetReadDeadline(time.Unix(1, 0))
	}
	f.wg.Wait()
}

// bounce answers the stanza e, which could not be delivered, with a stanza
// error cond from its addressee to its local sender (RFC 6120 § 8.3.1).
// Errors and presence other than subscriptions are not bounced.
func (srv *Server) bounce(e element, cond stanza.Condition) {
	typ := e.attr("type")
	if typ == "error" || e.start.Name.Local == "presence" && typ != "subscribe" {
		return
	}
	from, err := jid.Parse(e.attr("from"))
	if err != nil || !srv.isLocalUser(from) {
		return
	}
	errType := stanza.Cancel
	if cond == stanza.RemoteServerTimeout || cond == stanza.ResourceConstraint {
		errType = stanza.Wait
	}
	out := e.withAttr("from", e.attr("to")).withAttr("to", from.String()).withAttr("type", "error")
	if e.start.Name.Local == "iq" {
		out = out.withInner(nil)
	}
	toks := errorTokens(stanza.Error{Type: errType, Condition: cond})
	out = out.withInner(append(out.inner[:len(out.inner):len(out.inner)], toks...))
	for _, r := range srv.sessions.lookup(from) {
		r.send(out)
	}
}

// s2sCtx is the context of federation work: the server's.
func (f *s2sService) ctx() context.Context { return f.srv.ctx }

// errorTokens is the stanza error se as tokens.
func errorTokens(se stanza.Error) []xml.Token {
	toks, _ := xmlstream.ReadAll(se.TokenReader())
	return toks
}

// S2SAddr is the address of the server-to-server listener ("" if
// federation is off).
func (srv *Server) S2SAddr() string {
	if srv.s2s == nil {
		return ""
	}
	return srv.s2s.ln.Addr().String()
}

// S2STLSAddr is the address of the direct TLS server-to-server listener
// (XEP-0368; "" if off).
func (srv *Server) S2STLSAddr() string {
	if srv.s2s == nil || srv.s2s.tlsLn == nil {
		return ""
	}
	return srv.s2s.tlsLn.Addr().String()
}

// s2sPrivacyItem is the /privacy line on federation: off unless the
// operator enabled it; when on, what leaves the server and what is kept.
func (srv *Server) s2sPrivacyItem() web.PrivacyItem {
	if srv.s2s == nil {
		return web.PrivacyItem{Data: "federation (exchanging messages with users of other servers)",
			Kept: "off on this server: nothing is sent to other servers, and they cannot reach you", Job: "none (operator flag -s2s)"}
	}
	direct := "; other servers connect with STARTTLS"
	if srv.s2s.tlsLn != nil {
		direct = "; other servers connect with STARTTLS or with TLS from the first byte (direct TLS, XEP-0368)"
	}
	return web.PrivacyItem{Data: fmt.Sprintf("federation is on: stanzas to users of other servers are sent to their server over TLS, never in plaintext (STARTTLS, or direct TLS where their server offers it)%s, waiting in memory (at most %d per server) until delivered or returned to you as undeliverable; the connection log records which servers connected (domain, time, anonymized IP), never content; no list of their users is kept beyond your roster and the present occupants of rooms; when you delete your account, each contact, here or on another server, is told (unsubscribe, unsubscribed, unavailable) so that their server forgets the relationship", direct, maxS2SQueue),
		Kept: "in memory until delivered; connection log lines 24 hours", Job: "s2s queues, xmpp-log"}
}
