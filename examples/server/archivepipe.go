package main

import (
	"context"
	"strconv"
	"sync"

	"chatbx.eu/privacy/mam"
	"mellium.im/xmpp/jid"
)

// The archive pipeline: a session's one-to-one messages to local users
// leave the read loop, which goes on reading, and reach a worker of the
// session that archives them in batches (the messages read while the
// previous batch committed share one write transaction and one fsync) and
// routes them, in the order read.
//
// The durability promise, for a message stored in an archive (the
// sender's, the recipient's or both): it is acknowledged only after its
// archive commit returned, synced to disk. What acknowledges it depends on
// the sender's stream:
//
//   - with XEP-0198 on, the client's count of handled stanzas (the h of
//     the server's <a/>). The message is routed at once, stamped with the
//     stanza-id its recipient's archive will store it under
//     (mam.Archiver.StageAll assigns it before the commit), while the
//     commit runs; it is counted only once the commit is synced. An <a/>
//     answers an <r/> once every stanza read before the <r/> is counted,
//     so an acknowledged message is in the archive even if the server is
//     killed the next instant. A crash between the delivery and the sync
//     loses the archived copy of a message its sender has not seen
//     acknowledged: the client resends it (XEP-0198 § 4), and the
//     recipient, who got the first copy, may see it twice, with the same
//     origin-id (XEP-0359) when the client set one.
//   - without XEP-0198, the routing to the recipient's sessions (or
//     keeping it offline, or refusing it): the message is routed only
//     after its archive commit returned.
//
// Order: the pipeline keeps the order in which the client sent its
// messages, for routing, for the archive (a batch is stored in order) and
// for the acknowledgement count. Every stanza that does not go through the
// pipeline (presence, IQs, messages to rooms or to remote and bad
// addresses, blocked ones) first waits until the pipeline is empty (every
// commit synced, every message counted), so it is handled and counted
// after everything the client sent before it.
//
// Back-pressure: at most maxPipelined stanzas of a session wait in the
// pipeline (with XEP-0198, until their commit is synced and they are
// counted); the read loop stops reading the client's stream while it is
// full, which stops the client through TCP flow control. A session holds
// no worker while it sends nothing: the worker starts with the first
// message and returns when the pipeline runs empty.

// maxPipelined bounds the stanzas of one session read but not yet archived
// and routed (each at most maxStanzaBytes). It is also the largest batch
// a session commits at once.
const maxPipelined = 128

// pipeItem is one stanza in the pipeline: a message to a local user, or an
// XEP-0198 <r/> to answer once the messages before it are handled.
type pipeItem struct {
	e  element
	to jid.JID
	r  bool // an <r/>

	// Set by the worker when archived.
	out                element
	storedForRecipient bool
	senderID           string
}

// archivePipe is a session's pipeline. Only the read loop adds items and
// waits for it; the worker takes them.
type archivePipe struct {
	mu      sync.Mutex
	items   []pipeItem
	drained chan struct{} // closed when the running worker returns; nil when none runs
	slots   chan struct{} // one token per item in the pipeline; made at first use
	ready   chan struct{} // signaled when items are added (capacity 1); made with slots
}

// pipeline adds it to the session's pipeline, starting the worker if none
// runs; it blocks while the pipeline is full. false when the session ended
// meanwhile (the stanza is dropped with the session).
func (s *session) pipeline(it pipeItem) bool {
	p := &s.pipe
	if p.slots == nil { // only the read loop sets it
		p.mu.Lock()
		p.slots = make(chan struct{}, maxPipelined)
		p.ready = make(chan struct{}, 1)
		p.mu.Unlock()
	}
	select {
	case p.slots <- struct{}{}:
	case <-s.done:
		return false
	}
	p.mu.Lock()
	p.items = append(p.items, it)
	if p.drained == nil {
		p.drained = make(chan struct{})
		go s.pipeWorker()
	}
	p.mu.Unlock()
	wake(p.ready)
	s.pipelined = true
	return true
}

// pipelineBusy reports whether the worker runs (stanzas are pending).
func (s *session) pipelineBusy() bool {
	p := &s.pipe
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.drained != nil
}

// flushPipeline waits until every stanza in the pipeline is archived and
// routed. Only the read loop (or the session's end, after it) calls it.
func (s *session) flushPipeline() {
	p := &s.pipe
	p.mu.Lock()
	ch := p.drained
	p.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

// stagedBatch is a batch whose archive commit was queued (StageAll),
// waiting for it to be routed (without XEP-0198) and counted.
type stagedBatch struct {
	items  []pipeItem
	st     *mam.Staged // nil: nothing to archive
	routed bool        // routed before the commit (XEP-0198 on)
}

// pipeWorker archives, routes and counts batches until the pipeline is
// empty. Each batch's archive commit is queued as soon as it is taken
// (batches commit in order, so the next one can join the group committer
// while one syncs). With XEP-0198 on, the batch is routed at once and
// counted when its commit is synced; without, it is routed then.
func (s *session) pipeWorker() {
	p := &s.pipe
	var staged []stagedBatch // in order; their commits pending
	for {
		for len(staged) > 0 && staged[0].committed() {
			s.finishStaged(staged[0])
			staged = staged[1:]
		}
		p.mu.Lock()
		batch := p.items
		p.items = nil
		if len(batch) == 0 && len(staged) == 0 {
			close(p.drained)
			p.drained = nil
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		if len(batch) > 0 {
			staged = append(staged, s.stageBatch(batch, s.smEnabled()))
			continue
		}
		// Wait for the oldest commit, or for new stanzas.
		select {
		case <-staged[0].st.Done():
		case <-p.ready:
		}
	}
}

// routeItem routes a message of the pipeline as archived.
func (s *session) routeItem(it *pipeItem) {
	// A bounce is written like the read loop's answers (to the stream, or
	// through the queue with XEP-0198 on), so it goes out before the
	// answer to anything the client sent after the message.
	w := &replyWriter{xs: s.xs, conn: s.conn, queue: s.smQueue()}
	if s.xs == nil { // a test's session without a stream
		w.queue = &smReplies{s: s}
	}
	_ = s.srv.route(context.Background(), s, w, it.e, it.to, it.out, it.storedForRecipient, it.senderID)
	_ = w.Close()
}

// stageBatch queues the batch's messages for their archive commit and,
// if route, routes them at once, stamped with the ids the commit stores
// them under (their stanzas are then dropped).
func (s *session) stageBatch(batch []pipeItem, route bool) stagedBatch {
	chats, idx := s.batchChats(batch)
	var st *mam.Staged
	if len(chats) > 0 {
		st = s.srv.archiver.StageAll(context.Background(), chats)
		s.setArchived(batch, idx, st.Results)
	}
	if route {
		for i := range batch {
			if it := &batch[i]; !it.r {
				s.routeItem(it)
				*it = pipeItem{} // counted later; the stanza is no longer held
			}
		}
	}
	return stagedBatch{items: batch, st: st, routed: route}
}

// committed reports whether b's archive commit is over.
func (b stagedBatch) committed() bool {
	if b.st == nil {
		return true
	}
	select {
	case <-b.st.Done():
		return true
	default:
		return false
	}
}

// finishStaged waits for b's commit, then routes its messages unless they
// were routed already, counts them and answers its <r/>s, in order,
// freeing their slots.
func (s *session) finishStaged(b stagedBatch) {
	if b.st != nil {
		b.st.Wait() // an archiving failure does not lose the message
	}
	for i := range b.items {
		it := &b.items[i]
		switch {
		case it.r:
			s.smAnswer()
		case !b.routed:
			s.routeItem(it)
			s.smHandled()
		default:
			s.smHandled()
		}
		*it = pipeItem{} // the stanza is no longer held
		<-s.pipe.slots
	}
}

// smEnabled reports whether the client enabled XEP-0198 on this stream.
func (s *session) smEnabled() bool {
	s.sm.mu.Lock()
	defer s.sm.mu.Unlock()
	return s.sm.enabled
}

// batchChats is what the archive takes of the batch's messages, with the
// index in batch of each.
func (s *session) batchChats(batch []pipeItem) (chats []mam.Chat, idx []int) {
	for i := range batch {
		it := &batch[i]
		it.out = it.e
		if it.r || it.e.attr("type") == "error" {
			continue
		}
		chats = append(chats, mam.Chat{From: s.jid, To: it.to, Stanza: mam.Stanza{Start: it.e.start, Inner: it.e.inner}})
		idx = append(idx, i)
	}
	return chats, idx
}

// setArchived sets what each archived message of the batch is routed as.
func (s *session) setArchived(batch []pipeItem, idx []int, res []mam.Result) {
	for k, r := range res {
		it := &batch[idx[k]]
		it.out, it.storedForRecipient, it.senderID = archived(r, s.jid, it.to, it.e)
	}
}

// smAnswer sends <a h/> with the count of handled stanzas.
func (s *session) smAnswer() {
	s.sm.mu.Lock()
	h := s.sm.in
	s.sm.mu.Unlock()
	s.send(smElement("a", "h", strconv.FormatUint(uint64(h), 10)))
}
