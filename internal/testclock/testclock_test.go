package testclock_test

import (
	"sync"
	"testing"
	"time"

	"chatbx.eu/privacy/internal/testclock"
)

func TestClock(t *testing.T) {
	c := testclock.New()
	if got := c.Now(); !got.Equal(testclock.Start) {
		t.Fatalf("New shows %v, want %v", got, testclock.Start)
	}
	if !c.Now().Equal(c.Now()) {
		t.Fatal("the clock moved by itself")
	}
	c.Add(90 * time.Minute)
	if got, want := c.Now(), testclock.Start.Add(90*time.Minute); !got.Equal(want) {
		t.Fatalf("after Add: %v, want %v", got, want)
	}
	c.Add(-time.Hour)
	if got, want := c.Now(), testclock.Start.Add(30*time.Minute); !got.Equal(want) {
		t.Fatalf("after a negative Add: %v, want %v", got, want)
	}
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	c.Set(at)
	if got := c.Now(); !got.Equal(at) {
		t.Fatalf("after Set: %v, want %v", got, at)
	}
	var zero testclock.Clock
	if !zero.Now().IsZero() {
		t.Fatal("the zero Clock does not show the zero time")
	}
}

// TestClockConcurrent is for the race detector.
func TestClockConcurrent(t *testing.T) {
	c := testclock.New()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				c.Add(time.Second)
				c.Now()
			}
		}()
	}
	wg.Wait()
	if got, want := c.Now(), testclock.Start.Add(400*time.Second); !got.Equal(want) {
		t.Fatalf("%v, want %v", got, want)
	}
}
