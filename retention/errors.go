package retention

import (
	"errors"

	"chatbx.eu/privacy/internal/boltwipe"
)

var (
	// ErrInvalidJob is returned by NewScheduler when a job has no name, a
	// duplicate name, no Expirer, or a negative duration.
	ErrInvalidJob = errors.New("retention: invalid job")

	// ErrRunning is returned by Run when the scheduler is already running.
	ErrRunning = errors.New("retention: scheduler already running")

	// ErrUnknownJob is returned by RunJob when no job has the given name.
	ErrUnknownJob = errors.New("retention: no such job")

	// ErrPanic is returned (wrapped, in a Report) when an Expirer panicked;
	// the scheduler recovers so that one broken job cannot stop the others.
	ErrPanic = errors.New("retention: expirer panicked")
)

var (
	// ErrNotEnforced is returned by PrivacyReport.Check when no configured
	// job enforces the named lifetime.
	ErrNotEnforced = errors.New("retention: no job enforces this lifetime")

	// ErrPromiseBroken is returned by PrivacyReport.Check when the
	// configuration may keep data longer than promised.
	ErrPromiseBroken = errors.New("retention: configuration keeps data longer than promised")
)

// ErrReadersOpen is returned (wrapped) by BoltPurge.Expire when read
// transactions that began before the last deletion stayed open through
// every attempt, keeping the deleted pages pinned; retry later.
var ErrReadersOpen = boltwipe.ErrReadersOpen
