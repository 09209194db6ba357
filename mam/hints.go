package mam

import (
	"encoding/xml"

	"mellium.im/xmpp/carbons"
	"mellium.im/xmpp/stanza"
)

// The XEP-0334 hints, in nsHints.
const (
	hintNoPermanentStore = "no-permanent-store"
	hintNoStore          = "no-store"
	hintNoCopy           = "no-copy"
	hintStore            = "store"
)

// facts is what the archiver learns from one pass over a message.
type facts struct {
	typ     string // the type attribute; "" is normal
	payload bool   // a <body/> or another storable payload
	subject bool   // a <subject/> (room subject change)
	noStore bool   // <no-store/> or <no-permanent-store/>
	store   bool   // <store/>
	isCopy  bool   // a carbon or MAM result: a copy of a message archived already
}

// storablePayload reports whether a direct child of <message/> makes it
// worth archiving: a body, or an end-to-end encrypted payload whose body is
// hidden from the server.
func storablePayload(n xml.Name) bool {
	switch n {
	case xml.Name{Space: stanza.NSClient, Local: "body"},
		xml.Name{Space: stanza.NSServer, Local: "body"},
		xml.Name{Space: "urn:xmpp:omemo:2", Local: "encrypted"},               // XEP-0384 OMEMO
		xml.Name{Space: "eu.siacs.conversations.axolotl", Local: "encrypted"}, // legacy OMEMO
		xml.Name{Space: "urn:xmpp:openpgp:0", Local: "openpgp"},               // XEP-0373
		xml.Name{Space: "jabber:x:encrypted", Local: "x"}:                     // XEP-0027
		return true
	}
	return false
}

// classify records what a direct child of <message/> says about archiving.
func (f *facts) classify(n xml.Name) {
	switch {
	case storablePayload(n):
		f.payload = true
	case n.Local == "subject" && (n.Space == stanza.NSClient || n.Space == stanza.NSServer):
		f.subject = true
	case n.Space == nsHints:
		switch n.Local {
		case hintNoStore, hintNoPermanentStore:
			f.noStore = true
		case hintStore:
			f.store = true
		}
	case n.Space == carbons.NS && (n.Local == "sent" || n.Local == "received"),
		n.Space == NS && n.Local == "result":
		f.isCopy = true
	}
}

// archivable reports whether a one-to-one message may enter a user archive
// at all (before preferences): type chat or normal, not a copy, no
// no-store/no-permanent-store hint, and a storable payload or a <store/>
// hint.
func (f facts) archivable() bool {
	if f.typ != "" && f.typ != "chat" && f.typ != "normal" {
		return false
	}
	if f.isCopy || f.noStore {
		return false
	}
	return f.payload || f.store
}

// archivableGroupchat is archivable for a room message: type groupchat with
// a body, payload or subject change.
func (f facts) archivableGroupchat() bool {
	if f.typ != "groupchat" || f.isCopy || f.noStore {
		return false
	}
	return f.payload || f.subject || f.store
}
