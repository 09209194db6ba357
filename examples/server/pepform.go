package main

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/form"
)

// XEP-0060 names for node configuration (§ 16.4.3) and publish-options
// (§ 7.1.5), which mellium does not export.
const (
	nsPubSubPublishOptions = "http://jabber.org/protocol/pubsub#publish-options"
	nsPubSubNodeConfig     = "http://jabber.org/protocol/pubsub#node_config"
	fieldAccessModel       = "pubsub#access_model"
	fieldPersistItems      = "pubsub#persist_items"
	fieldMaxItems          = "pubsub#max_items"
	fieldSendLastItem      = "pubsub#send_last_published_item"
)

// Errors of parsePEPForm.
var (
	// errPEPForm is returned for a form that is not a submitted data form
	// of the expected FORM_TYPE (bad-request).
	errPEPForm = errors.New("pep: malformed configuration form")
	// errPEPUnsupported is returned for a value this server does not
	// support, e.g. the access model authorize (not-acceptable).
	errPEPUnsupported = errors.New("pep: unsupported configuration value")
)

// pepOptions are the configuration fields a publish-options or configure
// form sets; nil means not given.
type pepOptions struct {
	access   *string
	persist  *bool
	maxItems *int
	sendLast *string
}

// apply returns c with the given fields set.
func (o pepOptions) apply(c nodeConfig) nodeConfig {
	if o.access != nil {
		c.Access = *o.access
	}
	if o.persist != nil {
		c.Persist = *o.persist
	}
	if o.maxItems != nil {
		c.MaxItems = *o.maxItems
	}
	if o.sendLast != nil {
		c.SendLast = *o.sendLast
	}
	return c
}

// matches reports whether every given field has c's value.
func (o pepOptions) matches(c nodeConfig) bool {
	return o.apply(c) == c
}

// parsePEPForm reads a submitted XEP-0004 data form x (jabber:x:data)
// whose FORM_TYPE, if given, is formType. Fields this server does not
// know are ignored (clients send more than they need); known fields with
// a value out of range fail with errPEPUnsupported, anything malformed
// with errPEPForm. max_items "max" and values above pepMaxItemsPerNode
// mean pepMaxItemsPerNode.
func parsePEPForm(x element, formType string) (pepOptions, error) {
	var o pepOptions
	if x.start.Name != (xml.Name{Space: form.NS, Local: "x"}) || x.attr("type") != "submit" {
		return o, errPEPForm
	}
	seen := make(map[string]bool)
	for _, f := range x.children() {
		if f.start.Name != (xml.Name{Space: form.NS, Local: "field"}) {
			continue
		}
		name := f.attr("var")
		if seen[name] {
			return o, fmt.Errorf("%w: field %q twice", errPEPForm, name)
		}
		seen[name] = true
		var values []string
		for _, v := range f.children() {
			if v.start.Name == (xml.Name{Space: form.NS, Local: "value"}) {
				values = append(values, strings.TrimSpace(v.text()))
			}
		}
		if len(values) > 1 {
			return o, fmt.Errorf("%w: field %q has several values", errPEPForm, name)
		}
		val := ""
		if len(values) == 1 {
			val = values[0]
		}
		switch name {
		case fieldFormType:
			if val != formType {
				return o, fmt.Errorf("%w: FORM_TYPE", errPEPForm)
			}
		case fieldAccessModel:
			switch val {
			case accessOpen, accessPresence, accessRoster, accessWhitelist:
				o.access = &val
			default:
				return o, fmt.Errorf("%w: access model", errPEPUnsupported)
			}
		case fieldPersistItems:
			b, ok := parseBool(val)
			if !ok {
				return o, fmt.Errorf("%w: persist_items", errPEPForm)
			}
			o.persist = &b
		case fieldMaxItems:
			n := pepMaxItemsPerNode
			if val != "max" {
				v, err := strconv.Atoi(val)
				if err != nil || v < 1 {
					return o, fmt.Errorf("%w: max_items", errPEPUnsupported)
				}
				n = min(v, pepMaxItemsPerNode)
			}
			o.maxItems = &n
		case fieldSendLastItem:
			switch val {
			case sendLastNever, sendLastOnSub, sendLastOnSubPresence:
				o.sendLast = &val
			default:
				return o, fmt.Errorf("%w: send_last_published_item", errPEPUnsupported)
			}
		}
	}
	return o, nil
}

// nodeConfigForm is the owner's configuration form (XEP-0060 § 8.2) with
// c's values.
func nodeConfigForm(c nodeConfig) xml.TokenReader {
	field := func(name, typ, value string, options ...string) xml.TokenReader {
		val := xml.StartElement{Name: xml.Name{Space: form.NS, Local: "value"}}
		parts := []xml.TokenReader{xmlstream.Wrap(xmlstream.Token(xml.CharData(value)), val)}
		for _, o := range options {
			opt := xml.StartElement{Name: xml.Name{Space: form.NS, Local: "option"}}
			parts = append(parts, xmlstream.Wrap(xmlstream.Wrap(xmlstream.Token(xml.CharData(o)), val), opt))
		}
		attrs := []xml.Attr{{Name: xml.Name{Local: "var"}, Value: name}}
		if typ != "" {
			attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "type"}, Value: typ})
		}
		return xmlstream.Wrap(xmlstream.MultiReader(parts...), xml.StartElement{Name: xml.Name{Space: form.NS, Local: "field"}, Attr: attrs})
	}
	persist := "0"
	if c.Persist {
		persist = "1"
	}
	return xmlstream.Wrap(xmlstream.MultiReader(
		field(fieldFormType, "hidden", nsPubSubNodeConfig),
		field(fieldAccessModel, "list-single", c.Access, accessOpen, accessPresence, accessRoster, accessWhitelist),
		field(fieldPersistItems, "boolean", persist),
		field(fieldMaxItems, "text-single", strconv.Itoa(c.MaxItems)),
		field(fieldSendLastItem, "list-single", c.SendLast, sendLastNever, sendLastOnSub, sendLastOnSubPresence),
	), xml.StartElement{Name: xml.Name{Space: form.NS, Local: "x"}, Attr: []xml.Attr{{Name: xml.Name{Local: "type"}, Value: "form"}}})
}
