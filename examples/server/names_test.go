package main

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"mellium.im/xmpp/stanza"
)

// TestRegistrationNamesAndPasswords: over XMPP in-band registration, a
// name that mixes scripts is refused as not acceptable, a look-alike of a
// taken name as a conflict that names nobody, and weak passwords as not
// acceptable with the reason; the same password rules hold for a change
// of password over XMPP and on /account, and a refusal leaves the old
// password in force.
func TestRegistrationNamesAndPasswords(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	ts.Register(t, "cope", "cope password")
	for _, tc := range []struct {
		name, user, pw string
		typ            stanza.ErrorType
		cond           stanza.Condition
		text           string
	}{
		{"Cyrillic a in a Latin name", "\u0430lice", "another password", stanza.Modify, stanza.NotAcceptable, "mixes scripts"},
		{"Greek o in a Latin name", "c\u03bfpe", "another password", stanza.Modify, stanza.NotAcceptable, "mixes scripts"},
		{"digit one for l", "a1ice", "another password", stanza.Cancel, stanza.Conflict, "username not available"},
		{"all Cyrillic look-alike", "соре", "another password", stanza.Cancel, stanza.Conflict, "username not available"},
		{"password", "bob", "password", stanza.Modify, stanza.NotAcceptable, "most common"},
		{"Password", "bob", "Password", stanza.Modify, stanza.NotAcceptable, "most common"},
		{"123456789", "bob", "123456789", stanza.Modify, stanza.NotAcceptable, "most common"},
		{"spaces", "bob", "        ", stanza.Modify, stanza.NotAcceptable, "only white space"},
		{"the username, long", "bobbybobby", "bobbybobby", stanza.Modify, stanza.NotAcceptable, "same as the username"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ts.register(tc.user, tc.pw)
			var se stanza.Error
			if !errors.As(err, &se) || se.Type != tc.typ || se.Condition != tc.cond {
				t.Fatalf("register(%q) = %v, want %s/%s", tc.user, err, tc.typ, tc.cond)
			}
			var text strings.Builder
			for _, s := range se.Text {
				text.WriteString(s)
			}
			if !strings.Contains(text.String(), tc.text) {
				t.Errorf("error text %q, want it to mention %q", text.String(), tc.text)
			}
			for _, secret := range []string{"alice", "cope", "123456789"} {
				if strings.Contains(text.String(), secret) {
					t.Errorf("error text %q names %q", text.String(), secret)
				}
			}
		})
	}
	// Refusals took no name: bob registers with a good password.
	ts.Register(t, "bob", "bob password 1")

	// Password change over XMPP: the same rules.
	a := ts.Login(t, "alice", "alice password")
	reply := a.IQ(t, `<iq type="set" id="pw1"><query xmlns="jabber:iq:register"><username>alice</username><password>PASSWORD1</password></query></iq>`)
	if cond := stanzaErrorCondition(reply); reply.attr("type") != "error" || cond != string(stanza.NotAcceptable) {
		t.Fatalf("password change to a common password: type %q condition %q, want not-acceptable", reply.attr("type"), cond)
	}
	a.Close()

	// And on /account.
	status, page := postAccount(t, ts, "/account/password", url.Values{
		"username": {"alice"}, "password": {"alice password"}, "new": {"123456789"}, "new2": {"123456789"},
	})
	if status != http.StatusBadRequest || !strings.Contains(page, "one of the most common passwords") {
		t.Fatalf("/account/password with a common password: %d\n%s", status, page)
	}
	ts.Login(t, "alice", "alice password").Close() // the old password still works
}
