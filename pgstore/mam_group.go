package pgstore

import (
	"cmp"
	"context"
	"slices"

	"github.com/jackc/pgx/v5"
)

// maxGroup bounds the appends committed in one transaction.
const maxGroup = 256

// appendGrouped queues r for a group commit and waits for it. A caller
// whose ctx ends first gets ctx's error, though its message may still be
// stored.
func (s *MAMStore) appendGrouped(ctx context.Context, r *appendReq) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.done = make(chan struct{})
	limit := s.cfg.GroupCommit
	if limit == 0 {
		limit = 4
	}
	s.mu.Lock()
	s.queue = append(s.queue, r)
	if s.flushers < limit {
		s.flushers++
		go s.flush()
	}
	s.mu.Unlock()
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flush commits queued appends in groups until the queue is empty.
func (s *MAMStore) flush() {
	ctx := context.Background()
	for {
		s.mu.Lock()
		n := min(len(s.queue), maxGroup)
		if n == 0 {
			s.flushers--
			s.mu.Unlock()
			return
		}
		group := slices.Clone(s.queue[:n])
		s.queue = slices.Delete(s.queue, 0, n)
		s.mu.Unlock()
		if err := s.commitGroup(ctx, group); err != nil {
			for _, r := range group {
				s.appendOne(ctx, r)
			}
		}
		for _, r := range group {
			close(r.done)
		}
	}
}

// commitGroup stores the group in one transaction: one pgx batch, which
// PostgreSQL runs as one implicit transaction (a single Sync), so a group
// costs one round trip and one WAL flush, without BEGIN and COMMIT round
// trips. Archives are locked in sorted order, so concurrent groups (of
// this or another process) cannot deadlock on each other.
func (s *MAMStore) commitGroup(ctx context.Context, group []*appendReq) error {
	slices.SortStableFunc(group, func(a, b *appendReq) int {
		return cmp.Compare(a.args[0].(string), b.args[0].(string))
	})
	ts := make([]int64, len(group))
	var b pgx.Batch
	for _, r := range group {
		r.newID()
		b.Queue(appendSQL, r.args...)
	}
	br := s.pool.SendBatch(ctx, &b)
	for i := range group {
		if err := br.QueryRow().Scan(&ts[i]); err != nil {
			br.Close()
			return err
		}
	}
	if err := br.Close(); err != nil {
		return err
	}
	for i, r := range group {
		r.m.Time = fromNanos(ts[i])
	}
	return nil
}
