package mam

import (
	"bytes"
	"encoding/binary"
	"slices"

	bolt "go.etcd.io/bbolt"
)

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
