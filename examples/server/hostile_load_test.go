package main

import (
	"chatbx.eu/privacy/account"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fastLogins lets every user "uNNN" in with the password "pw-uNNN"
// without hashing (Config.authenticate): the load test measures the stream
// layer, not Argon2id. The accounts must exist (createAccounts).
func fastLogins(c *Config) {
	c.authenticate = func(_ context.Context, _, user, password string) error {
		if strings.HasPrefix(user, "u") && password == "pw-"+user {
			return nil
		}
		return account.ErrAuth
	}
}

// createAccounts writes accounts straight into the account store, without
// a password hash: only fastLogins lets them in.
func createAccounts(t testing.TB, ts *testServer, names ...string) {
	t.Helper()
	st := accountStore(t, ts)
	for _, name := range names {
		if err := st.Create(context.Background(), account.Record{Username: name, Hash: "-", Created: time.Now()}, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// vmRSS returns the process's resident set in bytes (Linux), or 0.
func vmRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// TestLoadHostileNegotiation: 500 honest sessions exchange 10 messages
// each while 200 hostile connections from 20 addresses hold negotiation
// open (silent, after the header, after TLS, after the features) and 20
// more flood 100 MiB <auth> elements. Every honest message is delivered,
// in order, and the heap stays bounded. Skipped with -short.
func TestLoadHostileNegotiation(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	ts := startTestServer(t, withConfig(fastLogins))
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heap0, rss0 := ms.HeapInuse, vmRSS()

	// 200 connections hold negotiation open, 10 per address (the cap).
	for i := range 200 {
		ip := fmt.Sprintf("127.0.1.%d", 1+i/10)
		switch i % 4 {
		case 0:
			dialRaw(t, ts.C2S, ip, nil) // silent
		case 1:
			dialRaw(t, ts.C2S, ip, nil).open(t) // after the features
		case 2:
			dialRaw(t, ts.C2STLS, ip, ts.TLSConfig) // after the TLS handshake
		case 3:
			dialRaw(t, ts.C2STLS, ip, ts.TLSConfig).open(t)
		}
	}
	var floods sync.WaitGroup
	for i := range 20 {
		floods.Add(1)
		go func() {
			defer floods.Done()
			c := dialRaw(t, ts.C2STLS, fmt.Sprintf("127.0.2.%d", 1+i), ts.TLSConfig)
			c.open(t)
			done := c.flood(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>`, "AAAA", 100<<20)
			if cond, err := c.readStreamError(); err != nil || cond != "policy-violation" {
				t.Errorf("flood %d: %q %v", i, cond, err)
			}
			c.conn.Close()
			<-done
		}()
	}

	const sessions, perSession = 500, 10
	names := make([]string, sessions)
	for i := range names {
		names[i] = fmt.Sprintf("u%03d", i)
	}
	createAccounts(t, ts, names...)
	clients := make([]*testClient, sessions)
	for i := range clients {
		name := names[i]
		c, err := ts.login(name, "pw-"+name, i%2 == 0)
		if err != nil {
			t.Fatalf("login %s with hostile connections open: %v", name, err)
		}
		t.Cleanup(c.Close)
		clients[i] = c
	}
	var wg sync.WaitGroup
	for i, c := range clients {
		to := clients[i^1] // pairs talk both ways
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range perSession {
				c.Send(t, fmt.Sprintf(`<message to="%s" type="chat"><body>%d</body></message>`, to.JID, n))
			}
		}()
	}
	for _, c := range clients {
		for n := range perSession {
			if m := c.Next(t, isMessage); body(m) != fmt.Sprint(n) {
				t.Fatalf("%s: message %d is %q", c.JID, n, body(m))
			}
		}
	}
	wg.Wait()
	floods.Wait()
	runtime.ReadMemStats(&ms)
	heap := ms.HeapInuse - min(ms.HeapInuse, heap0)
	rss := vmRSS() - min(vmRSS(), rss0)
	t.Logf("%d sessions, %d messages delivered, 220 hostile connections: heap in use +%.0f MiB, RSS +%.0f MiB (client side included)",
		sessions, sessions*perSession, float64(heap)/(1<<20), float64(rss)/(1<<20))
	if heap > 512<<20 {
		t.Errorf("heap in use grew by %d MiB", heap>>20)
	}
}
