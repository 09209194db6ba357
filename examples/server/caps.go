package main

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"slices"
	"strings"

	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/form"
)

// nsCaps is XEP-0115's namespace (entity capabilities).
const nsCaps = "http://jabber.org/protocol/caps"

// errCapsDuplicate is returned by capsVer for a disco#info answer that
// XEP-0115 § 5.4 forbids caching: a duplicate identity, feature or
// FORM_TYPE, or a form without FORM_TYPE.
var errCapsDuplicate = errors.New("caps: duplicate or malformed disco#info")

// discoFeatures returns the features of a disco#info <query/>.
func discoFeatures(q element) []string {
	var out []string
	for _, c := range q.children() {
		if c.start.Name == (xml.Name{Space: disco.NSInfo, Local: "feature"}) {
			out = append(out, c.attr("var"))
		}
	}
	return out
}

// capsVer computes the XEP-0115 (§ 5.1) verification string of a
// disco#info <query/> with SHA-1: identities, features and extended forms
// (XEP-0128), sorted, each followed by '<', hashed and base64-encoded.
func capsVer(q element) (string, error) {
	var ids, feats []string
	type xform struct {
		formType string
		fields   []string // "var<value<value<…" per field
	}
	var forms []xform
	for _, c := range q.children() {
		switch c.start.Name {
		case xml.Name{Space: disco.NSInfo, Local: "identity"}:
			lang := ""
			for _, a := range c.start.Attr {
				if a.Name.Local == "lang" && (a.Name.Space == "xml" || a.Name.Space == "http://www.w3.org/XML/1998/namespace") {
					lang = a.Value
				}
			}
			ids = append(ids, c.attr("category")+"/"+c.attr("type")+"/"+lang+"/"+c.attr("name"))
		case xml.Name{Space: disco.NSInfo, Local: "feature"}:
			feats = append(feats, c.attr("var"))
		case xml.Name{Space: form.NS, Local: "x"}:
			var f xform
			hasType := false
			for _, fld := range c.children() {
				if fld.start.Name != (xml.Name{Space: form.NS, Local: "field"}) {
					continue
				}
				var values []string
				for _, v := range fld.children() {
					if v.start.Name == (xml.Name{Space: form.NS, Local: "value"}) {
						values = append(values, v.text())
					}
				}
				if fld.attr("var") == fieldFormType {
					if hasType || len(values) != 1 {
						return "", errCapsDuplicate
					}
					hasType, f.formType = true, values[0]
					continue
				}
				slices.Sort(values)
				f.fields = append(f.fields, fld.attr("var")+"<"+strings.Join(append(values, ""), "<"))
			}
			if !hasType {
				return "", errCapsDuplicate
			}
			slices.Sort(f.fields)
			forms = append(forms, f)
		}
	}
	slices.Sort(ids)
	slices.Sort(feats)
	slices.SortFunc(forms, func(a, b xform) int { return strings.Compare(a.formType, b.formType) })
	if len(slices.Compact(slices.Clone(ids))) != len(ids) || len(slices.Compact(slices.Clone(feats))) != len(feats) {
		return "", errCapsDuplicate
	}
	var b strings.Builder
	for _, s := range ids {
		b.WriteString(s + "<")
	}
	for _, s := range feats {
		b.WriteString(s + "<")
	}
	for i, f := range forms {
		if i > 0 && forms[i-1].formType == f.formType {
			return "", errCapsDuplicate
		}
		b.WriteString(f.formType + "<")
		for _, fld := range f.fields {
			b.WriteString(fld)
		}
	}
	sum := sha1.Sum([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}
