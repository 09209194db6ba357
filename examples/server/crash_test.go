package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"chatbx.eu/privacy/mam"
	bolt "go.etcd.io/bbolt"
	"mellium.im/xmpp/jid"
)

// crashDirEnv names the data directory of the server that
// TestCrashKeepsAcknowledged runs in a child process.
const crashDirEnv = "CHATBX_CRASH_CHILD_DIR"

// TestCrashKeepsAcknowledged: a server in a child process (this test
// binary, re-executed) is killed with SIGKILL while alice pipelines
// messages to bob, both archiving, right after the server acknowledged
// some of them (XEP-0198 <a h/>); on reopening the archive, every
// acknowledged message is in both archives, in order. Bob is online: with
// XEP-0198 on alice's stream her messages reach him before their commit
// (archivepipe.go), so he may have received more than the archive holds;
// never fewer acknowledged ones are archived.
func TestCrashKeepsAcknowledged(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		t.Skip("in the child")
	}
	dir := t.TempDir()
	child := startChildServer(t, dir, "crash")
	bob, _ := smAuth(t, child.testServer(), "bob", "bob password")
	smBind(t, bob) // no XEP-0198: bob need not acknowledge
	received := make(chan int, 1)
	go func() { // ends with the kill
		n := 0
		for {
			e, err := bob.next()
			if err != nil {
				received <- n
				return
			}
			if e.start.Name.Local == "message" {
				n++
			}
		}
	}()
	a, _, _ := smEnable(t, child.testServer(), "alice", "alice password")

	// Everything at once: the server reads, archives and acknowledges while
	// more arrives.
	const total, every = 600, 20
	var b strings.Builder
	for i := 1; i <= total; i++ {
		fmt.Fprintf(&b, `<message to='bob@localhost' type='chat'><body>m%d</body></message>`, i)
		if i%every == 0 {
			b.WriteString(`<r xmlns='urn:xmpp:sm:3'/>`)
		}
	}
	go func() { _, _ = a.conn.Write([]byte(b.String())) }() // ends with the kill
	acked := 0
	for acked < total/4 {
		e, err := a.next()
		if err != nil {
			t.Fatalf("after %d acknowledged: %v", acked, err)
		}
		if e.start.Name == (xml.Name{Space: nsSM, Local: "a"}) {
			if acked, err = strconv.Atoi(e.attr("h")); err != nil {
				t.Fatal(err)
			}
		}
	}
	child.kill(t)

	db, err := bolt.Open(filepath.Join(dir, "mam.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store, err := mam.NewBoltStore(db, mam.BoltConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, owner := range []string{"alice@localhost", "bob@localhost"} {
		page, err := store.Query(context.Background(), jid.MustParse(owner), mam.Query{Max: total})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Messages) < acked {
			t.Fatalf("%s's archive holds %d messages after the crash; %d were acknowledged", owner, len(page.Messages), acked)
		}
		for i, m := range page.Messages[:acked] {
			if want := fmt.Sprintf("<body>m%d</body>", i+1); !strings.Contains(string(m.Stanza), want) {
				t.Fatalf("%s's archive, message %d: %s, want %s", owner, i+1, m.Stanza, want)
			}
		}
		t.Logf("%s: %d acknowledged, %d in the archive after SIGKILL", owner, acked, len(page.Messages))
	}
	t.Logf("bob received %d before SIGKILL", <-received)
}

// childServer is a server run in a child process (this test binary,
// re-executed: TestServeChild), on a data directory of the parent's.
type childServer struct {
	cmd    *exec.Cmd
	addr   string         // direct TLS address
	pool   *x509.CertPool // holds the child's certificate
	stdin  io.WriteCloser // commands: "stats"
	lines  *bufio.Scanner // the child's output
	killed bool
}

// startChildServer starts TestServeChild on dir in mode ("crash": users
// alice and bob, both archiving; "idle:<n>": users load0…load<n-1>, any
// password accepted) and waits until it serves. t.Cleanup kills it.
func startChildServer(t *testing.T, dir, mode string) *childServer {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeChild$", "-test.v")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, childModeEnv+"="+mode)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &childServer{cmd: cmd, lines: bufio.NewScanner(out)}
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.kill(t) })
	// The child prints "ready <direct TLS address> <certificate, base64 DER>".
	f := c.line(t, "ready")
	der, err := base64.StdEncoding.DecodeString(f[2])
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	c.addr, c.pool = f[1], x509.NewCertPool()
	c.pool.AddCert(cert)
	return c
}

// line returns the fields of the child's next output line starting with
// word, skipping others.
func (c *childServer) line(t *testing.T, word string) []string {
	t.Helper()
	for c.lines.Scan() {
		if f := strings.Fields(c.lines.Text()); len(f) > 0 && f[0] == word {
			return f
		}
	}
	t.Fatalf("the child server ended before %q: %v", word, c.lines.Err())
	return nil
}

// testServer is what the raw-client helpers need of the child server.
func (c *childServer) testServer() *testServer {
	return &testServer{C2STLS: c.addr, TLSConfig: &tls.Config{ServerName: "localhost", RootCAs: c.pool, MinVersion: tls.VersionTLS12}}
}

// kill ends the child with SIGKILL and waits for it; idempotent.
func (c *childServer) kill(t *testing.T) {
	if c.killed {
		return
	}
	c.killed = true
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Error(err)
	}
	go func() { // what the child still printed, unread, must not block Wait
		for c.lines.Scan() {
		}
	}()
	_ = c.cmd.Wait()
}

// childModeEnv selects what TestServeChild sets up (startChildServer).
const childModeEnv = "CHATBX_CHILD_MODE"

// TestServeChild is the server of startChildServer, run in a child
// process; it serves until killed. On "heapprofile <path>" from its stdin
// it writes a heap profile there (and prints "written"); on "stats" it prints
// "stats <VmRSS KiB> <heap in use KiB> <goroutines> <stacks KiB>", measured after a
// garbage collection that returned the free memory to the system.
func TestServeChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("run by startChildServer")
	}
	mode := os.Getenv(childModeEnv)
	cfg := Config{
		Domain:           "localhost",
		C2S:              "127.0.0.1:0",
		C2STLS:           "127.0.0.1:0",
		HTTP:             "127.0.0.1:0",
		DataDir:          dir,
		OpenRegistration: true,
		FastHashing:      true,
		Stderr:           &syncBuffer{},
	}
	idle, isIdle := strings.CutPrefix(mode, "idle:")
	if isIdle {
		// Sessions, not Argon2id, are measured.
		cfg.authenticate = func(context.Context, string, string, string) error { return nil }
	}
	ts := startWithConfig(t, cfg)
	switch {
	case mode == "crash":
		for _, u := range []string{"alice", "bob"} {
			ts.Register(t, u, u+" password")
			c := ts.Login(t, u, u+" password")
			setPrefs(t, c, "always")
			c.Close()
		}
	case isIdle:
		n, err := strconv.Atoi(idle)
		if err != nil {
			t.Fatal(err)
		}
		registerLoadAccounts(t.Context(), t, ts, n, "load password")
	default:
		t.Fatalf("unknown mode %q", mode)
	}
	fmt.Printf("ready %s %s\n", ts.C2STLS, base64.StdEncoding.EncodeToString(ts.Certificate().Raw))
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if path, ok := strings.CutPrefix(in.Text(), "heapprofile "); ok {
			runtime.GC()
			if f, err := os.Create(path); err == nil {
				_ = pprof.WriteHeapProfile(f)
				f.Close()
			}
			fmt.Println("written")
			continue
		}
		if in.Text() != "stats" {
			continue
		}
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Printf("stats %d %d %d %d\n", procStatusKiB(t, "VmRSS"), ms.HeapInuse>>10, runtime.NumGoroutine(), ms.StackInuse>>10)
	}
	select {} // until SIGKILL
}
