package mam_test

import (
	"context"
	"encoding/xml"
	"errors"
	"strings"
	"testing"

	"chatbx.eu/privacy/mam"
	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
)

func TestParsePrefs(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want mam.Prefs
	}{
		{"roster with lists", `<prefs xmlns='urn:xmpp:mam:2' default='roster'><always><jid>romeo@montague.example</jid></always><never><jid>montague@montague.example</jid></never></prefs>`,
			mam.Prefs{Default: mam.DefaultRoster, Always: []jid.JID{jid.MustParse("romeo@montague.example")}, Never: []jid.JID{jid.MustParse("montague@montague.example")}}},
		{"always without lists", `<prefs xmlns='urn:xmpp:mam:2' default='always'/>`, mam.Prefs{Default: mam.DefaultAlways}},
		{"never with empty lists", `<prefs xmlns='urn:xmpp:mam:2' default='never'><always/><never/></prefs>`, mam.Prefs{Default: mam.DefaultNever}},
		{"whitespace trimmed, duplicates dropped, full JID kept", `<prefs xmlns='urn:xmpp:mam:2' default=' always '><never>
			<jid> a@example.org </jid><jid>a@example.org</jid><jid>b@example.org/phone</jid></never></prefs>`,
			mam.Prefs{Default: mam.DefaultAlways, Never: []jid.JID{jid.MustParse("a@example.org"), jid.MustParse("b@example.org/phone")}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mam.ParsePrefsBytes([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !equalPrefs(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParsePrefsErrors(t *testing.T) {
	for name, in := range map[string]string{
		"unknown default":      `<prefs xmlns='urn:xmpp:mam:2' default='sometimes'/>`,
		"missing default":      `<prefs xmlns='urn:xmpp:mam:2'/>`,
		"default in uppercase": `<prefs xmlns='urn:xmpp:mam:2' default='ALWAYS'/>`,
		"malformed JID":        `<prefs xmlns='urn:xmpp:mam:2' default='never'><always><jid>@@</jid></always></prefs>`,
		"empty JID":            `<prefs xmlns='urn:xmpp:mam:2' default='never'><always><jid/></always></prefs>`,
		"old namespace":        `<prefs xmlns='urn:xmpp:mam:1' default='never'/>`,
		"truncated":            `<prefs xmlns='urn:xmpp:mam:2' default='never'><always>`,
		"too many JIDs":        `<prefs xmlns='urn:xmpp:mam:2' default='never'><always>` + manyJIDs(1001) + `</always></prefs>`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := mam.ParsePrefsBytes([]byte(in)); !errors.Is(err, mam.ErrBadRequest) {
				t.Fatalf("err = %v, want ErrBadRequest", err)
			}
		})
	}
}

func manyJIDs(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("<jid>u")
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString(string(rune('a' + i%26)))
		b.WriteString("@example.org/")
		b.WriteString(strings.Repeat("r", i/26+1))
		b.WriteString("</jid>")
	}
	return b.String()
}

func equalPrefs(a, b mam.Prefs) bool {
	eq := func(x, y []jid.JID) bool {
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if !x[i].Equal(y[i]) {
				return false
			}
		}
		return true
	}
	return a.Default == b.Default && eq(a.Always, b.Always) && eq(a.Never, b.Never)
}

func encode(t testing.TB, r xml.TokenReader) string {
	t.Helper()
	var b strings.Builder
	e := xml.NewEncoder(&b)
	if _, err := xmlstream.Copy(e, r); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestPrefsEncode(t *testing.T) {
	got := encode(t, mam.Prefs{}.TokenReader())
	want := `<prefs xmlns="urn:xmpp:mam:2" default="never"><always xmlns="urn:xmpp:mam:2"></always><never xmlns="urn:xmpp:mam:2"></never></prefs>`
	if got != want {
		t.Errorf("zero prefs:\ngot  %s\nwant %s", got, want)
	}
	p := mam.Prefs{Default: mam.DefaultRoster, Always: []jid.JID{jid.MustParse("a@example.org")}, Never: []jid.JID{jid.MustParse("b@example.org/r")}}
	back, err := mam.ParsePrefsBytes([]byte(encode(t, p.TokenReader())))
	if err != nil {
		t.Fatal(err)
	}
	if !equalPrefs(back, p) {
		t.Errorf("round trip: got %+v, want %+v", back, p)
	}
}

type rosterFunc func(owner, contact jid.JID) bool

func (f rosterFunc) InRoster(_ context.Context, owner, contact jid.JID) (bool, error) {
	return f(owner, contact), nil
}

type failingRoster struct{}

func (failingRoster) InRoster(context.Context, jid.JID, jid.JID) (bool, error) {
	return false, errors.New("roster down")
}

func TestPrefsAllows(t *testing.T) {
	owner := jid.MustParse("juliet@example.org")
	romeo := jid.MustParse("romeo@example.org/orchard")
	nurse := jid.MustParse("nurse@example.org/kitchen")
	roster := rosterFunc(func(o, c jid.JID) bool {
		if c.Resourcepart() != "" || o.Resourcepart() != "" {
			panic("roster lookups must use bare JIDs")
		}
		return o.Equal(owner) && c.Equal(romeo.Bare())
	})
	j := jid.MustParse
	tests := []struct {
		name   string
		prefs  mam.Prefs
		peer   jid.JID
		roster mam.Roster
		want   bool
	}{
		{"zero prefs (never set) store nothing", mam.Prefs{}, romeo, roster, false},
		{"default never", mam.Prefs{Default: mam.DefaultNever}, romeo, roster, false},
		{"default always", mam.Prefs{Default: mam.DefaultAlways}, romeo, roster, true},
		{"always list beats default never", mam.Prefs{Default: mam.DefaultNever, Always: []jid.JID{j("romeo@example.org")}}, romeo, nil, true},
		{"never list beats default always", mam.Prefs{Default: mam.DefaultAlways, Never: []jid.JID{j("romeo@example.org")}}, romeo, nil, false},
		{"never list wins over always list", mam.Prefs{Default: mam.DefaultAlways, Always: []jid.JID{j("romeo@example.org")}, Never: []jid.JID{j("romeo@example.org")}}, romeo, nil, false},
		{"full JID in list matches that resource", mam.Prefs{Default: mam.DefaultNever, Always: []jid.JID{j("romeo@example.org/orchard")}}, romeo, nil, true},
		{"full JID in list does not match another resource", mam.Prefs{Default: mam.DefaultNever, Always: []jid.JID{j("romeo@example.org/balcony")}}, romeo, nil, false},
		{"roster: contact in roster", mam.Prefs{Default: mam.DefaultRoster}, romeo, roster, true},
		{"roster: contact not in roster", mam.Prefs{Default: mam.DefaultRoster}, nurse, roster, false},
		{"roster: no roster lookup stores nothing", mam.Prefs{Default: mam.DefaultRoster}, romeo, nil, false},
		{"roster: never list beats roster", mam.Prefs{Default: mam.DefaultRoster, Never: []jid.JID{j("romeo@example.org")}}, romeo, roster, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.prefs.Allows(context.Background(), owner, tc.peer, tc.roster)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Allows = %v, want %v", got, tc.want)
			}
		})
	}
	if ok, err := (mam.Prefs{Default: mam.DefaultRoster}).Allows(context.Background(), owner, romeo, failingRoster{}); err == nil || ok {
		t.Errorf("failing roster: ok=%v err=%v, want false and an error", ok, err)
	}
}
