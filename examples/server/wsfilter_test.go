package main

import (
	"bytes"
	"strings"
	"testing"
)

// runFilter feeds in to a fresh filter in chunks of size n (the way reads
// come from the connection) and returns what the reader gets, up to a
// duplicate attribute.
func runFilter(in []byte, n int) []byte {
	out, _ := runFilterDup(in, n)
	return out
}

// runFilterDup is runFilter that also reports whether the filter found a
// duplicate attribute (where its output ends).
func runFilterDup(in []byte, n int) ([]byte, bool) {
	f := newWSFilter(nil)
	var out []byte
	for len(in) > 0 && !f.dup {
		chunk := append([]byte(nil), in[:min(n, len(in))]...)
		in = in[len(chunk):]
		if f.off.Load() {
			out = append(out, chunk...)
			continue
		}
		out = append(out, chunk[:f.filter(chunk)]...)
	}
	return out, f.dup
}

// TestWSFilterDuplicateAttributes: a tag read while negotiating that names
// an attribute twice stops the filter's reads; the same name in other
// tags, in values or in end tags does not.
func TestWSFilterDuplicateAttributes(t *testing.T) {
	long := strings.Repeat("a", 300)
	for _, tc := range []struct {
		in  string
		dup bool
	}{
		{`<stream:stream xmlns='jabber:client' xmlns:stream='s' to='localhost' version='1.0'>`, false},
		{`<stream:stream xmlns='jabber:client' to='localhost' to='example.org'>`, true},
		{`<stream:stream xmlns='jabber:client' xmlns='jabber:client'>`, true},
		{`<stream:stream xmlns:stream='s' xmlns:stream='t'>`, true},
		{`<iq type='set' id='b'><bind xmlns='b' xmlns='b'/></iq>`, true},
		{`<a x = '1' x='2'/>`, true},
		{"<a x='1'\n\tx\t=\"2\">", true},
		{`<a x='x=1 x=2' y="x='3'"/>`, false},
		{`<a x='1'/><a x='2'/><b x='1'></b>`, false},
		{`<a xmlns:p='u' p:x='1' x='2'/>`, false},         // literally different; readElement resolves
		{`<a ` + long + `='1' ` + long + `='2'/>`, false}, // too long to check here
	} {
		for _, n := range []int{1, 5, 4096} {
			if _, dup := runFilterDup([]byte(tc.in), n); dup != tc.dup {
				t.Errorf("%q in chunks of %d: duplicate %v, want %v", tc.in, n, dup, tc.dup)
			}
		}
	}
}

// TestWSFilter: whitespace between top-level elements goes, everything
// else stays, and the filter stops after <starttls/> and at a comment.
func TestWSFilter(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"<?xml version='1.0'?>\n<stream:stream a='x y'>\n <a> b <c/> </a>\n\t<d/>\r\n",
			"<?xml version='1.0'?><stream:stream a='x y'><a> b <c/> </a><d/>"},
		{"<s:stream>\n<starttls xmlns='t'/>\n\x16 \x03<", "<s:stream><starttls xmlns='t'/>\n\x16 \x03<"},
		{"<stream:stream>\n<starttls>\n</starttls> <x", "<stream:stream><starttls>\n</starttls> <x"},
		{"<stream:stream>\n<auth>x</auth>\n<stream:stream>\n<iq>\n<bind/> </iq> ", "<stream:stream><auth>x</auth><stream:stream><iq>\n<bind/> </iq>"},
		{"<stream:stream> <a><![CDATA[ <b> ]] ]]> </a> <c/>", "<stream:stream><a><![CDATA[ <b> ]] ]]> </a><c/>"},
		{"<stream:stream> <a x=\"/>\" y='>'> </a> <b/>", "<stream:stream><a x=\"/>\" y='>'> </a><b/>"},
		{"<stream:stream> <!-- c --> <a/>", "<stream:stream><!-- c --> <a/>"},
		{"<stream:stream> hello world <a/> </stream:stream> ", "<stream:stream>helloworld<a/></stream:stream>"},
	} {
		for _, n := range []int{1, 3, 4096} {
			if got := runFilter([]byte(tc.in), n); string(got) != tc.want {
				t.Errorf("%q in chunks of %d:\n got %q\nwant %q", tc.in, n, got, tc.want)
			}
		}
	}
}

// FuzzWSFilter: for any input and any chunking, the filter removes only
// whitespace bytes, and the same ones whatever the chunk size.
func FuzzWSFilter(f *testing.F) {
	f.Add([]byte("<?xml version='1.0'?>\n<stream:stream>\n<starttls/>\n"), uint8(1))
	f.Add([]byte("<stream:stream> <a><![CDATA[ x ]]></a> <b x='>'/> </stream:stream>"), uint8(7))
	f.Add([]byte("<stream:stream to='a' to='b'>"), uint8(2))
	f.Fuzz(func(t *testing.T, in []byte, n uint8) {
		whole, dup := runFilterDup(in, len(in)+1)
		if chunked, cdup := runFilterDup(in, int(n)+1); !bytes.Equal(whole, chunked) || dup != cdup {
			t.Fatalf("chunking changes the output: %q (%v) vs %q (%v)", whole, dup, chunked, cdup)
		}
		j := 0
		for i := 0; i < len(in) && !(dup && j == len(whole)); i++ { // a duplicate ends the output early
			if j < len(whole) && in[i] == whole[j] {
				j++
				continue
			}
			if !isXMLSpace(in[i]) {
				t.Fatalf("removed %q at %d", in[i], i)
			}
		}
		if j != len(whole) {
			t.Fatalf("output is no subsequence of the input")
		}
	})
}
