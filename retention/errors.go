package retention

import "errors"

var (
	// ErrConfig is returned by NewScheduler for an unusable Config: a job
	// with no name, a duplicate name, no Expirer, or a negative duration.
	ErrConfig = errors.New("retention: invalid configuration")

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
