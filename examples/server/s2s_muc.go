package main

import (
	"encoding/xml"
	"io"
	"net"
	"net/netip"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// Remote occupants of our rooms (XEP-0045 across federation). The room code
// works on sessions; a remote user in a room is a session of its own with
// no connection: what the room queues for it is forwarded to its domain's
// s2s queue, and the room's answers to it go the same way (remoteWriter).
// It exists while the user is in at least one room; nothing about it is
// stored.

// maxRemoteOccupants bounds the remote users present in our rooms.
const maxRemoteOccupants = 10000

// remoteOccupant returns the session standing for the remote full JID j,
// created if need be (create); nil when there is none or too many.
func (f *s2sService) remoteOccupant(j jid.JID, create bool) *session {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.occupants[j.String()]; s != nil || !create || f.down {
		return s
	}
	if len(f.occupants) >= maxRemoteOccupants {
		return nil
	}
	c, peer := net.Pipe() // a conn to close; nothing is ever written to it
	_ = peer.Close()
	s := newSession(f.srv, c, netip.Addr{})
	s.jid = j
	f.occupants[j.String()] = s
	f.wg.Add(1)
	go func() { // forwards what rooms queue for the remote user
		defer f.wg.Done()
		for {
			select {
			case <-s.out.ready:
				for e, ok := s.out.pop(); ok; e, ok = s.out.pop() {
					f.srv.sendRemote(e, j)
				}
			case <-s.done:
				return
			}
		}
	}()
	return s
}

// dropRemoteOccupant ends the session of a remote user who is in no room
// any more.
func (f *s2sService) dropRemoteOccupant(s *session) {
	if f.srv.muc.inAnyRoom(s) {
		return
	}
	f.mu.Lock()
	if f.occupants[s.jid.String()] == s {
		delete(f.occupants, s.jid.String())
	}
	f.mu.Unlock()
	s.finish()
}

// inAnyRoom reports whether s is an occupant of a room.
func (m *mucService) inAnyRoom(s *session) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.rooms {
		if _, in := r.nickOf(s); in {
			return true
		}
	}
	return false
}

// roomFromRemote hands a remote user's presence or message to one of our
// rooms to the room code, as from a session of that user.
func (srv *Server) roomFromRemote(e element, from, to jid.JID) {
	f := srv.s2s
	typ := e.attr("type")
	join := e.start.Name.Local == "presence" && typ == ""
	s := f.remoteOccupant(from, join)
	if s == nil {
		if typ != "error" && typ != "unavailable" {
			srv.replyRemote(e, stanza.Error{Type: stanza.Cancel, Condition: stanza.NotAcceptable})
		}
		return
	}
	w := &remoteWriter{srv: srv, to: from}
	var err error
	switch e.start.Name.Local {
	case "presence":
		err = srv.muc.handlePresence(s, w, e, to)
	case "message":
		err = srv.muc.handleMessage(s, w, e, to)
	default:
		srv.replyRemote(e, stanza.Error{Type: stanza.Cancel, Condition: stanza.ServiceUnavailable})
	}
	if err != nil {
		srv.log.Info("s2s: room stanza from a remote user", "err", err)
	}
	f.dropRemoteOccupant(s)
}

// remoteWriter is the answer writer of a remote user's stanza to a room:
// each top-level element written to it is sent to the user over
// federation.
type remoteWriter struct {
	srv   *Server
	to    jid.JID
	toks  []xml.Token
	depth int
}

func (w *remoteWriter) Token() (xml.Token, error) { return nil, io.EOF }

func (w *remoteWriter) EncodeToken(t xml.Token) error {
	w.toks = append(w.toks, xml.CopyToken(t))
	switch t.(type) {
	case xml.StartElement:
		w.depth++
	case xml.EndElement:
		w.depth--
		if w.depth == 0 {
			start, ok := w.toks[0].(xml.StartElement)
			if ok {
				e := element{start: start, inner: w.toks[1 : len(w.toks)-1]}
				w.srv.sendRemote(e, w.to)
			}
			w.toks = nil
		}
	}
	return nil
}

func (w *remoteWriter) Encode(v any) error {
	r, err := marshalReader(v)
	if err != nil {
		return err
	}
	_, err = xmlstream.Copy(w, r)
	return err
}

func (w *remoteWriter) EncodeElement(v any, start xml.StartElement) error {
	b, err := xml.Marshal(v)
	if err != nil {
		return err
	}
	e, err := parseElement(b)
	if err != nil {
		return err
	}
	_, err = xmlstream.Copy(w, xmlstream.Wrap(&sliceReader{toks: e.inner}, start))
	return err
}

func (w *remoteWriter) Flush() error { return nil }
