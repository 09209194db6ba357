package argon_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"chatbx.eu/privacy/internal/argon"
	"golang.org/x/crypto/argon2"
)

// fast are the cheapest parameters the package accepts (the OWASP floor);
// tests use them to stay quick.
var fast = argon.MinParams()

func TestDefaultParams(t *testing.T) {
	p := argon.DefaultParams()
	if p != (argon.Params{Time: 3, Memory: 65536, Threads: 4}) {
		t.Fatalf("DefaultParams() = %+v, want RFC 9106 t=3 m=64MiB p=4", p)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	// Mutating the returned value must not change the default.
	p.Time = 1
	if argon.DefaultParams().Time != 3 {
		t.Fatal("DefaultParams is mutable")
	}
}

func TestParamsValidate(t *testing.T) {
	min := argon.MinParams()
	for _, tc := range []struct {
		name string
		p    argon.Params
		want error
	}{
		{"floor", min, nil},
		{"default", argon.DefaultParams(), nil},
		{"max", argon.MaxParams(), nil},
		{"zero", argon.Params{}, argon.ErrWeakParams},
		{"t=1", argon.Params{Time: 1, Memory: min.Memory, Threads: 1}, argon.ErrWeakParams},
		{"m below 19MiB", argon.Params{Time: 2, Memory: 19*1024 - 1, Threads: 1}, argon.ErrWeakParams},
		{"p=0", argon.Params{Time: 2, Memory: min.Memory, Threads: 0}, argon.ErrWeakParams},
		{"m above max", argon.Params{Time: 2, Memory: 1<<20 + 1, Threads: 1}, argon.ErrParamsTooHigh},
		{"t above max", argon.Params{Time: 65, Memory: min.Memory, Threads: 1}, argon.ErrParamsTooHigh},
		{"p above max", argon.Params{Time: 2, Memory: min.Memory, Threads: 65}, argon.ErrParamsTooHigh},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Validate() = %v, want %v", err, tc.want)
			}
			if tc.name == "max" || tc.name == "default" {
				return // valid but slow to hash
			}
			_, herr := argon.Hash("password", tc.p)
			if (tc.want == nil) != (herr == nil) {
				t.Fatalf("Hash() error = %v, want %v", herr, tc.want)
			}
		})
	}
}

func TestHashFormat(t *testing.T) {
	s, err := argon.Hash("correct horse", fast)
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "$argon2id$v=19$m=19456,t=2,p=1$"
	if !strings.HasPrefix(s, prefix) {
		t.Fatalf("hash %q lacks prefix %q", s, prefix)
	}
	fields := strings.Split(strings.TrimPrefix(s, prefix), "$")
	if len(fields) != 2 {
		t.Fatalf("want salt$hash after params, got %q", s)
	}
	salt, err := base64.RawStdEncoding.DecodeString(fields[0])
	if err != nil || len(salt) != 16 {
		t.Fatalf("salt %q: %d bytes, err %v; want 16 bytes raw base64", fields[0], len(salt), err)
	}
	key, err := base64.RawStdEncoding.DecodeString(fields[1])
	if err != nil || len(key) != 32 {
		t.Fatalf("hash %q: %d bytes, err %v; want 32 bytes raw base64", fields[1], len(key), err)
	}
	s2, err := argon.Hash("correct horse", fast)
	if err != nil {
		t.Fatal(err)
	}
	if s == s2 {
		t.Fatal("two hashes of the same password are equal: salt not random")
	}
	if strings.Contains(s, "correct horse") {
		t.Fatal("hash contains the password")
	}
}

// TestVerifyIndependentKey builds a PHC string from argon2.IDKey called
// directly, so a swap of m and t, a wrong variant or a wrong key length in
// Verify would make it fail.
func TestVerifyIndependentKey(t *testing.T) {
	salt := []byte("somesaltsomesalt")
	key := argon2.IDKey([]byte("password"), salt, 2, 19456, 1, 32)
	enc := base64.RawStdEncoding
	s := "$argon2id$v=19$m=19456,t=2,p=1$" + enc.EncodeToString(salt) + "$" + enc.EncodeToString(key)
	if ok, err := argon.Verify("password", s); !ok || err != nil {
		t.Fatalf("Verify = %v, %v; want true", ok, err)
	}
	h, err := argon.ParsePHC(s)
	if err != nil {
		t.Fatal(err)
	}
	if string(h.Salt) != string(salt) || h.Params != fast || h.String() != s {
		t.Fatalf("parsed %+v", h)
	}
	ikey := argon2.Key([]byte("password"), salt, 2, 19456, 1, 32) // argon2i
	si := "$argon2id$v=19$m=19456,t=2,p=1$" + enc.EncodeToString(salt) + "$" + enc.EncodeToString(ikey)
	if ok, _ := argon.Verify("password", si); ok {
		t.Fatal("an argon2i key verified as argon2id")
	}
}

func TestVerify(t *testing.T) {
	s, err := argon.Hash("correct horse", fast)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		pw   string
		want bool
	}{
		{"correct horse", true},
		{"correct hors", false},
		{"correct horsf", false},
		{"Correct horse", false},
		{"", false},
	} {
		ok, err := argon.Verify(tc.pw, s)
		if err != nil || ok != tc.want {
			t.Errorf("Verify(%q) = %v, %v; want %v", tc.pw, ok, err, tc.want)
		}
	}
	// A modified key must not verify.
	h, _ := argon.ParsePHC(s)
	h.Key[0] ^= 1
	if ok, err := argon.Verify("correct horse", h.String()); ok || err != nil {
		t.Fatalf("tampered hash verified: %v, %v", ok, err)
	}
}

func TestParsePHCRoundTrip(t *testing.T) {
	s, err := argon.Hash("x", fast)
	if err != nil {
		t.Fatal(err)
	}
	h, err := argon.ParsePHC(s)
	if err != nil {
		t.Fatal(err)
	}
	if h.String() != s {
		t.Fatalf("String() = %q, want %q", h.String(), s)
	}
}

func TestParsePHCMalformed(t *testing.T) {
	const salt = "c29tZXNhbHRzb21lc2FsdA"                     // 16 bytes
	const key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" // 32 bytes
	ok := "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + key
	if _, err := argon.ParsePHC(ok); err != nil {
		t.Fatalf("control case: %v", err)
	}
	for name, s := range map[string]string{
		"empty":             "",
		"dollar":            "$",
		"truncated":         ok[:len(ok)/2],
		"no hash":           "$argon2id$v=19$m=19456,t=2,p=1$" + salt,
		"extra field":       ok + "$x",
		"no leading $":      ok[1:],
		"argon2i":           "$argon2i$v=19$m=19456,t=2,p=1$" + salt + "$" + key,
		"argon2d":           "$argon2d$v=19$m=19456,t=2,p=1$" + salt + "$" + key,
		"bcrypt":            "$2b$12$abcdefghijklmnopqrstuu5GaGCHrU0jAFxwv5Y7RKYI6XK9nYC6W",
		"version 16":        "$argon2id$v=16$m=19456,t=2,p=1$" + salt + "$" + key,
		"no version":        "$argon2id$m=19456,t=2,p=1$" + salt + "$" + key + "$x",
		"t=0":               "$argon2id$v=19$m=19456,t=0,p=1$" + salt + "$" + key,
		"p=0":               "$argon2id$v=19$m=19456,t=2,p=0$" + salt + "$" + key,
		"m=0":               "$argon2id$v=19$m=0,t=2,p=1$" + salt + "$" + key,
		"m=2^32":            "$argon2id$v=19$m=4294967296,t=2,p=1$" + salt + "$" + key,
		"m=2^32-1":          "$argon2id$v=19$m=4294967295,t=2,p=1$" + salt + "$" + key,
		"huge t":            "$argon2id$v=19$m=19456,t=4294967295,p=1$" + salt + "$" + key,
		"huge p":            "$argon2id$v=19$m=19456,t=2,p=255$" + salt + "$" + key,
		"p=256":             "$argon2id$v=19$m=19456,t=2,p=256$" + salt + "$" + key,
		"weak m":            "$argon2id$v=19$m=1024,t=2,p=1$" + salt + "$" + key,
		"negative":          "$argon2id$v=19$m=-1,t=2,p=1$" + salt + "$" + key,
		"plus sign":         "$argon2id$v=19$m=+19456,t=2,p=1$" + salt + "$" + key,
		"leading zero":      "$argon2id$v=19$m=019456,t=2,p=1$" + salt + "$" + key,
		"hex":               "$argon2id$v=19$m=0x4c00,t=2,p=1$" + salt + "$" + key,
		"order t,m,p":       "$argon2id$v=19$t=2,m=19456,p=1$" + salt + "$" + key,
		"missing p":         "$argon2id$v=19$m=19456,t=2$" + salt + "$" + key,
		"extra param":       "$argon2id$v=19$m=19456,t=2,p=1,k=1$" + salt + "$" + key,
		"empty param":       "$argon2id$v=19$m=,t=2,p=1$" + salt + "$" + key,
		"bad base64 salt":   "$argon2id$v=19$m=19456,t=2,p=1$c29tZ!NhbHRzb21lc2FsdA$" + key,
		"padded salt":       "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "==$" + key,
		"url base64 key":    "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + strings.Repeat("_", 43),
		"short salt":        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$" + key,
		"empty salt":        "$argon2id$v=19$m=19456,t=2,p=1$$" + key,
		"short hash":        "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$AAAA",
		"empty hash":        "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$",
		"huge hash":         "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + strings.Repeat("A", 200),
		"very long string":  ok + strings.Repeat("A", 1<<20),
		"non-canonical b64": "$argon2id$v=19$m=19456,t=2,p=1$" + salt[:len(salt)-1] + "B$" + key,
		"invalid UTF-8":     "$argon2id$v=19$m=19456,t=2,p=1$\xff\xfe$" + key,
		"newline in hash":   "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + key[:10] + "\n" + key[10:],
		"CR in salt":        "$argon2id$v=19$m=19456,t=2,p=1$" + salt[:5] + "\r" + salt[5:] + "$" + key,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := argon.ParsePHC(s)
			if !errors.Is(err, argon.ErrMalformedHash) {
				t.Fatalf("ParsePHC = %v, want ErrMalformedHash", err)
			}
			if ok, err := argon.Verify("password", s); ok || !errors.Is(err, argon.ErrMalformedHash) {
				t.Fatalf("Verify = %v, %v; want false, ErrMalformedHash", ok, err)
			}
			if !argon.NeedsRehash(s, fast) {
				t.Fatal("NeedsRehash(malformed) = false")
			}
			if strings.Contains(err.Error(), salt) || strings.Contains(err.Error(), key[:10]) {
				t.Fatalf("error %q repeats hash material", err)
			}
		})
	}
}

func TestNeedsRehash(t *testing.T) {
	s, err := argon.Hash("pw", fast)
	if err != nil {
		t.Fatal(err)
	}
	if argon.NeedsRehash(s, fast) {
		t.Error("NeedsRehash with the same params = true")
	}
	stronger := fast
	stronger.Time++
	if !argon.NeedsRehash(s, stronger) {
		t.Error("NeedsRehash with more passes = false")
	}
	more := fast
	more.Memory *= 2
	if !argon.NeedsRehash(s, more) {
		t.Error("NeedsRehash with more memory = false")
	}
	h, _ := argon.ParsePHC(s)
	h.Key = append(h.Key, make([]byte, 8)...) // 40-byte key from another tool
	if !argon.NeedsRehash(h.String(), fast) {
		t.Error("NeedsRehash with a non-standard key length = false")
	}
}

func TestHasherBoundsConcurrency(t *testing.T) {
	// The Hasher must never run more than Limit computations at once. We
	// cannot observe argon2 directly, so we observe the semaphore through a
	// blocked context: with the limit taken, a further call must wait and
	// give up when its context ends.
	h, err := argon.NewHasher(fast, 2)
	if err != nil {
		t.Fatal(err)
	}
	if h.Limit() != 2 {
		t.Fatalf("Limit() = %d", h.Limit())
	}
	s, err := h.Hash(context.Background(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var okCount atomic.Int32
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, err := h.Verify(context.Background(), "pw", s); ok && err == nil {
				okCount.Add(1)
			}
		}()
	}
	wg.Wait()
	if okCount.Load() != 4 {
		t.Fatalf("%d of 4 concurrent verifications succeeded", okCount.Load())
	}
	if _, err := h.Verify(context.Background(), "pw", "garbage"); !errors.Is(err, argon.ErrMalformedHash) {
		t.Fatalf("Verify(malformed) = %v", err)
	}
	if _, err := argon.NewHasher(argon.Params{Time: 1, Memory: 8, Threads: 1}, 1); !errors.Is(err, argon.ErrWeakParams) {
		t.Fatalf("NewHasher(weak) = %v", err)
	}
}

func FuzzParsePHC(f *testing.F) {
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2id$v=19$m=4294967296,t=0,p=0$$")
	f.Add("$argon2i$v=19$m=65536,t=3,p=4$c29tZQ$AAAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := argon.ParsePHC(s)
		if err != nil {
			if !errors.Is(err, argon.ErrMalformedHash) {
				t.Fatalf("error %v does not wrap ErrMalformedHash", err)
			}
			return
		}
		if err := h.Params.Validate(); err != nil {
			t.Fatalf("accepted params %+v: %v", h.Params, err)
		}
		if len(h.Salt) < 16 || len(h.Key) < 16 {
			t.Fatalf("accepted short salt/key: %d/%d", len(h.Salt), len(h.Key))
		}
		// Canonical: re-encoding gives back the input.
		if h.String() != s {
			t.Fatalf("String() = %q, input %q", h.String(), s)
		}
	})
}
