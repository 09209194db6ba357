package main

import (
	"encoding/json"
	"errors"
	"sort"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// bucketRoomAffiliations indexes the affiliations of rooms by user, so
// that an account's export and erasure read and change only the rooms
// that name the user: bare JID → (room localpart → affiliation).
var bucketRoomAffiliations = []byte("room-affiliations")

// maxRoomAffiliations bounds the admins, members and outcasts of one room
// (the owner not counted): about 1,000 × 2 KB of JIDs at most.
const maxRoomAffiliations = 1000

// reindexAffiliations brings the affiliation index of room name from the
// old configuration's affiliations to the new one's (nil: the room is
// deleted).
func reindexAffiliations(tx *bolt.Tx, name string, old, c map[string]string) error {
	idx, err := tx.CreateBucketIfNotExists(bucketRoomAffiliations)
	if err != nil {
		return err
	}
	for user := range old {
		if _, kept := c[user]; kept {
			continue
		}
		if err := unindexAffiliation(idx, user, name); err != nil {
			return err
		}
	}
	for user, aff := range c {
		if old[user] == aff {
			continue
		}
		ub, err := idx.CreateBucketIfNotExists([]byte(user))
		if err != nil {
			return err
		}
		if err := ub.Put([]byte(name), []byte(aff)); err != nil {
			return err
		}
	}
	return nil
}

// unindexAffiliation removes room from user's affiliation index, and the
// user's bucket once empty.
func unindexAffiliation(idx *bolt.Bucket, user, room string) error {
	ub := idx.Bucket([]byte(user))
	if ub == nil {
		return nil
	}
	if err := ub.Delete([]byte(room)); err != nil {
		return err
	}
	if k, _ := ub.Cursor().First(); k == nil {
		return idx.DeleteBucket([]byte(user))
	}
	return nil
}

// storedRoom reads a room's configuration in tx (false: none or unreadable).
func storedRoom(tx *bolt.Tx, name []byte) (roomConfig, bool) {
	var c roomConfig
	v := tx.Bucket(bucketRooms).Get(name)
	if v == nil || json.Unmarshal(v, &c) != nil {
		return c, false
	}
	return c, true
}

// eraseAffiliations removes user (a bare JID) from the affiliations of
// every room the index names, and the user's index bucket. Rooms the user
// owns are deleted by the caller.
func eraseAffiliations(tx *bolt.Tx, user string) error {
	idx, err := tx.CreateBucketIfNotExists(bucketRoomAffiliations)
	if err != nil {
		return err
	}
	ub := idx.Bucket([]byte(user))
	if ub == nil {
		return nil
	}
	err = ub.ForEach(func(k, _ []byte) error {
		c, ok := storedRoom(tx, k)
		if !ok || c.Affiliations[user] == "" {
			return nil
		}
		delete(c.Affiliations, user)
		v, err := json.Marshal(c)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketRooms).Put(k, v)
	})
	if err != nil {
		return err
	}
	if err := idx.DeleteBucket([]byte(user)); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
		return err
	}
	return nil
}

// roomAffiliation is one entry of a user's export: a room that names the
// user as admin, member or outcast.
type roomAffiliation struct {
	Room        string `xml:"room,attr"`
	Affiliation string `xml:"affiliation,attr"`
}

// affiliationsOf lists the rooms that name user (a bare JID), in room
// order, read through the index.
func (st *serverStore) affiliationsOf(user string) ([]roomAffiliation, error) {
	var out []roomAffiliation
	err := st.db.View(func(tx *bolt.Tx) error {
		idx := tx.Bucket(bucketRoomAffiliations)
		if idx == nil || idx.Bucket([]byte(user)) == nil {
			return nil
		}
		return idx.Bucket([]byte(user)).ForEach(func(k, v []byte) error {
			if c, ok := storedRoom(tx, k); ok && c.Affiliations[user] == string(v) {
				out = append(out, roomAffiliation{Room: string(k), Affiliation: string(v)})
			}
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Room < out[j].Room })
	return out, err
}
