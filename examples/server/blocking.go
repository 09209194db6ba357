package main

// XEP-0191 blocking command and XEP-0377 spam reports. A user's blocklist
// is stored per user (at most maxBlocklistItems JIDs); stanzas from a
// blocked JID to the user are dropped (IQ get/set and messages answered
// service-unavailable, as for an offline user), stanzas from the user to
// a blocked JID are refused with not-acceptable and <blocked/> (XEP-0191
// § 3.5). A report inside a block item only adds one to the reporting
// user's count: neither the reported JID nor the report's text or reason
// is kept.

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// Namespaces of XEP-0191 and XEP-0377.
const (
	nsBlocking       = "urn:xmpp:blocking"
	nsBlockingErrors = "urn:xmpp:blocking:errors"
	nsReporting      = "urn:xmpp:reporting:1"
)

// maxBlocklistItems is the most JIDs one user may block; a block that
// would go beyond is refused whole (resource-constraint, cancel).
const maxBlocklistItems = 1000

var (
	bucketBlocklist = []byte("blocklist")    // user localpart → (blocked JID → empty)
	bucketReports   = []byte("spam-reports") // user localpart → count (decimal); reportsTotal → all
	// reportsTotal is the operator's count of reports, kept when an
	// account goes: a number with no user. No localpart holds "@"
	// (RFC 7622 § 3.3.1).
	reportsTotal = []byte("@total")
)

// errBlocklistFull is returned when a block would exceed maxBlocklistItems.
var errBlocklistFull = errors.New("blocklist full")

// blockKeys are the blocklist entries that match j, by XEP-0191 § 3's
// JID matching rules (those of XEP-0016 § 2.1), read literally as
// Prosody does: an item user@domain/resource matches only that full JID;
// user@domain matches it with any resource; domain/resource matches only
// that JID (a server or component's resource, not user@domain/resource);
// domain matches the domain and every JID at it. A domain never matches
// its subdomains. The same rules hold for local and remote JIDs.
func blockKeys(j jid.JID) []string {
	keys := []string{j.String()}
	if j.Resourcepart() != "" {
		keys = append(keys, j.Bare().String()) // user@domain, or domain for domain/resource
	}
	if j.Localpart() != "" {
		keys = append(keys, j.Domain().String())
	}
	return keys
}

// blocksTx reports whether user's blocklist matches j.
func blocksTx(tx *bolt.Tx, user string, j jid.JID) bool {
	b := tx.Bucket(bucketBlocklist).Bucket([]byte(user))
	if b == nil {
		return false
	}
	for _, k := range blockKeys(j) {
		if b.Get([]byte(k)) != nil {
			return true
		}
	}
	return false
}

// blocks reports whether the local user u blocks j.
func (srv *Server) blocks(u, j jid.JID) bool {
	if !srv.isLocalUser(u) {
		return false
	}
	found := false
	_ = srv.db.View(func(tx *bolt.Tx) error {
		found = blocksTx(tx, u.Localpart(), j)
		return nil
	})
	return found
}

// blockedEitherWay reports whether a blocks b or b blocks a.
func (srv *Server) blockedEitherWay(a, b jid.JID) bool {
	ab, ba := srv.blockState(a, b)
	return ab || ba
}

// blockState reports whether a blocks b and whether b blocks a, in one
// read transaction (it runs for every routed stanza).
func (srv *Server) blockState(a, b jid.JID) (aBlocksB, bBlocksA bool) {
	la, lb := srv.isLocalUser(a), srv.isLocalUser(b)
	if !la && !lb {
		return false, false
	}
	_ = srv.db.View(func(tx *bolt.Tx) error {
		aBlocksB = la && blocksTx(tx, a.Localpart(), b)
		bBlocksA = lb && blocksTx(tx, b.Localpart(), a)
		return nil
	})
	return aBlocksB, bBlocksA
}

// blockAction is what the blocklists make of one stanza (XEP-0191 §§
// 3.4–3.5).
type blockAction int

const (
	blockPass        blockAction = iota // neither side blocks: route it
	blockDrop                           // dropped without an answer
	blockRefused                        // the sender blocks the recipient: not-acceptable with <blocked/>
	blockUnavailable                    // the recipient blocks the sender: service-unavailable, as for a user who is not there
)

// blockVerdict decides for a stanza of kind (message, presence, iq) and
// type typ whether the sender blocks the recipient and whether the
// recipient blocks the sender. The sender's own block wins: its client
// is told why. An answer (error, result) is never answered; presence to
// or from a blocked JID, groupchat and headline messages are dropped.
func blockVerdict(kind, typ string, senderBlocks, recipientBlocks bool) blockAction {
	switch {
	case !senderBlocks && !recipientBlocks:
		return blockPass
	case typ == "error" || typ == "result":
		return blockDrop
	case senderBlocks:
		return blockRefused
	case kind == "presence" || typ == "groupchat" || typ == "headline":
		return blockDrop
	}
	return blockUnavailable
}

// blockFor applies both blocklists to a stanza of kind and typ from one
// JID to another, local or remote: only local users have blocklists here
// (a remote user's server applies its own). The s2s router asks it for
// every stanza from a remote JID to a local one, as the c2s path does for
// the other way (blockedStanza), and answers blockRefused and
// blockUnavailable with blockBounce.
func (srv *Server) blockFor(from, to jid.JID, kind, typ string) blockAction {
	if from.Bare().Equal(to.Bare()) || to.Equal(jid.JID{}) || to.String() == srv.cfg.Domain {
		return blockPass // own resources and the server itself
	}
	fromBlocks, toBlocks := srv.blockState(from, to)
	return blockVerdict(kind, typ, fromBlocks, toBlocks)
}

// blockBounce is the error stanza answering e (from e's to, to e's from,
// e's id, no payload) when a is blockRefused (not-acceptable with
// <blocked xmlns='urn:xmpp:blocking:errors'/>, XEP-0191 § 3.5) or
// blockUnavailable (service-unavailable, § 3.4); ok is false otherwise.
func blockBounce(a blockAction, e element) (out element, ok bool) {
	cond := xml.StartElement{Name: xml.Name{Space: stanza.NSError, Local: string(stanza.ServiceUnavailable)}}
	inner := []xml.Token{cond, cond.End()}
	switch a {
	case blockRefused:
		cond.Name.Local = string(stanza.NotAcceptable)
		blocked := xml.StartElement{Name: xml.Name{Space: nsBlockingErrors, Local: "blocked"}}
		inner = []xml.Token{cond, cond.End(), blocked, blocked.End()}
	case blockUnavailable:
	default:
		return element{}, false
	}
	errStart := xml.StartElement{Name: xml.Name{Space: stanza.NSClient, Local: "error"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "type"}, Value: "cancel"}}}
	start := xml.StartElement{Name: e.start.Name, Attr: []xml.Attr{
		{Name: xml.Name{Local: "type"}, Value: "error"},
		{Name: xml.Name{Local: "from"}, Value: e.attr("to")},
		{Name: xml.Name{Local: "to"}, Value: e.attr("from")},
	}}
	if id := e.attr("id"); id != "" {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "id"}, Value: id})
	}
	return element{start: start, inner: append(append([]xml.Token{errStart}, inner...), errStart.End())}, true
}

// blockedStanza applies the blocklists to a stanza from s to to, before it
// is routed. It reports whether the stanza was dealt with (refused or
// dropped); err only ends the session.
func (s *session) blockedStanza(t xmlstream.TokenReadEncoder, e element, to jid.JID) (bool, error) {
	switch a := s.srv.blockFor(s.jid, to, e.start.Name.Local, e.attr("type")); a {
	case blockPass:
		return false, nil
	case blockRefused:
		// The user's own block: the client is told why.
		out, _ := blockBounce(a, e.withAttr("from", s.jid.String()))
		_, err := xmlstream.Copy(t, out.TokenReader())
		return true, err
	case blockUnavailable:
		return true, s.replyError(t, e, stanza.Error{Type: stanza.Cancel, Condition: stanza.ServiceUnavailable})
	}
	return true, nil // dropped
}

// blockPayload is a <block/> or <unblock/>: its items' JIDs, and how many
// items carry a XEP-0377 report.
type blockPayload struct {
	JIDs    []jid.JID
	Reports int
}

// parseBlockPayload reads the items of a <block/> or <unblock/> payload
// (its inner tokens). Every item needs a valid jid; a report counts only
// when it names a reason.
func parseBlockPayload(r xml.TokenReader, start xml.StartElement) (blockPayload, error) {
	var q struct {
		Items []struct {
			JID    string `xml:"jid,attr"`
			Report *struct {
				Reason string `xml:"reason,attr"`
			} `xml:"urn:xmpp:reporting:1 report"`
		} `xml:"urn:xmpp:blocking item"`
	}
	if err := decodePayload(r, &start, &q); err != nil {
		return blockPayload{}, fmt.Errorf("%w: %w", errBadBlock, err)
	}
	var p blockPayload
	seen := make(map[string]bool)
	for _, it := range q.Items {
		j, err := jid.Parse(strings.TrimSpace(it.JID))
		if err != nil {
			return blockPayload{}, fmt.Errorf("%w: %w", errBadBlockJID, err)
		}
		if it.Report != nil && it.Report.Reason != "" {
			p.Reports++
		}
		if !seen[j.String()] {
			seen[j.String()] = true
			p.JIDs = append(p.JIDs, j)
		}
	}
	return p, nil
}

// Errors of parseBlockPayload.
var (
	errBadBlock    = errors.New("malformed blocking payload")
	errBadBlockJID = errors.New("malformed JID in a blocking item")
)

// blocklist returns user's blocked JIDs, sorted.
func (st *serverStore) blocklist(user string) ([]string, error) {
	var out []string
	err := st.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketBlocklist).Bucket([]byte(user))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	sort.Strings(out)
	return out, err
}

// block adds js to user's blocklist and reports to the counts, and drops
// the pending subscription requests from the JIDs it now blocks (the user
// could not answer them), in one transaction; it returns the JIDs that
// were not blocked before.
func (st *serverStore) block(user string, js []jid.JID, reports int) (added []jid.JID, total uint64, err error) {
	err = st.db.Update(func(tx *bolt.Tx) error {
		added = added[:0]
		b, err := tx.Bucket(bucketBlocklist).CreateBucketIfNotExists([]byte(user))
		if err != nil {
			return err
		}
		n := countUpTo(b, maxBlocklistItems+1)
		for _, j := range js {
			if b.Get([]byte(j.String())) != nil {
				continue
			}
			if n >= maxBlocklistItems {
				return errBlocklistFull
			}
			n++
			if err := b.Put([]byte(j.String()), nil); err != nil {
				return err
			}
			added = append(added, j)
		}
		if err := dropBlockedRequests(tx, user, added); err != nil {
			return err
		}
		if reports == 0 {
			return nil
		}
		rb := tx.Bucket(bucketReports)
		if err := addCount(rb, []byte(user), uint64(reports)); err != nil {
			return err
		}
		if err := addCount(rb, reportsTotal, uint64(reports)); err != nil {
			return err
		}
		total = count(rb, reportsTotal)
		return nil
	})
	return added, total, err
}

// dropBlockedRequests deletes user's pending subscription requests from
// JIDs that one of blocked matches.
func dropBlockedRequests(tx *bolt.Tx, user string, blocked []jid.JID) error {
	b := tx.Bucket(bucketSubPending).Bucket([]byte(user))
	if b == nil || len(blocked) == 0 {
		return nil
	}
	var drop []jid.JID
	_ = b.ForEach(func(k, _ []byte) error {
		if r, err := jid.Parse(string(k)); err == nil && matchesAny(r, blocked) {
			drop = append(drop, r)
		}
		return nil
	})
	for _, r := range drop {
		if err := b.Delete([]byte(r.String())); err != nil {
			return err
		}
		if rb := tx.Bucket(bucketSubPendingBy).Bucket([]byte(r.Localpart())); rb != nil {
			if err := rb.Delete([]byte(user)); err != nil {
				return err
			}
		}
	}
	return nil
}

// count reads a decimal count.
func count(b *bolt.Bucket, key []byte) uint64 {
	n, _ := strconv.ParseUint(string(b.Get(key)), 10, 64)
	return n
}

func addCount(b *bolt.Bucket, key []byte, n uint64) error {
	return b.Put(key, []byte(strconv.FormatUint(count(b, key)+n, 10)))
}

// reportCount returns how many spam reports user sent.
func (st *serverStore) reportCount(user string) uint64 {
	var n uint64
	_ = st.db.View(func(tx *bolt.Tx) error {
		n = count(tx.Bucket(bucketReports), []byte(user))
		return nil
	})
	return n
}

// unblock removes js from user's blocklist, or every entry when js is
// empty; it returns what was removed.
func (st *serverStore) unblock(user string, js []jid.JID) (removed []string, err error) {
	err = st.db.Update(func(tx *bolt.Tx) error {
		removed = removed[:0]
		b := tx.Bucket(bucketBlocklist).Bucket([]byte(user))
		if b == nil {
			return nil
		}
		if len(js) == 0 {
			_ = b.ForEach(func(k, _ []byte) error {
				removed = append(removed, string(k))
				return nil
			})
			return tx.Bucket(bucketBlocklist).DeleteBucket([]byte(user))
		}
		for _, j := range js {
			if b.Get([]byte(j.String())) != nil {
				if err := b.Delete([]byte(j.String())); err != nil {
					return err
				}
				removed = append(removed, j.String())
			}
		}
		return nil
	})
	return removed, err
}

// handleBlocking answers XEP-0191 blocklist get, block and unblock.
func (srv *Server) handleBlocking(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	reply := func(se stanza.Error) error {
		_, err := xmlstream.Copy(t, iq.Error(se))
		return err
	}
	user := iq.From.Bare()
	if !srv.isLocalUser(user) {
		return reply(stanza.Error{Type: stanza.Cancel, Condition: stanza.ServiceUnavailable})
	}
	switch {
	case iq.Type == stanza.GetIQ && start.Name.Local == "blocklist":
		for _, r := range srv.sessions.lookup(iq.From) {
			r.blocklistInterested.Store(true)
		}
		list, err := srv.store.blocklist(user.Localpart())
		if err != nil {
			return reply(stanza.Error{Type: stanza.Wait, Condition: stanza.InternalServerError})
		}
		_, err = xmlstream.Copy(t, iq.Result(blockElement("blocklist", list)))
		return err
	case iq.Type == stanza.SetIQ && (start.Name.Local == "block" || start.Name.Local == "unblock"):
	default:
		return reply(stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest})
	}
	p, err := parseBlockPayload(t, *start)
	switch {
	case errors.Is(err, errBadBlockJID):
		return reply(stanza.Error{Type: stanza.Modify, Condition: stanza.JIDMalformed})
	case err != nil, start.Name.Local == "block" && len(p.JIDs) == 0:
		return reply(stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest})
	}
	var pushed []string
	if start.Name.Local == "block" {
		// Who saw the user's presence, before the block hides it.
		var hadPresence []*session
		for _, r := range srv.sessions.all() {
			if r.jid.Bare().Equal(user) || !matchesAny(r.jid, p.JIDs) {
				continue
			}
			if it, ok := srv.store.rosterItem(user.Localpart(), r.jid.Bare().String()); ok && it.hasFrom() || srv.directedFrom(user, r.jid) {
				hadPresence = append(hadPresence, r)
			}
		}
		added, total, err := srv.store.block(user.Localpart(), p.JIDs, p.Reports)
		if errors.Is(err, errBlocklistFull) {
			return reply(stanza.Error{Type: stanza.Cancel, Condition: stanza.ResourceConstraint,
				Text: map[string]string{"en": fmt.Sprintf("the blocklist holds its maximum of %d addresses: unblock one first", maxBlocklistItems)}})
		}
		if err != nil {
			return reply(stanza.Error{Type: stanza.Wait, Condition: stanza.InternalServerError})
		}
		if p.Reports > 0 {
			// The operator's view: a count, nobody named.
			srv.log.Info("spam reports received", "new", p.Reports, "total", total)
		}
		for _, j := range added {
			pushed = append(pushed, j.String())
		}
		// Blocked contacts see the user go offline (XEP-0191 § 3.3).
		for _, r := range hadPresence {
			for _, own := range srv.availableSessions(user) {
				r.send(element{start: presenceStart(own.jid, r.jid, "unavailable")})
			}
		}
	} else {
		if pushed, err = srv.store.unblock(user.Localpart(), p.JIDs); err != nil {
			return reply(stanza.Error{Type: stanza.Wait, Condition: stanza.InternalServerError})
		}
		// Unblocked contacts who may see the user's presence get it again
		// (XEP-0191 § 3.4).
		var unblocked []jid.JID
		for _, k := range pushed {
			if j, err := jid.Parse(k); err == nil {
				unblocked = append(unblocked, j)
			}
		}
		for _, r := range srv.sessions.all() {
			if _, ok := r.currentPresence(); !ok || !matchesAny(r.jid, unblocked) || !srv.sharesPresenceWith(user, r.jid) || srv.blocks(r.jid, user) {
				continue
			}
			for _, own := range srv.availableSessions(user) {
				if p, ok := own.currentPresence(); ok {
					r.send(p.withAttr("from", own.jid.String()).withAttr("to", r.jid.String()))
				}
			}
		}
		if len(p.JIDs) == 0 {
			pushed = nil // <unblock/> without items: everything
		}
	}
	if _, err := xmlstream.Copy(t, iq.Result(nil)); err != nil {
		return err
	}
	if start.Name.Local == "block" && len(pushed) == 0 {
		return nil // nothing changed
	}
	srv.pushBlocking(user, start.Name.Local, pushed)
	return nil
}

// matchesAny reports whether one of the blocklist entries js matches j.
func matchesAny(j jid.JID, js []jid.JID) bool {
	for _, k := range blockKeys(j) {
		for _, b := range js {
			if b.String() == k {
				return true
			}
		}
	}
	return false
}

// directedFrom reports whether a session of user sent directed presence
// to j.
func (srv *Server) directedFrom(user, j jid.JID) bool {
	for _, s := range srv.sessions.lookup(user) {
		if s.hadDirected(j) {
			return true
		}
	}
	return false
}

// blockElement is <name xmlns='urn:xmpp:blocking'> with an item per JID.
func blockElement(name string, js []string) xml.TokenReader {
	el := xml.StartElement{Name: xml.Name{Space: nsBlocking, Local: name}}
	toks := []xml.Token{el}
	for _, j := range js {
		it := xml.StartElement{Name: xml.Name{Space: nsBlocking, Local: "item"},
			Attr: []xml.Attr{{Name: xml.Name{Local: "jid"}, Value: j}}}
		toks = append(toks, it, it.End())
	}
	return &sliceReader{toks: append(toks, el.End())}
}

// pushBlocking sends a block or unblock push to the user's resources that
// asked for the blocklist (XEP-0191 § 3.3, § 3.4).
func (srv *Server) pushBlocking(user jid.JID, name string, js []string) {
	srv.pushIQ(user, "block-", func(r *session) bool { return r.blocklistInterested.Load() },
		blockElement(name, js))
}

// blockingHolder is the account Holder of the blocklist and the number of
// spam reports the user sent.
type blockingHolder struct{ srv *Server }

func (blockingHolder) Name() string { return "blocking" }

// Export writes the blocklist (XEP-0191 form) and the report count.
func (h blockingHolder) Export(_ context.Context, user jid.JID, w io.Writer) error {
	list, err := h.srv.store.blocklist(user.Localpart())
	if err != nil {
		return err
	}
	type xItem struct {
		JID string `xml:"jid,attr"`
	}
	out := struct {
		XMLName xml.Name `xml:"urn:example:blocking blocking"`
		List    struct {
			Items []xItem `xml:"item"`
		} `xml:"urn:xmpp:blocking blocklist"`
		Reports uint64 `xml:"spam-reports-sent"`
	}{Reports: h.srv.store.reportCount(user.Localpart())}
	for _, j := range list {
		out.List.Items = append(out.List.Items, xItem{JID: j})
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	return enc.Flush()
}

// Erase deletes the blocklist and the user's report count (the
// operator's total stays: it names nobody). Idempotent.
func (h blockingHolder) Erase(_ context.Context, user jid.JID) error {
	return h.srv.db.Update(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketBlocklist).DeleteBucket([]byte(user.Localpart()))
		if err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return err
		}
		return tx.Bucket(bucketReports).Delete([]byte(user.Localpart()))
	})
}

// String names the action (tests, logs).
func (a blockAction) String() string {
	switch a {
	case blockPass:
		return "pass"
	case blockDrop:
		return "drop"
	case blockRefused:
		return "refused"
	case blockUnavailable:
		return "unavailable"
	}
	return "blockAction(" + strconv.Itoa(int(a)) + ")"
}
