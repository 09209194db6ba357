package main

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"chatbx.eu/privacy/examples/server/internal/web"
	"mellium.im/xmlstream"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/pubsub"
	"mellium.im/xmpp/stanza"
)

// pepService is the Personal Eventing Protocol (XEP-0163) of every
// account: a XEP-0060 subset on the user's bare JID, enough for OMEMO
// (XEP-0384, both the eu.siacs.conversations.axolotl and urn:xmpp:omemo:2
// nodes), OpenPGP (XEP-0373), avatars (XEP-0084), nicknames (XEP-0172),
// bookmarks (XEP-0402) and private nodes (XEP-0223).
//
// The owner publishes (auto-creating the node, with publish-options),
// retracts, reads, configures, purges and deletes; others read and
// subscribe as the node's access model allows (open: anyone; presence:
// contacts the owner shares presence with; roster: contacts in the
// owner's roster; whitelist: the owner only). Notifications (headline
// messages with a pubsub#event) go to the owner's available resources and
// to the allowed contacts' available resources that subscribed or have
// "<node>+notify" in their entity capabilities (XEP-0115), which the
// server learns by asking the client's full JID for its disco#info when
// it sends presence with a caps hash it does not know yet. On a contact's
// initial presence (or once its caps are learned) it gets the last item of
// every node it has +notify for.
//
// Items and explicit subscriptions are stored in pepStore (subscriptions
// with a copy in memory, pepsubs.go); the caps of sessions live in memory
// only.
type pepService struct {
	srv   *Server
	store *pepStore
	iqs   serverIQs

	mu    sync.Mutex
	caps  map[*session]*sessionCaps
	cache map[string]map[string]bool // verified caps ver → +notify nodes
	subs  map[pepNodeKey]map[string]bool
	nsubs map[string]int // subscriber bare JID → subscriptions
}

// pepNodeKey names a node: the owner's localpart and the node name.
type pepNodeKey struct{ owner, node string }

// sessionCaps is what the server knows of one session's capabilities.
type sessionCaps struct {
	ver     string
	notify  map[string]bool // nodes with +notify
	pending string          // ver of a disco#info on the way
}

// Bounds of the in-memory state.
const (
	maxCapsCache     = 1024    // verified caps hashes kept; then the cache starts over
	maxNotifyNodes   = 64      // +notify nodes kept per caps hash…
	maxNotifyBytes   = 8 << 10 // …and bytes of their names: the cache holds at most 8 MiB
	maxSubscriptions = 256     // explicit subscriptions of one user
	pepNotifySuffix  = "+notify"
	nsDelay          = "urn:xmpp:delay"
)

func newPEPService(srv *Server, store *pepStore) (*pepService, error) {
	p := &pepService{
		srv:   srv,
		store: store,
		caps:  make(map[*session]*sessionCaps),
		cache: make(map[string]map[string]bool),
		subs:  make(map[pepNodeKey]map[string]bool),
		nsubs: make(map[string]int),
	}
	return p, p.loadSubscriptions()
}

// isPubSub reports whether an IQ payload is for the PEP service.
func isPubSub(payload xml.StartElement) bool {
	return payload.Name == xml.Name{Space: pubsub.NS, Local: "pubsub"} ||
		payload.Name == xml.Name{Space: pubsub.NSOwner, Local: "pubsub"}
}

// pepFeatures are advertised on the account's bare JID (XEP-0163 § 6).
func pepFeatures() []string {
	out := []string{pubsub.NS, nsPubSubPublishOptions}
	for _, f := range []string{"publish", "retract-items", "retrieve-items", "delete-nodes", "purge-nodes",
		"config-node", "auto-create", "persistent-items", "access-open", "access-presence", "access-roster",
		"access-whitelist", "last-published", "subscribe", "item-ids"} {
		out = append(out, pubsub.NS+"#"+f)
	}
	return out
}

// pepIdentity is the account's PEP identity.
var pepIdentity = discoIdentity{Category: "pubsub", Type: "pep"}

// pubsubError is an IQ error with a XEP-0060 application condition.
func pubsubError(iq stanza.IQ, se stanza.Error, app string) xml.TokenReader {
	iq.Type = stanza.ErrorIQ
	iq.From, iq.To = iq.To, iq.From
	var payload xml.TokenReader
	if app != "" {
		payload = xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: pubsub.NSErrors, Local: app}})
	}
	return iq.Wrap(se.Wrap(payload))
}

// handleIQ answers a pubsub IQ to a user's bare JID (to; the zero JID
// means the sender's own).
func (p *pepService) handleIQ(s *session, t xmlstream.TokenReadEncoder, e element, iq stanza.IQ, payload xml.StartElement, to jid.JID) error {
	owner := to.Bare()
	if to.Localpart() == "" { // no to: the sender's own account
		owner = s.jid.Bare()
	}
	isOwner := owner.Equal(s.jid.Bare())
	reply := func(typ stanza.ErrorType, cond stanza.Condition, app string) error {
		_, err := xmlstream.Copy(t, pubsubError(iq, stanza.Error{Type: typ, Condition: cond}, app))
		return err
	}
	ps, _ := e.child(payload.Name)
	var op element
	var opts element
	hasOpts := false
	for _, c := range ps.children() {
		if c.start.Name.Local == "publish-options" && c.start.Name.Space == pubsub.NS {
			opts, hasOpts = c, true
		} else if op.start.Name.Local == "" {
			op = c
		}
	}
	if op.start.Name.Local == "" {
		return reply(stanza.Modify, stanza.BadRequest, "")
	}
	node := op.attr("node")
	ownerOp := payload.Name.Space == pubsub.NSOwner
	if ownerOp && !isOwner {
		return reply(stanza.Auth, stanza.Forbidden, "")
	}
	set := iq.Type == stanza.SetIQ
	switch {
	case !ownerOp && op.start.Name.Local == "publish" && set:
		if !isOwner {
			return reply(stanza.Auth, stanza.Forbidden, "")
		}
		return p.publish(t, iq, owner, op, opts, hasOpts, reply)
	case !ownerOp && op.start.Name.Local == "retract" && set:
		if !isOwner {
			return reply(stanza.Auth, stanza.Forbidden, "")
		}
		return p.retract(t, iq, owner, op, reply)
	case !ownerOp && op.start.Name.Local == "items" && !set:
		return p.items(t, iq, s, owner, op, reply)
	case !ownerOp && (op.start.Name.Local == "subscribe" || op.start.Name.Local == "unsubscribe") && set:
		return p.subscribe(t, iq, s, owner, op, reply)
	case ownerOp && op.start.Name.Local == "configure":
		return p.configure(t, iq, owner, op, set, reply)
	case ownerOp && (op.start.Name.Local == "delete" || op.start.Name.Local == "purge") && set:
		if node == "" {
			return reply(stanza.Modify, stanza.BadRequest, "nodeid-required")
		}
		cfg, err := p.store.config(owner.Localpart(), node)
		if err == nil {
			if op.start.Name.Local == "delete" {
				err = p.store.deleteNode(owner.Localpart(), node)
			} else {
				err = p.store.purge(owner.Localpart(), node)
			}
		}
		if err != nil {
			return p.storeError(err, reply)
		}
		if _, err := xmlstream.Copy(t, iq.Result(nil)); err != nil {
			return err
		}
		ev := xml.StartElement{Name: xml.Name{Space: pubsub.NSEvent, Local: op.start.Name.Local}, Attr: []xml.Attr{attr("node", node)}}
		p.notify(owner, node, cfg, eventWrap(ev, ev.End()))
		if op.start.Name.Local == "delete" {
			p.dropSubscriptions(pepNodeKey{owner.Localpart(), node})
		}
		return nil
	}
	return reply(stanza.Cancel, stanza.FeatureNotImplemented, "unsupported")
}

func attr(name, value string) xml.Attr { return xml.Attr{Name: xml.Name{Local: name}, Value: value} }

// storeError answers a pepStore error.
func (p *pepService) storeError(err error, reply func(stanza.ErrorType, stanza.Condition, string) error) error {
	switch {
	case errors.Is(err, errPEPNodeNotFound), errors.Is(err, errPEPItemNotFound):
		return reply(stanza.Cancel, stanza.ItemNotFound, "")
	case errors.Is(err, errPEPPrecondition):
		return reply(stanza.Cancel, stanza.Conflict, "precondition-not-met")
	case errors.Is(err, errPEPQuota):
		return reply(stanza.Cancel, stanza.ResourceConstraint, "")
	case errors.Is(err, errPEPBadName), errors.Is(err, errPEPUnsupported):
		return reply(stanza.Modify, stanza.NotAcceptable, "")
	case errors.Is(err, errPEPForm):
		return reply(stanza.Modify, stanza.BadRequest, "invalid-options")
	}
	p.srv.log.Error("pep store", "err", err)
	return reply(stanza.Wait, stanza.InternalServerError, "")
}

// publish stores one item and notifies.
func (p *pepService) publish(t xmlstream.TokenReadEncoder, iq stanza.IQ, owner jid.JID, op, opts element, hasOpts bool,
	reply func(stanza.ErrorType, stanza.Condition, string) error) error {
	node := op.attr("node")
	if node == "" {
		return reply(stanza.Modify, stanza.BadRequest, "nodeid-required")
	}
	var items []element
	for _, c := range op.children() {
		if c.start.Name == (xml.Name{Space: pubsub.NS, Local: "item"}) {
			items = append(items, c)
		}
	}
	switch len(items) {
	case 0:
		return reply(stanza.Modify, stanza.BadRequest, "item-required")
	case 1:
	default:
		return reply(stanza.Modify, stanza.BadRequest, "invalid-payload")
	}
	payloads := items[0].children()
	switch len(payloads) {
	case 0:
		return reply(stanza.Modify, stanza.BadRequest, "payload-required")
	case 1:
	default:
		return reply(stanza.Modify, stanza.BadRequest, "invalid-payload")
	}
	b, err := payloads[0].bytes()
	if err != nil {
		return reply(stanza.Modify, stanza.BadRequest, "invalid-payload")
	}
	var o pepOptions
	if hasOpts {
		if x, ok := opts.child(xml.Name{Space: "jabber:x:data", Local: "x"}); ok {
			if o, err = parsePEPForm(x, nsPubSubPublishOptions); err != nil {
				return p.storeError(err, reply)
			}
		}
	}
	id := items[0].attr("id")
	if id == "" {
		id = randomResource()
	}
	it := pepItem{ID: id, Published: p.srv.cfg.Now().UTC(), XML: b}
	cfg, _, err := p.store.publish(owner.Localpart(), node, o, it)
	if err != nil {
		return p.storeError(err, reply)
	}
	pub := xml.StartElement{Name: xml.Name{Space: pubsub.NS, Local: "publish"}, Attr: []xml.Attr{attr("node", node)}}
	item := xml.StartElement{Name: xml.Name{Space: pubsub.NS, Local: "item"}, Attr: []xml.Attr{attr("id", id)}}
	res := xmlstream.Wrap(xmlstream.Wrap(xmlstream.Wrap(nil, item), pub), xml.StartElement{Name: xml.Name{Space: pubsub.NS, Local: "pubsub"}})
	if _, err := xmlstream.Copy(t, iq.Result(res)); err != nil {
		return err
	}
	p.notify(owner, node, cfg, eventItems(node, []pepItem{it}, false))
	return nil
}

// retract deletes one item.
func (p *pepService) retract(t xmlstream.TokenReadEncoder, iq stanza.IQ, owner jid.JID, op element,
	reply func(stanza.ErrorType, stanza.Condition, string) error) error {
	node := op.attr("node")
	if node == "" {
		return reply(stanza.Modify, stanza.BadRequest, "nodeid-required")
	}
	var ids []string
	for _, c := range op.children() {
		if c.start.Name == (xml.Name{Space: pubsub.NS, Local: "item"}) {
			ids = append(ids, c.attr("id"))
		}
	}
	if len(ids) != 1 || ids[0] == "" {
		return reply(stanza.Modify, stanza.BadRequest, "item-required")
	}
	cfg, err := p.store.config(owner.Localpart(), node)
	if err == nil {
		err = p.store.retract(owner.Localpart(), node, ids[0])
	}
	if err != nil {
		return p.storeError(err, reply)
	}
	if _, err := xmlstream.Copy(t, iq.Result(nil)); err != nil {
		return err
	}
	if n, _ := parseBool(op.attr("notify")); n {
		items := xml.StartElement{Name: xml.Name{Space: pubsub.NSEvent, Local: "items"}, Attr: []xml.Attr{attr("node", node)}}
		r := xml.StartElement{Name: xml.Name{Space: pubsub.NSEvent, Local: "retract"}, Attr: []xml.Attr{attr("id", ids[0])}}
		p.notify(owner, node, cfg, eventWrap(items, r, r.End(), items.End()))
	}
	return nil
}

// accessError answers a requester the node's access model refuses
// (XEP-0060 § 6.5.9): a whitelist node looks like none at all.
func accessError(cfg nodeConfig, reply func(stanza.ErrorType, stanza.Condition, string) error) error {
	switch cfg.Access {
	case accessPresence:
		return reply(stanza.Auth, stanza.NotAuthorized, "presence-subscription-required")
	case accessRoster:
		return reply(stanza.Auth, stanza.NotAuthorized, "not-in-roster-group")
	}
	return reply(stanza.Cancel, stanza.ItemNotFound, "")
}

// items answers an items request: the ids asked for, or the newest
// max_items, or all.
func (p *pepService) items(t xmlstream.TokenReadEncoder, iq stanza.IQ, s *session, owner jid.JID, op element,
	reply func(stanza.ErrorType, stanza.Condition, string) error) error {
	node := op.attr("node")
	if node == "" {
		return reply(stanza.Modify, stanza.BadRequest, "nodeid-required")
	}
	cfg, err := p.store.config(owner.Localpart(), node)
	if errors.Is(err, errPEPNodeNotFound) && owner.Equal(s.jid.Bare()) {
		// To its owner a node not created yet reads as empty (it is
		// created by the first publish): profanity publishes its first
		// OMEMO device list only after reading an empty one.
		empty := xml.StartElement{Name: xml.Name{Space: pubsub.NS, Local: "items"}, Attr: []xml.Attr{attr("node", node)}}
		ps := xml.StartElement{Name: xml.Name{Space: pubsub.NS, Local: "pubsub"}}
		_, err := xmlstream.Copy(t, iq.Result(xmlstream.Wrap(xmlstream.Wrap(nil, empty), ps)))
		return err
	}
	if err != nil {
		return p.storeError(err, reply)
	}
	if !p.allowed(owner, cfg, s.jid) {
		return accessError(cfg, reply)
	}
	var ids []string
	for _, c := range op.children() {
		if c.start.Name == (xml.Name{Space: pubsub.NS, Local: "item"}) && c.attr("id") != "" {
			ids = append(ids, c.attr("id"))
		}
	}
	max := 0
	if v := op.attr("max_items"); v != "" {
		if max, err = strconv.Atoi(v); err != nil || max < 1 {
			return reply(stanza.Modify, stanza.BadRequest, "")
		}
	}
	items, err := p.store.items(owner.Localpart(), node, ids, max)
	if err != nil {
		return p.storeError(err, reply)
	}
	toks := eventItems(node, items, true)
	ps := xml.StartElement{Name: xml.Name{Space: pubsub.NS, Local: "pubsub"}}
	_, err = xmlstream.Copy(t, iq.Result(xmlstream.Wrap(&sliceReader{toks: toks}, ps)))
	return err
}

// eventItems is <items node='…'> with the items, in the pubsub#event
// namespace (a notification) or the pubsub one (an items result).
func eventItems(node string, items []pepItem, result bool) []xml.Token {
	space := pubsub.NSEvent
	if result {
		space = pubsub.NS
	}
	wrap := xml.StartElement{Name: xml.Name{Space: space, Local: "items"}, Attr: []xml.Attr{attr("node", node)}}
	toks := []xml.Token{wrap}
	for _, it := range items {
		item := xml.StartElement{Name: xml.Name{Space: space, Local: "item"}, Attr: []xml.Attr{attr("id", it.ID)}}
		toks = append(toks, item)
		if pl, err := parseElement(it.XML); err == nil {
			toks = append(toks, pl.start)
			toks = append(toks, pl.inner...)
			toks = append(toks, pl.start.End())
		}
		toks = append(toks, item.End())
	}
	toks = append(toks, wrap.End())
	if !result {
		return eventWrap(toks...)
	}
	return toks
}

// eventWrap wraps tokens in <event xmlns='…pubsub#event'/>.
func eventWrap(toks ...xml.Token) []xml.Token {
	ev := xml.StartElement{Name: xml.Name{Space: pubsub.NSEvent, Local: "event"}}
	return append(append([]xml.Token{ev}, toks...), ev.End())
}

// allowed reports whether requester may read the owner's node.
func (p *pepService) allowed(owner jid.JID, cfg nodeConfig, requester jid.JID) bool {
	if requester.Bare().Equal(owner.Bare()) {
		return true
	}
	switch cfg.Access {
	case accessOpen:
		return true
	case accessPresence:
		return p.srv.sharesPresenceWith(owner.Bare(), requester.Bare())
	case accessRoster:
		return p.srv.store.inRoster(owner.Localpart(), requester)
	}
	return false
}

// subscribe handles subscribe and unsubscribe (XEP-0060 § 6.1, § 6.2).
func (p *pepService) subscribe(t xmlstream.TokenReadEncoder, iq stanza.IQ, s *session, owner jid.JID, op element,
	reply func(stanza.ErrorType, stanza.Condition, string) error) error {
	node := op.attr("node")
	if node == "" {
		return reply(stanza.Modify, stanza.BadRequest, "nodeid-required")
	}
	sub, err := jid.Parse(op.attr("jid"))
	if err != nil || !sub.Bare().Equal(s.jid.Bare()) {
		return reply(stanza.Modify, stanza.BadRequest, "invalid-jid")
	}
	key := pepNodeKey{owner.Localpart(), node}
	if op.start.Name.Local == "unsubscribe" {
		if !p.unsubscribeJID(key, sub) {
			return reply(stanza.Cancel, stanza.UnexpectedRequest, "not-subscribed")
		}
		_, err := xmlstream.Copy(t, iq.Result(nil))
		return err
	}
	cfg, err := p.store.config(owner.Localpart(), node)
	if err != nil {
		return p.storeError(err, reply)
	}
	if !p.allowed(owner, cfg, s.jid) {
		return accessError(cfg, reply)
	}
	if ok, err := p.subscribeJID(key, sub); err != nil {
		p.srv.log.Error("storing a PEP subscription", "err", err)
		return reply(stanza.Wait, stanza.InternalServerError, "")
	} else if !ok {
		return reply(stanza.Cancel, stanza.NotAllowed, "too-many-subscriptions")
	}
	el := xml.StartElement{Name: xml.Name{Space: pubsub.NS, Local: "subscription"}, Attr: []xml.Attr{
		attr("node", node), attr("jid", sub.String()), attr("subscription", "subscribed")}}
	res := xmlstream.Wrap(xmlstream.Wrap(nil, el), xml.StartElement{Name: xml.Name{Space: pubsub.NS, Local: "pubsub"}})
	if _, err := xmlstream.Copy(t, iq.Result(res)); err != nil {
		return err
	}
	if cfg.SendLast != sendLastNever {
		if items, err := p.store.items(owner.Localpart(), node, nil, 1); err == nil && len(items) > 0 {
			for _, r := range p.srv.sessions.lookup(sub) {
				r.send(p.eventMessage(owner, r.jid, eventItems(node, items, false), items[0].Published))
			}
		}
	}
	return nil
}

// subscribeJID subscribes sub to key, stored and in memory; false when
// sub has maxSubscriptions already.
func (p *pepService) subscribeJID(key pepNodeKey, sub jid.JID) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.subs[key][sub.String()] {
		return true, nil
	}
	if p.nsubs[sub.Bare().String()] >= maxSubscriptions {
		return false, nil
	}
	if err := p.store.addSubscription(pepSub{key: key, sub: sub.String()}); err != nil {
		return false, err
	}
	if p.subs[key] == nil {
		p.subs[key] = make(map[string]bool)
	}
	p.subs[key][sub.String()] = true
	p.nsubs[sub.Bare().String()]++
	return true, nil
}

// unsubscribeJID ends sub's subscription to key; false if there was none.
func (p *pepService) unsubscribeJID(key pepNodeKey, sub jid.JID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.subs[key][sub.String()] {
		return false
	}
	p.unsubscribeLocked(key, sub.String())
	p.removeStored([]pepSub{{key: key, sub: sub.String()}})
	return true
}

// removeStored deletes subscriptions from the store; a failure is logged
// (the memory copy is gone already, and the account's erasure or the
// node's deletion deletes them again). Called with p.mu held.
func (p *pepService) removeStored(subs []pepSub) {
	if err := p.store.removeSubscriptions(subs); err != nil {
		p.srv.log.Error("deleting PEP subscriptions", "err", err)
	}
}

func (p *pepService) unsubscribeLocked(key pepNodeKey, sub string) {
	delete(p.subs[key], sub)
	if len(p.subs[key]) == 0 {
		delete(p.subs, key)
	}
	if j, err := jid.Parse(sub); err == nil {
		b := j.Bare().String()
		if p.nsubs[b]--; p.nsubs[b] <= 0 {
			delete(p.nsubs, b)
		}
	}
}

// dropSubscriptions forgets the subscriptions to a deleted node.
func (p *pepService) dropSubscriptions(key pepNodeKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var gone []pepSub
	for sub := range p.subs[key] {
		p.unsubscribeLocked(key, sub)
		gone = append(gone, pepSub{key: key, sub: sub})
	}
	p.removeStored(gone)
}

// configure answers the owner's configuration form (get) or applies a
// submitted one (set; cancel changes nothing).
func (p *pepService) configure(t xmlstream.TokenReadEncoder, iq stanza.IQ, owner jid.JID, op element, set bool,
	reply func(stanza.ErrorType, stanza.Condition, string) error) error {
	node := op.attr("node")
	if node == "" {
		return reply(stanza.Modify, stanza.BadRequest, "nodeid-required")
	}
	cfg, err := p.store.config(owner.Localpart(), node)
	if err != nil {
		return p.storeError(err, reply)
	}
	if !set {
		c := xml.StartElement{Name: xml.Name{Space: pubsub.NSOwner, Local: "configure"}, Attr: []xml.Attr{attr("node", node)}}
		res := xmlstream.Wrap(xmlstream.Wrap(nodeConfigForm(cfg), c), xml.StartElement{Name: xml.Name{Space: pubsub.NSOwner, Local: "pubsub"}})
		_, err := xmlstream.Copy(t, iq.Result(res))
		return err
	}
	x, ok := op.child(xml.Name{Space: "jabber:x:data", Local: "x"})
	if !ok {
		return reply(stanza.Modify, stanza.BadRequest, "")
	}
	if x.attr("type") != "cancel" {
		o, err := parsePEPForm(x, nsPubSubNodeConfig)
		if err == nil {
			err = p.store.configure(owner.Localpart(), node, o.apply(cfg))
		}
		if err != nil {
			return p.storeError(err, reply)
		}
	}
	_, err = xmlstream.Copy(t, iq.Result(nil))
	return err
}

// eventMessage is a headline notification from the owner's bare JID to
// to; a non-zero stamp adds a XEP-0203 delay (the last item, sent later).
func (p *pepService) eventMessage(owner, to jid.JID, event []xml.Token, stamp time.Time) element {
	inner := event
	if !stamp.IsZero() {
		d := xml.StartElement{Name: xml.Name{Space: nsDelay, Local: "delay"}, Attr: []xml.Attr{
			attr("from", owner.Bare().String()), attr("stamp", stamp.UTC().Format("2006-01-02T15:04:05.000000Z"))}}
		inner = append(append(event[:len(event):len(event)], d), d.End())
	}
	return element{start: xml.StartElement{Name: xml.Name{Space: stanza.NSClient, Local: "message"}, Attr: []xml.Attr{
		attr("from", owner.Bare().String()), attr("to", to.String()), attr("type", "headline"), attr("id", "pep-"+randomResource()),
	}}, inner: inner}
}

// notify sends event to whoever gets the node's notifications: the
// owner's available resources; the available resources of the contacts
// the access model allows that have +notify for the node in their caps;
// and the sessions of explicit subscribers the access model allows.
func (p *pepService) notify(owner jid.JID, node string, cfg nodeConfig, event []xml.Token) {
	for _, r := range p.recipients(owner, node, cfg) {
		r.send(p.eventMessage(owner, r.jid, event, time.Time{}))
	}
}

func (p *pepService) recipients(owner jid.JID, node string, cfg nodeConfig) []*session {
	seen := make(map[*session]bool)
	var out []*session
	add := func(r *session) {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	for _, r := range p.srv.sessions.lookup(owner.Bare()) {
		if _, ok := r.currentPresence(); ok {
			add(r)
		}
	}
	if cfg.Access == accessWhitelist {
		return out
	}
	if items, err := p.srv.store.roster(owner.Localpart()); err == nil {
		for _, it := range items {
			c, err := jid.Parse(it.JID)
			if err != nil || !p.srv.isLocalUser(c) || !p.allowed(owner, cfg, c) {
				continue
			}
			for _, r := range p.srv.sessions.lookup(c) {
				if _, ok := r.currentPresence(); ok && p.wantsNotify(r, node) {
					add(r)
				}
			}
		}
	}
	p.mu.Lock()
	var subs []string
	for sub := range p.subs[pepNodeKey{owner.Localpart(), node}] {
		subs = append(subs, sub)
	}
	p.mu.Unlock()
	for _, sub := range subs {
		j, err := jid.Parse(sub)
		if err != nil || !p.allowed(owner, cfg, j) {
			continue
		}
		for _, r := range p.srv.sessions.lookup(j) {
			add(r)
		}
	}
	return out
}

// wantsNotify reports whether the session's caps have node+notify.
func (p *pepService) wantsNotify(r *session, node string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.caps[r]
	return c != nil && c.notify[node]
}

// presence learns the caps of a session's broadcast presence (XEP-0115):
// from the cache of verified hashes, else by asking the client for its
// disco#info. Once known, on the initial presence or a change of caps,
// the session gets the last items of the nodes it wants.
func (p *pepService) presence(s *session, e element, available bool) {
	if !available {
		p.mu.Lock()
		delete(p.caps, s)
		p.mu.Unlock()
		return
	}
	c, ok := e.child(xml.Name{Space: nsCaps, Local: "c"})
	ver, node := c.attr("ver"), c.attr("node")
	p.mu.Lock()
	st := p.caps[s]
	initial := st == nil
	if st == nil {
		st = &sessionCaps{}
		p.caps[s] = st
	}
	if !ok || ver == "" || c.attr("hash") == "" {
		st.ver, st.notify = "", nil
		p.mu.Unlock()
		return
	}
	if ver == st.ver && !initial {
		p.mu.Unlock()
		return
	}
	st.ver = ver
	if n, ok := p.cache[ver]; ok {
		st.notify = n
		p.mu.Unlock()
		p.sendLast(s, n)
		return
	}
	st.notify = nil
	if st.pending == ver {
		p.mu.Unlock()
		return
	}
	st.pending = ver
	p.mu.Unlock()
	q := xml.StartElement{Name: xml.Name{Space: disco.NSInfo, Local: "query"}, Attr: []xml.Attr{attr("node", node+"#"+ver)}}
	hash := c.attr("hash")
	p.iqs.request(s, []xml.Token{q, q.End()}, func(answer element, ok bool) {
		p.learned(s, ver, hash, answer, ok)
	})
}

// learned takes the client's disco#info answer for caps ver. A verified
// SHA-1 hash goes into the cache; an unverified answer still serves this
// session (a client lying about its own features only misleads itself).
func (p *pepService) learned(s *session, ver, hash string, answer element, ok bool) {
	var notify map[string]bool
	verified := false
	if ok && answer.attr("type") == "result" {
		if q, found := answer.child(xml.Name{Space: disco.NSInfo, Local: "query"}); found {
			notify = make(map[string]bool)
			size := 0
			for _, f := range discoFeatures(q) {
				if n, cut := strings.CutSuffix(f, pepNotifySuffix); cut && n != "" && len(notify) < maxNotifyNodes && size+len(n) <= maxNotifyBytes {
					notify[n] = true
					size += len(n)
				}
			}
			if v, err := capsVer(q); err == nil && hash == "sha-1" && v == ver {
				verified = true
			}
		}
	}
	p.mu.Lock()
	st := p.caps[s]
	if st == nil || st.ver != ver {
		p.mu.Unlock()
		return
	}
	st.pending = ""
	st.notify = notify
	if verified {
		if len(p.cache) >= maxCapsCache {
			clear(p.cache)
		}
		p.cache[ver] = notify
	}
	p.mu.Unlock()
	if len(notify) > 0 {
		p.sendLast(s, notify)
	}
}

// sendLast sends session r the last item of each node in notify of the
// user itself and of each contact in the user's roster, where the node
// sends its last item on presence and its access model allows the user.
func (p *pepService) sendLast(r *session, notify map[string]bool) {
	user := r.jid.Bare()
	owners := []string{user.Localpart()}
	if items, err := p.srv.store.roster(user.Localpart()); err == nil {
		for _, it := range items {
			if c, err := jid.Parse(it.JID); err == nil && p.srv.isLocalUser(c) {
				owners = append(owners, c.Localpart())
			}
		}
	}
	nodes := make([]string, 0, len(notify))
	for n := range notify {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	// One read transaction for up to (roster + 1) × maxNotifyNodes
	// lookups; the access checks (their own transactions) come after it,
	// never nested in it.
	last, err := p.store.lastItems(owners, nodes)
	if err != nil {
		p.srv.log.Error("pep last items", "err", err)
		return
	}
	for _, l := range last {
		o, err := jid.New(l.owner, p.srv.cfg.Domain, "")
		if err != nil || !p.allowed(o, l.cfg, user) {
			continue
		}
		r.send(p.eventMessage(o, r.jid, eventItems(l.node, []pepItem{l.item}, false), l.item.Published))
	}
}

// sessionEnded forgets a session's caps and its pending disco#info.
func (p *pepService) sessionEnded(s *session) {
	p.mu.Lock()
	delete(p.caps, s)
	p.mu.Unlock()
	p.iqs.drop(s)
}

// Name implements the account Holder: the user's PEP nodes and items.
func (p *pepService) Name() string { return "pep" }

// Export writes the user's nodes with their items (pepStore.export) and
// the user's explicit subscriptions to other accounts' nodes.
func (p *pepService) Export(ctx context.Context, user jid.JID, w io.Writer) error {
	if _, err := io.WriteString(w, "<pep xmlns='urn:example:chatbx:pep'>\n"); err != nil {
		return err
	}
	if err := p.store.export(ctx, userOf(user), w); err != nil {
		return fmt.Errorf("pep export: %w", err)
	}
	p.mu.Lock()
	var lines []string
	for key, subs := range p.subs {
		for sub := range subs {
			if j, err := jid.Parse(sub); err == nil && j.Bare().Equal(user.Bare()) {
				lines = append(lines, fmt.Sprintf("  <subscription xmlns='urn:example:chatbx:pep' owner='%s' node='%s' jid='%s'/>\n",
					attrEscape(key.owner+"@"+p.srv.cfg.Domain), attrEscape(key.node), attrEscape(sub)))
			}
		}
	}
	p.mu.Unlock()
	sort.Strings(lines)
	_, err := io.WriteString(w, strings.Join(lines, "")+"</pep>\n")
	return err
}

// Erase deletes the user's nodes and items, the subscriptions to them and
// the user's subscriptions; idempotent.
func (p *pepService) Erase(_ context.Context, user jid.JID) error {
	p.mu.Lock()
	var gone []pepSub
	for key, subs := range p.subs {
		for sub := range subs {
			j, err := jid.Parse(sub)
			if key.owner == user.Localpart() || err != nil || j.Bare().Equal(user.Bare()) {
				p.unsubscribeLocked(key, sub)
				gone = append(gone, pepSub{key: key, sub: sub})
			}
		}
	}
	err := p.store.removeSubscriptions(gone)
	if err == nil {
		err = p.store.eraseSubscriber(user.Bare().String())
	}
	p.mu.Unlock()
	if err != nil {
		return fmt.Errorf("pep erase: %w", err)
	}
	if err := p.store.erase(userOf(user)); err != nil {
		return fmt.Errorf("pep erase: %w", err)
	}
	return nil
}

// pepPrivacyItem is the privacy report's row for PEP items.
var pepPrivacyItem = web.PrivacyItem{
	Data: "what you publish on your account (PEP: avatar, nickname, OMEMO and OpenPGP public keys, bookmarks, private XML) and your subscriptions to others' published data; bounded per account",
	Kept: "until you replace or delete it (subscriptions: until you unsubscribe); erased with the account",
	Job:  "account deletion",
}
