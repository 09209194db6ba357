package main

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"chatbx.eu/privacy/internal/testclock"
	"chatbx.eu/privacy/logredact"
)

// filterAll runs pieces through a new filter with opts and returns the output.
func filterAll(t testing.TB, opts *logredact.Options, pieces ...string) string {
	t.Helper()
	var out bytes.Buffer
	f := newFilter(&out, opts)
	for _, p := range pieces {
		if _, err := f.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// Log lines written for this test in the formats of Prosody 0.12 (file
// sink: "Mon DD HH:MM:SS source\tlevel\tmessage", and its syslog sink
// through rsyslog) and ejabberd 23 (OTP logger: "date time.micro+zone
// [level] <pid>@module:function/arity:line message"), with the addresses
// these servers log: c2s/s2s remote addresses, IPv6 with and without
// brackets and ports, IPv4-mapped IPv6 as ejabberd's listener prints it.
var sampleLines = []struct {
	name, in, want string
}{
	{
		"prosody c2s connect IPv4",
		"Dec 05 05:19:18 c2s55d1c0a6b0f0\tinfo\tClient connected\n" +
			"Dec 05 05:19:18 c2s55d1c0a6b0f0\tdebug\tNew c2s connection from 198.51.100.77:53211\n",
		"Dec 05 05:19:18 c2s55d1c0a6b0f0\tinfo\tClient connected\n" +
			"Dec 05 05:19:18 c2s55d1c0a6b0f0\tdebug\tNew c2s connection from 198.51.100.0:53211\n",
	},
	{
		"prosody c2s IPv6 bracketed with port",
		"Dec 05 05:19:19 c2s55d1c0a6b0f0\tinfo\tClient connected from [2001:db8:85a3:8d3:1319:8a2e:370:7348]:40512\n",
		"Dec 05 05:19:19 c2s55d1c0a6b0f0\tinfo\tClient connected from [2001:db8:85a3::]:40512\n",
	},
	{
		"prosody authenticated (JID stays, the IP goes)",
		"Dec 05 05:19:20 c2s55d1c0a6b0f0\tinfo\tAuthenticated as alice@example.org (ip: 2001:db8:85a3::8a2e:370:7334)\n",
		"Dec 05 05:19:20 c2s55d1c0a6b0f0\tinfo\tAuthenticated as alice@example.org (ip: 2001:db8:85a3::)\n",
	},
	{
		"prosody s2s outgoing",
		"Dec 05 05:20:01 s2sout55d1c1f2a0c0\tinfo\tOutgoing s2s connection example.org->example.net complete, connected to 203.0.113.45 port 5269\n",
		"Dec 05 05:20:01 s2sout55d1c1f2a0c0\tinfo\tOutgoing s2s connection example.org->example.net complete, connected to 203.0.113.0 port 5269\n",
	},
	{
		"prosody http request",
		"Dec 05 05:21:07 http.server\tdebug\tFiring event: PUT example.org/upload/abc/photo.jpg (remote 192.0.2.7, x-forwarded-for 10.20.30.40, fe80::1ff:fe23:4567:890a%eth0)\n",
		"Dec 05 05:21:07 http.server\tdebug\tFiring event: PUT example.org/upload/abc/photo.jpg (remote 192.0.2.0, x-forwarded-for 10.20.30.0, fe80::%eth0)\n",
	},
	{
		"prosody via rsyslog",
		"2026-12-05T05:19:18.412345+00:00 xmpp prosody[812]: c2s55d1c0a6b0f0#011info#011Client disconnected: connection closed (198.51.100.77)\n",
		"2026-12-05T05:19:18.412345+00:00 xmpp prosody[812]: c2s55d1c0a6b0f0#011info#011Client disconnected: connection closed (198.51.100.0)\n",
	},
	{
		"ejabberd accepted connection, IPv4-mapped",
		"2026-12-05 05:19:18.123456+00:00 [info] <0.1234.0>@ejabberd_listener:accept/7:282 (<0.1234.0>) Accepted connection [::ffff:198.51.100.9]:54321 -> [::ffff:203.0.113.1]:5222\n",
		"2026-12-05 05:19:18.123456+00:00 [info] <0.1234.0>@ejabberd_listener:accept/7:282 (<0.1234.0>) Accepted connection [::ffff:198.51.100.0]:54321 -> [::ffff:203.0.113.0]:5222\n",
	},
	{
		"ejabberd authenticated",
		"2026-12-05 05:19:18.456789+00:00 [info] <0.1235.0>@ejabberd_c2s:handle_auth_success/4:272 (tls|<0.1234.0>) Accepted c2s SCRAM-SHA-1 authentication for alice@example.org by sql backend from 2001:db8:4::1:2\n",
		"2026-12-05 05:19:18.456789+00:00 [info] <0.1235.0>@ejabberd_c2s:handle_auth_success/4:272 (tls|<0.1234.0>) Accepted c2s SCRAM-SHA-1 authentication for alice@example.org by sql backend from 2001:db8:4::\n",
	},
	{
		"ejabberd failed authentication, plain IPv4 in a tuple",
		"2026-12-05 05:19:30.000001+00:00 [warning] <0.1240.0>@ejabberd_c2s:handle_auth_failure/4:298 (tls|<0.1239.0>) Failed c2s PLAIN authentication for mallory@example.org from ::FFFF:192.0.2.200: Invalid username or password\n",
		"2026-12-05 05:19:30.000001+00:00 [warning] <0.1240.0>@ejabberd_c2s:handle_auth_failure/4:298 (tls|<0.1239.0>) Failed c2s PLAIN authentication for mallory@example.org from ::ffff:192.0.2.0: Invalid username or password\n",
	},
	{
		"ejabberd s2s, full IPv6 form",
		"2026-12-05 05:22:00.250000+00:00 [info] <0.1300.0>@ejabberd_s2s_out:handle_auth_success/2:227 Accepted outbound s2s EXTERNAL authentication example.org -> example.net (2001:0db8:0042:0000:0000:0000:0000:0017)\n",
		"2026-12-05 05:22:00.250000+00:00 [info] <0.1300.0>@ejabberd_s2s_out:handle_auth_success/2:227 Accepted outbound s2s EXTERNAL authentication example.org -> example.net (2001:db8:42::)\n",
	},
	{
		"no address: unchanged",
		"2026-12-05 05:19:18.000000+00:00 [info] <0.500.0>@ejabberd_app:start/2:63 ejabberd 23.01 is started in the node ejabberd@localhost in 1.52s\n",
		"2026-12-05 05:19:18.000000+00:00 [info] <0.500.0>@ejabberd_app:start/2:63 ejabberd 23.01 is started in the node ejabberd@localhost in 1.52s\n",
	},
}

func TestSampleLines(t *testing.T) {
	for _, tc := range sampleLines {
		t.Run(tc.name, func(t *testing.T) {
			if got := filterAll(t, nil, tc.in); got != tc.want {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
			// Cut anywhere, as a pipe delivers: the same output.
			for c := 1; c < len(tc.in); c += 7 {
				if got := filterAll(t, nil, tc.in[:c], tc.in[c:]); got != tc.want {
					t.Fatalf("cut at %d: got\n%q\nwant\n%q", c, got, tc.want)
				}
			}
		})
	}
}

func TestModes(t *testing.T) {
	in := "Dec 05 05:19:18 c2s1\tinfo\tClient connected from 198.51.100.77:53211\n"
	for _, tc := range []struct {
		mode    logredact.Mode
		want    string // a substring of the output
		notWant string
	}{
		{logredact.Truncate, "198.51.100.0:53211", "198.51.100.77"},
		{logredact.Drop, "from [ip]:53211", "198.51.100"},
		{logredact.Pseudonymize, ":53211", "198.51.100.77"},
	} {
		got := filterAll(t, &logredact.Options{Mode: tc.mode}, in)
		if !strings.Contains(got, tc.want) || strings.Contains(got, tc.notWant) {
			t.Errorf("%v: %q", tc.mode, got)
		}
	}
}

// TestMaintenanceWindow opens a window, writes lines in it and after it by
// an injected clock: lines in full are marked and bracketed by the audit
// records; the window closes by itself.
func TestMaintenanceWindow(t *testing.T) {
	clk := testclock.New()
	var out bytes.Buffer
	f := newFilter(&out, &logredact.Options{Now: clk.Now, MaxReveal: time.Hour})
	write := func(s string) {
		t.Helper()
		if _, err := f.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	write("before 192.0.2.7\nstart of a line from 192.0.2.8")
	if ans := f.command("reveal 2h too long"); !strings.HasPrefix(ans, "error") {
		t.Fatalf("a window over -max-reveal: %q", ans)
	}
	if ans := f.command("reveal 30m debugging a client of 192.0.2.99"); !strings.HasPrefix(ans, "ok until") {
		t.Fatalf("reveal: %q", ans)
	}
	write(" ends in the window\ninside 192.0.2.9\nheld 192.0.2.10")
	if ans := f.command("status"); !strings.HasPrefix(ans, "open until") {
		t.Fatalf("status: %q", ans)
	}
	clk.Add(31 * time.Minute)
	write(" after\nafter 192.0.2.11\n")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	want := []string{
		"before 192.0.2.0",
		"", // audit start
		"start of a line from 192.0.2.0 ends in the window",
		"inside 192.0.2.9" + revealedMark,
		"", // audit end
		"held 192.0.2.0 after",
		"after 192.0.2.0",
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), got)
	}
	for i, w := range want {
		if w != "" && lines[i] != w {
			t.Errorf("line %d: %q, want %q", i, lines[i], w)
		}
	}
	if !strings.Contains(lines[1], logredact.AuditRevealStart) || !strings.Contains(lines[1], "192.0.2.0") ||
		strings.Contains(lines[1], "192.0.2.99") {
		t.Errorf("start record: %q", lines[1])
	}
	if !strings.Contains(lines[4], logredact.AuditRevealEnd) {
		t.Errorf("end record: %q", lines[4])
	}
}

// FuzzNoAddressSurvives writes a log line holding an address in one of its
// textual forms between two pieces of arbitrary text, cut into two writes,
// and checks that the address is not in the output (unless anonymizing
// leaves it as it is).
func FuzzNoAddressSurvives(f *testing.F) {
	f.Add([]byte("Client connected from"), []byte{198, 51, 100, 77}, uint16(53211), uint8(1), []byte("(tls)"), uint16(30))
	f.Add([]byte("Accepted connection"), []byte{0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x17}, uint16(5222), uint8(2), []byte("-> x"), uint16(7))
	f.Add([]byte("auth from"), []byte{192, 0, 2, 200}, uint16(0), uint8(3), []byte(": Invalid"), uint16(60))
	f.Fuzz(func(t *testing.T, before, raw []byte, port uint16, form uint8, after []byte, cut uint16) {
		if len(before)+len(after) > 2048 {
			return
		}
		var a netip.Addr
		switch len(raw) {
		case 4:
			a = netip.AddrFrom4([4]byte(raw))
		case 16:
			a = netip.AddrFrom16([16]byte(raw))
		default:
			return
		}
		var text string
		switch form % 6 {
		case 0:
			text = a.String()
		case 1:
			text = netip.AddrPortFrom(a, port).String() // [v6]:port or v4:port
		case 2:
			text = a.StringExpanded()
		case 3:
			if !a.Is4() {
				return
			}
			text = "::ffff:" + a.String()
			a = netip.AddrFrom16(a.As16())
		case 4:
			text = strings.ToUpper(a.String())
		default:
			text = "[" + a.String() + "]"
		}
		if a.IsUnspecified() {
			return // "::" identifies nobody: the scrubber leaves it (logredact/scan.go)
		}
		mode := logredact.Mode(form / 6 % 3)
		if mode == logredact.Truncate && unchangedByTruncation(a) {
			return
		}
		line := "Dec 05 05:19:18 c2s1\tinfo\t" + string(before) + " " + text + " " + string(after) + "\n"
		c := int(cut) % (len(line) + 1)
		opts := &logredact.Options{Mode: mode}
		out := filterAll(t, opts, line[:c], line[c:])
		forms := []string{a.String(), a.StringExpanded(), strings.ToUpper(a.String())}
		if a.Is4In6() {
			forms = append(forms, a.Unmap().String())
		}
		for _, fm := range forms {
			if containsDelimited(out, fm) {
				t.Fatalf("%v: %s (as %q) survived:\nin  %q\nout %q", mode, fm, text, line, out)
			}
		}
	})
}

func unchangedByTruncation(a netip.Addr) bool {
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
		if (st == 0 || !isAddrChar(s[st-1])) && (en == len(s) || !isAddrChar(s[en])) {
			return true
		}
		i = st + 1
	}
}
