package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"chatbx.eu/privacy/account"
	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
)

// The load test's shape. Honest clients come from 127.0.0.2–127.0.0.101
// (5 sessions per address, at most loadDialers negotiating at once in
// all), hostile connections from 127.0.1.1–127.0.1.20 (10 per address), so
// that a per-address cap on negotiating connections sees them apart.
const (
	loadSessions       = 500
	loadMessages       = 10 // sent by each session
	loadHonestAddrs    = 100
	loadHostile        = 200
	loadHostilePerAddr = 10
	loadDialers        = 8

	// loadRSSBound bounds the process's peak RSS (VmHWM), server and the
	// 500 clients together; see TestLoad.
	loadRSSBound = 400 << 20
	// loadHeapBound bounds the live heap after a collection with every
	// session and hostile connection still open.
	loadHeapBound = 96 << 20
	// loadGuard ends a hung run; it is not the time budget (the run costs
	// about 24 s of CPU, 12–15 s on two idle cores, most of it the logins'
	// Argon2id; see the README).
	loadGuard = 3 * time.Minute
)

// TestLoad: 500 authenticated sessions exchange 5,000 messages while 200
// hostile connections hold negotiation open (TCP connect then nothing, on
// both ports; TLS handshake then nothing; stream header then nothing).
// Every honest message is delivered, exactly once and from the right
// sender, and the live heap and the process's peak RSS stay under
// loadHeapBound and loadRSSBound.
//
// The bounds. Measured (README, "Load"): a live heap of about 57 KiB per
// honest session and about 30 KiB per hostile connection, client and
// server sides together, so about 40 MiB with everything open and 50 MiB
// after the messages; a peak RSS of 230–270 MiB, most of it memory the Go
// runtime keeps after the 500 Argon2id verifications of the logins (19 MiB
// each with FastHashing, two at a time) rather than live data. The live
// heap is held to 96 MiB, twice the measure: a leak of 10 KiB per message
// or 100 KiB per connection breaks it. The peak RSS is held to 400 MiB:
// the garbage collector's slack (GOGC=100 lets the heap grow to twice the
// live data between collections) and the memory the runtime has not yet
// returned to the system make RSS vary by tens of MiB between runs.
//
// Run it with `go test -run Load ./examples/server/`; it is skipped with
// -short and under the race detector (see raceEnabled).
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test: skipped with -short")
	}
	if raceEnabled {
		t.Skip("load test: skipped under the race detector, whose overhead voids the time budget and the memory bound")
	}
	ctx, cancel := context.WithTimeout(context.Background(), loadGuard)
	defer cancel()
	began := time.Now()
	ts := startTestServer(t)
	rssStart, heapStart := procStatusKiB(t, "VmRSS"), liveHeap()

	const password = "load test password"
	registerLoadAccounts(ctx, t, ts, loadSessions, password)
	tRegistered := time.Now()

	hostile := openHostile(ctx, t, ts)
	defer func() {
		for _, c := range hostile {
			c.Close()
		}
	}()
	tHostile := time.Now()
	heapHostile := liveHeap()

	var (
		delivered atomic.Int64
		done      = make(chan struct{})
		doneOnce  sync.Once
	)
	total := int64(loadSessions * loadMessages)
	received := func() {
		if delivered.Add(1) == total {
			doneOnce.Do(func() { close(done) })
		}
	}
	clients := make([]*loadClient, loadSessions)
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		dialErr error
	)
	for range loadDialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= loadSessions {
					return
				}
				laddr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%loadHonestAddrs))}
				c, err := dialLoadClient(ctx, ts, fmt.Sprintf("load%d", i), password, laddr, received)
				if err != nil {
					errOnce.Do(func() { dialErr = fmt.Errorf("session %d from %s: %w", i, laddr.IP, err) })
					return
				}
				clients[i] = c
			}
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.close()
			}
		}
	}()
	if dialErr != nil {
		t.Fatalf("login: %v", dialErr)
	}
	tBound := time.Now()
	rssBound, heapBound := procStatusKiB(t, "VmRSS"), liveHeap()

	// Session i sends to user i+1 (a bare JID: every resource, here one).
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			to := fmt.Sprintf("load%d@localhost", (i+1)%loadSessions)
			for m := range loadMessages {
				if err := c.send(ctx, to, fmt.Sprintf("%d-%d", i, m)); err != nil {
					errOnce.Do(func() { dialErr = fmt.Errorf("session %d send: %w", i, err) })
					return
				}
			}
		}()
	}
	wg.Wait()
	if dialErr != nil {
		t.Fatal(dialErr)
	}
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("delivered %d of %d messages before the guard ran out", delivered.Load(), total)
	}
	tDelivered := time.Now()
	for i, c := range clients {
		if got, bad := c.got.Load(), c.bad.Load(); got != loadMessages || bad != 0 {
			t.Errorf("session %d: %d messages from its sender, %d other stanzas", i, got, bad)
		}
	}
	open := 0
	for _, c := range hostile {
		if stillOpen(c) {
			open++
		}
	}
	heapEnd := liveHeap()
	peak := procStatusKiB(t, "VmHWM")
	t.Logf("accounts %v, hostile connections %v (%d of %d still open at the end), %d logins %v, %d messages delivered %v; total %v",
		tRegistered.Sub(began).Round(time.Millisecond), tHostile.Sub(tRegistered).Round(time.Millisecond),
		open, len(hostile), loadSessions, tBound.Sub(tHostile).Round(time.Millisecond),
		total, tDelivered.Sub(tBound).Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
	t.Logf("CPU time of the process (server and clients): %v", cpuTime(t).Round(time.Millisecond))
	t.Logf("RSS: %d MiB at start, %d MiB with every session bound, %d MiB at the end, peak %d MiB (bound %d MiB)",
		rssStart>>10, rssBound>>10, procStatusKiB(t, "VmRSS")>>10, peak>>10, loadRSSBound>>20)
	t.Logf("live heap: %d MiB at start, %d KiB a hostile connection (client and server), %d MiB with every session bound (%d KiB a session, client and server), %d MiB at the end (bound %d MiB); %d goroutines",
		heapStart>>20, (heapHostile-heapStart)/loadHostile>>10, heapBound>>20, (heapBound-heapHostile)/loadSessions>>10,
		heapEnd>>20, loadHeapBound>>20, runtime.NumGoroutine())
	if peak<<10 > loadRSSBound {
		t.Errorf("peak RSS %d MiB over the bound of %d MiB", peak>>10, loadRSSBound>>20)
	}
	if heapEnd > loadHeapBound {
		t.Errorf("live heap %d MiB over the bound of %d MiB", heapEnd>>20, loadHeapBound>>20)
	}
}

// registerLoadAccounts creates n accounts load0…load(n-1) with one
// password. The first goes through account.Manager.Register; the others
// reuse its record's hash through the account store, which spares n-1
// Argon2id computations (the logins still verify each one).
func registerLoadAccounts(ctx context.Context, t *testing.T, ts *testServer, n int, password string) {
	t.Helper()
	if err := ts.manager.Register(ctx, exemptKey, "load0", password); err != nil {
		t.Fatal(err)
	}
	st := accountStore(t, ts)
	rec, err := st.Get(ctx, "load0")
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < n; i++ {
		r := account.Record{Username: fmt.Sprintf("load%d", i), Hash: rec.Hash, Created: rec.Created}
		if err := st.Create(ctx, r, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// accountStore is the account store of the running server (accounts.db),
// for tests that write accounts without the Manager.
func accountStore(t testing.TB, ts *testServer) *account.BoltStore {
	t.Helper()
	for _, d := range ts.dbs {
		if d.name == "accounts.db" {
			st, err := account.NewBoltStore(d.db)
			if err != nil {
				t.Fatal(err)
			}
			return st
		}
	}
	t.Fatal("no accounts.db")
	return nil
}

// openHostile opens the hostile connections: a quarter connect to the
// STARTTLS port and send nothing, a quarter connect to the direct TLS port
// and send nothing, a quarter finish the TLS handshake there and send
// nothing, a quarter send a stream header on the STARTTLS port and nothing
// after it. A connection the server refuses is counted, not an error.
func openHostile(ctx context.Context, t *testing.T, ts *testServer) []net.Conn {
	t.Helper()
	var out []net.Conn
	refused := 0
	for i := range loadHostile {
		d := net.Dialer{
			LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(1+i/loadHostilePerAddr))},
			Timeout:   testTimeout,
		}
		addr := ts.C2S
		if k := i % 4; k == 1 || k == 2 {
			addr = ts.C2STLS
		}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			t.Fatalf("hostile connection %d: %v", i, err)
		}
		switch i % 4 {
		case 2:
			tc := tls.Client(conn, ts.TLSConfig.Clone())
			hctx, cancel := context.WithTimeout(ctx, testTimeout)
			err = tc.HandshakeContext(hctx)
			cancel()
			conn = tc
		case 3:
			_, err = fmt.Fprintf(conn, `<?xml version='1.0'?><stream:stream to='%s' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`, ts.Domain)
		}
		if err != nil {
			refused++
		}
		out = append(out, conn)
	}
	if refused > 0 {
		t.Logf("%d hostile connections refused by the server", refused)
	}
	return out
}

// stillOpen reports whether the server has not closed c.
func stillOpen(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
	var buf [4096]byte
	for {
		_, err := c.Read(buf[:])
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return true
		}
		if err != nil {
			return false
		}
	}
}

// loadClient is a bound mellium client session counting the messages it
// receives from its one sender.
type loadClient struct {
	s      *xmpp.Session
	conn   net.Conn
	from   string // bare JID of the expected sender
	got    atomic.Int64
	bad    atomic.Int64
	served chan error
}

// dialLoadClient logs user in from laddr over STARTTLS and serves its
// stream, calling received for each message from the expected sender.
func dialLoadClient(ctx context.Context, ts *testServer, user, password string, laddr net.Addr, received func()) (*loadClient, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(user, "load"))
	if err != nil {
		return nil, err
	}
	origin, err := jid.New(user, ts.Domain, "")
	if err != nil {
		return nil, err
	}
	d := net.Dialer{LocalAddr: laddr, Timeout: testTimeout}
	conn, err := d.DialContext(ctx, "tcp", ts.C2S)
	if err != nil {
		return nil, err
	}
	nctx, cancel := context.WithTimeout(ctx, testTimeout)
	defer cancel()
	s, err := xmpp.NewClientSession(nctx, origin, conn,
		xmpp.StartTLS(ts.TLSConfig.Clone()),
		xmpp.SASL("", password, sasl.Plain),
		xmpp.BindResource(),
	)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if s.LocalAddr().Resourcepart() == "" {
		conn.Close()
		return nil, errors.New("resource binding refused")
	}
	c := &loadClient{
		s:      s,
		conn:   conn,
		from:   fmt.Sprintf("load%d@%s/", (n+loadSessions-1)%loadSessions, ts.Domain),
		served: make(chan error, 1),
	}
	go func() {
		c.served <- s.Serve(xmpp.HandlerFunc(func(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			e, err := readElement(t, *start)
			if err != nil {
				return err
			}
			if e.start.Name.Local == "message" && e.attr("type") == "chat" && strings.HasPrefix(e.attr("from"), c.from) {
				c.got.Add(1)
				received()
			} else {
				c.bad.Add(1)
			}
			return nil
		}))
	}()
	return c, nil
}

// send sends one chat message.
func (c *loadClient) send(ctx context.Context, to, text string) error {
	return writeElements(c.s, clientXML(`<message type="chat" to="`+to+`"><body>`+text+`</body></message>`)) // not Send: see writeElements
}

// close ends the stream and waits for Serve to return.
func (c *loadClient) close() {
	_ = c.s.Close()
	_ = c.conn.Close()
	<-c.served
}

// cpuTime returns the user and system CPU time of the process so far: a
// figure that, unlike the wall-clock time, does not depend on what else
// the machine runs.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// liveHeap collects garbage and returns the heap in use, in bytes.
func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

// procStatusKiB returns a field of /proc/self/status in KiB (VmRSS: the
// resident set now; VmHWM: its peak).
func procStatusKiB(t *testing.T, field string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("%s: %v", field, err)
			}
			return kb
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}
