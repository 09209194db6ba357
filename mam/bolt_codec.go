package mam

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"time"

	"mellium.im/xmpp/jid"
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

// record is the value of a message key:
//
//	version (1) | flags (1) | id (16) | uvarint len(with) | with | stanza
func encodeRecord(flags byte, id []byte, with string, stanza []byte) []byte {
	b := make([]byte, 0, 2+rawIDLen+binary.MaxVarintLen32+len(with)+len(stanza))
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
	return rawRecord{flags: v[1], id: v[2 : 2+rawIDLen], with: v[ws:we], stanza: v[we:]}, nil
}

// recordLayout reports whether v is a record and where its parts are: the
// flags at v[1], the id at v[2:2+rawIDLen], the peer at v[ws:we] and the
// stanza at v[we:]. (The page fill uses it rather than decodeRecord, whose
// result is too large to travel in registers.)
func recordLayout(v []byte) (ws, we int, ok bool) {
	if len(v) < 2+rawIDLen+1 || v[0] != recordVersion {
		return 0, 0, false
	}
	n, l := binary.Uvarint(v[2+rawIDLen:])
	if l <= 0 || n > uint64(len(v)-2-rawIDLen-l) {
		return 0, 0, false
	}
	ws = 2 + rawIDLen + l
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
