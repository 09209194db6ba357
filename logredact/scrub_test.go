package logredact_test

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"chatbx.eu/privacy/logredact"
)

func scrubAll(t testing.TB, opts *logredact.Options, pieces ...string) string {
	t.Helper()
	var out bytes.Buffer
	s := logredact.NewScrubber(&out, opts)
	for _, p := range pieces {
		if _, err := s.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestScrubberForms(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"ipv4", "http: TLS handshake error from 192.0.2.44:53312: EOF\n", "http: TLS handshake error from 192.0.2.0:53312: EOF\n"},
		{"ipv6 compressed", "peer 2001:db8:1:2::44 gone\n", "peer 2001:db8:1:: gone\n"},
		{"ipv6 full", "peer 2001:0db8:0001:0002:0003:0004:0005:0006\n", "peer 2001:db8:1::\n"},
		{"ipv6 upper", "peer 2001:DB8:1:2::AB\n", "peer 2001:db8:1::\n"},
		{"bracket port", "dial [2001:db8:1:2::3]:5222 failed\n", "dial [2001:db8:1::]:5222 failed\n"},
		{"v4-mapped", "from ::ffff:198.51.100.7\n", "from ::ffff:198.51.100.0\n"},
		{"zone", "link fe80::1:2:3:4%eth0 up\n", "link fe80::%eth0 up\n"},
		{"several", "a=192.0.2.1,b=198.51.100.2;c=(2001:db8:9:9::9)\n", "a=192.0.2.0,b=198.51.100.0;c=(2001:db8:9::)\n"},
		{"timestamp kept", "2026/11/26 23:25:57.123456 ok\n", "2026/11/26 23:25:57.123456 ok\n"},
		{"code kept", "std::vector<int> and Foo::Bar::baz\n", "std::vector<int> and Foo::Bar::baz\n"},
		{"mac kept", "hw 00:1a:2b:3c:4d:5e\n", "hw 00:1a:2b:3c:4d:5e\n"},
		{"no newline", "tail 192.0.2.9", "tail 192.0.2.0"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := scrubAll(t, nil, tt.in); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestScrubberModes(t *testing.T) {
	in := "from 192.0.2.44 and 2001:db8:1:2::3\n"
	if got := scrubAll(t, &logredact.Options{Mode: logredact.Drop}, in); got != "from [ip] and [ip]\n" {
		t.Errorf("drop: %q", got)
	}
	got := scrubAll(t, &logredact.Options{Mode: logredact.Pseudonymize}, in)
	if strings.Contains(got, "192.0.2.44") || strings.Contains(got, "2001:db8:1:2::3") {
		t.Errorf("pseudonymize leaked: %q", got)
	}
	f := strings.Fields(got)
	if len(f) != 4 {
		t.Fatalf("pseudonymize: %q", got)
	}
	for _, w := range []string{f[1], f[3]} {
		if _, err := netip.ParseAddr(w); err != nil {
			t.Errorf("pseudonym %q is not an address", w)
		}
	}
}

// An address split across Writes is found.
func TestScrubberSplitWrites(t *testing.T) {
	in := "error from 192.0.2.123:4444 and [2001:db8:1:2::77]:5\nnext 198.51.100.99\n"
	want := scrubAll(t, nil, in)
	for i := 0; i <= len(in); i++ {
		for j := i; j <= len(in); j += 7 {
			if got := scrubAll(t, nil, in[:i], in[i:j], in[j:]); got != want {
				t.Fatalf("split at %d,%d: %q, want %q", i, j, got, want)
			}
		}
	}
}

// A line that never ends is written out in bounded pieces, and no address
// is cut in two at a piece boundary.
func TestScrubberBoundedLongLine(t *testing.T) {
	var out bytes.Buffer
	s := logredact.NewScrubber(&out, &logredact.Options{MaxLine: 1024})
	rng := rand.New(rand.NewPCG(1, 2))
	total := 0
	for range 2000 {
		a := netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + rng.IntN(254))})
		chunk := fmt.Sprintf(" x %s y", a)
		total += len(chunk) - len(a.String()) + len("192.0.2.0")
		if _, err := s.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
		if held := total - out.Len(); held > 1024 {
			t.Fatalf("%d bytes of an endless line held, MaxLine is 1024", held)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	want := strings.Repeat(" x 192.0.2.0 y", 2000)
	if out.String() != want {
		t.Errorf("long line differs from its anonymized form (first 200 bytes): %q", out.String()[:200])
	}
	// A giant run of address characters is bounded too.
	out.Reset()
	s = logredact.NewScrubber(&out, &logredact.Options{MaxLine: 1024})
	for i := range 500 {
		s.Write([]byte("1.2.3.4.5.6.7.8.9."))
		if held := 18*(i+1) - out.Len(); held > 1024 {
			t.Fatalf("%d bytes of a giant run held, MaxLine is 1024", held)
		}
	}
	s.Close()
	if strings.Contains(out.String(), "5.6") {
		t.Errorf("dotted chain not zeroed: %q", out.String()[:100])
	}
}

func TestScrubberClosed(t *testing.T) {
	s := logredact.NewScrubber(&bytes.Buffer{}, nil)
	s.Close()
	if _, err := s.Write([]byte("x")); !errors.Is(err, logredact.ErrClosed) {
		t.Errorf("Write after Close = %v", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestScrubberWriteError(t *testing.T) {
	s := logredact.NewScrubber(failWriter{}, nil)
	if _, err := s.Write([]byte("a 192.0.2.1\n")); err == nil || strings.Contains(err.Error(), "192.0.2.1") {
		t.Errorf("Write error = %v", err)
	}
}

func TestScrubberAsErrorLog(t *testing.T) {
	var out bytes.Buffer
	l := log.New(logredact.NewScrubber(&out, nil), "", 0)
	l.Printf("http: TLS handshake error from %s: EOF", "[2001:db8:1:2::3]:443")
	if got := out.String(); got != "http: TLS handshake error from [2001:db8:1::]:443: EOF\n" {
		t.Errorf("got %q", got)
	}
}

// --- property test ---------------------------------------------------------

type inserted struct {
	addr netip.Addr
	text string // the exact text written
}

var fillers = []string{
	"error", "from", "connection", "refused", "12:30:45", "2026-11-26T23:25:57Z",
	"go1.26.8", "std::vector", "00:1a:2b:3c:4d:5e", "tls:", "bad", "cafe", "x", "ab:cd",
	"user=alice@example.org", "\n", "\t", "deadbeef", "v1.2.3",
}

var delims = []string{" ", ", ", "(", ")", "=", "\"", "'", "<", ">", "/", "; ", "\n"}

func randomAddrText(rng *rand.Rand) inserted {
	var a netip.Addr
	switch rng.IntN(2) {
	case 0:
		var b [4]byte
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		a = netip.AddrFrom4(b)
	default:
		var b [16]byte
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		if rng.IntN(3) == 0 { // make runs of zero groups for "::"
			for i := 4 + rng.IntN(6); i < 14; i++ {
				b[i] = 0
			}
		}
		b[15] |= 1 // host bits never all zero after any /120
		a = netip.AddrFrom16(b)
		if a.Is4In6() || a.IsUnspecified() {
			b[0] = 0x20
			a = netip.AddrFrom16(b)
		}
	}
	port := fmt.Sprint(1 + rng.IntN(65535))
	if a.Is4() {
		b := a.As4()
		switch rng.IntN(4) {
		case 0:
			return inserted{a, a.String()}
		case 1:
			return inserted{a, a.String() + ":" + port}
		case 2:
			return inserted{a, fmt.Sprintf("%03d.%03d.%03d.%03d", b[0], b[1], b[2], b[3])}
		default:
			m := netip.AddrFrom16(a.As16())
			return inserted{m, "::ffff:" + a.String()}
		}
	}
	switch rng.IntN(6) {
	case 0:
		return inserted{a, a.String()}
	case 1:
		return inserted{a, a.StringExpanded()}
	case 2:
		return inserted{a, "[" + a.String() + "]:" + port}
	case 3:
		return inserted{a, strings.ToUpper(a.String())}
	case 4:
		ll := a.As16()
		ll[0], ll[1] = 0xfe, 0x80
		z := netip.AddrFrom16(ll)
		return inserted{z, z.String() + "%eth" + fmt.Sprint(rng.IntN(3))}
	default:
		return inserted{a, a.String() + "."}
	}
}

func randomText(rng *rand.Rand) (string, []inserted) {
	var sb strings.Builder
	var ins []inserted
	for range 5 + rng.IntN(40) {
		sb.WriteString(delims[rng.IntN(len(delims))])
		if rng.IntN(3) == 0 {
			in := randomAddrText(rng)
			ins = append(ins, in)
			sb.WriteString(in.text)
		} else {
			sb.WriteString(fillers[rng.IntN(len(fillers))])
		}
		sb.WriteString(delims[rng.IntN(len(delims))])
	}
	return sb.String(), ins
}

// randomSplit cuts s into pieces at random write boundaries.
func randomSplit(rng *rand.Rand, s string) []string {
	var out []string
	for len(s) > 0 {
		n := 1 + rng.IntN(min(len(s), 40))
		out = append(out, s[:n])
		s = s[n:]
	}
	return out
}

// leaks reports the forms of a that appear in out: its canonical text, its
// full form, and the text it was written as (minus decorations).
func leaks(out string, in inserted) []string {
	a := in.addr.WithZone("")
	forms := []string{a.String(), a.StringExpanded(), strings.ToUpper(a.String())}
	if a.Is4In6() {
		forms = append(forms, a.Unmap().String())
	}
	var found []string
	for _, f := range forms {
		if containsDelimited(out, f) {
			found = append(found, f)
		}
	}
	return found
}

// containsDelimited reports whether f occurs in s not glued to other
// address characters (so "192.0.2.1" is not found inside "192.0.2.10").
func containsDelimited(s, f string) bool {
	isAddrChar := func(c byte) bool {
		return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == ':' || c == '.'
	}
	for i := 0; ; {
		j := strings.Index(s[i:], f)
		if j < 0 {
			return false
		}
		st, en := i+j, i+j+len(f)
		before := st == 0 || !isAddrChar(s[st-1])
		after := en == len(s) || !isAddrChar(s[en]) || s[en] == ':' && !strings.Contains(f, ":") || s[en] == '.' && (en+1 == len(s) || !isAddrChar(s[en+1]))
		if before && after {
			return true
		}
		i = st + 1
	}
}

func TestScrubberPropertyNoAddressSurvives(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	modes := []logredact.Mode{logredact.Truncate, logredact.Pseudonymize, logredact.Drop}
	for iter := range 400 {
		text, ins := randomText(rng)
		for _, mode := range modes {
			opts := &logredact.Options{Mode: mode, Keys: logredact.NewKeyRing(0, nil)}
			whole := scrubAll(t, opts, text)
			split := scrubAll(t, opts, randomSplit(rng, text)...)
			if whole != split {
				t.Fatalf("iteration %d, %v: split writes changed the output:\n%q\n%q", iter, mode, whole, split)
			}
			for _, in := range ins {
				if anonymizedIsSame(in.addr, mode) {
					continue
				}
				if f := leaks(whole, in); len(f) > 0 {
					t.Fatalf("iteration %d, %v: %v of %q survived in\n%q\nfrom\n%q", iter, mode, f, in.text, whole, text)
				}
			}
		}
	}
}

// anonymizedIsSame reports whether truncation leaves a unchanged (its host
// part is zero): then finding it in the output is no leak.
func anonymizedIsSame(a netip.Addr, mode logredact.Mode) bool {
	if mode != logredact.Truncate {
		return false
	}
	a = a.WithZone("")
	var p netip.Prefix
	switch {
	case a.Is4():
		p, _ = a.Prefix(24)
	case a.Is4In6():
		p, _ = a.Prefix(96 + 24)
	default:
		p, _ = a.Prefix(48)
	}
	return p.Addr() == a
}

// Concurrent writers (as a shared log.Logger would be) get whole lines,
// each anonymized: run with -race.
func TestScrubberConcurrent(t *testing.T) {
	var out bytes.Buffer
	s := logredact.NewScrubber(&out, nil)
	l := log.New(s, "", 0)
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 100 {
				l.Printf("worker %d: TLS handshake error from 192.0.2.%d:%d: EOF", g, i+1, 40000+i)
			}
		}()
	}
	for range 4 {
		<-done
	}
	s.Close()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 400 {
		t.Fatalf("%d lines", len(lines))
	}
	for _, line := range lines {
		if !strings.Contains(line, "from 192.0.2.0:") || !strings.HasSuffix(line, ": EOF") {
			t.Fatalf("line %q", line)
		}
	}
}

func TestScrubberFlush(t *testing.T) {
	var out bytes.Buffer
	s := logredact.NewScrubber(&out, nil)
	s.Write([]byte("partial from 192.0.2.9"))
	if out.Len() != 0 {
		t.Fatalf("an unfinished line was written: %q", out.String())
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if out.String() != "partial from 192.0.2.0" {
		t.Fatalf("after Flush: %q", out.String())
	}
	s.Write([]byte(" and 198.51.100.1\n"))
	if out.String() != "partial from 192.0.2.0 and 198.51.100.0\n" {
		t.Fatalf("after the rest: %q", out.String())
	}
}

func TestScrubberChainsByMode(t *testing.T) {
	in := "oid 1.192.0.2.7 end\n"
	for _, tt := range []struct {
		opts logredact.Options
		want string
	}{
		{logredact.Options{}, "oid 1.192.0.0.0 end\n"},
		{logredact.Options{IPv4Bits: 16}, "oid 1.192.0.0.0 end\n"},
		{logredact.Options{IPv4Bits: 32}, "oid 1.192.0.2.0 end\n"},
		{logredact.Options{Mode: logredact.Pseudonymize}, "oid [ip] end\n"},
		{logredact.Options{Mode: logredact.Drop, Marker: "<ip>"}, "oid <ip> end\n"},
	} {
		if got := scrubAll(t, &tt.opts, in); got != tt.want {
			t.Errorf("%+v: got %q, want %q", tt.opts, got, tt.want)
		}
	}
}
