package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"chatbx.eu/privacy/internal/testclock"
)

const adminSecret = "admin-secret-0123456789"

type testEnv struct {
	app   *app
	clock *testclock.Clock
	pub   *httptest.Server // HTTPS, the public handler
	adm   *httptest.Server // HTTP, the admin handler
	base  string           // pub.URL + "/files"
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	e := &testEnv{clock: testclock.New()}
	var h http.Handler
	e.pub = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(e.pub.Close)
	e.base = e.pub.URL + "/files"
	a, err := newApp(config{
		BaseURL: e.base, DataDir: t.TempDir(), TTL: 24 * time.Hour,
		Secrets:     secrets{Prosody: []byte(prosodySecret), Ejabberd: []byte(ejabberdSecret), External: []byte(externalSecret)},
		AdminSecret: []byte(adminSecret), Now: e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	e.app, h = a, a.public
	e.adm = httptest.NewServer(a.admin)
	t.Cleanup(e.adm.Close)
	return e
}

// do sends a request to the public server.
func (e *testEnv) do(t *testing.T, method, u, body string, hdr map[string]string) (int, string) {
	t.Helper()
	r, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	resp, err := e.pub.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// prosodyToken signs a slot as Prosody 0.12 does at the test clock's now.
func (e *testEnv) prosodyToken(sub, slot, name string, size int, ct string) string {
	now := e.clock.Now().Unix()
	return signJWT(prosodySecret, hs256, map[string]any{"sub": sub, "iat": now, "exp": now + 300,
		"slot": slot, "expires": now + 7*86400, "filename": name, "filesize": size, "filetype": ct})
}

func (e *testEnv) deleteUser(t *testing.T, user, secret string) int {
	t.Helper()
	r, _ := http.NewRequest(http.MethodDelete, e.adm.URL+"/users/"+url.PathEscape(user), nil)
	r.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func mac(secret, msg string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

// TestProsodyUpload: a slot Prosody signed is stored, served, expired at
// our TTL (earlier than Prosody's 7 days), and its bytes removed.
func TestProsodyUpload(t *testing.T) {
	e := newTestEnv(t)
	u := e.base + "/Yc2nqvS0bEMvt3UC/" + url.PathEscape("cat photo.jpg")
	tok := e.prosodyToken("alice@example.org", "Yc2nqvS0bEMvt3UC", "cat photo.jpg", 5, "image/jpeg")
	if code, _ := e.do(t, http.MethodPut, u, "hello", map[string]string{"Authorization": "Bearer " + tok, "Content-Type": "image/jpeg"}); code != http.StatusCreated {
		t.Fatalf("PUT = %d", code)
	}
	if code, body := e.do(t, http.MethodGet, u, "", nil); code != http.StatusOK || body != "hello" {
		t.Fatalf("GET = %d %q", code, body)
	}
	if code, _ := e.do(t, http.MethodPut, u, "hello", map[string]string{"Authorization": "Bearer " + tok}); code != http.StatusConflict {
		t.Fatalf("second PUT = %d, want 409", code)
	}
	e.clock.Add(24 * time.Hour)
	if code, _ := e.do(t, http.MethodGet, u, "", nil); code != http.StatusNotFound {
		t.Fatalf("GET after TTL = %d, want 404", code)
	}
	e.clock.Add(time.Second)
	if n, err := e.app.svc.Expire(context.Background(), time.Time{}); err != nil || n != 1 {
		t.Fatalf("Expire = %d, %v", n, err)
	}
}

// TestPutRefused: every broken promise of a signed URL is a clear 4xx and
// keeps nothing.
func TestPutRefused(t *testing.T) {
	e := newTestEnv(t)
	slot := "Yc2nqvS0bEMvt3UC"
	good := e.prosodyToken("alice@example.org", slot, "a.txt", 5, "text/plain")
	forged := good[:len(good)-2] + "AA"
	ejPath := ejabberdUser + "/Rand1/a.txt"
	for _, tc := range []struct {
		name, path, body string
		hdr              map[string]string
		want             int
	}{
		{"no token", slot + "/a.txt", "hello", nil, http.StatusUnauthorized},
		{"forged JWT", slot + "/a.txt", "hello", map[string]string{"Authorization": "Bearer " + forged}, http.StatusForbidden},
		{"JWT for another slot", "OtherSlot0000000/a.txt", "hello", map[string]string{"Authorization": "Bearer " + good}, http.StatusForbidden},
		{"JWT for another name", slot + "/b.txt", "hello", map[string]string{"Authorization": "Bearer " + good}, http.StatusForbidden},
		{"JWT wrong size", slot + "/a.txt", "hello!", map[string]string{"Authorization": "Bearer " + good}, http.StatusRequestEntityTooLarge},
		{"JWT short body", slot + "/a.txt", "hell", map[string]string{"Authorization": "Bearer " + good}, http.StatusBadRequest},
		{"JWT other type", slot + "/a.txt", "hello", map[string]string{"Authorization": "Bearer " + good, "Content-Type": "text/html"}, http.StatusBadRequest},
		{"traversal", slot + "/%2e%2e", "hello", map[string]string{"Authorization": "Bearer " + good}, http.StatusNotFound},
		{"encoded slash", slot + "%2F..%2Fa.txt", "hello", map[string]string{"Authorization": "Bearer " + good}, http.StatusNotFound},
		{"ejabberd forged", ejPath + "?v=" + strings.Repeat("0", 64), "hello", nil, http.StatusForbidden},
		{"ejabberd wrong size", ejPath + "?v=" + mac(ejabberdSecret, ejPath+" 4"), "hello", nil, http.StatusForbidden},
		{"ejabberd other user", strings.Repeat("a", 40) + "/Rand1/a.txt?v=" + mac(ejabberdSecret, ejPath+" 5"), "hello", nil, http.StatusForbidden},
		{"v2 other type", "u/a.txt?v2=" + mac(externalSecret, "u/a.txt\x005\x00text/plain"), "hello", map[string]string{"Content-Type": "text/html"}, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, _ := e.do(t, http.MethodPut, e.base+"/"+tc.path, tc.body, tc.hdr); code != tc.want {
				t.Fatalf("PUT = %d, want %d", code, tc.want)
			}
			p, _, _ := strings.Cut(tc.path, "?")
			if code, _ := e.do(t, http.MethodGet, e.base+"/"+p, "", nil); code != http.StatusNotFound {
				t.Fatalf("GET after a refused PUT = %d, want 404", code)
			}
		})
	}
	// A Prosody token past its exp (300 s) is 410.
	e.clock.Add(301 * time.Second)
	if code, _ := e.do(t, http.MethodPut, e.base+"/"+slot+"/a.txt", "hello", map[string]string{"Authorization": "Bearer " + good}); code != http.StatusGone {
		t.Fatalf("expired JWT = %d, want 410", code)
	}
}

// TestEjabberdAndExternalUpload: ejabberd's and mod_http_upload_external's
// signed URLs are accepted; the admin endpoint erases the files of a user
// uploaded through Prosody and ejabberd alike, and leaves others'.
func TestEjabberdAndExternalUpload(t *testing.T) {
	e := newTestEnv(t)
	ejPath := ejabberdUser + "/Rand1/a.txt"
	if code, _ := e.do(t, http.MethodPut, e.base+"/"+ejPath+"?v="+mac(ejabberdSecret, ejPath+" 5"), "hello", nil); code != http.StatusCreated {
		t.Fatalf("ejabberd PUT = %d", code)
	}
	v1Path := "uuid-1/b.txt"
	if code, _ := e.do(t, http.MethodPut, e.base+"/"+v1Path+"?v="+mac(externalSecret, v1Path+" 3"), "abc", nil); code != http.StatusCreated {
		t.Fatalf("v1 PUT = %d", code)
	}
	v2Path := "uuid-2/c.txt"
	if code, _ := e.do(t, http.MethodPut, e.base+"/"+v2Path+"?v2="+mac(externalSecret, v2Path+"\x003\x00text/plain"), "abc",
		map[string]string{"Content-Type": "text/plain"}); code != http.StatusCreated {
		t.Fatalf("v2 PUT = %d", code)
	}
	pPath := "Yc2nqvS0bEMvt3UC/d.txt"
	if code, _ := e.do(t, http.MethodPut, e.base+"/"+pPath, "hello", map[string]string{
		"Authorization": "Bearer " + e.prosodyToken("alice@example.org", "Yc2nqvS0bEMvt3UC", "d.txt", 5, "application/octet-stream")}); code != http.StatusCreated {
		t.Fatalf("Prosody PUT = %d", code)
	}
	bPath := "Zc2nqvS0bEMvt3UC/e.txt"
	if code, _ := e.do(t, http.MethodPut, e.base+"/"+bPath, "hello", map[string]string{
		"Authorization": "Bearer " + e.prosodyToken("bob@example.org", "Zc2nqvS0bEMvt3UC", "e.txt", 5, "text/plain")}); code != http.StatusCreated {
		t.Fatalf("Prosody PUT (bob) = %d", code)
	}
	for _, p := range []string{ejPath, v1Path, v2Path, pPath, bPath} {
		if code, _ := e.do(t, http.MethodGet, e.base+"/"+p, "", nil); code != http.StatusOK {
			t.Fatalf("GET %s = %d", p, code)
		}
	}
	if code := e.deleteUser(t, "alice@example.org", "wrong-secret-0123456"); code != http.StatusUnauthorized {
		t.Fatalf("DELETE with a wrong secret = %d, want 401", code)
	}
	if code := e.deleteUser(t, "example.org", adminSecret); code != http.StatusBadRequest {
		t.Fatalf("DELETE of a server JID = %d, want 400", code)
	}
	if code := e.deleteUser(t, "Alice@example.org", adminSecret); code != http.StatusNoContent {
		t.Fatalf("DELETE = %d, want 204", code)
	}
	for p, want := range map[string]int{ejPath: 404, pPath: 404, v1Path: 200, v2Path: 200, bPath: 200} {
		if code, _ := e.do(t, http.MethodGet, e.base+"/"+p, "", nil); code != want {
			t.Errorf("GET %s after erasure = %d, want %d", p, code, want)
		}
	}
	if code := e.deleteUser(t, "alice@example.org", adminSecret); code != http.StatusNoContent {
		t.Fatalf("repeated DELETE = %d, want 204 (idempotent)", code)
	}
}

// TestUnsized: a URL-signed PUT without a Content-Length is 411 (its size
// is what the signature binds).
func TestUnsized(t *testing.T) {
	e := newTestEnv(t)
	p := "uuid-1/b.txt"
	r, _ := http.NewRequest(http.MethodPut, e.base+"/"+p+"?v="+mac(externalSecret, p+" 3"), io.MultiReader(strings.NewReader("abc")))
	r.ContentLength = -1
	resp, err := e.pub.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusLengthRequired {
		t.Fatalf("PUT = %d, want 411", resp.StatusCode)
	}
}
