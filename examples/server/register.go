package main

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/netip"
	"strings"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"

	"chatbx.eu/privacy/account"
)

// registerFeature is XEP-0077 in-band registration before authentication.
//
// mellium's negotiator selects a stream feature by the namespace of the
// element the client sends next; an IQ is matched by its payload, so this
// feature is named after jabber:iq:register and listed as the
// <register xmlns='http://jabber.org/features/iq-register'/> stream feature.
// It is offered only on a secure stream (no registration in plaintext) and
// before authentication. Negotiate answers register IQs (the form get, then
// sets) until one registration succeeds; the client then authenticates on
// the same stream or reconnects. A client must not interleave other
// elements between a register get and its set on this stream.
//
// Each register IQ gets a fresh wire budget of maxNegotiationBytes from lc.
func (srv *Server) registerFeature(ip netip.Addr, lc *limitConn) xmpp.StreamFeature {
	return xmpp.StreamFeature{
		Name:       xml.Name{Space: account.NS, Local: "query"},
		Necessary:  xmpp.Secure,
		Prohibited: xmpp.Authn,
		List: func(_ context.Context, e xmlstream.TokenWriter, _ xml.StartElement) (bool, error) {
			start := xml.StartElement{Name: xml.Name{Space: account.NSFeature, Local: "register"}}
			if err := e.EncodeToken(start); err != nil {
				return false, err
			}
			return false, e.EncodeToken(start.End())
		},
		Parse: func(_ context.Context, d *xml.Decoder, _ *xml.StartElement) (bool, any, error) {
			return false, nil, d.Skip()
		},
		Negotiate: func(ctx context.Context, sess *xmpp.Session, _ any) (xmpp.SessionState, io.ReadWriter, error) {
			r := sess.TokenReader()
			defer r.Close()
			w := sess.TokenWriter()
			defer w.Close()
			for {
				lc.reset(maxNegotiationBytes)
				e, err := nextElement(r)
				if err != nil {
					return 0, nil, err
				}
				p, ok := e.payload()
				if e.start.Name.Local != "iq" || !ok || p.Name.Space != account.NS {
					// Only registration IQs may follow a registration
					// form request on this stream.
					return 0, nil, stream.PolicyViolation
				}
				done, err := srv.answerRegistration(ctx, w, e, ip)
				if err != nil {
					return 0, nil, err
				}
				if err := w.Flush(); err != nil {
					return 0, nil, err
				}
				if done {
					return 0, nil, nil
				}
			}
		},
	}
}

// nextElement reads the next element, skipping whitespace.
func nextElement(r xml.TokenReader) (element, error) {
	for {
		tok, err := r.Token()
		if err != nil {
			return element{}, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return readElement(r, t)
		case xml.CharData:
			if len(strings.TrimSpace(string(t))) == 0 {
				continue
			}
		case xml.EndElement:
			return element{}, io.EOF // </stream:stream>
		}
		return element{}, errors.New("register: unexpected token")
	}
}

// answerRegistration answers one pre-authentication register IQ with
// account.Handler; done is true once an account was created.
func (srv *Server) answerRegistration(ctx context.Context, w xmlstream.TokenWriter, e element, ip netip.Addr) (done bool, err error) {
	iq, err := stanza.NewIQ(e.start)
	if err != nil {
		return false, err
	}
	iq.From, iq.To = jid.JID{}, jid.JID{} // no addresses before binding
	q, ok := e.child(xml.Name{Space: account.NS, Local: "query"})
	if !ok {
		_, err := xmlstream.Copy(w, iq.Error(stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest}))
		return false, err
	}
	key := clientKey(ip)
	if ip.IsLoopback() {
		key = exemptKey // only registrations: failed logins count for loopback too
	}
	h := account.NewHandler(srv.manager, account.HandlerConfig{
		Secure:       true, // the feature is offered on secure streams only
		Open:         true, // the feature is offered only when registration is open
		ClientKey:    key,
		Instructions: "Choose a username and a password. A pseudonym is welcome.",
	})
	reply, _ := h.Respond(ctx, iq, q.TokenReader())
	toks, err := xmlstream.ReadAll(reply)
	if err != nil {
		return false, err
	}
	if iq.Type == stanza.SetIQ {
		if cond := replyCondition(toks); cond != "" {
			srv.connLog.Info("registration refused", "ip", ip.String(), "reason", cond)
		} else {
			done = true
			name := ""
			if rq, err := account.ParseQuery(q.TokenReader()); err == nil {
				name, _ = srv.manager.Normalize(rq.Username)
			}
			srv.connLog.Info("registered", "user", name, "ip", ip.String())
		}
	}
	_, err = xmlstream.Copy(w, &sliceReader{toks: toks})
	return done, err
}

// replyCondition returns the stanza error condition of an IQ reply, or ""
// for a result.
func replyCondition(toks []xml.Token) string {
	if len(toks) == 0 {
		return "no reply"
	}
	if st, ok := toks[0].(xml.StartElement); !ok || (element{start: st}).attr("type") != "error" {
		return ""
	}
	for _, tok := range toks {
		if st, ok := tok.(xml.StartElement); ok && st.Name.Space == stanza.NSError && st.Name.Local != "text" {
			return st.Name.Local
		}
	}
	return "error"
}

// handleRegister answers jabber:iq:register from an authenticated session
// with account.Handler: the form, a password change (XEP-0077 § 3.3) or
// <remove/> (§ 3.2), which answers, then ends all the user's sessions with
// not-authorized and erases the account (deleteAccount).
func (srv *Server) handleRegister(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	h := account.NewHandler(srv.manager, account.HandlerConfig{
		User:   iq.From, // the session's JID: the router overwrites any other
		Secure: true,    // a TLS-only server
		Remove: func(user jid.JID) {
			_ = srv.deleteAccount(context.WithoutCancel(srv.ctx), user.Localpart()) // logged there
		},
	})
	return h.HandleIQ(iq, t, start)
}

// deleteAccount ends every session of the user (not-authorized), keeps
// the user from binding new ones, waits for the sessions to be gone (so
// that nothing is stored for the user after the erasure), then erases the
// account and all its data. The account package journals the erasure:
// Resume at start finishes an interrupted one.
func (srv *Server) deleteAccount(ctx context.Context, user string) error {
	if name, err := srv.manager.Normalize(user); err == nil {
		user = name // sessions are registered under the canonical name
	}
	srv.sessions.block(user)
	defer srv.sessions.unblock(user)
	srv.sessions.kick(user)
	wctx, cancel := context.WithTimeout(ctx, writeTimeout+time.Second)
	srv.sessions.waitGone(wctx, user)
	cancel()
	srv.sm.dropUser(user) // parked XEP-0198 sessions hold messages to the user
	if j, err := jid.New(user, srv.cfg.Domain, ""); err == nil {
		srv.tellContacts(j) // before the roster is erased
		srv.muc.forgetOwner(j)
	}
	err := srv.manager.Delete(ctx, user)
	if err != nil {
		srv.log.Error("account deletion incomplete; retried every hour and at start", "err", err)
	}
	srv.purgeNow()
	return err
}
