package mam

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// pending is a validated message ready to be written.
type pending struct {
	m        Message
	archive  []byte
	with     string
	bareWith []byte
	res      bool
	flags    byte
	real     []byte
	compact  bool
	id       []byte // assigned before the commit (stageAll); nil: put draws one
}

func (s *BoltStore) prepare(m Message) (*pending, error) {
	if zeroJID(m.Archive) {
		return nil, fmt.Errorf("mam: append without archive: %w", ErrBadRequest)
	}
	if len(m.Stanza) == 0 {
		return nil, fmt.Errorf("mam: append of an empty stanza: %w", ErrBadRequest)
	}
	if m.Time.IsZero() {
		m.Time = s.now()
	}
	m.Time = m.Time.UTC().Round(0)
	if m.Time.Before(minTime) || m.Time.After(maxTime) {
		return nil, fmt.Errorf("mam: message time out of range: %w", ErrBadRequest)
	}
	m.Archive = m.Archive.Bare()
	if !zeroJID(m.RealJID) {
		m.RealJID = m.RealJID.Bare()
	}
	m.Stanza = slices.Clone(m.Stanza)
	p := &pending{
		m:        m,
		archive:  []byte(m.Archive.String()),
		with:     m.With.String(),
		bareWith: bareBytes(m.With),
		res:      m.With.Resourcepart() != "",
		compact:  s.cfg.CompactWithIndex,
	}
	if m.Groupchat {
		p.flags |= flagGroupchat
		if !m.With.Bare().Equal(m.Archive) {
			p.flags |= flagExcluded
		}
	}
	if !zeroJID(m.RealJID) {
		p.flags |= flagRealJID
		p.real = []byte(m.RealJID.String())
	}
	return p, nil
}

// put writes p in tx and sets p.m.ID. It may run again in a new
// transaction if a batch fails.
func (p *pending) put(tx *bolt.Tx) error {
	ab, err := tx.Bucket(bucketArchives).CreateBucketIfNotExists(p.archive)
	if err != nil {
		return err
	}
	var bs [5]*bolt.Bucket
	for i, name := range [][]byte{subMsgs, subIDs, subWith, subCounts, subRealJIDs} {
		if bs[i], err = ab.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	msgs, ids, withs, counts, reals := bs[0], bs[1], bs[2], bs[3], bs[4]
	// Keys of m and w arrive in time order, so pages are filled before
	// they split (bbolt's default, 0.5, suits random inserts like ids).
	msgs.FillPercent, withs.FillPercent = 0.9, 0.9
	seq, err := ab.NextSequence()
	if err != nil {
		return err
	}
	key := make([]byte, keyLen)
	putKeyTime(key, p.m.Time)
	binary.BigEndian.PutUint64(key[8:], seq)
	id := p.id
	switch {
	case id != nil:
		if ids.Get(id) != nil {
			// 128 random bits drawn twice in one archive: the message
			// may be delivered under this id already, so fail the append
			// rather than store it under another.
			return errors.New("mam: archive id assigned in advance already taken")
		}
	default:
		id = make([]byte, rawIDLen)
		for {
			rand.Read(id)
			if ids.Get(id) == nil {
				break
			}
		}
	}
	rec := encodeRecord(p.flags, id, p.with, p.m.Stanza)
	if err := msgs.Put(key, rec); err != nil {
		return err
	}
	if err := ids.Put(id, key); err != nil {
		return err
	}
	// The with entry holds a copy of the record (a covering index: a with
	// page reads consecutive entries), or with CompactWithIndex only the
	// flags and the resource.
	wv := rec
	if p.compact {
		wv = append([]byte{withCompact | p.flags}, p.m.With.Resourcepart()...)
	}
	if err := withs.Put(withIndexKey(p.bareWith, key), wv); err != nil {
		return err
	}
	for _, ck := range boltCountKeys(p.with, p.res, p.bareWith) {
		if err := boltAddCount(counts, msgs, ck, 1, p.flags&flagExcluded != 0); err != nil {
			return err
		}
	}
	if p.real != nil {
		if err := reals.Put(key, slices.Clone(p.real)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketRealJID).Put(realIndexKey(p.real, p.archive, key), nil); err != nil {
			return err
		}
	}
	p.m.ID = idString(id)
	return nil
}

// maxGroup is the largest number of appends committed in one transaction.
const maxGroup = 1000

type commitReq struct {
	p    *pending
	done chan error
}

// groupCommit writes p in a write transaction shared with the appends that
// queued while the previous transaction committed. A lone append commits at
// once; under load, one fsync serves many appends. (bbolt's DB.Batch would
// add up to MaxBatchDelay, 10 ms by default, to every concurrent append.)
func (s *BoltStore) groupCommit(p *pending) error {
	return s.groupCommitAll([]*pending{p})[0]
}

// groupCommitAll is groupCommit for several appends, queued together and
// in order: they are committed in this order, in as few transactions as
// maxGroup allows. It returns each append's error.
func (s *BoltStore) groupCommitAll(ps []*pending) []error {
	if len(ps) == 0 {
		return nil
	}
	reqs, lead := s.enqueue(ps)
	if lead {
		s.drain()
	}
	errs := make([]error, len(ps))
	for i := range reqs {
		errs[i] = <-reqs[i].done
	}
	return errs
}

// enqueue queues ps, in order, for the next transactions; lead reports
// whether the caller must start drain (no goroutine is committing).
func (s *BoltStore) enqueue(ps []*pending) (reqs []commitReq, lead bool) {
	reqs = make([]commitReq, len(ps))
	s.gcMu.Lock()
	for i, p := range ps {
		reqs[i] = commitReq{p: p, done: make(chan error, 1)}
		s.gcQueue = append(s.gcQueue, &reqs[i])
	}
	lead = !s.gcRunning
	s.gcRunning = true
	s.gcMu.Unlock()
	return reqs, lead
}

// drain commits one group of queued appends and, if more arrived meanwhile,
// hands the next group to a new goroutine so that this caller returns.
func (s *BoltStore) drain() {
	s.gcMu.Lock()
	n := min(len(s.gcQueue), maxGroup)
	group := slices.Clone(s.gcQueue[:n])
	s.gcQueue = slices.Delete(s.gcQueue, 0, n)
	s.gcMu.Unlock()

	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, r := range group {
			if err := r.p.put(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && len(group) > 1 {
		// Commit each alone, so that one failure fails only its append.
		for _, r := range group {
			r.done <- s.db.Update(r.p.put)
		}
	} else {
		for _, r := range group {
			r.done <- err
		}
	}

	s.gcMu.Lock()
	more := len(s.gcQueue) > 0
	s.gcRunning = more
	s.gcMu.Unlock()
	if more {
		go s.drain()
	}
}

// Append implements Store. Concurrent appends are group-committed.
func (s *BoltStore) Append(ctx context.Context, m Message) (Message, error) {
	if err := ctx.Err(); err != nil {
		return Message{}, err
	}
	p, err := s.prepare(m)
	if err != nil {
		return Message{}, err
	}
	if err := s.groupCommit(p); err != nil {
		return Message{}, boltErr(err)
	}
	out := p.m
	out.Stanza = slices.Clone(p.m.Stanza)
	return out, nil
}

// appendAll appends ms in order, committed together (see groupCommitAll);
// results and errors are index for index those of Append.
// It is the Archiver's path (ArchiveAll), unexported so that the Store
// interface stays as it is.
func (s *BoltStore) appendAll(ctx context.Context, ms []Message) ([]Message, []error) {
	out := make([]Message, len(ms))
	ps, idx, errs := s.prepareAll(ctx, ms, false)
	for j, err := range s.groupCommitAll(ps) {
		i := idx[j]
		if err != nil {
			errs[i] = boltErr(err)
			continue
		}
		out[i] = ps[j].m // its Stanza is prepare's copy: nobody else holds it
	}
	return out, errs
}

// prepareAll prepares ms for the group committer: ps are the messages
// prepared, idx their indexes in ms, errs (index for index with ms) the
// errors of the others, or ctx's error for all. With drawIDs each prepared
// message gets its archive id now, as put would draw it.
func (s *BoltStore) prepareAll(ctx context.Context, ms []Message, drawIDs bool) (ps []*pending, idx []int, errs []error) {
	errs = make([]error, len(ms))
	if err := ctx.Err(); err != nil {
		for i := range errs {
			errs[i] = err
		}
		return nil, nil, errs
	}
	ps = make([]*pending, 0, len(ms))
	idx = make([]int, 0, len(ms))
	for i, m := range ms {
		p, err := s.prepare(m)
		if err != nil {
			errs[i] = err
			continue
		}
		if drawIDs {
			p.id = make([]byte, rawIDLen)
			rand.Read(p.id)
		}
		ps = append(ps, p)
		idx = append(idx, i)
	}
	return ps, idx, errs
}

// stageAll implements stager: each message gets its archive id now (drawn
// as put draws one) and is queued for the group committer in order; the
// commit runs on another goroutine. It is the Archiver's path (StageAll).
func (s *BoltStore) stageAll(ctx context.Context, ms []Message) ([]string, []error, *commitWait) {
	ids := make([]string, len(ms))
	w := &commitWait{done: make(chan struct{}), errs: make([]error, len(ms))}
	ps, idx, errs := s.prepareAll(ctx, ms, true)
	for j, p := range ps {
		ids[idx[j]] = idString(p.id)
	}
	if len(ps) == 0 {
		close(w.done)
		return ids, errs, w
	}
	reqs, lead := s.enqueue(ps)
	if lead {
		go s.drain()
	}
	go func() {
		for j := range reqs {
			if err := <-reqs[j].done; err != nil {
				w.errs[idx[j]] = boltErr(err)
			}
		}
		close(w.done)
	}()
	return ids, errs, w
}
