package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"
)

// serve reads the client's stanzas until the stream ends, in place of
// mellium's Session.Serve: Serve decodes each stanza's start element before
// its handler runs, so a stanza's own attributes escape a limit counted in
// the handler, and the stream errors it writes for read errors are never
// flushed (the client only sees </stream:stream>).
//
// Every top-level token refills the connection's byte budget
// (maxStanzaWireBytes, counted under the decoder) and counts as activity
// for the idle watch. A stanza over a limit ends the stream with
// policy-violation, malformed XML with not-well-formed, an element that is
// no stanza with unsupported-stanza-type. serve returns nil when the client
// closed its stream.
func (s *session) serve(lc *limitConn) error {
	r := s.xs.TokenReader()
	defer r.Close()
	for {
		lc.reset(maxStanzaWireBytes)
		tok, err := r.Token()
		if err != nil {
			if se := (stream.Error{}); errors.As(err, &se) && se.Err != stream.BadFormat.Err {
				// The client ended its stream with a stream error: end
				// ours without one (mellium's reader returns it; it
				// makes bad-format of a stray stream-level end tag).
				s.finish()
				_ = s.xs.Close()
				return err
			}
			if _, text := tok.(xml.CharData); text {
				err = errStreamText // mellium's stream reader refused it
			}
			return s.fail(err, lc)
		}
		s.activity.Add(1)
		switch t := tok.(type) {
		case xml.CharData:
			continue // whitespace keepalive: mellium refuses other text here
		case xml.StartElement:
			e, err := readElement(r, t)
			if err != nil {
				return s.fail(err, lc)
			}
			if err := s.dispatch(e); err != nil {
				var se stream.Error
				if !errors.As(err, &se) && !clientGone(err) {
					// A handler failed: the server's fault.
					err = fmt.Errorf("%w: %w", stream.InternalServerError, err)
				}
				return s.fail(err, lc)
			}
		default:
			return s.fail(stream.NotWellFormed, lc)
		}
	}
}

// fail ends the stream after err: nothing more when the client closed its
// stream or the session is already ending (its stream error is on the
// way); otherwise the matching stream error, sent by the writer, after
// which the rest of what the client sends is read and discarded for a
// moment so that it gets the error rather than a connection reset.
func (s *session) fail(err error, lc *limitConn) error {
	switch {
	case errors.Is(err, io.EOF):
		s.finish()
		_ = s.xs.Close() // answer the client's </stream:stream>
		return nil
	case s.ending.Load():
		return err
	case clientGone(err) && !lc.exceeded():
		return err
	}
	se := streamErrorFor(err, lc)
	s.end(se)
	<-s.writerDone
	_, _ = io.CopyN(io.Discard, s.conn, lingerBytes) // the writer set a deadline
	return err
}

// dispatch hands one stanza to handle with a writer for the answers, and
// answers an IQ get or set that handle left unanswered with
// service-unavailable (RFC 6120 § 8.4), as Session.Serve does.
func (s *session) dispatch(e element) error {
	if e.start.Name.Space == nsSM {
		return s.handleSM(e) // XEP-0198 (sm.go)
	}
	if e.start.Name.Local != "message" {
		s.flushPipeline() // handled after the messages before it (archivepipe.go)
	}
	s.pipelined = false
	w := &replyWriter{xs: s.xs, conn: s.conn, id: e.attr("id"), queue: s.smQueue()}
	defer w.Close()
	if err := s.handle(w, e); err != nil {
		return err
	}
	if typ := e.attr("type"); e.start.Name.Local == "iq" && (typ == "get" || typ == "set") && !w.answered {
		if err := s.replyError(w, e, stanza.Error{Type: stanza.Cancel, Condition: stanza.ServiceUnavailable}); err != nil {
			return err
		}
	}
	if !s.pipelined {
		// Counted after the pipelined stanzas before it (XEP-0198), which
		// the pipeline's worker counts when they are archived and routed.
		s.flushPipeline()
		s.smHandled()
	}
	return w.Close()
}

// replyWriter is what handlers write their answers to: it takes the
// session's output lock at the first token only, and notes whether an IQ
// answer (result or error) with the stanza's id went out. Its reader side
// is empty: the stanza was read whole before.
type replyWriter struct {
	xs       *xmpp.Session
	conn     net.Conn // its write deadline is set with the lock held
	w        xmlstream.TokenWriteFlushCloser
	id       string
	answered bool
	depth    int
	queue    *smReplies // with XEP-0198 on, answers go through the queue
}

func (rw *replyWriter) Token() (xml.Token, error) { return nil, io.EOF }

func (rw *replyWriter) EncodeToken(t xml.Token) error {
	switch t := t.(type) {
	case xml.StartElement:
		if rw.depth == 0 && t.Name.Local == "iq" {
			e := element{start: t}
			if typ := e.attr("type"); e.attr("id") == rw.id && (typ == "result" || typ == "error") {
				rw.answered = true
			}
		}
		rw.depth++
	case xml.EndElement:
		rw.depth--
	}
	if rw.queue != nil {
		rw.queue.add(t, rw.depth)
		return nil
	}
	if rw.w == nil {
		rw.w = rw.xs.TokenWriter()
		_ = rw.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	}
	return rw.w.EncodeToken(t)
}

// Encode writes v marshaled with encoding/xml.
func (rw *replyWriter) Encode(v any) error { return rw.encode(v, nil) }

// EncodeElement writes v marshaled with encoding/xml as start.
func (rw *replyWriter) EncodeElement(v any, start xml.StartElement) error {
	return rw.encode(v, &start)
}

func (rw *replyWriter) encode(v any, start *xml.StartElement) error {
	if wt, ok := v.(xmlstream.WriterTo); ok && start == nil {
		_, err := wt.WriteXML(rw)
		return err
	}
	var b bytes.Buffer
	enc := xml.NewEncoder(&b)
	var err error
	if start == nil {
		err = enc.Encode(v)
	} else {
		err = enc.EncodeElement(v, *start)
	}
	if err != nil {
		return err
	}
	_, err = xmlstream.Copy(rw, rawTokens{xml.NewDecoder(&b)})
	return err
}

// rawTokens reads tokens without resolving namespaces: xmlns attributes
// stay attributes, as the encoder expects them.
type rawTokens struct{ d *xml.Decoder }

func (r rawTokens) Token() (xml.Token, error) { return r.d.RawToken() }

func (rw *replyWriter) Flush() error {
	if rw.w == nil {
		return nil
	}
	return rw.w.Flush()
}

// Close flushes and releases the output lock; idempotent.
func (rw *replyWriter) Close() error {
	if rw.w == nil {
		return nil
	}
	w := rw.w
	rw.w = nil
	return w.Close()
}

// watchIdle ends a session that goes silent: after idle without a stanza
// from the client it sends a ping (XEP-0199), and if no stanza arrives
// within grace after it, it ends the stream with connection-timeout. Any
// answer counts, an error included (a client without ping support answers
// service-unavailable). Whitespace keepalives alone do not: the decoder
// yields them only with the next element, so they are also what would
// otherwise spend the stanza budget; a client that only sends whitespace
// is pinged, answers, and its budget is refilled. The ping goes out after
// idle to twice idle of silence.
//
// It runs on a timer, not a goroutine of its own (an idle session's
// goroutines are most of its memory); the returned stop ends it.
func (s *session) watchIdle(idle, grace time.Duration) (stop func()) {
	w := &idleWatch{s: s, idle: idle, grace: grace, seen: s.activity.Load()}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t = time.AfterFunc(idle, w.check)
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.t.Stop()
	}
}

// idleWatch is the state of watchIdle between two timer runs.
type idleWatch struct {
	s           *session
	idle, grace time.Duration
	mu          sync.Mutex
	t           *time.Timer
	seen        int64 // s.activity at the last check
	pinged      bool  // a ping went out since seen changed
}

// check runs when the timer fires.
func (w *idleWatch) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.s
	select {
	case <-s.done:
		return
	default:
	}
	if now := s.activity.Load(); now != w.seen {
		w.seen, w.pinged = now, false
		w.t.Reset(w.idle)
		return
	}
	if w.pinged {
		s.smIdleEnd()
		s.end(stream.ConnectionTimeout)
		return
	}
	s.send(s.ping())
	w.pinged = true
	w.t.Reset(w.grace)
}

// ping is a XEP-0199 ping from the server to the client.
func (s *session) ping() element {
	p := xml.Name{Space: ping.NS, Local: "ping"}
	return element{
		start: xml.StartElement{Name: xml.Name{Space: stanza.NSClient, Local: "iq"}, Attr: []xml.Attr{
			{Name: xml.Name{Local: "type"}, Value: "get"},
			{Name: xml.Name{Local: "id"}, Value: "ping-" + randomResource()},
			{Name: xml.Name{Local: "from"}, Value: s.srv.cfg.Domain},
			{Name: xml.Name{Local: "to"}, Value: s.jid.String()},
		}},
		inner: []xml.Token{xml.StartElement{Name: p}, xml.EndElement{Name: p}},
	}
}

// clientGone reports whether err says the client closed or reset its
// connection (without closing its stream).
func clientGone(err error) bool {
	var syntax *xml.SyntaxError
	return errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.As(err, &syntax) && syntax.Msg == "unexpected EOF"
}
