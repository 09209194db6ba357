package main

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"testing"

	"chatbx.eu/privacy/account"
	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
)

// TestRegisterWithDataForm: a client that speaks only XEP-0004 data forms
// (as Dino does, XEP-0077 §8) gets the registration form as a data form
// with the hidden FORM_TYPE jabber:iq:register and required username and
// password fields, beside the legacy fields; it registers by submitting
// the data form, then authenticates and binds on the same stream, and the
// account logs in again on a new one.
func TestRegisterWithDataForm(t *testing.T) {
	ts := startTestServer(t)
	var formErr error
	s, err := ts.negotiate(t, "dino@localhost",
		dataFormRegistration("dino", "dino's password & <key>", &formErr),
		xmpp.SASL("", "dino's password & <key>", sasl.Plain),
		xmpp.BindResource(),
	)
	if err != nil || formErr != nil {
		t.Fatalf("register by data form and log in: %v / %v", err, formErr)
	}
	defer s.Close()
	if s.LocalAddr().Bare().String() != "dino@localhost" {
		t.Errorf("bound %s", s.LocalAddr())
	}
	c := ts.Login(t, "dino", "dino's password & <key>")
	c.Close()
}

// dataFormRegistration is a stream feature that registers user, before
// authentication, the way a data-form client does: it asks for the form,
// checks it (any problem goes to *result) and submits a filled data form.
func dataFormRegistration(user, password string, result *error) xmpp.StreamFeature {
	return xmpp.StreamFeature{
		Name: xml.Name{Space: account.NSFeature, Local: "register"},
		Parse: func(_ context.Context, d *xml.Decoder, _ *xml.StartElement) (bool, any, error) {
			return false, nil, d.Skip()
		},
		Negotiate: func(ctx context.Context, s *xmpp.Session, _ any) (xmpp.SessionState, io.ReadWriter, error) {
			w := s.TokenWriter()
			defer w.Close()
			r := s.TokenReader()
			defer r.Close()
			send := func(raw string) (element, error) {
				if _, err := xmlstream.Copy(w, clientXML(raw)); err != nil {
					return element{}, err
				}
				if err := w.Flush(); err != nil {
					return element{}, err
				}
				return nextElement(r)
			}
			answer, err := send(`<iq xmlns="jabber:client" type="get" id="form0"><query xmlns="jabber:iq:register"/></iq>`)
			if err != nil {
				return 0, nil, err
			}
			if *result = checkDataForm(answer); *result != nil {
				return 0, nil, *result // end the negotiation at once
			}
			submit := fmt.Sprintf(`<iq xmlns="jabber:client" type="set" id="form1"><query xmlns="jabber:iq:register">`+
				`<x xmlns="jabber:x:data" type="submit">`+
				`<field var="FORM_TYPE" type="hidden"><value>jabber:iq:register</value></field>`+
				`<field var="username"><value>%s</value></field>`+
				`<field var="password"><value>%s</value></field>`+
				`<field var="x-unknown"><value>ignored</value></field>`+
				`</x></query></iq>`, xmlEscape(user), xmlEscape(password))
			answer, err = send(submit)
			if err != nil {
				return 0, nil, err
			}
			if answer.attr("type") != "result" {
				*result = fmt.Errorf("data form registration answered %s (%s)", answer.attr("type"), stanzaErrorCondition(answer))
				return 0, nil, *result
			}
			return 0, nil, nil
		},
	}
}

// checkDataForm reports what is missing from the answer to a registration
// form request: legacy username and password, and a data form of type form
// with FORM_TYPE (hidden, jabber:iq:register), username and password.
func checkDataForm(answer element) error {
	if answer.attr("type") != "result" {
		return fmt.Errorf("form request answered %s", answer.attr("type"))
	}
	q, ok := answer.child(xml.Name{Space: account.NS, Local: "query"})
	if !ok {
		return errors.New("no query in the answer")
	}
	for _, legacy := range []string{"username", "password"} {
		if _, ok := q.child(xml.Name{Space: account.NS, Local: legacy}); !ok {
			return fmt.Errorf("legacy <%s/> missing", legacy)
		}
	}
	x, ok := q.child(xml.Name{Space: nsXData, Local: "x"})
	if !ok || x.attr("type") != "form" {
		return errors.New("no data form of type form")
	}
	want := map[string]string{"FORM_TYPE": "hidden", "username": "text-single", "password": "text-private"}
	for _, f := range x.children() {
		if f.start.Name != (xml.Name{Space: nsXData, Local: "field"}) {
			continue
		}
		name := f.attr("var")
		typ, known := want[name]
		if !known {
			return fmt.Errorf("unexpected field %q", name)
		}
		if f.attr("type") != typ {
			return fmt.Errorf("field %s of type %q, want %q", name, f.attr("type"), typ)
		}
		if name == "FORM_TYPE" {
			v, _ := f.child(xml.Name{Space: nsXData, Local: "value"})
			if v.text() != account.NS {
				return fmt.Errorf("FORM_TYPE %q", v.text())
			}
		} else if _, ok := f.child(xml.Name{Space: nsXData, Local: "required"}); !ok {
			return fmt.Errorf("field %s not required", name)
		}
		delete(want, name)
	}
	if len(want) != 0 {
		return fmt.Errorf("fields missing: %v", want)
	}
	return nil
}

// nsXData is the namespace of XEP-0004 data forms.
const nsXData = "jabber:x:data"
