package mam_test

import (
	"testing"

	"chatbx.eu/privacy/mam"
)

func FuzzQuery(f *testing.F) {
	f.Add(q(field("with", "juliet@capulet.example")+field("start", "2010-06-07T00:00:00Z"), "<max>10</max><after>x</after>"))
	f.Add(q(field("ids", "a", "b")+field("include-groupchat", "true"), "<before/>"))
	f.Add(q(field("unknown", "x"), "<max>-1</max>"))
	f.Add(`<query xmlns='urn:xmpp:mam:2' queryid='f27'><flip-page/></query>`)
	f.Add(`<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data'><field var='end'><value>2010-07-07T13:23:54Z</value></field></x></query>`)
	f.Fuzz(func(t *testing.T, in string) {
		cfg := mam.Config{MaxPageSize: 100}
		req, err := mam.ParseQueryBytes([]byte(in), cfg)
		if err != nil {
			return
		}
		qq := req.Query
		if qq.Max < 1 || qq.Max > 100 {
			t.Errorf("Max = %d outside [1, 100]", qq.Max)
		}
		if len(qq.IDs) > 100 {
			t.Errorf("%d ids accepted", len(qq.IDs))
		}
		if !qq.Start.IsZero() && !qq.End.IsZero() && qq.Start.After(qq.End) {
			t.Error("start after end accepted")
		}
		if qq.After != "" && (qq.Before != "" || qq.Last) {
			t.Error("after and before both accepted")
		}
		if len(req.QueryID) > 256 {
			t.Error("overlong queryid accepted")
		}
	})
}

func FuzzPrefs(f *testing.F) {
	f.Add(`<prefs xmlns='urn:xmpp:mam:2' default='roster'><always><jid>romeo@montague.example</jid></always><never><jid>montague@montague.example</jid></never></prefs>`)
	f.Add(`<prefs xmlns='urn:xmpp:mam:2' default='never'/>`)
	f.Add(`<prefs xmlns='urn:xmpp:mam:2' default='bogus'><never><jid>a@b/c</jid></never></prefs>`)
	f.Fuzz(func(t *testing.T, in string) {
		p, err := mam.ParsePrefsBytes([]byte(in))
		if err != nil {
			return
		}
		switch p.Default {
		case mam.DefaultAlways, mam.DefaultNever, mam.DefaultRoster:
		default:
			t.Fatalf("accepted default %q", p.Default)
		}
		// Round trip: what we encode we parse back to the same prefs.
		back, err := mam.ParsePrefsBytes([]byte(encode(t, p.TokenReader())))
		if err != nil {
			t.Fatalf("re-parse of encoded prefs: %v", err)
		}
		if !equalPrefs(back, p) {
			t.Fatalf("round trip: got %+v, want %+v", back, p)
		}
	})
}
