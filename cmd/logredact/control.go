package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

// The control socket opens and closes the maintenance window of a running
// filter. A client sends one line and reads one line back:
//
//	reveal <duration> <reason...>   ->  ok until 2026-12-05T06:19:00Z
//	conceal                         ->  ok
//	status                          ->  open until ... | closed
//
// The socket is created with mode 0600: whoever may open it may see the
// addresses in full, so put it in a directory only the service's user can
// reach (the systemd unit uses its RuntimeDirectory, mode 0700).

// listenControl listens on the Unix socket path, replacing a stale socket
// left by an earlier run.
func listenControl(path string) (net.Listener, error) {
	if st, err := os.Lstat(path); err == nil && st.Mode()&os.ModeSocket != 0 {
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("control socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return ln, nil
}

// serveControl answers the clients of ln until ctx ends.
func serveControl(ctx context.Context, ln net.Listener, f *filter) {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			line, err := bufio.NewReader(io.LimitReader(c, 4096)).ReadString('\n')
			if err != nil && !errors.Is(err, io.EOF) {
				return
			}
			fmt.Fprintln(c, f.command(strings.TrimSpace(line)))
		}()
	}
}

// command carries out one control command and returns the answer.
func (f *filter) command(line string) string {
	verb, rest, _ := strings.Cut(line, " ")
	switch verb {
	case "reveal":
		ds, reason, _ := strings.Cut(strings.TrimSpace(rest), " ")
		d, err := time.ParseDuration(ds)
		if err != nil {
			return "error: reveal <duration> <reason>: " + err.Error()
		}
		if err := f.reveal(d, reason); err != nil {
			return "error: " + err.Error()
		}
		until, _ := f.win.Revealing()
		return "ok until " + until.UTC().Format(time.RFC3339)
	case "conceal":
		if err := f.conceal(); err != nil {
			return "error: " + err.Error()
		}
		return "ok"
	case "status":
		if until, open := f.win.Revealing(); open {
			return "open until " + until.UTC().Format(time.RFC3339)
		}
		return "closed"
	}
	return `error: unknown command (reveal <duration> <reason>, conceal, status)`
}

// reveal opens a maintenance window (Handler.Reveal: capped, audited).
func (f *filter) reveal(d time.Duration, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.win.Reveal(d, reason)
}

// conceal closes the maintenance window now.
func (f *filter) conceal() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.win.Conceal()
}

// controlClient sends one command to the control socket at path and
// writes the answer to w.
func controlClient(path string, args []string, w io.Writer) error {
	c, err := net.Dial("unix", path)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	defer c.Close()
	if _, err := fmt.Fprintln(c, strings.Join(args, " ")); err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	answer, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("control socket: %w", err)
	}
	fmt.Fprint(w, answer)
	if strings.HasPrefix(answer, "error") {
		return errors.New(strings.TrimSpace(answer))
	}
	return nil
}
