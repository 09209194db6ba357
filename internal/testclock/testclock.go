// Package testclock is a manual clock for the tests of the library's
// packages, whose Config.Now fields take a func() time.Time: time moves
// only when a test sets or advances it, so expiry is tested without
// waiting. Only tests import it.
package testclock

import (
	"sync"
	"time"
)

// Start is the time a new Clock shows: a fixed date, so that tests do not
// depend on the day they run.
var Start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Clock is a clock that moves only when told to. Its methods are safe for
// concurrent use; the zero Clock shows the zero time.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a Clock showing Start.
func New() *Clock { return &Clock{t: Start} }

// Now returns the time the clock shows; its method value fits a
// Config.Now field.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set makes the clock show t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Add moves the clock by d, backwards when d is negative.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
