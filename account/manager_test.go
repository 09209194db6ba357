package account_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"chatbx.eu/privacy/account"
	"chatbx.eu/privacy/account/accounttest"
	"chatbx.eu/privacy/internal/argon"
	"chatbx.eu/privacy/internal/testclock"
	"golang.org/x/time/rate"
	"mellium.im/xmpp/jid"
)

// fast are the cheapest parameters the package accepts (the OWASP floor);
// tests use them to stay quick.
var fast = account.MinParams()

var ctx = context.Background()

// memHolder is a Holder keeping one string per user in memory.
type memHolder struct {
	name string
	mu   sync.Mutex
	data map[string]string // bare JID -> data
	fail int               // Erase fails this many more times
	errs error
	seen []string // JIDs passed to Erase
}

func newHolder(name string) *memHolder {
	return &memHolder{name: name, data: map[string]string{}, errs: errors.New(name + " unavailable")}
}

func (h *memHolder) Name() string { return h.name }

func (h *memHolder) Export(_ context.Context, user jid.JID, w io.Writer) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := fmt.Fprintf(w, "<data xmlns='urn:example:%s'>%s</data>", h.name, h.data[user.String()])
	return err
}

func (h *memHolder) Erase(_ context.Context, user jid.JID) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seen = append(h.seen, user.String())
	if h.fail > 0 {
		h.fail--
		return h.errs
	}
	delete(h.data, user.String())
	return nil
}

func (h *memHolder) put(user, v string) { h.mu.Lock(); h.data[user] = v; h.mu.Unlock() }

func (h *memHolder) has(user string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.data[user]
	return ok
}

func (h *memHolder) calls() int { h.mu.Lock(); defer h.mu.Unlock(); return len(h.seen) }

// env is a Manager over a MemStore with a test clock and captured logs.
type env struct {
	m     *account.Manager
	store account.Store
	clock *testclock.Clock
	logs  *bytes.Buffer
	logMu *sync.Mutex
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

func newEnv(t testing.TB, c account.Config) *env {
	t.Helper()
	e := &env{store: accounttest.NewMemStore(), clock: testclock.New(), logs: new(bytes.Buffer), logMu: new(sync.Mutex)}
	return e.with(t, c)
}

// with builds a (new) Manager over e's store.
func (e *env) with(t testing.TB, c account.Config) *env {
	t.Helper()
	if c.Params == (account.Params{}) {
		c.Params = fast
	}
	if c.Domain == "" {
		c.Domain = "example.org"
	}
	if c.Now == nil {
		c.Now = e.clock.Now
	}
	if c.EraseBackoff == 0 {
		c.EraseBackoff = time.Microsecond
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(lockedWriter{e.logMu, e.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	m, err := account.NewManager(e.store, c)
	if err != nil {
		t.Fatal(err)
	}
	e.m = m
	return e
}

func (e *env) logText() string { e.logMu.Lock(); defer e.logMu.Unlock(); return e.logs.String() }

// noSecrets fails if the logs contain any of the given strings.
func (e *env) noSecrets(t *testing.T, secrets ...string) {
	t.Helper()
	logs := strings.ToLower(e.logText())
	for _, s := range secrets {
		if strings.Contains(logs, strings.ToLower(s)) {
			t.Errorf("logs contain %q:\n%s", s, logs)
		}
	}
}

var (
	password1Once sync.Once
	password1Hash string
)

// seed stores accounts with the password "lilac-sky-1" directly in e's
// store, hashing only once per test binary: registration costs a hash.
func (e *env) seed(t testing.TB, names ...string) {
	t.Helper()
	password1Once.Do(func() {
		var err error
		if password1Hash, err = argon.Hash("lilac-sky-1", argon.Params(fast)); err != nil {
			panic(err)
		}
	})
	for _, n := range names {
		r := account.Record{Username: n, Skeleton: account.Skeleton(n), Hash: password1Hash, Created: e.clock.Now()}
		if err := e.store.Create(ctx, r, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func mustRegister(t testing.TB, m *account.Manager, user, pw string) {
	t.Helper()
	if err := m.Register(ctx, "198.51.100.7", user, pw); err != nil {
		t.Fatalf("Register: %v", err)
	}
}

func TestRegisterNormalizes(t *testing.T) {
	e := newEnv(t, account.Config{})
	mustRegister(t, e.m, "Alice", "lilac-sky-1")
	for _, name := range []string{"alice", "ALICE", "aLiCe", "\uff41\uff4c\uff49\uff43\uff45" /* fullwidth */} {
		if err := e.m.Register(ctx, "198.51.100.7", name, "lilac-sky-2"); !errors.Is(err, account.ErrExists) {
			t.Errorf("Register(%q) = %v, want ErrExists", name, err)
		}
	}
	a, err := e.m.Get(ctx, "ALICE")
	if err != nil {
		t.Fatal(err)
	}
	if a.Username != "alice" || a.JID != "alice@example.org" || !a.Created.Equal(e.clock.Now()) {
		t.Fatalf("Get = %+v", a)
	}
	if err := e.m.Authenticate(ctx, "198.51.100.7", "aLICE", "lilac-sky-1"); err != nil {
		t.Fatalf("Authenticate with other case: %v", err)
	}
	r, err := e.store.Get(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.Hash, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Contains(r.Hash, "lilac-sky-1") {
		t.Fatalf("stored hash %q", r.Hash)
	}
	e.noSecrets(t, "alice", "lilac-sky-1")
}

func TestRegisterPolicy(t *testing.T) {
	e := newEnv(t, account.Config{
		RegisterRate:  rate.Inf,
		AllowUsername: func(u string) bool { return u != "admin" },
	})
	long := strings.Repeat("p", 1024+1) // the documented maximum is 1024 bytes
	for _, tc := range []struct {
		name, user, pw string
		reason         string
	}{
		{"empty name", "", "lilac-sky-1", "username is empty"},
		{"name too long", strings.Repeat("a", 65), "lilac-sky-1", "username longer than 64"},
		{"name far too long", strings.Repeat("a", 1<<16), "lilac-sky-1", "username longer than 64"},
		{"name invalid UTF-8", "al\xffce", "lilac-sky-1", "not valid UTF-8"},
		{"name with space", "al ice", "lilac-sky-1", "not allowed"},
		{"name with @", "al@ice", "lilac-sky-1", "not allowed"},
		{"name with slash", "al/ice", "lilac-sky-1", "not allowed"},
		{"name with control", "al\u0007ice", "lilac-sky-1", "not allowed"},
		{"reserved name", "Admin", "lilac-sky-1", "reserved"},
		{"empty password", "bob", "", "password is empty"},
		{"short password", "bob", "1234567", "shorter than 8"},
		{"short in characters", "bob", "ééééééé", "shorter than 8"}, // 14 bytes, 7 characters
		{"password too long", "bob", long, "longer than 1024"},
		{"password invalid UTF-8", "bob", "password\xff1", "not valid UTF-8"},
		{"password with control", "bob", "pass\x00word1", "not allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := e.m.Register(ctx, "198.51.100.7", tc.user, tc.pw)
			var pe *account.PolicyError
			if !errors.Is(err, account.ErrPolicy) || !errors.As(err, &pe) {
				t.Fatalf("Register = %v, want a PolicyError", err)
			}
			if !strings.Contains(pe.Reason, tc.reason) {
				t.Errorf("reason %q, want it to mention %q", pe.Reason, tc.reason)
			}
			for _, secret := range []string{tc.user, tc.pw} {
				if len(secret) > 2 && strings.Contains(err.Error(), secret) {
					t.Errorf("error %q repeats the input", err)
				}
			}
		})
	}
	for _, name := range []string{"bob", "alice", "admin"} {
		if _, err := e.m.Get(ctx, name); !errors.Is(err, account.ErrNotFound) {
			t.Errorf("refused registration created %q: %v", name, err)
		}
	}
	// The limits themselves are accepted.
	mustRegister(t, e.m, strings.Repeat("a", 64), "k3p!x9qz")
	mustRegister(t, e.m, "maxpw", strings.Repeat("p", 1024))
	if err := e.m.Authenticate(ctx, "k", "maxpw", strings.Repeat("p", 1024)); err != nil {
		t.Fatalf("Authenticate with a 1 KiB password: %v", err)
	}
}

func TestRegisterRateLimit(t *testing.T) {
	e := newEnv(t, account.Config{Exempt: func(k string) bool { return k == "127.0.0.1" }})
	const flood = "198.51.100.66"
	// Every attempt counts, refused ones too (cheap here: no hashing).
	for i := range 10 {
		err := e.m.Register(ctx, flood, fmt.Sprintf("user%d", i), "short")
		if !errors.Is(err, account.ErrPolicy) {
			t.Fatalf("attempt %d: %v, want ErrPolicy", i, err)
		}
	}
	if err := e.m.Register(ctx, flood, "victim", "lilac-sky-1"); !errors.Is(err, account.ErrRateLimited) {
		t.Fatalf("11th attempt = %v, want ErrRateLimited", err)
	}
	if _, err := e.m.Get(ctx, "victim"); !errors.Is(err, account.ErrNotFound) {
		t.Fatal("a rate-limited registration created the account")
	}
	// Another key is not affected.
	if err := e.m.Register(ctx, "192.0.2.1", "other", "short"); !errors.Is(err, account.ErrPolicy) {
		t.Fatalf("other key = %v, want ErrPolicy (not limited)", err)
	}
	// An exempt key never is.
	for i := range 30 {
		if err := e.m.Register(ctx, "127.0.0.1", "u", "short"); !errors.Is(err, account.ErrPolicy) {
			t.Fatalf("exempt attempt %d = %v", i, err)
		}
	}
	// One more a minute later; not two.
	e.clock.Add(time.Minute)
	if err := e.m.Register(ctx, flood, "victim", "lilac-sky-1"); err != nil {
		t.Fatalf("after a minute: %v", err)
	}
	if err := e.m.Register(ctx, flood, "victim2", "lilac-sky-1"); !errors.Is(err, account.ErrRateLimited) {
		t.Fatalf("second after a minute = %v, want ErrRateLimited", err)
	}
	e.noSecrets(t, flood, "victim")
}

func TestAuthenticate(t *testing.T) {
	e := newEnv(t, account.Config{})
	e.seed(t, "alice")
	for _, tc := range []struct {
		name, user, pw string
		want           error
	}{
		{"right", "alice", "lilac-sky-1", nil},
		{"wrong password", "alice", "lilac-sky-2", account.ErrAuth},
		{"prefix of password", "alice", "password", account.ErrAuth},
		{"unknown user", "mallory", "lilac-sky-1", account.ErrAuth},
		{"empty password", "alice", "", account.ErrAuth},
		{"empty user", "", "lilac-sky-1", account.ErrAuth},
		{"invalid UTF-8 user", "al\xffce", "lilac-sky-1", account.ErrAuth},
		{"oversized password", "alice", strings.Repeat("x", 1<<20), account.ErrAuth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := e.m.Authenticate(ctx, "192.0.2.1", tc.user, tc.pw)
			if err != tc.want {
				t.Fatalf("Authenticate = %v, want exactly %v", err, tc.want)
			}
		})
	}
	if err := e.m.Block(ctx, "Alice"); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Authenticate(ctx, "192.0.2.1", "alice", "lilac-sky-1"); !errors.Is(err, account.ErrBlocked) {
		t.Fatalf("blocked, right password = %v, want ErrBlocked", err)
	}
	if err := e.m.Authenticate(ctx, "192.0.2.1", "alice", "nope-nope"); err != account.ErrAuth {
		t.Fatalf("blocked, wrong password = %v, want ErrAuth (no hint that the account exists)", err)
	}
	if a, _ := e.m.Get(ctx, "alice"); !a.Blocked {
		t.Fatal("Get does not report Blocked")
	}
	if err := e.m.Unblock(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Authenticate(ctx, "192.0.2.1", "alice", "lilac-sky-1"); err != nil {
		t.Fatalf("after Unblock: %v", err)
	}
	if err := e.m.Block(ctx, "nobody"); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("Block(unknown) = %v", err)
	}
	e.noSecrets(t, "alice", "lilac-sky-1", "mallory", "192.0.2.1")
}

// TestAuthenticateUnknownCostsAHash checks that an unknown user is verified
// against a dummy hash: Argon2id allocates m KiB, so an Authenticate that
// skipped the hash would allocate far less.
func TestAuthenticateUnknownCostsAHash(t *testing.T) {
	e := newEnv(t, account.Config{LoginFailureRate: rate.Inf})
	e.seed(t, "alice")
	alloc := func(user string) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if err := e.m.Authenticate(ctx, "k", user, "lilac-sky-2"); err != account.ErrAuth {
			t.Fatalf("Authenticate(%s) = %v", user, err)
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	mem := uint64(fast.Memory) * 1024
	known, unknown := alloc("alice"), alloc("mallory")
	if known < mem || unknown < mem {
		t.Fatalf("allocated %d bytes for a known user, %d for an unknown one; want both ≥ %d (one Argon2id run)", known, unknown, mem)
	}
}

func TestAuthenticateRateLimit(t *testing.T) {
	e := newEnv(t, account.Config{})
	e.seed(t, "alice")
	const attacker = "203.0.113.9"
	// Successes do not count (if they did, the failures below would be
	// limited early).
	for range 3 {
		if err := e.m.Authenticate(ctx, attacker, "alice", "lilac-sky-1"); err != nil {
			t.Fatal(err)
		}
	}
	// Ten failures, two of them real wrong passwords, the rest cheap.
	for i := range 10 {
		pw := "wrong-password"
		if i >= 2 {
			pw = ""
		}
		if err := e.m.Authenticate(ctx, attacker, "alice", pw); err != account.ErrAuth {
			t.Fatalf("failure %d = %v", i, err)
		}
	}
	if err := e.m.Authenticate(ctx, attacker, "alice", "lilac-sky-1"); !errors.Is(err, account.ErrRateLimited) {
		t.Fatalf("after 10 failures, right password = %v, want ErrRateLimited", err)
	}
	if err := e.m.Authenticate(ctx, "192.0.2.44", "alice", "lilac-sky-1"); err != nil {
		t.Fatalf("other key = %v", err)
	}
	e.clock.Add(10 * time.Second)
	if err := e.m.Authenticate(ctx, attacker, "alice", "lilac-sky-1"); err != nil {
		t.Fatalf("10 s later = %v", err)
	}
}

func TestRehashOnLogin(t *testing.T) {
	e := newEnv(t, account.Config{})
	e.seed(t, "alice")
	old, _ := e.store.Get(ctx, "alice")
	stronger := fast
	stronger.Time = 3
	e.with(t, account.Config{Params: stronger})
	if err := e.m.Authenticate(ctx, "k", "alice", "wrong-password"); err != account.ErrAuth {
		t.Fatal(err)
	}
	if r, _ := e.store.Get(ctx, "alice"); r.Hash != old.Hash {
		t.Fatal("a failed login rehashed")
	}
	if err := e.m.Authenticate(ctx, "k", "alice", "lilac-sky-1"); err != nil {
		t.Fatal(err)
	}
	r, _ := e.store.Get(ctx, "alice")
	if !strings.HasPrefix(r.Hash, "$argon2id$v=19$m=19456,t=3,p=1$") {
		t.Fatalf("hash after login %q, want t=3", r.Hash)
	}
	if err := e.m.Authenticate(ctx, "k", "alice", "lilac-sky-1"); err != nil {
		t.Fatalf("login after rehash: %v", err)
	}
}

func TestChangePassword(t *testing.T) {
	e := newEnv(t, account.Config{})
	e.seed(t, "alice")
	if err := e.m.ChangePassword(ctx, "alice", "short"); !errors.Is(err, account.ErrPolicy) {
		t.Fatalf("weak new password = %v", err)
	}
	if err := e.m.ChangePassword(ctx, "ALICE", "new password"); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Authenticate(ctx, "k", "alice", "lilac-sky-1"); err != account.ErrAuth {
		t.Fatalf("old password = %v, want ErrAuth", err)
	}
	if err := e.m.Authenticate(ctx, "k", "alice", "new password"); err != nil {
		t.Fatalf("new password = %v", err)
	}
	if err := e.m.ChangePassword(ctx, "nobody", "lilac-sky-1"); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("unknown = %v", err)
	}
	e.noSecrets(t, "new password", "alice")
}

func TestCorrect(t *testing.T) {
	e := newEnv(t, account.Config{})
	e.seed(t, "alice")
	if err := e.m.Correct(ctx, "alice", account.Profile{Nickname: "Wonder Land 🐇"}); err != nil {
		t.Fatal(err)
	}
	if a, _ := e.m.Get(ctx, "alice"); a.Profile.Nickname != "Wonder Land 🐇" {
		t.Fatalf("Profile = %+v", a.Profile)
	}
	for _, bad := range []string{strings.Repeat("n", 65), "a\x00b", "a\nb", "\xff"} {
		if err := e.m.Correct(ctx, "alice", account.Profile{Nickname: bad}); !errors.Is(err, account.ErrPolicy) {
			t.Errorf("Correct(%q) = %v, want ErrPolicy", bad, err)
		}
	}
	if a, _ := e.m.Get(ctx, "alice"); a.Profile.Nickname != "Wonder Land 🐇" {
		t.Fatal("a refused correction was written")
	}
	if err := e.m.Correct(ctx, "bob", account.Profile{}); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("unknown = %v", err)
	}
}

func TestExport(t *testing.T) {
	mam, upload := newHolder("mam"), newHolder("upload")
	e := newEnv(t, account.Config{Holders: []account.Holder{mam, upload}})
	e.seed(t, "alice")
	e.seed(t, "bob")
	e.m.Correct(ctx, "alice", account.Profile{Nickname: "Al"})
	mam.put("alice@example.org", "alice's messages")
	mam.put("bob@example.org", "bob's messages")
	upload.put("alice@example.org", "alice's files")

	var buf bytes.Buffer
	if err := e.m.Export(ctx, "Alice", &buf); err != nil {
		t.Fatal(err)
	}
	z, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, f := range z.File {
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r)
		files[f.Name] = string(b)
	}
	var names []string
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"account.json", "mam.xml", "upload.xml"}) {
		t.Fatalf("files %v", names)
	}
	var a account.Account
	if err := json.Unmarshal([]byte(files["account.json"]), &a); err != nil {
		t.Fatal(err)
	}
	if a.Username != "alice" || a.JID != "alice@example.org" || a.Profile.Nickname != "Al" {
		t.Fatalf("account.json = %+v", a)
	}
	if strings.Contains(files["account.json"], "argon2") || strings.Contains(files["account.json"], "lilac-sky-1") {
		t.Fatal("export contains the password hash")
	}
	if !strings.Contains(files["mam.xml"], "alice's messages") || strings.Contains(files["mam.xml"], "bob") {
		t.Fatalf("mam.xml = %q", files["mam.xml"])
	}
	if !strings.Contains(files["upload.xml"], "alice's files") {
		t.Fatalf("upload.xml = %q", files["upload.xml"])
	}
	if err := e.m.Export(ctx, "nobody", io.Discard); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("Export(unknown) = %v", err)
	}
}

func TestNewManagerConfig(t *testing.T) {
	store := accounttest.NewMemStore()
	for _, tc := range []struct {
		name string
		c    account.Config
		want error
	}{
		{"duplicate holders", account.Config{Params: fast, Holders: []account.Holder{newHolder("mam"), newHolder("mam")}}, account.ErrConfig},
		{"holder name with slash", account.Config{Params: fast, Holders: []account.Holder{newHolder("../x")}}, account.ErrConfig},
		{"empty holder name", account.Config{Params: fast, Holders: []account.Holder{newHolder("")}}, account.ErrConfig},
		{"nil holder", account.Config{Params: fast, Holders: []account.Holder{nil}}, account.ErrConfig},
		{"short key", account.Config{Params: fast, TombstoneKey: []byte("short")}, account.ErrConfig},
		{"bad domain", account.Config{Params: fast, Domain: "exa mple"}, account.ErrConfig},
		{"weak params", account.Config{Params: account.Params{Time: 1, Memory: 1024, Threads: 1}}, account.ErrConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := account.NewManager(store, tc.c); !errors.Is(err, tc.want) {
				t.Fatalf("NewManager = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := account.NewManager(nil, account.Config{Params: fast}); !errors.Is(err, account.ErrConfig) {
		t.Fatalf("nil store: %v", err)
	}
	m, err := account.NewManager(store, account.Config{Params: fast})
	if err != nil {
		t.Fatal(err)
	}
	if m.Domain().String() != "localhost" {
		t.Fatalf("default domain %v", m.Domain())
	}
}
