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
		return fmt.Errorf("mam: erase without user: %w", ErrBadRequest)
	}
	u := bareBytes(user)
	defer s.prefs.drop(u)
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
	var from []byte // the archive to continue with; nil: the first
	for {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		var n int
		var done bool
		start := time.Now()
		err := s.db.Update(func(tx *bolt.Tx) error {
			var err error
			n, from, done, err = s.expireBatch(tx, limit, from)
			return err
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

// expireBatch deletes in tx up to BoltConfig.ExpireBatch messages with keys
// below limit (nil: every message), archive by archive from the archive
// from (nil: the first), and the archives it empties. It returns how many
// messages it deleted and the archive to continue with, or done when it
// went through the last one.
func (s *BoltStore) expireBatch(tx *bolt.Tx, limit, from []byte) (n int, next []byte, done bool, err error) {
	ac := tx.Bucket(bucketArchives).Cursor()
	k, v := ac.First()
	if from != nil {
		k, v = ac.Seek(from)
	}
	var emptied [][]byte
	for ; k != nil; k, v = ac.Next() {
		if v != nil {
			continue // not an archive bucket
		}
		archive := slices.Clone(k)
		m, empty, err := expireArchive(tx, archive, limit, s.cfg.ExpireBatch-n)
		if err != nil {
			return 0, nil, false, err
		}
		n += m
		if empty {
			emptied = append(emptied, archive)
		}
		if n == s.cfg.ExpireBatch {
			break // the archive may hold more: the next batch resumes there
		}
	}
	for _, archive := range emptied {
		if err := boltDeleteArchive(tx, archive); err != nil {
			return 0, nil, false, err
		}
	}
	if k == nil {
		return n, nil, true, nil
	}
	return n, slices.Clone(k), false, nil
}

// expireArchive deletes in tx at most batch of the archive's oldest messages
// with keys below limit (nil: every message), and reports whether the
// archive is empty afterwards.
func expireArchive(tx *bolt.Tx, archive, limit []byte, batch int) (n int, empty bool, err error) {
	a := boltOpenArchive(tx, archive)
	var keys [][]byte
	mc := a.msgs.Cursor()
	for mk, _ := mc.First(); mk != nil && len(keys) < batch; mk, _ = mc.Next() {
		if limit != nil && bytes.Compare(mk, limit) >= 0 {
			break
		}
		keys = append(keys, slices.Clone(mk))
	}
	deltas := countDeltas{}
	for _, key := range keys {
		if err := boltDeleteMessage(tx, a, archive, key, deltas); err != nil {
			return 0, false, err
		}
	}
	if err := deltas.apply(a.countsB(), a.msgs); err != nil {
		return 0, false, err
	}
	first, _ := a.msgs.Cursor().First()
	return len(keys), first == nil, nil
}
