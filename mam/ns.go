package mam

// NS is the XEP-0313 namespace (mam:2), also used by XEP-0441 preferences
// and archive metadata. The namespaces of the other protocols this package
// speaks are mellium's (stanza.NSSid, paging.NS, forward.NS, …) where
// mellium has them, and unexported here where it has not.
const NS = "urn:xmpp:mam:2"

const (
	// nsExt is the disco feature for the XEP-0313 extended query fields
	// (before-id, after-id, ids), flipped pages and metadata.
	nsExt = "urn:xmpp:mam:2#extended"
	// nsGroupchatField is the disco feature announcing that the server
	// understands the include-groupchat query field.
	nsGroupchatField = "urn:xmpp:mam:2#groupchat-field"
	// nsHints is the XEP-0334 message processing hints namespace.
	nsHints = "urn:xmpp:hints"
	// nsPIE is the XEP-0227 namespace of an exported message archive.
	nsPIE = "urn:xmpp:pie:0#mam"
	nsXML = "http://www.w3.org/XML/1998/namespace"
)
