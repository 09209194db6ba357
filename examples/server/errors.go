package main

import "errors"

// Errors of the client connection limits; each ends the stream with a
// policy-violation stream error.
var (
	// errWireLimit is returned by a limitConn read when the connection's
	// byte budget (a negotiation step or a stanza) is spent.
	errWireLimit = errors.New("c2s: byte budget exceeded")
	// errTooManyAttrs is returned when an element of a stanza has more
	// than maxAttrs attributes.
	errTooManyAttrs = errors.New("c2s: too many attributes")
	// errTooDeep is returned when a stanza nests elements deeper than
	// maxDepth.
	errTooDeep = errors.New("c2s: elements nested too deep")
)
