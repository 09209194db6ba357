package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"
	"mellium.im/xmpp/jid"
)

// vcardStore keeps each user's XEP-0054 vCard in server.db, serialized as
// the client set it, and the SHA-1 of its photo (XEP-0153) apart, so that
// presence broadcasts read 40 bytes, not the photo.
//
// It is an account Holder: Export writes the vCard (vcard.xml in the
// export zip), Erase deletes it. Safe for concurrent use.
type vcardStore struct {
	db *bolt.DB
}

var (
	bucketVCard      = []byte("vcard")       // user → serialized <vCard xmlns='vcard-temp'>
	bucketVCardPhoto = []byte("vcard-photo") // user → hex SHA-1 of the photo, if any
)

// maxVCardBytes bounds one user's vCard, serialized (a photo of about
// 90 KiB fits, base64-encoded).
const maxVCardBytes = 128 << 10

// errVCardTooBig is returned for a vCard over maxVCardBytes.
var errVCardTooBig = errors.New("vCard too big")

func newVCardStore(db *bolt.DB) (*vcardStore, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketVCard, bucketVCardPhoto} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("vCard store: %w", err)
	}
	return &vcardStore{db: db}, nil
}

// get returns the user's vCard, nil if none.
func (st *vcardStore) get(user string) ([]byte, error) {
	var out []byte
	err := st.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketVCard).Get([]byte(user)); v != nil {
			out = append([]byte(nil), v...)
		}
		return nil
	})
	return out, err
}

// photoHash returns the hex SHA-1 of the user's vCard photo, "" if none.
func (st *vcardStore) photoHash(user string) string {
	var h string
	_ = st.db.View(func(tx *bolt.Tx) error {
		h = string(tx.Bucket(bucketVCardPhoto).Get([]byte(user)))
		return nil
	})
	return h
}

// set stores the user's vCard and its photo hash (hash "" for none); a
// nil vCard deletes both. It fails with errVCardTooBig.
func (st *vcardStore) set(user string, vcard []byte, hash string) error {
	if len(vcard) > maxVCardBytes {
		return errVCardTooBig
	}
	return st.db.Update(func(tx *bolt.Tx) error {
		vb, pb := tx.Bucket(bucketVCard), tx.Bucket(bucketVCardPhoto)
		var err error
		if len(vcard) == 0 {
			err = vb.Delete([]byte(user))
		} else {
			err = vb.Put([]byte(user), vcard)
		}
		if err != nil {
			return err
		}
		if hash == "" || len(vcard) == 0 {
			return pb.Delete([]byte(user))
		}
		return pb.Put([]byte(user), []byte(hash))
	})
}

// Name implements the account Holder.
func (st *vcardStore) Name() string { return "vcard" }

// Export writes the user's vCard as set (an empty <vCard/> if none).
func (st *vcardStore) Export(_ context.Context, user jid.JID, w io.Writer) error {
	v, err := st.get(user.Localpart())
	if err != nil {
		return err
	}
	if v == nil {
		v = []byte("<vCard xmlns='" + nsVCard + "'/>")
	}
	_, err = fmt.Fprintf(w, "%s\n", v)
	return err
}

// Erase deletes the user's vCard and photo hash; idempotent.
func (st *vcardStore) Erase(_ context.Context, user jid.JID) error {
	return st.set(user.Localpart(), nil, "")
}
