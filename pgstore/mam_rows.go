package pgstore

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"chatbx.eu/privacy/mam"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"mellium.im/xmpp/jid"
)

// Decoding a page. Scanning each column through pgx's type map and parsing
// two JIDs per row took about half of a page's time (BENCHMARKS.md):
// readMessages decodes the rows' raw bytes itself, copies the page's
// stanzas into one allocation and its ids into one string, and looks the
// stored JIDs up in a short-lived cache.

// msgColumns are the columns readMessages decodes, in this order.
const msgColumns = `id, ts, with_bare, with_res, groupchat, real_jid, stanza`

const nMsgColumns = 7

// msgTypes are the types of msgColumns.
var msgTypes = [nMsgColumns]uint32{pgtype.ByteaOID, pgtype.Int8OID, pgtype.TextOID, pgtype.TextOID,
	pgtype.BoolOID, pgtype.TextOID, pgtype.ByteaOID}

// idLen is the length of an encoded archive id (16 bytes, unpadded
// base64url).
const idLen = 22

// errStoredValue is returned for a column value that cannot be decoded.
var errStoredValue = errors.New("undecodable stored value")

// readMessages decodes rows of msgColumns followed by len(extra) bigint
// columns, whose values in the last row it stores in extra, and closes
// rows. The columns may come in binary or text format (pgx's simple
// protocol mode uses text). rows holds up to about hint rows: the
// buffers are sized for that many from the first.
func (s *MAMStore) readMessages(rows pgx.Rows, archive jid.JID, hint int, extra ...*int64) ([]mam.Message, error) {
	defer rows.Close()
	hint = max(1, min(hint, 1024))
	fds := rows.FieldDescriptions()
	if len(fds) != nMsgColumns+len(extra) {
		return nil, fmt.Errorf("%d columns, want %d: %w", len(fds), nMsgColumns+len(extra), errStoredValue)
	}
	for i, fd := range fds {
		want := uint32(pgtype.Int8OID)
		if i < nMsgColumns {
			want = msgTypes[i]
		}
		if fd.DataTypeOID != want {
			return nil, fmt.Errorf("column %d of type %d, want %d: %w", i, fd.DataTypeOID, want, errStoredValue)
		}
	}
	bin := func(i int) bool { return fds[i].Format == pgx.BinaryFormatCode }
	var (
		msgs    []mam.Message
		stanzas []byte // the page's stanzas, one after the other
		ends    []int  // where each stanza ends in stanzas
		ids     []byte // the page's ids, encoded
		key     []byte // a JID being looked up
		scratch []byte // bytea in text format, decoded
		err     error
	)
	for rows.Next() {
		v := rows.RawValues()
		if len(v) != len(fds) {
			return nil, fmt.Errorf("row of %d columns: %w", len(v), errStoredValue)
		}
		if msgs == nil {
			msgs = make([]mam.Message, 0, hint)
			ends = make([]int, 0, hint)
			ids = make([]byte, 0, hint*idLen)
		}
		m := mam.Message{Archive: archive}
		var raw []byte
		if raw, scratch, err = byteaValue(v[0], bin(0), scratch[:0]); err != nil || len(raw) != 16 {
			return nil, fmt.Errorf("stored id: %w", errStoredValue)
		}
		ids = base64.RawURLEncoding.AppendEncode(ids, raw)
		ts, err := int8Value(v[1], bin(1))
		if err != nil {
			return nil, fmt.Errorf("stored time: %w", err)
		}
		m.Time = fromNanos(ts)
		if len(v[2]) > 0 {
			key = append(key[:0], v[2]...)
			if len(v[3]) > 0 {
				key = append(append(key, '/'), v[3]...)
			}
			if m.With, err = s.jids.parse(key); err != nil {
				return nil, fmt.Errorf("stored with: %w", err)
			}
		}
		if m.Groupchat, err = boolValue(v[4], bin(4)); err != nil {
			return nil, fmt.Errorf("stored groupchat: %w", err)
		}
		if v[5] != nil {
			if m.RealJID, err = s.jids.parse(v[5]); err != nil {
				return nil, fmt.Errorf("stored real JID: %w", err)
			}
		}
		if raw, scratch, err = byteaValue(v[6], bin(6), scratch[:0]); err != nil {
			return nil, fmt.Errorf("stored stanza: %w", err)
		}
		if stanzas == nil {
			// Room for hint stanzas a quarter larger than the first, so
			// that a page is seldom copied as it grows.
			stanzas = make([]byte, 0, len(raw)+(hint-1)*(len(raw)+len(raw)/4))
		}
		stanzas = append(stanzas, raw...)
		ends = append(ends, len(stanzas))
		for i, p := range extra {
			if *p, err = int8Value(v[nMsgColumns+i], bin(nMsgColumns+i)); err != nil {
				return nil, fmt.Errorf("column %d: %w", nMsgColumns+i, err)
			}
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	all := string(ids)
	start := 0
	for i := range msgs {
		msgs[i].ID = all[i*idLen : (i+1)*idLen]
		// Capped, so that an append to one stanza cannot overwrite the
		// next.
		msgs[i].Stanza = stanzas[start:ends[i]:ends[i]]
		start = ends[i]
	}
	return msgs, nil
}

// byteaValue returns the bytes of a bytea column value, decoding the text
// format into scratch.
func byteaValue(v []byte, binary bool, scratch []byte) (val, _ []byte, err error) {
	if binary {
		return v, scratch, nil
	}
	if len(v) < 2 || v[0] != '\\' || v[1] != 'x' {
		return nil, scratch, errStoredValue
	}
	n := hex.DecodedLen(len(v) - 2)
	scratch = append(scratch[:0], make([]byte, n)...)
	if _, err := hex.Decode(scratch, v[2:]); err != nil {
		return nil, scratch, errStoredValue
	}
	return scratch, scratch, nil
}

// int8Value decodes a bigint column value.
func int8Value(v []byte, bin bool) (int64, error) {
	if bin {
		if len(v) != 8 {
			return 0, errStoredValue
		}
		return int64(binary.BigEndian.Uint64(v)), nil
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, errStoredValue
	}
	return n, nil
}

// boolValue decodes a boolean column value.
func boolValue(v []byte, bin bool) (bool, error) {
	switch {
	case len(v) != 1:
	case bin:
		return v[0] != 0, nil
	case v[0] == 't':
		return true, nil
	case v[0] == 'f':
		return false, nil
	}
	return false, errStoredValue
}

// jidCacheMax bounds the JIDs a jidCache holds.
const jidCacheMax = 8192

// jidCacheTTL is how long a jidCache keeps what it learned: an account
// erased by another process sharing the database leaves its JIDs in this
// process's cache for at most this long.
const jidCacheTTL = time.Minute

// jidCache remembers stored JIDs it parsed (jid.Parse normalizes with
// PRECIS: about a microsecond, two per message of a room's page). It is
// emptied when full, by reset (Erase), and jidCacheTTL after its first
// entry since it was last emptied. The zero jidCache is ready to use.
type jidCache struct {
	mu    sync.RWMutex
	m     map[string]jid.JID
	timer *time.Timer // empties m; nil while m is empty
}

// parse returns the JID whose string form is b.
func (c *jidCache) parse(b []byte) (jid.JID, error) {
	c.mu.RLock()
	j, ok := c.m[string(b)]
	c.mu.RUnlock()
	if ok {
		return j, nil
	}
	j, err := jid.Parse(string(b))
	if err != nil {
		return jid.JID{}, errStoredValue
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= jidCacheMax {
		clear(c.m)
	}
	if c.m == nil {
		c.m = make(map[string]jid.JID)
	}
	if c.timer == nil {
		c.timer = time.AfterFunc(jidCacheTTL, c.reset)
	}
	c.m[string(b)] = j
	return j, nil
}

// reset empties the cache.
func (c *jidCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = nil
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
}
