package main

import (
	"io"
	"net"
	"sync"
)

// byteConn is a client connection that is also an io.ByteReader, so that
// the XML decoder mellium makes over it reads from it directly rather than
// through a bufio.Reader of its own: encoding/xml wraps any other reader in
// one of 4 KiB, held by every session for its lifetime, idle or not.
//
// byteConn holds a large buffer only while it has bytes to give: a read
// goes to a small array of the connection unless the previous read filled
// its buffer (more is likely waiting), then to a buffer from readBufPool,
// returned to the pool once read. An idle session, blocked in a read after
// a short stanza, holds only the small array.
//
// One goroutine reads (mellium's decoder, under its input lock); the
// buffer survives the decoders mellium makes at each stream restart, so no
// byte read ahead is lost.
type byteConn struct {
	net.Conn
	pool *sync.Pool // of *[readBufSize]byte

	b      []byte // b[r:w] is unread
	r, w   int
	pooled *[readBufSize]byte // b's storage when taken from pool
	full   bool               // the last read filled its buffer
	err    error              // the last read's error, returned once b is read

	small [smallReadSize]byte
}

const (
	// readBufSize is the buffer a busy connection reads into (bufio's
	// default, which encoding/xml used).
	readBufSize = 4096
	// smallReadSize is the array an idle connection waits in: a short
	// stanza (presence, ping answer) fits.
	smallReadSize = 256
)

// newReadBufPool returns the pool of byteConn read buffers of a server.
func newReadBufPool() *sync.Pool {
	return &sync.Pool{New: func() any { return new([readBufSize]byte) }}
}

func newByteConn(c net.Conn, pool *sync.Pool) *byteConn {
	return &byteConn{Conn: c, pool: pool}
}

// ReadByte implements io.ByteReader.
func (c *byteConn) ReadByte() (byte, error) {
	for c.r == c.w {
		if c.err != nil {
			err := c.err
			c.err = nil
			return 0, err
		}
		c.fill()
	}
	b := c.b[c.r]
	c.r++
	return b, nil
}

// fill reads once into the small array or a pooled buffer, after returning
// the pooled buffer held, now read. An empty read without error is retried
// (io.Reader allows it, but not forever, as bufio does).
func (c *byteConn) fill() {
	c.release()
	for range 100 {
		dst := c.small[:]
		if c.full {
			c.pooled = c.pool.Get().(*[readBufSize]byte)
			dst = c.pooled[:]
		}
		n, err := c.Conn.Read(dst)
		c.b, c.r, c.w, c.full, c.err = dst, 0, n, n == len(dst), err
		if n > 0 || err != nil {
			if n == 0 {
				c.release()
			}
			return
		}
		c.release()
	}
	c.err = io.ErrNoProgress
}

// release returns the pooled buffer, if any; its bytes must have been read.
func (c *byteConn) release() {
	if c.pooled != nil {
		c.b = nil
		c.pool.Put(c.pooled)
		c.pooled = nil
	}
}

// Read gives the bytes already read first, then reads from the connection.
func (c *byteConn) Read(p []byte) (int, error) {
	if c.r < c.w {
		n := copy(p, c.b[c.r:c.w])
		c.r += n
		if c.r == c.w {
			c.release()
		}
		return n, nil
	}
	if c.err != nil {
		err := c.err
		c.err = nil
		return 0, err
	}
	return c.Conn.Read(p)
}
