// Package browsertest drives a headless Chromium for the tests of the
// self-service pages, through the DevTools protocol (chromedp).
//
// The browser trusts exactly the certificates a test names, and no other
// broken one: Start passes their SPKI hashes in
// --ignore-certificate-errors-spki-list (honoured because a fresh
// --user-data-dir is given too), so a test server's self-signed certificate
// is accepted while every other certificate error still fails. Certificate
// checks are never switched off globally.
//
// When no browser binary is found, Start skips the test, unless the CI
// environment variable is set: in CI a missing browser is a failure.
package browsertest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"
)

// Timeout bounds the whole life of a browser started by Start: it ends a
// hung browser, and leaves room for a test of many pages on a loaded CI
// machine (60 s was exceeded with the load average at ten times the
// cores).
const Timeout = 3 * time.Minute

// binaries are the names Chromium goes by, tried in order.
var binaries = []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome", "chrome"}

// Binary returns the path of the browser, or "" if none is installed. The
// CHROMIUM environment variable, when set, names it.
func Binary() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range binaries {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// SPKIHash returns the base64 SHA-256 of the certificate's public key, the
// form --ignore-certificate-errors-spki-list takes.
func SPKIHash(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// Start launches a headless Chromium that trusts the given certificates,
// and returns a chromedp context on one tab of it. The browser lives at most
// Timeout and stops when the test ends. It skips the test when no browser is
// installed and CI is unset.
func Start(t testing.TB, trusted ...*x509.Certificate) context.Context {
	t.Helper()
	bin := Binary()
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("browsertest: no Chromium binary found (tried " + strings.Join(binaries, ", ") + "); CI must install it: apt-get install -y chromium")
		}
		t.Skip("browsertest: no Chromium binary found (tried " + strings.Join(binaries, ", ") + "); install it with: apt-get install -y chromium")
	}
	spki := make([]string, len(trusted))
	for i, c := range trusted {
		spki[i] = SPKIHash(c)
	}
	out := &lockedBuffer{}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.CombinedOutput(out),
	}
	if len(spki) > 0 {
		opts = append(opts, chromedp.Flag("ignore-certificate-errors-spki-list", strings.Join(spki, ",")))
	}
	if os.Geteuid() == 0 {
		// Chromium refuses to start its sandbox as root.
		opts = append(opts, chromedp.NoSandbox)
	}
	life, stop := context.WithTimeout(context.Background(), Timeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(life, opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
		stop()
		if t.Failed() && out.Len() > 0 {
			t.Logf("browser output (last lines):\n%s", tail(out.String(), 15))
		}
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("browsertest: starting %s: %v\n%s", bin, err, out.String())
	}
	return ctx
}

// Download runs trigger, which must start a download, and waits for the
// download to complete. It returns the path of the file, in dir.
func Download(ctx context.Context, dir string, trigger chromedp.Action[chromedp.Void]) (string, error) {
	events := true
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior:      browser.SetDownloadBehaviorBehaviorAllowAndName,
		DownloadPath:  dir,
		EventsEnabled: &events,
	}); err != nil {
		return "", fmt.Errorf("browsertest: set download behavior: %w", err)
	}
	progress := chromedp.BrowserEvents(ctx, browser.DownloadProgress)
	if err := chromedp.Do(ctx, trigger); err != nil {
		return "", err
	}
	for ev, err := range progress {
		if err != nil {
			return "", fmt.Errorf("browsertest: waiting for the download: %w", err)
		}
		switch ev.State {
		case browser.DownloadProgressStateCompleted:
			return filepath.Join(dir, ev.GUID), nil
		case browser.DownloadProgressStateCanceled:
			return "", errors.New("browsertest: the download was canceled")
		}
	}
	return "", errors.New("browsertest: no download event")
}

// Cookies returns every cookie in the browser's jar, of every site.
func Cookies(ctx context.Context) ([]*network.Cookie, error) {
	res, err := chromedp.CallBrowser(ctx, storage.GetCookies, storage.GetCookiesParams{})
	if err != nil {
		return nil, fmt.Errorf("browsertest: get cookies: %w", err)
	}
	return res.Cookies, nil
}

// Field is one form field to fill: a CSS selector and the text to type.
type Field struct {
	Selector string
	Text     string
}

// Submit types each field's text into it, clicks the submit button
// (selector submit), and returns the HTTP response of the page it loads.
func Submit(ctx context.Context, submit string, fields ...Field) (*network.Response, error) {
	steps := make([]chromedp.Action[chromedp.Void], 0, len(fields)+1)
	for _, f := range fields {
		steps = append(steps, chromedp.SendKeys(chromedp.CSS(f.Selector), f.Text))
	}
	if err := chromedp.Do(ctx, steps...); err != nil {
		return nil, err
	}
	return chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(submit)))
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}
