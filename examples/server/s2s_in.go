package main

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"os"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"
)

// Names of negotiation elements.
var (
	nameStartTLS    = xml.Name{Space: nsTLS, Local: "starttls"}
	nameProceed     = xml.Name{Space: nsTLS, Local: "proceed"}
	nameMechanisms  = xml.Name{Space: nsSASL, Local: "mechanisms"}
	nameSASLAuth    = xml.Name{Space: nsSASL, Local: "auth"}
	nameSASLSuccess = xml.Name{Space: nsSASL, Local: "success"}
	dbResult        = xml.Name{Space: nsDialback, Local: "result"}
	dbVerify        = xml.Name{Space: nsDialback, Local: "verify"}
)

// serveS2S accepts peers' connections on ln until it is closed: the
// STARTTLS port, or with directTLS the XEP-0368 port where TLS comes
// first. The c2s connection caps apply: a peer's connection counts against
// the global cap and, until authenticated, against its IP's cap of
// negotiating connections.
func (f *s2sService) serveS2S(ln net.Listener, directTLS bool) {
	srv := f.srv
	defer srv.wg.Done()
	acceptLoop(srv.ctx, ln, srv.acceptErrs, srv.sleep, func(conn net.Conn) {
		ticket, reason := srv.limiter.admit(clientKey(clientIP(conn)))
		if ticket == nil {
			srv.refused.add(reason)
			_ = conn.Close()
			return
		}
		f.mu.Lock()
		if f.down {
			f.mu.Unlock()
			ticket.release()
			_ = conn.Close()
			return
		}
		f.wg.Add(1)
		f.mu.Unlock()
		go func() {
			defer f.wg.Done()
			defer ticket.release()
			f.handleIn(conn, ticket, directTLS)
		}()
	})
}

// errS2SNotAuthorized is a stanza before authentication.
var errS2SNotAuthorized = errors.New("s2s: stanza before authentication")

// handleIn serves one inbound connection: STARTTLS (required), or with
// directTLS a TLS handshake first (XEP-0368), then SASL EXTERNAL or Server
// Dialback, then the peer's stanzas. Until the peer is authenticated,
// Config.NegotiationTimeout bounds the whole negotiation, TLS handshake
// included, and every step has the c2s negotiation byte budget. db:verify
// requests (the peer checking a key we sent) are answered on any stream
// after TLS.
func (f *s2sService) handleIn(conn net.Conn, ticket *connTicket, directTLS bool) {
	srv := f.srv
	defer conn.Close()
	ip := clientIP(conn)
	_ = conn.SetDeadline(time.Now().Add(srv.cfg.NegotiationTimeout))
	st := newS2SStream(conn, maxNegotiationBytes)
	f.mu.Lock()
	if f.down {
		f.mu.Unlock()
		return
	}
	f.in[st] = struct{}{}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.in, st)
		f.mu.Unlock()
	}()
	stopAfter := context.AfterFunc(srv.ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stopAfter()

	headerSent := false
	fail := func(err error) {
		se := s2sStreamError(err, st.lc)
		if srv.ctx.Err() != nil {
			se = stream.SystemShutdown
		}
		if !errors.Is(err, errS2SStreamEnd) && !errors.Is(err, io.EOF) {
			srv.failures.negotiationFailed("s2s", se.Err, ip)
		}
		_ = st.raw.SetWriteDeadline(time.Now().Add(errorWriteTimeout))
		if !headerSent {
			_ = st.writeHeader(srv.cfg.Domain, "", randomResource())
		}
		if errors.Is(err, errS2SStreamEnd) {
			_ = st.writeRaw([]byte(`</stream:stream>`))
			return
		}
		st.writeStreamError(se)
		lingerClose(conn)
	}
	// A new stream: header in, header and features out.
	open := func(features string) (from string, err error) {
		from, to, _, err := st.readHeader()
		if err != nil {
			return "", err
		}
		st.id = randomResource()
		local := srv.cfg.Domain // the answer names the domain asked for (RFC 6120 § 4.7.1)
		if srv.isOurs(to) {
			local = to
		}
		if err := st.writeHeader(local, from, st.id); err != nil {
			return "", err
		}
		headerSent = true
		if !srv.isOurs(to) {
			return "", stream.HostUnknown
		}
		return from, st.writeRaw([]byte(`<stream:features>` + features + `</stream:features>`))
	}
	if !directTLS {
		if _, err := open(`<starttls xmlns='` + nsTLS + `'><required/></starttls>`); err != nil {
			fail(err)
			return
		}
		e, err := st.next(maxNegotiationBytes)
		if err != nil {
			fail(err)
			return
		}
		if e.start.Name != nameStartTLS {
			fail(stream.PolicyViolation) // TLS first, always
			return
		}
		if err := st.writeRaw([]byte(`<proceed xmlns='` + nsTLS + `'/>`)); err != nil {
			return
		}
	}
	// The handshake reads through the byte budget (st.lc) under the
	// negotiation deadline: a peer that never completes it is dropped then.
	tc := tls.Server(st.lc, f.serverTLS(directTLS))
	if err := tc.HandshakeContext(srv.ctx); err != nil {
		srv.failures.negotiationFailed("s2s-tls", "tls-failed", ip)
		return
	}
	st.conn, headerSent = tc, false
	st.restart()
	peerCerts := tc.ConnectionState().PeerCertificates
	from, to, _, err := st.readHeader()
	if err == nil && !srv.isOurs(to) {
		err = stream.HostUnknown
	}
	if err != nil {
		fail(err)
		return
	}
	feats := `<dialback xmlns='` + nsDialbackFeat + `'><errors/></dialback>`
	externalOK := from != "" && f.certValidFor(peerCerts, from)
	if externalOK {
		feats = `<mechanisms xmlns='` + nsSASL + `'><mechanism>EXTERNAL</mechanism></mechanisms>` + feats
	}
	if err := st.answerHeader(to, from, &headerSent, feats); err != nil {
		fail(err)
		return
	}
	domain, kind, err := f.authenticateIn(st, to, from, externalOK, &headerSent)
	if err != nil {
		fail(err)
		return
	}
	_ = conn.SetDeadline(time.Time{})
	ticket.bound()
	srv.connLog.Info("s2s connected", "dir", "in", "domain", domain, "ip", ip.String(), "auth", kind, "tls", tlsKind(directTLS))
	defer srv.connLog.Info("s2s disconnected", "dir", "in", "domain", domain)
	for {
		_ = conn.SetReadDeadline(time.Now().Add(2 * s2sIdleClose))
		if srv.ctx.Err() != nil {
			// Shutting down: stopAfter's past deadline may have come
			// before the line above moved it to the future.
			fail(stream.SystemShutdown)
			return
		}
		e, err := st.next(maxStanzaWireBytes)
		if err == nil {
			err = f.inbound(st, domain, e)
		}
		if err != nil {
			if srv.ctx.Err() == nil && errIsTimeout(err) {
				err = stream.ConnectionTimeout
			}
			fail(err)
			return
		}
	}
}

// readHeaderOnly reads a restarted stream's header and returns its from.
func (st *s2sStream) readHeaderOnly() (string, error) {
	from, _, _, err := st.readHeader()
	return from, err
}

// answerHeader sends our header (a fresh id) and features. local is the
// domain of ours the peer's header named in to: a response header must
// say who answers (RFC 6120 § 4.7.1), on every restart of the stream.
func (st *s2sStream) answerHeader(local, to string, headerSent *bool, features string) error {
	st.id = randomResource()
	if err := st.writeHeader(local, to, st.id); err != nil {
		return err
	}
	*headerSent = true
	return st.writeRaw([]byte(`<stream:features>` + features + `</stream:features>`))
}

// authenticateIn runs the peer's authentication after TLS and returns the
// domain it proved: SASL EXTERNAL (its certificate valid for the stream's
// from) or a dialback key its authoritative server confirmed. db:verify
// requests are answered meanwhile. A dialback key that is refused ends the
// stream (not-authorized).
func (f *s2sService) authenticateIn(st *s2sStream, local, from string, externalOK bool, headerSent *bool) (domain, kind string, err error) {
	srv := f.srv
	for {
		e, err := st.next(maxNegotiationBytes)
		if err != nil {
			return "", "", err
		}
		switch e.start.Name {
		case dbVerify:
			if err := f.answerVerify(st, e); err != nil {
				return "", "", err
			}
		case nameSASLAuth:
			authz, _ := base64.StdEncoding.DecodeString(e.text())
			ok := externalOK && e.attr("mechanism") == "EXTERNAL" &&
				(len(authz) == 0 || string(authz) == from)
			if !ok {
				if err := st.writeRaw([]byte(`<failure xmlns='` + nsSASL + `'><not-authorized/></failure>`)); err != nil {
					return "", "", err
				}
				continue // dialback may follow
			}
			if err := st.writeRaw([]byte(`<success xmlns='` + nsSASL + `'/>`)); err != nil {
				return "", "", err
			}
			st.restart()
			*headerSent = false
			if _, err := st.readHeaderOnly(); err != nil {
				return "", "", err
			}
			return from, "external", st.answerHeader(local, from, headerSent, "")
		case dbResult:
			origin, to, key := e.attr("from"), e.attr("to"), e.text()
			if !srv.isOurs(to) {
				return "", "", stream.HostUnknown
			}
			oj, err := jid.Parse(origin)
			if err != nil || oj.Localpart() != "" || oj.Resourcepart() != "" || srv.isOurs(origin) {
				return "", "", stream.InvalidFrom
			}
			if from != "" && from != origin {
				return "", "", stream.InvalidFrom
			}
			ok, err := f.verifyDialback(srv.ctx, to, origin, st.id, key)
			if err != nil {
				srv.log.Info("s2s: dialback verification failed", "err", err)
			}
			typ := "invalid"
			if ok {
				typ = "valid"
			}
			if err := st.writeElement(simpleElement(nsDialback, "result", "", "from", to, "to", origin, "type", typ)); err != nil {
				return "", "", err
			}
			if !ok {
				return "", "", stream.NotAuthorized
			}
			return origin, "dialback", nil
		default:
			return "", "", errS2SNotAuthorized
		}
	}
}

// answerVerify answers a db:verify: valid only for a key we sent to the
// asking domain on that stream id, once.
func (f *s2sService) answerVerify(st *s2sStream, e element) error {
	receiving, originating, id := e.attr("from"), e.attr("to"), e.attr("id")
	ok := f.srv.isOurs(originating) &&
		f.keys.verify(dialbackID{receiving: receiving, originating: originating, streamID: id}, e.text())
	typ := "invalid"
	if ok {
		typ = "valid"
	}
	return st.writeElement(simpleElement(nsDialback, "verify", "", "from", originating, "to", receiving, "id", id, "type", typ))
}

// s2sStreamError is the stream error that ends an inbound stream after err.
func s2sStreamError(err error, lc *limitConn) stream.Error {
	var se stream.Error
	switch {
	case errors.Is(err, errS2SNotAuthorized):
		return stream.NotAuthorized
	case errors.Is(err, os.ErrDeadlineExceeded):
		return stream.ConnectionTimeout
	case errors.As(err, &se):
		return se
	}
	return streamErrorFor(err, lc)
}

// inbound checks one stanza of an authenticated peer and routes it. A
// from outside the authenticated domain is invalid-from, a to missing or
// malformed improper-addressing, a to not ours host-unknown: stream
// errors that end the stream.
func (f *s2sService) inbound(st *s2sStream, domain string, e element) error {
	srv := f.srv
	if e.start.Name == dbVerify {
		return f.answerVerify(st, e)
	}
	from, to, err := checkInbound(e, domain, srv.isOurs)
	if err != nil {
		return err
	}
	if f.s2sAllow != nil && !f.s2sAllow(domain, elementSize(e)) {
		srv.failures.stanzaRefused(e.start.Name.Local, stanza.PolicyViolation)
		srv.replyRemote(toClientNS(e), stanza.Error{Type: stanza.Wait, Condition: stanza.PolicyViolation})
		return nil
	}
	if e.start.Name.Local == "presence" && e.attr("type") == "subscribe" && f.limits != nil && !f.limits.allowSubscription(domain) {
		// Too many requests of this domain wait for local users' answers.
		srv.failures.stanzaRefused(e.start.Name.Local, stanza.PolicyViolation)
		srv.replyRemote(toClientNS(e), stanza.Error{Type: stanza.Wait, Condition: stanza.PolicyViolation})
		return nil
	}
	srv.routeFromRemote(toClientNS(e), from, to)
	return nil
}

// checkInbound checks a stanza (jabber:server) of a peer authenticated for
// domain and returns its addresses: from in domain (else invalid-from), to
// present and well-formed (else improper-addressing) and ours (else
// host-unknown); anything but message, presence and iq is
// unsupported-stanza-type.
func checkInbound(e element, domain string, ours func(string) bool) (from, to jid.JID, err error) {
	if e.start.Name.Space != nsServer {
		return from, to, stream.UnsupportedStanzaType
	}
	switch e.start.Name.Local {
	case "message", "presence", "iq":
	default:
		return from, to, stream.UnsupportedStanzaType
	}
	from, err = jid.Parse(e.attr("from"))
	if err != nil || from.Domainpart() != domain {
		return from, to, stream.InvalidFrom
	}
	to, err = jid.Parse(e.attr("to"))
	if err != nil || e.attr("to") == "" {
		return from, to, stream.ImproperAddressing
	}
	if !ours(to.Domainpart()) {
		return from, to, stream.HostUnknown
	}
	return from, to, nil
}

// elementSize is the size of e as counted against maxStanzaBytes.
func elementSize(e element) int {
	n := startSize(e.start)
	for _, tok := range e.inner {
		switch t := tok.(type) {
		case xml.StartElement:
			n += startSize(t)
		case xml.CharData:
			n += len(t)
		}
	}
	return n
}
