package mam

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
	"mellium.im/xmpp/jid"
)

// Query implements Store.
func (s *BoltStore) Query(ctx context.Context, archive jid.JID, q Query) (Page, error) {
	if err := ctx.Err(); err != nil {
		return Page{}, err
	}
	if zeroJID(archive) {
		return Page{}, fmt.Errorf("mam: query without archive: %w", ErrBadRequest)
	}
	if q.Max < 0 {
		return Page{}, fmt.Errorf("mam: negative page size: %w", ErrBadRequest)
	}
	size := q.Max
	if size == 0 {
		size = defaultPage
	}
	archive = archive.Bare()
	var page Page
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		page, err = s.query(tx, archive, q, size)
		return err
	})
	return page, boltErr(err)
}

func (s *BoltStore) query(tx *bolt.Tx, archive jid.JID, q Query, size int) (Page, error) {
	// The root bucket only: a With page may not need the m bucket.
	var nameBuf [64]byte
	ab := archiveBuckets{root: tx.Bucket(bucketArchives).Bucket(append(nameBuf[:0], archive.String()...))}
	a := &ab
	var r keyRange
	if err := r.resolve(a, q); err != nil {
		return Page{}, err
	}
	if a.root == nil || r.none || (r.lo != nil && r.hi != nil && bytes.Compare(r.lo, r.hi) >= 0) {
		return Page{FirstIndex: -1, Count: 0, Complete: true}, nil
	}
	if r.ids != nil {
		return s.queryIDs(a, archive, q, &r, size)
	}

	sc := boltScanner{
		lo:               keyMax(r.lo, r.plo),
		hi:               keyMin(r.hi, r.phi),
		backward:         q.Before != "" || q.Last,
		includeGroupchat: q.IncludeGroupchat,
		res:              q.With.Resourcepart(),
	}
	var bareWith []byte
	if zeroJID(q.With) {
		sc.c = a.msgsB().Cursor()
	} else {
		bareWith = bareBytes(q.With)
		sc.c = a.withB().Cursor()
		sc.prefix = append(bareWith, 0)
	}
	count := -1
	if r.lo == nil && r.hi == nil {
		// Filtered at most by With and IncludeGroupchat: counted.
		count = a.count(q, bareWith)
	}

	// keys and, for the m bucket, the records (valid until the
	// transaction ends) of the page.
	var keyArr, valArr [64][]byte // pages of up to 64 need no allocation here
	keys, vals := keyArr[:0], valArr[:0]
	if size > len(keyArr) {
		keys = make([][]byte, 0, min(size, 1024))
		vals = make([][]byte, 0, cap(keys))
	}
	keys, vals, complete := sc.collect(keys, vals, size)
	page := r.page(len(keys), count, complete, sc.backward)
	page.Messages = make([]Message, len(keys))
	if err := s.fill(a, archive, keys, vals, page.Messages); err != nil {
		return Page{}, err
	}
	return page, nil
}

// keyRange is what a query selects, in message keys: the filter range
// [lo, hi) from Start, End, AfterID and BeforeID, the page range [plo, phi)
// from RSM After and Before, and the keys of IDs. nil bounds are open.
type keyRange struct {
	lo, hi   []byte
	plo, phi []byte
	none     bool     // nothing can match
	ids      [][]byte // nil without Query.IDs
}

// resolve sets r from q, looking the archive ids of q up in a.
func (r *keyRange) resolve(a *archiveBuckets, q Query) error {
	if !q.Start.IsZero() {
		switch {
		case q.Start.After(maxTime):
			r.none = true
		case q.Start.After(minTime):
			r.lo = keyAtTime(q.Start)
		}
	}
	if !q.End.IsZero() {
		switch {
		case q.End.Before(minTime):
			r.none = true
		case q.End.Before(maxTime):
			r.hi = keyAtTime(q.End.Add(time.Nanosecond))
		}
	}
	var k []byte
	var err error
	if q.AfterID != "" {
		if k, err = a.resolve(q.AfterID); err != nil {
			return err
		}
		r.lo = keyMax(r.lo, r.after(k))
	}
	if q.BeforeID != "" {
		if k, err = a.resolve(q.BeforeID); err != nil {
			return err
		}
		r.hi = keyMin(r.hi, k)
	}
	for _, id := range q.IDs {
		if k, err = a.resolve(id); err != nil {
			return err
		}
		r.ids = append(r.ids, k)
	}
	if q.After != "" {
		if k, err = a.resolve(q.After); err != nil {
			return err
		}
		r.plo = r.after(k)
	}
	if q.Before != "" {
		if r.phi, err = a.resolve(q.Before); err != nil {
			return err
		}
	}
	return nil
}

// after returns the smallest key after k; there is none after the largest
// key, and then nothing matches.
func (r *keyRange) after(k []byte) []byte {
	n := keyAfter(k)
	if n == nil {
		r.none = true
	}
	return n
}

// page returns the counts of a page of n messages read by a scan of r
// (complete: to the end of the range), given the count of all matches
// (-1: unknown).
func (r *keyRange) page(n, count int, complete, backward bool) Page {
	p := Page{Count: count, FirstIndex: -1, Complete: complete}
	if count < 0 && complete && r.plo == nil && r.phi == nil {
		p.Count = n // the page saw every match
	}
	if n > 0 {
		switch {
		case r.plo == nil && (!backward || complete):
			p.FirstIndex = 0
		case backward && r.phi == nil && p.Count >= 0:
			p.FirstIndex = p.Count - n
		}
	}
	return p
}

// count returns the number of messages of a query filtered at most by With
// (whose bare JID is bareWith) and IncludeGroupchat, from the counters.
func (a *archiveBuckets) count(q Query, bareWith []byte) int {
	if bareWith == nil && !q.IncludeGroupchat {
		// The m bucket's sequence is 1 + this count; see boltAddCounts.
		return int(a.msgsB().Sequence()) - 1
	}
	ck := countTotal
	switch {
	case bareWith != nil && q.With.Resourcepart() != "":
		ck = append([]byte("f"), q.With.String()...)
	case bareWith != nil:
		ck = append([]byte("b"), bareWith...)
	}
	n, x := boltGetCount(a.countsB(), ck)
	if !q.IncludeGroupchat {
		n -= x
	}
	return int(n)
}

// boltScanner walks the message keys of one source (the m bucket, or one
// peer's entries in the w bucket) within [lo, hi), forwards or backwards.
type boltScanner struct {
	c        *bolt.Cursor
	prefix   []byte // the peer's bare JID and 0x00 in the w bucket; empty in m
	lo, hi   []byte // nil: unbounded
	backward bool

	// The filter: groupchat messages of a user archive only with
	// includeGroupchat, and in the w bucket only the resource res, if set.
	includeGroupchat bool
	res              string
}

// collect appends the keys of the first size matches in the scan's
// direction to keys, and their entries to vals (nil for a compact with
// entry: the record is in m), both in archive order. complete reports
// whether it reached the end of the range.
func (sc *boltScanner) collect(keys, vals [][]byte, size int) (_, _ [][]byte, complete bool) {
	complete = true
	for k, v := sc.first(); k != nil; k, v = sc.next() {
		if len(keys) == size {
			complete = false
			break
		}
		keys = append(keys, k)
		if len(sc.prefix) > 0 && v[0] != recordVersion {
			v = nil
		}
		vals = append(vals, v)
	}
	if sc.backward {
		slices.Reverse(keys)
		slices.Reverse(vals)
	}
	return keys, vals, complete
}

// first returns the first match in the scan's direction: from lo
// forwards, or from the last entry before hi backwards.
func (sc *boltScanner) first() ([]byte, []byte) {
	var seek []byte // the entry to seek to; nil: the first (or last) one
	switch {
	case !sc.backward:
		seek = sc.entry(sc.lo)
	case sc.hi != nil:
		seek = sc.entry(sc.hi)
	case len(sc.prefix) > 0:
		// The prefix ends in the 0x00 separator: the next prefix is the
		// first entry after all of this peer's.
		seek = slices.Clone(sc.prefix)
		seek[len(seek)-1] = 1
	}
	var k, v []byte
	switch {
	case !sc.backward:
		k, v = sc.c.Seek(seek)
	case seek == nil:
		k, v = sc.c.Last()
	default:
		if k, _ = sc.c.Seek(seek); k == nil {
			k, v = sc.c.Last()
		} else {
			k, v = sc.c.Prev()
		}
	}
	return sc.scan(k, v)
}

// next returns the next match in the scan's direction.
func (sc *boltScanner) next() ([]byte, []byte) {
	if sc.backward {
		return sc.scan(sc.c.Prev())
	}
	return sc.scan(sc.c.Next())
}

// scan returns the message key and value of the first match from the
// entry k, v on in the scan's direction, or nils at the end of the range.
func (sc *boltScanner) scan(k, v []byte) ([]byte, []byte) {
	for {
		mk := sc.key(k)
		if mk == nil ||
			(!sc.backward && sc.hi != nil && bytes.Compare(mk, sc.hi) >= 0) ||
			(sc.backward && sc.lo != nil && bytes.Compare(mk, sc.lo) < 0) {
			return nil, nil
		}
		if sc.match(v) {
			return mk, v
		}
		if sc.backward {
			k, v = sc.c.Prev()
		} else {
			k, v = sc.c.Next()
		}
	}
}

// entry returns the source's key of the message key k.
func (sc *boltScanner) entry(k []byte) []byte {
	if len(sc.prefix) == 0 {
		return k
	}
	return append(slices.Clip(sc.prefix), k...)
}

// key returns the message key of the source's key k, or nil if k is not
// one of the source's (another peer's entry, or the end).
func (sc *boltScanner) key(k []byte) []byte {
	if k == nil || len(k) != len(sc.prefix)+keyLen || !bytes.HasPrefix(k, sc.prefix) {
		return nil
	}
	return k[len(sc.prefix):]
}

// match reports whether the entry v passes the filter.
func (sc *boltScanner) match(v []byte) bool {
	if len(sc.prefix) == 0 || (sc.res == "" && len(v) >= 2 && v[0] == recordVersion) {
		// A record (of m, or a covering with entry without a resource
		// to check).
		return len(v) >= 2 && (sc.includeGroupchat || v[1]&flagExcluded == 0)
	}
	flags, r, ok := withEntry(v)
	return ok && (sc.includeGroupchat || flags&flagExcluded == 0) && (sc.res == "" || string(r) == sc.res)
}

// fill decodes the messages at keys into out, with their records vals (a
// nil element: read it from the m bucket). It copies the stanzas of the
// page into one allocation (each Message.Stanza is capped, so that an
// append to one cannot overwrite the next) and the ids into one string, and
// looks the peers up in the JID cache under one read lock.
func (s *BoltStore) fill(a *archiveBuckets, archive jid.JID, keys, vals [][]byte, out []Message) error {
	var idArr [64 * idLen]byte // the page's ids, encoded
	idBuf := idArr[:]
	if len(keys) > 64 {
		idBuf = make([]byte, len(keys)*idLen)
	}
	misses := 0
	var stzArr [64][]byte // the stanzas, in the transaction's pages
	stz := stzArr[:0]
	if len(keys) > len(stzArr) {
		stz = make([][]byte, 0, len(keys))
	}
	// The last message whose peer was looked up, and that peer: runs of
	// one peer are common.
	prev, prevWith := -1, []byte(nil)
	s.mu.RLock()
	for i, v := range vals {
		if v == nil {
			v = a.msgsB().Get(keys[i])
			vals[i] = v
		}
		ws, we, ok := recordLayout(v)
		if !ok {
			s.mu.RUnlock()
			return errCorruptRecord
		}
		m := &out[i]
		encodeID((*[idLen]byte)(idBuf[i*idLen:]), v[2:2+rawIDLen])
		switch with := v[ws:we]; {
		case len(with) == 0:
		case prev >= 0 && bytes.Equal(with, prevWith):
			m.With = out[prev].With
		default:
			if j := s.jids[string(with)]; j != nil {
				m.With = *j
				prev, prevWith = i, with
			} else {
				misses++
			}
		}
		m.Groupchat = v[1]&flagGroupchat != 0
		stz = append(stz, v[we:])
	}
	s.mu.RUnlock()
	ids := string(idBuf[:len(keys)*idLen])
	buf := bytes.Join(stz, nil) // one copy, not zeroed first
	off := 0
	for i := range out {
		m := &out[i]
		m.ID = ids[i*idLen : (i+1)*idLen]
		m.Archive = archive
		m.Time = keyTime(keys[i])
		if n := len(stz[i]); n > 0 {
			m.Stanza = buf[off : off+n : off+n]
			off += n
		}
	}
	for i := range out {
		if misses == 0 {
			break
		}
		m := &out[i]
		rec, _ := decodeRecord(vals[i]) // decoded above
		if len(rec.with) == 0 || !zeroJID(m.With) {
			continue
		}
		with, err := s.parseJIDSlow(rec.with)
		if err != nil {
			return err
		}
		m.With = with
		misses--
	}
	for i := range out {
		if vals[i][1]&flagRealJID == 0 {
			continue
		}
		if r := a.realsB().Get(keys[i]); r != nil {
			real, err := s.parseJID(r)
			if err != nil {
				return err
			}
			out[i].RealJID = real
		}
	}
	return nil
}

// load returns the message at key, whose record v is, when nil, read from
// the m bucket.
func (s *BoltStore) load(a *archiveBuckets, archive jid.JID, key, v []byte) (Message, error) {
	if v == nil {
		v = a.msgsB().Get(key)
	}
	if v == nil {
		return Message{}, errCorruptRecord
	}
	rec, err := decodeRecord(v)
	if err != nil {
		return Message{}, err
	}
	return s.message(a, archive, key, rec)
}

// queryIDs answers a query with an ids filter: a short list, paged in
// memory, with exact counts.
func (s *BoltStore) queryIDs(a *archiveBuckets, archive jid.JID, q Query, r *keyRange, size int) (Page, error) {
	keys := r.ids
	slices.SortFunc(keys, bytes.Compare)
	keys = slices.CompactFunc(keys, bytes.Equal)
	var matches []Message
	var mkeys [][]byte
	for _, k := range keys {
		if (r.lo != nil && bytes.Compare(k, r.lo) < 0) || (r.hi != nil && bytes.Compare(k, r.hi) >= 0) {
			continue
		}
		m, err := s.load(a, archive, k, nil)
		if err != nil {
			return Page{}, err
		}
		if !q.IncludeGroupchat && recordFlags(m, archive)&flagExcluded != 0 {
			continue
		}
		if !zeroJID(q.With) {
			if q.With.Resourcepart() == "" && !m.With.Bare().Equal(q.With) {
				continue
			}
			if q.With.Resourcepart() != "" && !m.With.Equal(q.With) {
				continue
			}
		}
		matches = append(matches, m)
		mkeys = append(mkeys, k)
	}
	start, end := 0, len(matches)
	if r.plo != nil {
		start, _ = slices.BinarySearchFunc(mkeys, r.plo, bytes.Compare)
	}
	if r.phi != nil {
		end, _ = slices.BinarySearchFunc(mkeys, r.phi, bytes.Compare)
	}
	p := Page{FirstIndex: -1, Count: len(matches), Complete: true}
	if end <= start {
		return p, nil
	}
	if q.Before != "" || q.Last {
		from := max(start, end-size)
		p.Complete = from == start
		start = from
	} else {
		to := min(end, start+size)
		p.Complete = to == end
		end = to
	}
	p.FirstIndex = start
	p.Messages = matches[start:end]
	return p, nil
}

func recordFlags(m Message, archive jid.JID) byte {
	if m.Groupchat && !m.With.Bare().Equal(archive) {
		return flagExcluded
	}
	return 0
}

// Metadata implements Store.
func (s *BoltStore) Metadata(ctx context.Context, archive jid.JID) (Metadata, error) {
	if err := ctx.Err(); err != nil {
		return Metadata{}, err
	}
	var md Metadata
	err := s.db.View(func(tx *bolt.Tx) error {
		a := boltOpenArchive(tx, bareBytes(archive))
		if a.root == nil {
			return nil
		}
		c := a.msgs.Cursor()
		for i, k := range [2][]byte{cursorFirst(c), cursorLast(c)} {
			if k == nil {
				return nil
			}
			rec, err := decodeRecord(a.msgs.Get(k))
			if err != nil {
				return err
			}
			if i == 0 {
				md.StartID, md.StartTime = idString(rec.id), keyTime(k)
			} else {
				md.EndID, md.EndTime = idString(rec.id), keyTime(k)
			}
		}
		return nil
	})
	return md, boltErr(err)
}

func cursorFirst(c *bolt.Cursor) []byte { k, _ := c.First(); return k }
func cursorLast(c *bolt.Cursor) []byte  { k, _ := c.Last(); return k }
