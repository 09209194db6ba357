package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// exampleServer is the example server (../server) built and started as a
// process on free loopback ports with a fresh data directory.
type exampleServer struct {
	c2s, c2sTLS string
	dataDir     string
	pid         int
}

// startExampleServer builds the example server and starts it on port 0 of
// loopback; the addresses come from its "ready" line.
func startExampleServer(t testing.TB) *exampleServer {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("no go command to build the example server")
		}
		t.Skip("no go command to build the example server")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "server")
	build := exec.Command(goTool, "build", "-o", bin, ".")
	build.Dir = filepath.Join("..", "server")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the example server: %v\n%s", err, out)
	}
	s := &exampleServer{dataDir: filepath.Join(dir, "data")}
	cmd := exec.Command(bin, "-data", s.dataDir, "-c2s", "127.0.0.1:0", "-c2s-tls", "127.0.0.1:0", "-http", "127.0.0.1:0", "-open-registration")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.pid = cmd.Process.Pid
	// The server's output: lines until "ready" are read here, the rest is
	// kept for a failing test's log.
	var (
		mu  sync.Mutex
		log strings.Builder
	)
	ready := make(chan string, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			log.WriteString(line + "\n")
			mu.Unlock()
			if strings.HasPrefix(line, "server: ") && strings.Contains(line, " ready: ") {
				select {
				case ready <- line:
				default:
				}
			}
		}
	}()
	output := func() string { mu.Lock(); defer mu.Unlock(); return log.String() }
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-copied
		if err := cmd.Wait(); err != nil {
			t.Errorf("example server: %v", err)
		}
		if t.Failed() {
			t.Logf("server output:\n%s", output())
		}
	})
	var line string
	select {
	case line = <-ready:
	case <-copied:
		t.Fatalf("example server ended before it was ready:\n%s", output())
	}
	// server: localhost ready: c2s A (STARTTLS), B (direct TLS), https://localhost:P
	var httpsURL string
	if _, err := fmt.Sscanf(line[strings.Index(line, "c2s "):], "c2s %s (STARTTLS), %s (direct TLS), %s", &s.c2s, &s.c2sTLS, &httpsURL); err != nil {
		t.Fatalf("ready line %q: %v", line, err)
	}
	return s
}

// TestScenarios runs every scenario of the tool, briefly, against the
// example server built from this repository, over STARTTLS and direct TLS,
// trusting only the server's certificate, and checks what each reports.
func TestScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the example server")
	}
	s := startExampleServer(t)
	common := []string{"-domain", "localhost", "-cafile", filepath.Join(s.dataDir, "cert.pem"),
		"-json", "-server-pid", fmt.Sprint(s.pid), "-conc", "2"}
	for _, tc := range []struct {
		name  string
		args  []string
		check func(t *testing.T, r result)
	}{
		{"pipelined", []string{"-addr", s.c2s, "-scenario", "pipelined", "-archive", "-n", "200"}, func(t *testing.T, r result) {
			wantDelivered(t, r, 200)
			if r.ServerCPU <= 0 || r.RSSEndKiB <= 0 || r.HWMKiB < r.RSSEndKiB {
				t.Errorf("server figures missing: %+v", r)
			}
		}},
		{"window 1 over direct TLS", []string{"-addr", s.c2sTLS, "-tls", "-scenario", "pipelined", "-n", "20", "-window", "1"}, func(t *testing.T, r result) {
			wantDelivered(t, r, 20)
		}},
		{"senders", []string{"-addr", s.c2s, "-scenario", "senders", "-archive", "-n", "100", "-k", "2"}, func(t *testing.T, r result) {
			wantDelivered(t, r, 100)
		}},
		{"open loop with stream management", []string{"-addr", s.c2s, "-scenario", "senders", "-archive", "-n", "100", "-k", "2", "-rate", "400", "-sm", "-user-prefix", "open"}, func(t *testing.T, r result) {
			wantDelivered(t, r, 100)
			if r.Rate != 400 || !r.SM {
				t.Errorf("rate %v, sm %v; want 400, true", r.Rate, r.SM)
			}
			// 100 messages due over 0.25 s: the run cannot be shorter.
			if r.Seconds < 0.24 {
				t.Errorf("100 messages at 400/s took %.3f s: not on the schedule", r.Seconds)
			}
		}},
		{"rooms", []string{"-addr", s.c2s, "-scenario", "rooms", "-n", "30", "-k", "3", "-window", "4"}, func(t *testing.T, r result) {
			wantDelivered(t, r, 90) // each of 30 messages to 3 occupants
		}},
		{"mam", []string{"-addr", s.c2s, "-scenario", "mam", "-n", "25", "-page", "10", "-user-prefix", "mam"}, func(t *testing.T, r result) {
			if r.Messages != 3 || r.Delivered != 25 || r.Latency.N != 3 {
				t.Errorf("pages %d, results %d, timed %d; want 3, 25, 3", r.Messages, r.Delivered, r.Latency.N)
			}
		}},
		{"upload", []string{"-addr", s.c2s, "-scenario", "upload", "-n", "3", "-k", "2", "-size", "70000"}, func(t *testing.T, r result) {
			if r.Bytes != 3*70000 || r.Latency.N != 3 || r.MBps <= 0 {
				t.Errorf("uploaded %d bytes in %d files (%v MB/s)", r.Bytes, r.Latency.N, r.MBps)
			}
		}},
		{"idle", []string{"-addr", s.c2s, "-scenario", "idle", "-k", "3"}, func(t *testing.T, r result) {
			if r.Messages != 3 || r.RSSEndKiB <= 0 {
				t.Errorf("idle: %+v", r)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := runMain(context.Background(), append(append([]string{}, common...), tc.args...), &out, &errOut)
			if err != nil {
				t.Fatalf("%v\n%s%s", err, out.String(), errOut.String())
			}
			var r result
			if err := json.Unmarshal(out.Bytes(), &r); err != nil {
				t.Fatalf("output %q: %v", out.String(), err)
			}
			if r.Error != "" || r.Seconds <= 0 {
				t.Errorf("result: %+v", r)
			}
			tc.check(t, r)
		})
	}

	// The comparison of two result files prints a ratio for each figure.
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")
	writeJSON(t, a, result{Server: "ours", Scenario: "pipelined", PerSecond: 300, CPUPerMessage: 100})
	writeJSON(t, b, result{Server: "theirs", Scenario: "pipelined", PerSecond: 100, CPUPerMessage: 400})
	var out bytes.Buffer
	if err := runMain(context.Background(), []string{"-compare", a, b}, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"3.00×", "0.25×", "A = ours, B = theirs"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("comparison lacks %q:\n%s", want, out.String())
		}
	}
}

func wantDelivered(t *testing.T, r result, n int64) {
	t.Helper()
	if r.Delivered != n || r.Bounced != 0 || r.Latency.N != int(n) || r.PerSecond <= 0 {
		t.Errorf("delivered %d, bounced %d, timed %d, %v/s; want %d delivered and timed", r.Delivered, r.Bounced, r.Latency.N, r.PerSecond, n)
	}
	if r.Latency.P50us <= 0 || r.Latency.P99us < r.Latency.P50us {
		t.Errorf("latency %+v", r.Latency)
	}
}

func writeJSON(t *testing.T, path string, r result) {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
