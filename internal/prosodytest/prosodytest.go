// Package prosodytest starts Debian's Prosody for interoperability tests:
// one instance per test, in a temporary directory, on loopback ports the
// test chooses, with a resolver that answers only what the test says, so
// that no query and no connection leaves the machine. Only tests import
// it.
//
// Without the prosody binary, Start skips the test, or fails it when the
// CI environment variable is set (CI installs Prosody).
package prosodytest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Service is a listener of Prosody on 127.0.0.1: its service name as
// Prosody logs it, one of "c2s", "c2s_direct_tls", "s2s",
// "s2s_direct_tls", "component", "http", "https" and "legacy_ssl" (the
// option <name>_ports lists its ports), and its port.
type Service struct {
	Name string
	Port int
}

// Options describes a Prosody to start.
type Options struct {
	// Config is appended to the configuration Start writes, which sets
	// the data directory, the pid file, the logs, the resolver, listening
	// on 127.0.0.1 only and every port list. Config sets the modules,
	// TLS, the hosts and components; it must not set any of those
	// options again (Prosody refuses a duplicate).
	Config string
	// Services are Prosody's listeners, the only ones it opens; Start
	// returns once Prosody has logged "Activated service" for each.
	Services []Service
	// Peers makes Prosody reach other XMPP servers of the test: remote
	// domain → "127.0.0.1:port" of its server-to-server listener. Prosody
	// finds them through DNS, so Start gives it a resolver (libunbound,
	// Prosody's "unbound" option) that answers from a hosts file and an
	// SRV record per domain, and answers every other name with NXDOMAIN
	// instead of asking a DNS server. libunbound takes the records
	// through a map of options, so at most two peers can be given.
	Peers map[string]string
}

// Prosody is a running Prosody.
type Prosody struct {
	// Dir is its directory (configuration, data, logs), removed after
	// the test.
	Dir string
	// ConfigFile is its configuration file, for prosodyctl.
	ConfigFile string
	// Data is its data_path (internal storage writes its files there).
	Data string

	mu     sync.Mutex
	lines  []string      // console output so far
	change chan struct{} // closed and replaced on each line, and at exit
	exited bool
}

// maxPeers is the number of SRV records libunbound's options can carry
// (under the keys "local-data:" and "local-data").
const maxPeers = 2

// Start starts Prosody with o and returns once its services are open;
// t.Cleanup stops it (SIGTERM, then SIGKILL after 10 s) and, when the
// test failed, logs its console output and debug log.
func Start(t testing.TB, o Options) *Prosody {
	t.Helper()
	bin := need(t, "prosody")
	dir := t.TempDir()
	p := &Prosody{Dir: dir, ConfigFile: filepath.Join(dir, "prosody.cfg.lua"), Data: filepath.Join(dir, "data"),
		change: make(chan struct{})}
	if err := os.Mkdir(p.Data, 0o700); err != nil {
		t.Fatal(err)
	}
	resolver, err := p.resolver(o.Peers)
	if err != nil {
		t.Fatal(err)
	}
	ports, err := portOptions(o.Services)
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`-- written by prosodytest.Start
run_as_root = true -- CI runs as root; Prosody refuses to otherwise
pidfile = %q
data_path = %q
log = { debug = %q; info = "*console" }
interfaces = { "127.0.0.1" }
%s%s
-- the test's configuration
%s
`, filepath.Join(dir, "prosody.pid"), p.Data, filepath.Join(dir, "prosody.log"), ports, resolver, o.Config)
	if err := os.WriteFile(p.ConfigFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-F", "--config", p.ConfigFile)
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	// SIGTERM: mod_posix (loaded unless Config disables it) shuts
	// Prosody down cleanly. Not SIGINT: Lua turns it into an error
	// raised wherever Prosody's code runs, and a handler's own error
	// catching can swallow it (seen: "Error calling onincoming:
	// interrupted!", Prosody running on).
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			p.add(sc.Text())
		}
		_, _ = io.Copy(io.Discard, out) // after a line over 1 MiB: keep Prosody writing
		p.mu.Lock()
		p.exited = true
		close(p.change)
		p.mu.Unlock()
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = cmd.Wait()
		if t.Failed() {
			debug, _ := os.ReadFile(filepath.Join(dir, "prosody.log"))
			t.Logf("prosody's console:\n%s\nprosody's debug log:\n%s", p.Output(), debug)
		}
	})
	for _, s := range o.Services {
		p.WaitLog(t, fmt.Sprintf("Activated service '%s' on [127.0.0.1]:%d", s.Name, s.Port))
	}
	return p
}

// resolver writes the hosts file for peers and returns the "unbound"
// option that makes Prosody use it and nothing else.
func (p *Prosody) resolver(peers map[string]string) (string, error) {
	if len(peers) > maxPeers {
		return "", fmt.Errorf("prosodytest: %d peers, at most %d", len(peers), maxPeers)
	}
	var hosts strings.Builder
	opts := []string{`["local-zone:"] = ". static"`}
	keys := []string{"local-data:", "local-data"}
	for domain, addr := range peers {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return "", fmt.Errorf("prosodytest: peer %s: %w", domain, err)
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return "", fmt.Errorf("prosodytest: peer %s: %q is not a loopback address", domain, host)
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return "", fmt.Errorf("prosodytest: peer %s: port %q", domain, port)
		}
		if strings.ContainsAny(domain, " \t\n\"\\") {
			return "", fmt.Errorf("prosodytest: peer domain %q", domain)
		}
		fmt.Fprintf(&hosts, "%s %s\n", host, domain)
		opts = append(opts, fmt.Sprintf(`[%q] = "_xmpp-server._tcp.%s. 60 IN SRV 0 0 %s %s."`, keys[0], domain, port, domain))
		keys = keys[1:]
	}
	file := filepath.Join(p.Dir, "hosts")
	if err := os.WriteFile(file, []byte(hosts.String()), 0o600); err != nil {
		return "", err
	}
	return fmt.Sprintf("unbound = { resolvconf = false; hoststxt = %q; options = { %s } }", file, strings.Join(opts, "; ")), nil
}

// serviceNames are the services whose ports Start sets (the option
// <name>_ports).
var serviceNames = []string{"c2s", "c2s_direct_tls", "s2s", "s2s_direct_tls", "component", "http", "https", "legacy_ssl"}

// portOptions returns the lines that set every port list to the ports of
// services.
func portOptions(services []Service) (string, error) {
	ports := make(map[string][]string)
	for _, s := range services {
		if !slices.Contains(serviceNames, s.Name) {
			return "", fmt.Errorf("prosodytest: unknown service %q", s.Name)
		}
		ports[s.Name] = append(ports[s.Name], strconv.Itoa(s.Port))
	}
	var b strings.Builder
	for _, name := range serviceNames {
		fmt.Fprintf(&b, "%s_ports = { %s }\n", name, strings.Join(ports[name], ", "))
	}
	return b.String(), nil
}

// need returns the path of the program name, or skips the test (fails it
// when CI is set).
func need(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found; CI must install it: apt-get install -y prosody", name)
		}
		t.Skipf("%s not found; install it with: apt-get install -y prosody", name)
	}
	return path
}

func (p *Prosody) add(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines = append(p.lines, line)
	close(p.change)
	p.change = make(chan struct{})
}

// Output is what Prosody has written on its console (info level and
// above) so far.
func (p *Prosody) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// WaitLog returns once Prosody has written a console line containing s,
// since it started; it fails the test when Prosody exits first.
func (p *Prosody) WaitLog(t testing.TB, s string) {
	t.Helper()
	seen := 0
	for {
		p.mu.Lock()
		for ; seen < len(p.lines); seen++ {
			if strings.Contains(p.lines[seen], s) {
				p.mu.Unlock()
				return
			}
		}
		exited, change := p.exited, p.change
		p.mu.Unlock()
		if exited {
			t.Fatalf("prosody exited before logging %q", s)
		}
		<-change
	}
}

// Register creates the account user@host with prosodyctl.
func (p *Prosody) Register(t testing.TB, user, host, password string) {
	t.Helper()
	ctl := need(t, "prosodyctl")
	out, err := exec.Command(ctl, "--config", p.ConfigFile, "register", user, host, password).CombinedOutput()
	if err != nil {
		t.Fatalf("prosodyctl register %s@%s: %v\n%s", user, host, err, out)
	}
}

// FreePort returns a port of 127.0.0.1 that was free a moment ago, for
// Prosody's listeners (Prosody binds them itself).
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
