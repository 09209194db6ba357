package main

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/stanza"
)

// failureLog is what the operator reads about refused clients: one line
// per failed negotiation in the connection log (stage, condition, the
// client's IP, which the log's logredact handler anonymizes), and counts of
// the stanzas the server refused, by class, in the operational log. A
// flood costs a bounded number of lines: past negLinesPerSecond, failed
// negotiations are only counted, in a summary line a second.
type failureLog struct {
	conn *slog.Logger
	now  func() time.Time

	mu     sync.Mutex
	second time.Time // start of the current one-second window
	lines  int       // lines written in it

	overflow *summaryLog // failed negotiations past the line budget
	stanzas  *summaryLog // refused stanzas by class
}

// negLinesPerSecond is how many failed negotiations a second get a line
// of their own.
const negLinesPerSecond = 20

func newFailureLog(connLog, opLog *slog.Logger) *failureLog {
	return &failureLog{
		conn:     connLog,
		now:      time.Now,
		overflow: newSummaryLog(connLog, "negotiations failed (past the line budget, counted only)"),
		stanzas:  newSummaryLog(opLog, "stanzas refused"),
	}
}

// negotiationFailed logs one failed negotiation; cond is the stream error
// sent, or why none was.
func (l *failureLog) negotiationFailed(stage, cond string, ip netip.Addr) {
	if l == nil {
		return
	}
	l.mu.Lock()
	now := l.now()
	if now.Sub(l.second) >= time.Second {
		l.second, l.lines = now, 0
	}
	l.lines++
	ok := l.lines <= negLinesPerSecond
	l.mu.Unlock()
	if !ok {
		l.overflow.add(stage + "/" + cond)
		return
	}
	l.conn.Warn("negotiation failed", "stage", stage, "condition", cond, "ip", ip.String())
}

// stanzaRefused counts one refused stanza of kind (message, presence, iq)
// with the error condition it got; a summary line a second at most, with
// no address and no content.
func (l *failureLog) stanzaRefused(kind string, cond stanza.Condition) {
	if l == nil {
		return
	}
	l.stanzas.add(kind + "/" + string(cond))
}

// stop logs what is still counted (at shutdown).
func (l *failureLog) stop() {
	if l == nil {
		return
	}
	l.overflow.stop()
	l.stanzas.stop()
}

// negotiationStage names the step a negotiation failed in, from the
// session state before that step and whether the server's stream header of
// the current stream went out: "tls" (the TLS handshake, or a stream header
// over TLS), "stream" (the first stream header, in plaintext), "starttls",
// "auth" (SASL or in-band registration), "bind".
func negotiationStage(state xmpp.SessionState, headerSent bool) string {
	secure := state&xmpp.Secure != 0
	switch {
	case !headerSent && secure:
		return "tls"
	case !headerSent:
		return "stream"
	case !secure:
		return "starttls"
	case state&xmpp.Authn == 0:
		return "auth"
	}
	return "bind"
}

// logNegotiationFailure writes the line of a negotiation that ended with
// err: its stage and the stream error it ends with, "connection-closed"
// when the client left without one. Nothing the client sent is logged.
func (srv *Server) logNegotiationFailure(xs *xmpp.Session, headerSent bool, err error, lc *limitConn, ip netip.Addr) {
	var state xmpp.SessionState
	if xs != nil {
		state = xs.State()
	}
	cond := "connection-closed"
	if se, ok := negotiationStreamError(err, lc); ok {
		cond = se.Err
	}
	if tlsHandshakeFailed(err) {
		cond = "tls-handshake-failed" // no stream can carry an error
	}
	srv.failures.negotiationFailed(negotiationStage(state, headerSent), cond, ip)
}

// tlsHandshakeFailed reports whether err comes from a failed TLS handshake
// (e.g. a client that does not trust the certificate sends an alert).
func tlsHandshakeFailed(err error) bool {
	var alert tls.AlertError
	var header tls.RecordHeaderError
	var verify *tls.CertificateVerificationError
	var op *net.OpError
	return errors.As(err, &alert) || errors.As(err, &header) || errors.As(err, &verify) ||
		errors.As(err, &op) && op.Op == "remote error" || strings.HasPrefix(err.Error(), "tls: ")
}

// clientEndedStream reports whether the client closed its stream
// (</stream:stream>) between two negotiation elements, as after an in-band
// registration: the end of a negotiation, not a failure.
func clientEndedStream(err error) bool {
	return strings.HasSuffix(err.Error(), "feature of type xml.EndElement")
}
