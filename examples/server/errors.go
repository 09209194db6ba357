package main

import "errors"

// Errors that end a client's stream; streamErrorFor maps each to the
// stream error the client gets.
var (
	// errWireLimit is returned by a limitConn read when the connection's
	// byte budget (a negotiation step or a stanza) is spent
	// (policy-violation).
	errWireLimit = errors.New("c2s: byte budget exceeded")
	// errTooManyAttrs is returned when an element of a stanza has more
	// than maxAttrs attributes (policy-violation).
	errTooManyAttrs = errors.New("c2s: too many attributes")
	// errTooDeep is returned when a stanza nests elements deeper than
	// maxDepth (policy-violation).
	errTooDeep = errors.New("c2s: elements nested too deep")
	// errStreamText is returned for text between stanzas that is not
	// whitespace (bad-format).
	errStreamText = errors.New("c2s: text at the stream level")
	// errRestrictedXML is returned for XML that XMPP forbids (RFC 6120
	// § 11.1): comments, processing instructions, DTDs (restricted-xml).
	errRestrictedXML = errors.New("c2s: comment, processing instruction or DTD")
	// errBadName is returned for an element or attribute whose local name
	// is not an XML name by itself, such as the 0 of A:0 (not-well-formed:
	// XML Namespaces).
	errBadName = errors.New("c2s: name not namespace-well-formed")
	// errDupAttr is returned for an element that carries an attribute
	// twice, literally or after namespace resolution (not-well-formed: XML
	// 1.0 § 3.1, XML Namespaces § 6.3); encoding/xml does not refuse it.
	errDupAttr = errors.New("c2s: duplicate attribute")
)
