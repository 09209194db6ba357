package mam

import (
	"testing"
	"time"
)

// SetExpireHook sets a function called after each committed Expire
// transaction with the number of messages it deleted and its duration.
func SetExpireHook(s *BoltStore, f func(removed int, took time.Duration)) { s.expireTx = f }

// FuzzDecodeRecord guards that a damaged record gives an error, never a
// panic, and that a decoded record stays within its value.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(flagGroupchat, make([]byte, IDLen), "bob@example.org/x", []byte("<message/>")))
	f.Add([]byte{recordVersion, 0})
	f.Fuzz(func(t *testing.T, v []byte) {
		rec, err := decodeRecord(v)
		if err != nil {
			return
		}
		if len(rec.id) != IDLen || len(rec.with)+len(rec.stanza)+IDLen+2 > len(v) {
			t.Fatalf("decoded %+v from %d bytes", rec, len(v))
		}
		withEntry(v)
	})
}
