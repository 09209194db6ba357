package upload

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Grant is an upload slot that another XMPP server granted and signed (a
// Prosody mod_http_file_share JWT, an ejabberd external_secret URL): the
// caller has verified the signature and passes what it binds.
// ServeGranted then stores and serves the file under this package's
// quotas, expiry and erasure.
type Grant struct {
	// Path is the slot's URL path below the granting server's base URL,
	// decoded ("<slot>/<file name>"). It names the file: a GET of the same
	// Path serves it. Its last segment, made safe, is the file name.
	Path string

	// Owner keys quotas, Erase (when it is a bare JID) and EraseOwner: the
	// uploader's bare JID, or an opaque key such as ejabberd's SHA-1 of it.
	// "" means the grant names no owner: no per-user quota applies and only
	// expiry removes the file.
	Owner string

	// Size is the exact size the grant allows.
	Size int64

	// ContentType, when not "", is the only media type the PUT may carry.
	ContentType string

	// SlotExpires, when not zero, is when the grant stops allowing a PUT
	// to start. Without it only Config.SlotTTL from the first PUT bounds
	// the slot, and a Path whose file was deleted can be uploaded again.
	SlotExpires time.Time

	// Expires, when not zero, is the latest deletion time the granting
	// server asks for; the file is deleted at the earlier of it and upload
	// time + Config.TTL.
	Expires time.Time
}

// ServeGranted serves a request for a granted slot. PUT stores the body
// under g exactly as ServeHTTP does under its own tokens: HTTPS only (403),
// 413 above MaxFileSize or g.Size, 400 for a short body or another content
// type, 411 without a Content-Length when g.Size is not known from elsewhere,
// 410 after g.SlotExpires, 409 when the Path already holds a file or an
// upload, 507 (insufficient storage) when the owner's quota is exhausted,
// 201 on success. GET and HEAD use only g.Path and answer as ServeHTTP does
// (404 for a missing, expired or erased file). OPTIONS answers the CORS
// preflight. The caller must have verified the grant's signature: a
// Grant is trusted as given.
func (s *Service) ServeGranted(w http.ResponseWriter, r *http.Request, g Grant) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	name := sanitizeFilename(g.Path[strings.LastIndexByte(g.Path, '/')+1:])
	switch r.Method {
	case http.MethodOptions:
		s.ServeHTTP(w, r)
	case http.MethodPut:
		s.putGranted(w, r, g, name)
	case http.MethodGet, http.MethodHead:
		// A file stored under the previous key stays reachable after a
		// rotation.
		for _, k := range s.keys {
			id := grantedID(k, g.Path)
			if _, err := s.meta.Get(r.Context(), id); err == nil || len(s.keys) == 1 {
				s.serveFile(w, r, id, name)
				return
			}
		}
		httpError(w, http.StatusNotFound)
	default:
		h.Set("Allow", "GET, HEAD, PUT, OPTIONS")
		httpError(w, http.StatusMethodNotAllowed)
	}
}

// grantedID is the record ID of a granted Path: a keyed hash, so that IDs
// cannot be predicted from URLs and have the form newID returns.
func grantedID(key []byte, path string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("granted\x00"))
	m.Write([]byte(path))
	return b64.EncodeToString(m.Sum(nil)[:idBytes])
}

func (s *Service) putGranted(w http.ResponseWriter, r *http.Request, g Grant, name string) {
	body := s.newRateReader(w, r.Body)
	if !s.isHTTPS(r) {
		httpError(w, http.StatusForbidden)
		return
	}
	if g.Path == "" || g.Size < 0 {
		httpError(w, http.StatusBadRequest)
		return
	}
	if g.Size > s.cfg.MaxFileSize || r.ContentLength > g.Size {
		httpError(w, http.StatusRequestEntityTooLarge)
		return
	}
	if r.ContentLength >= 0 && r.ContentLength < g.Size {
		httpError(w, http.StatusBadRequest)
		return
	}
	now := s.now()
	if !g.SlotExpires.IsZero() && !now.Before(g.SlotExpires) {
		httpError(w, http.StatusGone)
		return
	}
	ct, err := normalizeType(g.ContentType)
	if err != nil {
		httpError(w, http.StatusBadRequest)
		return
	}
	if got := r.Header.Get("Content-Type"); ct != "" && got != "" {
		n, err := normalizeType(got)
		if err != nil || !sameType(n, ct) {
			httpError(w, http.StatusBadRequest)
			return
		}
	} else if ct == "" && got != "" {
		if ct, err = normalizeType(got); err != nil {
			httpError(w, http.StatusBadRequest)
			return
		}
	}
	ctx := r.Context()
	id := grantedID(s.keys[0], g.Path)
	if _, err := s.meta.Get(ctx, id); err == nil {
		httpError(w, http.StatusConflict)
		return
	} else if !errors.Is(err, ErrNotFound) {
		httpError(w, http.StatusInternalServerError)
		return
	}
	rec := Record{
		ID:          id,
		Owner:       g.Owner,
		Filename:    name,
		ContentType: ct,
		Size:        g.Size,
		Created:     now,
		Expires:     now.Add(s.cfg.SlotTTL).Truncate(time.Second),
		State:       StateReserved,
	}
	err = s.meta.Reserve(ctx, rec, func(existing []Record) error {
		if g.Owner == "" {
			return nil
		}
		return s.admit(now, g.Size, existing)
	})
	switch {
	case errors.Is(err, ErrQuota):
		httpError(w, http.StatusInsufficientStorage)
		return
	case err != nil:
		if _, gerr := s.meta.Get(ctx, id); gerr == nil {
			httpError(w, http.StatusConflict) // a concurrent PUT of the same Path won
			return
		}
		httpError(w, http.StatusInternalServerError)
		return
	}
	rec, err = s.meta.Claim(ctx, id, now.Add(s.cfg.UploadTimeout))
	switch {
	case errors.Is(err, ErrSlotUsed), errors.Is(err, ErrNotFound):
		httpError(w, http.StatusConflict)
		return
	case err != nil:
		httpError(w, http.StatusInternalServerError)
		return
	}
	code := s.store(ctx, rec, body, g.Expires)
	if code != http.StatusCreated {
		_ = s.meta.Delete(context.WithoutCancel(ctx), id)
		httpError(w, code)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

// EraseOwner deletes every file and slot whose Record.Owner is owner, as
// Erase does for a bare JID: for owners that are not JIDs, such as
// ejabberd's SHA-1 of one in a Grant. owner "" is refused (it would name
// every grant without an owner).
func (s *Service) EraseOwner(ctx context.Context, owner string) error {
	if owner == "" {
		return fmt.Errorf("%w: empty owner", ErrBadRequest)
	}
	return s.eraseOwner(ctx, owner)
}
