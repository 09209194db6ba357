package main

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The hostile-client harness: a hand-driven stream over TCP or TLS that
// writes raw bytes and reads the server's XML with encoding/xml, for input
// no real client library would send.
//
//	c := dialRaw(t, ts.C2STLS, "127.0.0.1", ts.TLSConfig) // direct TLS
//	c.open(t)                                            // header, features
//	c.write(t, `<foo/>`)
//	cond := c.streamError(t)                              // "unsupported-stanza-type"

// nsStreams is the namespace of stream errors.
const nsStreams = "http://etherx.jabber.org/streams"

// streamHeader is a client's initial stream header.
const streamHeader = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>`

// rawClient is one hand-driven client connection.
type rawClient struct {
	conn net.Conn
	dec  *xml.Decoder
}

// dialRaw connects from the loopback address local (e.g. "127.0.0.2": each
// is a client key of its own) to addr, over TLS when tlsCfg is not nil.
// The connection has a deadline of testTimeout and is closed by t.Cleanup.
func dialRaw(t testing.TB, addr, local string, tlsCfg *tls.Config) *rawClient {
	t.Helper()
	d := &net.Dialer{Timeout: testTimeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	var conn net.Conn
	var err error
	if tlsCfg != nil {
		conn, err = tls.DialWithDialer(d, "tcp", addr, tlsCfg.Clone())
	} else {
		conn, err = d.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, local, err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(testTimeout))
	return &rawClient{conn: conn, dec: xml.NewDecoder(conn)}
}

func (c *rawClient) write(t testing.TB, s string) {
	t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// next returns the server's next element, skipping stream headers; io.EOF
// when the stream or the connection ended.
func (c *rawClient) next() (element, error) {
	for {
		tok, err := c.dec.Token()
		if err != nil {
			return element{}, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Space == nsStreams && t.Name.Local == "stream" {
				continue // a (re)started stream
			}
			return readElement(c.dec, t)
		case xml.EndElement:
			return element{}, io.EOF
		}
	}
}

// open sends a stream header and returns the stream features.
func (c *rawClient) open(t testing.TB) element {
	t.Helper()
	c.write(t, streamHeader)
	e, err := c.next()
	if err != nil || e.start.Name.Local != "features" {
		t.Fatalf("stream features: %v %v", e.start.Name, err)
	}
	return e
}

// login authenticates with PLAIN and binds a resource (direct TLS only).
func (c *rawClient) login(t testing.TB, user, password string) {
	t.Helper()
	c.open(t)
	c.write(t, `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>`+
		base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+password))+`</auth>`)
	if e, err := c.next(); err != nil || e.start.Name.Local != "success" {
		t.Fatalf("auth: %v %v", e.start.Name, err)
	}
	c.open(t)
	c.write(t, `<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>`)
	if e, err := c.next(); err != nil || e.attr("type") != "result" {
		t.Fatalf("bind: %v %v", e.attr("type"), err)
	}
}

// streamError reads until the server's stream error and returns its
// condition; it fails the test when the stream ends without one.
func (c *rawClient) streamError(t testing.TB) string {
	t.Helper()
	cond, err := c.readStreamError()
	if err != nil {
		t.Fatal(err)
	}
	return cond
}

func (c *rawClient) readStreamError() (string, error) {
	for {
		e, err := c.next()
		if err != nil {
			return "", errors.New("stream ended without a stream error: " + err.Error())
		}
		if e.start.Name.Space == nsStreams && e.start.Name.Local == "error" {
			for _, ch := range e.children() {
				if ch.start.Name.Local != "text" {
					return ch.start.Name.Local, nil
				}
			}
			return "", errors.New("stream error without a condition")
		}
	}
}

// closed reports whether the server closed the connection: a read returns
// EOF (or a reset) before the test deadline.
func (c *rawClient) closed() error {
	_, err := io.Copy(io.Discard, c.conn)
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset") {
		return nil
	}
	return err
}

// flood writes prefix, then unit repeated up to total bytes, from a
// goroutine, until a write fails (the server closed the connection). The
// channel is closed when it stops.
func (c *rawClient) flood(prefix, unit string, total int) <-chan struct{} {
	done := make(chan struct{})
	chunk := []byte(strings.Repeat(unit, (64<<10)/max(1, len(unit))))
	go func() {
		defer close(done)
		if _, err := io.WriteString(c.conn, prefix); err != nil {
			return
		}
		for n := 0; n < total && len(chunk) > 0; n += len(chunk) {
			if _, err := c.conn.Write(chunk); err != nil {
				return
			}
		}
	}()
	return done
}

// allocated returns the bytes the whole process allocated while f ran:
// an upper bound of the heap growth f caused.
func allocated(f func()) uint64 {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
