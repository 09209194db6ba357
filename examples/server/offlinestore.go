package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"mellium.im/xmpp/jid"
)

// offlineStore keeps XEP-0160 offline messages in server.db: per user, in
// arrival order (key: the user bucket's 8-byte sequence), each value the
// 8-byte arrival time (Unix nanoseconds) followed by the message as it
// will be delivered (with its XEP-0203 delay).
//
// It is an account Holder (Export: one <offline> document, ExportFiles:
// offline/NNN.xml per message; Erase) and a retention Expirer: Expire
// walks each user's messages from the oldest. Safe for concurrent use.
type offlineStore struct {
	db *bolt.DB
}

var bucketOffline = []byte("offline") // user → (sequence → stamp | message)

// errOfflineFull is returned when a user's offline messages are at their
// count or byte limit.
var errOfflineFull = errors.New("offline message storage full")

// errOfflineRefused is returned when the accept check of put refuses the
// user (no account, or its deletion has begun).
var errOfflineRefused = errors.New("offline message refused")

// offlineMessage is one stored message.
type offlineMessage struct {
	key []byte
	at  time.Time
	xml []byte
}

func newOfflineStore(db *bolt.DB) (*offlineStore, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketOffline)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("offline store: %w", err)
	}
	return &offlineStore{db: db}, nil
}

// put appends msg for user, stored at at. It fails with errOfflineFull
// when the user has maxN messages or the new one would take them over
// maxBytes, and with errOfflineRefused when accept (called inside the
// write transaction, so an account's erasure, a write transaction too,
// runs wholly before or after it) returns false.
func (st *offlineStore) put(user string, at time.Time, msg []byte, maxN int, maxBytes int, accept func() bool) error {
	return st.db.Update(func(tx *bolt.Tx) error {
		if !accept() {
			return errOfflineRefused
		}
		b, err := tx.Bucket(bucketOffline).CreateBucketIfNotExists([]byte(user))
		if err != nil {
			return err
		}
		n, size := 0, len(msg)
		c := b.Cursor()
		for k, v := c.First(); k != nil && n < maxN && size <= maxBytes; k, v = c.Next() {
			n++
			size += len(v)
		}
		if n >= maxN || size > maxBytes {
			return errOfflineFull
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		v := make([]byte, 8, 8+len(msg))
		binary.BigEndian.PutUint64(v, uint64(at.UnixNano()))
		return b.Put(binary.BigEndian.AppendUint64(nil, seq), append(v, msg...))
	})
}

// list returns up to max of the user's oldest messages, in order.
func (st *offlineStore) list(user string, max int) ([]offlineMessage, error) {
	var out []offlineMessage
	err := st.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOffline).Bucket([]byte(user))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil && len(out) < max; k, v = c.Next() {
			if len(v) < 8 {
				continue
			}
			out = append(out, offlineMessage{
				key: append([]byte(nil), k...),
				at:  time.Unix(0, int64(binary.BigEndian.Uint64(v))),
				xml: append([]byte(nil), v[8:]...),
			})
		}
		return nil
	})
	return out, err
}

// remove deletes the user's messages with the given keys (the bucket too
// once empty).
func (st *offlineStore) remove(user string, keys [][]byte) error {
	return st.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOffline).Bucket([]byte(user))
		if b == nil {
			return nil
		}
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return dropEmptyUserBucket(tx.Bucket(bucketOffline), b, []byte(user))
	})
}

// dropEmptyUserBucket deletes the user bucket b of parent when it holds nothing.
func dropEmptyUserBucket(parent, b *bolt.Bucket, name []byte) error {
	if k, _ := b.Cursor().First(); k == nil {
		return parent.DeleteBucket(name)
	}
	return nil
}

// Expire deletes every message stored before before, walking each user's
// messages from the oldest, and reports how many (retention.Expirer).
func (st *offlineStore) Expire(ctx context.Context, before time.Time) (int, error) {
	removed := 0
	err := st.db.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketOffline)
		var users [][]byte
		err := root.ForEachBucket(func(k []byte) error {
			users = append(users, append([]byte(nil), k...))
			return nil
		})
		if err != nil {
			return err
		}
		for _, u := range users {
			if err := ctx.Err(); err != nil {
				return err
			}
			b := root.Bucket(u)
			c := b.Cursor()
			for k, v := c.First(); k != nil; k, v = c.First() {
				if len(v) >= 8 && !time.Unix(0, int64(binary.BigEndian.Uint64(v))).Before(before) {
					break
				}
				if err := c.Delete(); err != nil {
					return err
				}
				removed++
			}
			if err := dropEmptyUserBucket(root, b, u); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("offline store: expire: %w", err)
	}
	return removed, nil
}

// Name implements the account Holder.
func (st *offlineStore) Name() string { return "offline" }

// Export writes the user's offline messages, oldest first, inside
// <offline xmlns='urn:example:chatbx:offline'>.
func (st *offlineStore) Export(_ context.Context, user jid.JID, w io.Writer) error {
	msgs, err := st.list(user.Localpart(), int(^uint(0)>>1))
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, "<offline xmlns='urn:example:chatbx:offline'>\n"); err != nil {
		return err
	}
	for _, m := range msgs {
		if _, err := fmt.Fprintf(w, "%s\n", m.xml); err != nil {
			return err
		}
	}
	_, err = io.WriteString(w, "</offline>\n")
	return err
}

// ExportFiles writes one file per message, 001.xml, 002.xml… oldest
// first (account.FileExporter).
func (st *offlineStore) ExportFiles(_ context.Context, user jid.JID, create func(string) (io.Writer, error)) error {
	msgs, err := st.list(user.Localpart(), int(^uint(0)>>1))
	if err != nil {
		return err
	}
	for i, m := range msgs {
		w, err := create(fmt.Sprintf("%03d.xml", i+1))
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "%s\n", m.xml); err != nil {
			return err
		}
	}
	return nil
}

// Erase deletes all of the user's offline messages; idempotent.
func (st *offlineStore) Erase(_ context.Context, user jid.JID) error {
	return st.db.Update(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketOffline).DeleteBucket([]byte(user.Localpart()))
		if errors.Is(err, berrors.ErrBucketNotFound) {
			return nil
		}
		return err
	})
}
