package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"chatbx.eu/privacy/upload"
)

// componentDir is the path segment below the base URL under which the
// slots of the XEP-0114 component (the Service's own tokens) live. It
// cannot be a Prosody slot (16 characters), an ejabberd UserStr (40 hex
// digits) or a mod_http_upload_external UUID.
const componentDir = "c"

// secrets are the shared secrets of the protocols the service accepts;
// an empty one turns its protocol off.
type secrets struct {
	Prosody  []byte // http_file_share_secret of mod_http_file_share
	Ejabberd []byte // external_secret of mod_http_upload
	External []byte // http_upload_external_secret of mod_http_upload_external
}

// public is the public HTTPS handler: PUT and GET of the slots Prosody,
// ejabberd or mod_http_upload_external granted, and of the component's own.
type public struct {
	svc    *upload.Service
	prefix string // path of the base URL, without a trailing slash
	sec    secrets
	now    func() time.Time
}

// segments splits a request's escaped path below prefix into decoded
// segments. It refuses (false) empty, "." and ".." segments and segments
// that decode to a '/', '\' or a control character, so that no path can
// name anything but one slot.
func segments(escaped, prefix string) ([]string, bool) {
	rest, ok := strings.CutPrefix(escaped, prefix+"/")
	if !ok {
		return nil, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) > 8 {
		return nil, false
	}
	for i, p := range parts {
		d, err := url.PathUnescape(p)
		if err != nil || d == "" || d == "." || d == ".." || strings.ContainsAny(d, "/\\") {
			return nil, false
		}
		for _, r := range d {
			if r < 0x20 || r == 0x7f {
				return nil, false
			}
		}
		parts[i] = d
	}
	return parts, true
}

func (h *public) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	segs, ok := segments(r.URL.EscapedPath(), h.prefix)
	if !ok {
		status(w, http.StatusNotFound)
		return
	}
	if segs[0] == componentDir {
		h.svc.ServeHTTP(w, r)
		return
	}
	path := strings.Join(segs, "/")
	if r.Method != http.MethodPut {
		h.svc.ServeGranted(w, r, upload.Grant{Path: path})
		return
	}
	g, code := h.grant(r, segs, path)
	if code != 0 {
		if code == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="upload"`)
		}
		w.Header().Set("Access-Control-Allow-Origin", "*")
		status(w, code)
		return
	}
	h.svc.ServeGranted(w, r, g)
}

// grant verifies a PUT's signature and returns what it grants, or the
// status of the refusal.
func (h *public) grant(r *http.Request, segs []string, path string) (upload.Grant, int) {
	q := r.URL.Query()
	auth := r.Header.Get("Authorization")
	switch {
	case strings.HasPrefix(auth, "Bearer ") && len(h.sec.Prosody) > 0:
		c, err := verifyJWT(h.sec.Prosody, strings.TrimSpace(auth[len("Bearer "):]), h.now())
		switch {
		case errors.Is(err, errExpired):
			return upload.Grant{}, http.StatusGone
		case err != nil:
			return upload.Grant{}, http.StatusForbidden
		case len(segs) != 2 || segs[0] != c.Slot || segs[1] != c.Filename:
			return upload.Grant{}, http.StatusForbidden // a token for another URL
		}
		g := upload.Grant{Path: path, Owner: c.Sub, Size: c.Filesize, SlotExpires: c.Exp, Expires: c.Expires}
		// Prosody writes application/octet-stream when the client named
		// no type; then the PUT's own type is kept.
		if c.Filetype != "application/octet-stream" {
			g.ContentType = c.Filetype
		}
		return g, 0
	case q.Get("v2") != "" || q.Get("v") != "":
		if r.ContentLength < 0 {
			return upload.Grant{}, http.StatusLengthRequired // the size is signed
		}
		size := r.ContentLength
		if v := q.Get("v"); v != "" && len(h.sec.Ejabberd) > 0 && len(segs) == 3 {
			if owner, err := verifyEjabberd(h.sec.Ejabberd, segs, size, v); err == nil {
				return upload.Grant{Path: path, Owner: owner, Size: size}, 0
			}
		}
		ct := r.Header.Get("Content-Type")
		if ct == "" {
			ct = "application/octet-stream" // as share.php signs a PUT without a type
		}
		if len(h.sec.External) > 0 && verifyExternal(h.sec.External, path, size, ct, q.Get("v"), q.Get("v2")) == nil {
			g := upload.Grant{Path: path, Size: size}
			if q.Get("v2") != "" {
				g.ContentType = ct
			}
			return g, 0
		}
		return upload.Grant{}, http.StatusForbidden
	default:
		return upload.Grant{}, http.StatusUnauthorized
	}
}

// status writes a short, generic error: never a name, token or path.
func status(w http.ResponseWriter, code int) {
	http.Error(w, http.StatusText(code), code)
}

// admin is the erasure bridge: DELETE /users/<jid> erases everything held
// for the user.
type admin struct {
	svc    *upload.Service
	secret [sha256.Size]byte // SHA-256 of the admin secret
	log    *slog.Logger
}

func newAdmin(svc *upload.Service, secret []byte, log *slog.Logger) *admin {
	return &admin{svc: svc, secret: sha256.Sum256(secret), log: log}
}

// ServeHTTP answers DELETE /users/<bare JID, path-escaped> carrying
// "Authorization: Bearer <admin secret>": 204 once every file and slot of
// the user is erased (those Prosody granted, keyed by the JID, and those
// ejabberd granted, keyed by the SHA-1 of the JID), 401 without the
// secret, 400 for a JID that is not a user's, 405 for another method,
// 500 when a store fails (the request can be repeated: erasure is
// idempotent).
func (a *admin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	got := sha256.Sum256([]byte(tok))
	if !ok || subtle.ConstantTimeCompare(got[:], a.secret[:]) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="uploadd-admin"`)
		status(w, http.StatusUnauthorized)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/users/")
	if !ok {
		status(w, http.StatusNotFound)
		return
	}
	if r.Method != http.MethodDelete {
		w.Header().Set("Allow", "DELETE")
		status(w, http.StatusMethodNotAllowed)
		return
	}
	s, err := url.PathUnescape(rest)
	if err != nil {
		status(w, http.StatusBadRequest)
		return
	}
	j, err := jid.Parse(s)
	if err != nil || j.Localpart() == "" {
		status(w, http.StatusBadRequest)
		return
	}
	ctx := context.WithoutCancel(r.Context()) // finish once started
	err = errors.Join(a.svc.Erase(ctx, j), a.svc.EraseOwner(ctx, ejabberdUserStr(j)))
	if err != nil {
		a.log.Error("erase failed", "err", err) // errors of upload hold no JID
		status(w, http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
