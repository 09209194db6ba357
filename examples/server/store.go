package main

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"mellium.im/xmpp/jid"
)

// serverStore keeps the example server's own data in one bbolt file: each
// user's roster and the persistent configuration of group chat rooms.
//
// It is a Holder for account deletion (Name, Export, Erase): a deleted
// user's roster goes, and so do the rooms the user owned.
type serverStore struct {
	db *bolt.DB
}

var (
	bucketRoster = []byte("roster") // user → (contact bare JID → rosterItem JSON)
	bucketRooms  = []byte("rooms")  // room localpart → roomConfig JSON
)

func newServerStore(db *bolt.DB) (*serverStore, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketRoster, bucketRooms} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("server store: %w", err)
	}
	return &serverStore{db: db}, nil
}

// rosterItem is one contact. Subscriptions are not negotiated in this
// example: every item counts as subscription "both".
type rosterItem struct {
	JID    string   `json:"jid"`
	Name   string   `json:"name,omitempty"`
	Groups []string `json:"groups,omitempty"`
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

// setRosterItem adds or replaces a contact.
func (st *serverStore) setRosterItem(user string, it rosterItem) error {
	v, err := json.Marshal(it)
	if err != nil {
		return err
	}
	return st.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketRoster).CreateBucketIfNotExists([]byte(user))
		if err != nil {
			return err
		}
		return b.Put([]byte(it.JID), v)
	})
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
	Archiving bool   `json:"archiving"` // muc#roomconfig_enablearchiving
}

func (st *serverStore) saveRoom(name string, c roomConfig) error {
	v, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return st.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRooms).Put([]byte(name), v)
	})
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
	rooms, err := st.rooms()
	if err != nil {
		return err
	}
	type xItem struct {
		JID          string   `xml:"jid,attr"`
		Name         string   `xml:"name,attr,omitempty"`
		Subscription string   `xml:"subscription,attr"`
		Groups       []string `xml:"group"`
	}
	type xRoom struct {
		JID       string `xml:"jid,attr"`
		Archiving bool   `xml:"archiving,attr"`
	}
	var out struct {
		XMLName xml.Name `xml:"jabber:iq:roster query"`
		Items   []xItem  `xml:"item"`
		Rooms   []xRoom  `xml:"urn:example:owned-rooms room"`
	}
	for _, it := range items {
		out.Items = append(out.Items, xItem{JID: it.JID, Name: it.Name, Subscription: "both", Groups: it.Groups})
	}
	for name, c := range rooms {
		if c.Owner == user.Bare().String() {
			out.Rooms = append(out.Rooms, xRoom{JID: name, Archiving: c.Archiving})
		}
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	return enc.Flush()
}

// Erase deletes the user's roster and the configuration of the rooms the
// user owned. It is idempotent.
func (st *serverStore) Erase(_ context.Context, user jid.JID) error {
	owner := user.Bare().String()
	return st.db.Update(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketRoster).DeleteBucket([]byte(user.Localpart()))
		if err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return err
		}
		rb := tx.Bucket(bucketRooms)
		var owned [][]byte
		err = rb.ForEach(func(k, v []byte) error {
			var c roomConfig
			if json.Unmarshal(v, &c) == nil && c.Owner == owner {
				owned = append(owned, append([]byte(nil), k...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range owned {
			if err := rb.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}
