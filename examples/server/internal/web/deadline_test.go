package web_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"chatbx.eu/privacy/examples/server/internal/web"
)

// TestSlowFormCut: a client that sends part of a form and stops is answered
// 408 once FormTimeout passes, nothing is done, and its connection is
// closed. The test waits for the server, not for a clock.
func TestSlowFormCut(t *testing.T) {
	b := newFakeBackend()
	cfg := testConfig(b)
	cfg.FormTimeout = 200 * time.Millisecond
	srv := startServer(t, cfg)
	conn, err := tls.Dial("tcp", srv.Listener.Addr().String(), &tls.Config{InsecureSkipVerify: true}) // the test server's own certificate
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	form := vals("username", "alice", "password", "correct horse", "new", "new password 1", "new2", "new password 1").Encode()
	fmt.Fprintf(conn, "POST /account/password HTTP/1.1\r\nHost: example.org\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s",
		len(form), form[:10])
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second)) // a hung server fails the test
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(page), "unchanged") {
		t.Fatalf("slow form = %s: %s", res.Status, page)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("connection still open after the cut: %v", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.passwords["alice"] != "correct horse" {
		t.Fatal("password changed by a cut form")
	}
}

// deadlineRecorder records the read deadlines set through
// http.ResponseController.
type deadlineRecorder struct {
	*httptest.ResponseRecorder
	mu   sync.Mutex
	read []time.Time
}

func (d *deadlineRecorder) SetReadDeadline(t time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.read = append(d.read, t)
	return nil
}

// TestFormDeadlineCleared: the read deadline is set before the form is read
// and cleared once it is, so the work that follows (an export) is not cut by
// it; the default is DefaultFormTimeout.
func TestFormDeadlineCleared(t *testing.T) {
	h := web.New(testConfig(newFakeBackend()))
	form := vals("username", "alice", "password", "correct horse").Encode()
	r := httptest.NewRequest(http.MethodPost, "https://example.org/account/export", strings.NewReader(form))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := &deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}
	before := time.Now()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("export = %d", w.Code)
	}
	if len(w.read) != 2 || !w.read[1].IsZero() {
		t.Fatalf("read deadlines %v: want one set, then cleared", w.read)
	}
	if d := w.read[0].Sub(before); d < web.DefaultFormTimeout {
		t.Fatalf("deadline %v after the request, want DefaultFormTimeout", d)
	}
}
