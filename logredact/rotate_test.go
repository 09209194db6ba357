package logredact_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"chatbx.eu/privacy/logredact"
)

var _ io.WriteCloser = (*logredact.RotatingFile)(nil)

// The retention package's Expirer, declared here as its consumer would.
type expirer interface {
	Expire(ctx context.Context, before time.Time) (removed int, err error)
}

var _ expirer = (*logredact.RotatingFile)(nil)

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func openTestRotating(t *testing.T, cfg logredact.RotateConfig) *logredact.RotatingFile {
	t.Helper()
	r, err := logredact.OpenRotating(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestRotatingFileRotatesAndNames(t *testing.T) {
	clk := newClock() // 2026-11-26 23:00 UTC
	dir := filepath.Join(t.TempDir(), "logs")
	cfg := logredact.XMPPLogConfig(dir)
	cfg.Now = clk.Now
	r := openTestRotating(t, cfg)
	fmt.Fprintln(r, "a")
	clk.Advance(59 * time.Minute)
	fmt.Fprintln(r, "b")
	clk.Advance(time.Minute)
	fmt.Fprintln(r, "c")
	want := []string{"xmpp-2026-11-26T23.log", "xmpp-2026-11-27T00.log"}
	if got := listDir(t, dir); !slices.Equal(got, want) {
		t.Fatalf("files = %v, want %v", got, want)
	}
	b, _ := os.ReadFile(filepath.Join(dir, want[0]))
	if string(b) != "a\nb\n" {
		t.Errorf("first file = %q", b)
	}
	// Permissions: dir 0700, files 0600, even for a pre-existing wide dir.
	st, _ := os.Stat(dir)
	if st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v", st.Mode().Perm())
	}
	for _, n := range want {
		st, _ := os.Stat(filepath.Join(dir, n))
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", n, st.Mode().Perm())
		}
	}
}

func TestRotatingFileTightensModes(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	old := filepath.Join(dir, "log-2026-11-26T23.log")
	if err := os.WriteFile(old, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(old, 0o644); err != nil {
		t.Fatal(err)
	}
	r := openTestRotating(t, logredact.RotateConfig{Dir: dir, Now: clk.Now})
	fmt.Fprintln(r, "new")
	for path, want := range map[string]os.FileMode{dir: 0o700, old: 0o600} {
		st, _ := os.Stat(path)
		if st.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", path, st.Mode().Perm(), want)
		}
	}
	b, _ := os.ReadFile(old)
	if string(b) != "old\nnew\n" {
		t.Errorf("appended file = %q", b)
	}
}

func TestRotatingFileMinutePeriods(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	r := openTestRotating(t, logredact.RotateConfig{Dir: dir, Name: "x", Period: 15 * time.Minute, Now: clk.Now})
	for range 4 {
		fmt.Fprintln(r, "l")
		clk.Advance(10 * time.Minute)
	}
	want := []string{"x-2026-11-26T23-00.log", "x-2026-11-26T23-15.log", "x-2026-11-26T23-30.log"}
	if got := listDir(t, dir); !slices.Equal(got, want) {
		t.Fatalf("files = %v, want %v", got, want)
	}
}

func TestRotatingFileBadConfig(t *testing.T) {
	for _, cfg := range []logredact.RotateConfig{
		{},
		{Dir: t.TempDir(), Period: 90 * time.Second},
		{Dir: t.TempDir(), Period: time.Second},
		{Dir: t.TempDir(), Name: "../x"},
	} {
		if _, err := logredact.OpenRotating(cfg); !errors.Is(err, logredact.ErrConfig) {
			t.Errorf("OpenRotating(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
}

func TestRotatingFileExpire(t *testing.T) {
	clk := newClock() // 23:00
	dir := t.TempDir()
	cfg := logredact.XMPPLogConfig(dir)
	cfg.Now = clk.Now
	r := openTestRotating(t, cfg)
	// A stranger's file in the same directory must survive.
	stranger := filepath.Join(dir, "notes.txt")
	os.WriteFile(stranger, []byte("x"), 0o600)
	for range 30 { // 23:00 .. 04:00 next day+1: 30 hourly files
		fmt.Fprintln(r, "record")
		clk.Advance(time.Hour)
	}
	clk.Advance(-time.Hour) // now = last write time (2026-11-28T04:00)
	ctx := context.Background()

	// Cutoff exactly at the end of the 4th file: files 0..3 go.
	before := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	n, err := r.Expire(ctx, before)
	if err != nil || n != 4 {
		t.Fatalf("Expire = %d, %v; want 4", n, err)
	}
	// A cutoff inside a period keeps that file (it holds newer records).
	n, err = r.Expire(ctx, before.Add(30*time.Minute))
	if err != nil || n != 0 {
		t.Fatalf("Expire mid-period = %d, %v; want 0", n, err)
	}
	// ExpireOld: afterwards no file may start more than 24 h ago (its
	// records could be older than 24 h), and the newest file survives.
	n, err = r.ExpireOld(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := listDir(t, dir)
	if !slices.Contains(got, "xmpp-2026-11-28T04.log") {
		t.Errorf("the newest file was expired: %v", got)
	}
	if !slices.Contains(got, "notes.txt") {
		t.Errorf("a foreign file was removed: %v", got)
	}
	oldest := time.Date(2026, 11, 28, 4, 0, 0, 0, time.UTC).Add(-24 * time.Hour)
	for _, name := range got {
		if !strings.HasPrefix(name, "xmpp-") {
			continue
		}
		start, _ := time.Parse("2006-01-02T15", strings.TrimSuffix(strings.TrimPrefix(name, "xmpp-"), ".log"))
		if start.Before(oldest) {
			t.Errorf("%s holds records older than 24 h after ExpireOld", name)
		}
	}
	if n == 0 {
		t.Error("ExpireOld removed nothing")
	}
	// Everything: the current file too; later writes reopen it.
	n, err = r.Expire(ctx, clk.Now().Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got := listDir(t, dir); !slices.Equal(got, []string{"notes.txt"}) {
		t.Errorf("after full expiry: %v (removed %d)", got, n)
	}
	if _, err := fmt.Fprintln(r, "again"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "xmpp-2026-11-28T04.log")); string(b) != "again\n" {
		t.Errorf("reopened file = %q", b)
	}
}

func TestRotatingFileExpireHonoursContext(t *testing.T) {
	clk := newClock()
	r := openTestRotating(t, logredact.RotateConfig{Dir: t.TempDir(), Now: clk.Now})
	fmt.Fprintln(r, "x")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Expire(ctx, clk.Now().Add(48*time.Hour)); !errors.Is(err, context.Canceled) {
		t.Errorf("Expire with canceled ctx = %v", err)
	}
}

func TestRotatingFileEraseLines(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	r := openTestRotating(t, logredact.RotateConfig{Dir: dir, Name: "xmpp", Now: clk.Now})
	fmt.Fprintln(r, `{"user":"alice@example.org","ip":"192.0.2.0"}`)
	fmt.Fprintln(r, `{"user":"bob@example.org","ip":"192.0.2.0"}`)
	clk.Advance(time.Hour)
	fmt.Fprintln(r, `{"user":"alice@example.org","ip":"198.51.100.0"}`)
	fmt.Fprintln(r, `{"user":"carol@example.org"}`)
	// The current file is open: erasing must handle it and later writes
	// must still land in it.
	n, err := r.EraseLines(context.Background(), `"user":"alice@example.org"`)
	if err != nil || n != 2 {
		t.Fatalf("EraseLines = %d, %v; want 2", n, err)
	}
	fmt.Fprintln(r, `{"user":"dave@example.org"}`)
	all := ""
	for _, name := range listDir(t, dir) {
		if strings.HasPrefix(name, ".") {
			t.Errorf("temporary file left behind: %s", name)
		}
		b, _ := os.ReadFile(filepath.Join(dir, name))
		all += string(b)
		st, _ := os.Stat(filepath.Join(dir, name))
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v after erase", name, st.Mode().Perm())
		}
	}
	if strings.Contains(all, "alice") {
		t.Errorf("alice survived: %q", all)
	}
	for _, who := range []string{"bob", "carol", "dave"} {
		if !strings.Contains(all, who) {
			t.Errorf("%s was lost: %q", who, all)
		}
	}
	if _, err := r.EraseLines(context.Background(), ""); !errors.Is(err, logredact.ErrBadRequest) {
		t.Errorf("empty pattern: %v", err)
	}
	n, err = r.EraseLines(context.Background(), "nobody")
	if err != nil || n != 0 {
		t.Errorf("EraseLines(nobody) = %d, %v", n, err)
	}
}

func TestRotatingFileConcurrentWrites(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	r := openTestRotating(t, logredact.RotateConfig{Dir: dir, Now: clk.Now})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				fmt.Fprintf(r, "goroutine %d line %d %s\n", g, i, strings.Repeat("x", 100))
				if i%50 == 0 {
					r.EraseLines(context.Background(), "never-present")
				}
			}
		}()
	}
	wg.Wait()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Write([]byte("x")); !errors.Is(err, logredact.ErrClosed) {
		t.Errorf("Write after Close = %v", err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "log-2026-11-26T23.log"))
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 8*200 {
		t.Fatalf("%d lines, want %d", len(lines), 8*200)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "goroutine ") || !strings.HasSuffix(l, strings.Repeat("x", 100)) {
			t.Fatalf("torn line %q", l)
		}
	}
}

func TestPresets(t *testing.T) {
	x := logredact.XMPPLogConfig("d")
	h := logredact.HTTPErrorLogConfig("d")
	if x.Period > time.Hour || x.MaxAge != 24*time.Hour {
		t.Errorf("XMPP preset %+v", x)
	}
	if h.Period != 24*time.Hour || h.MaxAge != 30*24*time.Hour {
		t.Errorf("HTTP preset %+v", h)
	}
	r := openTestRotating(t, logredact.XMPPLogConfig(t.TempDir()))
	if r.Retention() != 23*time.Hour {
		t.Errorf("Retention = %v", r.Retention())
	}
}

func TestRotatingFileSync(t *testing.T) {
	r := openTestRotating(t, logredact.RotateConfig{Dir: t.TempDir()})
	if err := r.Sync(); err != nil {
		t.Fatalf("Sync before any write: %v", err)
	}
	fmt.Fprintln(r, "x")
	if err := r.Sync(); err != nil {
		t.Fatal(err)
	}
}

func TestRetentionMaxAge(t *testing.T) {
	const day = 24 * time.Hour
	xmpp := openTestRotating(t, logredact.XMPPLogConfig(t.TempDir()))
	httpLog := openTestRotating(t, logredact.HTTPErrorLogConfig(t.TempDir()))
	short := openTestRotating(t, logredact.RotateConfig{Dir: t.TempDir(), Period: time.Hour, MaxAge: 2 * time.Hour})
	for _, tc := range []struct {
		name     string
		r        *logredact.RotatingFile
		interval time.Duration
		want     time.Duration
	}{
		// MaxAge − Period − interval·1.1 − 1s.
		{"xmpp, 10 min", xmpp, 10 * time.Minute, 22*time.Hour + 48*time.Minute + 59*time.Second},
		{"xmpp, 0 is 10 min", xmpp, 0, 22*time.Hour + 48*time.Minute + 59*time.Second},
		{"xmpp, 1 h", xmpp, time.Hour, 21*time.Hour + 53*time.Minute + 59*time.Second},
		{"http, 1 h", httpLog, time.Hour, 29*day - 66*time.Minute - time.Second},
		{"never negative", short, 2 * time.Hour, 0},
	} {
		if got := tc.r.RetentionMaxAge(tc.interval); got != tc.want {
			t.Errorf("%s: RetentionMaxAge(%v) = %v, want %v", tc.name, tc.interval, got, tc.want)
		}
	}
}
