package mam

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"mellium.im/xmpp/jid"
)

// BoltConfig configures a BoltStore. The zero BoltConfig is the private
// default.
type BoltConfig struct {
	// Now is the clock that stamps messages appended with a zero Time; nil
	// means time.Now.
	Now func() time.Time

	// EraseGroupMessages makes Erase also delete the user's own messages in
	// room archives (the records whose real JID is the user), not only strip
	// the real JID from them. Messages in anonymous rooms carry no real JID
	// and cannot be attributed to the user; they stay.
	EraseGroupMessages bool

	// CompactWithIndex makes the per-peer index hold only keys, flags and
	// resources instead of a copy of each record. The archive then takes
	// about half the space on disk, but a page filtered by With costs one
	// B-tree lookup per message (several times slower; see README.md).
	CompactWithIndex bool

	// ExpireBatch is the largest number of messages Expire deletes in one
	// write transaction; 0 means 5,000. Smaller batches keep appends and
	// queries responsive while a large expiry runs.
	ExpireBatch int
}

// BoltStore is a Store in a bbolt database. Several BoltStores (or other
// packages) may share one file: every bucket of this store is named "mam.…".
//
// # Layout
//
// A message key is 16 bytes: the archive time in nanoseconds since 1970
// (big endian, sign bit flipped so that the order is chronological) and an
// 8-byte sequence number of the archive, which orders messages with the same
// time by arrival. The archive id (16 random bytes, see NewID) is stored in
// the record and in an id index, not in the key, so the key order is the
// archive order even for equal times.
//
//	mam.archives/<archive bare JID>/m  key → record (flags, id, with, stanza)
//	mam.archives/<archive bare JID>/i  id → key
//	mam.archives/<archive bare JID>/w  with bare JID 0x00 key → record (or flags, resource)
//	mam.archives/<archive bare JID>/c  "t" | "b"+bare | "f"+full → count, groupchat count
//	mam.archives/<archive bare JID>/r  key → real bare JID (room records)
//	mam.realjid  real bare JID 0x00 room bare JID 0x00 key → (empty)
//	mam.prefs    owner bare JID → preferences
//
// Queries seek directly to their first key: a page costs the same in an
// archive of ten thousand or of a million messages, and a With query walks
// the w index of that peer only, whose entries carry a copy of the records
// (unless BoltConfig.CompactWithIndex), so that it reads consecutive
// entries like an unfiltered page. Count comes from the counters for queries
// filtered by With (and include-groupchat) only; other filtered queries
// report Count and FirstIndex as -1 unless the page holds every match. The
// sequence of the m bucket is 1 + the count of an unfiltered query without
// include-groupchat, so that the most common count costs no lookup (0
// means not set yet: the counters are read instead).
//
// Every byte that identifies a user (archive, peer and real JIDs, stanzas,
// preferences) is in the keys and values of these buckets, and Erase and
// Expire delete all of them, index entries and counters included. bbolt
// keeps freed pages in the file until they are reused; wiping or compacting
// them is the job of the retention purge.
//
// The stanzas of a query page share one allocation, each Message.Stanza
// capped to its own bytes: keeping one message of a page keeps the page's
// stanzas in memory.
//
// Appends from concurrent callers are group-committed: while one write
// transaction commits, the appends that arrive queue up and share the next
// one (up to 1,000), with no added delay; a lone caller commits at once.
// Nothing is logged.
type BoltStore struct {
	db  *bolt.DB
	cfg BoltConfig

	gcMu      sync.Mutex
	gcQueue   []*commitReq // appends waiting for the next transaction
	gcRunning bool         // a goroutine is committing

	mu sync.RWMutex
	// jids caches parsed stored JIDs; Erase clears it. The values are
	// pointers so that a hit copies the JID once, straight into the
	// message (a map value is copied through temporaries).
	jids map[string]*jid.JID

	// expireTx, when set (by tests), is called after each committed Expire
	// transaction with its duration.
	expireTx func(removed int, took time.Duration)
}

var (
	bucketArchives = []byte("mam.archives")
	bucketRealJID  = []byte("mam.realjid")
	bucketPrefs    = []byte("mam.prefs")

	subMsgs     = []byte("m")
	subIDs      = []byte("i")
	subWith     = []byte("w")
	subCounts   = []byte("c")
	subRealJIDs = []byte("r")

	countTotal = []byte("t")
)

const (
	keyLen        = 16
	recordVersion = 1
	defaultPage   = 50
	defaultExpire = 5000
	jidCacheMax   = 8192

	flagGroupchat = 1 << 0 // type='groupchat'
	flagExcluded  = 1 << 1 // groupchat in a user archive: hidden unless IncludeGroupchat
	flagRealJID   = 1 << 2 // a real JID was stored in the r bucket

	// withCompact marks a compact with entry (flags | resource); a covering
	// entry is a record and starts with recordVersion.
	withCompact = 0xc0
)

// withEntry returns the flags and resource of a with index entry of either
// form.
func withEntry(v []byte) (flags byte, res []byte, ok bool) {
	if len(v) == 0 {
		return 0, nil, false
	}
	if v[0]&withCompact == withCompact {
		return v[0] &^ withCompact, v[1:], true
	}
	rec, err := decodeRecord(v)
	if err != nil {
		return 0, nil, false
	}
	if i := bytes.IndexByte(rec.with, '/'); i >= 0 {
		res = rec.with[i+1:]
	}
	return rec.flags, res, true
}

var _ Store = (*BoltStore)(nil)

// NewBoltStore returns a Store keeping its data in db, creating its buckets
// if needed, with the defaults of a zero BoltConfig. The caller opens and
// closes db.
func NewBoltStore(db *bolt.DB) (*BoltStore, error) {
	return NewBoltStoreWithConfig(db, BoltConfig{})
}

// NewBoltStoreWithConfig is NewBoltStore with the options of cfg.
func NewBoltStoreWithConfig(db *bolt.DB, cfg BoltConfig) (*BoltStore, error) {
	if db == nil {
		return nil, errors.New("mam: NewBoltStore: nil database")
	}
	if cfg.ExpireBatch <= 0 {
		cfg.ExpireBatch = defaultExpire
	}
	exist := false
	err := db.View(func(tx *bolt.Tx) error {
		exist = tx.Bucket(bucketArchives) != nil && tx.Bucket(bucketRealJID) != nil && tx.Bucket(bucketPrefs) != nil
		return nil
	})
	if err == nil && !exist {
		// A read-only database (an export tool) works once the buckets exist.
		err = db.Update(func(tx *bolt.Tx) error {
			for _, b := range [][]byte{bucketArchives, bucketRealJID, bucketPrefs} {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("mam: create buckets: %w", err)
	}
	return &BoltStore{db: db, cfg: cfg, jids: make(map[string]*jid.JID)}, nil
}

// Name returns "mam".
func (s *BoltStore) Name() string { return "mam" }

func (s *BoltStore) now() time.Time {
	if s.cfg.Now != nil {
		return s.cfg.Now()
	}
	return time.Now()
}

// Times a key can hold: nanoseconds since 1970 in an int64.
var (
	minTime = time.Unix(0, math.MinInt64).UTC()
	maxTime = time.Unix(0, math.MaxInt64).UTC()
)

func putKeyTime(b []byte, t time.Time) {
	binary.BigEndian.PutUint64(b, uint64(t.UnixNano())^(1<<63))
}

func keyTime(k []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(k)^(1<<63))).UTC()
}

// keyAtTime is the smallest key at time t.
func keyAtTime(t time.Time) []byte {
	k := make([]byte, keyLen)
	putKeyTime(k, t)
	return k
}

// keyAfter returns the smallest key greater than k, or nil if none.
func keyAfter(k []byte) []byte {
	n := slices.Clone(k)
	for i := len(n) - 1; i >= 0; i-- {
		n[i]++
		if n[i] != 0 {
			return n
		}
	}
	return nil
}

func idString(raw []byte) string { return base64.RawURLEncoding.EncodeToString(raw) }

// idLen is the length of an encoded archive id,
// base64.RawURLEncoding.EncodedLen(IDLen).
const idLen = 22

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// encodeID writes the id raw (IDLen bytes) to dst as idString does,
// without the general encoder's loop.
func encodeID(dst *[idLen]byte, raw []byte) {
	raw = raw[:IDLen]
	for i := range 5 {
		v := uint(raw[3*i])<<16 | uint(raw[3*i+1])<<8 | uint(raw[3*i+2])
		dst[4*i] = idAlphabet[v>>18&0x3f]
		dst[4*i+1] = idAlphabet[v>>12&0x3f]
		dst[4*i+2] = idAlphabet[v>>6&0x3f]
		dst[4*i+3] = idAlphabet[v&0x3f]
	}
	v := uint(raw[15])
	dst[20] = idAlphabet[v>>2]
	dst[21] = idAlphabet[v<<4&0x3f]
}

func bareBytes(j jid.JID) []byte { return []byte(j.Bare().String()) }

func zeroJID(j jid.JID) bool { return j.Equal(jid.JID{}) }

func boltErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrBadQuery) || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("mam: database: %w", err)
}

// record is the value of a message key:
//
//	version (1) | flags (1) | id (16) | uvarint len(with) | with | stanza
func encodeRecord(flags byte, id []byte, with string, stanza []byte) []byte {
	b := make([]byte, 0, 2+IDLen+binary.MaxVarintLen32+len(with)+len(stanza))
	b = append(b, recordVersion, flags)
	b = append(b, id...)
	b = binary.AppendUvarint(b, uint64(len(with)))
	b = append(b, with...)
	return append(b, stanza...)
}

type rawRecord struct {
	flags  byte
	id     []byte
	with   []byte
	stanza []byte
}

var errCorruptRecord = errors.New("mam: corrupt archive record")

func decodeRecord(v []byte) (rawRecord, error) {
	ws, we, ok := recordLayout(v)
	if !ok {
		return rawRecord{}, errCorruptRecord
	}
	return rawRecord{flags: v[1], id: v[2 : 2+IDLen], with: v[ws:we], stanza: v[we:]}, nil
}

// recordLayout reports whether v is a record and where its parts are: the
// flags at v[1], the id at v[2:2+IDLen], the peer at v[ws:we] and the
// stanza at v[we:]. (The page fill uses it rather than decodeRecord, whose
// result is too large to travel in registers.)
func recordLayout(v []byte) (ws, we int, ok bool) {
	if len(v) < 2+IDLen+1 || v[0] != recordVersion {
		return 0, 0, false
	}
	n, l := binary.Uvarint(v[2+IDLen:])
	if l <= 0 || n > uint64(len(v)-2-IDLen-l) {
		return 0, 0, false
	}
	ws = 2 + IDLen + l
	return ws, ws + int(n), true
}

// parseJID parses a stored JID, caching the result: jid.Parse
// normalizes with PRECIS and costs about a microsecond.
func (s *BoltStore) parseJID(b []byte) (jid.JID, error) {
	if len(b) == 0 {
		return jid.JID{}, nil
	}
	s.mu.RLock()
	j := s.jids[string(b)]
	s.mu.RUnlock()
	if j != nil {
		return *j, nil
	}
	return s.parseJIDSlow(b)
}

func (s *BoltStore) parseJIDSlow(b []byte) (jid.JID, error) {
	j, err := jid.Parse(string(b))
	if err != nil {
		return jid.JID{}, errCorruptRecord
	}
	s.mu.Lock()
	if len(s.jids) >= jidCacheMax {
		clear(s.jids)
	}
	s.jids[string(b)] = &j
	s.mu.Unlock()
	return j, nil
}

// counters are the values of the c bucket: messages, and of those the
// groupchat messages of a user archive (hidden unless IncludeGroupchat).
func boltGetCount(c *bolt.Bucket, k []byte) (n, excluded uint64) {
	v := c.Get(k)
	if len(v) != 16 {
		return 0, 0
	}
	return binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:])
}

// boltAddCount adds delta to the counter k of the c bucket, and to its
// excluded count if excluded. msgs is the archive's m bucket.
func boltAddCount(c, msgs *bolt.Bucket, k []byte, delta int64, excluded bool) error {
	var dx int64
	if excluded {
		dx = delta
	}
	return boltAddCounts(c, msgs, k, delta, dx)
}

// boltAddCounts adds dn messages, dx of them excluded, to the counter k of
// the c bucket. A change of the total also sets the sequence of the m
// bucket msgs to 1 + the messages a query without IncludeGroupchat counts,
// so that the most common count costs no lookup (0, in an archive no
// append of this version has touched yet, means: read the counter).
func boltAddCounts(c, msgs *bolt.Bucket, k []byte, dn, dx int64) error {
	n, x := boltGetCount(c, k)
	n = uint64(int64(n) + dn)
	x = uint64(int64(x) + dx)
	if bytes.Equal(k, countTotal) {
		visible := uint64(0)
		if int64(n) > 0 && x <= n {
			visible = n - x
		}
		if err := msgs.SetSequence(1 + visible); err != nil {
			return err
		}
	}
	if int64(n) <= 0 {
		return c.Delete(k)
	}
	v := make([]byte, 16)
	binary.BigEndian.PutUint64(v, n)
	binary.BigEndian.PutUint64(v[8:], x)
	return c.Put(slices.Clone(k), v)
}

// countDeltas accumulates counter changes of many deletions, to write each
// counter once.
type countDeltas map[string]*[2]int64

func (d countDeltas) add(k []byte, dn int64, excluded bool) {
	e := d[string(k)]
	if e == nil {
		e = new([2]int64)
		d[string(k)] = e
	}
	e[0] += dn
	if excluded {
		e[1] += dn
	}
}

func (d countDeltas) apply(c, msgs *bolt.Bucket) error {
	for k, e := range d {
		if err := boltAddCounts(c, msgs, []byte(k), e[0], e[1]); err != nil {
			return err
		}
	}
	clear(d)
	return nil
}

func boltCountKeys(with string, res bool, bareWith []byte) [][]byte {
	ks := [][]byte{countTotal, append([]byte("b"), bareWith...)}
	if res {
		ks = append(ks, append([]byte("f"), with...))
	}
	return ks
}

func withIndexKey(bareWith, key []byte) []byte {
	k := make([]byte, 0, len(bareWith)+1+keyLen)
	k = append(k, bareWith...)
	k = append(k, 0)
	return append(k, key...)
}

func realIndexKey(real, archive, key []byte) []byte {
	k := make([]byte, 0, len(real)+len(archive)+2+keyLen)
	k = append(k, real...)
	k = append(k, 0)
	k = append(k, archive...)
	k = append(k, 0)
	return append(k, key...)
}

// pending is a validated message ready to be written.
type pending struct {
	m        Message
	archive  []byte
	with     string
	bareWith []byte
	res      bool
	flags    byte
	real     []byte
	compact  bool
}

func (s *BoltStore) prepare(m Message) (*pending, error) {
	if zeroJID(m.Archive) {
		return nil, fmt.Errorf("mam: append without archive: %w", ErrBadQuery)
	}
	if len(m.Stanza) == 0 {
		return nil, fmt.Errorf("mam: append of an empty stanza: %w", ErrBadQuery)
	}
	if m.Time.IsZero() {
		m.Time = s.now()
	}
	m.Time = m.Time.UTC().Round(0)
	if m.Time.Before(minTime) || m.Time.After(maxTime) {
		return nil, fmt.Errorf("mam: message time out of range: %w", ErrBadQuery)
	}
	m.Archive = m.Archive.Bare()
	if !zeroJID(m.RealJID) {
		m.RealJID = m.RealJID.Bare()
	}
	m.Stanza = slices.Clone(m.Stanza)
	p := &pending{
		m:        m,
		archive:  []byte(m.Archive.String()),
		with:     m.With.String(),
		bareWith: bareBytes(m.With),
		res:      m.With.Resourcepart() != "",
		compact:  s.cfg.CompactWithIndex,
	}
	if m.Groupchat {
		p.flags |= flagGroupchat
		if !m.With.Bare().Equal(m.Archive) {
			p.flags |= flagExcluded
		}
	}
	if !zeroJID(m.RealJID) {
		p.flags |= flagRealJID
		p.real = []byte(m.RealJID.String())
	}
	return p, nil
}

// put writes p in tx and sets p.m.ID. It may run again in a new
// transaction if a batch fails.
func (p *pending) put(tx *bolt.Tx) error {
	ab, err := tx.Bucket(bucketArchives).CreateBucketIfNotExists(p.archive)
	if err != nil {
		return err
	}
	var bs [5]*bolt.Bucket
	for i, name := range [][]byte{subMsgs, subIDs, subWith, subCounts, subRealJIDs} {
		if bs[i], err = ab.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	msgs, ids, withs, counts, reals := bs[0], bs[1], bs[2], bs[3], bs[4]
	// Keys of m and w arrive in time order, so pages are filled before
	// they split (bbolt's default, 0.5, suits random inserts like ids).
	msgs.FillPercent, withs.FillPercent = 0.9, 0.9
	seq, err := ab.NextSequence()
	if err != nil {
		return err
	}
	key := make([]byte, keyLen)
	putKeyTime(key, p.m.Time)
	binary.BigEndian.PutUint64(key[8:], seq)
	id := make([]byte, IDLen)
	for {
		rand.Read(id)
		if ids.Get(id) == nil {
			break
		}
	}
	rec := encodeRecord(p.flags, id, p.with, p.m.Stanza)
	if err := msgs.Put(key, rec); err != nil {
		return err
	}
	if err := ids.Put(id, key); err != nil {
		return err
	}
	// The with entry holds a copy of the record (a covering index: a with
	// page reads consecutive entries), or with CompactWithIndex only the
	// flags and the resource.
	wv := rec
	if p.compact {
		wv = append([]byte{withCompact | p.flags}, p.m.With.Resourcepart()...)
	}
	if err := withs.Put(withIndexKey(p.bareWith, key), wv); err != nil {
		return err
	}
	for _, ck := range boltCountKeys(p.with, p.res, p.bareWith) {
		if err := boltAddCount(counts, msgs, ck, 1, p.flags&flagExcluded != 0); err != nil {
			return err
		}
	}
	if p.real != nil {
		if err := reals.Put(key, slices.Clone(p.real)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketRealJID).Put(realIndexKey(p.real, p.archive, key), nil); err != nil {
			return err
		}
	}
	p.m.ID = idString(id)
	return nil
}

// maxGroup is the largest number of appends committed in one transaction.
const maxGroup = 1000

type commitReq struct {
	p    *pending
	done chan error
}

// groupCommit writes p in a write transaction shared with the appends that
// queued while the previous transaction committed. A lone append commits at
// once; under load, one fsync serves many appends. (bbolt's DB.Batch would
// add up to MaxBatchDelay, 10 ms by default, to every concurrent append.)
func (s *BoltStore) groupCommit(p *pending) error {
	req := &commitReq{p: p, done: make(chan error, 1)}
	s.gcMu.Lock()
	s.gcQueue = append(s.gcQueue, req)
	lead := !s.gcRunning
	s.gcRunning = true
	s.gcMu.Unlock()
	if lead {
		s.drain()
	}
	return <-req.done
}

// drain commits one group of queued appends and, if more arrived meanwhile,
// hands the next group to a new goroutine so that this caller returns.
func (s *BoltStore) drain() {
	s.gcMu.Lock()
	n := min(len(s.gcQueue), maxGroup)
	group := slices.Clone(s.gcQueue[:n])
	s.gcQueue = slices.Delete(s.gcQueue, 0, n)
	s.gcMu.Unlock()

	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, r := range group {
			if err := r.p.put(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && len(group) > 1 {
		// Commit each alone, so that one failure fails only its append.
		for _, r := range group {
			r.done <- s.db.Update(r.p.put)
		}
	} else {
		for _, r := range group {
			r.done <- err
		}
	}

	s.gcMu.Lock()
	more := len(s.gcQueue) > 0
	s.gcRunning = more
	s.gcMu.Unlock()
	if more {
		go s.drain()
	}
}

// Append implements Store. Concurrent appends are group-committed.
func (s *BoltStore) Append(ctx context.Context, m Message) (Message, error) {
	if err := ctx.Err(); err != nil {
		return Message{}, err
	}
	p, err := s.prepare(m)
	if err != nil {
		return Message{}, err
	}
	if err := s.groupCommit(p); err != nil {
		return Message{}, boltErr(err)
	}
	out := p.m
	out.Stanza = slices.Clone(p.m.Stanza)
	return out, nil
}

// archiveBuckets are the buckets of one archive, opened as needed; root
// is nil for an archive that does not exist.
type archiveBuckets struct {
	root, msgs               *bolt.Bucket
	ids, with, counts, reals *bolt.Bucket
}

// boltOpenArchive opens the archive's root and m buckets (the others open
// on first use; Query opens the root alone, as a with page may not read m).
func boltOpenArchive(tx *bolt.Tx, archive []byte) *archiveBuckets {
	a := &archiveBuckets{root: tx.Bucket(bucketArchives).Bucket(archive)}
	if a.root != nil {
		a.msgs = a.root.Bucket(subMsgs)
	}
	return a
}

func (a *archiveBuckets) sub(b **bolt.Bucket, name []byte) *bolt.Bucket {
	if *b == nil {
		*b = a.root.Bucket(name)
	}
	return *b
}

func (a *archiveBuckets) msgsB() *bolt.Bucket   { return a.sub(&a.msgs, subMsgs) }
func (a *archiveBuckets) idsB() *bolt.Bucket    { return a.sub(&a.ids, subIDs) }
func (a *archiveBuckets) withB() *bolt.Bucket   { return a.sub(&a.with, subWith) }
func (a *archiveBuckets) countsB() *bolt.Bucket { return a.sub(&a.counts, subCounts) }
func (a *archiveBuckets) realsB() *bolt.Bucket  { return a.sub(&a.reals, subRealJIDs) }

// resolve returns the key of the message with that archive id.
func (a *archiveBuckets) resolve(id string) ([]byte, error) {
	raw, err := ParseID(id)
	if err != nil {
		return nil, err
	}
	if a.root == nil {
		return nil, fmt.Errorf("mam: archive id: %w", ErrNotFound)
	}
	k := a.idsB().Get(raw[:])
	if len(k) != keyLen {
		return nil, fmt.Errorf("mam: archive id: %w", ErrNotFound)
	}
	return k, nil
}

func (s *BoltStore) message(a *archiveBuckets, archive jid.JID, key []byte, rec rawRecord) (Message, error) {
	with, err := s.parseJID(rec.with)
	if err != nil {
		return Message{}, err
	}
	m := Message{
		ID:        idString(rec.id),
		Archive:   archive,
		With:      with,
		Time:      keyTime(key),
		Groupchat: rec.flags&flagGroupchat != 0,
		Stanza:    slices.Clone(rec.stanza),
	}
	if rec.flags&flagRealJID != 0 {
		if r := a.realsB().Get(key); r != nil {
			if m.RealJID, err = s.parseJID(r); err != nil {
				return Message{}, err
			}
		}
	}
	return m, nil
}

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

func keyMax(a, b []byte) []byte {
	if a == nil || (b != nil && bytes.Compare(b, a) > 0) {
		return b
	}
	return a
}

func keyMin(a, b []byte) []byte {
	if a == nil || (b != nil && bytes.Compare(b, a) < 0) {
		return b
	}
	return a
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

// boltDeleteMessage removes the message at key from archive a with every
// index entry and counter that refers to it. Counter changes go to deltas
// when it is not nil (the caller applies them), else straight to the
// counters.
func boltDeleteMessage(tx *bolt.Tx, a *archiveBuckets, archive, key []byte, deltas countDeltas) error {
	v := a.msgs.Get(key)
	if v == nil {
		return nil
	}
	rec, err := decodeRecord(v)
	if err != nil {
		return err
	}
	// Copy what is needed before deleting: v points into the page.
	id := slices.Clone(rec.id)
	with := string(rec.with)
	flags := rec.flags
	key = slices.Clone(key)
	bareWith := []byte(with)
	res := false
	if i := bytes.IndexByte(bareWith, '/'); i >= 0 {
		bareWith, res = bareWith[:i], true
	}
	if err := a.msgs.Delete(key); err != nil {
		return err
	}
	if err := a.idsB().Delete(id); err != nil {
		return err
	}
	if err := a.withB().Delete(withIndexKey(bareWith, key)); err != nil {
		return err
	}
	for _, ck := range boltCountKeys(with, res, bareWith) {
		if deltas != nil {
			deltas.add(ck, -1, flags&flagExcluded != 0)
		} else if err := boltAddCount(a.countsB(), a.msgs, ck, -1, flags&flagExcluded != 0); err != nil {
			return err
		}
	}
	if flags&flagRealJID == 0 {
		return nil
	}
	if real := a.realsB().Get(key); real != nil {
		rk := realIndexKey(real, archive, key)
		if err := a.realsB().Delete(key); err != nil {
			return err
		}
		if err := tx.Bucket(bucketRealJID).Delete(rk); err != nil {
			return err
		}
	}
	return nil
}

// boltDeleteArchive removes a whole archive and the real-JID index entries
// that point into it.
func boltDeleteArchive(tx *bolt.Tx, archive []byte) error {
	a := boltOpenArchive(tx, archive)
	if a.root == nil {
		return nil
	}
	rj := tx.Bucket(bucketRealJID)
	var rks [][]byte
	if err := a.realsB().ForEach(func(k, v []byte) error {
		rks = append(rks, realIndexKey(v, archive, k))
		return nil
	}); err != nil {
		return err
	}
	for _, rk := range rks {
		if err := rj.Delete(rk); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketArchives).DeleteBucket(archive)
}

// Erase implements Store. It deletes the user's archive and preferences and,
// in every room archive, the user's real JID (or, with
// BoltConfig.EraseGroupMessages, the user's records), in one transaction.
func (s *BoltStore) Erase(ctx context.Context, user jid.JID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if zeroJID(user) {
		return fmt.Errorf("mam: erase without user: %w", ErrBadQuery)
	}
	u := bareBytes(user)
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketPrefs).Delete(u); err != nil {
			return err
		}
		if err := boltDeleteArchive(tx, u); err != nil {
			return err
		}
		rj := tx.Bucket(bucketRealJID)
		prefix := append(slices.Clone(u), 0)
		var rks [][]byte
		c := rj.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			rks = append(rks, slices.Clone(k))
		}
		for _, rk := range rks {
			rest := rk[len(prefix):]
			i := bytes.IndexByte(rest, 0)
			if i < 0 || len(rest)-i-1 != keyLen {
				return errCorruptRecord
			}
			room, key := rest[:i], rest[i+1:]
			a := boltOpenArchive(tx, room)
			if a.root == nil {
				if err := rj.Delete(rk); err != nil {
					return err
				}
				continue
			}
			if s.cfg.EraseGroupMessages {
				if err := boltDeleteMessage(tx, a, room, key, nil); err != nil {
					return err
				}
			} else if err := a.realsB().Delete(key); err != nil {
				return err
			}
			if err := rj.Delete(rk); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return boltErr(err)
	}
	s.mu.Lock()
	clear(s.jids)
	s.mu.Unlock()
	return nil
}

// Expire implements Store. It walks each archive from its oldest message
// and deletes at most BoltConfig.ExpireBatch messages per write
// transaction, so appends and queries proceed between the transactions. On
// cancellation it returns the number deleted so far with the context's
// error.
func (s *BoltStore) Expire(ctx context.Context, before time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if !before.After(minTime) {
		return 0, nil
	}
	var limit []byte // keys below limit expire; nil: all
	if before.Before(maxTime) {
		limit = keyAtTime(before)
	}
	removed := 0
	var resume []byte // the archive to continue with
	for {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		var n int
		var done bool
		start := time.Now()
		err := s.db.Update(func(tx *bolt.Tx) error {
			n, done = 0, false
			ac := tx.Bucket(bucketArchives).Cursor()
			var k, v []byte
			if resume == nil {
				k, v = ac.First()
			} else {
				k, v = ac.Seek(resume)
			}
			var emptied [][]byte
			for ; k != nil; k, v = ac.Next() {
				if v != nil {
					continue // not an archive bucket
				}
				archive := slices.Clone(k)
				a := boltOpenArchive(tx, archive)
				var keys [][]byte
				mc := a.msgs.Cursor()
				for mk, _ := mc.First(); mk != nil && n+len(keys) < s.cfg.ExpireBatch; mk, _ = mc.Next() {
					if limit != nil && bytes.Compare(mk, limit) >= 0 {
						break
					}
					keys = append(keys, slices.Clone(mk))
				}
				deltas := countDeltas{}
				for _, key := range keys {
					if err := boltDeleteMessage(tx, a, archive, key, deltas); err != nil {
						return err
					}
				}
				if err := deltas.apply(a.countsB(), a.msgs); err != nil {
					return err
				}
				n += len(keys)
				if first, _ := a.msgs.Cursor().First(); first == nil {
					emptied = append(emptied, archive)
				}
				if n == s.cfg.ExpireBatch {
					break
				}
			}
			done = k == nil
			if !done {
				resume = slices.Clone(k)
			}
			for _, archive := range emptied {
				if err := boltDeleteArchive(tx, archive); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return removed, boltErr(err)
		}
		removed += n
		if s.expireTx != nil {
			s.expireTx(n, time.Since(start))
		}
		if done {
			return removed, nil
		}
	}
}
