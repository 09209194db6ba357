package mam

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	bolt "go.etcd.io/bbolt"
	"mellium.im/xmpp/jid"
)

// storedPrefs is the JSON value of the mam.prefs bucket.
type storedPrefs struct {
	Default string   `json:"d"`
	Always  []string `json:"a,omitempty"`
	Never   []string `json:"n,omitempty"`
}

func validDefault(d Default) bool {
	switch d {
	case "", DefaultNever, DefaultAlways, DefaultRoster:
		return true
	}
	return false
}

func jidStrings(js []jid.JID) []string {
	out := make([]string, len(js))
	for i, j := range js {
		out[i] = j.String()
	}
	return out
}

func parseJIDs(ss []string) ([]jid.JID, error) {
	if len(ss) == 0 {
		return nil, nil
	}
	out := make([]jid.JID, len(ss))
	for i, s := range ss {
		j, err := jid.Parse(s)
		if err != nil {
			return nil, errCorruptRecord
		}
		out[i] = j
	}
	return out, nil
}

func boltPrefs(tx *bolt.Tx, owner []byte) (Prefs, error) {
	v := tx.Bucket(bucketPrefs).Get(owner)
	if v == nil {
		return Prefs{}, nil
	}
	var sp storedPrefs
	if err := json.Unmarshal(v, &sp); err != nil || !validDefault(Default(sp.Default)) {
		return Prefs{}, errCorruptRecord
	}
	p := Prefs{Default: Default(sp.Default)}
	var err error
	if p.Always, err = parseJIDs(sp.Always); err != nil {
		return Prefs{}, err
	}
	if p.Never, err = parseJIDs(sp.Never); err != nil {
		return Prefs{}, err
	}
	return p, nil
}

// Prefs implements Store.
func (s *BoltStore) Prefs(ctx context.Context, owner jid.JID) (Prefs, error) {
	if err := ctx.Err(); err != nil {
		return Prefs{}, err
	}
	key := bareBytes(owner)
	p, ok, gen := s.prefs.get(key)
	if ok {
		return p, nil
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		p, err = boltPrefs(tx, key)
		return err
	})
	if err != nil {
		return Prefs{}, boltErr(err)
	}
	s.prefs.put(key, p, gen)
	return p, nil
}

// SetPrefs implements Store. An unknown default is an error wrapping
// ErrBadRequest.
func (s *BoltStore) SetPrefs(ctx context.Context, owner jid.JID, p Prefs) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if zeroJID(owner) {
		return fmt.Errorf("mam: prefs without owner: %w", ErrBadRequest)
	}
	if !validDefault(p.Default) {
		return fmt.Errorf("mam: unknown default: %w", ErrBadRequest)
	}
	v, err := json.Marshal(storedPrefs{Default: string(p.Default), Always: jidStrings(p.Always), Never: jidStrings(p.Never)})
	if err != nil {
		return fmt.Errorf("mam: encode prefs: %w", err)
	}
	key := bareBytes(owner)
	err = s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPrefs).Put(key, v)
	})
	s.prefs.drop(key) // also after a failure: the next read sees the file
	return boltErr(err)
}

// exportChunk is how many messages Export reads per read transaction, so a
// slow writer does not hold one transaction open for a whole archive.
const exportChunk = 1000

// Export implements Store. It reads the archive in chunks of 1,000
// messages, one read transaction each, and writes it with WriteExport.
func (s *BoltStore) Export(ctx context.Context, user jid.JID, w io.Writer) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	u := bareBytes(user)
	archive := user.Bare()
	var p Prefs
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		p, err = boltPrefs(tx, u)
		return err
	})
	if err != nil {
		return boltErr(err)
	}
	return WriteExport(w, p, func(yield func(Message, error) bool) {
		var from []byte // the next key to read; nil: the start
		for {
			if err := ctx.Err(); err != nil {
				yield(Message{}, err)
				return
			}
			var chunk []Message
			err := s.db.View(func(tx *bolt.Tx) error {
				a := boltOpenArchive(tx, u)
				if a.root == nil {
					return nil
				}
				c := a.msgs.Cursor()
				k, v := c.First()
				if from != nil {
					k, v = c.Seek(from)
				}
				for ; k != nil && len(chunk) < exportChunk; k, v = c.Next() {
					rec, err := decodeRecord(v)
					if err != nil {
						return err
					}
					m, err := s.message(a, archive, k, rec)
					if err != nil {
						return err
					}
					chunk = append(chunk, m)
				}
				from = nil
				if k != nil {
					from = slices.Clone(k)
				}
				return nil
			})
			if err != nil {
				yield(Message{}, boltErr(err))
				return
			}
			for _, m := range chunk {
				if !yield(m, nil) {
					return
				}
			}
			if from == nil {
				return
			}
		}
	})
}
