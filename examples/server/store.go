package main

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/roster"
)

// serverStore keeps the example server's own data in one bbolt file: each
// user's roster, the persistent configuration of group chat rooms and an
// index of the rooms each user owns.
//
// It is a Holder for account deletion (Name, Export, Erase): a deleted
// user's roster goes, and so do the rooms the user owned and their index.
type serverStore struct {
	db *bolt.DB
}

var (
	bucketRoster     = []byte("roster")      // user → (contact bare JID → rosterItem JSON)
	bucketRooms      = []byte("rooms")       // room localpart → roomConfig JSON
	bucketRoomOwners = []byte("room-owners") // owner bare JID → (room localpart → empty)
)

// Per-user limits and their defaults (Config.MaxRosterItems,
// Config.MaxOwnedRooms), and the bounds of one roster item. With them a
// roster holds at most 1,000 × (2,047 + 256 + 8 × 128) bytes of data,
// about 3.3 MB: a bare JID is at most 1,023 + 1 + 1,023 bytes (RFC 7622).
const (
	defaultMaxRosterItems = 1000
	defaultMaxOwnedRooms  = 100
	maxRosterNameBytes    = 256
	maxRosterGroups       = 8
	maxRosterGroupBytes   = 128
)

// Errors of the server store. The handlers map them to stanza errors.
var (
	// errRosterFull is returned when a roster set would add an item beyond
	// the user's roster limit.
	errRosterFull = errors.New("roster item limit reached")
	// errRosterItem is returned for an item whose name or groups are out
	// of bounds (RFC 6121 § 2.3.3: not-acceptable).
	errRosterItem = errors.New("roster item not acceptable")
	// errDuplicateGroup is returned for an item that names a group twice
	// (RFC 6121 § 2.3.3: bad-request).
	errDuplicateGroup = errors.New("roster item names a group twice")
	// errRoomLimit is returned when a user who owns the maximum number of
	// rooms creates another one.
	errRoomLimit = errors.New("owned room limit reached")
	// errRoomExists is returned when a room to create exists already.
	errRoomExists = errors.New("room exists")
)

func newServerStore(db *bolt.DB) (*serverStore, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketRoster, bucketRooms, bucketSubPending, bucketSubPendingBy, bucketBlocklist, bucketReports, bucketRoomAffiliations} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if tx.Bucket(bucketRoomOwners) != nil {
			return nil
		}
		// A file written before the owner index existed: build it once.
		idx, err := tx.CreateBucket(bucketRoomOwners)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketRooms).ForEach(func(k, v []byte) error {
			var c roomConfig
			if json.Unmarshal(v, &c) != nil || c.Owner == "" {
				return nil
			}
			ob, err := idx.CreateBucketIfNotExists([]byte(c.Owner))
			if err != nil {
				return err
			}
			return ob.Put(k, nil)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("server store: %w", err)
	}
	return &serverStore{db: db}, nil
}

// rosterItem is one contact, with its RFC 6121 subscription state
// (subscription.go).
type rosterItem struct {
	JID    string   `json:"jid"`
	Name   string   `json:"name,omitempty"`
	Groups []string `json:"groups,omitempty"`
	// Sub is the subscription: "" (none), "to", "from" or "both".
	Sub string `json:"sub,omitempty"`
	// Ask: the user asked to see the contact's presence (pending out).
	Ask bool `json:"ask,omitempty"`
	// Approved: the user pre-approved the contact's request (RFC 6121 § 3.4).
	Approved bool `json:"approved,omitempty"`
}

// check reports whether the item's name and groups are within bounds
// (errRosterItem) and its groups distinct (errDuplicateGroup).
func (it rosterItem) check() error {
	if len(it.Name) > maxRosterNameBytes {
		return fmt.Errorf("%w: name longer than %d bytes", errRosterItem, maxRosterNameBytes)
	}
	if !xmlText(it.Name) {
		return fmt.Errorf("%w: name is not XML text", errRosterItem)
	}
	if len(it.Groups) > maxRosterGroups {
		return fmt.Errorf("%w: more than %d groups", errRosterItem, maxRosterGroups)
	}
	for i, g := range it.Groups {
		switch {
		case g == "":
			return fmt.Errorf("%w: empty group", errRosterItem)
		case len(g) > maxRosterGroupBytes:
			return fmt.Errorf("%w: group longer than %d bytes", errRosterItem, maxRosterGroupBytes)
		case !xmlText(g):
			return fmt.Errorf("%w: group is not XML text", errRosterItem)
		case slices.Contains(it.Groups[:i], g):
			return errDuplicateGroup
		}
	}
	return nil
}

// xmlText reports whether s is valid UTF-8 made of characters XML allows
// (XML 1.0 § 2.2), so that it is stored and sent back unchanged. Text read
// from a stream always is; the check guards the store's other callers.
func xmlText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
		case r < 0x20, r >= 0xD800 && r <= 0xDFFF, r == 0xFFFE, r == 0xFFFF:
			return false
		}
	}
	return true
}

// roster returns the user's contacts sorted by JID.
func (st *serverStore) roster(user string) ([]rosterItem, error) {
	var items []rosterItem
	err := st.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRoster).Bucket([]byte(user))
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			var it rosterItem
			if err := json.Unmarshal(v, &it); err != nil {
				return err
			}
			items = append(items, it)
			return nil
		})
	})
	sort.Slice(items, func(i, j int) bool { return items[i].JID < items[j].JID })
	return items, err
}

// setRosterItem adds or replaces a contact's name and groups; the
// subscription state of an existing item is kept (only presence changes
// it). Adding one to a roster that holds max items fails with
// errRosterFull (max ≤ 0: no limit); replacing an existing item always
// works. An item out of bounds fails with errRosterItem or
// errDuplicateGroup.
func (st *serverStore) setRosterItem(user string, it rosterItem, max int) error {
	if err := it.check(); err != nil {
		return err
	}
	return st.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketRoster).CreateBucketIfNotExists([]byte(user))
		if err != nil {
			return err
		}
		old := b.Get([]byte(it.JID))
		if max > 0 && old == nil && countUpTo(b, max) >= max {
			return errRosterFull
		}
		var prev rosterItem
		if old != nil && json.Unmarshal(old, &prev) == nil {
			it.Sub, it.Ask, it.Approved = prev.Sub, prev.Ask, prev.Approved
		}
		v, err := json.Marshal(it)
		if err != nil {
			return err
		}
		return b.Put([]byte(it.JID), v)
	})
}

// countUpTo counts the keys of b, stopping at max: the cost is bounded by
// the limit, not by what the bucket holds.
func countUpTo(b *bolt.Bucket, max int) int {
	n := 0
	c := b.Cursor()
	for k, _ := c.First(); k != nil && n < max; k, _ = c.Next() {
		n++
	}
	return n
}

// removeRosterItem deletes a contact.
func (st *serverStore) removeRosterItem(user, contact string) error {
	return st.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRoster).Bucket([]byte(user))
		if b == nil {
			return nil
		}
		return b.Delete([]byte(contact))
	})
}

// inRoster reports whether contact's bare JID is in the user's roster.
func (st *serverStore) inRoster(user string, contact jid.JID) bool {
	found := false
	_ = st.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRoster).Bucket([]byte(user))
		found = b != nil && b.Get([]byte(contact.Bare().String())) != nil
		return nil
	})
	return found
}

// roomConfig is the persistent part of a room.
type roomConfig struct {
	Owner     string `json:"owner"`     // bare JID
	Archiving bool   `json:"archiving"` // mam.FieldEnableArchiving
	// The rest is XEP-0045 configuration and affiliations (muc_config.go,
	// muc_admin.go); a file written before they existed reads as an
	// unlocked, open, public, persistent, semi-anonymous room.
	Locked       bool              `json:"locked,omitempty"`
	MembersOnly  bool              `json:"members_only,omitempty"`
	WhoisAnyone  bool              `json:"whois_anyone,omitempty"`
	Hidden       bool              `json:"hidden,omitempty"`
	Temporary    bool              `json:"temporary,omitempty"`
	SubjectByAll bool              `json:"subject_by_all,omitempty"`
	Name         string            `json:"name,omitempty"`
	Description  string            `json:"description,omitempty"`
	Affiliations map[string]string `json:"affiliations,omitempty"` // bare JID → admin, member or outcast
	Moderated    bool              `json:"moderated,omitempty"`
	SecretSalt   []byte            `json:"secret_salt,omitempty"` // room password: PBKDF2 salt and hash, never the password
	SecretHash   []byte            `json:"secret_hash,omitempty"`
	HistoryMax   int               `json:"history_max,omitempty"` // 0: defaultRoomHistory; < 0: none
}

// createRoom stores a new room owned by c.Owner. It fails with
// errRoomExists if the room exists, and with errRoomLimit if the owner
// already owns max rooms (max ≤ 0: no limit). The owner index is read and
// written in the same transaction as the room, so concurrent creations
// cannot pass the limit.
func (st *serverStore) createRoom(name string, c roomConfig, max int) error {
	v, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return st.db.Update(func(tx *bolt.Tx) error {
		rb := tx.Bucket(bucketRooms)
		if rb.Get([]byte(name)) != nil {
			return errRoomExists
		}
		ob, err := tx.Bucket(bucketRoomOwners).CreateBucketIfNotExists([]byte(c.Owner))
		if err != nil {
			return err
		}
		if max > 0 && countUpTo(ob, max) >= max {
			return errRoomLimit
		}
		if err := ob.Put([]byte(name), nil); err != nil {
			return err
		}
		return rb.Put([]byte(name), v)
	})
}

// saveRoom stores a room's configuration, new or changed, and keeps the
// owner index right. It applies no limit: rooms are created with
// createRoom.
func (st *serverStore) saveRoom(name string, c roomConfig) error {
	v, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return st.db.Update(func(tx *bolt.Tx) error {
		rb, idx := tx.Bucket(bucketRooms), tx.Bucket(bucketRoomOwners)
		var old roomConfig
		if ov := rb.Get([]byte(name)); ov != nil && json.Unmarshal(ov, &old) == nil && old.Owner != c.Owner && old.Owner != "" {
			if err := unindexRoom(idx, old.Owner, name); err != nil {
				return err
			}
		}
		if err := reindexAffiliations(tx, name, old.Affiliations, c.Affiliations); err != nil {
			return err
		}
		if c.Owner != "" {
			ob, err := idx.CreateBucketIfNotExists([]byte(c.Owner))
			if err != nil {
				return err
			}
			if err := ob.Put([]byte(name), nil); err != nil {
				return err
			}
		}
		return rb.Put([]byte(name), v)
	})
}

// deleteRoom deletes a room's configuration and its entry in the owner
// index, in one transaction. Deleting a room that does not exist is not
// an error.
func (st *serverStore) deleteRoom(name string) error {
	return st.db.Update(func(tx *bolt.Tx) error {
		rb := tx.Bucket(bucketRooms)
		var c roomConfig
		if v := rb.Get([]byte(name)); v != nil && json.Unmarshal(v, &c) == nil && c.Owner != "" {
			if err := unindexRoom(tx.Bucket(bucketRoomOwners), c.Owner, name); err != nil {
				return err
			}
		}
		if err := reindexAffiliations(tx, name, c.Affiliations, nil); err != nil {
			return err
		}
		return rb.Delete([]byte(name))
	})
}

// unindexRoom removes room from owner's index, and the owner's bucket once
// empty.
func unindexRoom(idx *bolt.Bucket, owner, room string) error {
	ob := idx.Bucket([]byte(owner))
	if ob == nil {
		return nil
	}
	if err := ob.Delete([]byte(room)); err != nil {
		return err
	}
	if k, _ := ob.Cursor().First(); k == nil {
		return idx.DeleteBucket([]byte(owner))
	}
	return nil
}

// ownedRooms returns the rooms owner (a bare JID) owns, read through the
// index: no other room is read.
func (st *serverStore) ownedRooms(owner string) (map[string]roomConfig, error) {
	out := make(map[string]roomConfig)
	err := st.db.View(func(tx *bolt.Tx) error {
		ob := tx.Bucket(bucketRoomOwners).Bucket([]byte(owner))
		if ob == nil {
			return nil
		}
		rb := tx.Bucket(bucketRooms)
		return ob.ForEach(func(k, _ []byte) error {
			var c roomConfig
			if v := rb.Get(k); v != nil && json.Unmarshal(v, &c) == nil && c.Owner == owner {
				out[string(k)] = c
			}
			return nil
		})
	})
	return out, err
}

func (st *serverStore) rooms() (map[string]roomConfig, error) {
	out := make(map[string]roomConfig)
	err := st.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRooms).ForEach(func(k, v []byte) error {
			var c roomConfig
			if err := json.Unmarshal(v, &c); err != nil {
				return err
			}
			out[string(k)] = c
			return nil
		})
	})
	return out, err
}

// Name implements the account Holder: the roster and owned rooms.
func (st *serverStore) Name() string { return "roster" }

// Export writes the user's roster (XEP-0227 style <query
// xmlns='jabber:iq:roster'>) and the rooms the user owns.
func (st *serverStore) Export(_ context.Context, user jid.JID, w io.Writer) error {
	items, err := st.roster(user.Localpart())
	if err != nil {
		return err
	}
	owned, err := st.ownedRooms(user.Bare().String())
	if err != nil {
		return err
	}
	affs, err := st.affiliationsOf(user.Bare().String())
	if err != nil {
		return err
	}
	type xItem struct {
		JID          string   `xml:"jid,attr"`
		Name         string   `xml:"name,attr,omitempty"`
		Subscription string   `xml:"subscription,attr"`
		Ask          string   `xml:"ask,attr,omitempty"`
		Approved     bool     `xml:"approved,attr,omitempty"`
		Groups       []string `xml:"group"`
	}
	type xRoom struct {
		JID         string `xml:"jid,attr"`
		Archiving   bool   `xml:"archiving,attr"`
		MembersOnly bool   `xml:"members-only,attr"`
		Moderated   bool   `xml:"moderated,attr"`
		Password    bool   `xml:"password-protected,attr"` // not the password, which is kept hashed
		Name        string `xml:"name,attr,omitempty"`
		Description string `xml:"description,attr,omitempty"`
		Members     int    `xml:"affiliations,attr"` // how many others the room names; not who
	}
	var out struct {
		XMLName      xml.Name
		Items        []xItem           `xml:"item"`
		Rooms        []xRoom           `xml:"urn:example:owned-rooms room"`
		Affiliations []roomAffiliation `xml:"urn:example:room-affiliations affiliation"`
	}
	out.Affiliations = affs
	out.XMLName = xml.Name{Space: roster.NS, Local: "query"}
	for _, it := range items {
		x := xItem{JID: it.JID, Name: it.Name, Subscription: it.subscription(), Approved: it.Approved, Groups: it.Groups}
		if it.Ask {
			x.Ask = "subscribe"
		}
		out.Items = append(out.Items, x)
	}
	for _, name := range slices.Sorted(maps.Keys(owned)) {
		c := owned[name]
		out.Rooms = append(out.Rooms, xRoom{JID: name, Archiving: c.Archiving, MembersOnly: c.MembersOnly,
			Moderated: c.Moderated, Password: len(c.SecretHash) > 0,
			Name: c.Name, Description: c.Description, Members: len(c.Affiliations)})
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	return enc.Flush()
}

// Erase deletes the user's roster, the configuration of the rooms the user
// owned, the user's entry in the owner index and the user's affiliations
// in other rooms, in one transaction; the indexes name the rooms, so no
// room that does not name the user is read. It is idempotent.
func (st *serverStore) Erase(_ context.Context, user jid.JID) error {
	owner := user.Bare().String()
	return st.db.Update(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketRoster).DeleteBucket([]byte(user.Localpart()))
		if err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return err
		}
		if err := eraseAffiliations(tx, owner); err != nil {
			return err
		}
		rb, idx := tx.Bucket(bucketRooms), tx.Bucket(bucketRoomOwners)
		ob := idx.Bucket([]byte(owner))
		if ob == nil {
			return nil
		}
		err = ob.ForEach(func(k, _ []byte) error {
			var c roomConfig
			if v := rb.Get(k); v != nil && json.Unmarshal(v, &c) == nil && c.Owner == owner {
				if err := reindexAffiliations(tx, string(k), c.Affiliations, nil); err != nil {
					return err
				}
				return rb.Delete(k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		return idx.DeleteBucket([]byte(owner))
	})
}
