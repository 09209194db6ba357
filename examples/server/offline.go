package main

import (
	"context"
	"encoding/xml"
	"errors"
	"sync"
	"time"

	"chatbx.eu/privacy/examples/server/internal/web"
	"chatbx.eu/privacy/retention"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// XEP-0160 offline messages, off unless -offline-messages is set.
const (
	nsMsgOffline              = "msgoffline"    // XEP-0160 § 3 disco feature
	maxOfflineTTL             = 720 * time.Hour // the most -offline-messages allows
	defaultMaxOfflineMessages = 1000
	maxOfflineBytes           = 10 << 20 // all of one user's offline messages
	offlineBatch              = 32       // messages read per transaction on delivery
	offlineSendWait           = writeTimeout
)

// offlineService stores messages to users without a session and hands
// them over at the user's next initial presence.
type offlineService struct {
	srv   *Server
	store *offlineStore
	ttl   time.Duration // 0: off
	maxN  int

	mu   sync.Mutex
	busy map[string]chan struct{} // users whose messages are being delivered
}

// wirePersonal opens the stores of private XML, vCards and offline
// messages in server.db. With -offline-messages off it deletes offline
// messages a run with it on left behind: they were promised for that
// run's lifetime, and nothing delivers or expires them now.
func (srv *Server) wirePersonal(ctx context.Context) error {
	var err error
	if srv.private, err = newPrivateStore(srv.db); err != nil {
		return err
	}
	if srv.vcards, err = newVCardStore(srv.db); err != nil {
		return err
	}
	st, err := newOfflineStore(srv.db)
	if err != nil {
		return err
	}
	srv.offline = &offlineService{srv: srv, store: st, ttl: srv.cfg.OfflineMessages,
		maxN: orDefault(srv.cfg.MaxOfflineMessages, defaultMaxOfflineMessages), busy: map[string]chan struct{}{}}
	if srv.offline.ttl == 0 {
		n, err := st.Expire(ctx, time.Unix(1<<62, 0))
		if err != nil {
			return err
		}
		if n > 0 {
			srv.log.Info("offline messages off: deleted the messages kept by an earlier run", "count", n)
		}
	}
	return nil
}

// personalFeatures are the disco features of private XML, vCards and (when
// on) offline messages, on the server's disco#info.
func (srv *Server) personalFeatures() []string {
	f := []string{nsPrivate, nsVCard}
	if srv.offline.ttl > 0 {
		f = append(f, nsMsgOffline)
	}
	return f
}

// offlineJobs is the retention job of offline messages (none when off).
// Its MaxAge leaves room for a late run, as the uploads job's does, so no
// message is kept longer than -offline-messages.
func (srv *Server) offlineJobs() []retention.Job {
	ttl := srv.offline.ttl
	if ttl == 0 {
		return nil
	}
	every := min(10*time.Minute, ttl/10)
	return []retention.Job{{
		Name:     "offline-messages",
		Data:     "messages sent to you while you had no session (XEP-0160), kept until delivered at your next login",
		MaxAge:   max(ttl-every-every/10-time.Second, 0),
		Expirer:  srv.offline.store,
		Interval: every,
	}}
}

// personalPrivacyItems are the /privacy rows of private XML, vCards and,
// when off, offline messages (when on, their retention job has the row).
func (srv *Server) personalPrivacyItems() []web.PrivacyItem {
	const kept = "until your client replaces or removes it, or you delete the account"
	items := []web.PrivacyItem{
		{Data: "private XML storage (XEP-0049: settings and bookmarks your client keeps here), at most 256 KiB",
			Kept: kept, Job: "account deletion"},
		{Data: "vCard (XEP-0054: the profile and avatar your client publishes, readable by every user of this server), at most 128 KiB",
			Kept: kept, Job: "account deletion"},
	}
	if srv.offline.ttl == 0 {
		items = append(items, web.PrivacyItem{Data: "messages sent to you while you have no session",
			Kept: "not kept: offline storage is off, the sender gets an error", Job: "none (never stored)"})
	}
	return items
}

// offlineReportNote is the line printed after the privacy report at start
// when offline messages are off.
func (srv *Server) offlineReportNote() string {
	if srv.offline.ttl > 0 {
		return ""
	}
	return "Messages to users without a session are not kept (-offline-messages 0): the sender gets an error.\n"
}

// keep stores the message e from a local user to the local user to, who
// has no session, if offline storage is on and the message is worth
// keeping: type chat or normal, with a body or a XEP-0334 <store/> hint,
// without <no-store/>. It reports whether the message was stored; false
// means the caller bounces it as before (full storage, no such account,
// a chat state only…).
func (o *offlineService) keep(ctx context.Context, to jid.JID, e element) bool {
	if o.ttl == 0 || !offlineWorthy(e) {
		return false
	}
	now := o.srv.cfg.Now()
	msg, err := o.stamped(e, now).bytes()
	if err != nil {
		return false
	}
	user := to.Localpart()
	err = o.store.put(user, now, msg, o.maxN, maxOfflineBytes, func() bool {
		a, err := o.srv.manager.Get(ctx, user)
		return err == nil && !a.Blocked && !o.srv.sessions.isBlocked(user)
	})
	switch {
	case err == nil:
		return true
	case errors.Is(err, errOfflineFull), errors.Is(err, errOfflineRefused):
	default:
		o.srv.log.Error("offline messages: store failed", "err", err)
	}
	return false
}

// offlineWorthy reports whether e is a message XEP-0160 storage keeps.
func offlineWorthy(e element) bool {
	switch e.attr("type") {
	case "", "chat", "normal":
	default:
		return false
	}
	if _, ok := e.child(xml.Name{Space: nsHints, Local: "no-store"}); ok {
		return false
	}
	_, body := e.child(xml.Name{Space: stanza.NSClient, Local: "body"})
	_, store := e.child(xml.Name{Space: nsHints, Local: "store"})
	return body || store
}

// stamped returns e with the XEP-0203 delay of offline storage (XEP-0160
// § 3) from the server, stamped now; a delay claiming to be from the
// server that the sender put there is removed first.
func (o *offlineService) stamped(e element, now time.Time) element {
	domain := o.srv.cfg.Domain
	name := xml.Name{Space: stanza.NSDelay, Local: "delay"}
	var inner []xml.Token
	for _, c := range topLevelPieces(e.inner) {
		if s, ok := c[0].(xml.StartElement); ok && s.Name == name && (element{start: s}).attr("from") == domain {
			continue
		}
		inner = append(inner, c...)
	}
	d := xml.StartElement{Name: name, Attr: []xml.Attr{
		{Name: xml.Name{Local: "from"}, Value: domain},
		{Name: xml.Name{Local: "stamp"}, Value: now.UTC().Format("2006-01-02T15:04:05.000000Z")},
	}}
	inner = append(inner, d, xml.CharData("Offline Storage"), d.End())
	return e.withInner(inner)
}

// topLevelPieces cuts inner tokens into top-level pieces: each child
// element with its content, or one token of text between them.
func topLevelPieces(inner []xml.Token) [][]xml.Token {
	var out [][]xml.Token
	depth, start := 0, 0
	for i, tok := range inner {
		switch tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				start = i
			}
			depth++
		case xml.EndElement:
			depth--
			if depth == 0 {
				out = append(out, inner[start:i+1])
			}
		default:
			if depth == 0 {
				out = append(out, inner[i:i+1])
			}
		}
	}
	return out
}

// deliver hands the user's stored messages, oldest first, to s, whose
// client just sent its initial presence, and deletes them from the store
// once queued. Expired ones are deleted unsent. Deliveries to one user
// run one at a time, so two resources coming online never both get a
// message. A message stays stored when s's queue does not take it (the
// session ended): the next initial presence gets it.
func (o *offlineService) deliver(s *session) {
	if o.ttl == 0 {
		return
	}
	user := s.jid.Localpart()
	o.mu.Lock()
	for o.busy[user] != nil {
		ch := o.busy[user]
		o.mu.Unlock()
		<-ch
		o.mu.Lock()
	}
	done := make(chan struct{})
	o.busy[user] = done
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		delete(o.busy, user)
		o.mu.Unlock()
		close(done)
	}()
	for {
		msgs, err := o.store.list(user, offlineBatch)
		if err != nil {
			o.srv.log.Error("offline messages: read failed", "err", err)
			return
		}
		if len(msgs) == 0 {
			return
		}
		var sent [][]byte
		ok := true
		now := o.srv.cfg.Now()
		for _, m := range msgs {
			if !m.at.Add(o.ttl).After(now) {
				sent = append(sent, m.key) // expired: dropped unsent
				continue
			}
			e, err := parseElement(m.xml)
			if err == nil && !s.sendWait(e, offlineSendWait) {
				ok = false
				break
			}
			sent = append(sent, m.key) // unreadable ones are dropped too
		}
		if err := o.store.remove(user, sent); err != nil {
			o.srv.log.Error("offline messages: delete after delivery failed", "err", err)
			return
		}
		if !ok {
			return
		}
	}
}

// sendWait queues e for the client like send, but waits up to timeout
// for the client to make room in the queue (renewed by each stanza it
// takes) instead of ending a session whose queue is full: a long backlog
// of offline messages must not overflow it. It reports whether e was
// queued.
func (s *session) sendWait(e element, timeout time.Duration) bool {
	if s.ending.Load() {
		return false
	}
	if s.out.push(e) {
		s.kickWriter()
		return true
	}
	return s.waitForSpace(e, timeout)
}
