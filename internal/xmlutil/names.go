package xmlutil

import (
	"encoding/xml"
	"unicode/utf8"
)

// NamesWellFormed reports whether the local names of t and of its
// attributes are XML names by themselves (XML Namespaces § 3: the local
// part is an NCName). encoding/xml accepts a prefixed name such as A:0
// whose local part "0" is not one; written again without its prefix, as
// <0 xmlns='A'>, it would be malformed. An attribute with an empty local
// name is never written and passes.
func NamesWellFormed(t xml.StartElement) bool {
	if !startsName(t.Name.Local) {
		return false
	}
	for _, a := range t.Attr {
		if a.Name.Local != "" && !startsName(a.Name.Local) {
			return false
		}
	}
	return true
}

// startsName reports whether s starts with a character that may begin an
// XML name (XML 1.0 § 2.3 NameStartChar). The decoder has already checked
// that the whole name consists of name characters; only those allowed
// inside a name but not first remain to refuse.
func startsName(s string) bool {
	if s == "" {
		return false
	}
	r, _ := utf8.DecodeRuneInString(s)
	switch {
	case r >= '0' && r <= '9', r == '-', r == '.', r == 0xB7,
		r >= 0x300 && r <= 0x36F, r == 0x203F, r == 0x2040:
		return false
	}
	return true
}

// AttrsUnique reports whether no two attributes of t have the same name
// (XML 1.0 § 3.1, well-formedness constraint "Unique Att Spec", and XML
// Namespaces § 6.3: no two attributes with the same local name whose
// prefixes are bound to the same namespace name). t comes from
// encoding/xml's Decoder.Token, which resolves prefixes to namespace names
// but does not refuse duplicates: after it, a literal duplicate (two
// attributes a, two xmlns, two xmlns:p) and a namespace duplicate (p:a and
// q:a with p and q bound to one URI) both show as two equal xml.Names. Its cost
// is quadratic in the number of attributes up to 16, linear above.
func AttrsUnique(t xml.StartElement) bool {
	a := t.Attr
	if len(a) > 16 {
		seen := make(map[xml.Name]struct{}, len(a))
		for _, x := range a {
			if _, dup := seen[x.Name]; dup {
				return false
			}
			seen[x.Name] = struct{}{}
		}
		return true
	}
	for i := 1; i < len(a); i++ {
		for j := range i {
			if a[i].Name == a[j].Name {
				return false
			}
		}
	}
	return true
}
