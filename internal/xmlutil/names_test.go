package xmlutil_test

import (
	"encoding/xml"
	"strings"
	"testing"

	"chatbx.eu/privacy/internal/xmlutil"
)

func TestNamesWellFormed(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{`<a/>`, true},
		{`<a b='1' _c='2' é='3'/>`, true},
		{`<A:b xmlns:A='urn:x'/>`, true},
		{`<A:0/>`, false},
		{`<A:-x/>`, false},
		{`<A:.x/>`, false},
		{`<a A:1='x'/>`, false},
		{`<a A:-b='x'/>`, false},
	} {
		start, err := xml.NewDecoder(strings.NewReader(tc.in)).Token()
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if got := xmlutil.NamesWellFormed(start.(xml.StartElement)); got != tc.want {
			t.Errorf("NamesWellFormed(%s) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestAttrsUnique: literal duplicates and duplicates after namespace
// resolution are refused; the same local name in different namespaces, or
// as an unprefixed attribute beside a prefixed one, is not a duplicate
// (XML Namespaces § 6.3 and its examples).
func TestAttrsUnique(t *testing.T) {
	many := func(dup bool) string { // more than 16 attributes: the map path
		var b strings.Builder
		b.WriteString("<a")
		for i := range 20 {
			b.WriteString(" a" + string(rune('a'+i)) + "='1'")
		}
		if dup {
			b.WriteString(" ac='2'")
		}
		return b.String() + "/>"
	}
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{`<a/>`, true},
		{`<a b='1' c='2'/>`, true},
		{`<a b='1' b='2'/>`, false},
		{`<a b='1' c='2' b='1'/>`, false},
		{`<iq xmlns='jabber:client' xmlns='jabber:client'/>`, false},
		{`<iq xmlns='jabber:client' xmlns='jabber:server'/>`, false},
		{`<a xmlns:p='u' xmlns:p='v'/>`, false},
		{`<a xmlns:p='u' xmlns:q='u' p:x='1' q:x='2'/>`, false},
		{`<a xmlns:p='u' xmlns:q='v' p:x='1' q:x='2'/>`, true},
		{`<a xmlns:p='u' xmlns='u' x='1' p:x='2'/>`, true}, // unprefixed x has no namespace
		{`<a xml:lang='en' xml:lang='de'/>`, false},
		{`<a xmlns:p='http://www.w3.org/XML/1998/namespace' xml:lang='en' p:lang='de'/>`, false},
		{`<a xmlns='u' xmlns:p='u'/>`, true},
		{many(false), true},
		{many(true), false},
	} {
		start, err := xml.NewDecoder(strings.NewReader(tc.in)).Token()
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if got := xmlutil.AttrsUnique(start.(xml.StartElement)); got != tc.want {
			t.Errorf("AttrsUnique(%s) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// FuzzAttrsUnique: for the first start element of any input, AttrsUnique
// never panics, agrees with a map of the resolved names, and refuses every
// literal duplicate that the raw (unresolved) token shows.
func FuzzAttrsUnique(f *testing.F) {
	for _, s := range []string{
		`<a b='1' b='2'/>`,
		`<iq xmlns='jabber:client' xmlns='jabber:client'/>`,
		`<a xmlns:p='u' xmlns:q='u' p:x='1' q:x='2'/>`,
		`<a xmlns:p='u' xmlns='u' x='1' p:x='2'/>`,
		`<a p:x='1' p:x='2'/>`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		raw, err := xml.NewDecoder(strings.NewReader(in)).RawToken()
		if err != nil {
			return
		}
		rs, ok := raw.(xml.StartElement)
		if !ok {
			return
		}
		tok, err := xml.NewDecoder(strings.NewReader(in)).Token()
		if err != nil {
			return
		}
		s := tok.(xml.StartElement)
		got := xmlutil.AttrsUnique(s)
		seen := map[xml.Name]bool{}
		want := true
		for _, a := range s.Attr {
			if seen[a.Name] {
				want = false
			}
			seen[a.Name] = true
		}
		if got != want {
			t.Fatalf("AttrsUnique(%q) = %v, a map of the names says %v", in, got, want)
		}
		lit := map[xml.Name]bool{}
		for _, a := range rs.Attr {
			if lit[a.Name] && got {
				t.Fatalf("AttrsUnique(%q) accepts the literal duplicate %v", in, a.Name)
			}
			lit[a.Name] = true
		}
	})
}
