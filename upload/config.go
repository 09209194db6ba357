package upload

import (
	"time"

	"mellium.im/xmpp/jid"
)

// Defaults applied for zero Config fields, each the private choice; the
// Config fields document them.
const (
	defaultMaxFileSize = 100 << 20           // 100 MiB
	defaultTTL         = 30 * 24 * time.Hour // files live 30 days
	defaultDailyQuota  = 1 << 30             // 1 GiB uploaded per user per 24 h
	defaultStoredQuota = 2 << 30             // 2 GiB stored per user
	defaultDailyFiles  = 500                 // slots per user per 24 h
	defaultSlotTTL     = 300 * time.Second   // a slot must be used within 5 min
	defaultUploadTime  = time.Hour           // a started upload must end within 1 h
	defaultMinRate     = 32 << 10            // bytes per RateWindow (about 1 KiB/s)
	defaultRateWindow  = 30 * time.Second    // the window of MinRate
)

// Config configures a Service. The zero value is the private default except
// for BaseURL, which NewService requires.
type Config struct {
	// BaseURL is the HTTPS URL under which the Service's http.Handler is
	// mounted, e.g. "https://upload.example.org:5443/upload". PUT and GET
	// URLs are BaseURL + "/<random id>/<file name>". The handler accepts
	// request paths with or without the BaseURL path prefix, so it can be
	// mounted at "/upload/" directly or behind http.StripPrefix. It must use
	// the https scheme.
	BaseURL string

	// MaxFileSize is the largest accepted file in bytes. 0 means 100 MiB.
	MaxFileSize int64

	// TTL is how long a file is kept after its upload. 0 means 30 days. A GET
	// after upload time + TTL is answered 404 even before Expire runs. Each
	// file's deletion time is fixed at upload: if TTL is later shortened,
	// older files become unreadable at once under the new TTL, and their bytes
	// are deleted by the first Expire whose cutoff (retention's now − max
	// age) passes their upload time, or at their original time.
	TTL time.Duration

	// DailyQuota is how many bytes a user may upload per 24 h (sliding
	// window). 0 means 1 GiB; a negative value means no limit.
	DailyQuota int64

	// DailyFiles is how many slots (used or pending) a user may request per
	// 24 h (sliding window; slots that expired unused do not count). It bounds
	// the records one user can create with empty files. 0 means 500; a
	// negative value means no limit.
	DailyFiles int

	// StoredQuota is how many bytes of a user's files may be stored at once.
	// 0 means 2 GiB; a negative value means no limit.
	StoredQuota int64

	// SlotTTL is how long a slot (its PUT URL) stays valid: the PUT must
	// start within it. 0 means 300 s.
	SlotTTL time.Duration

	// UploadTimeout bounds how long a started PUT may take to complete; an
	// upload still running after it is cancelled by Expire (its record and
	// contents are removed and the PUT fails). 0 means 1 h. The HTTP
	// server's own timeouts apply as well.
	UploadTimeout time.Duration

	// MinRate is the slowest transfer the HTTP handler tolerates, in bytes
	// per RateWindow, for a PUT's body and for a GET's answer alike: the
	// connection's read (PUT) or write (GET) deadline is set RateWindow
	// ahead when the request starts and moved RateWindow ahead again each
	// time MinRate more bytes have moved, so a transfer that moves fewer
	// than MinRate bytes within a window is cut. A cut PUT is answered 408
	// (if the client still listens) and nothing of it is kept; a cut GET
	// ends with the connection closed. The deadlines are the connection's,
	// on the wall clock (Now does not apply), and need a ResponseWriter
	// that supports http.ResponseController deadlines, as net/http's
	// servers do. 0 means 32 KiB (about 1 KiB/s); a negative value means
	// no minimum rate (then only UploadTimeout and the HTTP server's own
	// timeouts bound a transfer).
	MinRate int64

	// RateWindow is the window of MinRate. 0 means 30 s.
	RateWindow time.Duration

	// Key signs upload tokens with HMAC-SHA256. It must be at least 32 bytes.
	// nil means NewService generates a random key: slots then do not survive a
	// restart (they live 300 s anyway) and cannot be shared by several
	// nodes; a cluster must configure one shared key.
	Key []byte

	// PreviousKey, when set, is still accepted to verify tokens (never used
	// to sign), so that keys can be rotated without failing uploads in
	// flight. Must be at least 32 bytes when set.
	PreviousKey []byte

	// Allow decides whether a JID may request slots. nil means every JID
	// with a localpart (a user account) may; JIDs without a localpart
	// (servers, components, an absent from) are always refused.
	Allow func(owner jid.JID) bool

	// TrustForwardedProto makes the HTTP handler treat a request as HTTPS
	// when it carries "X-Forwarded-Proto: https". Enable it only behind a
	// TLS-terminating reverse proxy that sets this header itself. By default
	// only requests with r.TLS != nil may PUT.
	TrustForwardedProto bool

	// Now returns the current time. nil means time.Now; tests inject a clock.
	Now func() time.Time
}
