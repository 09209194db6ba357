package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
)

// prosodyVector was written by Prosody 0.12.3's own util/jwt.lua (Debian
// bookworm's prosody package):
//
//	lua5.4 -e 'package.path="/usr/lib/prosody/?.lua;"..package.path
//	  package.cpath="/usr/lib/prosody/?.so;"..package.cpath
//	  print(require"util.jwt".sign("test-secret-0123456789", {sub="alice@example.org",
//	    iat=1700000000, exp=1700000300, slot="Yc2nqvS0bEMvt3UC", expires=1700604800,
//	    filename="cat photo.jpg", filesize=1234, filetype="image/jpeg"}))'
const (
	prosodySecret = "test-secret-0123456789"
	prosodyVector = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpYXQiOjE3MDAwMDAwMDAsImZpbGVzaXplIjoxMjM0LCJzdWIiOiJhbGljZUBleGFtcGxlLm9yZyIsInNsb3QiOiJZYzJucXZTMGJFTXZ0M1VDIiwiZmlsZW5hbWUiOiJjYXQgcGhvdG8uanBnIiwiZXhwIjoxNzAwMDAwMzAwLCJleHBpcmVzIjoxNzAwNjA0ODAwLCJmaWxldHlwZSI6ImltYWdlL2pwZWcifQ.-TeE8HecrDWAIXGW4IlPi-eDqq7EYmHmSvoZBhDXXyU"
)

// signJWT writes a JWT as Prosody's util/jwt.lua does, for the cases the
// vector does not cover.
func signJWT(secret, header string, claims map[string]any) string {
	p, _ := json.Marshal(claims)
	s := b64url.EncodeToString([]byte(header)) + "." + b64url.EncodeToString(p)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(s))
	return s + "." + b64url.EncodeToString(m.Sum(nil))
}

func goodClaims() map[string]any {
	return map[string]any{"sub": "alice@example.org", "iat": 1700000000, "exp": 1700000300,
		"slot": "Yc2nqvS0bEMvt3UC", "expires": 1700604800, "filename": "cat photo.jpg",
		"filesize": 1234, "filetype": "image/jpeg"}
}

const hs256 = `{"alg":"HS256","typ":"JWT"}`

func TestVerifyJWTVector(t *testing.T) {
	c, err := verifyJWT([]byte(prosodySecret), prosodyVector, time.Unix(1700000100, 0))
	if err != nil {
		t.Fatal(err)
	}
	want := prosodyClaims{Sub: "alice@example.org", Slot: "Yc2nqvS0bEMvt3UC", Filename: "cat photo.jpg",
		Filesize: 1234, Filetype: "image/jpeg", Expires: time.Unix(1700604800, 0), Exp: time.Unix(1700000300, 0)}
	if c != want {
		t.Fatalf("claims %+v, want %+v", c, want)
	}
}

func TestVerifyJWTRefuses(t *testing.T) {
	now := time.Unix(1700000100, 0)
	with := func(k string, v any) string {
		c := goodClaims()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return signJWT(prosodySecret, hs256, c)
	}
	flip := []byte(prosodyVector)
	flip[len(flip)-5] ^= 1
	for _, tc := range []struct {
		name, tok string
		now       time.Time
		want      error
	}{
		{"forged signature", string(flip), now, errBadToken},
		{"other secret", signJWT("another-secret-0123456", hs256, goodClaims()), now, errBadToken},
		{"expired", prosodyVector, time.Unix(1700000300, 0), errExpired},
		{"alg none", signJWT(prosodySecret, `{"alg":"none"}`, goodClaims()), now, errBadToken},
		{"alg HS512", signJWT(prosodySecret, `{"alg":"HS512"}`, goodClaims()), now, errBadToken},
		{"unsigned", strings.Join(strings.Split(prosodyVector, ".")[:2], ".") + ".", now, errBadToken},
		{"two parts", strings.Join(strings.Split(prosodyVector, ".")[:2], "."), now, errBadToken},
		{"four parts", prosodyVector + ".x", now, errBadToken},
		{"padded base64", prosodyVector + "=", now, errBadToken},
		{"no exp", with("exp", nil), now, errBadToken},
		{"no size", with("filesize", nil), now, errBadToken},
		{"negative size", with("filesize", -1), now, errBadToken},
		{"fractional size", with("filesize", 1.5), now, errBadToken},
		{"string size", with("filesize", "12"), now, errBadToken},
		{"no slot", with("slot", nil), now, errBadToken},
		{"no filename", with("filename", nil), now, errBadToken},
		{"full JID", with("sub", "alice@example.org/phone"), now, errBadToken},
		{"server JID", with("sub", "example.org"), now, errBadToken},
		{"bad expires", with("expires", "soon"), now, errBadToken},
		{"huge", strings.Repeat("a", maxTokenLen+1), now, errBadToken},
		{"empty", "", now, errBadToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := verifyJWT([]byte(prosodySecret), tc.tok, tc.now); !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := verifyJWT(nil, prosodyVector, now); !errors.Is(err, errBadToken) {
		t.Fatalf("empty secret: %v", err)
	}
	// A float size that is whole, as some Lua versions write it, is fine.
	if c, err := verifyJWT([]byte(prosodySecret), signJWT(prosodySecret, hs256, map[string]any{
		"sub": "a@b", "exp": json.Number("1700000300.0"), "slot": "s", "filename": "f", "filesize": json.Number("3.0"),
	}), now); err != nil || c.Filesize != 3 || !c.Expires.IsZero() {
		t.Fatalf("whole floats: %+v %v", c, err)
	}
}

// ejabberd vectors: ejabberd's make_query_string (src/mod_http_upload.erl)
// signs "<UserStr>/<Rand>/<File> <Size>" with HMAC-SHA256 in lowercase
// hex; UserStr is the SHA-1 of "alice@example.org" (make_user_string with
// jid_in_url: sha1). Computed independently with coreutils and OpenSSL:
//
//	u=$(printf 'alice@example.org' | sha1sum | cut -d' ' -f1)
//	printf '%s' "$u/Xk3hD9qLrT2m/cat_photo.jpg 1234" | openssl dgst -sha256 -hmac 'ejabberd-secret-0123'
const (
	ejabberdSecret  = "ejabberd-secret-0123"
	ejabberdUser    = "45a6b241a242c97f0492d382c390dfa335aac986"
	ejabberdVector  = "35a7855f4082dc4a4248a29cc38b3939face15df8e07934aa935506f9ed15c37"
	externalSecret  = "external-secret-0123"
	externalPath    = "5d1a9e2c-aaaa-bbbb-cccc-0123456789ab/cat photo.jpg"
	externalV1      = "3f7d5d1d3f13eecbff91534d48e306eea768f526074760351afbe542690b4726"
	externalV2      = "de148558b0562ea91077c2b980d1df3bbbac87d5a20c30dec9966eb0d227e5bb"
	ejabberdRandDir = "Xk3hD9qLrT2m"
)

// The mod_http_upload_external vectors follow its share.php (v1: "<path>
// <size>", v2: "<path>\0<size>\0<type>"), computed with OpenSSL:
//
//	printf '%s' "$path 1234" | openssl dgst -sha256 -hmac 'external-secret-0123'
//	printf '%s\0%s\0%s' "$path" 1234 image/jpeg | openssl dgst -sha256 -hmac 'external-secret-0123'

func TestEjabberdUserStr(t *testing.T) {
	if got := ejabberdUserStr(jid.MustParse("alice@example.org/phone")); got != ejabberdUser {
		t.Fatalf("UserStr %s, want %s", got, ejabberdUser)
	}
}

func TestVerifyEjabberd(t *testing.T) {
	segs := []string{ejabberdUser, ejabberdRandDir, "cat_photo.jpg"}
	owner, err := verifyEjabberd([]byte(ejabberdSecret), segs, 1234, ejabberdVector)
	if err != nil || owner != ejabberdUser {
		t.Fatalf("vector: %q %v", owner, err)
	}
	for _, tc := range []struct {
		name string
		segs []string
		size int64
		v    string
	}{
		{"wrong size", segs, 1235, ejabberdVector},
		{"other file", []string{ejabberdUser, ejabberdRandDir, "dog.jpg"}, 1234, ejabberdVector},
		{"upper-case hex v", segs, 1234, strings.ToUpper(ejabberdVector[:2]) + ejabberdVector[2:] + "0"},
		{"short v", segs, 1234, ejabberdVector[:62]},
		{"not hex", segs, 1234, strings.Repeat("z", 64)},
		{"two segments", segs[1:], 1234, ejabberdVector},
		{"user not SHA-1", []string{"alice", ejabberdRandDir, "cat_photo.jpg"}, 1234, ejabberdVector},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := verifyEjabberd([]byte(ejabberdSecret), tc.segs, tc.size, tc.v); !errors.Is(err, errBadToken) {
				t.Fatalf("error %v, want errBadToken", err)
			}
		})
	}
}

func TestVerifyExternal(t *testing.T) {
	k := []byte(externalSecret)
	if err := verifyExternal(k, externalPath, 1234, "image/jpeg", externalV1, ""); err != nil {
		t.Fatalf("v1 vector: %v", err)
	}
	if err := verifyExternal(k, externalPath, 1234, "image/jpeg", "", externalV2); err != nil {
		t.Fatalf("v2 vector: %v", err)
	}
	for _, tc := range []struct {
		name, path, ct, v1, v2 string
		size                   int64
	}{
		{"v1 wrong size", externalPath, "", externalV1, "", 1233},
		{"v2 wrong type", externalPath, "text/html", "", externalV2, 1234},
		{"v2 value as v1", externalPath, "image/jpeg", externalV2, "", 1234},
		{"other path", "x/" + externalPath, "image/jpeg", externalV1, "", 1234},
		{"none", externalPath, "", "", "", 1234},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := verifyExternal(k, tc.path, tc.size, tc.ct, tc.v1, tc.v2); !errors.Is(err, errBadToken) {
				t.Fatalf("error %v, want errBadToken", err)
			}
		})
	}
}

// FuzzVerifyJWT: no input panics, and whatever verifies carries the claims
// an upload needs.
func FuzzVerifyJWT(f *testing.F) {
	f.Add(prosodyVector)
	f.Add(signJWT(prosodySecret, hs256, map[string]any{"sub": "a@b", "exp": 2e9, "slot": "s", "filename": "f", "filesize": 0}))
	f.Add("a.b.c")
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(hs256)) + "..")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := verifyJWT([]byte(prosodySecret), tok, time.Unix(1700000100, 0))
		if err == nil && (c.Slot == "" || c.Filename == "" || c.Filesize < 0 || c.Sub == "") {
			t.Fatalf("verified claims without what an upload needs: %+v", c)
		}
	})
}

// FuzzVerifyURLTokens: the ejabberd and mod_http_upload_external
// verifiers never panic, and nothing but the signed message verifies.
func FuzzVerifyURLTokens(f *testing.F) {
	f.Add(ejabberdUser+"/"+ejabberdRandDir+"/cat_photo.jpg", int64(1234), "image/jpeg", ejabberdVector)
	f.Add(externalPath, int64(1234), "image/jpeg", externalV1)
	f.Add("", int64(-1), "", "")
	f.Fuzz(func(t *testing.T, path string, size int64, ct, v string) {
		segs := strings.Split(path, "/")
		if _, err := verifyEjabberd([]byte(ejabberdSecret), segs, size, v); err == nil &&
			(path != ejabberdUser+"/"+ejabberdRandDir+"/cat_photo.jpg" || size != 1234) {
			t.Fatalf("forged ejabberd token verified: %q %d", path, size)
		}
		if err := verifyExternal([]byte(externalSecret), path, size, ct, v, v); err == nil &&
			(path != externalPath || size != 1234) {
			t.Fatalf("forged external token verified: %q %d", path, size)
		}
	})
}

// FuzzSegments: a request path never yields a segment that could name
// anything but one slot.
func FuzzSegments(f *testing.F) {
	for _, s := range []string{"/f/a/b", "/f/a/%2e%2e", "/f/../x", "/f/a%2Fb/c", "/f/%00", "/f/a//b", "/f/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		segs, ok := segments(p, "/f")
		if !ok {
			return
		}
		for _, s := range segs {
			if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\\\x00") {
				t.Fatalf("segment %q of %q", s, p)
			}
		}
	})
}
