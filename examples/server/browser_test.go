package main

// Browser tests of the self-service pages against the real server: headless
// Chromium (internal/web/browsertest) on free loopback ports over TLS. The
// browser trusts the server's self-signed certificate alone, by its SPKI
// hash (--ignore-certificate-errors-spki-list); nothing else is relaxed.

import (
	"archive/zip"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"chatbx.eu/privacy/examples/server/internal/web/browsertest"
	"chatbx.eu/privacy/retention"
)

// browserPage drives one tab against a test server.
type browserPage struct {
	ctx context.Context
	ts  *testServer
}

func (p browserPage) open(t *testing.T, path string) {
	t.Helper()
	if err := chromedp.Do(p.ctx, chromedp.Navigate(p.ts.HTTPSURL+path)); err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
}

// submit opens /account, fills a form field by field (id → text) and
// submits it; it returns the status and the page's message.
func (p browserPage) submit(t *testing.T, form string, fields ...browsertest.Field) (int64, string) {
	t.Helper()
	p.open(t, "/account")
	resp, err := browsertest.Submit(p.ctx, "#"+form+` button[type="submit"]`, fields...)
	if err != nil {
		t.Fatalf("submit %s: %v", form, err)
	}
	return resp.Status, p.text(t, "#message")
}

func (p browserPage) text(t *testing.T, sel string) string {
	t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func field(id, text string) browsertest.Field {
	return browsertest.Field{Selector: "#" + id, Text: text}
}

func deleteFields(user, password, confirm string) []browsertest.Field {
	return []browsertest.Field{field("del-user", user), field("del-password", password), field("del-confirm", confirm)}
}

// TestBrowserAccountPages: every flow of /account and /privacy in a real
// browser against the real server, checked over XMPP and HTTPS.
func TestBrowserAccountPages(t *testing.T) {
	t.Parallel()
	// A clock that stands still: the login limiter refills nothing while
	// the test runs, so its counts are exact.
	now := time.Now()
	ts := startTestServer(t, withConfig(func(c *Config) { c.Now = func() time.Time { return now } }))
	for _, u := range []string{"alice", "bob", "carol", "dave", "erin"} {
		ts.Register(t, u, u+"'s first password")
	}
	p := browserPage{ctx: browsertest.Start(t, ts.Certificate()), ts: ts}

	t.Run("change password, then log in over XMPP with the new one", func(t *testing.T) {
		st, msg := p.submit(t, "password",
			field("pw-user", "alice"), field("pw-current", "alice's first password"),
			field("pw-new", "alice's second password"), field("pw-new2", "alice's second password"))
		if st != 200 || !strings.Contains(msg, "Your password has been changed") {
			t.Fatalf("status %d, message %q", st, msg)
		}
		ts.Login(t, "alice", "alice's second password")
		if c, err := ts.login("alice", "alice's first password", false); err == nil {
			c.Close()
			t.Error("the old password still logs in")
		}
	})

	t.Run("export holds the archive and the uploads", func(t *testing.T) {
		b := ts.Login(t, "bob", "bob's first password")
		e := ts.Login(t, "erin", "erin's first password")
		setPrefs(t, b, "always")
		chat(t, e, b, "archived for bob's export")
		uploadFile(t, ts, b, "bob.txt", "uploaded for bob's export")

		p.open(t, "/account")
		path, err := browsertest.Download(p.ctx, t.TempDir(), chromedp.Steps(
			chromedp.SendKeys(chromedp.CSS("#ex-user"), "bob"),
			chromedp.SendKeys(chromedp.CSS("#ex-password"), "bob's first password"),
			chromedp.Click(chromedp.CSS(`#export button[type="submit"]`)),
		))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := zip.OpenReader(path)
		if err != nil {
			t.Fatalf("the download is no zip: %v", err)
		}
		defer zr.Close()
		var all strings.Builder
		var names []string
		for _, f := range zr.File {
			names = append(names, f.Name)
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatalf("%s: %v", f.Name, err)
			}
			all.WriteString(f.Name + "\n" + string(b) + "\n")
		}
		for _, want := range []string{"account.json", "archived for bob's export", "uploaded for bob's export"} {
			if !strings.Contains(all.String(), want) {
				t.Errorf("export lacks %q; files %q", want, names)
			}
		}
		if strings.Contains(all.String(), "argon2id") {
			t.Error("the export holds the password hash")
		}
	})

	t.Run("delete", func(t *testing.T) {
		c := ts.Login(t, "carol", "carol's first password")
		file := uploadFile(t, ts, c, "carol.txt", "carol's file")
		stillThere := func(t *testing.T) {
			t.Helper()
			probe, err := ts.login("carol", "carol's first password", false)
			if err != nil {
				t.Fatalf("carol can no longer log in: %v", err)
			}
			probe.Close()
			if st := httpStatus(t, ts, file); st != http.StatusOK {
				t.Errorf("carol's upload answers %d", st)
			}
		}

		st, msg := p.submit(t, "delete", deleteFields("carol", "not carol's password", "carol")...)
		if st != 403 || msg != "Wrong username or password. Nothing was deleted." {
			t.Errorf("wrong password: status %d, message %q", st, msg)
		}
		stillThere(t)

		st, msg = p.submit(t, "delete", deleteFields("carol", "carol's first password", "carlo")...)
		if st != 400 || msg != "The username typed again does not match the username. Nothing was deleted." {
			t.Errorf("mistyped: status %d, message %q", st, msg)
		}
		stillThere(t)

		st, msg = p.submit(t, "delete", deleteFields("carol", "carol's first password", "carol")...)
		if st != 200 || !strings.Contains(msg, "Your account has been deleted") {
			t.Fatalf("delete: status %d, message %q", st, msg)
		}
		c.WaitEnd(t) // her open session was ended
		if probe, err := ts.login("carol", "carol's first password", false); err == nil {
			probe.Close()
			t.Error("carol still logs in over XMPP")
		}
		if st := httpStatus(t, ts, file); st == http.StatusOK {
			t.Error("carol's upload is still served")
		}
		if st, msg := p.submit(t, "export", field("ex-user", "carol"), field("ex-password", "carol's first password")); st != 403 {
			t.Errorf("export after deletion: status %d, message %q", st, msg)
		}
	})

	t.Run("privacy lists every retention job", func(t *testing.T) {
		p.open(t, "/privacy")
		rows, err := chromedp.Run(p.ctx, chromedp.Evaluate[[][]string](
			`[...document.querySelectorAll("#retention tbody tr")].map(r => [...r.cells].map(c => c.textContent))`))
		if err != nil {
			t.Fatal(err)
		}
		shown := make(map[string][]string) // job → row
		for _, r := range rows {
			if len(r) == 3 {
				shown[r[2]] = r
			}
		}
		// The lifetimes the server promises (README.md), at most.
		promised := map[string]time.Duration{
			"uploads":        30 * 24 * time.Hour,
			"xmpp-log":       24 * time.Hour,
			"http-error-log": 30 * 24 * time.Hour,
		}
		entries := ts.scheduler.PrivacyReport().Entries
		for job := range promised {
			if !slices.ContainsFunc(entries, func(e retention.Entry) bool { return e.Job == job }) {
				t.Errorf("the scheduler has no job %s", job)
			}
		}
		for _, e := range entries {
			r, ok := shown[e.Job]
			if !ok {
				t.Errorf("job %s missing from /privacy; rows %q", e.Job, rows)
				continue
			}
			if r[0] != e.Data {
				t.Errorf("job %s: data %q, want %q", e.Job, r[0], e.Data)
			}
			if e.Lifetime <= 0 {
				continue
			}
			d, err := parseLifetime(r[1])
			if err != nil || d != e.Lifetime {
				t.Errorf("job %s: page says %q (%v, %v), the job keeps %v", e.Job, r[1], d, err, e.Lifetime)
			}
			if max, ok := promised[e.Job]; ok && d > max {
				t.Errorf("job %s: kept %q, promised at most %v", e.Job, r[1], max)
			}
		}
	})

	t.Run("brute force is rate limited and reveals no username", func(t *testing.T) {
		// Alternate a real user and a name that does not exist. Every
		// refusal of a password reads the same for both, until the limit
		// that XMPP logins share refuses both alike.
		type answer struct {
			status int64
			page   string
		}
		seen := map[int64]map[string]bool{} // status → users
		first := map[int64]answer{}         // status → the first answer
		for i := 0; i < 30; i++ {
			user := []string{"dave", "mallory"}[i%2]
			p.open(t, "/account")
			resp, err := browsertest.Submit(p.ctx, `#delete button[type="submit"]`, deleteFields(user, "guess "+strconv.Itoa(i), user)...)
			if err != nil {
				t.Fatal(err)
			}
			page, err := chromedp.Run(p.ctx, chromedp.OuterHTML(chromedp.CSS("main")))
			if err != nil {
				t.Fatal(err)
			}
			a := answer{resp.Status, page}
			if f, ok := first[a.status]; ok && f != a {
				t.Fatalf("attempt %d (%s): the %d page differs from the first:\n%s\n---\n%s", i, user, a.status, a.page, f.page)
			}
			first[a.status] = a
			if seen[a.status] == nil {
				seen[a.status] = map[string]bool{}
			}
			seen[a.status][user] = true
			if a.status == http.StatusForbidden && len(seen[http.StatusTooManyRequests]) > 0 {
				t.Fatalf("attempt %d: 403 after 429: the limit let a guess through", i)
			}
			if a.status != http.StatusForbidden && a.status != http.StatusTooManyRequests {
				t.Fatalf("attempt %d: status %d:\n%s", i, a.status, a.page)
			}
			if len(seen[http.StatusTooManyRequests]) == 2 {
				break
			}
		}
		if len(seen[http.StatusTooManyRequests]) != 2 {
			t.Fatalf("30 wrong passwords and no rate limit for both names: %v", seen)
		}
		if !strings.Contains(first[http.StatusForbidden].page, "Wrong username or password. Nothing was deleted.") ||
			!strings.Contains(first[http.StatusTooManyRequests].page, "Too many failed attempts.") {
			t.Errorf("unclear answers:\n%s\n%s", first[http.StatusForbidden].page, first[http.StatusTooManyRequests].page)
		}
		// Limited like XMPP logins: the right password is refused too, on
		// the page and over XMPP from the same address.
		if st, msg := p.submit(t, "password",
			field("pw-user", "dave"), field("pw-current", "dave's first password"),
			field("pw-new", "dave's first password"), field("pw-new2", "dave's first password")); st != http.StatusTooManyRequests {
			t.Errorf("right password while limited: status %d, message %q", st, msg)
		}
		if c, err := ts.login("dave", "dave's first password", false); err == nil {
			c.Close()
			t.Error("XMPP login from the limited address succeeded")
		}
		if _, err := ts.manager.Get(context.Background(), "dave"); err != nil {
			t.Errorf("dave's account: %v", err)
		}
	})

	t.Run("no cookies", func(t *testing.T) {
		cookies, err := browsertest.Cookies(p.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(cookies) != 0 {
			t.Errorf("the browser holds %d cookies, first %s", len(cookies), cookieName(cookies[0]))
		}
	})
}

func cookieName(c *network.Cookie) string { return c.Name + " for " + c.Domain }

// parseLifetime reads the page's words for a lifetime: "30 days",
// "24 hours", "1 minute".
func parseLifetime(s string) (time.Duration, error) {
	n, unit, ok := strings.Cut(s, " ")
	v, err := strconv.Atoi(n)
	if !ok || err != nil {
		return 0, fmt.Errorf("lifetime %q: not a number and a unit", s)
	}
	units := map[string]time.Duration{"day": 24 * time.Hour, "hour": time.Hour, "minute": time.Minute, "second": time.Second}
	u, ok := units[strings.TrimSuffix(unit, "s")]
	if !ok {
		return 0, fmt.Errorf("lifetime %q: unknown unit", s)
	}
	return time.Duration(v) * u, nil
}

func httpStatus(t *testing.T, ts *testServer, url string) int {
	t.Helper()
	res, err := ts.HTTPClient.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}
