package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// follower is an io.Reader over a log file that a server keeps appending
// to, like tail -F: at the end of the file it waits for more, and it
// survives the server's log rotation. When the path names another file
// (the old one renamed or deleted and a new one created) it finishes the
// old file and goes on at the start of the new one; when the file shrinks
// (truncated in place, as logrotate's copytruncate does) it starts again
// from the beginning. A named pipe (FIFO) is followed too: when its
// writer closes it, the follower waits for the next one.
//
// Lines the server appends to the old file after the follower has switched
// to the new one are not read: the server reopens its log right after the
// rename (Prosody on SIGHUP, ejabberd by itself), and the follower looks
// for a new file only at the end of the old one.
type follower struct {
	ctx  context.Context
	path string
	// wait returns when the file may have changed, or ctx's error. The
	// program polls every interval; tests step it.
	wait func(ctx context.Context) error

	mu     sync.Mutex // guards f and closed against Close from another goroutine
	f      *os.File
	closed bool
	st     os.FileInfo
	off    int64
}

// openFollower opens path for following; fromStart says whether to read
// what the file holds already or only what is appended from now on.
func openFollower(ctx context.Context, path string, fromStart bool, wait func(context.Context) error) (*follower, error) {
	fl := &follower{ctx: ctx, path: path, wait: wait}
	if err := fl.open(); err != nil {
		return nil, err
	}
	if !fromStart && fl.st.Mode().IsRegular() {
		off, err := fl.f.Seek(0, io.SeekEnd)
		if err != nil {
			fl.f.Close()
			return nil, fmt.Errorf("follow: %w", err)
		}
		fl.off = off
	}
	return fl, nil
}

func (fl *follower) open() error {
	f, err := os.Open(fl.path)
	if err != nil {
		return fmt.Errorf("follow: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("follow: %w", err)
	}
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.closed {
		f.Close()
		return os.ErrClosed
	}
	fl.f, fl.st, fl.off = f, st, 0
	return nil
}

func (fl *follower) file() *os.File {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return fl.f
}

// pollEvery returns a wait function that returns after d.
func pollEvery(d time.Duration) func(context.Context) error {
	return func(ctx context.Context) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		}
	}
}

// Read reads from the followed file, waiting at its end for more. It
// returns an error only when ctx ends (the context's error) or the file
// cannot be read.
func (fl *follower) Read(p []byte) (int, error) {
	for {
		if err := fl.ctx.Err(); err != nil {
			return 0, err
		}
		n, err := fl.file().Read(p)
		fl.off += int64(n)
		if n > 0 {
			return n, nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("follow: %w", err)
		}
		// At the end of the file: rotated, truncated, or nothing new.
		switch st, err := os.Stat(fl.path); {
		case err == nil && !os.SameFile(st, fl.st):
			// A new file under the path: the old one is read to its end.
			old := fl.file()
			if err := fl.open(); errors.Is(err, os.ErrClosed) {
				return 0, err
			} else if err == nil {
				old.Close()
				continue
			}
			// Created and gone again: keep the old one for now.
		case err == nil && st.Mode().IsRegular() && st.Size() < fl.off:
			if _, err := fl.file().Seek(0, io.SeekStart); err != nil {
				return 0, fmt.Errorf("follow: %w", err)
			}
			fl.off = 0
			continue
		}
		if err := fl.wait(fl.ctx); err != nil {
			return 0, err
		}
	}
}

// Close closes the file; a Read waiting on a named pipe returns. It is
// safe to call from another goroutine than Read's, and more than once.
func (fl *follower) Close() error {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.closed {
		return nil
	}
	fl.closed = true
	return fl.f.Close()
}
