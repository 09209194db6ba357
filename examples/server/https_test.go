package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// dialHTTPS opens a raw TLS connection to the HTTPS listener, verifying the
// server's certificate; reads fail after testTimeout instead of hanging.
func dialHTTPS(t *testing.T, ts *testServer) (*tls.Conn, *bufio.Reader) {
	t.Helper()
	c, err := tls.Dial("tcp", ts.httpLn.Addr().String(), ts.TLSConfig.Clone())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(testTimeout))
	return c, bufio.NewReader(c)
}

// TestHTTPSSlowBodies: a body that stops arriving holds its connection for
// the body timeout at most, whether a form handler reads it (/account: 408,
// nothing changed) or no handler does (a 404, after which net/http would
// read on to reuse the connection). The client sends part of a body and
// waits for the server to answer and close.
func TestHTTPSSlowBodies(t *testing.T) {
	ts := startTestServer(t, withConfig(func(c *Config) { c.httpBodyTimeout = 200 * time.Millisecond }))
	ts.Register(t, "alice", "alice password")
	form := url.Values{"username": {"alice"}, "password": {"alice password"},
		"new": {"new password 1"}, "new2": {"new password 1"}}.Encode()
	for _, tc := range []struct {
		path string
		code int
	}{
		{"/account/password", http.StatusRequestTimeout},
		{"/nowhere", http.StatusNotFound},
	} {
		c, br := dialHTTPS(t, ts)
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s",
			tc.path, len(form), form[:10])
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != tc.code {
			t.Errorf("%s: %s, want %d", tc.path, res.Status, tc.code)
		}
		if _, err := br.ReadByte(); err != io.EOF {
			t.Errorf("%s: connection not closed after the body timeout: %v", tc.path, err)
		}
	}
	// The password is unchanged.
	ts.Login(t, "alice", "alice password").Close()
}

// TestHTTPSMaxHeaderBytes: request headers beyond 16 KiB (plus net/http's
// 4 KiB of slack) are refused with 431; smaller ones are served.
func TestHTTPSMaxHeaderBytes(t *testing.T) {
	ts := startTestServer(t)
	for _, tc := range []struct {
		pad  int
		code int
	}{
		{8 << 10, http.StatusOK},
		{32 << 10, http.StatusRequestHeaderFieldsTooLarge},
	} {
		req, _ := http.NewRequest(http.MethodGet, ts.HTTPSURL+"/privacy", nil)
		req.Header.Set("X-Pad", strings.Repeat("p", tc.pad))
		res, err := ts.HTTPClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.code {
			t.Errorf("%d bytes of headers: %s, want %d", tc.pad, res.Status, tc.code)
		}
	}
}

// TestHTTPSMultiRange: the GET of 1,000 one-byte ranges of a
// 1,000-byte upload gets the file (200), not 144 KB; two ranges get 206.
func TestHTTPSMultiRange(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	a := ts.Login(t, "alice", "alice password")
	content := strings.Repeat("0123456789", 100)
	get := uploadFile(t, ts, a, "r.txt", content)
	var rng strings.Builder
	rng.WriteString("bytes=0-0")
	for i := 1; i < 1000; i++ {
		fmt.Fprintf(&rng, ",%d-%d", i, i)
	}
	for _, tc := range []struct {
		rng  string
		code int
		max  int
	}{
		{rng.String(), http.StatusOK, len(content)},
		{"bytes=0-9,20-29", http.StatusPartialContent, 1000},
	} {
		req, _ := http.NewRequest(http.MethodGet, get, nil)
		req.Header.Set("Range", tc.rng)
		res, err := ts.HTTPClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || res.StatusCode != tc.code || len(b) > tc.max {
			t.Errorf("Range %.30q…: %s, %d bytes (%v); want %d, at most %d bytes", tc.rng, res.Status, len(b), err, tc.code, tc.max)
		}
	}
}

// TestHTTPSOnlyHTTP1: the HTTPS listener does not offer h2 in ALPN, so its
// per-connection deadlines (body timeout, upload rate) act on one request
// at a time.
func TestHTTPSOnlyHTTP1(t *testing.T) {
	ts := startTestServer(t)
	cfg := ts.TLSConfig.Clone()
	cfg.NextProtos = []string{"h2", "http/1.1"}
	c, err := tls.Dial("tcp", ts.httpLn.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := c.ConnectionState().NegotiatedProtocol; p == "h2" {
		t.Fatalf("negotiated %q", p)
	}
}
