package main

import (
	"context"
	"encoding/xml"
	"slices"
	"strconv"
	"time"

	"chatbx.eu/privacy/mam"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/muc"
	"mellium.im/xmpp/stanza"
)

// Discussion history (XEP-0045 § 7.2.15).
//
// A joining occupant gets the room's last messages, after the other
// occupants' presence and before the subject, each from its sender's
// occupant JID with a XEP-0203 <delay/> from the room. Where they come
// from follows the room's archive setting:
//
//   - A room that archives replays them from its archive (the store that
//     MAM reads): nothing is kept twice, and the archive's expiry and an
//     account's erasure apply to the history as well.
//   - A room that does not archive keeps its last messages in memory only,
//     at most the room's history length (muc#maxhistoryfetch, default
//     defaultRoomHistory, at most maxRoomHistory). They are lost on a
//     restart, dropped when the room is destroyed, when its archive setting
//     or history length changes, and when the sender's account is deleted;
//     a message with a XEP-0334 <no-store/> hint is not kept.
//
// A history length of 0 turns history off. The occupant's <history/>
// (maxstanzas, maxchars, seconds, since) narrows what is sent; a value
// that does not parse is ignored, as if absent.
const (
	fieldMaxHistory    = "muc#maxhistoryfetch"
	defaultRoomHistory = 20
	maxRoomHistory     = 50
	maxHistorySeconds  = 100 * 365 * 24 * 3600 // a longer <history seconds/> asks for all (and would overflow)
)

// historyEntry is one message of a room's in-memory history.
type historyEntry struct {
	at   time.Time
	real jid.JID // the sender's bare real JID, to forget on erasure
	msg  element // as broadcast, without to
}

// historyLength is how many messages r replays at most.
func (r *room) historyLength() int { return historyLen(r.historyMax) }

// historyLen is the history length of a stored HistoryMax.
func historyLen(stored int) int {
	switch {
	case stored < 0:
		return 0
	case stored == 0:
		return defaultRoomHistory
	}
	return min(stored, maxRoomHistory)
}

// remember adds a broadcast message of a room that does not archive to its
// in-memory history. Called with the service's lock held.
func (r *room) remember(at time.Time, real jid.JID, msg element) {
	n := r.historyLength()
	if n == 0 || r.archiving {
		return
	}
	if _, ok := msg.child(xml.Name{Space: nsHints, Local: "no-store"}); ok {
		return
	}
	if _, ok := msg.child(xml.Name{Space: stanza.NSClient, Local: "body"}); !ok {
		return // no chat states or receipts in history
	}
	r.history = append(r.history, historyEntry{at: at, real: real.Bare(), msg: msg})
	if over := len(r.history) - n; over > 0 {
		clear(r.history[:over])
		r.history = slices.Delete(r.history, 0, over)
	}
}

// forgetHistoryOf drops user's messages from r's in-memory history (the
// account is being deleted). Called with the service's lock held.
func (r *room) forgetHistoryOf(user jid.JID) {
	r.history = slices.DeleteFunc(r.history, func(h historyEntry) bool { return h.real.Equal(user.Bare()) })
}

// historyRequest is an occupant's <history/>; a negative number or a zero
// time means the attribute was absent (or did not parse).
type historyRequest struct {
	maxStanzas, maxChars, seconds int
	since                         time.Time
}

// parseHistoryRequest reads the <history/> of a join presence's MUC <x/>.
func parseHistoryRequest(join element) historyRequest {
	req := historyRequest{maxStanzas: -1, maxChars: -1, seconds: -1}
	x, ok := join.child(xml.Name{Space: muc.NS, Local: "x"})
	if !ok {
		return req
	}
	h, ok := x.child(xml.Name{Space: muc.NS, Local: "history"})
	if !ok {
		return req
	}
	num := func(name string) int {
		n, err := strconv.Atoi(h.attr(name))
		if err != nil || n < 0 {
			return -1
		}
		return n
	}
	req.maxStanzas, req.maxChars, req.seconds = num("maxstanzas"), num("maxchars"), num("seconds")
	if t, err := time.Parse(time.RFC3339Nano, h.attr("since")); err == nil {
		req.since = t
	}
	return req
}

// historyFor returns the messages to replay to s joining r, oldest first,
// addressed to s. Called with the service's lock held; an archiving room
// reads its archive (a local bbolt read).
func (m *mucService) historyFor(r *room, s *session, req historyRequest) []element {
	n := r.historyLength()
	if req.maxStanzas >= 0 {
		n = min(n, req.maxStanzas)
	}
	if n == 0 || req.maxChars == 0 {
		return nil
	}
	now := m.srv.cfg.Now()
	var earliest time.Time
	if req.seconds >= 0 && req.seconds < maxHistorySeconds { // longer: everything
		earliest = now.Add(-time.Duration(req.seconds) * time.Second)
	}
	if req.since.After(earliest) {
		earliest = req.since
	}
	type past struct {
		at  time.Time
		msg element
	}
	var msgs []past
	if r.archiving {
		if m.srv.mamStore == nil {
			return nil
		}
		page, err := m.srv.mamStore.Query(context.Background(), r.jid, mam.Query{Max: n, Last: true, Start: earliest})
		if err != nil {
			m.srv.log.Error("reading a room's history from its archive", "err", err)
			return nil
		}
		for _, am := range page.Messages {
			e, err := parseElement(am.Stanza)
			if err != nil {
				continue
			}
			id := xml.StartElement{Name: xml.Name{Space: stanza.NSSid, Local: "stanza-id"}, Attr: []xml.Attr{
				{Name: xml.Name{Local: "id"}, Value: am.ID}, {Name: xml.Name{Local: "by"}, Value: r.jid.String()}}}
			inner := append(stripStanzaIDs(e.inner, r.jid.String()), id, id.End())
			msgs = append(msgs, past{at: am.Time, msg: e.withInner(inner).withAttr("from", am.With.String())})
		}
	} else {
		for _, h := range r.history {
			if !earliest.IsZero() && h.at.Before(earliest) {
				continue
			}
			msgs = append(msgs, past{at: h.at, msg: h.msg})
		}
		if len(msgs) > n {
			msgs = msgs[len(msgs)-n:]
		}
	}

	out := make([]element, 0, len(msgs))
	for _, p := range msgs {
		d := xml.StartElement{Name: xml.Name{Space: nsDelay, Local: "delay"}, Attr: []xml.Attr{
			{Name: xml.Name{Local: "from"}, Value: r.jid.String()},
			{Name: xml.Name{Local: "stamp"}, Value: p.at.UTC().Format("2006-01-02T15:04:05.000000Z")}}}
		inner := append(p.msg.inner[:len(p.msg.inner):len(p.msg.inner)], d, d.End())
		out = append(out, p.msg.withInner(inner).withAttr("to", s.jid.String()).withAttr("type", "groupchat"))
	}
	if req.maxChars > 0 { // the newest that fit, whole stanzas (§ 7.2.15)
		total, first := 0, len(out)
		for first > 0 {
			b, err := out[first-1].bytes()
			if err != nil || total+len(b) > req.maxChars {
				break
			}
			total += len(b)
			first--
		}
		out = out[first:]
	}
	return out
}
