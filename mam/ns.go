package mam

// Namespaces of the protocols this package speaks.
const (
	// NS is the XEP-0313 namespace (mam:2), also used by XEP-0441
	// preferences and archive metadata.
	NS = "urn:xmpp:mam:2"
	// NSExt is the disco feature for the XEP-0313 extended query fields
	// (before-id, after-id, ids), flipped pages and metadata.
	NSExt = "urn:xmpp:mam:2#extended"
	// NSGroupchatField is the disco feature announcing that the server
	// understands the include-groupchat query field.
	NSGroupchatField = "urn:xmpp:mam:2#groupchat-field"
	// NSSID is the XEP-0359 stanza-id namespace.
	NSSID = "urn:xmpp:sid:0"
	// NSHints is the XEP-0334 message processing hints namespace.
	NSHints = "urn:xmpp:hints"
	// NSRSM is the XEP-0059 result set management namespace.
	NSRSM = "http://jabber.org/protocol/rsm"
	// NSForward is the XEP-0297 stanza forwarding namespace.
	NSForward = "urn:xmpp:forward:0"
	// NSDelay is the XEP-0203 delayed delivery namespace.
	NSDelay = "urn:xmpp:delay"
	// NSMUCUser is the XEP-0045 muc#user namespace.
	NSMUCUser = "http://jabber.org/protocol/muc#user"
	// NSCarbons is the XEP-0280 message carbons namespace.
	NSCarbons = "urn:xmpp:carbons:2"
	// NSDataForm is the XEP-0004 data forms namespace.
	NSDataForm = "jabber:x:data"

	nsClient = "jabber:client"
	nsXML    = "http://www.w3.org/XML/1998/namespace"
)
