package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
// acknowledged message is in both archives, in order.
func TestCrashKeepsAcknowledged(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		t.Skip("in the child")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	// The child prints "ready <direct TLS address> <certificate, base64 DER>".
	var addr string
	var pool *x509.CertPool
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		f := strings.Fields(lines.Text())
		if len(f) != 3 || f[0] != "ready" {
			continue
		}
		der, err := base64.StdEncoding.DecodeString(f[2])
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		addr, pool = f[1], x509.NewCertPool()
		pool.AddCert(cert)
		break
	}
	if addr == "" {
		t.Fatalf("the child server did not start: %v", lines.Err())
	}
	go func() { // the rest of the child's output, unread, must not block it
		for lines.Scan() {
		}
	}()
	ts := &testServer{C2STLS: addr, TLSConfig: &tls.Config{ServerName: "localhost", RootCAs: pool, MinVersion: tls.VersionTLS12}}
	a, _, _ := smEnable(t, ts, "alice", "alice password")

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
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	killed = true

	db, err := bolt.Open(filepath.Join(dir, "mam.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store, err := mam.NewBoltStore(db)
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
}

// TestCrashChild is the server of TestCrashKeepsAcknowledged, run in a
// child process; it serves until killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("run by TestCrashKeepsAcknowledged")
	}
	ts := startWithConfig(t, Config{
		Domain:           "localhost",
		C2S:              "127.0.0.1:0",
		C2STLS:           "127.0.0.1:0",
		HTTP:             "127.0.0.1:0",
		DataDir:          dir,
		OpenRegistration: true,
		FastHashing:      true,
		Stderr:           &syncBuffer{},
	})
	for _, u := range []string{"alice", "bob"} {
		ts.Register(t, u, u+" password")
		c := ts.Login(t, u, u+" password")
		setPrefs(t, c, "always")
		c.Close()
	}
	fmt.Printf("ready %s %s\n", ts.C2STLS, base64.StdEncoding.EncodeToString(ts.Certificate().Raw))
	select {} // until SIGKILL
}
