package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"chatbx.eu/privacy/account"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"
)

// serveC2S accepts client connections until ln is closed. A connection
// over the caps (Config.MaxConns open connections, Config.MaxConnsPerIP
// negotiating ones per client key) is refused at once: counted, logged in a
// summary line a second at most, and closed (on the STARTTLS port after a
// resource-constraint stream error, which costs no TLS handshake).
func (srv *Server) serveC2S(ln net.Listener, directTLS bool) {
	defer srv.wg.Done()
	acceptLoop(srv.ctx, ln, srv.acceptErrs, srv.sleep, func(conn net.Conn) {
		ticket, reason := srv.limiter.admit(clientKey(clientIP(conn)))
		if ticket == nil {
			srv.refused.add(reason)
			refuse(conn, directTLS, srv.cfg.Domain)
			return
		}
		srv.wg.Add(1)
		go func() {
			defer srv.wg.Done()
			defer ticket.release()
			srv.handleConn(conn, directTLS, ticket)
		}()
	})
}

// refuse closes a connection over a cap; on a plaintext port it first
// writes a stream header and a resource-constraint stream error.
func refuse(conn net.Conn, directTLS bool, domain string) {
	defer conn.Close()
	if directTLS {
		return
	}
	_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
	_ = writeRawStreamError(conn, domain, stream.ResourceConstraint)
}

// writeRawStreamError writes a stream header, the stream error and the
// stream end to w: the way to send a stream error before the server's own
// stream header went out (RFC 6120 § 4.9.1.2).
func writeRawStreamError(w io.Writer, domain string, se stream.Error) error {
	var b bytes.Buffer
	b.WriteString(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' id='`)
	b.WriteString(randomResource())
	b.WriteString(`' from='`)
	_ = xml.EscapeText(&b, []byte(domain))
	b.WriteString(`'><stream:error><`)
	b.WriteString(se.Err) // one of mellium's fixed condition names
	b.WriteString(` xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>`)
	_, err := w.Write(b.Bytes())
	return err
}

// clientIP is the address of the peer of conn.
func clientIP(conn net.Conn) netip.Addr {
	ap, err := netip.ParseAddrPort(conn.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// handleConn serves one client connection: TLS (STARTTLS or direct), then
// in-band registration or SASL PLAIN, resource binding, and the stanzas.
//
// Until the session is bound, a deadline on the connection itself bounds
// the whole negotiation, TLS handshake included (Config.NegotiationTimeout),
// and every negotiation step may read maxNegotiationBytes from the wire
// (limitConn, under TLS and the XML decoder). A negotiation that fails ends
// with a stream error: policy-violation over the budget, connection-timeout
// at the deadline, not-well-formed for malformed XML, not-authorized after
// a failed authentication.
func (srv *Server) handleConn(conn net.Conn, directTLS bool, ticket *connTicket) {
	defer conn.Close() // mellium never closes the net.Conn itself
	if !srv.track(conn) {
		return // shutting down
	}
	defer srv.untrack(conn)
	_ = conn.SetDeadline(time.Now().Add(srv.cfg.NegotiationTimeout))
	lc := newLimitConn(conn, maxNegotiationBytes)

	ip := clientIP(conn)
	s := newSession(srv, conn, ip)
	n := &negotiation{srv: srv, s: s, ip: ip}

	// The deadline above bounds the negotiation, and shutdown moves it
	// (Server.shutdown). mellium's negotiation gets a context without
	// cancellation: when its context ends, mellium sets a deadline in the
	// past and clears it at once, which may clear ours and leaves a
	// blocked read waiting.
	ctx := srv.ctx
	features := []xmpp.StreamFeature{
		xmpp.StartTLS(srv.tls), // required; hidden once the stream is secure
	}
	if srv.cfg.OpenRegistration {
		features = append(features, srv.registerFeature(ip, lc))
	}
	features = append(features,
		// Only offered after TLS (Necessary: Secure): no plaintext auth, ever.
		saslPlainServer(n.authenticate),
		xmpp.BindCustom(n.bind),
		n.smFeature(), // XEP-0198 resumption in place of binding (sm.go)
	)
	inner := xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
		return xmpp.StreamConfig{Features: features}
	})
	headerSent := false // the server's stream header went out on the current stream
	// Whitespace between negotiation elements is dropped below mellium
	// (wsFilter); after STARTTLS the TLS connection gets a filter of its own.
	ws := newWSFilter(lc)
	neg := func(ctx context.Context, in, out *stream.Info, xs *xmpp.Session, data any) (xmpp.SessionState, io.ReadWriter, any, error) {
		lc.reset(maxNegotiationBytes) // one budget per step
		mask, rw, data, err := inner(ctx, in, out, xs, data)
		headerSent = out.ID != "" // mellium clears out at each restart
		if tc, ok := rw.(*tls.Conn); ok && err == nil {
			ws = newWSFilter(tc)
			rw = newByteConn(ws, srv.readBufs) // the decoder's reader (byteconn.go)
		}
		return mask, rw, data, err
	}
	var rw net.Conn = ws
	var state xmpp.SessionState
	if directTLS { // TLS over the budget; Secure is set by hand (rw is no *tls.Conn)
		ws = newWSFilter(tls.Server(lc, srv.tls))
		rw, state = newByteConn(ws, srv.readBufs), xmpp.Secure
	}
	xs, err := xmpp.ReceiveSession(context.WithoutCancel(ctx), rw, state, neg)
	if n.bound && (err != nil || xs == nil) {
		srv.sessions.remove(s) // bound, then failed
		s.finish()             // IQs relayed to it meanwhile get their error now
	}
	if err == nil && !n.bound {
		err = stream.NotAuthorized // bind refused (see negotiation.bound)
	}
	if err != nil {
		srv.endNegotiation(conn, lc, xs, headerSent, err, ip)
		return
	}
	ws.stop() // bound: mellium's stanza reader takes stream-level whitespace
	// Bound: no more negotiation deadline (the idle watch takes over), the
	// connection no longer counts against the per-IP cap, and the budget
	// is one stanza's.
	srv.trackBound(conn) // before clearing: shutdown may have moved the deadline
	_ = conn.SetDeadline(time.Time{})
	ticket.bound()
	lc.reset(maxStanzaWireBytes)
	s.xs = xs
	defer srv.sessions.remove(s)
	defer s.finish()
	s.startWriter()
	defer s.watchIdle(srv.cfg.IdleTimeout, srv.cfg.PingTimeout)()
	srv.smResumed(s)

	srv.connLog.Info("connected", "user", s.jid.Localpart(), "ip", ip.String(), "tls", tlsKind(directTLS))
	err = s.serve(lc)
	s.flushPipeline() // what the client sent is archived and routed, and counted
	s.finish()
	srv.smEnded(s, err) // sessionEnded, then XEP-0198 parking (sm.go)
	srv.connLog.Info("disconnected", "user", s.jid.Localpart(), "ip", ip.String())
	srv.log.Debug("session ended", "err", err)
}

// negotiation is what the stream-feature callbacks of one connection
// share while it negotiates.
type negotiation struct {
	srv  *Server
	s    *session
	ip   netip.Addr
	user string // set by the SASL callback only
	// bound is set when the bind callback bound a JID. mellium's BindCustom
	// answers a refusal (a stanza.Error) with a *result* IQ carrying the
	// error and then reports the stream Ready anyway, unbound: a refused
	// client must not get a session.
	bound bool
}

// authenticate is the SASL PLAIN callback: the password checked by the
// account manager (rate limited per client key), no proxy authorization,
// no login to an account being deleted.
func (n *negotiation) authenticate(ctx context.Context, authz, u, p string) error {
	srv := n.srv
	if authz != "" && authz != u && authz != u+"@"+srv.cfg.Domain {
		return account.ErrAuth // no proxy authorization
	}
	name, err := srv.authenticate(ctx, clientKey(n.ip), u, p)
	if err == nil && srv.sessions.isBlocked(name) {
		err = account.ErrAuth // being deleted
	}
	if err != nil {
		srv.connLog.Info("login failed", "ip", n.ip.String(), "reason", authReason(err))
		return err
	}
	n.user = name
	return nil
}

// bind is the resource-binding callback. Its first argument, the
// client-claimed stream from, is ignored; a taken or empty resource gets
// a random one.
func (n *negotiation) bind(_ jid.JID, res string) (jid.JID, error) {
	srv, s := n.srv, n.s
	for range 3 {
		if res == "" {
			res = randomResource()
		}
		j, err := jid.New(n.user, srv.cfg.Domain, res)
		if err != nil {
			return j, stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest}
		}
		s.jid = j
		if srv.sessions.reserve(s, j) {
			// Checked after reserving: a deletion that began earlier is
			// complete or visible here, and one that begins later finds
			// and ends this session.
			if _, err := srv.manager.Get(srv.ctx, n.user); err != nil { // deleted meanwhile
				srv.sessions.remove(s)
				return jid.JID{}, stanza.Error{Type: stanza.Auth, Condition: stanza.NotAuthorized}
			}
			n.bound = true
			return j, nil
		}
		res = "" // taken: give the client a fresh one
	}
	return jid.JID{}, stanza.Error{Type: stanza.Cancel, Condition: stanza.Conflict}
}

// endNegotiation ends a connection whose negotiation failed with err: the
// end of our stream when the client closed its own, otherwise the stream
// error err maps to (system-shutdown during a shutdown), preceded by our
// stream header when it had not gone out yet (headerSent).
func (srv *Server) endNegotiation(conn net.Conn, lc *limitConn, xs *xmpp.Session, headerSent bool, err error, ip netip.Addr) {
	srv.log.Debug("negotiation failed", "err", err)
	// A client closing its stream (</stream:stream>) is no failure; one
	// that drops the connection is logged.
	if srv.ctx.Err() == nil && !clientEndedStream(err) {
		srv.logNegotiationFailure(xs, headerSent, err, lc, ip)
	}
	if clientClosedStream(err) && srv.ctx.Err() == nil {
		// E.g. after an in-band registration: answer with the end of our
		// stream, no error.
		if xs != nil && headerSent {
			_ = conn.SetWriteDeadline(time.Now().Add(errorWriteTimeout))
			_ = xs.Close()
		}
		return
	}
	se, ok := negotiationStreamError(err, lc)
	if srv.ctx.Err() != nil {
		se, ok = stream.SystemShutdown, true // shutdown moved the deadline
	}
	if !ok || xs == nil {
		return
	}
	_ = conn.SetWriteDeadline(time.Now().Add(errorWriteTimeout))
	if headerSent {
		_ = xs.Send(context.Background(), se.TokenReader())
		_ = xs.Close()
	} else {
		_ = writeRawStreamError(xs.Conn(), srv.cfg.Domain, se)
	}
	lingerClose(conn)
}

// clientClosedStream reports whether a negotiation ended because the
// client closed its stream (</stream:stream>) between two elements.
func clientClosedStream(err error) bool {
	return errors.Is(err, io.EOF) || strings.HasSuffix(err.Error(), "feature of type xml.EndElement")
}

// negotiationStreamError is the stream error that ends a failed
// negotiation; false when the client is gone.
func negotiationStreamError(err error, lc *limitConn) (stream.Error, bool) {
	if errors.Is(err, io.EOF) || clientGone(err) && !lc.exceeded() {
		return stream.Error{}, false
	}
	return streamErrorFor(err, lc), true
}

// streamErrorFor maps the error that ends a stream to the stream error the
// server sends.
func streamErrorFor(err error, lc *limitConn) stream.Error {
	var se stream.Error
	var syntax *xml.SyntaxError
	switch {
	case lc.exceeded() || errors.Is(err, errWireLimit) ||
		errors.Is(err, errStanzaTooBig) || errors.Is(err, errTooManyAttrs) || errors.Is(err, errTooDeep):
		return stream.PolicyViolation
	case errors.Is(err, os.ErrDeadlineExceeded):
		return stream.ConnectionTimeout
	case errors.Is(err, errSASLFailed) || errors.Is(err, errSASLAborted):
		return stream.NotAuthorized
	case errors.Is(err, errSASLBad):
		return stream.PolicyViolation
	case errors.Is(err, errStreamText) || strings.HasSuffix(err.Error(), "feature of type xml.CharData"):
		return stream.BadFormat // text between negotiation elements
	case errors.Is(err, errRestrictedXML) || strings.HasPrefix(err.Error(), "disallowed XML"):
		return stream.RestrictedXML
	case err.Error() == "xmpp: unexpected stream restart":
		return stream.BadFormat
	case err.Error() == "xmpp: unknown stream level element":
		return stream.UnsupportedStanzaType
	case errors.As(err, &se):
		return se
	case errors.As(err, &syntax) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, errBadName) ||
		errors.Is(err, errDupAttr):
		return stream.NotWellFormed
	}
	return stream.UndefinedCondition
}

func tlsKind(direct bool) string {
	if direct {
		return "direct"
	}
	return "starttls"
}

// clientKey is the rate-limit key of a client: its IPv4 address, or the
// /64 prefix of its IPv6 address (one subscriber usually holds a whole /64).
func clientKey(ip netip.Addr) string {
	ip = ip.Unmap()
	if ip.Is6() && !ip.IsLoopback() {
		if p, err := ip.Prefix(64); err == nil {
			return p.String()
		}
	}
	return ip.String()
}

// randomResource returns an unguessable resourcepart.
func randomResource() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// authenticate checks an XMPP login with account.Manager (or the test
// seam Config.authenticate) and returns the canonical username.
func (srv *Server) authenticate(ctx context.Context, clientKey, username, password string) (string, error) {
	name, err := srv.manager.Normalize(username)
	if err != nil {
		return "", account.ErrAuth // no account can have this name
	}
	check := srv.manager.Authenticate
	if srv.cfg.authenticate != nil {
		check = srv.cfg.authenticate
	}
	if err := check(ctx, clientKey, username, password); err != nil {
		return "", err
	}
	return name, nil
}

// authReason names an authentication failure for the connection log
// without saying whether the account exists.
func authReason(err error) string {
	if errors.Is(err, account.ErrRateLimited) {
		return "rate-limited"
	}
	return "bad-credentials"
}
