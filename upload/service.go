package upload

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"mellium.im/xmpp/jid"
)

// Service issues upload slots, serves the HTTPS side (it is an http.Handler)
// and the XMPP side (HandleIQ, disco), and implements the account Holder
// (Name, Export, Erase) and retention Expirer (Expire) contracts. It is safe
// for concurrent use.
type Service struct {
	meta  MetaStore
	blobs BlobStore
	cfg   Config
	keys  [][]byte // keys[0] signs; all verify
	base  *url.URL
	now   func() time.Time
}

// Slot is an issued upload slot.
type Slot struct {
	ID      string      // random file ID (also in both URLs)
	PutURL  string      // where to PUT the file (HTTPS)
	GetURL  string      // where the file will be served
	Header  http.Header // headers the client must send with the PUT (Authorization)
	Expires time.Time   // the PUT must start before this time
}

// NewService returns a Service storing metadata in meta and contents in blobs.
// Zero fields of cfg take the documented defaults; BaseURL is required and
// must be an https URL. A nil cfg.Key makes NewService generate a random key.
func NewService(meta MetaStore, blobs BlobStore, cfg Config) (*Service, error) {
	if meta == nil || blobs == nil {
		return nil, fmt.Errorf("%w: nil store", ErrConfig)
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%w: BaseURL must be an absolute https URL without query", ErrConfig)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	if cfg.MaxFileSize <= 0 {
		cfg.MaxFileSize = defaultMaxFileSize
	}
	if cfg.TTL <= 0 {
		cfg.TTL = defaultTTL
	}
	if cfg.DailyQuota == 0 {
		cfg.DailyQuota = defaultDailyQuota
	}
	if cfg.DailyFiles == 0 {
		cfg.DailyFiles = defaultDailyFiles
	}
	if cfg.StoredQuota == 0 {
		cfg.StoredQuota = defaultStoredQuota
	}
	if cfg.SlotTTL <= 0 {
		cfg.SlotTTL = defaultSlotTTL
	}
	if cfg.UploadTimeout <= 0 {
		cfg.UploadTimeout = defaultUploadTime
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Key == nil {
		cfg.Key = make([]byte, 32)
		_, _ = rand.Read(cfg.Key)
	}
	if len(cfg.Key) < 32 || (cfg.PreviousKey != nil && len(cfg.PreviousKey) < 32) {
		return nil, fmt.Errorf("%w: keys must be at least 32 bytes", ErrConfig)
	}
	keys := [][]byte{slices.Clone(cfg.Key)}
	if cfg.PreviousKey != nil {
		keys = append(keys, slices.Clone(cfg.PreviousKey))
	}
	return &Service{meta: meta, blobs: blobs, cfg: cfg, keys: keys, base: u, now: cfg.Now}, nil
}

// Name returns "upload", the name of this data holder in exports and reports.
func (s *Service) Name() string { return "upload" }

// MaxFileSize returns the effective maximum file size in bytes.
func (s *Service) MaxFileSize() int64 { return s.cfg.MaxFileSize }

// TTL returns the effective lifetime of an uploaded file.
func (s *Service) TTL() time.Duration { return s.cfg.TTL }

// RetentionMaxAge returns the MaxAge to give a retention job that calls
// Expire every interval, so that the bytes of every file are deleted before
// TTL has passed. It is TTL minus the longest time between two runs (the
// interval plus the scheduler's random delay of up to 10 % of it, the
// retention package's default jitter) and one second for the run itself:
// the first run after a file's upload + MaxAge, late as it may be, starts
// before upload + TTL. A privacy report of such a job states a deletion
// time within TTL, while a job with MaxAge TTL may keep a file up to an
// interval and its jitter longer than promised.
//
// interval 0 means 10 minutes, the retention package's default. A scheduler
// with a jitter above 10 % needs a smaller MaxAge. The result is never
// negative: an interval close to TTL makes every run delete every file.
func (s *Service) RetentionMaxAge(interval time.Duration) time.Duration {
	if interval <= 0 {
		interval = 10 * time.Minute
	}
	// The jitter is computed as the retention scheduler computes it, so that
	// its report's deletion time is exactly TTL − 1s.
	const jitter = 0.1
	gap := interval + time.Duration(jitter*float64(interval))
	return max(s.cfg.TTL-gap-time.Second, 0)
}

// normalizeType parses a client content type; "" stays "".
func normalizeType(ct string) (string, error) {
	ct = strings.TrimSpace(ct)
	if ct == "" {
		return "", nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || !strings.Contains(mt, "/") {
		return "", fmt.Errorf("%w: invalid content type", ErrBadRequest)
	}
	out := mime.FormatMediaType(mt, params)
	if out == "" || len(out) > 255 {
		return "", fmt.Errorf("%w: invalid content type", ErrBadRequest)
	}
	return out, nil
}

// RequestSlot issues a single-use upload slot for owner (the requester as the
// server authenticated it; only its bare JID is kept). The quota is reserved
// at once, so concurrent requests cannot overshoot it; a slot that is never
// used stops counting when it expires.
//
// Errors wrap ErrForbidden, ErrBadRequest, ErrTooLarge (*TooLargeError) or
// ErrQuota (*QuotaError).
func (s *Service) RequestSlot(ctx context.Context, owner jid.JID, filename string, size int64, contentType string) (Slot, error) {
	owner = owner.Bare()
	if owner.Localpart() == "" || (s.cfg.Allow != nil && !s.cfg.Allow(owner)) {
		return Slot{}, ErrForbidden
	}
	if strings.TrimSpace(filename) == "" {
		return Slot{}, fmt.Errorf("%w: missing file name", ErrBadRequest)
	}
	if size < 0 {
		return Slot{}, fmt.Errorf("%w: negative size", ErrBadRequest)
	}
	if size > s.cfg.MaxFileSize {
		return Slot{}, &TooLargeError{Max: s.cfg.MaxFileSize}
	}
	if lim := s.quotaLimit(); lim >= 0 && size > lim {
		return Slot{}, &TooLargeError{Max: lim}
	}
	ct, err := normalizeType(contentType)
	if err != nil {
		return Slot{}, err
	}
	now := s.now()
	exp := now.Add(s.cfg.SlotTTL).Truncate(time.Second)
	r := Record{
		ID:          newID(),
		Owner:       owner.String(),
		Filename:    sanitizeFilename(filename),
		ContentType: ct,
		Size:        size,
		Created:     now,
		Expires:     exp,
		State:       StateReserved,
	}
	if err := s.meta.Reserve(ctx, r, func(existing []Record) error {
		return s.admit(now, size, existing)
	}); err != nil {
		return Slot{}, fmt.Errorf("upload: reserve slot: %w", err)
	}
	u := s.fileURL(r)
	h := http.Header{}
	h.Set("Authorization", "Bearer "+signToken(s.keys[0], r, exp))
	return Slot{ID: r.ID, PutURL: u, GetURL: u, Header: h, Expires: exp}, nil
}

// quotaLimit is the smallest configured per-user limit, or -1.
func (s *Service) quotaLimit() int64 {
	lim := int64(-1)
	for _, q := range []int64{s.cfg.DailyQuota, s.cfg.StoredQuota} {
		if q >= 0 && (lim < 0 || q < lim) {
			lim = q
		}
	}
	return lim
}

// live reports whether a record still holds (or may soon hold) bytes at now.
func (s *Service) live(r Record, now time.Time) bool {
	switch r.State {
	case StateStored:
		return now.Before(s.expiry(r))
	default: // Reserved or Uploading: until the slot's or upload's deadline
		return now.Before(r.Expires)
	}
}

// expiry is the effective deletion time of a stored file: never later than
// upload time + the current TTL.
func (s *Service) expiry(r Record) time.Time {
	e := r.Created.Add(s.cfg.TTL)
	if r.Expires.Before(e) {
		return r.Expires
	}
	return e
}

// admit checks both quotas against the owner's live records.
func (s *Service) admit(now time.Time, size int64, existing []Record) error {
	var live []Record
	for _, r := range existing {
		if s.live(r, now) {
			live = append(live, r)
		}
	}
	var retry time.Time
	dayStart := now.Add(-24 * time.Hour)
	var inDay []Record
	for _, r := range live {
		if r.Created.After(dayStart) {
			inDay = append(inDay, r)
		}
	}
	slices.SortFunc(inDay, func(a, b Record) int { return a.Created.Compare(b.Created) })
	if n := s.cfg.DailyFiles; n >= 0 && len(inDay)+1 > n {
		// The request fits once enough of the oldest leave the window.
		retry = inDay[len(inDay)-n].Created.Add(24 * time.Hour)
	}
	if q := s.cfg.DailyQuota; q >= 0 {
		var used int64
		for _, r := range inDay {
			used += r.Size
		}
		if used+size > q {
			for _, r := range inDay {
				used -= r.Size
				if used+size <= q {
					if t := r.Created.Add(24 * time.Hour); t.After(retry) {
						retry = t
					}
					break
				}
			}
		}
	}
	if q := s.cfg.StoredQuota; q >= 0 {
		var used int64
		for _, r := range live {
			used += r.Size
		}
		if used+size > q {
			slices.SortFunc(live, func(a, b Record) int { return s.until(a).Compare(s.until(b)) })
			for _, r := range live {
				used -= r.Size
				if used+size <= q {
					if t := s.until(r); t.After(retry) {
						retry = t
					}
					break
				}
			}
		}
	}
	if retry.IsZero() {
		return nil
	}
	return &QuotaError{Retry: retry.UTC().Truncate(time.Second).Add(time.Second)}
}

// until is when a live record stops counting against the stored quota.
func (s *Service) until(r Record) time.Time {
	if r.State == StateStored {
		return s.expiry(r)
	}
	return r.Expires
}

// fileURL is the PUT and GET URL of a record.
func (s *Service) fileURL(r Record) string {
	u := *s.base
	u.Path = s.base.Path + "/" + r.ID + "/" + r.Filename
	u.RawPath = ""
	return u.String()
}

// Expire deletes every file whose lifetime has ended by Config.Now(), every
// slot that expired unused or whose upload was interrupted, and every record
// created (files: uploaded) before the cutoff `before` (retention passes
// now − max age): contents first, then metadata. It returns the number of
// records removed. It walks the expiry and creation indexes from the oldest
// entry in batches of 1000, so its cost follows the number of records
// removed, not the number stored.
func (s *Service) Expire(ctx context.Context, before time.Time) (removed int, err error) {
	now := s.now()
	n, err := s.expireBatches(ctx, func() ([]Record, error) { return s.meta.Expiring(ctx, now, expireBatch) })
	removed += n
	if err != nil {
		return removed, err
	}
	n, err = s.expireBatches(ctx, func() ([]Record, error) { return s.meta.Older(ctx, before, expireBatch) })
	removed += n
	if err != nil {
		return removed, err
	}
	// Temporary files of uploads interrupted by a crash.
	if st, ok := s.blobs.(interface {
		RemoveStale(ctx context.Context, t time.Time) (int, error)
	}); ok {
		if _, err := st.RemoveStale(ctx, now.Add(-s.cfg.UploadTimeout)); err != nil {
			return removed, fmt.Errorf("upload: expire: %w", err)
		}
	}
	return removed, nil
}

const expireBatch = 1000

// expireBatches deletes every record next returns (contents, then metadata)
// until it returns a short batch.
func (s *Service) expireBatches(ctx context.Context, next func() ([]Record, error)) (removed int, err error) {
	for {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		recs, err := next()
		if err != nil {
			return removed, fmt.Errorf("upload: expire: %w", err)
		}
		ids := make([]string, 0, len(recs))
		var keys []string
		for _, r := range recs {
			if r.State != StateReserved {
				keys = append(keys, r.ID)
			}
			ids = append(ids, r.ID)
		}
		if err := s.deleteBlobs(ctx, keys); err != nil {
			return removed, fmt.Errorf("upload: expire blob: %w", err)
		}
		if len(ids) > 0 {
			if err := s.meta.Delete(ctx, ids...); err != nil {
				return removed, fmt.Errorf("upload: expire: %w", err)
			}
		}
		removed += len(ids)
		if len(recs) < expireBatch {
			return removed, nil
		}
	}
}

// Erase deletes all of a user's files and slots at once, contents first and
// then metadata, so a crash part-way leaves records that a repeated Erase
// finds again. It is idempotent.
func (s *Service) Erase(ctx context.Context, user jid.JID) error {
	return s.eraseOwner(ctx, user.Bare().String())
}

// eraseOwner is Erase for a Record.Owner.
func (s *Service) eraseOwner(ctx context.Context, owner string) error {
	recs, err := s.meta.ByOwner(ctx, owner)
	if err != nil {
		return fmt.Errorf("upload: erase: %w", err)
	}
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	if err := s.deleteBlobs(ctx, ids); err != nil {
		return fmt.Errorf("upload: erase blobs: %w", err)
	}
	if err := s.meta.Delete(ctx, ids...); err != nil {
		return fmt.Errorf("upload: erase: %w", err)
	}
	// A PUT that committed its blob between the first pass and the metadata
	// deletion left a blob behind: delete again. A PUT committing later
	// finds its record gone and removes its own blob.
	if err := s.deleteBlobs(ctx, ids); err != nil {
		return fmt.Errorf("upload: erase blobs: %w", err)
	}
	return nil
}

// deleteBlobs deletes the blobs of keys: in one call when the BlobStore has
// a method DeleteBlobs(ctx, keys...) error (s3store sends up to 1,000 keys
// per request), else one Delete each.
func (s *Service) deleteBlobs(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	if b, ok := s.blobs.(interface {
		DeleteBlobs(ctx context.Context, keys ...string) error
	}); ok {
		return b.DeleteBlobs(ctx, keys...)
	}
	var errs []error
	for _, k := range keys {
		errs = append(errs, s.blobs.Delete(ctx, k))
	}
	return errors.Join(errs...)
}
