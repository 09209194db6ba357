package main

import (
	"bytes"
	"testing"
)

// runFilter feeds in to a fresh filter in chunks of size n (the way reads
// come from the connection) and returns what the reader gets.
func runFilter(in []byte, n int) []byte {
	f := newWSFilter(nil)
	var out []byte
	for len(in) > 0 {
		chunk := append([]byte(nil), in[:min(n, len(in))]...)
		in = in[len(chunk):]
		if f.off.Load() {
			out = append(out, chunk...)
			continue
		}
		out = append(out, chunk[:f.filter(chunk)]...)
	}
	return out
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
	f.Fuzz(func(t *testing.T, in []byte, n uint8) {
		whole := runFilter(in, len(in)+1)
		if chunked := runFilter(in, int(n)+1); !bytes.Equal(whole, chunked) {
			t.Fatalf("chunking changes the output: %q vs %q", whole, chunked)
		}
		j := 0
		for i := 0; i < len(in); i++ {
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
