package logredact

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Messages of the audit records written by the maintenance window, for
// monitoring that alerts when a window opens and for an auditor who looks
// for the windows in the logs.
const (
	AuditRevealStart = "logredact: maintenance window opened, IP addresses are logged in full"
	AuditRevealEnd   = "logredact: maintenance window closed, IP addresses are anonymized again"
)

// Reveal opens a maintenance window: for duration d from now, records pass
// with their IP addresses in full, each marked with the Options.RevealedKey
// attribute (true).
//
// The window closes by itself: the clock (Options.Now) is read on every
// record while a window is open, and the first record at or after the end
// is anonymized again. No timer is involved, so nothing can keep the window
// open by mistake; with the default clock the comparison uses Go's
// monotonic clock reading, so setting the system clock back does not
// stretch the window either. A duration longer than Options.MaxReveal (default 24 h) is
// refused with ErrRevealTooLong rather than shortened, so that the operator
// never believes in a window other than the real one; a non-positive
// duration or an empty reason yields ErrBadRequest. An IP address in the
// reason is anonymized in the audit records, which outlive the window.
//
// The start is logged at once as an audit record (level WARN, message
// AuditRevealStart, attributes reason, start, until) to the wrapped handler.
// The end (AuditRevealEnd, with reason, start, end) is logged when the window
// is found expired, that is just before the first record written after it,
// or by Conceal, whichever comes first; its time is the actual end of the
// window. Call Conceal when shutting down so that the end is written even if
// no record follows; should the process die first, the start record's "until"
// still bounds the window.
//
// Calling Reveal while a window is open closes that window (logging its end)
// and opens the new one.
func (h *Handler) Reveal(d time.Duration, reason string) error {
	s := h.st
	if d <= 0 || strings.TrimSpace(reason) == "" {
		return fmt.Errorf("%w: reveal needs a positive duration and a reason", ErrBadRequest)
	}
	if d > s.an.maxReveal {
		return fmt.Errorf("logredact: reveal for %v, at most %v: %w", d, s.an.maxReveal, ErrRevealTooLong)
	}
	// The reason outlives the window in the audit records: an address in it
	// is anonymized like any other.
	if val, ch := s.an.view().text(slog.StringValue(reason), reason); ch {
		reason = val.String()
	}
	ctx := context.Background()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.an.now()
	err := s.endLocked(ctx, now)
	until := now.Add(d)
	r := slog.NewRecord(now, slog.LevelWarn, AuditRevealStart, 0)
	r.AddAttrs(
		slog.String("reason", reason),
		slog.Time("start", now),
		slog.Time("until", until),
	)
	// The window opens only once its start is on record.
	if herr := s.base.Handle(ctx, r); herr != nil {
		return joinErr(err, fmt.Errorf("logredact: writing the reveal audit record: %w", herr))
	}
	s.window.Store(&window{start: now, until: until, reason: reason})
	return err
}

// Conceal closes the maintenance window now, if one is open, and writes the
// end record of a window that expired without being logged yet. It is safe
// to call at any time (and meant to be called at shutdown).
func (h *Handler) Conceal() error {
	s := h.st
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.endLocked(context.Background(), s.an.now())
}

// Revealing reports whether a maintenance window is open and until when.
func (h *Handler) Revealing() (until time.Time, open bool) {
	w := h.st.window.Load()
	if w == nil {
		return time.Time{}, false
	}
	return w.until, h.st.an.now().Before(w.until)
}

// closeExpired logs the end of a window found expired by a record.
func (s *shared) closeExpired(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.endLocked(ctx, s.an.now())
}

// endLocked ends the window at min(now, until), logging it, if one is open
// or expired but not yet logged. Called with s.mu held.
func (s *shared) endLocked(ctx context.Context, now time.Time) error {
	w := s.window.Load()
	if w == nil {
		return nil
	}
	// Anonymize from here on, whatever happens to the audit record.
	s.window.Store(nil)
	end := w.until
	if now.Before(end) {
		end = now
	}
	r := slog.NewRecord(end, slog.LevelWarn, AuditRevealEnd, 0)
	r.AddAttrs(
		slog.String("reason", w.reason),
		slog.Time("start", w.start),
		slog.Time("end", end),
	)
	if err := s.base.Handle(ctx, r); err != nil {
		return fmt.Errorf("logredact: writing the reveal audit record: %w", err)
	}
	return nil
}
