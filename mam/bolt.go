package mam

import (
	"context"
	"errors"
	"fmt"
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

// BoltStore is a Store in a bbolt database. Stores of other packages may
// share the file: every bucket of this store is named "mam.…". The mam
// buckets of a file belong to one BoltStore at a time: it keeps the
// preferences it read in memory (up to 8,192 owners, dropped by SetPrefs and
// Erase), so that archiving a message reads no preferences from the file.
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

	prefs prefsCache // owners' preferences, read once (bolt_prefscache.go)

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

var _ Store = (*BoltStore)(nil)

// NewBoltStore returns a Store keeping its data in db, creating its buckets
// if needed, with the options of cfg (a zero BoltConfig gives the
// defaults). The caller opens and closes db.
func NewBoltStore(db *bolt.DB, cfg BoltConfig) (*BoltStore, error) {
	if db == nil {
		return nil, fmt.Errorf("%w: NewBoltStore: nil database", ErrConfig)
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

func bareBytes(j jid.JID) []byte { return []byte(j.Bare().String()) }

func zeroJID(j jid.JID) bool { return j.Equal(jid.JID{}) }

func boltErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrBadRequest) || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("mam: database: %w", err)
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
