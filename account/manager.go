package account

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"chatbx.eu/privacy/internal/argon"
	"golang.org/x/text/secure/precis"
	"golang.org/x/time/rate"
	"mellium.im/xmpp/jid"
)

// Holder is anything that holds personal data about a user: the message
// archive, uploaded files, rosters… The Manager exports it with the account
// and erases it when the account is deleted.
//
// Erase must be idempotent: after a crash, Resume calls it again for a user
// whose data may already be gone. Export writes the user's data in the
// holder's own format (XML, e.g. XEP-0227) to w.
type Holder interface {
	Name() string // "mam", "upload", …: a short lowercase identifier
	Export(ctx context.Context, user jid.JID, w io.Writer) error
	Erase(ctx context.Context, user jid.JID) error // idempotent
}

// Limits that are not configurable.
const (
	// maxPasswordLen is the largest accepted password, in bytes.
	maxPasswordLen = 1024
	// maxNicknameLen is the largest accepted Profile.Nickname, in
	// characters.
	maxNicknameLen = 64
)

// Config configures a Manager. The zero value is a working, private
// configuration for the domain "localhost".
type Config struct {
	// Domain is the XMPP domain of the accounts, used to build the user
	// JIDs handed to Holders. "" means "localhost".
	Domain string

	// Params are the Argon2id parameters of new hashes; stored hashes with
	// other parameters are rehashed at the next successful login. The zero
	// value means DefaultParams().
	Params Params
	// MaxConcurrentHashes bounds Argon2id computations in flight (each
	// holds Params.Memory KiB). 0 means runtime.GOMAXPROCS(0).
	MaxConcurrentHashes int

	// MinPasswordLen is the shortest accepted password, in characters.
	// 0 means 8. Passwords longer than 1024 bytes are refused.
	MinPasswordLen int
	// MaxUsernameLen is the longest accepted username, in characters after
	// normalization. 0 means 64.
	MaxUsernameLen int
	// AllowUsername, if set, is asked about every normalized username a
	// client tries to register (e.g. to reserve "admin"); false refuses it
	// with ErrPolicy.
	AllowUsername func(username string) bool

	// RegisterRate and RegisterBurst limit registration attempts per
	// client key. 0 means one a minute after a burst of 10.
	RegisterRate  rate.Limit
	RegisterBurst int
	// LoginFailureRate and LoginFailureBurst limit failed logins per
	// client key, shared by every caller of Authenticate (SASL, a web
	// form). 0 means one every 10 seconds after a burst of 10.
	LoginFailureRate  rate.Limit
	LoginFailureBurst int
	// Exempt, if set, exempts client keys from both rate limits (e.g.
	// loopback addresses). The caller decides what a client key is: a
	// client IP address, or better an IPv6 /64 prefix.
	Exempt func(clientKey string) bool

	// TombstoneTTL is how long the name of a deleted account cannot be
	// registered again. 0 means 365 days; at most 100 years.
	TombstoneTTL time.Duration
	// TombstoneKey is the HMAC key that turns names into tombstone keys
	// (at least 16 bytes). nil means a random key generated once and kept
	// in the Store.
	TombstoneKey []byte

	// Holders are erased, in order, when an account is deleted, and
	// exported with it. Their names must be unique and match
	// [a-z0-9][a-z0-9._-]* (at most 64 bytes).
	Holders []Holder
	// EraseAttempts is how often Delete tries a failing Holder before
	// giving up (the erasure then stays in the journal for Resume).
	// 0 means 3.
	EraseAttempts int
	// EraseBackoff is the wait before the second attempt; it doubles for
	// each further attempt, up to 30 s. 0 means 1 s.
	EraseBackoff time.Duration

	// Now is the clock. nil means time.Now.
	Now func() time.Time
	// Logger receives operational events, never usernames, passwords or
	// client keys. nil discards them.
	Logger *slog.Logger
}

// Account is what the Manager tells about an account: never its hash.
type Account struct {
	Username string    `json:"username"` // normalized localpart
	JID      string    `json:"jid"`      // bare JID
	Created  time.Time `json:"created"`
	Blocked  bool      `json:"blocked"`
	Profile  Profile   `json:"profile"`
}

// Manager runs the account lifecycle: registration, authentication,
// password change, correction, blocking, export and deletion across
// Holders. A Manager is safe for concurrent use.
type Manager struct {
	store   Store
	cfg     Config
	domain  jid.JID
	hasher  *argon.Hasher
	dummy   func() (string, error) // hash verified for unknown users
	reg     *limiters
	login   *limiters
	log     *slog.Logger
	holders []Holder

	mu      sync.Mutex
	key     []byte                   // tombstone HMAC key, loaded lazily
	running map[string]chan struct{} // erasures in progress in this process
}

var holderName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

const (
	tombstoneSecret = "tombstone-hmac-key"
	maxTombstoneTTL = 100 * 365 * 24 * time.Hour
)

// NewManager returns a Manager over store. It fails with an error wrapping
// ErrConfig for an invalid Config, Params outside the accepted range
// included.
func NewManager(store Store, c Config) (*Manager, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: nil Store", ErrConfig)
	}
	if c.Domain == "" {
		c.Domain = "localhost"
	}
	domain, err := jid.New("", c.Domain, "")
	if err != nil {
		return nil, fmt.Errorf("%w: invalid domain: %v", ErrConfig, err)
	}
	if c.Params == (Params{}) {
		c.Params = DefaultParams()
	}
	if c.MinPasswordLen <= 0 {
		c.MinPasswordLen = 8
	}
	if c.MaxUsernameLen <= 0 {
		c.MaxUsernameLen = 64
	}
	if c.RegisterRate == 0 {
		c.RegisterRate = rate.Every(time.Minute)
	}
	if c.RegisterBurst <= 0 {
		c.RegisterBurst = 10
	}
	if c.LoginFailureRate == 0 {
		c.LoginFailureRate = rate.Every(10 * time.Second)
	}
	if c.LoginFailureBurst <= 0 {
		c.LoginFailureBurst = 10
	}
	if c.TombstoneTTL <= 0 {
		c.TombstoneTTL = 365 * 24 * time.Hour
	}
	if c.TombstoneTTL > maxTombstoneTTL {
		return nil, fmt.Errorf("%w: TombstoneTTL above 100 years", ErrConfig)
	}
	if c.TombstoneKey != nil && len(c.TombstoneKey) < 16 {
		return nil, fmt.Errorf("%w: TombstoneKey shorter than 16 bytes", ErrConfig)
	}
	if c.EraseAttempts <= 0 {
		c.EraseAttempts = 3
	}
	if c.EraseBackoff <= 0 {
		c.EraseBackoff = time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	seen := map[string]bool{}
	for _, h := range c.Holders {
		if h == nil {
			return nil, fmt.Errorf("%w: nil Holder", ErrConfig)
		}
		n := h.Name()
		if !holderName.MatchString(n) {
			return nil, fmt.Errorf("%w: Holder name %q must match %s", ErrConfig, n, holderName)
		}
		if seen[n] {
			return nil, fmt.Errorf("%w: two Holders named %q", ErrConfig, n)
		}
		seen[n] = true
	}
	hasher, err := argon.NewHasher(argon.Params(c.Params), c.MaxConcurrentHashes)
	if err != nil {
		return nil, fmt.Errorf("%w: Params: %w", ErrConfig, err)
	}
	// The dummy hash is made at the first Authenticate, whoever logs in, so
	// that the extra cost says nothing about whether the user exists.
	dummy := sync.OnceValues(func() (string, error) {
		var pw [16]byte
		rand.Read(pw[:])
		return argon.Hash(hex.EncodeToString(pw[:]), argon.Params(c.Params))
	})
	return &Manager{
		store:   store,
		cfg:     c,
		domain:  domain,
		hasher:  hasher,
		dummy:   dummy,
		reg:     newLimiters(c.RegisterRate, c.RegisterBurst, c.Exempt),
		login:   newLimiters(c.LoginFailureRate, c.LoginFailureBurst, c.Exempt),
		log:     c.Logger,
		holders: slices.Clone(c.Holders),
		key:     slices.Clone(c.TombstoneKey),
		running: map[string]chan struct{}{},
	}, nil
}

// Domain returns the XMPP domain of the accounts.
func (m *Manager) Domain() jid.JID { return m.domain }

// Normalize returns the normalized form of username (PRECIS
// UsernameCaseMapped, RFC 8265, as in a JID localpart): "Alice" and "alice"
// are one account. It fails with ErrPolicy for empty, oversized, invalid
// UTF-8 or disallowed names, giving the reason without the name.
func (m *Manager) Normalize(username string) (string, error) {
	switch {
	case username == "":
		return "", policy("username is empty")
	case !utf8.ValidString(username):
		return "", policy("username is not valid UTF-8")
	case len(username) > 4*m.cfg.MaxUsernameLen:
		return "", policy(fmt.Sprintf("username longer than %d characters", m.cfg.MaxUsernameLen))
	}
	j, err := jid.New(username, m.domain.Domainpart(), "")
	if err != nil || j.Localpart() == "" {
		return "", policy("username contains characters that are not allowed")
	}
	local := j.Localpart()
	if utf8.RuneCountInString(local) > m.cfg.MaxUsernameLen {
		return "", policy(fmt.Sprintf("username longer than %d characters", m.cfg.MaxUsernameLen))
	}
	return local, nil
}

// checkPassword applies the password policy to a new password for the
// account username (normalized) and returns the password prepared with
// PRECIS OpaqueString (RFC 8265 §4.2). Weak passwords (only white space,
// common, the username) fail with ErrWeakPassword.
func (m *Manager) checkPassword(pw, username string) (string, error) {
	switch {
	case pw == "":
		return "", policy("password is empty")
	case len(pw) > maxPasswordLen:
		return "", policy(fmt.Sprintf("password longer than %d bytes", maxPasswordLen))
	case !utf8.ValidString(pw):
		return "", policy("password is not valid UTF-8")
	case onlyWhiteSpace(pw):
		// Before PRECIS, which refuses some white space (tabs, line
		// breaks) as control characters: say what is wrong.
		return "", weak("password is only white space")
	}
	prepared, err := precis.OpaqueString.String(pw)
	if err != nil {
		return "", policy("password contains characters that are not allowed")
	}
	if utf8.RuneCountInString(prepared) < m.cfg.MinPasswordLen {
		return "", policy(fmt.Sprintf("password shorter than %d characters", m.cfg.MinPasswordLen))
	}
	if len(prepared) > maxPasswordLen {
		return "", policy(fmt.Sprintf("password longer than %d bytes", maxPasswordLen))
	}
	if reason := weakPassword(prepared, username); reason != "" {
		return "", weak(reason)
	}
	return prepared, nil
}

// preparePassword prepares a password for verification; ok is false when
// no registered password could match it.
func preparePassword(pw string) (string, bool) {
	if pw == "" || len(pw) > maxPasswordLen || !utf8.ValidString(pw) {
		return "", false
	}
	p, err := precis.OpaqueString.String(pw)
	return p, err == nil
}

// userJID returns the bare JID of a normalized username.
func (m *Manager) userJID(username string) (jid.JID, error) {
	return jid.New(username, m.domain.Domainpart(), "")
}

// tombstoneKey returns the keyed HMAC of s: tombstones are keyed by the
// Skeleton of the deleted name (older ones by the name itself).
func (m *Manager) tombstoneKey(ctx context.Context, s string) ([]byte, error) {
	m.mu.Lock()
	key := m.key
	m.mu.Unlock()
	if key == nil {
		fresh := make([]byte, 32)
		if _, err := rand.Read(fresh); err != nil {
			return nil, fmt.Errorf("account: generating tombstone key: %w", err)
		}
		stored, err := m.store.LoadOrStoreSecret(ctx, tombstoneSecret, fresh)
		if err != nil {
			return nil, fmt.Errorf("account: loading tombstone key: %w", err)
		}
		if len(stored) < 16 {
			return nil, fmt.Errorf("account: stored tombstone key shorter than 16 bytes")
		}
		m.mu.Lock()
		m.key = stored
		m.mu.Unlock()
		key = stored
	}
	mac := hmac.New(sha256.New, key)
	io.WriteString(mac, "chatbx.eu/privacy/account tombstone\x00")
	io.WriteString(mac, s)
	return mac.Sum(nil), nil
}

// Register creates the account username with password. clientKey
// identifies the caller for rate limiting (see Config.Exempt).
//
// It fails with ErrRateLimited when the caller made too many attempts
// (every attempt counts); with a *PolicyError (ErrPolicy) for a refused
// username or password, wrapping ErrMixedScripts for a name that mixes
// scripts and ErrWeakPassword for a weak password; and with ErrExists
// when the normalized name is taken, looks like a taken one (the same
// Skeleton), or looks like the name of an account deleted less than
// TombstoneTTL ago. ErrExists never tells which account a name resembles.
func (m *Manager) Register(ctx context.Context, clientKey, username, password string) error {
	now := m.cfg.Now()
	if !m.reg.allow(clientKey, now) {
		return ErrRateLimited
	}
	name, err := m.Normalize(username)
	if err != nil {
		return err
	}
	if mixed, found := mixedScripts(name); mixed {
		return &PolicyError{
			Reason: "username mixes scripts (" + strings.Join(found, ", ") + "); use letters of one script",
			Err:    ErrMixedScripts,
		}
	}
	if m.cfg.AllowUsername != nil && !m.cfg.AllowUsername(name) {
		return policy("username is reserved")
	}
	pw, err := m.checkPassword(password, name)
	if err != nil {
		return err
	}
	skel := Skeleton(name)
	tomb, err := m.tombstoneKey(ctx, skel)
	if err != nil {
		return err
	}
	// Tombstones written before skeletons existed are keyed by the name.
	// None is written so any more (a name equal to its skeleton has one
	// key), so checking them outside Create's transaction is safe.
	legacy := tomb
	if skel != name {
		if legacy, err = m.tombstoneKey(ctx, name); err != nil {
			return err
		}
	}
	// Refuse taken names before spending a hash on them.
	if _, err := m.store.Get(ctx, name); err == nil {
		return ErrExists
	} else if !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("account: register: %w", err)
	}
	for _, key := range [][]byte{tomb, legacy} {
		if t, err := m.store.Tombstone(ctx, key); err == nil && t.Expires.After(now) {
			return ErrExists
		} else if err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("account: register: %w", err)
		}
	}
	hash, err := m.hasher.Hash(ctx, pw)
	if err != nil {
		return err
	}
	// Create checks the name, the skeleton and the tombstone atomically.
	err = m.store.Create(ctx, Record{Username: name, Skeleton: skel, Hash: hash, Created: now}, tomb)
	if errors.Is(err, ErrExists) {
		return ErrExists
	}
	if err != nil {
		return fmt.Errorf("account: register: %w", err)
	}
	m.log.LogAttrs(ctx, slog.LevelInfo, "account registered")
	return nil
}

// Authenticate checks username and password, for SASL PLAIN and web
// logins alike. It returns nil on success, ErrAuth for an unknown user or a
// wrong password (alike, and taking the same time: an unknown user is
// verified against a dummy hash), ErrBlocked for the right password of a
// blocked account, and ErrRateLimited when clientKey has failed too often.
// Only failures count against the limit. A successful login rehashes a
// password stored with other parameters than Config.Params.
func (m *Manager) Authenticate(ctx context.Context, clientKey, username, password string) error {
	now := m.cfg.Now()
	giveBack, ok := m.login.reserve(clientKey, now)
	if !ok {
		return ErrRateLimited
	}
	dummy, err := m.dummy()
	if err != nil {
		giveBack()
		return err
	}
	name, nameErr := m.Normalize(username)
	pw, pwOK := preparePassword(password)
	if nameErr != nil || !pwOK {
		return ErrAuth // syntactically impossible: no account can match
	}
	rec, err := m.store.Get(ctx, name)
	known := err == nil && !rec.Deleting
	if err != nil && !errors.Is(err, ErrNotFound) {
		giveBack()
		return fmt.Errorf("account: authenticate: %w", err)
	}
	target := dummy
	if known {
		target = rec.Hash
	}
	match, err := m.hasher.Verify(ctx, pw, target)
	if errors.Is(err, argon.ErrMalformedHash) {
		m.log.LogAttrs(ctx, slog.LevelError, "stored password hash is malformed; the account cannot log in until its password is reset")
		return ErrAuth
	}
	if err != nil {
		giveBack()
		return err
	}
	if !match || !known {
		return ErrAuth
	}
	giveBack()
	if rec.Blocked {
		return ErrBlocked
	}
	if m.hasher.NeedsRehash(rec.Hash) {
		m.rehash(ctx, name, rec.Hash, pw)
	}
	return nil
}

func (m *Manager) rehash(ctx context.Context, name, old, pw string) {
	hash, err := m.hasher.Hash(ctx, pw)
	if err == nil {
		err = m.store.Update(ctx, name, func(r *Record) error {
			if r.Hash == old { // not changed meanwhile
				r.Hash = hash
			}
			return nil
		})
	}
	if err != nil {
		m.log.LogAttrs(ctx, slog.LevelWarn, "rehash after login failed", slog.String("error", err.Error()))
	}
}

// ChangePassword sets a new password for username. It fails with ErrNotFound
// for an unknown (or deleting) account and with a *PolicyError for a
// refused password.
func (m *Manager) ChangePassword(ctx context.Context, username, newPassword string) error {
	name, err := m.Normalize(username)
	if err != nil {
		return ErrNotFound
	}
	pw, err := m.checkPassword(newPassword, name)
	if err != nil {
		return err
	}
	hash, err := m.hasher.Hash(ctx, pw)
	if err != nil {
		return err
	}
	return m.update(ctx, name, func(r *Record) error {
		r.Hash = hash
		return nil
	})
}

// update runs fn on a live (not deleting) account.
func (m *Manager) update(ctx context.Context, name string, fn func(*Record) error) error {
	err := m.store.Update(ctx, name, func(r *Record) error {
		if r.Deleting {
			return ErrNotFound
		}
		return fn(r)
	})
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrPolicy) {
		return fmt.Errorf("account: update: %w", err)
	}
	return err
}

// Correct replaces the profile of username (the right to rectification).
// It fails with ErrNotFound for an unknown account and with a *PolicyError
// for a nickname that is too long, not valid UTF-8 or holds control
// characters.
func (m *Manager) Correct(ctx context.Context, username string, p Profile) error {
	name, err := m.Normalize(username)
	if err != nil {
		return ErrNotFound
	}
	switch {
	case !utf8.ValidString(p.Nickname):
		return policy("nickname is not valid UTF-8")
	case utf8.RuneCountInString(p.Nickname) > maxNicknameLen:
		return policy(fmt.Sprintf("nickname longer than %d characters", maxNicknameLen))
	case containsControl(p.Nickname):
		return policy("nickname contains control characters")
	}
	return m.update(ctx, name, func(r *Record) error {
		r.Profile = p
		return nil
	})
}

func containsControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) {
			return true
		}
	}
	return false
}

// Block restricts the processing of username's data (GDPR Art. 18): the
// data is kept, logins fail with ErrBlocked. Sessions already open are not
// ended by Block; the integrator does that.
func (m *Manager) Block(ctx context.Context, username string) error {
	return m.setBlocked(ctx, username, true)
}

// Unblock lifts a Block.
func (m *Manager) Unblock(ctx context.Context, username string) error {
	return m.setBlocked(ctx, username, false)
}

func (m *Manager) setBlocked(ctx context.Context, username string, b bool) error {
	name, err := m.Normalize(username)
	if err != nil {
		return ErrNotFound
	}
	return m.update(ctx, name, func(r *Record) error {
		r.Blocked = b
		return nil
	})
}

// Get returns the account username without its hash. Accounts being
// deleted are reported as ErrNotFound.
func (m *Manager) Get(ctx context.Context, username string) (Account, error) {
	name, err := m.Normalize(username)
	if err != nil {
		return Account{}, ErrNotFound
	}
	r, err := m.store.Get(ctx, name)
	if err == nil && r.Deleting {
		err = ErrNotFound
	}
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return Account{}, ErrNotFound
		}
		return Account{}, fmt.Errorf("account: get: %w", err)
	}
	j, err := m.userJID(name)
	if err != nil {
		return Account{}, fmt.Errorf("account: get: %w", err)
	}
	return Account{Username: name, JID: j.String(), Created: r.Created, Blocked: r.Blocked, Profile: r.Profile}, nil
}

// ExpireTombstones forgets the tombstones that expired before before,
// and reports how many. Expired tombstones no longer block registration
// either way; this only reclaims their space.
func (m *Manager) ExpireTombstones(ctx context.Context, before time.Time) (int, error) {
	return m.store.ExpireTombstones(ctx, before)
}
