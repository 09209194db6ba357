// Package web serves the self-service pages of the example server: /account,
// where a user changes their password, downloads (exports) their data and
// deletes their account, and /privacy, the retention report.
//
// The pages are plain HTML forms: no JavaScript, no cookies, no session. Every
// form asks for the username and password again, so there is no ambient
// authority to forge; cross-origin POSTs are refused all the same
// (net/http.CrossOriginProtection: Sec-Fetch-Site, else Origin). Every answer
// carries a strict Content-Security-Policy (default-src 'none', the one
// embedded stylesheet allowed by its SHA-256, form-action 'self',
// frame-ancestors 'none', base-uri 'none'), X-Content-Type-Options nosniff,
// Referrer-Policy no-referrer and Cache-Control no-store. Form bodies are
// limited to 16 KiB (413 beyond) and fields to 1024 bytes; values in the URL
// are ignored. A form body must arrive within Config.FormTimeout (15 s) of
// the handler starting to read it, or the request is answered 408 and its
// connection closed (the connection's read deadline, set through
// http.ResponseController, and cleared once the form is read).
//
// Errors never reveal whether a username exists: an unknown name and a wrong
// password get the same page (account.ErrAuth), and so do rate-limited
// attempts (account.ErrRateLimited, answered 429). The pages keep no
// limiter of their own: the Backend limits failed logins per client key,
// the same budget as XMPP logins. Deleting asks for the username a second time; it must match
// the first exactly (after trimming spaces and a "@Domain" suffix) or nothing
// is deleted. An export streams the Backend's zip as an attachment; if the
// Backend fails halfway, the connection is aborted so that the browser
// reports a failed download rather than keeping a truncated zip.
//
// Mount the handler on the HTTPS mux for its three patterns:
//
//	h := web.New(web.Config{Backend: b, Privacy: report, Domain: "localhost"})
//	mux.Handle("/account", h)
//	mux.Handle("/account/", h)
//	mux.Handle("/privacy", h)
//
// # Tests
//
// Besides table tests over httptest, the pages are driven in headless
// Chromium (package browsertest, github.com/chromedp/chromedp): keyboard use,
// layout at 320 and 1280 px, the download of the export, every refusal, the
// 429 page and an empty cookie jar. The browser trusts the test server's
// fresh self-signed certificate alone, by its SPKI hash
// (--ignore-certificate-errors-spki-list); a test checks that another
// self-signed certificate is still refused. Without a Chromium binary the
// browser tests skip, unless CI is set; CHROMIUM names the binary, and
// WEB_SCREENSHOT_DIR keeps the screenshots:
//
//	WEB_SCREENSHOT_DIR=/tmp/shots go test -run TestBrowser ./examples/server/internal/web/
package web
