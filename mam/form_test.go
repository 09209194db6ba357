package mam_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"chatbx.eu/privacy/mam"
	"mellium.im/xmpp/jid"
)

// q wraps form fields and an RSM set into a mam:2 query.
func q(fields, set string) string {
	s := `<query xmlns='urn:xmpp:mam:2' queryid='q1'>`
	if fields != "" {
		s += `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>` + fields + `</x>`
	}
	if set != "" {
		s += `<set xmlns='http://jabber.org/protocol/rsm'>` + set + `</set>`
	}
	return s + `</query>`
}

func field(name string, values ...string) string {
	s := `<field var='` + name + `'>`
	for _, v := range values {
		s += `<value>` + v + `</value>`
	}
	return s + `</field>`
}

func TestParseQuery(t *testing.T) {
	t1 := time.Date(2010, 6, 7, 0, 0, 0, 0, time.UTC)
	t2 := time.Date(2010, 7, 7, 13, 23, 54, 0, time.UTC)
	tests := []struct {
		name string
		in   string
		cfg  mam.Config
		want mam.Request
	}{
		{"empty query gets the default page size", `<query xmlns='urn:xmpp:mam:2'/>`, mam.Config{},
			mam.Request{Query: mam.Query{Max: 50}}},
		{"configured page size", `<query xmlns='urn:xmpp:mam:2'/>`, mam.Config{PageSize: 20},
			mam.Request{Query: mam.Query{Max: 20}}},
		{"page size above ceiling is capped", `<query xmlns='urn:xmpp:mam:2'/>`, mam.Config{PageSize: 500, MaxPageSize: 100},
			mam.Request{Query: mam.Query{Max: 100}}},
		{"queryid", q("", ""), mam.Config{}, mam.Request{QueryID: "q1", Query: mam.Query{Max: 50}}},
		{"with bare", q(field("with", "juliet@capulet.example"), ""), mam.Config{},
			mam.Request{QueryID: "q1", Query: mam.Query{Max: 50, With: jid.MustParse("juliet@capulet.example")}}},
		{"with full, whitespace trimmed", q(field("with", "\n  juliet@capulet.example/balcony \t"), ""), mam.Config{},
			mam.Request{QueryID: "q1", Query: mam.Query{Max: 50, With: jid.MustParse("juliet@capulet.example/balcony")}}},
		{"start and end", q(field("start", "2010-06-07T00:00:00Z")+field("end", " 2010-07-07T13:23:54Z "), ""), mam.Config{},
			mam.Request{QueryID: "q1", Query: mam.Query{Max: 50, Start: t1, End: t2}}},
		{"timestamp with offset and fraction", q(field("start", "2010-06-07T02:00:00.000+02:00"), ""), mam.Config{},
			mam.Request{QueryID: "q1", Query: mam.Query{Max: 50, Start: t1}}},
		{"start equals end", q(field("start", "2010-06-07T00:00:00Z")+field("end", "2010-06-07T00:00:00Z"), ""), mam.Config{},
			mam.Request{QueryID: "q1", Query: mam.Query{Max: 50, Start: t1, End: t1}}},
		{"before-id and after-id", q(field("after-id", "a1")+field("before-id", " b2 "), ""), mam.Config{},
			mam.Request{QueryID: "q1", Query: mam.Query{Max: 50, AfterID: "a1", BeforeID: "b2"}}},
		{"ids list-multi", q(`<field var='ids' type='list-multi'><value>a</value><value> b </value></field>`, ""), mam.Config{},
			mam.Request{QueryID: "q1", Query: mam.Query{Max: 50, IDs: []string{"a", "b"}}}},
		{"ids text-multi lines", q(`<field var='ids' type='text-multi'><value>a
b</value><value>c</value></field>`, ""), mam.Config{},
			mam.Request{QueryID: "q1", Query: mam.Query{Max: 50, IDs: []string{"a", "b", "c"}}}},
		{"include-groupchat true", q(field("include-groupchat", "true"), ""), mam.Config{},
			mam.Request{QueryID: "q1", Query: mam.Query{Max: 50, IncludeGroupchat: true}}},
		{"include-groupchat 1", q(field("include-groupchat", "1"), ""), mam.Config{},
			mam.Request{QueryID: "q1", Query: mam.Query{Max: 50, IncludeGroupchat: true}}},
		{"include-groupchat false", q(field("include-groupchat", "false"), ""), mam.Config{},
			mam.Request{QueryID: "q1", Query: mam.Query{Max: 50}}},
		{"form without type=submit", `<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data'>` + field("with", "romeo@montague.example") + `</x></query>`, mam.Config{},
			mam.Request{Query: mam.Query{Max: 50, With: jid.MustParse("romeo@montague.example")}}},
		{"form without FORM_TYPE", `<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'>` + field("end", "2010-07-07T13:23:54Z") + `</x></query>`, mam.Config{},
			mam.Request{Query: mam.Query{Max: 50, End: t2}}},
		{"empty values are no filter", q(field("with", " ")+field("start")+field("after-id", ""), ""), mam.Config{},
			mam.Request{QueryID: "q1", Query: mam.Query{Max: 50}}},
		{"rsm max", q("", "<max>10</max>"), mam.Config{}, mam.Request{QueryID: "q1", Query: mam.Query{Max: 10}}},
		{"rsm max with spaces", q("", "<max> 7 </max>"), mam.Config{}, mam.Request{QueryID: "q1", Query: mam.Query{Max: 7}}},
		{"rsm max above ceiling", q("", "<max>1000</max>"), mam.Config{}, mam.Request{QueryID: "q1", Query: mam.Query{Max: 250}}},
		{"rsm max above configured ceiling", q("", "<max>1000</max>"), mam.Config{MaxPageSize: 30}, mam.Request{QueryID: "q1", Query: mam.Query{Max: 30}}},
		{"rsm max overflowing int", q("", "<max>99999999999999999999999999</max>"), mam.Config{}, mam.Request{QueryID: "q1", Query: mam.Query{Max: 250}}},
		{"rsm max 0 is count only", q("", "<max>0</max>"), mam.Config{}, mam.Request{QueryID: "q1", CountOnly: true, Query: mam.Query{Max: 1}}},
		{"rsm after", q("", "<max>5</max><after>09af3</after>"), mam.Config{}, mam.Request{QueryID: "q1", Query: mam.Query{Max: 5, After: "09af3"}}},
		{"rsm before id", q("", "<before>09af3</before>"), mam.Config{}, mam.Request{QueryID: "q1", Query: mam.Query{Max: 50, Before: "09af3"}}},
		{"rsm empty before is the last page", q("", "<max>10</max><before/>"), mam.Config{}, mam.Request{QueryID: "q1", Query: mam.Query{Max: 10, Last: true}}},
		{"rsm index 0 is the first page", q("", "<index>0</index>"), mam.Config{}, mam.Request{QueryID: "q1", Query: mam.Query{Max: 50}}},
		{"flip-page", `<query xmlns='urn:xmpp:mam:2'><flip-page/></query>`, mam.Config{}, mam.Request{Flip: true, Query: mam.Query{Max: 50}}},
		{"unknown extension element ignored", `<query xmlns='urn:xmpp:mam:2'><foo xmlns='urn:example:foo'><bar/></foo></query>`, mam.Config{}, mam.Request{Query: mam.Query{Max: 50}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mam.ParseQueryBytes([]byte(tc.in), tc.cfg)
			if err != nil {
				t.Fatalf("ParseQueryBytes: %v", err)
			}
			if !equalRequest(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func equalRequest(a, b mam.Request) bool {
	qa, qb := a.Query, b.Query
	if a.QueryID != b.QueryID || a.Flip != b.Flip || a.CountOnly != b.CountOnly {
		return false
	}
	if !qa.With.Equal(qb.With) || !qa.Start.Equal(qb.Start) || !qa.End.Equal(qb.End) ||
		qa.AfterID != qb.AfterID || qa.BeforeID != qb.BeforeID || qa.IncludeGroupchat != qb.IncludeGroupchat ||
		qa.Max != qb.Max || qa.After != qb.After || qa.Before != qb.Before || qa.Last != qb.Last ||
		strings.Join(qa.IDs, "\x00") != strings.Join(qb.IDs, "\x00") {
		return false
	}
	return true
}

func TestParseQueryErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"unknown form field", q(field("{urn:example}free-text-search", "x"), ""), mam.ErrUnsupported},
		{"unknown form field without namespace", q(field("fulltext", "x"), ""), mam.ErrUnsupported},
		{"field without var", q(`<field><value>x</value></field>`, ""), mam.ErrUnsupported},
		{"rsm index other than 0", q("", "<index>3</index>"), mam.ErrUnsupported},
		{"pubsub node", `<query xmlns='urn:xmpp:mam:2' node='princely_musings'/>`, mam.ErrUnsupported},
		{"wrong FORM_TYPE", `<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'>` + field("FORM_TYPE", "urn:xmpp:mam:1") + `</x></query>`, mam.ErrBadRequest},
		{"cancelled form", `<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='cancel'/></query>`, mam.ErrBadRequest},
		{"two forms", `<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data'/><x xmlns='jabber:x:data'/></query>`, mam.ErrBadRequest},
		{"malformed with", q(field("with", "@@@/"), ""), mam.ErrBadRequest},
		{"with with empty localpart", q(field("with", "@example.org"), ""), mam.ErrBadRequest},
		{"with several values", q(field("with", "a@example.org", "b@example.org"), ""), mam.ErrBadRequest},
		{"repeated field", q(field("with", "a@example.org")+field("with", "b@example.org"), ""), mam.ErrBadRequest},
		{"malformed start", q(field("start", "yesterday"), ""), mam.ErrBadRequest},
		{"start without zone", q(field("start", "2010-06-07T00:00:00"), ""), mam.ErrBadRequest},
		{"start date only", q(field("start", "2010-06-07"), ""), mam.ErrBadRequest},
		{"start with space separator", q(field("start", "2010-06-07 00:00:00Z"), ""), mam.ErrBadRequest},
		{"end month 13", q(field("end", "2010-13-07T00:00:00Z"), ""), mam.ErrBadRequest},
		{"end unix seconds", q(field("end", "1276128000"), ""), mam.ErrBadRequest},
		{"start after end", q(field("start", "2010-07-08T00:00:00Z")+field("end", "2010-07-07T00:00:00Z"), ""), mam.ErrBadRequest},
		{"include-groupchat not boolean", q(field("include-groupchat", "yes"), ""), mam.ErrBadRequest},
		{"element inside value", q(`<field var='with'><value><b/>x</value></field>`, ""), mam.ErrBadRequest},
		{"overlong id", q(field("after-id", strings.Repeat("a", 300)), ""), mam.ErrBadRequest},
		{"too many ids", q(field("ids", strings.Repeat("a\n", 300)), ""), mam.ErrBadRequest},
		{"overlong queryid", `<query xmlns='urn:xmpp:mam:2' queryid='` + strings.Repeat("q", 300) + `'/>`, mam.ErrBadRequest},
		{"rsm negative max", q("", "<max>-1</max>"), mam.ErrBadRequest},
		{"rsm hugely negative max", q("", "<max>-99999999999999999999999</max>"), mam.ErrBadRequest},
		{"rsm garbage max", q("", "<max>ten</max>"), mam.ErrBadRequest},
		{"rsm empty max", q("", "<max></max>"), mam.ErrBadRequest},
		{"rsm fractional max", q("", "<max>1.5</max>"), mam.ErrBadRequest},
		{"rsm max repeated", q("", "<max>1</max><max>2</max>"), mam.ErrBadRequest},
		{"rsm after and before", q("", "<after>a</after><before>b</before>"), mam.ErrBadRequest},
		{"rsm empty after", q("", "<after/>"), mam.ErrBadRequest},
		{"rsm negative index", q("", "<index>-2</index>"), mam.ErrBadRequest},
		{"rsm unknown element", q("", "<first>x</first>"), mam.ErrBadRequest},
		{"not a mam query", `<query xmlns='urn:xmpp:mam:1'/>`, mam.ErrBadRequest},
		{"truncated XML", `<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data'><field var='with'>`, mam.ErrBadRequest},
		{"not XML", `hello`, mam.ErrBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mam.ParseQueryBytes([]byte(tc.in), mam.Config{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// Parsing accepts any fractional precision and zone; every time mam
// writes has exactly six fractional digits in UTC (XEP-0082 profile that
// microsecond parsers such as slixmpp's read).
func TestParseTime(t *testing.T) {
	parse := []struct {
		in   string
		want time.Time
	}{
		{"2002-10-13T23:58:37Z", time.Date(2002, 10, 13, 23, 58, 37, 0, time.UTC)},
		{"2002-10-13T23:58:37.1Z", time.Date(2002, 10, 13, 23, 58, 37, 1e8, time.UTC)},
		{"2002-10-13T23:58:37.123Z", time.Date(2002, 10, 13, 23, 58, 37, 123e6, time.UTC)},
		{"2002-10-13T23:58:37.863916Z", time.Date(2002, 10, 13, 23, 58, 37, 863916e3, time.UTC)},
		{"2002-10-13T23:58:37.863916123Z", time.Date(2002, 10, 13, 23, 58, 37, 863916123, time.UTC)},
		{"2002-10-14T00:58:37.5+01:00", time.Date(2002, 10, 13, 23, 58, 37, 5e8, time.UTC)},
	}
	for _, tc := range parse {
		got, err := mam.ParseTime(tc.in)
		if err != nil {
			t.Errorf("ParseTime(%q): %v", tc.in, err)
			continue
		}
		if !got.Equal(tc.want) || got.Location() != time.UTC {
			t.Errorf("ParseTime(%q) = %v, want %v in UTC", tc.in, got, tc.want)
		}
	}
	format := []struct {
		in   time.Time
		want string
	}{
		{time.Date(2002, 10, 13, 23, 58, 37, 0, time.UTC), "2002-10-13T23:58:37.000000Z"},
		{time.Date(2002, 10, 13, 23, 58, 37, 123e6, time.UTC), "2002-10-13T23:58:37.123000Z"},
		{time.Date(2026, 12, 4, 13, 21, 9, 863916999, time.UTC), "2026-12-04T13:21:09.863916Z"}, // truncated, not rounded
		{time.Date(2002, 10, 13, 23, 58, 37, 0, time.FixedZone("x", 3600)), "2002-10-13T22:58:37.000000Z"},
	}
	for _, tc := range format {
		if s := mam.FormatTime(tc.in); s != tc.want {
			t.Errorf("FormatTime(%v) = %q, want %q", tc.in, s, tc.want)
		}
	}
}

// Errors end up in logs: they name the problem, never the client's values.
func TestParseErrorsCarryNoInput(t *testing.T) {
	for _, in := range []string{
		q(field("with", "secret@@example.org"), ""),
		q(field("start", "secret-date"), ""),
		q(field("include-groupchat", "secret"), ""),
		q("", "<max>secret</max>"),
		q("", "<index>secret</index>"),
	} {
		_, err := mam.ParseQueryBytes([]byte(in), mam.Config{})
		if err == nil || strings.Contains(err.Error(), "secret") {
			t.Errorf("error %v for %s", err, in)
		}
	}
	_, err := mam.ParsePrefsBytes([]byte(`<prefs xmlns='urn:xmpp:mam:2' default='never'><never><jid>secret@@example.org</jid></never></prefs>`))
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("prefs error %v", err)
	}
}

// An unknown child of a query is skipped only up to a bounded depth: a
// deeply nested one is refused with ErrBadRequest, a shallow one ignored.
func TestQuerySkipDepth(t *testing.T) {
	nest := func(n int) string {
		return strings.Repeat("<x xmlns='urn:example'>", n) + strings.Repeat("</x>", n)
	}
	for _, tc := range []struct {
		name  string
		depth int
		ok    bool
	}{
		{"shallow", 3, true},
		{"at the limit", 32, true},
		{"one over", 33, false},
		{"very deep", 100000, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := "<query xmlns='urn:xmpp:mam:2' queryid='q1'>" + nest(tc.depth) + "</query>"
			_, err := mam.ParseQueryBytes([]byte(in), mam.Config{})
			if tc.ok && err != nil {
				t.Fatalf("depth %d: %v", tc.depth, err)
			}
			if !tc.ok && !errors.Is(err, mam.ErrBadRequest) {
				t.Fatalf("depth %d: err = %v, want ErrBadRequest", tc.depth, err)
			}
		})
	}
}
