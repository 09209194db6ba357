// Package web serves the self-service pages of the example server: /account,
// where a user changes their password, downloads (exports) their data and
// deletes their account, and /privacy, the retention report.
//
// The pages are plain HTML forms: no JavaScript, no cookies, no session. Every
// form asks for the username and password again, so there is no ambient
// authority to forge; cross-origin POSTs are refused all the same
// (Sec-Fetch-Site, else Origin). Every answer carries a strict
// Content-Security-Policy, X-Content-Type-Options nosniff, Referrer-Policy
// no-referrer and Cache-Control no-store. Errors never reveal whether a
// username exists.
//
// Mount the handler on the HTTPS mux for its three patterns:
//
//	h := web.New(web.Config{Backend: b, Privacy: report, Domain: "localhost"})
//	mux.Handle("/account", h)
//	mux.Handle("/account/", h)
//	mux.Handle("/privacy", h)
package web
