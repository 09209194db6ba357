package mam_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"chatbx.eu/privacy/mam"
	"chatbx.eu/privacy/mam/mamtest"
	bolt "go.etcd.io/bbolt"
	"mellium.im/xmpp/jid"
)

var (
	ctx     = context.Background()
	romeo   = jid.MustParse("romeo@example.org/orchard")
	juliet  = jid.MustParse("juliet@example.org/balcony")
	mallory = jid.MustParse("mallory@example.net/evil")
	epoch   = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
)

// clock is an injected clock that advances one second per call.
func clock() func() time.Time {
	t := epoch
	return func() time.Time {
		t = t.Add(time.Second)
		return t
	}
}

func setPrefs(t testing.TB, s mam.Store, owner jid.JID, p mam.Prefs) {
	t.Helper()
	if err := s.SetPrefs(ctx, owner.Bare(), p); err != nil {
		t.Fatal(err)
	}
}

// archived returns every message of the archive.
func archived(t testing.TB, s mam.Store, owner jid.JID) []mam.Message {
	t.Helper()
	p, err := s.Query(ctx, owner.Bare(), mam.Query{Max: 250, IncludeGroupchat: true})
	if err != nil {
		t.Fatal(err)
	}
	return p.Messages
}

// elem is a parsed element: name, attributes, children and text.
type elem struct {
	Name     xml.Name
	Attr     map[string]string
	Children []*elem
	Text     string
}

func (e *elem) child(space, local string) *elem {
	for _, c := range e.Children {
		if c.Name.Space == space && c.Name.Local == local {
			return c
		}
	}
	return nil
}

func (e *elem) all(space, local string) []*elem {
	var v []*elem
	for _, c := range e.Children {
		if c.Name.Space == space && c.Name.Local == local {
			v = append(v, c)
		}
	}
	return v
}

// parse parses well-formed XML into elements (top-level siblings allowed),
// failing the test on malformed input.
func parse(t testing.TB, b []byte) []*elem {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	var roots []*elem
	var stack []*elem
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("malformed XML %q: %v", b, err)
		}
		switch tt := tok.(type) {
		case xml.StartElement:
			e := &elem{Name: tt.Name, Attr: map[string]string{}}
			for _, a := range tt.Attr {
				if a.Name.Space == "xmlns" || a.Name.Local == "xmlns" {
					continue
				}
				e.Attr[a.Name.Local] = a.Value
			}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.Children = append(p.Children, e)
			} else {
				roots = append(roots, e)
			}
			stack = append(stack, e)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].Text += string(tt)
			}
		}
	}
	if len(stack) != 0 {
		t.Fatalf("unclosed XML %q", b)
	}
	return roots
}

func parseOne(t testing.TB, b []byte) *elem {
	t.Helper()
	roots := parse(t, b)
	if len(roots) != 1 {
		t.Fatalf("want one element, got %d in %q", len(roots), b)
	}
	return roots[0]
}

// failStore fails every Append.
type failStore struct{ mam.Store }

func (failStore) Append(context.Context, mam.Message) (mam.Message, error) {
	return mam.Message{}, errors.New("disk on fire")
}

func newStore() *mamtest.MemStore { return mamtest.NewMemStore() }

// forEachStore runs a test against the in-memory store and the bbolt store:
// the Archiver and Handler must behave the same over every Store.
func forEachStore(t *testing.T, test func(t *testing.T, newStore func() mam.Store)) {
	t.Run("mem", func(t *testing.T) {
		test(t, func() mam.Store { return mamtest.NewMemStore() })
	})
	t.Run("bolt", func(t *testing.T) {
		test(t, func() mam.Store {
			db, err := bolt.Open(filepath.Join(t.TempDir(), "mam.db"), 0o600, &bolt.Options{Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			db.NoSync = true // tests need no durability
			t.Cleanup(func() { db.Close() })
			s, err := mam.NewBoltStore(db, mam.BoltConfig{})
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
	})
}
