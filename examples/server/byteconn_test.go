package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
)

// chunkConn is a connection whose reads return the chunks in turn (each at
// most len(p) bytes of it), then io.EOF; it records the size of each read.
type chunkConn struct {
	net.Conn
	chunks [][]byte
	sizes  []int
}

func (c *chunkConn) Read(p []byte) (int, error) {
	c.sizes = append(c.sizes, len(p))
	for len(c.chunks) > 0 && len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
		return 0, nil // an empty read: allowed, retried
	}
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	if len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	return n, nil
}

// readAllBytes reads c to its error with ReadByte, every odd call of
// mixed through Read instead.
func readAllBytes(c *byteConn, mixed bool) ([]byte, error) {
	var out []byte
	for i := 0; ; i++ {
		if mixed && i%2 == 1 {
			var p [3]byte
			n, err := c.Read(p[:])
			out = append(out, p[:n]...)
			if err != nil {
				return out, err
			}
			continue
		}
		b, err := c.ReadByte()
		if err != nil {
			return out, err
		}
		out = append(out, b)
	}
}

// TestByteConn: whatever the chunking of the stream, ReadByte and Read
// (mixed) give every byte once, in order, then the connection's error; a
// read goes to the small array after a short read and to a pooled buffer
// after a full one, and no pooled buffer is held once its bytes are read.
func TestByteConn(t *testing.T) {
	long := bytes.Repeat([]byte("<message><body>x</body></message>"), 400) // 13,200 bytes
	for _, tc := range []struct {
		name   string
		chunks [][]byte
		sizes  []int // the sizes of the first reads
	}{
		{"empty", nil, []int{smallReadSize}},
		{"short stanzas", [][]byte{[]byte("<presence/>"), []byte("<iq/>")}, []int{smallReadSize, smallReadSize, smallReadSize}},
		{"burst", [][]byte{long}, []int{smallReadSize, readBufSize, readBufSize, readBufSize, readBufSize, smallReadSize}},
		{"empty reads", [][]byte{{}, []byte("<a/>"), {}, {}, []byte("<b/>")}, []int{smallReadSize, smallReadSize, smallReadSize, smallReadSize, smallReadSize}},
	} {
		for _, mixed := range []bool{false, true} {
			var want []byte
			for _, c := range tc.chunks {
				want = append(want, c...)
			}
			chunks := make([][]byte, len(tc.chunks))
			for i, c := range tc.chunks {
				chunks[i] = bytes.Clone(c)
			}
			raw := &chunkConn{chunks: chunks}
			c := newByteConn(raw, newReadBufPool())
			got, err := readAllBytes(c, mixed)
			if !errors.Is(err, io.EOF) || !bytes.Equal(got, want) {
				t.Errorf("%s (mixed %v): read %d bytes, %v; want %d bytes, EOF", tc.name, mixed, len(got), err, len(want))
			}
			if c.pooled != nil {
				t.Errorf("%s (mixed %v): a pooled buffer held after the end", tc.name, mixed)
			}
			if !mixed && len(raw.sizes) >= len(tc.sizes) {
				for i, s := range tc.sizes {
					if raw.sizes[i] != s {
						t.Errorf("%s: read %d asked for %d bytes, want %d (all: %v)", tc.name, i, raw.sizes[i], s, raw.sizes)
						break
					}
				}
			}
		}
	}
}

// FuzzByteConn: any chunking of any bytes reads back whole.
func FuzzByteConn(f *testing.F) {
	f.Add([]byte("<presence/><message><body>hi</body></message>"), uint16(3))
	f.Add(bytes.Repeat([]byte{'a'}, 5000), uint16(4096))
	f.Fuzz(func(t *testing.T, data []byte, step uint16) {
		n := int(step%5000) + 1
		var chunks [][]byte
		for rest := data; len(rest) > 0; {
			k := min(n, len(rest))
			chunks = append(chunks, bytes.Clone(rest[:k]))
			rest = rest[k:]
			n = n*7%4999 + 1 // vary the chunk sizes
		}
		c := newByteConn(&chunkConn{chunks: chunks}, newReadBufPool())
		got, err := readAllBytes(c, step%2 == 1)
		if !errors.Is(err, io.EOF) || !bytes.Equal(got, data) {
			t.Fatalf("read %d bytes, %v; want %d, EOF", len(got), err, len(data))
		}
	})
}
