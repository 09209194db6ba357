package main

// RFC 6121 presence subscriptions: the state of each roster item (none, to,
// from, both, with the pending-out "ask" and the pre-approval flags), the
// four subscription presence types with both users' rosters updated in one
// bbolt transaction, pending inbound requests stored until answered,
// presence broadcast only to contacts with "from" or "both", probes and the
// user's other resources on initial presence, and directed presence.
//
// Every user is local (no s2s), so the server plays both the user's and the
// contact's server of RFC 6121 § 3 at once.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// Bounds of the subscription data.
const (
	// maxPendingSubscriptions is the most inbound subscription requests
	// kept for one user; a new one beyond it drops the oldest.
	maxPendingSubscriptions = 100
	// maxDirectedPresence is the most JIDs one session remembers having
	// sent directed presence to (they get unavailable when it goes
	// offline); directed presence beyond it is still delivered, not
	// remembered.
	maxDirectedPresence = 100
)

var (
	// recipient localpart → (requester bare JID → received, unix ns, 8 bytes)
	bucketSubPending = []byte("sub-pending")
	// requester localpart → (recipient localpart → empty): the requests a
	// user left at others, erased with the requester's account
	bucketSubPendingBy = []byte("sub-pending-by")
)

// subscription is the RFC 6121 value of the item's subscription attribute.
func (it rosterItem) subscription() string {
	if it.Sub == "" {
		return "none"
	}
	return it.Sub
}

// hasTo reports whether the user sees the contact's presence.
func (it rosterItem) hasTo() bool { return it.Sub == "to" || it.Sub == "both" }

// hasFrom reports whether the contact sees the user's presence.
func (it rosterItem) hasFrom() bool { return it.Sub == "from" || it.Sub == "both" }

// setSub sets the subscription from its two directions.
func (it *rosterItem) setSub(to, from bool) {
	switch {
	case to && from:
		it.Sub = "both"
	case to:
		it.Sub = "to"
	case from:
		it.Sub = "from"
	default:
		it.Sub = ""
	}
}

// xItem is the roster item as sent in a roster result or push.
func (it rosterItem) xItem() xRosterItem {
	return xRosterItem{JID: it.JID, Name: it.Name, Subscription: it.subscription(), Groups: it.Groups,
		Ask: it.Ask, Approved: it.Approved}
}

// sharesPresenceWith reports whether contact may see owner's presence:
// owner's roster item for contact's bare JID has subscription "from" or
// "both" and owner does not block contact (XEP-0191). A user always shares
// with its own resources.
func (srv *Server) sharesPresenceWith(owner, contact jid.JID) bool {
	if !srv.isLocalUser(owner) {
		return false
	}
	if owner.Bare().Equal(contact.Bare()) {
		return true
	}
	shares := false
	_ = srv.db.View(func(tx *bolt.Tx) error {
		x := subTx{srv: srv, tx: tx}
		it, ok := x.item(owner.Localpart(), contact.Bare().String())
		shares = ok && it.hasFrom() && !blocksTx(tx, owner.Localpart(), contact)
		return nil
	})
	return shares
}

// subTx is one transaction over the rosters and pending requests; what it
// sends is queued in after and sent once the transaction committed.
type subTx struct {
	srv   *Server
	tx    *bolt.Tx
	after []func()
}

// subUpdate runs fn in a write transaction and then sends what it queued.
func (srv *Server) subUpdate(fn func(x *subTx) error) error {
	var x *subTx
	err := srv.db.Update(func(tx *bolt.Tx) error {
		x = &subTx{srv: srv, tx: tx}
		return fn(x)
	})
	if err != nil {
		return err
	}
	for _, f := range x.after {
		f()
	}
	return nil
}

// item returns user's roster item for the bare JID contact.
func (x *subTx) item(user, contact string) (rosterItem, bool) {
	b := x.tx.Bucket(bucketRoster).Bucket([]byte(user))
	if b == nil {
		return rosterItem{}, false
	}
	v := b.Get([]byte(contact))
	if v == nil {
		return rosterItem{}, false
	}
	var it rosterItem
	if json.Unmarshal(v, &it) != nil {
		return rosterItem{JID: contact}, true
	}
	return it, true
}

// put stores user's item (a new one counts against the roster limit:
// errRosterFull) and queues its roster push.
func (x *subTx) put(user string, it rosterItem) error {
	b, err := x.tx.Bucket(bucketRoster).CreateBucketIfNotExists([]byte(user))
	if err != nil {
		return err
	}
	max := x.srv.cfg.rosterLimit()
	if b.Get([]byte(it.JID)) == nil && countUpTo(b, max) >= max {
		return errRosterFull
	}
	v, err := json.Marshal(it)
	if err != nil {
		return err
	}
	if err := b.Put([]byte(it.JID), v); err != nil {
		return err
	}
	owner, err := jid.New(user, x.srv.cfg.Domain, "")
	if err == nil {
		x.after = append(x.after, func() { x.srv.pushRoster(owner, it.xItem()) })
	}
	return nil
}

// addPending stores requester's subscription request to user; at
// maxPendingSubscriptions the oldest request is dropped first.
func (x *subTx) addPending(user, requester jid.JID) error {
	b, err := x.tx.Bucket(bucketSubPending).CreateBucketIfNotExists([]byte(user.Localpart()))
	if err != nil {
		return err
	}
	key := []byte(requester.String())
	if b.Get(key) != nil {
		return nil // asked again: still the first request's time
	}
	if countUpTo(b, maxPendingSubscriptions) >= maxPendingSubscriptions {
		var oldest []byte
		var oldestAt uint64
		_ = b.ForEach(func(k, v []byte) error {
			if at := pendingTime(v); oldest == nil || at < oldestAt {
				oldest, oldestAt = append([]byte(nil), k...), at
			}
			return nil
		})
		if oldest != nil {
			old, err := jid.Parse(string(oldest))
			if err := b.Delete(oldest); err != nil {
				return err
			}
			if err == nil {
				if err := x.unindexPending(user, old); err != nil {
					return err
				}
			}
		}
	}
	v := binary.BigEndian.AppendUint64(nil, uint64(x.srv.cfg.Now().UnixNano()))
	if err := b.Put(key, v); err != nil {
		return err
	}
	rb, err := x.tx.Bucket(bucketSubPendingBy).CreateBucketIfNotExists([]byte(requester.Localpart()))
	if err != nil {
		return err
	}
	return rb.Put([]byte(user.Localpart()), nil)
}

func pendingTime(v []byte) uint64 {
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// removePending deletes requester's request to user; it reports whether
// there was one.
func (x *subTx) removePending(user, requester jid.JID) (bool, error) {
	b := x.tx.Bucket(bucketSubPending).Bucket([]byte(user.Localpart()))
	if b == nil || b.Get([]byte(requester.String())) == nil {
		return false, nil
	}
	if err := b.Delete([]byte(requester.String())); err != nil {
		return false, err
	}
	return true, x.unindexPending(user, requester)
}

// unindexPending removes user from requester's reverse index.
func (x *subTx) unindexPending(user, requester jid.JID) error {
	rb := x.tx.Bucket(bucketSubPendingBy).Bucket([]byte(requester.Localpart()))
	if rb == nil {
		return nil
	}
	return rb.Delete([]byte(user.Localpart()))
}

// pendingRequests returns who asked to see user's presence, oldest first.
func (st *serverStore) pendingRequests(user string) ([]jid.JID, []time.Time, error) {
	type req struct {
		j  jid.JID
		at uint64
	}
	var reqs []req
	err := st.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSubPending).Bucket([]byte(user))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if j, err := jid.Parse(string(k)); err == nil {
				reqs = append(reqs, req{j, pendingTime(v)})
			}
			return nil
		})
	})
	sort.SliceStable(reqs, func(i, k int) bool { return reqs[i].at < reqs[k].at })
	js, ts := make([]jid.JID, len(reqs)), make([]time.Time, len(reqs))
	for i, r := range reqs {
		js[i], ts[i] = r.j, time.Unix(0, int64(r.at)).UTC()
	}
	return js, ts, err
}

// ---- delivery ----

// availableSessions returns the sessions of j's user that sent initial
// presence ("available resources").
func (srv *Server) availableSessions(j jid.JID) []*session {
	var out []*session
	for _, r := range srv.sessions.lookup(j.Bare()) {
		if _, ok := r.currentPresence(); ok {
			out = append(out, r)
		}
	}
	return out
}

// deliverAvailable sends e to every available resource of to.
func (srv *Server) deliverAvailable(to jid.JID, e element) {
	for _, r := range srv.availableSessions(to) {
		r.send(e)
	}
}

// sendPresenceOf sends the current presence of each available resource of
// from to each available resource of to.
func (srv *Server) sendPresenceOf(from, to jid.JID) {
	targets := srv.availableSessions(to)
	for _, rf := range srv.availableSessions(from) {
		if p, ok := rf.currentPresence(); ok {
			for _, rt := range targets {
				rt.send(p.withAttr("from", rf.jid.String()).withAttr("to", rt.jid.String()))
			}
		}
	}
}

// sendUnavailableOf sends unavailable from each available resource of from
// to each available resource of to; for a remote to, one unavailable per
// resource of from goes to to's bare JID, and its server hands it to the
// contact's resources (RFC 6121 § 3.2.2, § 3.3.3).
func (srv *Server) sendUnavailableOf(from, to jid.JID) {
	if srv.isRemote(to) {
		for _, rf := range srv.availableSessions(from) {
			srv.sendRemote(element{start: presenceStart(rf.jid, to.Bare(), "unavailable")}, to.Bare())
		}
		return
	}
	targets := srv.availableSessions(to)
	for _, rf := range srv.availableSessions(from) {
		for _, rt := range targets {
			rt.send(element{start: presenceStart(rf.jid, rt.jid, "unavailable")})
		}
	}
}

// pushRoster sends a roster push with item to the user's interested
// resources (those that asked for the roster, RFC 6121 § 2.1.6).
func (srv *Server) pushRoster(user jid.JID, item xRosterItem) {
	srv.pushIQ(user, "push-", func(r *session) bool { return r.rosterInterested.Load() },
		rosterQuery([]xRosterItem{item}))
}

// pushIQ sends an IQ set with payload to those of the user's sessions for
// which interested is true (roster and blocklist pushes); the payload is
// read once for all of them.
func (srv *Server) pushIQ(user jid.JID, idPrefix string, interested func(*session) bool, payload xml.TokenReader) {
	var toks []xml.Token
	for _, r := range srv.sessions.lookup(user.Bare()) {
		if !interested(r) {
			continue
		}
		if toks == nil {
			var err error
			if toks, err = xmlstream.ReadAll(payload); err != nil {
				return
			}
		}
		r.send(element{start: xml.StartElement{
			Name: xml.Name{Space: stanza.NSClient, Local: "iq"},
			Attr: []xml.Attr{
				{Name: xml.Name{Local: "type"}, Value: "set"},
				{Name: xml.Name{Local: "id"}, Value: idPrefix + randomResource()},
				{Name: xml.Name{Local: "to"}, Value: r.jid.String()},
			},
		}, inner: toks})
	}
}

// ---- subscription presence (RFC 6121 § 3) ----

// accountExists reports whether the local user exists (and is not being
// deleted).
func (srv *Server) accountExists(j jid.JID) bool {
	if srv.manager == nil || !srv.isLocalUser(j) {
		return false
	}
	_, err := srv.manager.Get(context.Background(), j.Localpart())
	return err == nil
}

// handleSubscription processes a subscription presence (subscribe,
// subscribed, unsubscribe, unsubscribed) from s to the local user to. A
// request to a name without an account is dropped silently, as one to a
// user who never answers: the sender learns nothing about which names
// exist.
func (s *session) handleSubscription(t xmlstream.TokenReadEncoder, e element, to jid.JID, typ string) error {
	srv := s.srv
	u, c := s.jid.Bare(), to.Bare()
	if u.Equal(c) {
		return nil
	}
	exists := srv.accountExists(c)
	// Subscription stanzas travel between bare JIDs (RFC 6121 § 3.1.2).
	e = e.withAttr("from", u.String()).withAttr("to", c.String())
	err := srv.subUpdate(func(x *subTx) error {
		switch typ {
		case "subscribe":
			return x.subscribe(u, c, e, exists)
		case "subscribed":
			return x.subscribed(u, c, e, exists)
		case "unsubscribe":
			return x.unsubscribe(u, c, e, exists)
		case "unsubscribed":
			return x.unsubscribed(u, c, e, exists)
		}
		return nil
	})
	switch {
	case errors.Is(err, errRosterFull):
		return s.replyError(t, e, rosterSetError(err, srv.cfg.rosterLimit()))
	case err != nil:
		srv.log.Error("presence subscription", "err", err)
		return s.replyError(t, e, stanza.Error{Type: stanza.Wait, Condition: stanza.InternalServerError})
	}
	if srv.isRemote(c) { // federation: the contact's server keeps its side
		if (typ == "subscribed" || typ == "unsubscribed") && srv.s2s != nil && srv.s2s.limits != nil {
			srv.s2s.limits.doneSubscription(c.Domainpart()) // answered (s2slimit.go)
		}
		srv.sendRemote(e, c)
		if typ == "subscribed" {
			srv.sendPresenceRemote(u, c)
		}
	}
	return nil
}

// subscribe: u asks to see c's presence (RFC 6121 § 3.1.2–3.1.3). u's item
// gets ask (created if need be); c's server answers at once when c already
// shares presence with u or pre-approved u, and otherwise keeps the
// request until c answers, delivering it to c's available resources now
// and at each initial presence.
func (x *subTx) subscribe(u, c jid.JID, e element, exists bool) error {
	it, ok := x.item(u.Localpart(), c.String())
	if !ok || !it.hasTo() && !it.Ask {
		if !ok {
			it = rosterItem{JID: c.String()}
		}
		it.Ask = !it.hasTo()
		if err := x.put(u.Localpart(), it); err != nil {
			return err
		}
	}
	if !exists {
		return nil
	}
	ci, ok := x.item(c.Localpart(), u.String())
	switch {
	case ok && ci.hasFrom():
		return x.inSubscribed(u, c) // auto-reply on c's behalf
	case ok && ci.Approved:
		ci.Approved = false
		ci.setSub(ci.hasTo(), true)
		if err := x.put(c.Localpart(), ci); err != nil {
			return err
		}
		return x.inSubscribed(u, c)
	}
	if err := x.addPending(c, u); err != nil {
		return err
	}
	x.after = append(x.after, func() { x.srv.deliverAvailable(c, e) })
	return nil
}

// inSubscribed: c approved u's request, at u (RFC 6121 § 3.1.6): ignored
// unless u asked; then u's item gets "to", u's available resources get
// the subscribed and c's current presence.
func (x *subTx) inSubscribed(u, c jid.JID) error {
	it, ok := x.item(u.Localpart(), c.String())
	if !ok || !it.Ask {
		return nil
	}
	it.Ask = false
	it.setSub(true, it.hasFrom())
	if err := x.put(u.Localpart(), it); err != nil {
		return err
	}
	x.after = append(x.after, func() {
		x.srv.deliverAvailable(u, element{start: presenceStart(c, u, "subscribed")})
		x.srv.sendPresenceOf(c, u)
	})
	return nil
}

// subscribed: u approves c's request (RFC 6121 § 3.1.5); with no request
// pending it is a pre-approval (§ 3.4), kept in u's item until c asks.
func (x *subTx) subscribed(u, c jid.JID, _ element, exists bool) error {
	it, ok := x.item(u.Localpart(), c.String())
	pending, err := x.removePending(u, c)
	if err != nil {
		return err
	}
	if ok && it.hasFrom() {
		return nil // nothing to approve: the stanza is not routed
	}
	if !ok {
		it = rosterItem{JID: c.String()}
	}
	if !pending {
		if it.Approved {
			return nil
		}
		it.Approved = true
		return x.put(u.Localpart(), it)
	}
	it.Approved = false
	it.setSub(it.hasTo(), true)
	if err := x.put(u.Localpart(), it); err != nil {
		return err
	}
	if !exists {
		return nil
	}
	return x.inSubscribed(c, u)
}

// unsubscribe: u no longer wants c's presence (RFC 6121 § 3.3).
func (x *subTx) unsubscribe(u, c jid.JID, e element, exists bool) error {
	if it, ok := x.item(u.Localpart(), c.String()); ok && (it.hasTo() || it.Ask) {
		it.Ask = false
		it.setSub(false, it.hasFrom())
		if err := x.put(u.Localpart(), it); err != nil {
			return err
		}
	}
	if !exists {
		return nil
	}
	return x.inUnsubscribe(c, u, e)
}

// inUnsubscribe: u's unsubscribe at c: c's pending request from u goes,
// c's item loses "from", c's resources get the unsubscribe and u gets
// unavailable from c's resources (RFC 6121 § 3.3.3).
func (x *subTx) inUnsubscribe(c, u jid.JID, e element) error {
	changed, err := x.removePending(c, u)
	if err != nil {
		return err
	}
	if ci, ok := x.item(c.Localpart(), u.String()); ok && ci.hasFrom() {
		ci.setSub(ci.hasTo(), false)
		if err := x.put(c.Localpart(), ci); err != nil {
			return err
		}
		changed = true
		x.after = append(x.after, func() { x.srv.sendUnavailableOf(c, u) })
	}
	if changed {
		x.after = append(x.after, func() { x.srv.deliverAvailable(c, e) })
	}
	return nil
}

// unsubscribed: u denies c's request or cancels c's subscription (RFC
// 6121 § 3.2): c gets unavailable from u's resources if it had u's
// presence.
func (x *subTx) unsubscribed(u, c jid.JID, e element, exists bool) error {
	if _, err := x.removePending(u, c); err != nil {
		return err
	}
	if it, ok := x.item(u.Localpart(), c.String()); ok && (it.hasFrom() || it.Approved) {
		if it.hasFrom() {
			x.after = append(x.after, func() { x.srv.sendUnavailableOf(u, c) })
		}
		it.Approved = false
		it.setSub(it.hasTo(), false)
		if err := x.put(u.Localpart(), it); err != nil {
			return err
		}
	}
	if !exists {
		return nil
	}
	return x.inUnsubscribed(c, u, e)
}

// inUnsubscribed: u's unsubscribed at c: c's item loses "to" and ask.
func (x *subTx) inUnsubscribed(c, u jid.JID, e element) error {
	ci, ok := x.item(c.Localpart(), u.String())
	if !ok || !ci.hasTo() && !ci.Ask {
		return nil
	}
	ci.Ask = false
	ci.setSub(false, ci.hasFrom())
	if err := x.put(c.Localpart(), ci); err != nil {
		return err
	}
	x.after = append(x.after, func() { x.srv.deliverAvailable(c, e) })
	return nil
}

// removeContact deletes u's roster item for c and cancels the subscription
// both ways (RFC 6121 § 2.5.2): c gets unsubscribe when u had "to" or
// asked, unsubscribed (and unavailable) when c had "from"; a remote c gets
// them over federation, and its server updates c's roster. The push of the
// removal to u is the caller's.
func (srv *Server) removeContact(u, c jid.JID) error {
	u, c = u.Bare(), c.Bare()
	exists := srv.accountExists(c)
	remote := srv.isRemote(c)
	return srv.subUpdate(func(x *subTx) error {
		it, ok := x.item(u.Localpart(), c.String())
		pending, err := x.removePending(u, c)
		if err != nil {
			return err
		}
		if b := x.tx.Bucket(bucketRoster).Bucket([]byte(u.Localpart())); b != nil {
			if err := b.Delete([]byte(c.String())); err != nil {
				return err
			}
		}
		if remote {
			// The contact's server keeps its side: tell it, as
			// handleSubscription does for the same presence sent by
			// the user.
			x.after = append(x.after, func() { srv.removeRemoteContact(u, c, it, ok, pending) })
			return nil
		}
		if !ok {
			return nil
		}
		if it.hasFrom() {
			x.after = append(x.after, func() { srv.sendUnavailableOf(u, c) })
		}
		if !exists {
			return nil
		}
		if it.hasTo() || it.Ask {
			if err := x.inUnsubscribe(c, u, element{start: presenceStart(u, c, "unsubscribe")}); err != nil {
				return err
			}
		}
		if it.hasFrom() {
			return x.inUnsubscribed(c, u, element{start: presenceStart(u, c, "unsubscribed")})
		}
		return nil
	})
}

// removeRemoteContact tells the server of the remote contact c that the
// local user u removed c (RFC 6121 § 2.5.2): unavailable from u's
// available resources and unsubscribed when c could see u's presence (or
// had asked to: the request is declined), unsubscribe when u could see or
// had asked for c's. it (when ok) is the roster item u had for c; pending
// says c's request to u was waiting.
func (srv *Server) removeRemoteContact(u, c jid.JID, it rosterItem, ok, pending bool) {
	from := ok && it.hasFrom()
	if from {
		srv.sendUnavailableOf(u, c)
	}
	if ok && (it.hasTo() || it.Ask) {
		srv.sendRemote(element{start: presenceStart(u, c, "unsubscribe")}, c)
	}
	if from || pending {
		srv.sendRemote(element{start: presenceStart(u, c, "unsubscribed")}, c)
	}
	if pending && srv.s2s != nil && srv.s2s.limits != nil {
		srv.s2s.limits.doneSubscription(c.Domainpart()) // answered (s2slimit.go)
	}
}

// tellContacts runs at an account's deletion, after its sessions ended
// (their unavailable presence went out then) and before its data is
// erased: every contact with a subscription either way, or asked, gets
// unsubscribe and/or unsubscribed from the user's bare JID through
// removeContact, as for a roster removal (RFC 6121 § 2.5.2), so that the
// contact's server drops its side of the relationship.
func (srv *Server) tellContacts(u jid.JID) {
	items, err := srv.store.roster(u.Localpart())
	if err != nil {
		srv.log.Error("account deletion: reading the roster to tell contacts", "err", err)
		return
	}
	for _, it := range items {
		if !it.hasTo() && !it.hasFrom() && !it.Ask {
			continue
		}
		c, err := jid.Parse(it.JID)
		if err != nil {
			continue
		}
		if err := srv.removeContact(u, c); err != nil {
			srv.log.Error("account deletion: telling a contact", "err", err)
		}
	}
}

// ---- broadcast, probes and directed presence (RFC 6121 § 4) ----

// sharePresence sends s's broadcast presence e to the user's available
// resources and to the available resources of every contact with
// subscription "from" or "both" that neither side blocks; unavailable
// also goes to those s sent directed presence to. On the initial presence
// s gets back the current presence of its "to"/"both" contacts (the
// probe, answered by the server for its own users), of the user's other
// available resources, and every pending subscription request.
func (srv *Server) sharePresence(s *session, e element, available, initial bool) {
	u := s.jid.Bare()
	sent := make(map[string]bool)
	deliver := func(r *session) {
		if sent[r.jid.String()] {
			return
		}
		sent[r.jid.String()] = true
		r.send(e.withAttr("to", r.jid.String()))
	}
	own := srv.sessions.lookup(u)
	for _, r := range own {
		if _, ok := r.currentPresence(); ok || r == s {
			deliver(r)
		}
	}
	items, err := srv.store.roster(s.jid.Localpart())
	if err != nil {
		srv.log.Error("presence: reading roster", "err", err)
	}
	var contacts []jid.JID
	for _, it := range items {
		c, err := jid.Parse(it.JID)
		if err == nil && srv.isRemote(c) { // federation: one copy per contact
			if it.hasFrom() && !srv.blockedEitherWay(s.jid, c) {
				srv.sendRemote(e.withAttr("from", s.jid.String()), c)
			}
			if initial && it.hasTo() {
				srv.sendRemote(element{start: presenceStart(u, c, "probe")}, c)
			}
			continue
		}
		if err != nil || !srv.isLocalUser(c) {
			continue
		}
		if it.hasFrom() {
			for _, r := range srv.availableSessions(c) {
				if !srv.blockedEitherWay(s.jid, r.jid) {
					deliver(r)
				}
			}
		}
		if initial && it.hasTo() {
			contacts = append(contacts, c)
		}
	}
	if !available {
		for _, j := range s.takeDirected() {
			if to, err := jid.Parse(j); err == nil {
				if srv.isRemote(to) {
					srv.sendRemote(e.withAttr("from", s.jid.String()), to)
					continue
				}
				for _, r := range srv.sessions.lookup(to) {
					if !srv.blockedEitherWay(s.jid, r.jid) {
						deliver(r)
					}
				}
			}
		}
		return
	}
	if !initial {
		return
	}
	for _, c := range contacts {
		for _, r := range srv.availableSessions(c) {
			if p, ok := r.currentPresence(); ok && !srv.blockedEitherWay(s.jid, r.jid) {
				s.send(p.withAttr("from", r.jid.String()).withAttr("to", s.jid.String()))
			}
		}
	}
	for _, r := range own {
		if p, ok := r.currentPresence(); ok && r != s {
			s.send(p.withAttr("from", r.jid.String()).withAttr("to", s.jid.String()))
		}
	}
	reqs, _, err := srv.store.pendingRequests(s.jid.Localpart())
	if err != nil {
		srv.log.Error("presence: reading pending subscriptions", "err", err)
	}
	for _, from := range reqs {
		s.send(element{start: presenceStart(from, u, "subscribe")})
	}
}

// noteDirected records (available) or forgets (unavailable) a directed
// presence from s to j.
func (s *session) noteDirected(j jid.JID, typ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case typ == "unavailable":
		delete(s.directed, j.String())
	case typ == "" && s.available && len(s.directed) < maxDirectedPresence:
		if s.directed == nil {
			s.directed = make(map[string]bool)
		}
		s.directed[j.String()] = true
	}
}

// takeDirected returns and forgets the directed presence targets of s.
func (s *session) takeDirected() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.directed))
	for j := range s.directed {
		out = append(out, j)
	}
	s.directed = nil
	sort.Strings(out)
	return out
}

// hadDirected reports whether s sent directed presence to j or its bare
// JID.
func (s *session) hadDirected(j jid.JID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.directed[j.String()] || s.directed[j.Bare().String()]
}

// ---- account data: erasure, export ----

// subsHolder is the account Holder of the pending subscription requests:
// those the user received (who asked, when) and those the user left at
// others. Its Erase also sets the subscription of every contact's item for
// the user to none (the items stay: they are the contacts' own address
// books), so it runs before the roster's own holder.
type subsHolder struct{ srv *Server }

func (subsHolder) Name() string { return "subscriptions" }

// Export writes <subscriptions> with <pending-in jid since> (requests to
// the user) and <pending-out jid> (the user's requests not answered yet).
func (h subsHolder) Export(_ context.Context, user jid.JID, w io.Writer) error {
	reqs, times, err := h.srv.store.pendingRequests(user.Localpart())
	if err != nil {
		return err
	}
	type xIn struct {
		JID   string `xml:"jid,attr"`
		Since string `xml:"since,attr"`
	}
	type xOut struct {
		JID string `xml:"jid,attr"`
	}
	out := struct {
		XMLName xml.Name `xml:"urn:example:subscriptions subscriptions"`
		In      []xIn    `xml:"pending-in"`
		Out     []xOut   `xml:"pending-out"`
	}{}
	for i, j := range reqs {
		out.In = append(out.In, xIn{JID: j.String(), Since: times[i].Format(time.RFC3339)})
	}
	err = h.srv.db.View(func(tx *bolt.Tx) error {
		rb := tx.Bucket(bucketSubPendingBy).Bucket([]byte(user.Localpart()))
		if rb == nil {
			return nil
		}
		return rb.ForEach(func(k, _ []byte) error {
			if j, err := jid.New(string(k), h.srv.cfg.Domain, ""); err == nil {
				out.Out = append(out.Out, xOut{JID: j.String()})
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	return enc.Flush()
}

// Erase deletes the requests to and from the user and resets the
// contacts' subscription state toward the user, in one transaction; it is
// idempotent.
func (h subsHolder) Erase(_ context.Context, user jid.JID) error {
	u := user.Bare()
	return h.srv.subUpdate(func(x *subTx) error {
		pb := x.tx.Bucket(bucketSubPending)
		// Requests the user received: out of each requester's index.
		if b := pb.Bucket([]byte(u.Localpart())); b != nil {
			err := b.ForEach(func(k, _ []byte) error {
				if r, err := jid.Parse(string(k)); err == nil {
					return x.unindexPending(u, r)
				}
				return nil
			})
			if err != nil {
				return err
			}
			if err := pb.DeleteBucket([]byte(u.Localpart())); err != nil {
				return err
			}
		}
		// Requests the user left at others.
		by := x.tx.Bucket(bucketSubPendingBy)
		if rb := by.Bucket([]byte(u.Localpart())); rb != nil {
			err := rb.ForEach(func(k, _ []byte) error {
				if b := pb.Bucket(k); b != nil {
					return b.Delete([]byte(u.String()))
				}
				return nil
			})
			if err != nil {
				return err
			}
			if err := by.DeleteBucket([]byte(u.Localpart())); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
				return err
			}
		}
		// Contacts' items for the user: subscription none.
		ub := x.tx.Bucket(bucketRoster).Bucket([]byte(u.Localpart()))
		if ub == nil {
			return nil
		}
		var contacts []jid.JID
		_ = ub.ForEach(func(k, _ []byte) error {
			if c, err := jid.Parse(string(k)); err == nil && h.srv.isLocalUser(c) {
				contacts = append(contacts, c)
			}
			return nil
		})
		for _, c := range contacts {
			ci, ok := x.item(c.Localpart(), u.String())
			if !ok || ci.Sub == "" && !ci.Ask && !ci.Approved {
				continue
			}
			ci.Sub, ci.Ask, ci.Approved = "", false, false
			if err := x.put(c.Localpart(), ci); err != nil {
				return err
			}
		}
		return nil
	})
}

// rosterItem returns user's item for the bare JID contact.
func (st *serverStore) rosterItem(user, contact string) (it rosterItem, ok bool) {
	_ = st.db.View(func(tx *bolt.Tx) error {
		it, ok = (&subTx{tx: tx}).item(user, contact)
		return nil
	})
	return it, ok
}
