package upload_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"chatbx.eu/privacy/upload"
)

// grantPut PUTs body under g over (simulated) HTTPS.
func (e *env) grantPut(t testing.TB, g upload.Grant, body string, edit func(*http.Request)) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPut, "https://upload.example.org/x/"+g.Path, strings.NewReader(body))
	if edit != nil {
		edit(r)
	}
	w := httptest.NewRecorder()
	e.svc.ServeGranted(w, r, g)
	return w
}

func (e *env) grantGet(t testing.TB, path string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "https://upload.example.org/x/"+path, nil)
	w := httptest.NewRecorder()
	e.svc.ServeGranted(w, r, upload.Grant{Path: path})
	return w
}

// TestServeGranted: a granted PUT is stored once, served back, refused when
// it breaks what the grant binds, and answered with the status documented
// for each case.
func TestServeGranted(t *testing.T) {
	owner := "alice@example.org"
	ok := func(p string) upload.Grant {
		return upload.Grant{Path: p, Owner: owner, Size: 5, ContentType: "text/plain"}
	}
	for _, tc := range []struct {
		name string
		g    upload.Grant
		body string
		edit func(*http.Request)
		want int
	}{
		{"ok", ok("s1/a.txt"), "hello", nil, http.StatusCreated},
		{"plain http", ok("s2/a.txt"), "hello", func(r *http.Request) { r.TLS = nil }, http.StatusForbidden},
		{"short body", ok("s3/a.txt"), "hell", nil, http.StatusBadRequest},
		{"long body", ok("s4/a.txt"), "hello!", nil, http.StatusRequestEntityTooLarge},
		{"other type", ok("s5/a.txt"), "hello", func(r *http.Request) { r.Header.Set("Content-Type", "text/html") }, http.StatusBadRequest},
		{"slot expired", upload.Grant{Path: "s6/a.txt", Owner: owner, Size: 5, SlotExpires: time.Unix(1, 0)}, "hello", nil, http.StatusGone},
		{"above max size", upload.Grant{Path: "s7/a.txt", Owner: owner, Size: 200 << 20}, "hello", nil, http.StatusRequestEntityTooLarge},
		{"empty path", upload.Grant{Owner: owner, Size: 5}, "hello", nil, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			if w := e.grantPut(t, tc.g, tc.body, tc.edit); w.Code != tc.want {
				t.Fatalf("PUT = %d, want %d", w.Code, tc.want)
			}
			w := e.grantGet(t, tc.g.Path)
			if tc.want == http.StatusCreated {
				if w.Code != http.StatusOK || w.Body.String() != tc.body {
					t.Fatalf("GET = %d %q", w.Code, w.Body)
				}
			} else if w.Code != http.StatusNotFound {
				t.Fatalf("GET after a refused PUT = %d, want 404 (nothing kept)", w.Code)
			}
		})
	}
}

// TestServeGrantedOnce: a Path holds one file; a second PUT is 409 and
// leaves the first intact.
func TestServeGrantedOnce(t *testing.T) {
	e := newEnv(t, nil)
	g := upload.Grant{Path: "s/a.txt", Owner: "alice@example.org", Size: 5}
	if w := e.grantPut(t, g, "hello", nil); w.Code != http.StatusCreated {
		t.Fatalf("PUT = %d", w.Code)
	}
	if w := e.grantPut(t, g, "HELLO", nil); w.Code != http.StatusConflict {
		t.Fatalf("second PUT = %d, want 409", w.Code)
	}
	if w := e.grantGet(t, "s/a.txt"); w.Body.String() != "hello" {
		t.Fatalf("GET = %q", w.Body)
	}
}

// TestServeGrantedExpiry: the file is gone at the earlier of the grant's
// Expires and upload time + TTL, for GET at once and for the bytes at the
// next Expire.
func TestServeGrantedExpiry(t *testing.T) {
	for _, tc := range []struct {
		name    string
		expires time.Duration // after upload; 0: none
		want    time.Duration
	}{
		{"grant earlier", time.Hour, time.Hour},
		{"TTL earlier", 48 * time.Hour, 24 * time.Hour},
		{"no grant expiry", 0, 24 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *upload.Config) { c.TTL = 24 * time.Hour })
			g := upload.Grant{Path: "s/a.txt", Owner: "alice@example.org", Size: 5}
			if tc.expires != 0 {
				g.Expires = e.clock.Now().Add(tc.expires)
			}
			if w := e.grantPut(t, g, "hello", nil); w.Code != http.StatusCreated {
				t.Fatalf("PUT = %d", w.Code)
			}
			e.clock.Add(tc.want - time.Second)
			if w := e.grantGet(t, g.Path); w.Code != http.StatusOK {
				t.Fatalf("GET before expiry = %d", w.Code)
			}
			e.clock.Add(time.Second)
			if w := e.grantGet(t, g.Path); w.Code != http.StatusNotFound {
				t.Fatalf("GET at expiry = %d, want 404", w.Code)
			}
			e.clock.Add(time.Second)
			if _, err := e.svc.Expire(context.Background(), time.Time{}); err != nil {
				t.Fatal(err)
			}
			if n := e.blobs.Len(); n != 0 {
				t.Fatalf("%d blobs left after Expire", n)
			}
		})
	}
}

// TestServeGrantedQuotaAndErase: a grant's Owner keys the stored quota and
// EraseOwner; grants without an owner are not erased by it.
func TestServeGrantedQuotaAndErase(t *testing.T) {
	e := newEnv(t, func(c *upload.Config) { c.StoredQuota = 8 })
	const h = "0123456789abcdef0123456789abcdef01234567" // an ejabberd-style SHA-1 owner
	if w := e.grantPut(t, upload.Grant{Path: h + "/r1/a", Owner: h, Size: 5}, "hello", nil); w.Code != http.StatusCreated {
		t.Fatalf("PUT = %d", w.Code)
	}
	if w := e.grantPut(t, upload.Grant{Path: h + "/r2/a", Owner: h, Size: 5}, "hello", nil); w.Code != http.StatusInsufficientStorage {
		t.Fatalf("PUT over quota = %d, want 507", w.Code)
	}
	if w := e.grantPut(t, upload.Grant{Path: "anon/a", Size: 5}, "hello", nil); w.Code != http.StatusCreated {
		t.Fatalf("PUT without owner = %d", w.Code)
	}
	if err := e.svc.EraseOwner(context.Background(), ""); err == nil {
		t.Fatal("EraseOwner(\"\") succeeded")
	}
	if err := e.svc.EraseOwner(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	if w := e.grantGet(t, h+"/r1/a"); w.Code != http.StatusNotFound {
		t.Fatalf("GET after EraseOwner = %d", w.Code)
	}
	if w := e.grantGet(t, "anon/a"); w.Code != http.StatusOK {
		t.Fatalf("GET of an ownerless file = %d, want 200", w.Code)
	}
	if n := e.blobs.Len(); n != 1 {
		t.Fatalf("%d blobs, want 1", n)
	}
}

// TestServeGrantedKeyRotation: a granted file stays reachable when the key
// that named it becomes PreviousKey.
func TestServeGrantedKeyRotation(t *testing.T) {
	e := newEnv(t, nil)
	if w := e.grantPut(t, upload.Grant{Path: "s/a", Owner: "a@b", Size: 1}, "x", nil); w.Code != http.StatusCreated {
		t.Fatalf("PUT = %d", w.Code)
	}
	svc, err := upload.NewService(e.meta, e.blobs, upload.Config{BaseURL: base, Key: key2, PreviousKey: key1, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	if w := e.grantGet(t, "s/a"); w.Code != http.StatusOK {
		t.Fatalf("GET after rotation = %d", w.Code)
	}
}
