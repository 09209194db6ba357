package main

import (
	"encoding/xml"
	"sync"
	"time"

	"mellium.im/xmpp/stanza"
)

// serverIQTimeout is how long the server waits for a client's answer to an
// IQ of its own (a disco#info for caps); then the callback gets no answer.
const serverIQTimeout = 30 * time.Second

// maxServerIQs bounds the server's own IQs waiting for one session.
const maxServerIQs = 8

// serverIQs are IQs the server sent to clients, each waiting for its
// answer: an answer is taken only from the session the IQ went to, with
// its id, addressed to the server. Each callback runs once: with the
// answer (a result or error element) and true, or with false when the
// session ended, the wait timed out or the IQ could not be queued.
type serverIQs struct {
	mu      sync.Mutex
	pending map[*session]map[string]serverIQ
	timeout time.Duration // 0 means serverIQTimeout
}

type serverIQ struct {
	cb    func(element, bool)
	timer *time.Timer
}

// request sends an IQ get with payload (tokens of one element) from the
// server to s and calls cb with the answer. It reports false (and does not
// call cb) when s has maxServerIQs waiting.
func (q *serverIQs) request(s *session, payload []xml.Token, cb func(element, bool)) bool {
	id := "srv-" + randomResource()
	q.mu.Lock()
	if q.pending == nil {
		q.pending = make(map[*session]map[string]serverIQ)
	}
	m := q.pending[s]
	if len(m) >= maxServerIQs {
		q.mu.Unlock()
		return false
	}
	if m == nil {
		m = make(map[string]serverIQ)
		q.pending[s] = m
	}
	timeout := q.timeout
	if timeout <= 0 {
		timeout = serverIQTimeout
	}
	m[id] = serverIQ{cb: cb, timer: time.AfterFunc(timeout, func() {
		if en, ok := q.take(s, id); ok {
			en.cb(element{}, false)
		}
	})}
	q.mu.Unlock()
	iq := element{start: xml.StartElement{Name: xml.Name{Space: stanza.NSClient, Local: "iq"}, Attr: []xml.Attr{
		{Name: xml.Name{Local: "type"}, Value: "get"},
		{Name: xml.Name{Local: "id"}, Value: id},
		{Name: xml.Name{Local: "from"}, Value: s.srv.cfg.Domain},
		{Name: xml.Name{Local: "to"}, Value: s.jid.String()},
	}}, inner: payload}
	if !s.send(iq) {
		if en, ok := q.take(s, id); ok {
			en.cb(element{}, false)
		}
	}
	return true
}

// take removes and returns the pending IQ id of s.
func (q *serverIQs) take(s *session, id string) (serverIQ, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	en, ok := q.pending[s][id]
	if !ok {
		return en, false
	}
	delete(q.pending[s], id)
	if len(q.pending[s]) == 0 {
		delete(q.pending, s)
	}
	en.timer.Stop()
	return en, true
}

// answer passes the IQ result or error e that s sent to the server to the
// callback waiting for it, and reports whether one was.
func (q *serverIQs) answer(s *session, e element) bool {
	if to := e.attr("to"); to != "" && to != s.srv.cfg.Domain {
		return false
	}
	en, ok := q.take(s, e.attr("id"))
	if ok {
		en.cb(e, true)
	}
	return ok
}

// drop ends the waits of s, whose session ended.
func (q *serverIQs) drop(s *session) {
	q.mu.Lock()
	m := q.pending[s]
	delete(q.pending, s)
	q.mu.Unlock()
	for _, en := range m {
		en.timer.Stop()
		en.cb(element{}, false)
	}
}
