package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"io"

	"chatbx.eu/privacy/account"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
)

// nsSASL is the namespace of SASL negotiation (RFC 6120 § 6); mellium
// keeps its constant in an internal package.
const nsSASL = "urn:ietf:params:xml:ns:xmpp-sasl"

// Errors of the PLAIN feature; each ends the negotiation after the
// <failure/> went out.
var (
	errSASLFailed  = errors.New("sasl: authentication failed")
	errSASLAborted = errors.New("sasl: aborted by the client")
	errSASLBad     = errors.New("sasl: malformed request")
)

// plainAuth checks PLAIN credentials (authzid may be empty). It returns nil
// to let the client in, account.ErrRateLimited for a client that failed too often
// (answered temporary-auth-failure, RFC 6120 § 6.5.10) and any other error
// for wrong credentials (not-authorized).
type plainAuth func(ctx context.Context, authzid, user, password string) error

// saslPlainServer is the server side of SASL PLAIN (RFC 4616) as a stream
// feature. mellium's SASLServer answers every refusal with not-authorized;
// this one tells a rate-limited client temporary-auth-failure, so that it
// waits instead of asking its user for another password. Like
// SASLServer, it is offered only on a secure stream and ends the
// negotiation after a failure.
func saslPlainServer(check plainAuth) xmpp.StreamFeature {
	return xmpp.StreamFeature{
		Name:       xml.Name{Space: nsSASL, Local: "mechanisms"},
		Necessary:  xmpp.Secure,
		Prohibited: xmpp.Authn,
		List: func(_ context.Context, e xmlstream.TokenWriter, start xml.StartElement) (bool, error) {
			mech := xml.StartElement{Name: xml.Name{Local: "mechanism"}}
			_, err := xmlstream.Copy(e, xmlstream.Wrap(
				xmlstream.Wrap(xmlstream.Token(xml.CharData("PLAIN")), mech), start))
			return true, err
		},
		Parse: func(_ context.Context, d *xml.Decoder, _ *xml.StartElement) (bool, any, error) {
			return true, nil, d.Skip()
		},
		Negotiate: func(ctx context.Context, sess *xmpp.Session, _ any) (xmpp.SessionState, io.ReadWriter, error) {
			r := sess.TokenReader()
			defer r.Close()
			w := sess.TokenWriter()
			defer w.Close()
			// Through an xml.Decoder, as mellium's SASLServer reads: the
			// negotiation reader takes the text inside <auth/> (whose
			// start it handed back) for stream-level text, an error the
			// decoder drops when it comes with a token.
			payload, err := readAuth(xml.NewTokenDecoder(r), w)
			if err != nil {
				return 0, nil, err
			}
			authzid, user, password, ok := parsePlain(payload)
			if !ok {
				return 0, nil, saslFailure(w, "malformed-request", errSASLBad)
			}
			switch err := check(ctx, authzid, user, password); {
			case err == nil:
			case errors.Is(err, account.ErrRateLimited):
				return 0, nil, saslFailure(w, "temporary-auth-failure", errSASLFailed)
			default:
				return 0, nil, saslFailure(w, "not-authorized", errSASLFailed)
			}
			success := xml.StartElement{Name: xml.Name{Space: nsSASL, Local: "success"}}
			if _, err := xmlstream.Copy(w, xmlstream.Wrap(nil, success)); err != nil {
				return 0, nil, err
			}
			if err := w.Flush(); err != nil {
				return 0, nil, err
			}
			return xmpp.Authn, sess.Conn(), nil // the stream restarts
		},
	}
}

// readAuth reads the client's <auth mechanism='PLAIN'/> and returns its
// decoded initial response; without one, it sends an empty challenge and
// reads the <response/> (RFC 6120 § 6.4.2).
func readAuth(r xml.TokenReader, w xmlstream.TokenWriteFlusher) ([]byte, error) {
	e, err := nextElement(r)
	if err != nil {
		return nil, err
	}
	switch {
	case e.start.Name == xml.Name{Space: nsSASL, Local: "abort"}:
		return nil, saslFailure(w, "aborted", errSASLAborted)
	case e.start.Name != xml.Name{Space: nsSASL, Local: "auth"}:
		return nil, saslFailure(w, "malformed-request", errSASLBad)
	case e.attr("mechanism") != "PLAIN":
		return nil, saslFailure(w, "invalid-mechanism", errSASLBad)
	}
	text := e.text()
	if text == "" { // no initial response: ask for it
		challenge := xml.StartElement{Name: xml.Name{Space: nsSASL, Local: "challenge"}}
		if _, err := xmlstream.Copy(w, xmlstream.Wrap(nil, challenge)); err != nil {
			return nil, err
		}
		if err := w.Flush(); err != nil {
			return nil, err
		}
		if e, err = nextElement(r); err != nil {
			return nil, err
		}
		switch e.start.Name {
		case xml.Name{Space: nsSASL, Local: "abort"}:
			return nil, saslFailure(w, "aborted", errSASLAborted)
		case xml.Name{Space: nsSASL, Local: "response"}:
		default:
			return nil, saslFailure(w, "malformed-request", errSASLBad)
		}
		text = e.text()
	}
	if text == "=" { // an empty response
		return nil, nil
	}
	b, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return nil, saslFailure(w, "incorrect-encoding", errSASLBad)
	}
	return b, nil
}

// parsePlain splits a PLAIN message: [authzid] NUL authcid NUL passwd.
func parsePlain(b []byte) (authzid, user, password string, ok bool) {
	parts := bytes.Split(b, []byte{0})
	if len(parts) != 3 || len(parts[1]) == 0 || len(parts[2]) == 0 {
		return "", "", "", false
	}
	return string(parts[0]), string(parts[1]), string(parts[2]), true
}

// saslFailure sends <failure><condition/></failure> and returns err.
func saslFailure(w xmlstream.TokenWriteFlusher, condition string, err error) error {
	failure := xml.StartElement{Name: xml.Name{Space: nsSASL, Local: "failure"}}
	cond := xml.StartElement{Name: xml.Name{Local: condition}}
	if _, werr := xmlstream.Copy(w, xmlstream.Wrap(xmlstream.Wrap(nil, cond), failure)); werr != nil {
		return werr
	}
	if werr := w.Flush(); werr != nil {
		return werr
	}
	return err
}
