package logredact

import "testing"

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
		// Ambiguous: nine groups; the leftmost eight are taken.
		{"abc:2001:db8:1:2:3:4:5:6", "abc:2001:db8:::6"},
		{"::", "::"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := scrubForTest(tt.in, nil); got != tt.want {
			t.Errorf("scrub(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
