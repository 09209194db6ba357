package logredact_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"chatbx.eu/privacy/logredact"
)

// replaceKind names the standard handler a ReplaceAttr test runs through.
type replaceKind struct {
	name string
	new  func(io.Writer, *slog.HandlerOptions) slog.Handler
}

var replaceKinds = []replaceKind{
	{"json", func(w io.Writer, o *slog.HandlerOptions) slog.Handler { return slog.NewJSONHandler(w, o) }},
	{"text", func(w io.Writer, o *slog.HandlerOptions) slog.Handler { return slog.NewTextHandler(w, o) }},
}

// newReplacing returns a Handler (writing its audit records to audit) and
// a handler of kind k writing to out with the Handler's ReplaceAttr.
func newReplacing(k replaceKind, out, audit io.Writer, opts *logredact.Options) (*logredact.Handler, slog.Handler) {
	red := logredact.NewHandler(k.new(audit, nil), opts)
	return red, k.new(out, &slog.HandlerOptions{ReplaceAttr: red.ReplaceAttr})
}

// The addresses of TestHandlerTruncates, in every place, do not survive
// ReplaceAttr in the JSON or the text handler, and come out as the Handler
// writes them.
func TestReplaceAttrTruncates(t *testing.T) {
	opErr := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.ParseIP("192.0.2.55"), Port: 5222}, Err: errors.New("refused")}
	args := []any{
		"str", "192.0.2.1",
		"hostport", "198.51.100.7:5222",
		"v6port", "[2001:db8:1:2::3]:5223",
		slog.Any("addr", netip.MustParseAddr("192.0.2.2")),
		slog.Any("addrport", netip.MustParseAddrPort("[2001:db8:1:2::4]:443")),
		slog.Any("pfx", netip.MustParsePrefix("198.51.100.128/25")),
		slog.Any("netip", net.ParseIP("198.51.100.200")),
		slog.Any("tcp", &net.TCPAddr{IP: net.ParseIP("192.0.2.3"), Port: 1234}),
		slog.Any("udp", &net.UDPAddr{IP: net.ParseIP("2001:db8:9:8::7"), Port: 53}),
		slog.Any("ipaddr", &net.IPAddr{IP: net.ParseIP("192.0.2.4")}),
		slog.Any("generic", unixish{}),
		slog.Any("err", opErr),
		slog.Any("stringer", stringer{}),
		slog.Any("valuer", valuer{"192.0.2.5"}),
		slog.Any("list", []string{"a", "192.0.2.8"}),
		slog.Any("ips", []netip.Addr{netip.MustParseAddr("192.0.2.9")}),
		slog.Group("g", slog.String("inner", "192.0.2.6"), slog.Group("h", slog.Any("deep", netip.MustParseAddr("2001:db8:7:6:5::1")),
			slog.Any("v", valuer{"[2001:db8:4:3::2]:80"}))),
		"198.51.100.44", "key is an address",
		"n", 42, "plain", "hello",
	}
	leaks := []string{"192.0.2.99", "192.0.2.1 ", "192.0.2.1\"", "198.51.100.7", "2001:db8:1:2::3", "192.0.2.2", "2001:db8:1:2::4",
		"198.51.100.200", "198.51.100.128", "192.0.2.3", "2001:db8:9:8::7", "192.0.2.4", "2001:db8:aa:bb::1", "192.0.2.55",
		"198.51.100.23", "2001:db8:5:6::1", "192.0.2.5", "192.0.2.6", "192.0.2.8", "192.0.2.9", "2001:db8:7:6:5::1",
		"2001:db8:4:3::2", "198.51.100.44"}
	for _, k := range replaceKinds {
		t.Run(k.name, func(t *testing.T) {
			var out, viaHandler bytes.Buffer
			_, h := newReplacing(k, &out, io.Discard, nil)
			r := slog.NewRecord(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), slog.LevelInfo, "connection from 192.0.2.99 accepted", 0)
			r.Add(args...)
			if err := h.Handle(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			for _, leak := range leaks {
				if strings.Contains(out.String(), leak) {
					t.Errorf("output holds %s: %s", leak, out.String())
				}
			}
			ref := logredact.NewHandler(k.new(&viaHandler, nil), nil)
			if err := ref.Handle(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			if out.String() != viaHandler.String() {
				t.Errorf("ReplaceAttr and Handler differ:\n%s%s", out.String(), viaHandler.String())
			}
		})
	}
}

// parityCase is one way of logging, run through a Handler and through
// ReplaceAttr.
type parityCase struct {
	name string
	log  func(*slog.Logger)
}

var parityCases = []parityCase{
	{"no address", func(l *slog.Logger) {
		l.Info("user logged in", "user", "alice@example.org", "n", 3, "at", "12:30:45", "v", "go1.26.8")
	}},
	{"connection", func(l *slog.Logger) {
		l.Info("c2s connection", "user", "alice@example.org", "remote", "198.51.100.77:53211", "tls", true)
	}},
	{"typed", func(l *slog.Logger) {
		l.Warn("typed", slog.Any("ap", netip.MustParseAddrPort("[2001:db8:1:2::77]:53211")),
			slog.Any("ip", net.ParseIP("192.0.2.7")), slog.Any("tcp", &net.TCPAddr{IP: net.ParseIP("192.0.2.8"), Port: 5222}),
			slog.Any("nilTCP", (*net.TCPAddr)(nil)), slog.Any("zero", netip.Addr{}))
	}},
	{"message and error", func(l *slog.Logger) {
		l.Error("dial 192.0.2.10:5269 failed", "err", errors.New("read tcp 192.0.2.1:5222->[2001:db8::9]:4000: reset"))
	}},
	{"groups and valuers", func(l *slog.Logger) {
		l.Info("g", slog.Group("conn", "remote", valuer{"fe80::1:2%eth0"}, slog.Group("inner", "v4mapped", "::ffff:192.0.2.200")))
	}},
	{"bound attributes", func(l *slog.Logger) {
		l.With("client", "192.0.2.77:4000").WithGroup("conn").With(slog.Any("ip", netip.MustParseAddr("2001:db8:1:2::9"))).
			Info("hi", "peer", "198.51.100.5")
	}},
	{"address as key", func(l *slog.Logger) {
		l.Info("counters", "198.51.100.9", 12, "2001:db8:9::1", 3)
	}},
	{"chain and text", func(l *slog.Logger) {
		l.Debug("1.2.3.4.5.6 and 2002:c000:0201::1 via 192.0.2.44", "stack", "at 10.0.0.1 and [2001:db8:a:b::c]")
	}},
	{"level above error", func(l *slog.Logger) { l.Log(context.Background(), slog.LevelError+2, "x", "ip", "192.0.2.1") }},
}

// Handler and ReplaceAttr write the same bytes for the same records, in
// every mode, in both standard handlers, inside and outside a window.
func TestReplaceAttrParity(t *testing.T) {
	noTimeOpts := func(extra func([]string, slog.Attr) slog.Attr) *slog.HandlerOptions {
		return &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: logredact.ChainReplaceAttr(extra, noTime)}
	}
	modes := []logredact.Mode{logredact.Truncate, logredact.Pseudonymize, logredact.Drop}
	for _, k := range replaceKinds {
		for _, mode := range modes {
			for _, window := range []bool{false, true} {
				clk := newClock()
				var viaHandler, viaReplace bytes.Buffer
				red := logredact.NewHandler(k.new(&viaHandler, noTimeOpts(nil)), &logredact.Options{Mode: mode, Now: clk.Now})
				repl := k.new(&viaReplace, noTimeOpts(red.ReplaceAttr))
				if window {
					if err := red.Reveal(time.Hour, "parity"); err != nil {
						t.Fatal(err)
					}
					viaHandler.Reset()
				}
				for _, c := range parityCases {
					viaHandler.Reset()
					viaReplace.Reset()
					c.log(slog.New(red))
					c.log(slog.New(repl))
					if viaHandler.String() != viaReplace.String() {
						t.Errorf("%s, %v, window %v, %s:\nHandler     %sReplaceAttr %s", k.name, mode, window, c.name, viaHandler.String(), viaReplace.String())
					}
					if window != strings.Contains(viaReplace.String(), "ip_revealed") {
						t.Errorf("%s, %v, window %v, %s: marker wrong: %s", k.name, mode, window, c.name, viaReplace.String())
					}
				}
			}
		}
	}
}

// What ReplaceAttr cannot do that the Handler does, as its documentation
// states. Should slog change, this test fails and the documentation must
// follow.
func TestReplaceAttrDiffersFromHandler(t *testing.T) {
	clk := newClock()
	var out bytes.Buffer
	red, h := newReplacing(replaceKinds[0], &out, io.Discard, &logredact.Options{Now: clk.Now})
	logger := slog.New(h)

	// Group names are not passed to ReplaceAttr.
	logger.WithGroup("192.0.2.1").Info("x", slog.Group("198.51.100.2", "k", "v"))
	if !strings.Contains(out.String(), `"192.0.2.1":{"198.51.100.2":{"k":"v"}}`) {
		t.Errorf("group names: %s", out.String())
	}
	// Attributes bound with With inside a window stay in full after it.
	out.Reset()
	if err := red.Reveal(time.Hour, "gap"); err != nil {
		t.Fatal(err)
	}
	bound := logger.With("bound", "192.0.2.3")
	clk.Advance(2 * time.Hour)
	bound.Info("after", "own", "192.0.2.4")
	m := parseLines(t, &out)[0]
	if m["bound"] != "192.0.2.3" || m["own"] != "192.0.2.0" {
		t.Errorf("bound in a window: %v", m)
	}
	if _, ok := m["ip_revealed"]; ok {
		t.Errorf("marker after the window: %v", m)
	}
}

// The window through ReplaceAttr: full addresses and the marker while it
// is open, audit records to the wrapped handler, anonymized again once the
// injected clock passes its end, without Conceal; in both handlers.
func TestReplaceAttrWindowClosesByItself(t *testing.T) {
	for _, k := range replaceKinds {
		t.Run(k.name, func(t *testing.T) {
			clk := newClock()
			var out, audit bytes.Buffer
			red, h := newReplacing(k, &out, &audit, &logredact.Options{Now: clk.Now})
			logger := slog.New(h)
			if err := red.Reveal(time.Hour, "ticket 42"); err != nil {
				t.Fatal(err)
			}
			logger.Info("during 192.0.2.1", "ip", "192.0.2.1", slog.Any("ap", netip.MustParseAddrPort("[2001:db8:1:2::3]:80")))
			clk.Advance(time.Hour) // exactly at the end: closed
			logger.Info("after 192.0.2.1", "ip", "192.0.2.1", slog.Any("ap", netip.MustParseAddrPort("[2001:db8:1:2::3]:80")))

			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if len(lines) != 2 {
				t.Fatalf("records: %q", out.String())
			}
			during, after := lines[0], lines[1]
			for _, s := range []string{"during 192.0.2.1", "192.0.2.1", "[2001:db8:1:2::3]:80", "ip_revealed"} {
				if !strings.Contains(during, s) {
					t.Errorf("during the window, no %s: %s", s, during)
				}
			}
			for _, s := range []string{"192.0.2.1", "2001:db8:1:2::3", "ip_revealed"} {
				if strings.Contains(after, s) {
					t.Errorf("after the window, %s: %s", s, after)
				}
			}
			if !strings.Contains(after, "after 192.0.2.0") || !strings.Contains(after, "[2001:db8:1::]:80") {
				t.Errorf("after the window: %s", after)
			}
			a := audit.String()
			if strings.Count(a, "ticket 42") != 2 || !strings.Contains(a, "window opened") || !strings.Contains(a, "window closed") {
				t.Errorf("audit records: %s", a)
			}
			if _, open := red.Revealing(); open {
				t.Error("Revealing() = true after the window")
			}
		})
	}
}

// A record without an address costs no allocation through ReplaceAttr that
// a JSONHandler with a ReplaceAttr that changes nothing does not cost. (Any
// ReplaceAttr function costs slog itself one allocation per record, which
// the bare JSONHandler does not make; the test logs that figure.)
func TestReplaceAttrNoIPNoExtraAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	red := logredact.NewHandler(slog.NewJSONHandler(io.Discard, nil), &logredact.Options{Mode: logredact.Pseudonymize})
	bare := slog.NewJSONHandler(io.Discard, nil)
	identity := slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr { return a }})
	repl := slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{ReplaceAttr: red.ReplaceAttr})
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "user logged in", 0)
	r.AddAttrs(slog.String("user", "alice@example.org"), slog.Int("n", 3), slog.String("at", "12:30:45"),
		slog.Duration("d", time.Second), slog.Group("g", slog.String("v", "go1.26.8")), slog.Any("err", errors.New("no such user")))
	ctx := context.Background()
	measure := func(h slog.Handler) float64 {
		return testing.AllocsPerRun(200, func() { _ = h.Handle(ctx, r) })
	}
	b, i, got := measure(bare), measure(identity), measure(repl)
	if got > i {
		t.Errorf("record without IP: %v allocs with ReplaceAttr, %v with an identity ReplaceAttr", got, i)
	}
	t.Logf("allocations per record: bare JSONHandler %v, identity ReplaceAttr %v, Handler.ReplaceAttr %v", b, i, got)
}

// The property of the Handler, through ReplaceAttr: for any text holding
// addresses, in the message, in attributes, in groups and LogValuers, and
// for the typed addresses, no input address appears in the output except
// anonymized, in every mode and both standard handlers.
func TestReplaceAttrPropertyNoAddressSurvives(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 17))
	modes := []logredact.Mode{logredact.Truncate, logredact.Pseudonymize, logredact.Drop}
	for iter := range 150 {
		msg, ins := randomText(rng)
		val, ins2 := randomText(rng)
		ins = append(ins, ins2...)
		typed := randomAddrText(rng).addr.WithZone("")
		ins = append(ins, inserted{addr: typed})
		port := 1 + rng.IntN(65535)
		attrs := []any{
			"v", val,
			slog.Group("g", slog.Group("h", "w", valuer{val})),
			slog.Any("addr", typed),
			slog.Any("ap", netip.AddrPortFrom(typed, uint16(port))),
			slog.Any("ip", net.IP(typed.AsSlice())),
			slog.Any("tcp", &net.TCPAddr{IP: typed.AsSlice(), Port: port}),
		}
		for _, k := range replaceKinds {
			for _, mode := range modes {
				var out bytes.Buffer
				_, h := newReplacing(k, &out, io.Discard, &logredact.Options{Mode: mode})
				slog.New(h).Info(msg, attrs...)
				text := out.String()
				if k.name == "json" {
					// Compare with the decoded strings, not their escapes.
					var m map[string]any
					if err := json.Unmarshal(out.Bytes(), &m); err != nil {
						t.Fatalf("bad JSON %q: %v", out.Bytes(), err)
					}
					text = fmt.Sprint(m)
				}
				for _, in := range ins {
					if anonymizedIsSame(in.addr, mode) {
						continue
					}
					if f := leaks(text, in); len(f) > 0 {
						t.Fatalf("iteration %d, %s, %v: %v of %q survived in\n%s", iter, k.name, mode, f, in.text, text)
					}
				}
			}
		}
	}
}

// ChainReplaceAttr calls the functions in order, skips nil ones, and stops
// at a group or an empty attribute; a user's function after
// Handler.ReplaceAttr sees anonymized values, and the window's marker
// survives it renaming the message key.
func TestChainReplaceAttr(t *testing.T) {
	clk := newClock()
	var seen []string
	theirs := func(groups []string, a slog.Attr) slog.Attr {
		seen = append(seen, a.Key+"="+a.Value.String())
		if a.Key == slog.LevelKey && len(groups) == 0 {
			// As the slog documentation does it.
			a.Value = slog.StringValue("L-" + a.Value.Any().(slog.Level).String())
		}
		switch {
		case a.Key == slog.TimeKey && len(groups) == 0:
			return slog.Attr{}
		case a.Key == slog.MessageKey && len(groups) == 0:
			a.Key = "message"
		}
		return a
	}
	red := logredact.NewHandler(slog.NewJSONHandler(io.Discard, nil), &logredact.Options{Now: clk.Now})
	var out bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{ReplaceAttr: logredact.ChainReplaceAttr(nil, red.ReplaceAttr, theirs)}))
	logger.Info("from 192.0.2.1", "ip", "192.0.2.2")
	want := `{"level":"L-INFO","message":"from 192.0.2.0","ip":"192.0.2.0"}` + "\n"
	if out.String() != want {
		t.Errorf("got  %swant %s", out.String(), want)
	}
	for _, s := range seen {
		if strings.Contains(s, "192.0.2.1") || strings.Contains(s, "192.0.2.2") {
			t.Errorf("the user's function saw %s", s)
		}
	}
	if err := red.Reveal(time.Hour, "chain"); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	logger.Info("from 192.0.2.1", "ip", "192.0.2.2")
	want = `{"level":"L-INFO","message":"from 192.0.2.1","ip_revealed":true,"ip":"192.0.2.2"}` + "\n"
	if out.String() != want {
		t.Errorf("in a window, got  %swant %s", out.String(), want)
	}

	// A Level left standing at the end is written as its string.
	last := logredact.ChainReplaceAttr(red.ReplaceAttr, func(_ []string, a slog.Attr) slog.Attr { return a })
	if a := last(nil, slog.Any(slog.LevelKey, slog.LevelWarn+1)); a.Value.Kind() != slog.KindString || a.Value.String() != "WARN+1" {
		t.Errorf("level at the end of the chain: %v", a)
	}

	// An empty attribute ends the chain.
	called := false
	drop := logredact.ChainReplaceAttr(func([]string, slog.Attr) slog.Attr { return slog.Attr{} },
		func(_ []string, a slog.Attr) slog.Attr { called = true; return a })
	if a := drop(nil, slog.String("k", "v")); !a.Equal(slog.Attr{}) || called {
		t.Errorf("after an empty attribute: %v, called %v", a, called)
	}
}

// A runnable use: the JSONHandler's ReplaceAttr anonymizes, with no
// wrapping handler.
func ExampleHandler_ReplaceAttr() {
	// Audit records of maintenance windows go to the handler red wraps.
	red := logredact.NewHandler(slog.NewJSONHandler(io.Discard, nil), nil)
	logger := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: logredact.ChainReplaceAttr(red.ReplaceAttr, noTime),
	}))
	logger.Info("c2s connection", "user", "alice@example.org", "remote", "198.51.100.77:53211")
	logger.Info("c2s connection", "user", "bob@example.org", "remote", netip.MustParseAddrPort("[2001:db8:1:2::3]:40000"))
	// Output:
	// {"level":"INFO","msg":"c2s connection","user":"alice@example.org","remote":"198.51.100.0:53211"}
	// {"level":"INFO","msg":"c2s connection","user":"bob@example.org","remote":"[2001:db8:1::]:40000"}
}

// Records logged while windows open and close from another goroutine, with
// the audit records going through the very handler that calls ReplaceAttr
// (so that one handler serializes all writes): no deadlock, no race (run
// with -race), every window's start and end on record, and nothing in full
// once the last window is closed.
func TestReplaceAttrConcurrentReveal(t *testing.T) {
	clk := newClock()
	var mu sync.Mutex
	var out bytes.Buffer
	w := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return out.Write(p)
	})
	var red *logredact.Handler
	json := slog.NewJSONHandler(w, &slog.HandlerOptions{ReplaceAttr: func(g []string, a slog.Attr) slog.Attr { return red.ReplaceAttr(g, a) }})
	red = logredact.NewHandler(json, &logredact.Options{Now: clk.Now, Mode: logredact.Pseudonymize})
	log := slog.New(json)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				log.Info("x", "ip", fmt.Sprintf("198.51.100.%d", (g*50+i)%250+1))
			}
		}()
	}
	for i := range 20 {
		_ = red.Reveal(time.Minute, "race test")
		clk.Advance(30 * time.Second)
		if i%2 == 0 {
			_ = red.Conceal()
		} else {
			clk.Advance(time.Minute) // expires; a record or the next Reveal ends it
		}
		clk.Advance(12 * time.Hour)
	}
	wg.Wait()
	_ = red.Conceal()
	log.Info("last", "ip", "198.51.100.1")
	mu.Lock()
	defer mu.Unlock()
	lines := parseLines(t, &out)
	starts, ends := 0, 0
	for _, m := range lines {
		switch m["msg"] {
		case logredact.AuditRevealStart:
			starts++
		case logredact.AuditRevealEnd:
			ends++
		}
	}
	if starts != 20 || ends != 20 {
		t.Errorf("%d window starts and %d ends on record, want 20 each", starts, ends)
	}
	if last := lines[len(lines)-1]; last["msg"] != "last" || strings.HasPrefix(last["ip"].(string), "198.51.100.") {
		t.Errorf("after the last window: %v", last)
	}
}
