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
