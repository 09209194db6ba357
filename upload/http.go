package upload

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// copyBufSize is the buffer used to stream a PUT body to the blob store.
const copyBufSize = 256 << 10

// ServeHTTP implements http.Handler for the HTTPS side of XEP-0363:
//
//   - OPTIONS: CORS preflight, 204.
//   - PUT /<id>/<name> with "Authorization: Bearer <token>": only over HTTPS
//     (403 otherwise); 401 without a token; 403 for a forged token or one for
//     another slot; 410 once the slot expired; 409 when the slot was already
//     used; 400 for a content type other than the slot's or a body shorter
//     than the slot's size; 413 for a longer body (at most size+1 bytes are
//     read); 408 for a body slower than Config.MinRate; 5xx if storing
//     fails. Nothing is kept on any failure, and a slot whose upload started
//     is spent. 201 on success.
//   - GET/HEAD /<id>/<name>: the file with Content-Length, Content-Type,
//     ETag, immutable caching for its remaining lifetime, nosniff, a CSP that
//     forbids everything, and Content-Disposition (inline only for images,
//     audio, video and text/plain). Range requests are honored (206/416)
//     when they ask for at most 8 ranges that do not overlap; any
//     other Range header is ignored (200 with the whole file).
//     404 for missing, expired or erased files. A GET whose client reads
//     slower than Config.MinRate is cut.
//
// Every response allows any origin (CORS); none sets a cookie. The path may
// carry the BaseURL path prefix or not.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	switch r.Method {
	case http.MethodOptions:
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, PUT, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
		h.Set("Access-Control-Max-Age", "86400")
		h.Set("Allow", "GET, HEAD, PUT, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
	case http.MethodPut:
		s.servePut(w, r)
	case http.MethodGet, http.MethodHead:
		s.serveGet(w, r)
	default:
		h.Set("Allow", "GET, HEAD, PUT, OPTIONS")
		httpError(w, http.StatusMethodNotAllowed)
	}
}

// httpError writes a short, generic text error: never a name, token or path.
func httpError(w http.ResponseWriter, code int) {
	http.Error(w, http.StatusText(code), code)
}

// splitPath returns the ID and file name of a request path.
func (s *Service) splitPath(p string) (id, name string, ok bool) {
	if pre := s.base.Path; pre != "" && strings.HasPrefix(p, pre+"/") {
		p = p[len(pre):]
	}
	p = strings.TrimPrefix(p, "/")
	id, name, ok = strings.Cut(p, "/")
	if !ok || !validID(id) || name == "" || strings.Contains(name, "/") {
		return "", "", false
	}
	return id, name, true
}

// isHTTPS reports whether the request came over TLS.
func (s *Service) isHTTPS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	return s.cfg.TrustForwardedProto && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func (s *Service) servePut(w http.ResponseWriter, r *http.Request) {
	// MinRate applies from the start: even a refused body that net/http
	// reads on after the answer (to reuse the connection) must keep moving.
	body := s.newRateReader(w, r.Body)
	if !s.isHTTPS(r) {
		httpError(w, http.StatusForbidden)
		return
	}
	id, name, ok := s.splitPath(r.URL.Path)
	if !ok {
		httpError(w, http.StatusNotFound)
		return
	}
	auth := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if auth == "" || !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="upload"`)
		httpError(w, http.StatusUnauthorized)
		return
	}
	c, key, err := parseToken(s.keys, strings.TrimSpace(tok))
	if err != nil || c.ID != id {
		httpError(w, http.StatusForbidden)
		return
	}
	if !s.now().Before(c.Expires) {
		httpError(w, http.StatusGone)
		return
	}
	ctx := r.Context()
	rec, err := s.meta.Get(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		httpError(w, http.StatusConflict) // spent by a failed upload, or erased
		return
	case err != nil:
		httpError(w, http.StatusInternalServerError)
		return
	case !c.matches(key, rec) || rec.Filename != name:
		httpError(w, http.StatusForbidden)
		return
	case rec.State != StateReserved:
		httpError(w, http.StatusConflict)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && rec.ContentType != "" {
		got, err := normalizeType(ct)
		if err != nil || !sameType(got, rec.ContentType) {
			httpError(w, http.StatusBadRequest)
			return
		}
	}
	if r.ContentLength > rec.Size {
		httpError(w, http.StatusRequestEntityTooLarge)
		return
	}
	if r.ContentLength >= 0 && r.ContentLength < rec.Size {
		httpError(w, http.StatusBadRequest)
		return
	}
	rec, err = s.meta.Claim(ctx, id, s.now().Add(s.cfg.UploadTimeout))
	switch {
	case errors.Is(err, ErrSlotUsed), errors.Is(err, ErrNotFound):
		httpError(w, http.StatusConflict)
		return
	case err != nil:
		httpError(w, http.StatusInternalServerError)
		return
	}
	code := s.store(ctx, rec, body, time.Time{})
	if code != http.StatusCreated {
		// The slot is spent; release its quota.
		_ = s.meta.Delete(context.WithoutCancel(ctx), id)
		httpError(w, code)
		return
	}
	w.Header().Set("Location", s.fileURL(rec))
	w.WriteHeader(http.StatusCreated)
}

// sameType compares two normalized media types, ignoring parameters.
func sameType(a, b string) bool {
	ma, _, _ := mime.ParseMediaType(a)
	mb, _, _ := mime.ParseMediaType(b)
	return ma != "" && ma == mb
}

// store streams exactly rec.Size bytes of body into a new blob and commits
// it with its metadata. It returns the HTTP status; on any failure nothing
// is left in the blob store. A non-zero notAfter caps the file's deletion
// time (upload time + TTL otherwise).
func (s *Service) store(ctx context.Context, rec Record, body io.Reader, notAfter time.Time) int {
	bw, err := s.createBlob(ctx, rec.ID, rec.Size)
	if err != nil {
		return http.StatusInternalServerError
	}
	committed := false
	defer func() {
		if !committed {
			_ = bw.Abort()
		}
	}()
	buf := make([]byte, min(int64(copyBufSize), rec.Size+1))
	if len(buf) == 0 {
		buf = make([]byte, 1)
	}
	lr := io.LimitReader(body, rec.Size+1) // never read more than size+1
	var n int64
	for {
		m, rerr := lr.Read(buf)
		if m > 0 {
			n += int64(m)
			if n > rec.Size {
				return http.StatusRequestEntityTooLarge
			}
			if _, err := bw.Write(buf[:m]); err != nil {
				return http.StatusInternalServerError
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			var mbe *http.MaxBytesError
			if errors.As(rerr, &mbe) {
				return http.StatusRequestEntityTooLarge
			}
			if errors.Is(rerr, os.ErrDeadlineExceeded) {
				return http.StatusRequestTimeout // slower than MinRate
			}
			return http.StatusBadRequest // client went away or sent garbage
		}
	}
	if n != rec.Size {
		return http.StatusBadRequest
	}
	if err := bw.Commit(); err != nil {
		return http.StatusInternalServerError
	}
	committed = true
	now := s.now()
	exp := now.Add(s.cfg.TTL)
	if !notAfter.IsZero() && notAfter.Before(exp) {
		exp = notAfter
	}
	if err := s.meta.Commit(ctx, rec.ID, now, exp); err != nil {
		// Erased or expired meanwhile, or the store failed: drop the blob.
		_ = s.blobs.Delete(context.WithoutCancel(ctx), rec.ID)
		if errors.Is(err, ErrNotFound) {
			return http.StatusGone
		}
		return http.StatusInternalServerError
	}
	return http.StatusCreated
}

// createBlob starts the blob of key, handing its exact size to a BlobStore
// that has a method CreateSize(ctx, key, size) (BlobWriter, error) (s3store
// streams a known size into S3 without buffering parts), Create otherwise.
func (s *Service) createBlob(ctx context.Context, key string, size int64) (BlobWriter, error) {
	if b, ok := s.blobs.(interface {
		CreateSize(ctx context.Context, key string, size int64) (BlobWriter, error)
	}); ok {
		return b.CreateSize(ctx, key, size)
	}
	return s.blobs.Create(ctx, key)
}

// inline reports whether a media type may be shown by the browser.
func inline(mt string) bool {
	if mt == "image/svg+xml" { // can carry script
		return false
	}
	return strings.HasPrefix(mt, "image/") || strings.HasPrefix(mt, "video/") ||
		strings.HasPrefix(mt, "audio/") || mt == "text/plain"
}

func (s *Service) serveGet(w http.ResponseWriter, r *http.Request) {
	id, name, ok := s.splitPath(r.URL.Path)
	if !ok {
		httpError(w, http.StatusNotFound)
		return
	}
	s.serveFile(w, r, id, name)
}

// serveFile answers a GET or HEAD of the stored file id named name.
func (s *Service) serveFile(w http.ResponseWriter, r *http.Request, id, name string) {
	ctx := r.Context()
	rec, err := s.meta.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		httpError(w, http.StatusNotFound)
		return
	}
	if err != nil {
		httpError(w, http.StatusInternalServerError)
		return
	}
	now := s.now()
	exp := s.expiry(rec)
	if rec.State != StateStored || rec.Filename != name || !now.Before(exp) {
		httpError(w, http.StatusNotFound)
		return
	}
	rc, size, err := s.blobs.Open(ctx, id)
	if errors.Is(err, ErrNotFound) {
		httpError(w, http.StatusNotFound)
		return
	}
	if err != nil {
		httpError(w, http.StatusInternalServerError)
		return
	}
	defer rc.Close()
	ct := rec.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	mt, _, _ := mime.ParseMediaType(ct)
	disp := "attachment"
	if inline(mt) {
		disp = "inline"
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	if d := mime.FormatMediaType(disp, map[string]string{"filename": rec.Filename}); d != "" {
		h.Set("Content-Disposition", d)
	} else {
		h.Set("Content-Disposition", disp)
	}
	h.Set("ETag", `"`+rec.ID+`"`)
	maxAge := int64(exp.Sub(now) / 1e9)
	h.Set("Cache-Control", "public, max-age="+strconv.FormatInt(maxAge, 10)+", immutable")
	h.Set("Access-Control-Expose-Headers", "Content-Length, Content-Range, ETag")
	if r.Method == http.MethodGet {
		rw := s.newRateWriter(w)
		// The deadline is the connection's: a later request on it must
		// not inherit it.
		defer rw.d.clear()
		w = rw
	}
	if rh := r.Header.Values("Range"); len(rh) > 1 || len(rh) == 1 && !allowRange(rh[0], size) {
		// Too many, overlapping or malformed ranges: serve the whole file
		// (RFC 9110 §14.2 lets a server ignore Range).
		r = r.Clone(ctx)
		r.Header.Del("Range")
	}
	http.ServeContent(w, r, "", rec.Created, rc)
}
