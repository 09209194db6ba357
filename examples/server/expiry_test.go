package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock the test moves forward.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestUploadsAndLogsExpire: with the clock moved past each lifetime, the
// retention jobs delete the uploaded file (its URL answers 404) and the
// connection log files.
func TestUploadsAndLogsExpire(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	ts := startTestServer(t, withConfig(func(c *Config) {
		c.Now = clock.Now
		c.UploadTTL = 2 * time.Hour
	}))
	ts.Register(t, "alice", "alice password")
	a := ts.Login(t, "alice", "alice password")
	get := uploadFile(t, ts, a, "short-lived.txt", "gone in two hours")
	status := func() int {
		res, err := ts.HTTPClient.Get(get)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if s := status(); s != http.StatusOK {
		t.Fatalf("fresh upload: %d", s)
	}
	var logsBefore []string
	entries, err := os.ReadDir(ts.LogDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "xmpp-") {
			logsBefore = append(logsBefore, e.Name())
		}
	}
	if len(logsBefore) == 0 {
		t.Fatal("no connection log file to expire")
	}

	clock.Advance(2*time.Hour + time.Minute)
	if s := status(); s != http.StatusNotFound {
		t.Errorf("upload after its TTL: %d, want 404", s)
	}
	r, err := ts.scheduler.RunJob(context.Background(), "uploads")
	if err != nil || r.Removed != 1 {
		t.Errorf("uploads job: removed %d, %v", r.Removed, err)
	}

	clock.Advance(24 * time.Hour)
	if _, err := ts.scheduler.RunJob(context.Background(), "xmpp-log"); err != nil {
		t.Fatal(err)
	}
	for _, name := range logsBefore {
		if _, err := os.Stat(filepath.Join(ts.LogDir, name)); err == nil {
			t.Errorf("connection log %s kept past 24 hours", name)
		}
	}
}
