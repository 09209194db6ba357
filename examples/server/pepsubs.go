package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"mellium.im/xmpp/jid"
)

// Explicit PEP subscriptions (XEP-0060 § 6.1) are stored, so that they
// survive a restart: bucket "pep-subs" → subscriber's bare JID → key
// owner localpart NUL node NUL subscriber JID (as given, maybe full) →
// empty value. Grouped by subscriber, a user's own subscriptions are one
// bucket to export and delete; the subscriptions of others to a user's
// nodes are found through the in-memory copy (pepService.subs), which is
// loaded from this bucket at start and changed with it.
var bucketPEPSubs = []byte("pep-subs")

// pepSub is one stored subscription.
type pepSub struct {
	key pepNodeKey
	sub string // the subscriber's JID
}

func (s pepSub) bare() string {
	j, err := jid.Parse(s.sub)
	if err != nil {
		return s.sub
	}
	return j.Bare().String()
}

func (s pepSub) dbKey() []byte {
	return []byte(s.key.owner + "\x00" + s.key.node + "\x00" + s.sub)
}

// parsePEPSubKey reads a key of a subscriber's bucket.
func parsePEPSubKey(k []byte) (pepSub, bool) {
	parts := bytes.SplitN(k, []byte{0}, 3)
	if len(parts) != 3 {
		return pepSub{}, false
	}
	return pepSub{key: pepNodeKey{string(parts[0]), string(parts[1])}, sub: string(parts[2])}, true
}

// addSubscription stores s.
func (st *pepStore) addSubscription(s pepSub) error {
	return st.db.Update(func(tx *bolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(bucketPEPSubs)
		if err != nil {
			return err
		}
		b, err := root.CreateBucketIfNotExists([]byte(s.bare()))
		if err != nil {
			return err
		}
		return b.Put(s.dbKey(), nil)
	})
}

// removeSubscriptions deletes subs in one transaction, and the buckets of
// subscribers left with none.
func (st *pepStore) removeSubscriptions(subs []pepSub) error {
	if len(subs) == 0 {
		return nil
	}
	return st.db.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketPEPSubs)
		if root == nil {
			return nil
		}
		for _, s := range subs {
			b := root.Bucket([]byte(s.bare()))
			if b == nil {
				continue
			}
			if err := b.Delete(s.dbKey()); err != nil {
				return err
			}
			if k, _ := b.Cursor().First(); k == nil {
				if err := root.DeleteBucket([]byte(s.bare())); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// eraseSubscriber deletes every subscription of the user (a bare JID).
func (st *pepStore) eraseSubscriber(user string) error {
	return st.db.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketPEPSubs)
		if root == nil {
			return nil
		}
		err := root.DeleteBucket([]byte(user))
		if errors.Is(err, berrors.ErrBucketNotFound) {
			return nil
		}
		return err
	})
}

// subscriptions reads every stored subscription.
func (st *pepStore) subscriptions() ([]pepSub, error) {
	var out []pepSub
	err := st.db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketPEPSubs)
		if root == nil {
			return nil
		}
		return root.ForEachBucket(func(user []byte) error {
			return root.Bucket(user).ForEach(func(k, _ []byte) error {
				if s, ok := parsePEPSubKey(k); ok {
					out = append(out, s)
				}
				return nil
			})
		})
	})
	if err != nil {
		return nil, fmt.Errorf("pep subscriptions: %w", err)
	}
	return out, nil
}

// loadSubscriptions fills the in-memory subscriptions from the store.
func (p *pepService) loadSubscriptions() error {
	subs, err := p.store.subscriptions()
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range subs {
		if p.subs[s.key] == nil {
			p.subs[s.key] = make(map[string]bool)
		}
		if !p.subs[s.key][s.sub] {
			p.subs[s.key][s.sub] = true
			p.nsubs[s.bare()]++
		}
	}
	return nil
}

// subscriptionsOf reads the stored subscriptions of user (a bare JID).
func (st *pepStore) subscriptionsOf(user string) ([]pepSub, error) {
	var out []pepSub
	err := st.db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketPEPSubs)
		if root == nil || root.Bucket([]byte(user)) == nil {
			return nil
		}
		return root.Bucket([]byte(user)).ForEach(func(k, _ []byte) error {
			if s, ok := parsePEPSubKey(k); ok {
				out = append(out, s)
			}
			return nil
		})
	})
	return out, err
}

// pepSubscriptionsFile is the export file of the user's subscriptions to
// other accounts' nodes: exportFileName escapes '+', so no node's file
// has this name.
const pepSubscriptionsFile = "+subscriptions.xml"

// ExportFiles writes one file per node, <exportFileName(node)>.xml, and
// the user's subscriptions to others' nodes in pepSubscriptionsFile
// (account.FileExporter).
func (p *pepService) ExportFiles(_ context.Context, user jid.JID, create func(string) (io.Writer, error)) error {
	u := userOf(user)
	nodes, err := p.store.nodes(u)
	if err != nil {
		return fmt.Errorf("pep export: %w", err)
	}
	for _, n := range slices.Sorted(maps.Keys(nodes)) {
		w, err := create(exportFileName(n) + ".xml")
		if err != nil {
			return err
		}
		if err := p.store.exportNode(u, n, nodes[n], w); err != nil {
			return fmt.Errorf("pep export: %w", err)
		}
	}
	subs, err := p.store.subscriptionsOf(user.Bare().String())
	if err != nil {
		return fmt.Errorf("pep export: %w", err)
	}
	if len(subs) == 0 {
		return nil
	}
	w, err := create(pepSubscriptionsFile)
	if err != nil {
		return err
	}
	var lines []string
	for _, s := range subs {
		lines = append(lines, fmt.Sprintf("  <subscription owner='%s' node='%s' jid='%s'/>\n",
			attrEscape(s.key.owner+"@"+p.srv.cfg.Domain), attrEscape(s.key.node), attrEscape(s.sub)))
	}
	sort.Strings(lines)
	_, err = io.WriteString(w, "<subscriptions xmlns='urn:example:chatbx:pep'>\n"+strings.Join(lines, "")+"</subscriptions>\n")
	return err
}
