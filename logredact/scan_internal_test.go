package logredact

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func scrubForTest(s string, o *Options) string {
	v := newAnonymizer(o).view()
	var buf [8]span
	return string(appendScrubbed(nil, s, scan(s, buf[:0]), v))
}

func TestScanTruncate(t *testing.T) {
	tests := []struct{ in, want string }{
		{"connection from 192.0.2.77 closed", "connection from 192.0.2.0 closed"},
		{"192.0.2.77:5222", "192.0.2.0:5222"},
		{"addr=198.51.100.9.", "addr=198.51.100.0."},
		{"[2001:db8:1:2::7]:443", "[2001:db8:1::]:443"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1::"},
		{"2001:0db8:0001:0002:0003:0004:0005:0006 x", "2001:db8:1:: x"},
		{"from 2001:db8:1::7: refused", "from 2001:db8:1::: refused"},
		{"::ffff:192.0.2.7", "::ffff:192.0.2.0"},
		{"fe80::1234%eth0", "fe80::%eth0"},
		{"2002:c000:0207::1", "2002:c000:200::"},
		{"at 12:30:45 and 23:25:57.123", "at 12:30:45 and 23:25:57.123"},
		{"std::vector and Foo::Bar", "std::vector and Foo::Bar"},
		{"mac 00:1a:2b:3c:4d:5e", "mac 00:1a:2b:3c:4d:5e"},
		{"go1.26.8 and 2026-11-26T23:25:57Z", "go1.26.8 and 2026-11-26T23:25:57Z"},
		{"5.192.0.2.7", "5.192.0.0.0"},
		{"192.000.002.077", "192.0.2.0"},
		{"300.192.0.2.7", "300.192.0.2.0"},
		{"ip:192.0.2.7", "ip:192.0.2.0"},
		// Ambiguous: nine groups; the leftmost eight stand for the run.
		{"abc:2001:db8:1:2:3:4:5:6", "abc:2001:db8::"},
		{"::", "::"},
		{"", ""},
		// A dotted address glued to hex digits in a run with colons: its
		// anonymized text would join them into a new IPv6 address
		// (::a0, ab::1), so the run is masked.
		{"x ::0A000.00.000.000A y", "x [ip] y"},
		{"x 1.2.3.255AB::1 y", "x [ip] y"},
		// Without colons nothing can join: the address alone is anonymized.
		{"x AB000.00.000.001 y", "x AB0.0.0.0 y"},
	}
	// Crafted runs too tangled to search are masked whole, quickly.
	tests = append(tests,
		struct{ in, want string }{"x " + strings.Repeat("1:1.", 300) + " y", "x [ip]. y"},
		struct{ in, want string }{"a " + strings.Repeat(":", 5000), "a [ip]"},
	)
	for _, tt := range tests {
		if got := scrubForTest(tt.in, nil); got != tt.want {
			t.Errorf("scrub(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// scrubBytes runs data through a Scrubber in the given pieces.
func scrubBytes(t *testing.T, pieces ...[]byte) []byte {
	var out bytes.Buffer
	s := NewScrubber(&out, nil)
	for _, p := range pieces {
		if _, err := s.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// FuzzScrub checks, for any text, that the Scrubber does not panic, that
// where the writes are cut does not matter, and that every address the
// scanner can find in the output is already anonymized (a fixed point of
// truncation), so the output holds no address beyond its /24 or /48.
func FuzzScrub(f *testing.F) {
	for _, s := range []string{
		"from 192.0.2.1:5222\n", "[2001:db8::1]:443", "::ffff:1.2.3.4", "fe80::1%eth0",
		"1.2.3.4.5.6", "12:30:45", "std::vector", "1:2:3:4:5:6:7:8:9", "::", ":::::1.2.3.4",
		"2001:db8:1:2:3:4:5:6.", "010.001.002.003", "0:0:0:0:0:0::1:1", "1::0:",
	} {
		f.Add([]byte(s), uint16(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		if len(data) > 4096 {
			return
		}
		whole := scrubBytes(t, data)
		c := int(cut) % (len(data) + 1)
		if split := scrubBytes(t, data[:c], data[c:]); !bytes.Equal(split, whole) {
			t.Fatalf("split at %d changed the output:\n%q\n%q", c, whole, split)
		}
		for _, sp := range scan(whole, nil) {
			switch sp.kind {
			case spanAddr:
				a := sp.addr.WithZone("")
				if tr := truncate(a, 24, 48); tr != a {
					t.Fatalf("output holds %s (truncates to %s):\nin  %q\nout %q", a, tr, data, whole)
				}
			case spanChain:
				groups := strings.Split(string(whole[sp.start:sp.end]), ".")
				for _, g := range groups[3:] {
					if strings.Trim(g, "0") != "" {
						t.Fatalf("output holds the chain %q:\nin  %q\nout %q", whole[sp.start:sp.end], data, whole)
					}
				}
			}
		}
	})
}

// FuzzHandlerString checks that a string attribute or message, whatever it
// holds, leaves the Handler with no address that truncation would change.
func FuzzHandlerString(f *testing.F) {
	f.Add("from 192.0.2.1:5222", "[2001:db8::1]:443")
	f.Add("::ffff:1.2.3.4", "1.2.3.4.5")
	f.Fuzz(func(t *testing.T, msg, val string) {
		var out bytes.Buffer
		h := NewHandler(slog.NewJSONHandler(&out, nil), nil)
		r := slog.NewRecord(time.Time{}, slog.LevelInfo, msg, 0)
		r.AddAttrs(slog.String("v", val), slog.Group("g", slog.String("w", val)))
		if err := h.Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(out.Bytes(), &m); err != nil {
			t.Fatalf("bad JSON %q: %v", out.Bytes(), err)
		}
		g, _ := m["g"].(map[string]any)
		for _, s := range []any{m["msg"], m["v"], g["w"]} {
			str, _ := s.(string)
			for _, sp := range scan(str, nil) {
				if sp.kind != spanAddr {
					continue
				}
				a := sp.addr.WithZone("")
				if tr := truncate(a, 24, 48); tr != a {
					t.Fatalf("output holds %s in %q (from %q, %q)", a, str, msg, val)
				}
			}
		}
	})
}

// wholeAddrs are strings that are one address in each of its notations;
// exactSpan takes them all.
var wholeAddrs = []string{
	"198.51.100.77", "198.51.100.77:53211", "198.051.100.077", "0.0.0.0", "255.255.255.255:65535",
	"2001:db8:1:2::77", "2001:0db8:0001:0002:0000:0000:0000:0077", "2001:db8:1:2:3:4:5:6",
	"[2001:db8:1:2::77]:443", "[2001:db8:1:2::77]",
	"fe80::1:2:3:77%eth0", "[fe80::1:2:3:77%eth0]:5222", "fe80::77%3",
	"::ffff:198.51.100.77", "[::ffff:198.51.100.77]:5222", "::ffff:198.051.100.077",
	"2001:db8:1:2:3:4:198.51.100.77", "2002:c633:644d::1", "::1", "[::1]:80",
}

// notWholeAddrs hold an address but more than exactSpan's notations, or
// hold none: they are left to scan.
var notWholeAddrs = []string{
	"", "1", "::", "[::]:80", "1.2.3", "1.2.3.4.5", "1.2.3.4:", "1.2.3.4:123456", "1.2.3.4:ab", "1.2.3.4 ",
	" 1.2.3.4", "0198.51.100.77", "256.1.2.3", "1.2.3.4:1.2.3.4", "12:30:45", "[1.2.3.4]:80",
	"fe80::1%", "fe80::1%192.0.2.7", "fe80::1%fe80::2", "[fe80::1%192.0.2.7]:80", "[2001:db8::1]:x",
	"[2001:db8::1]:443:1", "[2001:db8::1", "2001:db8::1]", "2001:db8::1 x", "2001:db8::1::2", "std::vector",
	"2001:db8::1.", "::ffff:1.2.3.4.5",
}

func TestExactSpanMatchesScan(t *testing.T) {
	for _, s := range wholeAddrs {
		sp, ok := exactSpan(s)
		if !ok {
			t.Errorf("exactSpan(%q) = false, want an address", s)
			continue
		}
		var buf [4]span
		if got := scan(s, buf[:0]); len(got) != 1 || got[0] != sp {
			t.Errorf("exactSpan(%q) = %+v, scan finds %+v", s, sp, got)
		}
	}
	for _, s := range notWholeAddrs {
		if sp, ok := exactSpan(s); ok {
			t.Errorf("exactSpan(%q) = %+v, want none", s, sp)
		}
	}
}

// FuzzExactSpan checks that the fast path of scanText finds what scan
// finds: when exactSpan takes a string, scan reports that same single
// address, so the fast path cannot leave an address that scan would catch.
func FuzzExactSpan(f *testing.F) {
	for _, s := range wholeAddrs {
		f.Add(s)
	}
	for _, s := range notWholeAddrs {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sp, ok := exactSpan(s)
		if !ok {
			return
		}
		var buf [4]span
		if got := scan(s, buf[:0]); len(got) != 1 || got[0] != sp {
			t.Fatalf("exactSpan(%q) = %+v, scan finds %+v", s, sp, got)
		}
	})
}
