package mamtest

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"
	"time"

	"chatbx.eu/privacy/mam"
	"mellium.im/xmpp/jid"
)

// defaultMax is the page size of a Query with Max 0.
const defaultMax = 50

// MemStore is a simple in-memory mam.Store, the reference implementation
// of the contract that TestStore checks. It is meant for tests and small
// deployments; its queries scan the whole archive.
//
// Configure its fields before first use. A MemStore is safe for
// concurrent use.
type MemStore struct {
	// Now is the clock used to stamp messages appended with a zero Time;
	// nil means time.Now.
	Now func() time.Time

	// EraseGroupMessages makes Erase also delete the user's own messages
	// in room archives (those whose RealJID is the user), not only strip
	// the real JID from them.
	EraseGroupMessages bool

	mu       sync.Mutex
	seq      uint64
	archives map[string][]entry
	prefs    map[string]mam.Prefs
}

type entry struct {
	m   mam.Message
	seq uint64 // append order, breaks ties between equal times
}

// NewMemStore returns an empty in-memory Store.
func NewMemStore() *MemStore {
	return &MemStore{}
}

var _ mam.Store = (*MemStore)(nil)

func (s *MemStore) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func less(a, b entry) bool {
	if !a.m.Time.Equal(b.m.Time) {
		return a.m.Time.Before(b.m.Time)
	}
	return a.seq < b.seq
}

func cloneMessage(m mam.Message) mam.Message {
	m.Stanza = slices.Clone(m.Stanza)
	return m
}

// Append implements mam.Store.
func (s *MemStore) Append(ctx context.Context, m mam.Message) (mam.Message, error) {
	if err := ctx.Err(); err != nil {
		return mam.Message{}, err
	}
	if m.Archive.Equal(jid.JID{}) {
		return mam.Message{}, fmt.Errorf("mamtest: append without archive: %w", mam.ErrBadRequest)
	}
	if len(m.Stanza) == 0 {
		return mam.Message{}, fmt.Errorf("mamtest: append of an empty stanza: %w", mam.ErrBadRequest)
	}
	m = cloneMessage(m)
	m.Archive = m.Archive.Bare()
	if !m.RealJID.Equal(jid.JID{}) {
		m.RealJID = m.RealJID.Bare()
	}
	if m.Time.IsZero() {
		m.Time = s.now()
	}
	m.Time = m.Time.UTC().Round(0)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.archives == nil {
		s.archives = make(map[string][]entry)
	}
	key := m.Archive.String()
	list := s.archives[key]
	for {
		m.ID = mam.NewID()
		if !slices.ContainsFunc(list, func(e entry) bool { return e.m.ID == m.ID }) {
			break
		}
	}
	s.seq++
	e := entry{m: m, seq: s.seq}
	i := sort.Search(len(list), func(i int) bool { return less(e, list[i]) })
	s.archives[key] = slices.Insert(list, i, e)
	return cloneMessage(m), nil
}

// Query implements mam.Store.
func (s *MemStore) Query(ctx context.Context, archive jid.JID, q mam.Query) (mam.Page, error) {
	if err := ctx.Err(); err != nil {
		return mam.Page{}, err
	}
	if archive.Equal(jid.JID{}) {
		return mam.Page{}, fmt.Errorf("mamtest: query without archive: %w", mam.ErrBadRequest)
	}
	if q.Max < 0 {
		return mam.Page{}, fmt.Errorf("mamtest: negative page size: %w", mam.ErrBadRequest)
	}
	size := q.Max
	if size == 0 {
		size = defaultMax
	}
	archive = archive.Bare()

	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.archives[archive.String()]
	pos := func(id string) (int, error) {
		i := slices.IndexFunc(list, func(e entry) bool { return e.m.ID == id })
		if i < 0 {
			return 0, fmt.Errorf("mamtest: archive id: %w", mam.ErrNotFound)
		}
		return i, nil
	}

	lo, hi := 0, len(list)
	if q.AfterID != "" {
		i, err := pos(q.AfterID)
		if err != nil {
			return mam.Page{}, err
		}
		lo = i + 1
	}
	if q.BeforeID != "" {
		i, err := pos(q.BeforeID)
		if err != nil {
			return mam.Page{}, err
		}
		hi = i
	}
	var ids map[string]bool
	if len(q.IDs) > 0 {
		ids = make(map[string]bool, len(q.IDs))
		for _, id := range q.IDs {
			if _, err := pos(id); err != nil {
				return mam.Page{}, err
			}
			ids[id] = true
		}
	}
	var matches []int // indices into list
	for i := lo; i < hi; i++ {
		m := list[i].m
		switch {
		case ids != nil && !ids[m.ID]:
		case !q.With.Equal(jid.JID{}) && q.With.Resourcepart() == "" && !m.With.Bare().Equal(q.With):
		case q.With.Resourcepart() != "" && !m.With.Equal(q.With):
		case !q.Start.IsZero() && m.Time.Before(q.Start):
		case !q.End.IsZero() && m.Time.After(q.End):
		case m.Groupchat && !q.IncludeGroupchat && !m.With.Bare().Equal(archive):
		default:
			matches = append(matches, i)
		}
	}

	plo, phi := 0, len(matches) // the page is cut from matches[plo:phi]
	if q.After != "" {
		i, err := pos(q.After)
		if err != nil {
			return mam.Page{}, err
		}
		plo = sort.SearchInts(matches, i+1)
	}
	if q.Before != "" {
		i, err := pos(q.Before)
		if err != nil {
			return mam.Page{}, err
		}
		phi = sort.SearchInts(matches, i)
	}
	p := mam.Page{FirstIndex: -1, Count: len(matches), Complete: true}
	if phi <= plo {
		return p, nil
	}
	start, end := plo, phi
	if q.Before != "" || q.Last {
		start = max(plo, phi-size)
		p.Complete = start == plo
	} else {
		end = min(phi, plo+size)
		p.Complete = end == phi
	}
	p.FirstIndex = start
	for _, i := range matches[start:end] {
		p.Messages = append(p.Messages, cloneMessage(list[i].m))
	}
	return p, nil
}

// Metadata implements mam.Store.
func (s *MemStore) Metadata(ctx context.Context, archive jid.JID) (mam.Metadata, error) {
	if err := ctx.Err(); err != nil {
		return mam.Metadata{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.archives[archive.Bare().String()]
	if len(list) == 0 {
		return mam.Metadata{}, nil
	}
	first, last := list[0].m, list[len(list)-1].m
	return mam.Metadata{StartID: first.ID, StartTime: first.Time, EndID: last.ID, EndTime: last.Time}, nil
}

// Prefs implements mam.Store.
func (s *MemStore) Prefs(ctx context.Context, owner jid.JID) (mam.Prefs, error) {
	if err := ctx.Err(); err != nil {
		return mam.Prefs{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.prefs[owner.Bare().String()]
	p.Always = slices.Clone(p.Always)
	p.Never = slices.Clone(p.Never)
	return p, nil
}

// SetPrefs implements mam.Store.
func (s *MemStore) SetPrefs(ctx context.Context, owner jid.JID, p mam.Prefs) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if owner.Equal(jid.JID{}) {
		return fmt.Errorf("mamtest: prefs without owner: %w", mam.ErrBadRequest)
	}
	switch p.Default {
	case "", mam.DefaultNever, mam.DefaultAlways, mam.DefaultRoster:
	default:
		return fmt.Errorf("mamtest: unknown default: %w", mam.ErrBadRequest)
	}
	p.Always = slices.Clone(p.Always)
	p.Never = slices.Clone(p.Never)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.prefs == nil {
		s.prefs = make(map[string]mam.Prefs)
	}
	s.prefs[owner.Bare().String()] = p
	return nil
}

// Name implements mam.Store; it returns "mam".
func (s *MemStore) Name() string { return "mam" }

// Export implements mam.Store.
func (s *MemStore) Export(ctx context.Context, user jid.JID, w io.Writer) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := s.Prefs(ctx, user)
	if err != nil {
		return err
	}
	s.mu.Lock()
	list := s.archives[user.Bare().String()]
	msgs := make([]mam.Message, len(list))
	for i, e := range list {
		msgs[i] = cloneMessage(e.m)
	}
	s.mu.Unlock()
	return mam.WriteExport(w, p, func(yield func(mam.Message, error) bool) {
		for _, m := range msgs {
			if !yield(m, nil) {
				return
			}
		}
	})
}

// Erase implements mam.Store.
func (s *MemStore) Erase(ctx context.Context, user jid.JID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	user = user.Bare()
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.archives, user.String())
	delete(s.prefs, user.String())
	for k, list := range s.archives {
		kept := list[:0]
		for _, e := range list {
			if e.m.RealJID.Equal(user) {
				if s.EraseGroupMessages {
					continue
				}
				e.m.RealJID = jid.JID{}
			}
			kept = append(kept, e)
		}
		clear(list[len(kept):])
		s.archives[k] = kept
	}
	return nil
}

// Expire implements mam.Store.
func (s *MemStore) Expire(ctx context.Context, before time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	removed := 0
	for k, list := range s.archives {
		n := sort.Search(len(list), func(i int) bool { return !list[i].m.Time.Before(before) })
		if n == 0 {
			continue
		}
		removed += n
		if n == len(list) {
			delete(s.archives, k)
			continue
		}
		s.archives[k] = slices.Clone(list[n:])
	}
	return removed, nil
}
