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

// boltScanner walks the message keys of one source (the m bucket, or one
// peer's entries in the w bucket) within [lo, hi).
type boltScanner struct {
	c      *bolt.Cursor
	prefix []byte // the peer's bare JID and 0x00 in the w bucket; empty in m
	lo, hi []byte // nil: unbounded

	// The filter: groupchat messages of a user archive only with
	// includeGroupchat, and in the w bucket only the resource res, if set.
	includeGroupchat bool
	res              string
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

func (sc *boltScanner) key(k []byte) []byte {
	if k == nil || len(k) != len(sc.prefix)+keyLen || !bytes.HasPrefix(k, sc.prefix) {
		return nil
	}
	return k[len(sc.prefix):]
}

// fwd returns the next matching key at or after from (nil: lo), forwards.
func (sc *boltScanner) first(from []byte) ([]byte, []byte) {
	if from == nil || (sc.lo != nil && bytes.Compare(from, sc.lo) < 0) {
		from = sc.lo
	}
	seek := from
	if len(sc.prefix) > 0 {
		seek = append(slices.Clip(sc.prefix), from...)
	}
	k, v := sc.c.Seek(seek)
	return sc.fwd(k, v)
}

func (sc *boltScanner) next() ([]byte, []byte) {
	k, v := sc.c.Next()
	return sc.fwd(k, v)
}

func (sc *boltScanner) fwd(k, v []byte) ([]byte, []byte) {
	for {
		mk := sc.key(k)
		if mk == nil || (sc.hi != nil && bytes.Compare(mk, sc.hi) >= 0) {
			return nil, nil
		}
		if sc.match(v) {
			return mk, v
		}
		k, v = sc.c.Next()
	}
}

// last returns the last matching key before to (nil: hi), backwards.
func (sc *boltScanner) last(to []byte) ([]byte, []byte) {
	if to == nil || (sc.hi != nil && bytes.Compare(to, sc.hi) > 0) {
		to = sc.hi
	}
	var k, v []byte
	switch {
	case to != nil:
		k, _ = sc.c.Seek(append(slices.Clip(sc.prefix), to...))
	case len(sc.prefix) > 0:
		// The prefix ends in the 0x00 separator: the next prefix is the
		// first key after all of this peer's keys.
		end := slices.Clone(sc.prefix)
		end[len(end)-1] = 1
		k, _ = sc.c.Seek(end)
	default:
		k, v = sc.c.Last()
		return sc.back(k, v)
	}
	if k == nil {
		k, v = sc.c.Last()
	} else {
		k, v = sc.c.Prev()
	}
	return sc.back(k, v)
}

func (sc *boltScanner) prev() ([]byte, []byte) {
	k, v := sc.c.Prev()
	return sc.back(k, v)
}

func (sc *boltScanner) back(k, v []byte) ([]byte, []byte) {
	for {
		mk := sc.key(k)
		if mk == nil || (sc.lo != nil && bytes.Compare(mk, sc.lo) < 0) {
			return nil, nil
		}
		if sc.hi == nil || bytes.Compare(mk, sc.hi) < 0 {
			if sc.match(v) {
				return mk, v
			}
		}
		k, v = sc.c.Prev()
	}
}

// Query implements Store.
func (s *BoltStore) Query(ctx context.Context, archive jid.JID, q Query) (Page, error) {
	if err := ctx.Err(); err != nil {
		return Page{}, err
	}
	if zeroJID(archive) {
		return Page{}, fmt.Errorf("mam: query without archive: %w", ErrBadQuery)
	}
	if q.Max < 0 {
		return Page{}, fmt.Errorf("mam: negative page size: %w", ErrBadQuery)
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
	empty := Page{FirstIndex: -1, Count: 0, Complete: true}

	// The filter range [lo, hi) of message keys.
	var lo, hi []byte
	none := false // the filter selects nothing
	if !q.Start.IsZero() {
		switch {
		case q.Start.After(maxTime):
			none = true
		case q.Start.After(minTime):
			lo = keyAtTime(q.Start)
		}
	}
	if !q.End.IsZero() {
		switch {
		case q.End.Before(minTime):
			none = true
		case q.End.Before(maxTime):
			hi = keyAtTime(q.End.Add(time.Nanosecond))
		}
	}
	if q.AfterID != "" {
		k, err := a.resolve(q.AfterID)
		if err != nil {
			return Page{}, err
		}
		if n := keyAfter(k); n != nil {
			lo = keyMax(lo, n)
		} else {
			none = true
		}
	}
	if q.BeforeID != "" {
		k, err := a.resolve(q.BeforeID)
		if err != nil {
			return Page{}, err
		}
		hi = keyMin(hi, k)
	}
	var idKeys [][]byte
	for _, id := range q.IDs {
		k, err := a.resolve(id)
		if err != nil {
			return Page{}, err
		}
		idKeys = append(idKeys, k)
	}
	// The page range, from RSM after/before.
	var plo, phi []byte
	if q.After != "" {
		k, err := a.resolve(q.After)
		if err != nil {
			return Page{}, err
		}
		if plo = keyAfter(k); plo == nil {
			none = true
		}
	}
	if q.Before != "" {
		k, err := a.resolve(q.Before)
		if err != nil {
			return Page{}, err
		}
		phi = k
	}
	if a.root == nil {
		return empty, nil
	}
	backward := q.Before != "" || q.Last
	filtered := lo != nil || hi != nil || none || q.AfterID != "" || q.BeforeID != ""

	// Exact count from the counters, when the filter allows.
	count := -1
	withSet := !zeroJID(q.With)
	res := q.With.Resourcepart()
	var bareWith []byte
	if withSet {
		bareWith = bareBytes(q.With)
	}
	if !filtered && idKeys == nil {
		ck := countTotal
		if withSet && res != "" {
			ck = append([]byte("f"), q.With.String()...)
		} else if withSet {
			ck = append([]byte("b"), bareWith...)
		}
		var seq uint64 // 1 + the count, or 0; see boltAddCounts
		if !withSet && !q.IncludeGroupchat {
			seq = a.msgsB().Sequence()
		}
		if seq > 0 {
			count = int(seq - 1)
		} else {
			n, x := boltGetCount(a.countsB(), ck)
			if !q.IncludeGroupchat {
				n -= x
			}
			count = int(n)
		}
	}
	if none || (lo != nil && hi != nil && bytes.Compare(lo, hi) >= 0) {
		empty.Count = 0
		return empty, nil
	}

	if idKeys != nil {
		return s.queryIDs(a, archive, q, idKeys, lo, hi, plo, phi, size, backward)
	}

	sc := &boltScanner{lo: lo, hi: hi, includeGroupchat: q.IncludeGroupchat, res: res}
	if withSet {
		sc.c = a.withB().Cursor()
		sc.prefix = append(bareWith, 0)
	} else {
		sc.c = a.msgsB().Cursor()
	}

	// keys and, for the m bucket, the records (valid until the
	// transaction ends) of the page.
	var keyArr, valArr [64][]byte // pages of up to 64 need no allocation here
	keys, vals := keyArr[:0], valArr[:0]
	if size > len(keyArr) {
		keys = make([][]byte, 0, min(size, 1024))
		vals = make([][]byte, 0, cap(keys))
	}
	complete := true
	if !backward {
		for k, v := sc.first(plo); k != nil; k, v = sc.next() {
			if len(keys) == size {
				complete = false
				break
			}
			keys = append(keys, k)
			if withSet && v[0] != recordVersion {
				v = nil // a compact with entry: read the record from m
			}
			vals = append(vals, v)
		}
	} else {
		if plo != nil {
			sc.lo = keyMax(sc.lo, plo)
		}
		for k, v := sc.last(phi); k != nil; k, v = sc.prev() {
			if len(keys) == size {
				complete = false
				break
			}
			keys = append(keys, k)
			if withSet && v[0] != recordVersion {
				v = nil // a compact with entry: read the record from m
			}
			vals = append(vals, v)
		}
		slices.Reverse(keys)
		slices.Reverse(vals)
	}

	page := Page{Count: count, FirstIndex: -1, Complete: complete}
	// A page that saw every match knows the count.
	if count < 0 && complete && plo == nil && phi == nil {
		page.Count = len(keys)
	}
	if len(keys) > 0 {
		switch {
		case plo == nil && (!backward || complete):
			page.FirstIndex = 0
		case backward && phi == nil && page.Count >= 0:
			page.FirstIndex = page.Count - len(keys)
		}
	}
	page.Messages = make([]Message, len(keys))
	if err := s.fill(a, archive, keys, vals, page.Messages); err != nil {
		return Page{}, err
	}
	return page, nil
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
		encodeID((*[idLen]byte)(idBuf[i*idLen:]), v[2:2+IDLen])
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
func (s *BoltStore) queryIDs(a *archiveBuckets, archive jid.JID, q Query, keys [][]byte, lo, hi, plo, phi []byte,
	size int, backward bool) (Page, error) {
	slices.SortFunc(keys, bytes.Compare)
	keys = slices.CompactFunc(keys, bytes.Equal)
	var matches []Message
	var mkeys [][]byte
	for _, k := range keys {
		if (lo != nil && bytes.Compare(k, lo) < 0) || (hi != nil && bytes.Compare(k, hi) >= 0) {
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
	if plo != nil {
		start, _ = slices.BinarySearchFunc(mkeys, plo, bytes.Compare)
	}
	if phi != nil {
		end, _ = slices.BinarySearchFunc(mkeys, phi, bytes.Compare)
	}
	p := Page{FirstIndex: -1, Count: len(matches), Complete: true}
	if end <= start {
		return p, nil
	}
	if backward {
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
