package mam

import (
	"context"
	"errors"
	"fmt"
)

// Staged is a batch of messages whose archive ids are assigned and whose
// appends are queued for commit, as StageAll returns it. Its Results may
// be delivered at once; Done tells when the commit is over.
type Staged struct {
	// Results are index for index those ArchiveAll would return for the
	// batch: each message to deliver, stamped with the id its recipient's
	// archive stores it under once the commit is done. A message whose
	// append fails (Wait tells) keeps its Result, and its ids are then in
	// no archive.
	Results []Result

	b    *plannedBatch
	wait *commitWait
}

// commitWait is a batch of appends being committed: errs, index for index
// with the appends, is set before done is closed.
type commitWait struct {
	done chan struct{}
	errs []error
}

// stager is a Store that assigns archive ids before the commit: stageAll
// queues ms for commit in order and returns their ids at once, and the
// errors of those it could not queue (nil for the others).
type stager interface {
	stageAll(ctx context.Context, ms []Message) ([]string, []error, *commitWait)
}

// StageAll is ArchiveAll in two steps, for a server that delivers a
// message before its archive commit is synced: it plans every message,
// assigns the archive ids, queues the appends for commit in the order given
// and returns without waiting for the commit. Done is closed, and Wait
// returns, once every append is committed (synced, for a BoltStore) or has
// failed.
//
// A BoltStore assigns the ids in advance (random, as Append does). Other
// stores assign them only when they commit: StageAll then commits before
// it returns, as ArchiveAll does, and its Staged is already done.
//
// A message delivered from Results before Done may be lost from the
// archive if the process dies before the commit: a server acknowledges a
// message to its sender only after Done (the sender resends what was not
// acknowledged, which its recipient may then receive twice).
func (a *Archiver) StageAll(ctx context.Context, cs []Chat) *Staged {
	st, ok := a.store.(stager)
	if !ok {
		res, errs := a.ArchiveAll(ctx, cs)
		w := &commitWait{done: make(chan struct{})}
		close(w.done)
		return &Staged{Results: res, b: &plannedBatch{errs: errs}, wait: w}
	}
	b := a.planAll(ctx, cs)
	ids, serrs, w := st.stageAll(ctx, b.msgs)
	b.finish(ids, serrs)
	return &Staged{Results: b.res, b: b, wait: w}
}

// Done is closed when the batch's commit is over.
func (s *Staged) Done() <-chan struct{} { return s.wait.done }

// Wait waits for the commit and returns, index for index with the batch,
// the errors ArchiveAll would have returned: nil for a message committed
// (or not to be archived).
func (s *Staged) Wait() []error {
	<-s.wait.done
	errs := s.b.errs
	for k, err := range s.wait.errs {
		if err != nil {
			i := s.b.chat[k]
			errs[i] = errors.Join(errs[i], fmt.Errorf("mam: append: %w", err))
		}
	}
	s.wait.errs = nil // joined once
	return errs
}
