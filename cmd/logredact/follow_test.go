package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"chatbx.eu/privacy/internal/testclock"
	"chatbx.eu/privacy/logredact"
)

var errScriptDone = errors.New("script done")

// script is a follower's wait function that, each time the follower has
// reached the end of the file, plays the next step of what a server and
// its log rotation do, with no timer involved.
func script(steps ...func()) func(context.Context) error {
	return func(context.Context) error {
		if len(steps) == 0 {
			return errScriptDone
		}
		s := steps[0]
		steps = steps[1:]
		s()
		return nil
	}
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func TestFollowRotation(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "prosody.log")
	appendTo(t, log, "written before the filter started\n")
	fl, err := openFollower(t.Context(), log, false, script(
		func() { appendTo(t, log, "line 1 from 192.0.2.1\n") },
		func() {}, // nothing new: wait again
		func() {
			// Rotation by rename (logrotate's default, then SIGHUP to
			// Prosody): a last line reaches the old file before the server
			// reopens, then the new file starts.
			if err := os.Rename(log, log+".1"); err != nil {
				t.Fatal(err)
			}
			appendTo(t, log+".1", "line 2, last of the old file\n")
			appendTo(t, log, "line 3, first of the new file\n")
		},
		func() {
			// copytruncate: the file shrinks in place.
			if err := os.Truncate(log, 0); err != nil {
				t.Fatal(err)
			}
			appendTo(t, log, "line 4\n")
		},
		func() {
			// Deleted, and for a while no file at all.
			if err := os.Remove(log); err != nil {
				t.Fatal(err)
			}
		},
		func() { appendTo(t, log, "line 5, in a file created later\n") },
	))
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	var out bytes.Buffer
	f := newFilter(&out, nil)
	if err := copyLines(f, fl); !errors.Is(err, errScriptDone) {
		t.Fatalf("copy ended with %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want := "line 1 from 192.0.2.0\nline 2, last of the old file\nline 3, first of the new file\nline 4\nline 5, in a file created later\n"
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
}

func TestFollowFromStartAndCancel(t *testing.T) {
	log := filepath.Join(t.TempDir(), "ejabberd.log")
	appendTo(t, log, "old 198.51.100.7\n")
	ctx, cancel := context.WithCancel(t.Context())
	fl, err := openFollower(ctx, log, true, script(cancel))
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	got, err := io.ReadAll(fl)
	if !errors.Is(err, context.Canceled) || string(got) != "old 198.51.100.7\n" {
		t.Fatalf("got %q, %v", got, err)
	}
}

// logFiles lists the names in dir.
func logFiles(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestExpiry moves an injected clock past the maximum age and ticks the
// expiry loop: a file goes before its newest line is older than 24 hours,
// and not before its period is over.
func TestExpiry(t *testing.T) {
	clk := testclock.New() // 12:00 UTC
	dir := t.TempDir()
	rf, err := logredact.OpenRotating(logredact.RotateConfig{Dir: dir, Name: "xmpp", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	for _, step := range []time.Duration{0, 59 * time.Minute, 2 * time.Hour} {
		clk.Set(testclock.Start.Add(step))
		if _, err := rf.Write([]byte("line\n")); err != nil {
			t.Fatal(err)
		}
	}
	ticks := make(chan time.Time)
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(t.Context())
	go func() { done <- expireLoop(ctx, rf, 10*time.Minute, clk.Now, ticks) }()
	// runAt sets the clock and lets the loop run once: the second send
	// returns only after the run started by the first is over.
	runAt := func(d time.Duration) []string {
		clk.Set(testclock.Start.Add(d))
		ticks <- time.Time{}
		ticks <- time.Time{}
		return logFiles(t, dir)
	}
	first, third := "xmpp-2026-03-01T12.log", "xmpp-2026-03-01T14.log"
	if got := runAt(23 * time.Hour); !slices.Equal(got, []string{first, third}) {
		t.Fatalf("after 23 h: %v", got)
	}
	// The newest line of the first file (12:59) is 24 h old at 12:59 the
	// next day; a run up to 11 minutes later must not find it still there.
	if got := runAt(24*time.Hour + 48*time.Minute); !slices.Equal(got, []string{third}) {
		t.Fatalf("after 24 h 48 min: %v", got)
	}
	if got := runAt(26*time.Hour + 48*time.Minute); len(got) != 0 {
		t.Fatalf("after 26 h 48 min: %v", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestRunFileToRotatingFiles runs the program on a Prosody log file,
// writing rotating files in a directory.
func TestRunFileToRotatingFiles(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "prosody.log")
	var all, want strings.Builder
	for _, tc := range sampleLines {
		all.WriteString(tc.in)
		want.WriteString(tc.want)
	}
	if err := os.WriteFile(in, []byte(all.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	cfg, rest, err := parseFlags([]string{"-in", in, "-out", out})
	if err != nil || len(rest) != 0 {
		t.Fatal(err, rest)
	}
	clk := testclock.New()
	cfg.now = clk.Now
	if err := cfg.filter(t.Context(), nil, io.Discard, nil, make(chan time.Time)); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(out, "xmpp-2026-03-01T12.log"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want.String() {
		t.Fatalf("got\n%s\nwant\n%s", got, want.String())
	}
	st, err := os.Stat(out)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("output directory: %v %v", st.Mode(), err)
	}
}

func TestControlSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "c.sock")
	ln, err := listenControl(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if st, err := os.Stat(sock); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, %v", st.Mode(), err)
	}
	var out bytes.Buffer
	f := newFilter(&out, nil)
	go serveControl(t.Context(), ln, f)
	var ans bytes.Buffer
	if err := controlClient(sock, []string{"reveal", "10m", "a", "reason"}, &ans); err != nil || !strings.HasPrefix(ans.String(), "ok until") {
		t.Fatalf("reveal: %q %v", ans.String(), err)
	}
	ans.Reset()
	if err := controlClient(sock, []string{"reveal", "48h", "x"}, &ans); err == nil {
		t.Fatalf("a window over 24 h was opened: %q", ans.String())
	}
	ans.Reset()
	if err := controlClient(sock, []string{"conceal"}, &ans); err != nil || ans.String() != "ok\n" {
		t.Fatalf("conceal: %q %v", ans.String(), err)
	}
	if !strings.Contains(out.String(), logredact.AuditRevealStart) || !strings.Contains(out.String(), logredact.AuditRevealEnd) {
		t.Fatalf("audit records missing:\n%s", out.String())
	}
}

// signalWriter passes writes to a buffer and signals each one.
type signalWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	select {
	case w.wrote <- struct{}{}:
	default:
	}
	return len(p), nil
}

// TestStopWhileWaitingOnPipe follows a named pipe, as the systemd unit
// does, and stops while the read waits for the server to write: the
// program ends, and what came is written out.
func TestStopWhileWaitingOnPipe(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "prosody.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("no named pipes here:", err)
	}
	// The server's end, opened read-write so that opening does not block.
	srv, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cfg, _, err := parseFlags([]string{"-in", fifo, "-follow"})
	if err != nil {
		t.Fatal(err)
	}
	out := &signalWriter{wrote: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- cfg.filter(ctx, nil, out, script(), nil) }()
	if _, err := srv.WriteString("Dec 05 06:07:00 c2s1\tinfo\tNew connection (192.0.2.55, 43410)\n"); err != nil {
		t.Fatal(err)
	}
	<-out.wrote
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := out.buf.String(); got != "Dec 05 06:07:00 c2s1\tinfo\tNew connection (192.0.2.0, 43410)\n" {
		t.Fatalf("got %q", got)
	}
}
