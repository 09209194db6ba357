package logredact_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/slogtest"
	"time"

	"chatbx.eu/privacy/logredact"
)

var _ slog.Handler = (*logredact.Handler)(nil)

// clock is a fake clock for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 11, 26, 23, 0, 0, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newJSON returns a Handler over a JSONHandler writing to the returned buffer.
func newJSON(t testing.TB, opts *logredact.Options) (*logredact.Handler, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	return logredact.NewHandler(slog.NewJSONHandler(&buf, nil), opts), &buf
}

func parseLines(t testing.TB, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range bytes.Split(b.Bytes(), []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("bad JSON %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestSlogtest(t *testing.T) {
	var buf bytes.Buffer
	h := logredact.NewHandler(slog.NewJSONHandler(&buf, nil), nil)
	results := func() []map[string]any {
		return parseLines(t, bytes.NewBuffer(buf.Bytes()))
	}
	if err := slogtest.TestHandler(h, results); err != nil {
		t.Fatal(err)
	}
}

// The Handler is a well-behaved slog.Handler in every mode, and while a
// maintenance window is open.
func TestSlogtestRun(t *testing.T) {
	clk := newClock()
	cases := []struct {
		name   string
		opts   logredact.Options
		reveal bool
	}{
		{"truncate", logredact.Options{}, false},
		{"pseudonymize", logredact.Options{Mode: logredact.Pseudonymize}, false},
		{"drop", logredact.Options{Mode: logredact.Drop}, false},
		{"revealed", logredact.Options{Now: clk.Now}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf *bytes.Buffer
			slogtest.Run(t, func(t *testing.T) slog.Handler {
				buf = new(bytes.Buffer)
				h := logredact.NewHandler(slog.NewJSONHandler(buf, nil), &c.opts)
				if c.reveal {
					if err := h.Reveal(time.Hour, "slogtest"); err != nil {
						t.Fatal(err)
					}
					buf.Reset() // drop the audit record
				}
				return h
			}, func(t *testing.T) map[string]any {
				m := parseLines(t, buf)
				if len(m) != 1 {
					t.Fatalf("want 1 record, got %d", len(m))
				}
				if c.reveal && m[0]["ip_revealed"] != true {
					t.Errorf("no marker in %v", m[0])
				}
				return m[0]
			})
		})
	}
}

type valuer struct{ ip string }

func (v valuer) LogValue() slog.Value { return slog.StringValue(v.ip) }

type stringer struct{}

func (stringer) String() string { return "peer 198.51.100.23 via 2001:db8:5:6::1" }

type unixish struct{}

func (unixish) Network() string { return "custom" }
func (unixish) String() string  { return "[2001:db8:aa:bb::1]:5222" }

func TestHandlerTruncates(t *testing.T) {
	h, buf := newJSON(t, nil)
	log := slog.New(h)
	opErr := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.ParseIP("192.0.2.55"), Port: 5222}, Err: errors.New("refused")}
	log.Info("connection from 192.0.2.99 accepted",
		"str", "192.0.2.1",
		"hostport", "198.51.100.7:5222",
		"v6port", "[2001:db8:1:2::3]:5223",
		slog.Any("addr", netip.MustParseAddr("192.0.2.2")),
		slog.Any("addrport", netip.MustParseAddrPort("[2001:db8:1:2::4]:443")),
		slog.Any("netip", net.ParseIP("198.51.100.200")),
		slog.Any("tcp", &net.TCPAddr{IP: net.ParseIP("192.0.2.3"), Port: 1234}),
		slog.Any("udp", &net.UDPAddr{IP: net.ParseIP("2001:db8:9:8::7"), Port: 53}),
		slog.Any("ipaddr", &net.IPAddr{IP: net.ParseIP("192.0.2.4")}),
		slog.Any("generic", unixish{}),
		slog.Any("err", opErr),
		slog.Any("stringer", stringer{}),
		slog.Any("valuer", valuer{"192.0.2.5"}),
		slog.Group("g", slog.String("inner", "192.0.2.6"), slog.Group("h", slog.Any("deep", netip.MustParseAddr("2001:db8:7:6:5::1")))),
		"n", 42, "plain", "hello",
	)
	out := buf.String()
	for _, leak := range []string{"192.0.2.99", "192.0.2.1\"", "198.51.100.7", "2001:db8:1:2::3", "192.0.2.2", "2001:db8:1:2::4",
		"198.51.100.200", "192.0.2.3", "2001:db8:9:8::7", "192.0.2.4", "2001:db8:aa:bb::1", "192.0.2.55", "198.51.100.23",
		"2001:db8:5:6::1", "192.0.2.5", "192.0.2.6", "2001:db8:7:6:5::1"} {
		if strings.Contains(out, leak) {
			t.Errorf("output holds %s: %s", leak, out)
		}
	}
	m := parseLines(t, buf)[0]
	want := map[string]any{
		"msg":      "connection from 192.0.2.0 accepted",
		"str":      "192.0.2.0",
		"hostport": "198.51.100.0:5222",
		"v6port":   "[2001:db8:1::]:5223",
		"addr":     "192.0.2.0",
		"addrport": "[2001:db8:1::]:443",
		"netip":    "198.51.100.0",
		"tcp":      "192.0.2.0:1234",
		"udp":      "[2001:db8:9::]:53",
		"ipaddr":   "192.0.2.0",
		"generic":  "[2001:db8:aa::]:5222",
		"err":      "dial tcp 192.0.2.0:5222: refused",
		"stringer": "peer 198.51.100.0 via 2001:db8:5::",
		"valuer":   "192.0.2.0",
		"plain":    "hello",
	}
	for k, w := range want {
		if m[k] != w {
			t.Errorf("%s = %v, want %v", k, m[k], w)
		}
	}
	if g := m["g"].(map[string]any); g["inner"] != "192.0.2.0" || g["h"].(map[string]any)["deep"] != "2001:db8:7::" {
		t.Errorf("group = %v", g)
	}
	if m["n"] != float64(42) {
		t.Errorf("n = %v", m["n"])
	}
}

func TestHandlerWithAttrsAndGroups(t *testing.T) {
	h, buf := newJSON(t, nil)
	log := slog.New(h).With("client", "192.0.2.77:4000").WithGroup("conn").With(slog.Any("ip", netip.MustParseAddr("2001:db8:1:2::9")))
	log.Info("hi", "peer", "198.51.100.5")
	out := buf.String()
	for _, leak := range []string{"192.0.2.77", "2001:db8:1:2::9", "198.51.100.5"} {
		if strings.Contains(out, leak) {
			t.Errorf("leak %s: %s", leak, out)
		}
	}
	m := parseLines(t, buf)[0]
	if m["client"] != "192.0.2.0:4000" {
		t.Errorf("client = %v", m["client"])
	}
	conn := m["conn"].(map[string]any)
	if conn["ip"] != "2001:db8:1::" || conn["peer"] != "198.51.100.0" {
		t.Errorf("conn = %v", conn)
	}
}

func TestHandlerModes(t *testing.T) {
	clk := newClock()
	tests := []struct {
		name string
		opts logredact.Options
		want func(t *testing.T, got string)
	}{
		{"truncate /16 /32", logredact.Options{IPv4Bits: 16, IPv6Bits: 32}, func(t *testing.T, got string) {
			if got != "192.0.0.0|2001:db8::" {
				t.Errorf("got %s", got)
			}
		}},
		{"drop", logredact.Options{Mode: logredact.Drop}, func(t *testing.T, got string) {
			if got != "[ip]|[ip]" {
				t.Errorf("got %s", got)
			}
		}},
		{"drop custom marker", logredact.Options{Mode: logredact.Drop, Marker: "-"}, func(t *testing.T, got string) {
			if got != "-|-" {
				t.Errorf("got %s", got)
			}
		}},
		{"unknown mode drops", logredact.Options{Mode: logredact.Mode(99)}, func(t *testing.T, got string) {
			if got != "[ip]|[ip]" {
				t.Errorf("got %s", got)
			}
		}},
		{"pseudonymize", logredact.Options{Mode: logredact.Pseudonymize, Now: clk.Now}, func(t *testing.T, got string) {
			if strings.Contains(got, "192.0.2.1") || strings.Contains(got, "2001:db8:1:2::3") {
				t.Errorf("got %s", got)
			}
			parts := strings.Split(got, "|")
			if len(parts) != 2 {
				t.Fatalf("got %s", got)
			}
			if a, err := netip.ParseAddr(parts[0]); err != nil || !a.Is4() {
				t.Errorf("pseudonym %q is not an IPv4 address", parts[0])
			}
			if a, err := netip.ParseAddr(parts[1]); err != nil || !a.Is6() {
				t.Errorf("pseudonym %q is not an IPv6 address", parts[1])
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, buf := newJSON(t, &tt.opts)
			slog.New(h).Info("x", "a", "192.0.2.1", slog.Any("b", netip.MustParseAddr("2001:db8:1:2::3")))
			m := parseLines(t, buf)[0]
			tt.want(t, fmt.Sprintf("%v|%v", m["a"], m["b"]))
		})
	}
}

func TestPseudonymsRotateDaily(t *testing.T) {
	clk := newClock()
	keys := logredact.NewKeyRing(0, clk.Now)
	h, buf := newJSON(t, &logredact.Options{Mode: logredact.Pseudonymize, Keys: keys, Now: clk.Now})
	log := slog.New(h)
	bound := log.With("bound", "192.0.2.1")
	pseudo := func() (string, string) {
		buf.Reset()
		bound.Info("x", "ip", "192.0.2.1", "same24", "192.0.2.200")
		m := parseLines(t, buf)[0]
		if m["ip"] != m["bound"] {
			t.Errorf("WithAttrs pseudonym %v differs from record pseudonym %v", m["bound"], m["ip"])
		}
		return m["ip"].(string), m["same24"].(string)
	}
	a1, b1 := pseudo()
	clk.Advance(30 * time.Minute) // 23:30, same day
	a2, _ := pseudo()
	if a1 != a2 {
		t.Errorf("same day, different pseudonyms: %s, %s", a1, a2)
	}
	p1, _ := netip.MustParseAddr(a1).Prefix(24)
	p2, _ := netip.MustParseAddr(b1).Prefix(24)
	if p1 != p2 {
		t.Errorf("same /24 in, different /24 out: %s %s", a1, b1)
	}
	clk.Advance(time.Hour) // next day (00:30)
	a3, _ := pseudo()
	if a3 == a1 {
		t.Errorf("pseudonym survived the day change: %s", a3)
	}
}

func TestHandlerNoIPNoExtraAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	var sink bytes.Buffer
	bare := slog.NewJSONHandler(&sink, nil)
	wrapped := logredact.NewHandler(slog.NewJSONHandler(&sink, nil), nil)
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "user logged in", 0)
	r.AddAttrs(slog.String("user", "alice@example.org"), slog.Int("n", 3), slog.String("at", "12:30:45"),
		slog.Duration("d", time.Second), slog.Group("g", slog.String("v", "go1.26.8")))
	ctx := context.Background()
	measure := func(h slog.Handler) float64 {
		return testing.AllocsPerRun(200, func() {
			sink.Reset()
			_ = h.Handle(ctx, r)
		})
	}
	base, got := measure(bare), measure(wrapped)
	if got > base {
		t.Errorf("record without IP: %v allocs through Handler, %v through the bare JSONHandler", got, base)
	}
}

func TestHandlerEnabledDelegates(t *testing.T) {
	h := logredact.NewHandler(slog.NewJSONHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelWarn}), nil)
	if h.Enabled(context.Background(), slog.LevelInfo) || !h.Enabled(context.Background(), slog.LevelError) {
		t.Error("Enabled does not follow the wrapped handler")
	}
}

func TestHandlerDropTypedValues(t *testing.T) {
	h, buf := newJSON(t, &logredact.Options{Mode: logredact.Drop})
	slog.New(h).Info("x",
		slog.Any("addr", netip.MustParseAddr("192.0.2.1")),
		slog.Any("ap", netip.MustParseAddrPort("192.0.2.1:80")),
		slog.Any("pfx", netip.MustParsePrefix("192.0.2.0/24")),
		slog.Any("ip", net.ParseIP("2001:db8::1")),
		slog.Any("tcp", &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 5222}),
		slog.Any("udp", &net.UDPAddr{IP: net.ParseIP("192.0.2.1"), Port: 53}),
		slog.Any("ipaddr", &net.IPAddr{IP: net.ParseIP("192.0.2.1")}),
		slog.Any("nilTCP", (*net.TCPAddr)(nil)),
		slog.Any("badIP", net.IP{1, 2, 3}),
	)
	m := parseLines(t, buf)[0]
	want := map[string]any{"addr": "[ip]", "ap": "[ip]:80", "pfx": "[ip]", "ip": "[ip]", "tcp": "[ip]:5222", "udp": "[ip]:53", "ipaddr": "[ip]"}
	for k, w := range want {
		if m[k] != w {
			t.Errorf("%s = %v, want %v", k, m[k], w)
		}
	}
	if strings.Contains(buf.String(), "192.0.2") || strings.Contains(buf.String(), "2001:db8") {
		t.Errorf("leak: %s", buf)
	}
}

// Attributes bound with With while a window is open are shown in full only
// during the window; afterwards the same logger anonymizes them again.
func TestWithAttrsDuringWindowHiddenAfter(t *testing.T) {
	clk := newClock()
	h, buf := newJSON(t, &logredact.Options{Now: clk.Now})
	if err := h.Reveal(time.Hour, "debug"); err != nil {
		t.Fatal(err)
	}
	child := slog.New(h).WithGroup("conn").With("peer", "192.0.2.33")
	child.Info("in")
	clk.Advance(2 * time.Hour)
	child.Info("out")
	lines := parseLines(t, buf)
	var in, out map[string]any
	for _, l := range lines {
		switch l["msg"] {
		case "in":
			in = l
		case "out":
			out = l
		}
	}
	if in["conn"].(map[string]any)["peer"] != "192.0.2.33" {
		t.Errorf("during the window: %v", in)
	}
	if out["conn"].(map[string]any)["peer"] != "192.0.2.0" {
		t.Errorf("after the window: %v", out)
	}
}

// A Handler and a Scrubber sharing a KeyRing give a client the same
// pseudonym on the same day.
func TestSharedKeyRing(t *testing.T) {
	clk := newClock()
	keys := logredact.NewKeyRing(0, clk.Now)
	opts := &logredact.Options{Mode: logredact.Pseudonymize, Keys: keys, Now: clk.Now}
	h, buf := newJSON(t, opts)
	slog.New(h).Info("x", "ip", "198.51.100.20")
	got := scrubAll(t, opts, "from 198.51.100.20\n")
	want := "from " + parseLines(t, buf)[0]["ip"].(string) + "\n"
	if got != want {
		t.Errorf("scrubber %q, handler %q", got, want)
	}
}

// Concurrent logging while windows open and close: run with -race.
func TestHandlerConcurrentReveal(t *testing.T) {
	clk := newClock()
	var mu sync.Mutex
	var out bytes.Buffer
	w := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return out.Write(p)
	})
	h := logredact.NewHandler(slog.NewJSONHandler(w, nil), &logredact.Options{Now: clk.Now, Mode: logredact.Pseudonymize})
	log := slog.New(h).With("bound", "192.0.2.5")
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
	for range 20 {
		_ = h.Reveal(time.Minute, "race test")
		clk.Advance(30 * time.Second)
		_ = h.Conceal()
		clk.Advance(12 * time.Hour)
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for _, m := range parseLines(t, &out) {
		if m["msg"] != "x" {
			continue
		}
		revealed := m["ip_revealed"] == true
		if ip := m["ip"].(string); strings.HasPrefix(ip, "198.51.100.") != revealed {
			t.Fatalf("record %v: revealed=%v", m, revealed)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// Addresses used as keys (a map of per-client counters logged as a group)
// are anonymized too, in records and in WithAttrs.
func TestHandlerAnonymizesKeys(t *testing.T) {
	h, buf := newJSON(t, nil)
	slog.New(h).With("198.51.100.9", 1).WithGroup("192.0.2.99").Info("rate limits",
		slog.Group("clients", slog.Int("192.0.2.10", 3), slog.Int("2001:db8:1:2::5", 1)))
	out := buf.String()
	for _, leak := range []string{"198.51.100.9", "192.0.2.10", "2001:db8:1:2::5", "192.0.2.99"} {
		if strings.Contains(out, leak) {
			t.Errorf("leak %s: %s", leak, out)
		}
	}
	m := parseLines(t, buf)[0]
	if m["198.51.100.0"] != float64(1) {
		t.Errorf("WithAttrs key: %v", m)
	}
	c := m["192.0.2.0"].(map[string]any)["clients"].(map[string]any)
	if c["192.0.2.0"] != float64(3) || c["2001:db8:1::"] != float64(1) {
		t.Errorf("group keys: %v", c)
	}
}

func TestHandlerSlices(t *testing.T) {
	h, buf := newJSON(t, nil)
	slog.New(h).Info("x",
		slog.Any("strs", []string{"ok", "192.0.2.1:80"}),
		slog.Any("ips", []net.IP{net.ParseIP("198.51.100.2")}),
		slog.Any("addrs", []netip.Addr{netip.MustParseAddr("2001:db8:1:2::1")}),
		slog.Any("aps", []netip.AddrPort{netip.MustParseAddrPort("192.0.2.3:5")}),
		slog.Any("clean", []string{"a", "b"}),
	)
	out := buf.String()
	for _, leak := range []string{"192.0.2.1", "198.51.100.2", "2001:db8:1:2::1", "192.0.2.3"} {
		if strings.Contains(out, leak) {
			t.Errorf("leak %s: %s", leak, out)
		}
	}
	m := parseLines(t, buf)[0]
	if fmt.Sprint(m["strs"]) != "[ok 192.0.2.0:80]" || fmt.Sprint(m["clean"]) != "[a b]" || fmt.Sprint(m["aps"]) != "[192.0.2.0:5]" {
		t.Errorf("slices: %v", m)
	}
}

// TestHandlerWholeStringAddresses guards the fast path for a string
// attribute that is one address (the commonest case: slog.String("ip",
// r.RemoteAddr)) in every notation and mode, in records small enough to be
// rebuilt on the stack and in larger ones.
func TestHandlerWholeStringAddresses(t *testing.T) {
	tests := []struct{ in, want string }{
		{"198.51.100.77", "198.51.100.0"},
		{"198.51.100.77:53211", "198.51.100.0:53211"},
		{"198.051.100.077", "198.51.100.0"},
		{"2001:db8:1:2::77", "2001:db8:1::"},
		{"2001:0db8:0001:0002:0000:0000:0000:0077", "2001:db8:1::"},
		{"[2001:db8:1:2::77]:443", "[2001:db8:1::]:443"},
		{"[2001:db8:1:2::77]", "[2001:db8:1::]"},
		{"fe80::1:2:3:77%eth0", "fe80::%eth0"},
		{"[fe80::1:2:3:77%eth0]:5222", "[fe80::%eth0]:5222"},
		{"::ffff:198.51.100.77", "::ffff:198.51.100.0"},
		{"[::ffff:198.51.100.77]:5222", "[::ffff:198.51.100.0]:5222"},
		{"::ffff:198.051.100.077", "::ffff:198.51.100.0"},
		{"2001:db8:1:2:3:4:198.51.100.77", "2001:db8:1::"},
		{"2002:c633:644d::1", "2002:c633:6400::"}, // 6to4 of 198.51.100.77
		// Not one address: the general scan.
		{"fe80::1:2:3:77%198.51.100.77", "fe80::%198.51.100.0"},
		{"198.51.100.77:5:6", "198.51.100.0:5:6"},
	}
	// None of these may survive: the host part of the address in any of
	// its spellings (the zero time leaves no digits of a timestamp).
	leaks := []string{"77", "1:2", "c633:644d", "644d"}
	pseudoLeaks := []string{"198.51.100.77", "198.051.100.077", "2001:db8:1:2", "c633:644d"}
	modes := []logredact.Mode{logredact.Truncate, logredact.Pseudonymize, logredact.Drop}
	for _, mode := range modes {
		for _, many := range []bool{false, true} {
			h, buf := newJSON(t, &logredact.Options{Mode: mode})
			for _, tt := range tests {
				buf.Reset()
				r := slog.NewRecord(time.Time{}, slog.LevelInfo, "conn", 0)
				r.AddAttrs(slog.String("user", "alice@example.org"), slog.String("ip", tt.in))
				if many {
					for i := range 9 {
						r.AddAttrs(slog.String(fmt.Sprint("k", i), tt.in))
					}
				}
				if err := h.Handle(context.Background(), r); err != nil {
					t.Fatal(err)
				}
				m := parseLines(t, buf)[0]
				got, _ := m["ip"].(string)
				if mode == logredact.Truncate && got != tt.want {
					t.Errorf("%v, %d attrs: %q became %q, want %q", mode, r.NumAttrs(), tt.in, got, tt.want)
				}
				if got == tt.in {
					t.Errorf("%v: %q passed unchanged", mode, tt.in)
				}
				if mode == logredact.Drop && !strings.Contains(got, "[ip]") {
					t.Errorf("drop: %q became %q, without the marker", tt.in, got)
				}
				for k, v := range m {
					s, _ := v.(string)
					if k == "msg" || k == "level" {
						continue
					}
					if s != got && k != "user" {
						t.Errorf("%v: attribute %s = %q, attribute ip = %q: same input, different output", mode, k, s, got)
					}
					ls := leaks
					if mode == logredact.Pseudonymize {
						ls = pseudoLeaks // a pseudonym may hold any digits
					}
					for _, l := range ls {
						if strings.Contains(s, l) {
							t.Errorf("%v: %q became %q, which holds %q", mode, tt.in, s, l)
						}
					}
				}
			}
		}
	}
}
