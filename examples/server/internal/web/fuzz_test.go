package web_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"chatbx.eu/privacy/examples/server/internal/web"
)

// FuzzForms posts arbitrary bodies to every action: the handler never
// panics, always answers with a known status and its security headers, and
// never changes an account without its password.
func FuzzForms(f *testing.F) {
	f.Add(uint8(0), "username=alice&password=wrong&new=x&new2=x")
	f.Add(uint8(1), "username=alice&password=correct+horse")
	f.Add(uint8(2), "username=alice&password=correct+horse&confirm=alice%40example.org")
	f.Add(uint8(2), "username=%ff%fe&password=&confirm=;;&&==")
	f.Add(uint8(0), "%zz")
	paths := []string{"/account/password", "/account/export", "/account/delete"}
	f.Fuzz(func(t *testing.T, which uint8, body string) {
		b := newFakeBackend()
		h := web.New(testConfig(b))
		req := httptest.NewRequest("POST", paths[int(which)%len(paths)], strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusForbidden, http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
		default:
			t.Fatalf("status %d for %q", rec.Code, body)
		}
		if rec.Header().Get("Content-Security-Policy") == "" || len(rec.Header().Values("Set-Cookie")) != 0 {
			t.Fatalf("headers %v", rec.Header())
		}
		form, _ := url.ParseQuery(body)
		if !slices.Contains(form["password"], "correct horse") {
			if pw, ok := b.password("alice"); !ok || pw != "correct horse" {
				t.Fatalf("alice changed without her password by %q", body)
			}
		}
	})
}
