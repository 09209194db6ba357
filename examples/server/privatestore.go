package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"mellium.im/xmpp/jid"
)

// privateStore keeps each user's XEP-0049 private XML in server.db: per
// user, per namespace, the serialized elements the client stored in it.
//
// It is an account Holder: Export writes the whole storage as one
// <query xmlns='jabber:iq:private'>, ExportFiles one file per namespace
// (private/<escaped namespace>.xml in the export zip), Erase deletes the
// user's bucket. Safe for concurrent use (bbolt transactions).
type privateStore struct {
	db *bolt.DB
}

var bucketPrivate = []byte("private") // user → (namespace → serialized elements)

// Per-user bounds of private XML storage. A namespace's elements are
// counted as serialized; the total counts namespaces and their elements.
const (
	maxPrivateNSBytes   = 64 << 10  // one namespace's elements
	maxPrivateBytes     = 256 << 10 // all of a user's private XML
	maxPrivateNamespace = 1024      // the length of a namespace name
)

// Errors of the private XML store; private.go maps them to stanza errors.
var (
	// errPrivateTooBig is returned when one namespace's elements exceed
	// maxPrivateNSBytes.
	errPrivateTooBig = errors.New("private XML of one namespace too big")
	// errPrivateFull is returned when a set would take the user's private
	// XML beyond maxPrivateBytes.
	errPrivateFull = errors.New("private XML storage full")
)

func newPrivateStore(db *bolt.DB) (*privateStore, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketPrivate)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("private store: %w", err)
	}
	return &privateStore{db: db}, nil
}

// get returns what user stored in namespace ns, nil if nothing.
func (st *privateStore) get(user, ns string) ([]byte, error) {
	var out []byte
	err := st.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketPrivate).Bucket([]byte(user)); b != nil {
			if v := b.Get([]byte(ns)); v != nil {
				out = append([]byte(nil), v...)
			}
		}
		return nil
	})
	return out, err
}

// set replaces the user's data in each namespace of docs, in one
// transaction: an empty value deletes the namespace. It fails with
// errPrivateTooBig or errPrivateFull, storing nothing.
func (st *privateStore) set(user string, docs map[string][]byte) error {
	for _, v := range docs {
		if len(v) > maxPrivateNSBytes {
			return errPrivateTooBig
		}
	}
	return st.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketPrivate).CreateBucketIfNotExists([]byte(user))
		if err != nil {
			return err
		}
		total := 0
		err = b.ForEach(func(k, v []byte) error {
			if _, replaced := docs[string(k)]; !replaced {
				total += len(k) + len(v)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for ns, v := range docs {
			if len(v) > 0 {
				total += len(ns) + len(v)
			}
		}
		if total > maxPrivateBytes {
			return errPrivateFull
		}
		for ns, v := range docs {
			if len(v) == 0 {
				err = b.Delete([]byte(ns))
			} else {
				err = b.Put([]byte(ns), v)
			}
			if err != nil {
				return err
			}
		}
		if k, _ := b.Cursor().First(); k == nil {
			return tx.Bucket(bucketPrivate).DeleteBucket([]byte(user))
		}
		return nil
	})
}

// each calls f for every namespace the user stored, in byte order.
func (st *privateStore) each(user string, f func(ns string, v []byte) error) error {
	return st.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPrivate).Bucket([]byte(user))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error { return f(string(k), v) })
	})
}

// Name implements the account Holder.
func (st *privateStore) Name() string { return "private" }

// Export writes all of the user's private XML as one
// <query xmlns='jabber:iq:private'> element.
func (st *privateStore) Export(_ context.Context, user jid.JID, w io.Writer) error {
	if _, err := io.WriteString(w, "<query xmlns='"+nsPrivate+"'>\n"); err != nil {
		return err
	}
	err := st.each(user.Localpart(), func(_ string, v []byte) error {
		_, err := fmt.Fprintf(w, "%s\n", v)
		return err
	})
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, "</query>\n")
	return err
}

// ExportFiles writes one file per namespace, <escaped namespace>.xml,
// holding the namespace's elements (account.FileExporter).
func (st *privateStore) ExportFiles(_ context.Context, user jid.JID, create func(string) (io.Writer, error)) error {
	return st.each(user.Localpart(), func(ns string, v []byte) error {
		w, err := create(privateFileName(ns) + ".xml")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", v)
		return err
	})
}

// Erase deletes all of the user's private XML; idempotent.
func (st *privateStore) Erase(_ context.Context, user jid.JID) error {
	return st.db.Update(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketPrivate).DeleteBucket([]byte(user.Localpart()))
		if errors.Is(err, berrors.ErrBucketNotFound) {
			return nil
		}
		return err
	})
}

// privateFileName turns a namespace into a file name (exportFileName).
func privateFileName(ns string) string { return exportFileName(ns) }
