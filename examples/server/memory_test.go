package main

import (
	"fmt"
	"os"
	"strconv"
	"testing"
)

// idleSessionsEnv sets the number of sessions of TestIdleSessionMemory
// (default idleSessionsDefault).
const idleSessionsEnv = "CHATBX_IDLE_SESSIONS"

const (
	idleSessionsDefault = 2000
	// idleSessionBound is the server memory an idle authenticated session
	// may cost before the test fails: the target of 40 KiB (README,
	// "Performance"). With byteConn (no 4 KiB bufio.Reader per session)
	// it measures 35.8–37.1 KiB on linux/amd64 with Go 1.26 (2,000 to
	// 10,000 sessions; 16 KiB of it the read loop's stack, the rest
	// crypto/tls state and buffers and encoding/xml's 4 KiB writer buffer
	// under mellium), so that a buffer or a goroutine more per session
	// fails the test.
	idleSessionBound = 40 << 10
)

// TestIdleSessionMemory measures what an idle authenticated session costs
// the server: a server in a child process (so that the clients' memory is
// not counted) with N sessions bound over direct TLS, each with its
// initial presence sent, against the same server before they connected.
// Both figures are taken after a garbage collection that returned free
// memory to the system: the resident set (VmRSS) and the Go heap in use.
// The RSS per session must stay under idleSessionBound.
//
//	CHATBX_IDLE_SESSIONS=10000 go test -run IdleSessionMemory -v ./examples/server/
//
// CHATBX_IDLE_HEAPPROFILE=<path> writes the server's heap profile there
// with the sessions open (go tool pprof -sample_index=inuse_space).
//
// Skipped with -short and under the race detector (which multiplies memory).
func TestIdleSessionMemory(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("memory measure: not with -short or -race")
	}
	if os.Getenv(crashDirEnv) != "" {
		t.Skip("in the child")
	}
	n := idleSessionsDefault
	if v := os.Getenv(idleSessionsEnv); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("%s=%q", idleSessionsEnv, v)
		}
	}
	child := startChildServer(t, t.TempDir(), fmt.Sprintf("idle:%d", n))
	stats := func() (rss, heap, goroutines, stack int64) {
		t.Helper()
		if _, err := fmt.Fprintln(child.stdin, "stats"); err != nil {
			t.Fatal(err)
		}
		f := child.line(t, "stats")
		v := make([]int64, 4)
		for i := range v {
			var err error
			if v[i], err = strconv.ParseInt(f[i+1], 10, 64); err != nil {
				t.Fatal(err)
			}
		}
		return v[0], v[1], v[2], v[3]
	}
	ts := child.testServer()
	// One session first: what the first one costs once (TLS session
	// cache, pools, code paths) is not counted against the others.
	warm := dialRaw(t, ts.C2STLS, "127.0.0.1", ts.TLSConfig)
	warm.login(t, "load0", "load password")
	rss0, heap0, g0, st0 := stats()
	for i := 1; i < n; i++ {
		c := dialRaw(t, ts.C2STLS, "127.0.0.1", ts.TLSConfig)
		c.login(t, fmt.Sprintf("load%d", i), "load password")
		c.write(t, `<presence/>`)
	}
	rss1, heap1, g1, st1 := stats()
	if path := os.Getenv("CHATBX_IDLE_HEAPPROFILE"); path != "" {
		fmt.Fprintln(child.stdin, "heapprofile "+path)
		child.line(t, "written")
	}
	m := int64(n - 1)
	perRSS, perHeap := (rss1-rss0)<<10/m, (heap1-heap0)<<10/m
	t.Logf("%d idle sessions: RSS %d → %d KiB, heap %d → %d KiB, goroutines %d → %d", m, rss0, rss1, heap0, heap1, g0, g1)
	t.Logf("per session: %.1f KiB RSS, %.1f KiB heap, %.1f KiB goroutine stacks, %.1f goroutines", float64(perRSS)/1024, float64(perHeap)/1024, float64((st1-st0)<<10/m)/1024, float64(g1-g0)/float64(m))
	if perRSS > idleSessionBound {
		t.Errorf("an idle session costs %d bytes of RSS, more than %d", perRSS, idleSessionBound)
	}
}
