package web_test

import (
	"archive/zip"
	"context"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"chatbx.eu/privacy/examples/server/internal/web"
	"chatbx.eu/privacy/examples/server/internal/web/browsertest"
)

// TestBrowser drives the pages in headless Chromium, as a person would:
// one browser, one fresh TLS server whose certificate alone it trusts.
// Set WEB_SCREENSHOT_DIR to keep the screenshots.
func TestBrowser(t *testing.T) {
	b := newFakeBackend()
	b.passwords["carol"] = "carol's old secret"
	srv := browsertest.TLSServer(t, web.New(testConfig(b)))
	ctx := browsertest.Start(t, srv.Certificate())
	run := func(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatal(err)
		}
	}
	text := func(t *testing.T, sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}

	t.Run("layout at 320 and 1280 px", func(t *testing.T) {
		dir := os.Getenv("WEB_SCREENSHOT_DIR")
		if dir == "" {
			dir = t.TempDir()
		}
		for _, width := range []int64{320, 1280} {
			for _, pg := range []string{"privacy", "account"} {
				run(t, chromedp.EmulateViewport(width, 700), chromedp.Navigate(srv.URL+"/"+pg))
				png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
				if err != nil {
					t.Fatal(err)
				}
				name := filepath.Join(dir, pg+"-"+strconv.FormatInt(width, 10)+".png")
				if err := os.WriteFile(name, png, 0o600); err != nil {
					t.Fatal(err)
				}
				t.Logf("screenshot: %s", name)
				// No horizontal scrolling.
				inner, err := chromedp.Run(ctx, chromedp.Evaluate[int64](`window.innerWidth`))
				if err != nil {
					t.Fatal(err)
				}
				if inner != width {
					t.Fatalf("viewport is %d px wide, want %d", inner, width)
				}
				scroll, err := chromedp.Run(ctx, chromedp.Evaluate[int64](`document.documentElement.scrollWidth`))
				if err != nil {
					t.Fatal(err)
				}
				if scroll > width {
					t.Errorf("%s at %d px: page is %d px wide, scrolls sideways", pg, width, scroll)
				}
			}
			// Every submit button lies within the viewport's width, with a
			// real size.
			for _, form := range []string{"password", "export", "delete"} {
				box, err := chromedp.Run(ctx, chromedp.Dimensions(chromedp.CSS("#"+form+` button[type="submit"]`)))
				if err != nil {
					t.Fatal(err)
				}
				left, right := box.Border[0], box.Border[2]
				if box.Width < 40 || box.Height < 20 || left < 0 || right > float64(width) {
					t.Errorf("%d px: %s button at x %.0f…%.0f, %d×%d px: not within the viewport", width, form, left, right, box.Width, box.Height)
				}
			}
			// The stylesheet ran under the CSP (its hash matched): the
			// delete button is red.
			bg, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("#delete button")).backgroundColor`))
			if err != nil {
				t.Fatal(err)
			}
			if bg != "rgb(165, 29, 45)" {
				t.Errorf("%d px: delete button background %q: the style was blocked", width, bg)
			}
		}
		scripts, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.scripts.length`))
		if err != nil || scripts != 0 {
			t.Errorf("page has %d scripts (err %v), want none", scripts, err)
		}
	})

	t.Run("change password by keyboard", func(t *testing.T) {
		run(t, chromedp.Navigate(srv.URL+"/account"))
		focused := func() string {
			s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.id || document.activeElement.getAttribute("href") || document.activeElement.tagName`))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		// Tab walks the links, then the fields of the first form in order.
		var order []string
		for range 3 {
			run(t, chromedp.KeyEvent(kb.Tab))
			order = append(order, focused())
		}
		if want := []string{"/account", "/privacy", "pw-user"}; !slices.Equal(order, want) {
			t.Fatalf("Tab order %q, want %q", order, want)
		}
		for _, step := range []struct{ keys, next string }{
			{"carol" + kb.Tab, "pw-current"},
			{"carol's old secret" + kb.Tab, "pw-new"},
			{"carol's new secret" + kb.Tab, "pw-new2"},
			{"carol's new secret", "pw-new2"},
		} {
			run(t, chromedp.KeyEvent(step.keys))
			if got := focused(); got != step.next {
				t.Fatalf("after typing, focus on %q, want %q", got, step.next)
			}
		}
		resp, err := chromedp.RunResponse(ctx, chromedp.KeyEvent(kb.Enter))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != 200 {
			t.Errorf("status %d", resp.Status)
		}
		if msg := text(t, "#message"); !strings.Contains(msg, "Your password has been changed") {
			t.Errorf("message %q", msg)
		}
		if pw, _ := b.password("carol"); pw != "carol's new secret" {
			t.Errorf("carol's password is %q", pw)
		}
	})

	t.Run("export downloads the zip", func(t *testing.T) {
		run(t, chromedp.Navigate(srv.URL+"/account"))
		path, err := browsertest.Download(ctx, t.TempDir(), chromedp.Steps(
			chromedp.SendKeys(chromedp.CSS("#ex-user"), "bob"),
			chromedp.SendKeys(chromedp.CSS("#ex-password"), "battery staple"),
			chromedp.Click(chromedp.CSS("#export button")),
		))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := zip.OpenReader(path)
		if err != nil {
			t.Fatalf("downloaded file is no zip: %v", err)
		}
		defer zr.Close()
		if len(zr.File) != 1 || zr.File[0].Name != "archive.txt" {
			t.Fatalf("zip holds %v", zr.File)
		}
		f, err := zr.File[0].Open()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if got, _ := io.ReadAll(f); string(got) != "bob's archive" {
			t.Errorf("archive.txt = %q", got)
		}
	})

	deleteForm := func(t *testing.T, user, password, confirm string) int64 {
		t.Helper()
		run(t, chromedp.Navigate(srv.URL+"/account"))
		resp, err := browsertest.Submit(ctx, "#delete button",
			browsertest.Field{Selector: "#del-user", Text: user},
			browsertest.Field{Selector: "#del-password", Text: password},
			browsertest.Field{Selector: "#del-confirm", Text: confirm})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Status
	}
	t.Run("delete refused: wrong password", func(t *testing.T) {
		if st := deleteForm(t, "alice", "not her password", "alice"); st != 403 {
			t.Errorf("status %d, want 403", st)
		}
		if msg := text(t, "#message"); msg != "Wrong username or password. Nothing was deleted." {
			t.Errorf("message %q", msg)
		}
		if _, ok := b.password("alice"); !ok {
			t.Error("alice was deleted")
		}
	})
	t.Run("delete refused: username mistyped", func(t *testing.T) {
		if st := deleteForm(t, "alice", "correct horse", "alise"); st != 400 {
			t.Errorf("status %d, want 400", st)
		}
		if msg := text(t, "#message"); msg != "The username typed again does not match the username. Nothing was deleted." {
			t.Errorf("message %q", msg)
		}
		if _, ok := b.password("alice"); !ok {
			t.Error("alice was deleted")
		}
	})
	t.Run("delete", func(t *testing.T) {
		if st := deleteForm(t, "alice", "correct horse", "alice"); st != 200 {
			t.Errorf("status %d, want 200", st)
		}
		if h := text(t, "h1"); h != "Account deleted" {
			t.Errorf("heading %q", h)
		}
		if _, ok := b.password("alice"); ok {
			t.Error("alice still exists")
		}
	})

	t.Run("privacy lists every item", func(t *testing.T) {
		resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(srv.URL+"/privacy"))
		if err != nil {
			t.Fatal(err)
		}
		if csp, _ := resp.Headers["Content-Security-Policy"].(string); !strings.HasPrefix(csp, "default-src 'none'") {
			t.Errorf("CSP %q", csp)
		}
		rows, err := chromedp.Run(ctx, chromedp.Evaluate[[][]string](
			`[...document.querySelectorAll("#retention tbody tr")].map(r => [...r.cells].map(c => c.textContent))`))
		if err != nil {
			t.Fatal(err)
		}
		want := [][]string{
			{"Uploaded files", "30 days", "upload expiry"},
			{"Connection logs (anonymized IPs)", "24 hours", "log rotation"},
			{"HTTP error logs", "90 minutes", "error log expiry"},
			{"Message archive", "until you delete it", "account deletion"},
			{"Interrupted erasures", "until erased, retried hourly", "erasure retry"},
		}
		if !reflect.DeepEqual(rows, want) {
			t.Errorf("rows\n%q\nwant\n%q", rows, want)
		}
	})

	t.Run("other certificates stay untrusted", func(t *testing.T) {
		other := browsertest.TLSServer(t, web.New(testConfig(newFakeBackend())))
		tctx, cancel := context.WithTimeout(ctx, browsertest.Timeout/4)
		defer cancel()
		_, err := chromedp.Run(tctx, chromedp.NavigateResponse(other.URL+"/account"))
		if err == nil || !strings.Contains(err.Error(), "CERT") {
			t.Errorf("navigating to a server with an untrusted certificate: err %v, want a certificate error", err)
		}
	})

	t.Run("rate limited", func(t *testing.T) {
		// The fake backend allows 5 failures per client; some were spent
		// above. Guess until refused.
		var st int64
		for i := 0; i < 6 && st != 429; i++ {
			st = deleteForm(t, "mallory", "guess "+strconv.Itoa(i), "mallory")
		}
		if st != 429 {
			t.Fatalf("status %d after 6 wrong passwords, want 429", st)
		}
		if msg := text(t, "#message"); msg != "Too many failed attempts. Wait a few minutes, then try again. Nothing was deleted." {
			t.Errorf("message %q", msg)
		}
	})

	t.Run("cookie jar empty", func(t *testing.T) {
		cookies, err := browsertest.Cookies(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(cookies) != 0 {
			t.Errorf("browser holds %d cookies: %+v", len(cookies), cookies[0])
		}
	})
}
