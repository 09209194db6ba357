package web

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"chatbx.eu/privacy/account"
)

//go:embed templates
var templateFS embed.FS

// Limits on what a form may carry.
const (
	maxBodyBytes   = 16 << 10 // a form body; far above four fields of 1 KiB
	maxFieldBytes  = 1024     // a username or password
	exportFilename = "account-export.zip"
)

// handler serves the pages; built by New, immutable afterwards.
type handler struct {
	backend   Backend
	privacy   func(ctx context.Context) ([]PrivacyItem, error)
	domain    string
	log       *slog.Logger
	clientKey func(*http.Request) string
	formTime  time.Duration

	css     template.CSS
	csp     string
	pages   map[string]*template.Template
	mux     *http.ServeMux
	origins *http.CrossOriginProtection
}

// New returns the handler of the pages: GET /account (the three forms),
// POST /account/password, POST /account/export, POST /account/delete and
// GET /privacy. Other paths answer 404. It panics if cfg.Backend is nil, a
// programming error.
func New(cfg Config) http.Handler {
	if cfg.Backend == nil {
		panic("web: Config.Backend is nil")
	}
	h := &handler{
		backend:   cfg.Backend,
		privacy:   cfg.Privacy,
		domain:    cfg.Domain,
		log:       cfg.Logger,
		clientKey: cfg.ClientKey,
		formTime:  cfg.FormTimeout,
		origins:   http.NewCrossOriginProtection(),
	}
	if h.formTime <= 0 {
		h.formTime = DefaultFormTimeout
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.clientKey == nil {
		h.clientKey = remoteIP
	}
	css, err := templateFS.ReadFile("templates/style.css")
	if err != nil {
		panic("web: embedded style missing: " + err.Error())
	}
	h.css = template.CSS(css)
	sum := sha256.Sum256(css)
	h.csp = "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

	funcs := template.FuncMap{"lifetime": lifetime}
	layout := template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	h.pages = make(map[string]*template.Template)
	for _, name := range []string{"account", "done", "privacy"} {
		t := template.Must(layout.Clone())
		h.pages[name] = template.Must(t.ParseFS(templateFS, "templates/"+name+".html"))
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /account", h.account)
	mux.HandleFunc("GET /account/{$}", redirectTo("/account"))
	mux.HandleFunc("POST /account/password", h.changePassword)
	mux.HandleFunc("POST /account/export", h.export)
	mux.HandleFunc("POST /account/delete", h.delete)
	mux.HandleFunc("GET /privacy", h.privacyPage)
	h.mux = mux
	return h
}

// ServeHTTP sets the security headers of every answer, refuses cross-origin
// form posts, and dispatches.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", h.csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
	if err := h.origins.Check(r); err != nil {
		h.render(w, http.StatusForbidden, "done", page{Title: "Request refused", Kind: "error",
			Message: "This form was sent from another site, so it was refused. Nothing was changed. Use the forms on this server's own account page."})
		return
	}
	h.mux.ServeHTTP(w, r)
}

// page is what every template renders.
type page struct {
	Title   string
	Where   string
	CSS     template.CSS
	Kind    string // "ok" or "error": the style and ARIA role of Message
	Message string
	Items   []PrivacyItem
}

func (h *handler) render(w http.ResponseWriter, status int, name string, p page) {
	p.CSS = h.css
	p.Where = h.domain
	if p.Where == "" {
		p.Where = "this server"
	}
	var b strings.Builder
	if err := h.pages[name].ExecuteTemplate(&b, "layout", p); err != nil {
		h.log.Error("web: rendering a page failed", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

func (h *handler) account(w http.ResponseWriter, r *http.Request) {
	h.render(w, http.StatusOK, "account", page{Title: "Your account"})
}

func redirectTo(path string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, path, http.StatusSeeOther)
	}
}

// fail re-renders the account page with an error message.
func (h *handler) fail(w http.ResponseWriter, status int, msg string) {
	h.render(w, status, "account", page{Title: "Your account", Kind: "error", Message: msg})
}

// form reads a bounded url-encoded POST body. It answers and returns false
// when the body is unusable. Values from the URL query are never read:
// passwords must not travel in URLs.
func (h *handler) form(w http.ResponseWriter, r *http.Request, nothing string, fields ...string) (map[string]string, bool) {
	rc := http.NewResponseController(w)
	deadline := rc.SetReadDeadline(time.Now().Add(h.formTime)) == nil
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.fail(w, http.StatusRequestEntityTooLarge, "The form was too large. "+nothing)
			return nil, false
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			w.Header().Set("Connection", "close")
			h.fail(w, http.StatusRequestTimeout, "The form took too long to arrive. "+nothing)
			return nil, false
		}
		h.fail(w, http.StatusBadRequest, "The form could not be read. "+nothing)
		return nil, false
	}
	if deadline {
		// The whole body is read: what follows (hashing, an export) is the
		// server's work and must not be cut by the client's deadline.
		_ = rc.SetReadDeadline(time.Time{})
	}
	vals := make(map[string]string, len(fields))
	for _, f := range fields {
		v := r.PostForm.Get(f)
		if v == "" {
			h.fail(w, http.StatusBadRequest, "Fill in every field. "+nothing)
			return nil, false
		}
		if len(v) > maxFieldBytes {
			h.fail(w, http.StatusBadRequest, "A field is too long (at most 1024 bytes). "+nothing)
			return nil, false
		}
		vals[f] = v
	}
	for _, f := range []string{"username", "confirm"} {
		if v, ok := vals[f]; ok {
			vals[f] = h.normalizeUsername(v)
		}
	}
	return vals, true
}

// normalizeUsername trims spaces and accepts "user@domain" for "user".
func (h *handler) normalizeUsername(s string) string {
	s = strings.TrimSpace(s)
	if h.domain != "" {
		if at := strings.LastIndexByte(s, '@'); at >= 0 && strings.EqualFold(s[at+1:], h.domain) {
			s = s[:at]
		}
	}
	return s
}

// authenticate checks the credentials and answers the failure itself; it
// reports whether the request may go on.
func (h *handler) authenticate(w http.ResponseWriter, r *http.Request, username, password, nothing string) bool {
	err := h.backend.Authenticate(r.Context(), h.clientKey(r), username, password)
	switch {
	case err == nil:
		return true
	case errors.Is(err, account.ErrRateLimited):
		w.Header().Set("Retry-After", "60")
		h.fail(w, http.StatusTooManyRequests, "Too many failed attempts. Wait a few minutes, then try again. "+nothing)
	case errors.Is(err, account.ErrAuth), errors.Is(err, account.ErrNotFound):
		h.fail(w, http.StatusForbidden, "Wrong username or password. "+nothing)
	case errors.Is(err, account.ErrBlocked):
		// Only said after the right password (account.Manager checks it
		// first), so it reveals nothing to a guesser.
		h.fail(w, http.StatusForbidden, "This account is blocked: its data is kept but not processed. "+nothing+" Contact the provider to lift the block.")
	default:
		h.internal(w, "authenticate", err, nothing)
	}
	return false
}

func (h *handler) internal(w http.ResponseWriter, op string, err error, nothing string) {
	h.log.Error("web: backend failed", "op", op, "err", err)
	h.fail(w, http.StatusInternalServerError, "Something went wrong on the server. "+nothing+" Try again later.")
}

func (h *handler) changePassword(w http.ResponseWriter, r *http.Request) {
	const nothing = "Your password is unchanged."
	v, ok := h.form(w, r, nothing, "username", "password", "new", "new2")
	if !ok {
		return
	}
	if v["new"] != v["new2"] {
		h.fail(w, http.StatusBadRequest, "The two new passwords differ. "+nothing)
		return
	}
	if !h.authenticate(w, r, v["username"], v["password"], nothing) {
		return
	}
	switch err := h.backend.ChangePassword(r.Context(), v["username"], v["new"]); {
	case err == nil:
	case errors.Is(err, account.ErrPolicy):
		h.fail(w, http.StatusBadRequest, "The new password does not meet this server's rules: it is too short or too long, "+
			"only spaces, your username, or one of the most common passwords (such as \"password\" or \"123456789\", "+
			"in any case). Choose a longer one that others are unlikely to use. "+nothing)
		return
	default:
		h.internal(w, "change password", err, nothing)
		return
	}
	h.render(w, http.StatusOK, "account", page{Title: "Your account", Kind: "ok",
		Message: "Your password has been changed. Use the new one from now on, in your chat apps too."})
}

func (h *handler) export(w http.ResponseWriter, r *http.Request) {
	const nothing = "Nothing was exported."
	v, ok := h.form(w, r, nothing, "username", "password")
	if !ok {
		return
	}
	if !h.authenticate(w, r, v["username"], v["password"], nothing) {
		return
	}
	zw := &download{w: w}
	err := h.backend.Export(r.Context(), v["username"], zw)
	switch {
	case err == nil:
		zw.start() // an empty export still downloads
	case !zw.started:
		h.internal(w, "export", err, nothing)
	default:
		// Headers are gone: abort the connection so that the browser
		// reports a failed download instead of keeping a truncated zip.
		h.log.Error("web: backend failed", "op", "export", "err", err)
		panic(http.ErrAbortHandler)
	}
}

// download sends the attachment headers on the first write, so that an
// export failing before any byte can still answer with an error page.
type download struct {
	w       http.ResponseWriter
	started bool
}

func (d *download) start() {
	if d.started {
		return
	}
	d.started = true
	hd := d.w.Header()
	hd.Set("Content-Type", "application/zip")
	hd.Set("Content-Disposition", `attachment; filename="`+exportFilename+`"`)
	d.w.WriteHeader(http.StatusOK)
}

func (d *download) Write(p []byte) (int, error) {
	d.start()
	return d.w.Write(p)
}

func (h *handler) delete(w http.ResponseWriter, r *http.Request) {
	const nothing = "Nothing was deleted."
	v, ok := h.form(w, r, nothing, "username", "password", "confirm")
	if !ok {
		return
	}
	if v["confirm"] != v["username"] {
		h.fail(w, http.StatusBadRequest, "The username typed again does not match the username. "+nothing)
		return
	}
	if !h.authenticate(w, r, v["username"], v["password"], nothing) {
		return
	}
	if err := h.backend.Delete(r.Context(), v["username"]); err != nil {
		h.log.Error("web: backend failed", "op", "delete", "err", err)
		h.fail(w, http.StatusInternalServerError, "Something went wrong on the server while deleting your account. Try again later.")
		return
	}
	h.render(w, http.StatusOK, "done", page{Title: "Account deleted", Kind: "ok",
		Message: "Your account has been deleted, with all of its data. You can no longer log in with it."})
}

func (h *handler) privacyPage(w http.ResponseWriter, r *http.Request) {
	var items []PrivacyItem
	if h.privacy != nil {
		var err error
		if items, err = h.privacy(r.Context()); err != nil {
			h.log.Error("web: privacy report failed", "err", err)
			h.render(w, http.StatusInternalServerError, "done", page{Title: "Privacy", Kind: "error",
				Message: "The privacy report is unavailable right now. Try again later."})
			return
		}
	}
	h.render(w, http.StatusOK, "privacy", page{Title: "Privacy", Items: items})
}

// remoteIP is the default ClientKey: the host part of RemoteAddr.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// lifetime says how long a PrivacyItem is kept, in words: "30 days",
// "24 hours" (a single day reads better in hours), "90 minutes"; 0 or less
// is "until you delete it".
func lifetime(d time.Duration) string {
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	day := 24 * time.Hour
	switch {
	case d <= 0:
		return "until you delete it"
	case d%day == 0 && d > day:
		return plural(int64(d/day), "day")
	case d%time.Hour == 0:
		return plural(int64(d/time.Hour), "hour")
	case d%time.Minute == 0:
		return plural(int64(d/time.Minute), "minute")
	case d%time.Second == 0:
		return plural(int64(d/time.Second), "second")
	}
	return d.String()
}
