package upload_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"chatbx.eu/privacy/internal/testclock"
	"chatbx.eu/privacy/upload"
	"chatbx.eu/privacy/upload/uploadtest"
)

const base = "https://upload.example.org/upload"

var (
	alice = jid.MustParse("alice@example.org/phone") // test data, not network input
	bob   = jid.MustParse("bob@example.org/laptop")
	key1  = bytes.Repeat([]byte{1}, 32)
	key2  = bytes.Repeat([]byte{2}, 32)
)

type env struct {
	svc   *upload.Service
	meta  upload.MetaStore
	blobs *uploadtest.MemBlobs
	clock *testclock.Clock
}

// newEnv builds a Service on in-memory stores with a fake clock; edit
// adjusts the Config.
func newEnv(t testing.TB, edit func(*upload.Config)) *env {
	t.Helper()
	e := &env{meta: uploadtest.NewMemMeta(), blobs: uploadtest.NewMemBlobs(), clock: testclock.New()}
	cfg := upload.Config{BaseURL: base, Key: key1, Now: e.clock.Now}
	if edit != nil {
		edit(&cfg)
	}
	svc, err := upload.NewService(e.meta, e.blobs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	return e
}

func (e *env) slot(t testing.TB, owner jid.JID, name string, size int64, ct string) upload.Slot {
	t.Helper()
	s, err := e.svc.RequestSlot(context.Background(), owner, name, size, ct)
	if err != nil {
		t.Fatalf("RequestSlot: %v", err)
	}
	return s
}

// put PUTs body to the slot over (simulated) HTTPS with the slot's headers.
func (e *env) put(t testing.TB, s upload.Slot, body io.Reader, edit func(*http.Request)) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPut, s.PutURL, body) // https target: r.TLS is set
	for k, v := range s.Header {
		r.Header[k] = v
	}
	if edit != nil {
		edit(r)
	}
	w := httptest.NewRecorder()
	e.svc.ServeHTTP(w, r)
	return w
}

func (e *env) get(t testing.TB, method, u string, edit func(*http.Request)) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, u, nil)
	if edit != nil {
		edit(r)
	}
	w := httptest.NewRecorder()
	e.svc.ServeHTTP(w, r)
	return w
}

// upload stores a file and returns its slot.
func (e *env) upload(t testing.TB, owner jid.JID, name, ct, data string) upload.Slot {
	t.Helper()
	s := e.slot(t, owner, name, int64(len(data)), ct)
	if w := e.put(t, s, strings.NewReader(data), nil); w.Code != http.StatusCreated {
		t.Fatalf("PUT = %d %s", w.Code, w.Body)
	}
	return s
}

func pathOf(t testing.TB, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p.Path
}
