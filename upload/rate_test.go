package upload_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"chatbx.eu/privacy/upload"
	"chatbx.eu/privacy/upload/uploadtest"
)

// deadlineRecorder is a ResponseRecorder that supports
// http.ResponseController deadlines and records every one set.
type deadlineRecorder struct {
	*httptest.ResponseRecorder
	mu           sync.Mutex
	read, writes []time.Time
}

func (d *deadlineRecorder) SetReadDeadline(t time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.read = append(d.read, t)
	return nil
}

func (d *deadlineRecorder) SetWriteDeadline(t time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.writes = append(d.writes, t)
	return nil
}

// checkDeadlines checks a sequence of deadlines: a first one set, at least
// moves more set after it, and the last one cleared (zero) or not.
func checkDeadlines(t *testing.T, what string, ds []time.Time, moves int, cleared bool) {
	t.Helper()
	if len(ds) == 0 || ds[0].IsZero() {
		t.Fatalf("%s: no deadline set first: %v", what, ds)
	}
	n := len(ds) - 1
	if cleared {
		if !ds[n].IsZero() {
			t.Fatalf("%s: last deadline not cleared: %v", what, ds)
		}
		n--
	}
	if n < moves {
		t.Fatalf("%s: deadline moved %d times, want at least %d", what, n, moves)
	}
	for _, d := range ds[1 : n+1] {
		if d.IsZero() {
			t.Fatalf("%s: cleared before the end: %v", what, ds)
		}
	}
}

// TestRateDeadlines follows the deadlines the handler sets through
// http.ResponseController: a PUT's read deadline is set at once, moved as
// the body arrives and cleared at its end; a refused PUT keeps it (net/http
// may read on); a GET's write deadline moves every MinRate bytes and is
// cleared before the handler returns, so the next request on the
// connection does not inherit it.
func TestRateDeadlines(t *testing.T) {
	e := newEnv(t, func(c *upload.Config) { c.MinRate = 1024 })
	data := fileOf(10 << 10)
	s := e.slot(t, alice, "a.bin", int64(len(data)), "")

	put := func(body io.Reader, edit func(*http.Request)) *deadlineRecorder {
		r := httptest.NewRequest(http.MethodPut, s.PutURL, body)
		for k, v := range s.Header {
			r.Header[k] = v
		}
		if edit != nil {
			edit(r)
		}
		w := &deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}
		e.svc.ServeHTTP(w, r)
		return w
	}
	w := put(strings.NewReader(data), func(r *http.Request) { r.Header.Del("Authorization") })
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("PUT without token = %d", w.Code)
	}
	checkDeadlines(t, "refused PUT", w.read, 0, false)

	// One byte per Read: the deadline moves once per KiB.
	w = put(&hookReader{r: strings.NewReader(data)}, nil)
	if w.Code != http.StatusCreated {
		t.Fatalf("PUT = %d", w.Code)
	}
	checkDeadlines(t, "PUT", w.read, 10, true)
	if len(w.writes) != 0 {
		t.Fatalf("PUT set write deadlines: %v", w.writes)
	}

	g := &deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}
	e.svc.ServeHTTP(g, httptest.NewRequest(http.MethodGet, s.GetURL, nil))
	if g.Code != http.StatusOK || g.Body.String() != data {
		t.Fatalf("GET = %d, %d bytes", g.Code, g.Body.Len())
	}
	checkDeadlines(t, "GET", g.writes, 10, true)

	// A ResponseWriter with ReadFrom (net/http's, for sendfile) gets the
	// file in pieces of MinRate bytes, the deadline moving after each.
	rf := &readFromRecorder{deadlineRecorder: deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}}
	e.svc.ServeHTTP(rf, httptest.NewRequest(http.MethodGet, s.GetURL, nil))
	if rf.Code != http.StatusOK || rf.Body.String() != data || rf.calls < 10 {
		t.Fatalf("GET via ReadFrom = %d, %d bytes, %d calls", rf.Code, rf.Body.Len(), rf.calls)
	}
	checkDeadlines(t, "GET via ReadFrom", rf.writes, 10, true)

	h := &deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}
	e.svc.ServeHTTP(h, httptest.NewRequest(http.MethodHead, s.GetURL, nil))
	if h.Code != http.StatusOK || len(h.writes) != 0 {
		t.Fatalf("HEAD = %d, write deadlines %v", h.Code, h.writes)
	}

	// A negative MinRate sets no deadline.
	off := newEnv(t, func(c *upload.Config) { c.MinRate = -1 })
	s2 := off.slot(t, alice, "b.bin", 10, "")
	r := httptest.NewRequest(http.MethodPut, s2.PutURL, strings.NewReader("0123456789"))
	for k, v := range s2.Header {
		r.Header[k] = v
	}
	w = &deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}
	off.svc.ServeHTTP(w, r)
	if w.Code != http.StatusCreated || len(w.read) != 0 {
		t.Fatalf("MinRate -1: PUT = %d, read deadlines %v", w.Code, w.read)
	}
}

// readFromRecorder is a deadlineRecorder with io.ReaderFrom, like net/http's
// ResponseWriter.
type readFromRecorder struct {
	deadlineRecorder
	calls int
}

func (r *readFromRecorder) ReadFrom(src io.Reader) (int64, error) {
	r.calls++
	return io.Copy(r.Body, src)
}

// rateServer serves e's handler over TLS; done receives each finished
// request's method.
func rateServer(t *testing.T, e *env) (addr string, done chan string) {
	t.Helper()
	addr, done = rateServerTLS(t, e, true)
	return addr, done
}

// rateServerTLS is rateServer over TLS or, as behind a TLS-terminating
// proxy, plain TCP (where net/http's ReadFrom may use sendfile).
func rateServerTLS(t *testing.T, e *env, useTLS bool) (addr string, done chan string) {
	t.Helper()
	done = make(chan string, 16)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.svc.ServeHTTP(w, r)
		done <- r.Method
	}))
	if useTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), done
}

// dialRate connects to a rateServerTLS.
func dialRate(t *testing.T, addr string, useTLS bool) net.Conn {
	t.Helper()
	var c net.Conn
	var err error
	if useTLS {
		c, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // the test server's own certificate
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestSlowPutCut: a client that sends part of the body and then stops is
// cut when no MinRate bytes came in a RateWindow: 408, nothing stored, the
// slot spent.
func TestSlowPutCut(t *testing.T) {
	e := newEnv(t, func(c *upload.Config) { c.MinRate, c.RateWindow = 1024, 200*time.Millisecond })
	addr, _ := rateServer(t, e)
	const size = 1 << 20
	s := e.slot(t, alice, "a.bin", size, "")
	conn := dialRate(t, addr, true)
	fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: upload.example.org\r\nAuthorization: %s\r\nContent-Length: %d\r\n\r\n%s",
		pathOf(t, s.PutURL), s.Header.Get("Authorization"), size, strings.Repeat("x", 100))
	// The client sends nothing more and waits for the server.
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second)) // a hung server fails the test
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("slow PUT = %s, want 408", res.Status)
	}
	if e.blobs.Len() != 0 || e.blobs.Pending() != 0 {
		t.Fatalf("%d blobs, %d pending after a cut upload", e.blobs.Len(), e.blobs.Pending())
	}
	if w := e.put(t, s, strings.NewReader(strings.Repeat("x", size)), nil); w.Code != http.StatusConflict {
		t.Fatalf("PUT again = %d, want 409 (slot spent)", w.Code)
	}
}

// TestSlowGetCut: a client that stops reading a large download is cut once
// the server could not write MinRate bytes in a RateWindow: the handler
// returns and the client gets less than the file. 32 MiB is far more than
// loopback buffers hold for a socket whose reader reads nothing (the
// receive buffer only grows as the application reads).
func TestSlowGetCut(t *testing.T) {
	for _, useTLS := range []bool{true, false} {
		t.Run(map[bool]string{true: "TLS", false: "plain"}[useTLS], func(t *testing.T) {
			e := newEnv(t, func(c *upload.Config) { c.MinRate, c.RateWindow = 64<<10, 200*time.Millisecond })
			const size = 32 << 20
			s := e.upload(t, alice, "big.bin", "", strings.Repeat("y", size))
			addr, done := rateServerTLS(t, e, useTLS)
			conn := dialRate(t, addr, useTLS)
			fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: upload.example.org\r\n\r\n", pathOf(t, s.GetURL))
			// Read nothing until the server gave up.
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("the handler still writes to a client that reads nothing")
			}
			_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			n, err := io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if err == nil || n >= size {
				t.Fatalf("read %d of %d bytes, err %v: the download was not cut", n, size, err)
			}
		})
	}
}

// TestGetPlainAndTLS: a whole file arrives intact over TLS and over plain
// TCP (ReadFrom in MinRate pieces), on the file-system store.
func TestGetPlainAndTLS(t *testing.T) {
	for _, useTLS := range []bool{true, false} {
		e := newEnv(t, func(c *upload.Config) { c.MinRate = 1000 })
		fsEnv, err := upload.NewService(uploadtest.NewMemMeta(), newFSBlobs(t), upload.Config{BaseURL: base, Key: key1, MinRate: 1000})
		if err != nil {
			t.Fatal(err)
		}
		e.svc = fsEnv
		data := fileOf(3<<20 + 17)
		s := e.upload(t, alice, "f.bin", "", data)
		addr, _ := rateServerTLS(t, e, useTLS)
		conn := dialRate(t, addr, useTLS)
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: upload.example.org\r\nConnection: close\r\n\r\n", pathOf(t, s.GetURL))
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || res.StatusCode != http.StatusOK || string(got) != data {
			t.Fatalf("TLS %v: GET = %d, %d of %d bytes, %v", useTLS, res.StatusCode, len(got), len(data), err)
		}
	}
}
