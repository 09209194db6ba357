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
// session that archives them in batches (mam.Archiver.ArchiveAll: the
// messages read while the previous batch committed share one write
// transaction and one fsync) and then routes them, in the order read.
//
// The durability promise, for a message stored in an archive (the
// sender's, the recipient's or both):
//
//   - it is routed to the recipient's sessions (or kept offline, or
//     refused) only after its archive commit returned, synced to disk;
//   - with XEP-0198 on, the client's count of handled stanzas (the h of
//     the server's <a/>) counts it only after that, too: an <a/> answers
//     an <r/> once every stanza read before the <r/> is handled, so an
//     acknowledged message is in the archive even if the server is killed
//     the next instant.
//
// Order: the pipeline keeps the order in which the client sent its
// messages, for routing, for the archive (a batch is stored in order) and
// for the acknowledgement count. Every stanza that does not go through the
// pipeline (presence, IQs, messages to rooms or to remote and bad
// addresses, blocked ones) first waits until the pipeline is empty, so it
// is handled and counted after everything the client sent before it.
//
// Back-pressure: at most maxPipelined stanzas of a session wait in the
// pipeline; the read loop stops reading the client's stream while it is
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
}

// pipeline adds it to the session's pipeline, starting the worker if none
// runs; it blocks while the pipeline is full. false when the session ended
// meanwhile (the stanza is dropped with the session).
func (s *session) pipeline(it pipeItem) bool {
	p := &s.pipe
	if p.slots == nil { // only the read loop sets it
		p.mu.Lock()
		p.slots = make(chan struct{}, maxPipelined)
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

// pipeWorker archives and routes batches until the pipeline is empty.
func (s *session) pipeWorker() {
	p := &s.pipe
	for {
		p.mu.Lock()
		batch := p.items
		p.items = nil
		if len(batch) == 0 {
			close(p.drained)
			p.drained = nil
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		s.archiveBatch(batch)
		for i := range batch {
			it := &batch[i]
			if it.r {
				s.smAnswer()
			} else {
				// A bounce is written like the read loop's answers (to
				// the stream, or through the queue with XEP-0198 on),
				// so it goes out before the answer to anything the
				// client sent after the message.
				w := &replyWriter{xs: s.xs, conn: s.conn, queue: s.smQueue()}
				if s.xs == nil { // a test's session without a stream
					w.queue = &smReplies{s: s}
				}
				_ = s.srv.route(context.Background(), s, w, it.e, it.to, it.out, it.storedForRecipient, it.senderID)
				_ = w.Close()
				s.smHandled()
			}
			batch[i] = pipeItem{} // the stanza is no longer held
			<-p.slots
		}
	}
}

// archiveBatch archives the batch's messages together, in order, and sets
// what each one is routed as.
func (s *session) archiveBatch(batch []pipeItem) {
	var chats []mam.Chat
	var idx []int
	for i := range batch {
		it := &batch[i]
		it.out = it.e
		if it.r || it.e.attr("type") == "error" {
			continue
		}
		chats = append(chats, mam.Chat{From: s.jid, To: it.to, Stanza: mam.Stanza{Start: it.e.start, Inner: it.e.inner}})
		idx = append(idx, i)
	}
	if len(chats) == 0 {
		return
	}
	res, _ := s.srv.archiver.ArchiveAll(context.Background(), chats)
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
