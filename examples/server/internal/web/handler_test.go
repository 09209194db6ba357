package web_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"chatbx.eu/privacy/examples/server/internal/web"
)

var testItems = []web.PrivacyItem{
	{Data: "Uploaded files", Lifetime: 30 * 24 * time.Hour, Job: "upload expiry"},
	{Data: "Connection logs (anonymized IPs)", Lifetime: 24 * time.Hour, Job: "log rotation"},
	{Data: "HTTP error logs", Lifetime: 90 * time.Minute, Job: "error log expiry"},
	{Data: "Message archive", Lifetime: 0, Job: "account deletion"},
	{Data: "Interrupted erasures", Kept: "until erased, retried hourly", Job: "erasure retry"},
}

func testConfig(b web.Backend) web.Config {
	return web.Config{
		Backend: b,
		Privacy: func(context.Context) ([]web.PrivacyItem, error) { return testItems, nil },
		Domain:  "example.org",
	}
}

// startServer serves the pages over TLS.
func startServer(t testing.TB, cfg web.Config) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(web.New(cfg))
	t.Cleanup(srv.Close)
	return srv
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func do(t testing.TB, srv *httptest.Server, method, path string, form url.Values, hdr map[string]string) response {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	client := srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

var cspRE = regexp.MustCompile(`^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/]{43}='; form-action 'self'; frame-ancestors 'none'; base-uri 'none'$`)

// checkHeaders asserts the headers every answer carries.
func checkHeaders(t *testing.T, h http.Header) {
	t.Helper()
	if got := h.Get("Content-Security-Policy"); !cspRE.MatchString(got) {
		t.Errorf("Content-Security-Policy = %q", got)
	}
	for k, want := range map[string]string{
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
		"Cache-Control":          "no-store",
		"X-Frame-Options":        "DENY",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if c := h.Values("Set-Cookie"); len(c) != 0 {
		t.Errorf("Set-Cookie sent: %q", c)
	}
}

func vals(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

func TestFlows(t *testing.T) {
	type state struct {
		user     string
		password string // "" means the account must be gone
	}
	aliceKept := state{"alice", "correct horse"}
	tests := []struct {
		name       string
		method     string
		path       string
		form       url.Values
		hdr        map[string]string
		exportErr  error
		wantStatus int
		wantType   string   // media type prefix
		wantBody   []string // substrings of the body
		wantState  state
	}{
		{"account page", "GET", "/account", nil, nil, nil, 200, "text/html",
			[]string{`<form id="password" method="post" action="/account/password">`, `<label for="del-confirm">`, `example.org`}, aliceKept},
		{"account slash redirects", "GET", "/account/", nil, nil, nil, 303, "", nil, aliceKept},
		{"privacy page", "GET", "/privacy", nil, nil, nil, 200, "text/html",
			[]string{"Uploaded files</td><td>30 days</td><td>upload expiry", "24 hours", "90 minutes", "until you delete it", "<td>until erased, retried hourly</td>"}, aliceKept},
		{"unknown path", "GET", "/account/nope", nil, nil, nil, 404, "", nil, aliceKept},
		{"action by GET", "GET", "/account/delete", nil, nil, nil, 405, "", nil, aliceKept},

		{"change password", "POST", "/account/password", vals("username", "alice", "password", "correct horse", "new", "new secret", "new2", "new secret"), nil, nil,
			200, "text/html", []string{"Your password has been changed"}, state{"alice", "new secret"}},
		{"change password, full JID", "POST", "/account/password", vals("username", " alice@EXAMPLE.org ", "password", "correct horse", "new", "new secret", "new2", "new secret"), nil, nil,
			200, "text/html", []string{"Your password has been changed"}, state{"alice", "new secret"}},
		{"change password, wrong current", "POST", "/account/password", vals("username", "alice", "password", "wrong", "new", "new secret", "new2", "new secret"), nil, nil,
			403, "text/html", []string{"Wrong username or password. Your password is unchanged."}, aliceKept},
		{"change password, new ones differ", "POST", "/account/password", vals("username", "alice", "password", "correct horse", "new", "new secret", "new2", "new secreT"), nil, nil,
			400, "text/html", []string{"The two new passwords differ. Your password is unchanged."}, aliceKept},
		{"change password, rejected by backend", "POST", "/account/password", vals("username", "alice", "password", "correct horse", "new", "abc", "new2", "abc"), nil, nil,
			400, "text/html", []string{"does not meet this server&#39;s rules", "one of the most common passwords", "Your password is unchanged."}, aliceKept},
		{"change password, field missing", "POST", "/account/password", vals("username", "alice", "password", "correct horse", "new", "new secret"), nil, nil,
			400, "text/html", []string{"Fill in every field. Your password is unchanged."}, aliceKept},
		{"change password, field too long", "POST", "/account/password", vals("username", "alice", "password", "correct horse", "new", strings.Repeat("x", 1025), "new2", strings.Repeat("x", 1025)), nil, nil,
			400, "text/html", []string{"too long"}, aliceKept},
		{"password in the URL is ignored", "POST", "/account/password?username=alice&password=correct+horse&new=new+secret&new2=new+secret", url.Values{}, nil, nil,
			400, "text/html", []string{"Fill in every field"}, aliceKept},
		{"body too large", "POST", "/account/password", vals("username", "alice", "password", "correct horse", "new", "x", "new2", "x", "pad", strings.Repeat("p", 20<<10)), nil, nil,
			413, "text/html", []string{"too large"}, aliceKept},

		{"export", "POST", "/account/export", vals("username", "alice", "password", "correct horse"), nil, nil,
			200, "application/zip", nil, aliceKept},
		{"export, wrong password", "POST", "/account/export", vals("username", "alice", "password", "wrong"), nil, nil,
			403, "text/html", []string{"Wrong username or password. Nothing was exported."}, aliceKept},
		{"export, backend fails before writing", "POST", "/account/export", vals("username", "alice", "password", "correct horse"), nil, errors.New("fake: disk on fire"),
			500, "text/html", []string{"Something went wrong on the server. Nothing was exported."}, aliceKept},

		{"delete", "POST", "/account/delete", vals("username", "alice", "password", "correct horse", "confirm", "alice"), nil, nil,
			200, "text/html", []string{"Your account has been deleted"}, state{"alice", ""}},
		{"delete, full JID confirmed by localpart", "POST", "/account/delete", vals("username", "alice@example.org", "password", "correct horse", "confirm", "alice"), nil, nil,
			200, "text/html", []string{"Your account has been deleted"}, state{"alice", ""}},
		{"delete, wrong password", "POST", "/account/delete", vals("username", "alice", "password", "wrong", "confirm", "alice"), nil, nil,
			403, "text/html", []string{"Wrong username or password. Nothing was deleted."}, aliceKept},
		{"delete, username mistyped", "POST", "/account/delete", vals("username", "alice", "password", "correct horse", "confirm", "alcie"), nil, nil,
			400, "text/html", []string{"The username typed again does not match the username. Nothing was deleted."}, aliceKept},
		{"delete, confirmation missing", "POST", "/account/delete", vals("username", "alice", "password", "correct horse"), nil, nil,
			400, "text/html", []string{"Fill in every field. Nothing was deleted."}, aliceKept},

		{"cross-site post", "POST", "/account/delete", vals("username", "alice", "password", "correct horse", "confirm", "alice"), map[string]string{"Sec-Fetch-Site": "cross-site"}, nil,
			403, "text/html", []string{"sent from another site", "Nothing was changed"}, aliceKept},
		{"foreign origin post", "POST", "/account/delete", vals("username", "alice", "password", "correct horse", "confirm", "alice"), map[string]string{"Origin": "https://attacker.example"}, nil,
			403, "text/html", []string{"sent from another site"}, aliceKept},
		{"same-origin post", "POST", "/account/password", vals("username", "alice", "password", "correct horse", "new", "new secret", "new2", "new secret"), map[string]string{"Sec-Fetch-Site": "same-origin"}, nil,
			200, "text/html", []string{"Your password has been changed"}, state{"alice", "new secret"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newFakeBackend()
			b.exportErr = tc.exportErr
			srv := startServer(t, testConfig(b))
			resp := do(t, srv, tc.method, tc.path, tc.form, tc.hdr)
			if resp.status != tc.wantStatus {
				t.Errorf("status = %d, want %d; body:\n%s", resp.status, tc.wantStatus, resp.body)
			}
			checkHeaders(t, resp.header)
			if ct := resp.header.Get("Content-Type"); !strings.HasPrefix(ct, tc.wantType) {
				t.Errorf("Content-Type = %q, want %q…", ct, tc.wantType)
			}
			for _, s := range tc.wantBody {
				if !bytes.Contains(resp.body, []byte(s)) {
					t.Errorf("body lacks %q:\n%s", s, resp.body)
				}
			}
			pw, ok := b.password(tc.wantState.user)
			switch {
			case tc.wantState.password == "" && ok:
				t.Errorf("account %s still exists", tc.wantState.user)
			case tc.wantState.password != "" && pw != tc.wantState.password:
				t.Errorf("password of %s = %q (exists %v), want %q", tc.wantState.user, pw, ok, tc.wantState.password)
			}
			if _, ok := b.password("bob"); !ok {
				t.Error("bob's account was touched")
			}
		})
	}
}

func TestExportDownload(t *testing.T) {
	srv := startServer(t, testConfig(newFakeBackend()))
	resp := do(t, srv, "POST", "/account/export", vals("username", "bob", "password", "battery staple"), nil)
	if resp.status != 200 {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	checkHeaders(t, resp.header)
	if got, want := resp.header.Get("Content-Type"), "application/zip"; got != want {
		t.Errorf("Content-Type = %q, want %q", got, want)
	}
	if got, want := resp.header.Get("Content-Disposition"), `attachment; filename="account-export.zip"`; got != want {
		t.Errorf("Content-Disposition = %q, want %q", got, want)
	}
	zr, err := zip.NewReader(bytes.NewReader(resp.body), int64(len(resp.body)))
	if err != nil {
		t.Fatalf("not a zip: %v", err)
	}
	if len(zr.File) != 1 || zr.File[0].Name != "archive.txt" {
		t.Fatalf("zip holds %v", zr.File)
	}
	f, err := zr.File[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if b, _ := io.ReadAll(f); string(b) != "bob's archive" {
		t.Errorf("archive.txt = %q, want bob's archive", b)
	}
}

// TestBlockedAccount: the right password of a blocked account changes
// nothing and says why.
func TestBlockedAccount(t *testing.T) {
	for _, path := range []string{"/account/password", "/account/export", "/account/delete"} {
		b := newFakeBackend()
		b.blocked["alice"] = true
		srv := startServer(t, testConfig(b))
		resp := do(t, srv, "POST", path, vals("username", "alice", "password", "correct horse", "new", "new secret", "new2", "new secret", "confirm", "alice"), nil)
		if resp.status != http.StatusForbidden || !bytes.Contains(resp.body, []byte("This account is blocked")) {
			t.Errorf("%s: status %d, body:\n%s", path, resp.status, resp.body)
		}
		if pw, ok := b.password("alice"); !ok || pw != "correct horse" {
			t.Errorf("%s: blocked alice changed: %q %v", path, pw, ok)
		}
	}
}

// TestExportFailsLoudly: an export that fails after the first bytes aborts
// the connection, so the browser reports a failed download instead of
// keeping a truncated zip.
func TestExportFailsLoudly(t *testing.T) {
	b := newFakeBackend()
	b.breakOff = true
	srv := startServer(t, testConfig(b))
	resp, err := srv.Client().PostForm(srv.URL+"/account/export", vals("username", "alice", "password", "correct horse"))
	if err != nil {
		return // aborted before the headers: also a failed download
	}
	defer resp.Body.Close()
	if body, err := io.ReadAll(resp.Body); err == nil {
		t.Errorf("truncated export delivered as complete (status %d, %d bytes)", resp.StatusCode, len(body))
	}
}

// TestNoUsernameOracle: a wrong password and an unknown username get the
// same answer, byte for byte, both before and after the rate limit.
func TestNoUsernameOracle(t *testing.T) {
	for _, path := range []string{"/account/password", "/account/export", "/account/delete"} {
		t.Run(path, func(t *testing.T) {
			b := newFakeBackend()
			b.limit = 2
			srv := startServer(t, testConfig(b))
			form := func(user string) url.Values {
				return vals("username", user, "password", "wrong", "new", "new secret", "new2", "new secret", "confirm", user)
			}
			// Two failures (one per username) reach the limit.
			known := do(t, srv, "POST", path, form("alice"), nil)
			unknown := do(t, srv, "POST", path, form("mallory"), nil)
			if known.status != http.StatusForbidden || unknown.status != known.status || !bytes.Equal(known.body, unknown.body) {
				t.Errorf("answers differ: known user %d:\n%s\nunknown user %d:\n%s", known.status, known.body, unknown.status, unknown.body)
			}
			if !bytes.Contains(known.body, []byte("Wrong username or password.")) {
				t.Errorf("body lacks the generic message:\n%s", known.body)
			}
			// Now limited: even the right password is refused, and the
			// answers still match.
			known = do(t, srv, "POST", path, vals("username", "alice", "password", "correct horse", "new", "new secret", "new2", "new secret", "confirm", "alice"), nil)
			unknown = do(t, srv, "POST", path, form("mallory"), nil)
			if known.status != http.StatusTooManyRequests || unknown.status != known.status || !bytes.Equal(known.body, unknown.body) {
				t.Errorf("limited answers differ: known user %d:\n%s\nunknown user %d:\n%s", known.status, known.body, unknown.status, unknown.body)
			}
			if !bytes.Contains(known.body, []byte("Too many failed attempts")) {
				t.Errorf("429 body lacks a clear message:\n%s", known.body)
			}
			if pw, ok := b.password("alice"); !ok || pw != "correct horse" {
				t.Errorf("alice changed while rate limited: %q %v", pw, ok)
			}
		})
	}
}

func TestClientKey(t *testing.T) {
	t.Run("default is the remote IP", func(t *testing.T) {
		b := newFakeBackend()
		srv := startServer(t, testConfig(b))
		do(t, srv, "POST", "/account/export", vals("username", "alice", "password", "wrong"), map[string]string{"X-Forwarded-For": "192.0.2.1"})
		if len(b.keys) != 1 || b.keys[0] != "127.0.0.1" {
			t.Errorf("client keys = %q, want [127.0.0.1]", b.keys)
		}
	})
	t.Run("custom", func(t *testing.T) {
		b := newFakeBackend()
		cfg := testConfig(b)
		cfg.ClientKey = func(r *http.Request) string { return "198.51.100.0/24" }
		srv := startServer(t, cfg)
		do(t, srv, "POST", "/account/export", vals("username", "alice", "password", "wrong"), nil)
		if len(b.keys) != 1 || b.keys[0] != "198.51.100.0/24" {
			t.Errorf("client keys = %q, want [198.51.100.0/24]", b.keys)
		}
	})
}

// TestLogsNothingIdentifying: a backend failure is logged without the
// username, password or client address.
func TestLogsNothingIdentifying(t *testing.T) {
	var logs bytes.Buffer
	b := newFakeBackend()
	b.exportErr = errors.New("fake: disk on fire")
	cfg := testConfig(b)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	srv := startServer(t, cfg)
	resp := do(t, srv, "POST", "/account/export", vals("username", "alice", "password", "correct horse"), nil)
	if resp.status != 500 {
		t.Fatalf("status %d", resp.status)
	}
	if !strings.Contains(logs.String(), "disk on fire") {
		t.Errorf("failure not logged: %q", logs.String())
	}
	for _, secret := range []string{"alice", "correct horse", "127.0.0.1"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("log holds %q: %s", secret, logs.String())
		}
	}
}

func TestPrivacyFailure(t *testing.T) {
	cfg := testConfig(newFakeBackend())
	cfg.Privacy = func(context.Context) ([]web.PrivacyItem, error) { return nil, errors.New("fake: no report") }
	srv := startServer(t, cfg)
	resp := do(t, srv, "GET", "/privacy", nil, nil)
	if resp.status != 500 || !bytes.Contains(resp.body, []byte("unavailable")) {
		t.Errorf("status %d, body:\n%s", resp.status, resp.body)
	}
	checkHeaders(t, resp.header)
}

func TestZeroConfigPrivacy(t *testing.T) {
	srv := startServer(t, web.Config{Backend: newFakeBackend()})
	resp := do(t, srv, "GET", "/privacy", nil, nil)
	if resp.status != 200 || !bytes.Contains(resp.body, []byte("No retention job is configured")) || !bytes.Contains(resp.body, []byte("this server")) {
		t.Errorf("status %d, body:\n%s", resp.status, resp.body)
	}
}

func TestNewPanicsWithoutBackend(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New without a Backend did not panic")
		}
	}()
	web.New(web.Config{})
}
