package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"mellium.im/xmpp/jid"
)

// Token errors. The handler answers errBadToken with 403 and errExpired
// with 410; neither message ever holds a JID, a file name or a token.
var (
	errBadToken = errors.New("uploadd: invalid token")
	errExpired  = errors.New("uploadd: token expired")
)

// maxTokenLen bounds the work spent on a token: Prosody's JWTs are a few
// hundred bytes (a 255-byte file name and a 3071-byte JID at most).
const maxTokenLen = 8 << 10

var b64url = base64.RawURLEncoding

// prosodyClaims are the claims Prosody 0.12's mod_http_file_share signs in
// external mode (get_authz in mod_http_file_share.lua, Prosody 0.12.3):
// sub, iat, exp (iat + 300 s), slot, expires (omitted when files never
// expire), filename, filesize, filetype.
type prosodyClaims struct {
	Sub      string // uploader's bare JID, normalized
	Slot     string
	Filename string
	Filesize int64
	Filetype string
	Expires  time.Time // zero when absent
	Exp      time.Time
}

// verifyJWT checks a Prosody upload JWT (HS256, RFC 7519 compact form with
// unpadded base64url parts, as Prosody's util/jwt.lua writes it) against
// secret at now: the header must say alg HS256, the signature must match
// (compared with hmac.Equal), exp must be after now, and every claim the
// upload needs must be present and well-formed. It never panics.
func verifyJWT(secret []byte, tok string, now time.Time) (prosodyClaims, error) {
	if len(secret) == 0 || len(tok) > maxTokenLen {
		return prosodyClaims{}, fmt.Errorf("%w: length", errBadToken)
	}
	h, rest, ok1 := strings.Cut(tok, ".")
	p, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(sig, ".") {
		return prosodyClaims{}, fmt.Errorf("%w: not a compact JWT", errBadToken)
	}
	hdr, err1 := b64url.DecodeString(h)
	mac, err2 := b64url.DecodeString(sig)
	if err1 != nil || err2 != nil {
		return prosodyClaims{}, fmt.Errorf("%w: encoding", errBadToken)
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(hdr, &header) != nil || header.Alg != "HS256" {
		return prosodyClaims{}, fmt.Errorf("%w: algorithm", errBadToken)
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(tok[:len(h)+1+len(p)]))
	if !hmac.Equal(m.Sum(nil), mac) {
		return prosodyClaims{}, fmt.Errorf("%w: signature", errBadToken)
	}
	raw, err := b64url.DecodeString(p)
	if err != nil {
		return prosodyClaims{}, fmt.Errorf("%w: encoding", errBadToken)
	}
	var c struct {
		Sub      string          `json:"sub"`
		Slot     string          `json:"slot"`
		Filename string          `json:"filename"`
		Filetype string          `json:"filetype"`
		Filesize json.RawMessage `json:"filesize"`
		Expires  json.RawMessage `json:"expires"`
		Exp      json.RawMessage `json:"exp"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return prosodyClaims{}, fmt.Errorf("%w: claims", errBadToken)
	}
	size, ok1 := wholeNumber(c.Filesize)
	exp, ok2 := wholeNumber(c.Exp)
	if !ok1 || !ok2 || c.Slot == "" || c.Filename == "" {
		return prosodyClaims{}, fmt.Errorf("%w: missing claim", errBadToken)
	}
	sub, err := jid.Parse(c.Sub)
	if err != nil || sub.Localpart() == "" || sub.Resourcepart() != "" {
		return prosodyClaims{}, fmt.Errorf("%w: sub is not a bare user JID", errBadToken)
	}
	out := prosodyClaims{
		Sub: sub.String(), Slot: c.Slot, Filename: c.Filename,
		Filesize: size, Filetype: c.Filetype, Exp: time.Unix(exp, 0),
	}
	if c.Expires != nil && string(c.Expires) != "null" {
		e, ok := wholeNumber(c.Expires)
		if !ok {
			return prosodyClaims{}, fmt.Errorf("%w: expires", errBadToken)
		}
		out.Expires = time.Unix(e, 0)
	}
	if !now.Before(out.Exp) {
		return prosodyClaims{}, errExpired
	}
	return out, nil
}

// wholeNumber returns a JSON number (not a string) that is a whole number
// in [0, 2^53] (Lua writes integers as 5, some versions as 5.0).
func wholeNumber(n json.RawMessage) (int64, bool) {
	var num json.Number
	if len(n) == 0 || n[0] == '"' || json.Unmarshal(n, &num) != nil {
		return 0, false
	}
	if i, err := strconv.ParseInt(string(num), 10, 64); err == nil {
		return i, i >= 0 && i <= 1<<53
	}
	f, err := strconv.ParseFloat(string(num), 64)
	if err != nil || f < 0 || f > 1<<53 || f != math.Trunc(f) {
		return 0, false
	}
	return int64(f), true
}

// hexMAC checks a hex HMAC-SHA256 of msg under secret in constant time.
func hexMAC(secret []byte, msg, v string) bool {
	if len(secret) == 0 || len(v) != 2*sha256.Size {
		return false
	}
	got, err := hex.DecodeString(v)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(msg))
	return hmac.Equal(m.Sum(nil), got)
}

// verifyEjabberd checks ejabberd's external_secret signature (make_query_string
// in ejabberd's mod_http_upload.erl): v is the hex HMAC-SHA256 under
// secret of "<UserStr>/<Rand>/<File> <size>", where the three segments are
// the slot's URL path below put_url and size the slot's size, which the PUT
// must carry as its Content-Length. It returns UserStr, the owner: with
// ejabberd's default jid_in_url: sha1 it is the lowercase hex SHA-1 of the
// uploader's bare JID, and only that form is accepted.
func verifyEjabberd(secret []byte, segs []string, size int64, v string) (string, error) {
	if len(segs) != 3 || !isSHA1Hex(segs[0]) {
		return "", fmt.Errorf("%w: not an ejabberd slot path", errBadToken)
	}
	if !hexMAC(secret, strings.Join(segs, "/")+" "+strconv.FormatInt(size, 10), v) {
		return "", fmt.Errorf("%w: signature", errBadToken)
	}
	return segs[0], nil
}

func isSHA1Hex(s string) bool {
	if len(s) != 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// verifyExternal checks the signatures of prosody-modules'
// mod_http_upload_external (its README's implementation notes and
// share.php): v1 ("v") is the hex HMAC-SHA256 of "<path> <size>", v2
// ("v2") of "<path>\x00<size>\x00<content type>", path being the slot's
// URL path below the base URL, decoded. Neither carries an owner or a
// time.
func verifyExternal(secret []byte, path string, size int64, contentType, v1, v2 string) error {
	sz := strconv.FormatInt(size, 10)
	switch {
	case v2 != "":
		if hexMAC(secret, path+"\x00"+sz+"\x00"+contentType, v2) {
			return nil
		}
	case v1 != "":
		if hexMAC(secret, path+" "+sz, v1) {
			return nil
		}
	}
	return fmt.Errorf("%w: signature", errBadToken)
}

// ejabberdUserStr is ejabberd's default UserStr of a bare JID: the
// lowercase hex SHA-1 of "user@server" (make_user_string with sha1).
func ejabberdUserStr(bare jid.JID) string {
	return sha1Hex(bare.Bare().String())
}
