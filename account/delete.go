package account

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"mellium.im/xmpp/jid"
)

// Delete deletes the account username and all of its data:
//
//  1. the account is disabled at once (no login, name not available), in
//     the same transaction that writes an entry in the Store's journal;
//  2. every Holder erases the user's data, each failing Holder being
//     retried EraseAttempts times with a growing backoff, and the progress
//     recorded in the journal after each;
//  3. the account record is removed and a tombstone (a keyed HMAC of the
//     name's Skeleton, never the name) keeps the name, and every name that
//     looks like it, from being registered again for TombstoneTTL.
//
// If a Holder still fails, Delete returns an error wrapping
// ErrErasureIncomplete and every Holder's error; the account stays disabled
// and in the journal, and a later Delete of the same name or Resume
// finishes it. If the process dies during Delete, Resume finishes it.
//
// Delete returns ErrNotFound for a name without an account, which includes
// an account already deleted: calling Delete twice is safe. A Delete of an
// account whose deletion was interrupted continues it.
func (m *Manager) Delete(ctx context.Context, username string) error {
	name, err := m.Normalize(username)
	if err != nil {
		return ErrNotFound
	}
	unlock, err := m.lockErasure(ctx, name)
	if err != nil {
		return err
	}
	defer unlock()
	r, err := m.store.Get(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("account: delete: %w", err)
	}
	e := Erasure{Username: name, Started: m.cfg.Now()}
	if !r.Deleting {
		err = m.store.BeginErasure(ctx, e)
		switch {
		case errors.Is(err, ErrNotFound):
			return ErrNotFound // deleted meanwhile by another process
		case errors.Is(err, ErrExists):
			// started meanwhile by another process: continue it below
		case err != nil:
			return fmt.Errorf("account: delete: %w", err)
		default:
			m.log.LogAttrs(ctx, slog.LevelInfo, "account deletion started")
			return m.erase(ctx, e)
		}
	}
	// Deletion already started: continue from the journal's progress.
	list, err := m.store.Erasures(ctx)
	if err != nil {
		return fmt.Errorf("account: delete: %w", err)
	}
	for _, e := range list {
		if e.Username == name {
			return m.erase(ctx, e)
		}
	}
	return ErrNotFound // finished meanwhile
}

// Resume finishes every deletion recorded in the journal, typically once at
// start-up after a crash, and may be called again at any time (e.g.
// periodically, to retry Holders that failed). It returns the joined errors
// of the erasures that are still incomplete.
func (m *Manager) Resume(ctx context.Context) error {
	list, err := m.store.Erasures(ctx)
	if err != nil {
		return fmt.Errorf("account: resume: %w", err)
	}
	if len(list) > 0 {
		m.log.LogAttrs(ctx, slog.LevelInfo, "resuming account deletions", slog.Int("pending", len(list)))
	}
	var errs []error
	for _, e := range list {
		if err := m.resumeOne(ctx, e.Username); err != nil {
			errs = append(errs, err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

func (m *Manager) resumeOne(ctx context.Context, name string) error {
	unlock, err := m.lockErasure(ctx, name)
	if err != nil {
		return err
	}
	defer unlock()
	// Reload under the lock: a concurrent Delete may have progressed.
	list, err := m.store.Erasures(ctx)
	if err != nil {
		return fmt.Errorf("account: resume: %w", err)
	}
	for _, e := range list {
		if e.Username == name {
			return m.erase(ctx, e)
		}
	}
	return nil
}

// lockErasure serializes erasures of one name within this process.
func (m *Manager) lockErasure(ctx context.Context, name string) (func(), error) {
	m.mu.Lock()
	for {
		ch, busy := m.running[name]
		if !busy {
			break
		}
		m.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		m.mu.Lock()
	}
	ch := make(chan struct{})
	m.running[name] = ch
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		delete(m.running, name)
		close(ch)
		m.mu.Unlock()
	}, nil
}

// erase runs the Holders not yet done for e and finishes the erasure.
func (m *Manager) erase(ctx context.Context, e Erasure) error {
	user, err := m.userJID(e.Username)
	if err != nil {
		return fmt.Errorf("account: erase: %w", err)
	}
	var errs []error
	for _, h := range m.holders {
		if slices.Contains(e.Done, h.Name()) {
			continue
		}
		if err := m.eraseHolder(ctx, h, user); err != nil {
			m.log.LogAttrs(ctx, slog.LevelError, "holder failed to erase a deleted account's data; will retry on Resume",
				slog.String("holder", h.Name()), slog.String("error", err.Error()))
			errs = append(errs, fmt.Errorf("holder %q: %w", h.Name(), err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		e.Done = append(e.Done, h.Name())
		if err := m.store.UpdateErasure(ctx, e); err != nil {
			// Progress is an optimization: Holders are idempotent.
			m.log.LogAttrs(ctx, slog.LevelWarn, "recording erasure progress failed", slog.String("error", err.Error()))
		}
	}
	if len(errs) > 0 {
		e.Attempts++
		if err := m.store.UpdateErasure(context.WithoutCancel(ctx), e); err != nil {
			errs = append(errs, fmt.Errorf("recording progress: %w", err))
		}
		return fmt.Errorf("%w: %w", ErrErasureIncomplete, errors.Join(errs...))
	}
	// Keyed by skeleton: look-alikes of a deleted name stay reserved too.
	key, err := m.tombstoneKey(ctx, Skeleton(e.Username))
	if err != nil {
		return err
	}
	t := Tombstone{Key: key, Expires: m.cfg.Now().Add(m.cfg.TombstoneTTL)}
	if err := m.store.FinishErasure(ctx, e.Username, t); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("account: finishing erasure: %w", err)
	}
	m.log.LogAttrs(ctx, slog.LevelInfo, "account deleted", slog.Int("holders", len(m.holders)))
	return nil
}

// eraseHolder calls h.Erase up to EraseAttempts times.
func (m *Manager) eraseHolder(ctx context.Context, h Holder, user jid.JID) error {
	wait := m.cfg.EraseBackoff
	var err error
	for attempt := 1; ; attempt++ {
		if err = h.Erase(ctx, user); err == nil {
			return nil
		}
		if attempt >= m.cfg.EraseAttempts {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		}
		wait = min(2*wait, 30*time.Second)
	}
}
