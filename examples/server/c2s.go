package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"net"
	"net/netip"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"
)

// negotiationTimeout bounds TLS, registration, authentication and binding.
const negotiationTimeout = 60 * time.Second

// serveC2S accepts client connections until ln is closed.
func (srv *Server) serveC2S(ln net.Listener, directTLS bool) {
	defer srv.wg.Done()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			srv.log.Warn("c2s accept", "err", err)
			time.Sleep(50 * time.Millisecond) // e.g. too many open files
			continue
		}
		srv.wg.Add(1)
		go func() {
			defer srv.wg.Done()
			srv.handleConn(conn, directTLS)
		}()
	}
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
func (srv *Server) handleConn(conn net.Conn, directTLS bool) {
	defer conn.Close() // mellium never closes the net.Conn itself
	if !srv.track(conn) {
		return // shutting down
	}
	defer srv.untrack(conn)

	ip := clientIP(conn)
	s := newSession(srv, conn, ip)
	var user string // set by the SASL callback only
	// bound is set when the bind callback bound a JID. mellium's BindCustom
	// answers a refusal (a stanza.Error) with a *result* IQ carrying the
	// error and then reports the stream Ready anyway, unbound: a refused
	// client must not get a session.
	var bound bool

	ctx, cancel := context.WithTimeout(srv.ctx, negotiationTimeout)
	defer cancel()
	features := []xmpp.StreamFeature{
		xmpp.StartTLS(srv.tls), // required; hidden once the stream is secure
	}
	if srv.cfg.OpenRegistration {
		features = append(features, srv.registerFeature(ip))
	}
	features = append(features,
		// Only offered after TLS (Necessary: Secure): no plaintext auth, ever.
		xmpp.SASLServer(func(n *sasl.Negotiator) bool {
			u, p, authz := n.Credentials()
			if len(authz) > 0 && string(authz) != string(u) &&
				string(authz) != string(u)+"@"+srv.cfg.Domain {
				return false // no proxy authorization
			}
			name, err := srv.accounts.Authenticate(ctx, clientKey(ip), string(u), string(p))
			if err == nil && srv.sessions.isBlocked(name) {
				err = errBadCredentials // being deleted
			}
			if err != nil {
				srv.connLog.Info("login failed", "ip", ip.String(), "reason", authReason(err))
				return false
			}
			user = name
			return true
		}, sasl.Plain),
		xmpp.BindCustom(func(_ jid.JID, res string) (jid.JID, error) {
			// The first argument is the client-claimed stream from: ignored.
			for range 3 {
				if res == "" {
					res = randomResource()
				}
				j, err := jid.New(user, srv.cfg.Domain, res)
				if err != nil {
					return j, stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest}
				}
				s.jid = j
				if srv.sessions.reserve(s, j) {
					// Checked after reserving: a deletion that began
					// earlier is complete or visible here, and one that
					// begins later finds and ends this session.
					if !srv.accounts.Exists(ctx, user) {
						srv.sessions.remove(s)
						return jid.JID{}, stanza.Error{Type: stanza.Auth, Condition: stanza.NotAuthorized}
					}
					bound = true
					return j, nil
				}
				res = "" // taken: give the client a fresh one
			}
			return jid.JID{}, stanza.Error{Type: stanza.Cancel, Condition: stanza.Conflict}
		}),
	)
	neg := xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
		return xmpp.StreamConfig{Features: features}
	})
	var rw net.Conn = conn
	var state xmpp.SessionState
	if directTLS { // a *tls.Conn counts as Secure: no STARTTLS offered
		rw, state = tls.Server(conn, srv.tls), xmpp.Secure
	}
	xs, err := xmpp.ReceiveSession(ctx, rw, state, neg)
	if bound && (err != nil || xs == nil) {
		srv.sessions.remove(s) // bound, then failed
	}
	if err == nil && !bound {
		err = stream.NotAuthorized // bind refused (see bound)
	}
	if err != nil {
		var se stream.Error // returned but not sent by mellium
		if errors.As(err, &se) && xs != nil {
			_ = xs.Send(context.Background(), se.TokenReader())
			_ = xs.Close()
		}
		srv.log.Debug("negotiation failed", "err", err)
		return
	}
	s.xs = xs
	defer srv.sessions.remove(s)
	defer s.finish()
	go s.writer()

	srv.connLog.Info("connected", "user", s.jid.Localpart(), "ip", ip.String(), "tls", tlsKind(directTLS))
	err = xs.Serve(xmpp.HandlerFunc(func(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		e, err := readElement(t, *start)
		if err != nil {
			if errors.Is(err, errStanzaTooBig) {
				return stream.PolicyViolation
			}
			return err
		}
		return s.handle(t, e)
	}))
	s.finish()
	srv.sessionEnded(s)
	srv.connLog.Info("disconnected", "user", s.jid.Localpart(), "ip", ip.String())
	srv.log.Debug("session ended", "err", err)
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

// authReason names an authentication failure for the connection log
// without saying whether the account exists.
func authReason(err error) string {
	if errors.Is(err, errRateLimited) {
		return "rate-limited"
	}
	return "bad-credentials"
}
