package main

import (
	"chatbx.eu/privacy/account"
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
)

// nsRegisterFeature is the stream feature advertising XEP-0077.
const nsRegisterFeature = "http://jabber.org/features/iq-register"

// xRegister is the jabber:iq:register query.
type xRegister struct {
	XMLName      xml.Name  `xml:"jabber:iq:register query"`
	Instructions string    `xml:"instructions,omitempty"`
	Registered   *struct{} `xml:"registered"`
	Username     *string   `xml:"username"`
	Password     *string   `xml:"password"`
	Remove       *struct{} `xml:"remove"`
}

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
func (srv *Server) registerFeature(ip netip.Addr) xmpp.StreamFeature {
	return xmpp.StreamFeature{
		Name:       xml.Name{Space: nsRegister, Local: "query"},
		Necessary:  xmpp.Secure,
		Prohibited: xmpp.Authn,
		List: func(_ context.Context, e xmlstream.TokenWriter, _ xml.StartElement) (bool, error) {
			start := xml.StartElement{Name: xml.Name{Space: nsRegisterFeature, Local: "register"}}
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
				e, err := nextElement(r)
				if err != nil {
					return 0, nil, err
				}
				p, ok := e.payload()
				if e.start.Name.Local != "iq" || !ok || p.Name.Space != nsRegister {
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

// answerRegistration answers one pre-authentication register IQ; done is
// true once an account was created.
func (srv *Server) answerRegistration(ctx context.Context, w xmlstream.TokenWriter, e element, ip netip.Addr) (done bool, err error) {
	iq, err := stanza.NewIQ(e.start)
	if err != nil {
		return false, err
	}
	iq.From, iq.To = jid.JID{}, jid.JID{} // no addresses before binding
	reply := func(se stanza.Error) (bool, error) {
		_, err := xmlstream.Copy(w, iq.Error(se))
		return false, err
	}
	var q xRegister
	if err := xml.NewTokenDecoder(e.TokenReader()).Decode(&struct {
		Q *xRegister `xml:"jabber:iq:register query"`
	}{&q}); err != nil {
		return reply(stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest})
	}
	switch iq.Type {
	case stanza.GetIQ:
		empty := ""
		r, err := marshalReader(xRegister{
			Instructions: "Choose a username and a password. A pseudonym is welcome.",
			Username:     &empty, Password: &empty,
		})
		if err != nil {
			return false, err
		}
		_, err = xmlstream.Copy(w, iq.Result(r))
		return false, err
	case stanza.SetIQ:
	default:
		return reply(stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest})
	}
	if q.Remove != nil {
		return reply(stanza.Error{Type: stanza.Auth, Condition: stanza.NotAuthorized})
	}
	if q.Username == nil || q.Password == nil || *q.Username == "" || *q.Password == "" {
		return reply(stanza.Error{Type: stanza.Modify, Condition: stanza.NotAcceptable})
	}
	name, err := srv.accounts.Register(ctx, clientKey(ip), *q.Username, *q.Password)
	if err != nil {
		srv.connLog.Info("registration refused", "ip", ip.String(), "reason", registerReason(err))
		return reply(registerError(err))
	}
	srv.connLog.Info("registered", "user", name, "ip", ip.String())
	_, err = xmlstream.Copy(w, iq.Result(nil))
	return err == nil, err
}

// registerError maps account errors to XEP-0077 stanza errors.
func registerError(err error) stanza.Error {
	switch {
	case errors.Is(err, errConflict):
		return stanza.Error{Type: stanza.Cancel, Condition: stanza.Conflict}
	case errors.Is(err, errRateLimited):
		return stanza.Error{Type: stanza.Wait, Condition: stanza.ResourceConstraint,
			Text: map[string]string{"": "too many registrations from your address, try again later"}}
	case errors.Is(err, errNotAcceptable):
		return stanza.Error{Type: stanza.Modify, Condition: stanza.NotAcceptable,
			Text: map[string]string{"": policyText(err)}}
	}
	return stanza.Error{Type: stanza.Wait, Condition: stanza.InternalServerError}
}

func registerReason(err error) string {
	switch {
	case errors.Is(err, errConflict):
		return "conflict"
	case errors.Is(err, errRateLimited):
		return "rate-limited"
	case errors.Is(err, errNotAcceptable):
		return "policy"
	}
	return "error"
}

// policyText is the reason of a policy refusal, safe to show the client.
func policyText(err error) string {
	var pe *account.PolicyError
	if errors.As(err, &pe) {
		return pe.Reason
	}
	return "username or password not acceptable"
}

// handleRegister answers jabber:iq:register from an authenticated session:
// the form, a password change (XEP-0077 § 3.3) or <remove/> (§ 3.2), which
// answers, then erases the account and ends all its sessions with
// not-authorized.
func (srv *Server) handleRegister(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	reply := func(se stanza.Error) error {
		_, err := xmlstream.Copy(t, iq.Error(se))
		return err
	}
	user := iq.From.Localpart()
	var q xRegister
	if err := decodePayload(t, start, &q); err != nil {
		return reply(stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest})
	}
	if iq.Type == stanza.GetIQ {
		u := user
		r, err := marshalReader(xRegister{Registered: &struct{}{}, Username: &u})
		if err != nil {
			return reply(stanza.Error{Type: stanza.Wait, Condition: stanza.InternalServerError})
		}
		_, err = xmlstream.Copy(t, iq.Result(r))
		return err
	}
	ctx := srv.ctx
	switch {
	case q.Remove != nil:
		if _, err := xmlstream.Copy(t, iq.Result(nil)); err != nil {
			return err
		}
		go srv.deleteAccount(context.WithoutCancel(ctx), user)
		return nil
	case q.Password != nil:
		if q.Username != nil && !strings.EqualFold(*q.Username, user) {
			return reply(stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest})
		}
		if err := srv.accounts.ChangePassword(ctx, user, *q.Password); err != nil {
			if errors.Is(err, errNotAcceptable) {
				return reply(registerError(err))
			}
			return reply(stanza.Error{Type: stanza.Wait, Condition: stanza.InternalServerError})
		}
		_, err := xmlstream.Copy(t, iq.Result(nil))
		return err
	}
	return reply(stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest})
}

// deleteAccount ends every session of the user (not-authorized), keeps
// the user from binding new ones, waits for the sessions to be gone (so
// that nothing is stored for the user after the erasure), then erases the
// account and all its data. The account package journals the erasure:
// Resume at start finishes an interrupted one.
func (srv *Server) deleteAccount(ctx context.Context, user string) error {
	srv.sessions.block(user)
	defer srv.sessions.unblock(user)
	srv.sessions.kick(user)
	wctx, cancel := context.WithTimeout(ctx, writeTimeout+time.Second)
	srv.sessions.waitGone(wctx, user)
	cancel()
	if j, err := jid.New(user, srv.cfg.Domain, ""); err == nil {
		srv.muc.forgetOwner(j)
	}
	err := srv.accounts.Delete(ctx, user)
	if err != nil {
		srv.log.Error("account deletion incomplete; retried every hour and at start", "err", err)
	}
	srv.purgeNow()
	return err
}
