package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Interoperability with Debian's Prosody (0.12): the test starts its own
// Prosody in a temporary directory, on free loopback ports, as the
// domain p.example, and federates our a.example with it. Without the
// binary the test skips, unless CI is set: then it fails (.ci/run installs
// it).
//
// One direction only: Prosody finds other servers through DNS, and
// neither a.example nor a free loopback port can be found that way without
// changing the machine's resolver. So our server connects to Prosody
// (-s2s-hosts), and both sides trust each other's certificate, which makes
// it SASL EXTERNAL: Prosody needs no connection back to us, as dialback
// would.

// prosody is a running Prosody for a test.
type prosody struct {
	domain   string
	c2s, s2s string
	dir      string
	cfg      string
	cert     string // PEM certificate of domain
}

// startProsody starts Prosody for domain, trusting the certificate in
// trustPEM for servers; t.Cleanup stops it.
func startProsody(t *testing.T, domain, trustPEM string) *prosody {
	t.Helper()
	bin, err := exec.LookPath("prosody")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("prosody not found; CI must install it: apt-get install -y prosody")
		}
		t.Skip("prosody not found; install it with: apt-get install -y prosody")
	}
	dir := t.TempDir()
	cert, key := fedCert(t, domain)
	p := &prosody{domain: domain, c2s: freeAddr(t), s2s: freeAddr(t), dir: dir, cert: cert}
	port := func(addr string) string { return addr[strings.LastIndex(addr, ":")+1:] }
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	p.cfg = filepath.Join(dir, "prosody.cfg.lua")
	conf := fmt.Sprintf(`
run_as_root = true
daemonize = false
pidfile = %[1]q
data_path = %[2]q
log = { debug = %[3]q; info = "*console" }
plugin_paths = {}
modules_enabled = { "roster", "saslauth", "tls", "dialback", "disco", "ping", "s2s_auth_certs" }
modules_disabled = { "posix", "bosh", "websocket", "http", "s2s_bidi" }
interfaces = { "127.0.0.1" }
c2s_ports = { %[4]s }
c2s_direct_tls_ports = {}
s2s_ports = { %[5]s }
s2s_direct_tls_ports = {}
http_ports = {}
https_ports = {}
component_ports = {}
c2s_require_encryption = true
s2s_require_encryption = true
s2s_secure_auth = false
authentication = "internal_plain"
storage = "internal"
ssl = { certificate = %[6]q, key = %[7]q, cafile = %[8]q }
VirtualHost %[9]q
	ssl = { certificate = %[6]q, key = %[7]q, cafile = %[8]q }
`, filepath.Join(dir, "prosody.pid"), filepath.Join(dir, "data"), filepath.Join(dir, "prosody.log"),
		port(p.c2s), port(p.s2s), cert, key, trustPEM, domain)
	if err := os.WriteFile(p.cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-F", "--config", p.cfg)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	// Prosody says on its console when each port is open: wait for both
	// lines (or its end) instead of polling the ports.
	var out syncBuffer
	want := []string{
		fmt.Sprintf("Activated service 'c2s' on [127.0.0.1]:%s", port(p.c2s)),
		fmt.Sprintf("Activated service 's2s' on [127.0.0.1]:%s", port(p.s2s)),
	}
	ready, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		seen := 0
		for sc.Scan() {
			line := sc.Text()
			_, _ = out.Write([]byte(line + "\n"))
			for _, w := range want {
				if strings.Contains(line, w) {
					if seen++; seen == len(want) {
						close(ready)
					}
				}
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "prosody.log"))
			t.Logf("prosody output:\n%s\nprosody log:\n%s", out.String(), log)
		}
	})
	select {
	case <-ready:
	case <-done:
		t.Fatal("prosody ended before opening its ports")
	case <-time.After(testTimeout):
		t.Fatal("prosody did not open its ports in time")
	}
	return p
}

// register creates an account on Prosody with prosodyctl.
func (p *prosody) register(t *testing.T, user, pass string) {
	t.Helper()
	cmd := exec.Command("prosodyctl", "--config", p.cfg, "register", user, p.domain, pass)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("prosodyctl register: %v\n%s", err, out)
	}
}

// login logs in to Prosody's c2s port with our test client.
func (p *prosody) login(t *testing.T, user, pass string) *testClient {
	t.Helper()
	pem, err := os.ReadFile(p.cert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	ts := &testServer{Domain: p.domain, C2S: p.c2s,
		TLSConfig: &tls.Config{ServerName: p.domain, RootCAs: pool, MinVersion: tls.VersionTLS12}}
	c, err := ts.login(user, pass, false) // startProsody saw the port open
	if err != nil {
		t.Fatalf("login to prosody: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestProsodyFederation: our a.example sends a chat message to a user of
// Prosody's p.example over a stream authenticated with SASL EXTERNAL
// (each side trusts the other's certificate), and the user gets it from
// the sender's full JID.
func TestProsodyFederation(t *testing.T) {
	aCert, aKey := fedCert(t, "a.example")
	p := startProsody(t, "p.example", aCert)
	p.register(t, "paula", "paula pass")
	a := startTestServer(t, withConfig(func(c *Config) {
		c.Domain, c.CertFile, c.KeyFile = "a.example", aCert, aKey
		c.S2S, c.S2SHosts, c.S2SCA = "127.0.0.1:0", "p.example="+p.s2s, p.cert
	}))
	paula := p.login(t, "paula", "paula pass")
	paula.Send(t, `<presence/>`)
	alice := loginUser(t, a, "alice")
	alice.Send(t, `<message to="paula@p.example" type="chat" id="p1"><body>hello prosody</body></message>`)
	m := paula.Next(t, isMessage)
	if body(m) != "hello prosody" || !strings.HasPrefix(m.attr("from"), "alice@a.example/") {
		t.Fatalf("paula got %q from %q", body(m), m.attr("from"))
	}
	if log := connLog(t, a); !strings.Contains(log, `"auth":"external"`) {
		t.Errorf("stream to prosody not authenticated with EXTERNAL:\n%s", log)
	}
}
