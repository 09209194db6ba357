package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"mellium.im/xmpp/jid"
)

// pepStore keeps each user's PEP nodes (XEP-0163) and their items in
// server.db, bounded per user: at most pepMaxNodes nodes, pepMaxItems items
// and pepMaxBytes bytes of item ids and payloads in all. An item lives
// until its owner replaces, retracts or purges it, deletes its node, or it
// is pushed out by the node's max_items; the account's erasure takes them
// all (Erase).
//
// Layout: bucket "pep" → user localpart → node name → key "c" (nodeConfig
// JSON), bucket "i" (8-byte sequence → pepItem JSON, oldest first) and
// bucket "x" (item id → sequence). Bucket "pep-usage" → user localpart →
// pepUsage JSON, kept in the same transaction as every change.
type pepStore struct {
	db *bolt.DB
	// Limits; zero means the default (pepMaxNodes…). Tests lower them.
	maxNodes, maxItems, maxBytes int
}

var (
	bucketPEP      = []byte("pep")
	bucketPEPUsage = []byte("pep-usage")
	pepKeyConfig   = []byte("c")
	pepKeyItems    = []byte("i")
	pepKeyIDs      = []byte("x")
)

// Per-user PEP limits and per-node bounds. 4 MiB leaves room for an
// avatar (XEP-0084 data, base64) next to OMEMO bundles, bookmarks and the
// rest; max_items "max" means pepMaxItemsPerNode.
const (
	pepMaxNodes        = 100
	pepMaxItems        = 2000
	pepMaxBytes        = 4 << 20
	pepMaxItemsPerNode = 1000
	pepMaxNodeName     = 1024
	pepMaxItemID       = 256
)

// Errors of the PEP store; the handler maps them to stanza errors.
var (
	// errPEPNodeNotFound is returned for a node that does not exist.
	errPEPNodeNotFound = errors.New("pep: node not found")
	// errPEPItemNotFound is returned for an item id the node does not hold.
	errPEPItemNotFound = errors.New("pep: item not found")
	// errPEPQuota is returned when a change would pass a per-user limit.
	errPEPQuota = errors.New("pep: storage limit reached")
	// errPEPPrecondition is returned when publish-options do not match the
	// configuration of an existing node (XEP-0060 § 7.1.5).
	errPEPPrecondition = errors.New("pep: publish-options do not match the node configuration")
	// errPEPBadName is returned for a node name or item id out of bounds.
	errPEPBadName = errors.New("pep: node name or item id not acceptable")
)

// Access models (XEP-0060 § 4.5) this server supports.
const (
	accessOpen      = "open"
	accessPresence  = "presence"
	accessRoster    = "roster"
	accessWhitelist = "whitelist"
)

// send_last_published_item values (XEP-0060 § 16.4.3).
const (
	sendLastNever          = "never"
	sendLastOnSub          = "on_sub"
	sendLastOnSubPresence  = "on_sub_and_presence"
	defaultPEPMaxItems     = 1
	defaultPEPAccessModel  = accessPresence // XEP-0163 § 4.1
	defaultPEPSendLastItem = sendLastOnSubPresence
)

// nodeConfig is the configuration of one node.
type nodeConfig struct {
	Access   string `json:"access"`
	Persist  bool   `json:"persist"`
	MaxItems int    `json:"max_items"`
	SendLast string `json:"send_last"`
}

// defaultNodeConfig is a new node's configuration before publish-options:
// presence access (XEP-0163 § 4.1), items persisted, one item kept.
func defaultNodeConfig() nodeConfig {
	return nodeConfig{Access: defaultPEPAccessModel, Persist: true, MaxItems: defaultPEPMaxItems, SendLast: defaultPEPSendLastItem}
}

// pepItem is one published item: its id, when it was published and its
// payload (one serialized XML element).
type pepItem struct {
	ID        string    `json:"id"`
	Published time.Time `json:"published"`
	XML       []byte    `json:"xml"`
}

func (it pepItem) size() int { return len(it.ID) + len(it.XML) }

type pepUsage struct {
	Nodes int `json:"nodes"`
	Items int `json:"items"`
	Bytes int `json:"bytes"`
}

func newPEPStore(db *bolt.DB) (*pepStore, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketPEP, bucketPEPUsage} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pep store: %w", err)
	}
	return &pepStore{db: db}, nil
}

func (st *pepStore) limits() (nodes, items, bytes int) {
	return orDefault(st.maxNodes, pepMaxNodes), orDefault(st.maxItems, pepMaxItems), orDefault(st.maxBytes, pepMaxBytes)
}

func usageOf(tx *bolt.Tx, user string) pepUsage {
	var u pepUsage
	if v := tx.Bucket(bucketPEPUsage).Get([]byte(user)); v != nil {
		_ = json.Unmarshal(v, &u)
	}
	return u
}

func putUsage(tx *bolt.Tx, user string, u pepUsage) error {
	if u == (pepUsage{}) {
		return tx.Bucket(bucketPEPUsage).Delete([]byte(user))
	}
	v, err := json.Marshal(u)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketPEPUsage).Put([]byte(user), v)
}

// checkNames bounds a node name and an item id.
func checkNames(node, id string) error {
	if node == "" || len(node) > pepMaxNodeName || !xmlText(node) || len(id) > pepMaxItemID || !xmlText(id) {
		return errPEPBadName
	}
	return nil
}

// nodeBucket returns the user's node bucket, or nil.
func nodeBucket(tx *bolt.Tx, user, node string) *bolt.Bucket {
	ub := tx.Bucket(bucketPEP).Bucket([]byte(user))
	if ub == nil {
		return nil
	}
	return ub.Bucket([]byte(node))
}

func readConfig(nb *bolt.Bucket) nodeConfig {
	c := defaultNodeConfig()
	if v := nb.Get(pepKeyConfig); v != nil {
		_ = json.Unmarshal(v, &c)
	}
	return c
}

func putConfig(nb *bolt.Bucket, c nodeConfig) error {
	v, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return nb.Put(pepKeyConfig, v)
}

// publish stores it on the user's node, creating the node (default
// configuration changed by opts) if it does not exist. For an existing
// node, opts must match its configuration (errPEPPrecondition). An item
// with the id of a stored one replaces it; the node's oldest items beyond
// its max_items go. On a node that does not persist items nothing is
// stored. It returns the node's configuration and whether the node was
// created.
func (st *pepStore) publish(user, node string, opts pepOptions, it pepItem) (cfg nodeConfig, created bool, err error) {
	if err := checkNames(node, it.ID); err != nil {
		return cfg, false, err
	}
	maxNodes, maxItems, maxBytes := st.limits()
	err = st.db.Update(func(tx *bolt.Tx) error {
		ub, err := tx.Bucket(bucketPEP).CreateBucketIfNotExists([]byte(user))
		if err != nil {
			return err
		}
		u := usageOf(tx, user)
		nb := ub.Bucket([]byte(node))
		if nb == nil {
			if u.Nodes >= maxNodes {
				return errPEPQuota
			}
			if nb, err = ub.CreateBucket([]byte(node)); err != nil {
				return err
			}
			created = true
			u.Nodes++
			cfg = opts.apply(defaultNodeConfig())
			if err := putConfig(nb, cfg); err != nil {
				return err
			}
		} else {
			cfg = readConfig(nb)
			if !opts.matches(cfg) {
				return errPEPPrecondition
			}
		}
		if cfg.Persist {
			if err := addItem(nb, &u, it, cfg.MaxItems); err != nil {
				return err
			}
		}
		if u.Items > maxItems || u.Bytes > maxBytes {
			return errPEPQuota // the transaction is rolled back
		}
		return putUsage(tx, user, u)
	})
	return cfg, created, err
}

// addItem stores it as the node's newest item (replacing one with its id)
// and trims the node to max items, keeping u right.
func addItem(nb *bolt.Bucket, u *pepUsage, it pepItem, max int) error {
	items, err := nb.CreateBucketIfNotExists(pepKeyItems)
	if err != nil {
		return err
	}
	ids, err := nb.CreateBucketIfNotExists(pepKeyIDs)
	if err != nil {
		return err
	}
	if err := removeItem(items, ids, u, it.ID); err != nil && !errors.Is(err, errPEPItemNotFound) {
		return err
	}
	seq, err := items.NextSequence()
	if err != nil {
		return err
	}
	key := binary.BigEndian.AppendUint64(nil, seq)
	v, err := json.Marshal(it)
	if err != nil {
		return err
	}
	if err := items.Put(key, v); err != nil {
		return err
	}
	if err := ids.Put([]byte(it.ID), key); err != nil {
		return err
	}
	u.Items++
	u.Bytes += it.size()
	return trimItems(items, ids, u, max)
}

// trimItems deletes the oldest items beyond max.
func trimItems(items, ids *bolt.Bucket, u *pepUsage, max int) error {
	n := 0
	c := items.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	for k, v := c.First(); k != nil && n > max; k, v = c.First() {
		var it pepItem
		if err := json.Unmarshal(v, &it); err != nil {
			return err
		}
		if err := c.Delete(); err != nil {
			return err
		}
		if err := ids.Delete([]byte(it.ID)); err != nil {
			return err
		}
		u.Items--
		u.Bytes -= it.size()
		n--
	}
	return nil
}

// removeItem deletes the item id.
func removeItem(items, ids *bolt.Bucket, u *pepUsage, id string) error {
	key := ids.Get([]byte(id))
	if key == nil {
		return errPEPItemNotFound
	}
	key = append([]byte(nil), key...)
	var it pepItem
	if v := items.Get(key); v != nil {
		if err := json.Unmarshal(v, &it); err != nil {
			return err
		}
	}
	if err := items.Delete(key); err != nil {
		return err
	}
	if err := ids.Delete([]byte(id)); err != nil {
		return err
	}
	u.Items--
	u.Bytes -= it.size()
	return nil
}

// config returns the node's configuration (errPEPNodeNotFound).
func (st *pepStore) config(user, node string) (nodeConfig, error) {
	var c nodeConfig
	err := st.db.View(func(tx *bolt.Tx) error {
		nb := nodeBucket(tx, user, node)
		if nb == nil {
			return errPEPNodeNotFound
		}
		c = readConfig(nb)
		return nil
	})
	return c, err
}

// items returns the node's items, oldest first: those named by ids (in
// that order, unknown ids skipped), else the newest max (max ≤ 0: all).
func (st *pepStore) items(user, node string, ids []string, max int) ([]pepItem, error) {
	var out []pepItem
	err := st.db.View(func(tx *bolt.Tx) error {
		nb := nodeBucket(tx, user, node)
		if nb == nil {
			return errPEPNodeNotFound
		}
		items, idx := nb.Bucket(pepKeyItems), nb.Bucket(pepKeyIDs)
		if items == nil {
			return nil
		}
		decode := func(v []byte) error {
			var it pepItem
			if err := json.Unmarshal(v, &it); err != nil {
				return err
			}
			out = append(out, it)
			return nil
		}
		if len(ids) > 0 {
			for _, id := range ids {
				if k := idx.Get([]byte(id)); k != nil {
					if err := decode(items.Get(k)); err != nil {
						return err
					}
				}
			}
			return nil
		}
		c := items.Cursor()
		for k, v := c.Last(); k != nil && (max <= 0 || len(out) < max); k, v = c.Prev() {
			if err := decode(v); err != nil {
				return err
			}
		}
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
		return nil
	})
	return out, err
}

// pepLast is the newest item of one owner's node.
type pepLast struct {
	owner, node string
	cfg         nodeConfig
	item        pepItem
}

// lastItems returns, in one read transaction, the newest item of each of
// the nodes of each of the owners that has one and sends it on presence.
func (st *pepStore) lastItems(owners, nodes []string) ([]pepLast, error) {
	var out []pepLast
	err := st.db.View(func(tx *bolt.Tx) error {
		for _, o := range owners {
			for _, n := range nodes {
				nb := nodeBucket(tx, o, n)
				if nb == nil {
					continue
				}
				cfg := readConfig(nb)
				items := nb.Bucket(pepKeyItems)
				if cfg.SendLast != sendLastOnSubPresence || items == nil {
					continue
				}
				_, v := items.Cursor().Last()
				if v == nil {
					continue
				}
				var it pepItem
				if err := json.Unmarshal(v, &it); err != nil {
					return err
				}
				out = append(out, pepLast{owner: o, node: n, cfg: cfg, item: it})
			}
		}
		return nil
	})
	return out, err
}

// retract deletes the item id of the node (errPEPNodeNotFound,
// errPEPItemNotFound).
func (st *pepStore) retract(user, node, id string) error {
	return st.db.Update(func(tx *bolt.Tx) error {
		nb := nodeBucket(tx, user, node)
		if nb == nil {
			return errPEPNodeNotFound
		}
		items, ids := nb.Bucket(pepKeyItems), nb.Bucket(pepKeyIDs)
		if items == nil {
			return errPEPItemNotFound
		}
		u := usageOf(tx, user)
		if err := removeItem(items, ids, &u, id); err != nil {
			return err
		}
		return putUsage(tx, user, u)
	})
}

// purge deletes every item of the node.
func (st *pepStore) purge(user, node string) error {
	return st.db.Update(func(tx *bolt.Tx) error {
		nb := nodeBucket(tx, user, node)
		if nb == nil {
			return errPEPNodeNotFound
		}
		u := usageOf(tx, user)
		dropItems(nb, &u)
		for _, k := range [][]byte{pepKeyItems, pepKeyIDs} {
			if err := nb.DeleteBucket(k); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
				return err
			}
		}
		return putUsage(tx, user, u)
	})
}

// dropItems subtracts the node's items from u.
func dropItems(nb *bolt.Bucket, u *pepUsage) {
	items := nb.Bucket(pepKeyItems)
	if items == nil {
		return
	}
	_ = items.ForEach(func(_, v []byte) error {
		var it pepItem
		if json.Unmarshal(v, &it) == nil {
			u.Items--
			u.Bytes -= it.size()
		}
		return nil
	})
}

// deleteNode deletes the node with its items.
func (st *pepStore) deleteNode(user, node string) error {
	return st.db.Update(func(tx *bolt.Tx) error {
		nb := nodeBucket(tx, user, node)
		if nb == nil {
			return errPEPNodeNotFound
		}
		u := usageOf(tx, user)
		dropItems(nb, &u)
		u.Nodes--
		if err := tx.Bucket(bucketPEP).Bucket([]byte(user)).DeleteBucket([]byte(node)); err != nil {
			return err
		}
		return putUsage(tx, user, u)
	})
}

// configure replaces the node's configuration; items beyond a lower
// max_items go, and all of them when persist_items is turned off.
func (st *pepStore) configure(user, node string, c nodeConfig) error {
	return st.db.Update(func(tx *bolt.Tx) error {
		nb := nodeBucket(tx, user, node)
		if nb == nil {
			return errPEPNodeNotFound
		}
		u := usageOf(tx, user)
		if items, ids := nb.Bucket(pepKeyItems), nb.Bucket(pepKeyIDs); items != nil {
			max := c.MaxItems
			if !c.Persist {
				max = 0
			}
			if err := trimItems(items, ids, &u, max); err != nil {
				return err
			}
		}
		if err := putConfig(nb, c); err != nil {
			return err
		}
		return putUsage(tx, user, u)
	})
}

// nodes returns the names and configurations of the user's nodes.
func (st *pepStore) nodes(user string) (map[string]nodeConfig, error) {
	out := make(map[string]nodeConfig)
	err := st.db.View(func(tx *bolt.Tx) error {
		ub := tx.Bucket(bucketPEP).Bucket([]byte(user))
		if ub == nil {
			return nil
		}
		return ub.ForEach(func(k, v []byte) error {
			if v == nil { // a node bucket
				out[string(k)] = readConfig(ub.Bucket(k))
			}
			return nil
		})
	})
	return out, err
}

// usage returns what the user stores.
func (st *pepStore) usage(user string) pepUsage {
	var u pepUsage
	_ = st.db.View(func(tx *bolt.Tx) error {
		u = usageOf(tx, user)
		return nil
	})
	return u
}

// erase deletes every node of the user and the usage record; idempotent.
func (st *pepStore) erase(user string) error {
	return st.db.Update(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketPEP).DeleteBucket([]byte(user))
		if err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return err
		}
		return tx.Bucket(bucketPEPUsage).Delete([]byte(user))
	})
}

// export writes the user's nodes, their configuration and items as XML
// elements of the namespace urn:example:chatbx:pep: <node name='…'
// access_model='…' …><item id='…' published='…'>payload</item></node>.
func (st *pepStore) export(_ context.Context, user string, w io.Writer) error {
	nodes, err := st.nodes(user)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(nodes))
	for n := range nodes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := st.exportNode(user, n, nodes[n], w); err != nil {
			return err
		}
	}
	return nil
}

// exportNode writes one node of the user, c its configuration, as a
// <node/> element.
func (st *pepStore) exportNode(user, n string, c nodeConfig, w io.Writer) error {
	if _, err := fmt.Fprintf(w, "  <node xmlns='urn:example:chatbx:pep' name='%s' access_model='%s' persist_items='%t' max_items='%d' send_last_published_item='%s'>\n",
		attrEscape(n), attrEscape(c.Access), c.Persist, c.MaxItems, attrEscape(c.SendLast)); err != nil {
		return err
	}
	items, err := st.items(user, n, nil, 0)
	if err != nil && !errors.Is(err, errPEPNodeNotFound) {
		return err
	}
	for _, it := range items {
		if _, err := fmt.Fprintf(w, "    <item id='%s' published='%s'>%s</item>\n",
			attrEscape(it.ID), it.Published.UTC().Format(time.RFC3339), it.XML); err != nil {
			return err
		}
	}
	_, err = io.WriteString(w, "  </node>\n")
	return err
}

// attrEscape escapes s for an XML attribute in single quotes.
func attrEscape(s string) string {
	var b []byte
	for _, r := range s {
		switch r {
		case '&':
			b = append(b, "&amp;"...)
		case '<':
			b = append(b, "&lt;"...)
		case '>':
			b = append(b, "&gt;"...)
		case '\'':
			b = append(b, "&apos;"...)
		case '"':
			b = append(b, "&quot;"...)
		case '\t', '\n', '\r':
			b = append(b, "&#"+strconv.Itoa(int(r))+";"...)
		default:
			b = append(b, string(r)...)
		}
	}
	return string(b)
}

// userOf is the store key of a local user.
func userOf(j jid.JID) string { return j.Localpart() }
