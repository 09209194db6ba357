package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"chatbx.eu/privacy/mam"
)

// Config is the server configuration. Each field but the last group maps to
// one command-line flag (scripts rely on the flag names). The
// zero value of a field means its documented default, which is always the
// private choice.
type Config struct {
	Domain           string        // -domain: XMPP domain; "" means localhost
	C2S              string        // -c2s: STARTTLS client listener
	C2STLS           string        // -c2s-tls: direct TLS client listener (XEP-0368)
	HTTP             string        // -http: HTTPS listener for uploads, /account, /privacy
	DataDir          string        // -data: databases, certificate, uploads
	CertFile         string        // -cert: PEM certificate; "" means self-signed in DataDir
	KeyFile          string        // -key: PEM private key
	OpenRegistration bool          // -open-registration: allow XEP-0077 in-band registration
	UploadMax        int64         // -upload-max: maximum upload size in bytes
	UploadTTL        time.Duration // -upload-ttl: upload lifetime; 0 means 30 days
	LogDir           string        // -log-dir: log files; "" means DataDir/logs
	RevealIPs        time.Duration // -reveal-ips: maintenance window logging full IPs (max 24 h)
	Purge            bool          // -purge: run every retention job once, then exit

	NegotiationTimeout time.Duration // -negotiation-timeout: from accept to a bound session; 0 means 60 s
	IdleTimeout        time.Duration // -idle-timeout: silence before the server pings a bound client; 0 means 5 min
	MaxConnsPerIP      int           // -max-conns-per-ip: negotiating connections per IPv4 address or IPv6 /64; 0 means 10
	MaxConns           int           // -max-conns: open client connections; 0 means 10000, or 3/4 of the open-file limit if lower
	OfflineMessages    time.Duration // -offline-messages: keep messages to offline users this long (XEP-0160); 0 means off, at most 720h
	SMResumeTimeout    time.Duration // -sm-resume-timeout: XEP-0198 resumption window; 0 means 5 min, at most 1 h

	// Shared stores (stores.go). Store and Blobs "" keep everything in
	// DataDir.
	Store       string        // -store: PostgreSQL URL or DSN for archives, upload records, accounts
	Blobs       string        // -blobs: s3://host[:port]/bucket[/prefix] for uploaded files
	ClusterPoll time.Duration // -cluster-poll: with -store, how often sessions are checked against the shared accounts; 0 means 2 s
	// S3AccessKey and S3SecretKey are the credentials for -blobs; main
	// reads them from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
	S3AccessKey, S3SecretKey string
	S2S                      string // -s2s: server-to-server listener (federation); "" means federation off
	S2STLS                   string // -s2s-tls: server-to-server listener with TLS first (XEP-0368); "" means none; needs -s2s
	S2SHosts                 string // -s2s-hosts: domain=host:port or domain=tls://host:port,... instead of DNS for those domains
	S2SCA                    string // -s2s-ca: PEM file of certificates trusted for peers (SASL EXTERNAL) besides the system roots
	// Limits per remote domain when federating (s2slimit.go): over one,
	// the stanza is answered with policy-violation.
	S2SStanzaRate     int // -s2s-stanza-rate: stanzas a second from one remote domain; 0 means 200
	S2SByteRate       int // -s2s-byte-rate: wire bytes a second from one remote domain; 0 means 1 MiB
	S2SMaxPendingSubs int // -s2s-max-pending-subs: subscription requests from one remote domain waiting for an answer; 0 means 100

	// Knobs for tests and embedding; no flag.

	// PingTimeout is how long a silent client has to answer the server's
	// ping before its stream ends with connection-timeout; 0 means 1 min.
	PingTimeout time.Duration

	// QueueSize is the number of stanzas waiting for a client; beyond it a
	// one-to-one message waits for the client to read (a client that reads
	// nothing for 2 s is ended) and a room's fan-out ends the session at
	// once. 0 means 256.
	QueueSize int
	// FastHashing selects the OWASP floor Argon2id parameters (m=19 MiB,
	// t=2, p=1) instead of RFC 9106's second recommendation. Tests use it.
	FastHashing bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Stderr receives the operational log and the privacy report; nil
	// means io.Discard.
	Stderr io.Writer

	// MaxRosterItems is the most contacts a user's roster holds; a roster
	// set adding one more is refused (resource-constraint). 0 (or less)
	// means 1,000.
	MaxRosterItems int
	// MaxOwnedRooms is the most rooms one user may own; creating one more
	// is refused (not-allowed). 0 (or less) means 100.
	MaxOwnedRooms int

	// MaxOfflineMessages is the most messages kept for one offline user
	// (with -offline-messages); one more is bounced (service-unavailable).
	// 0 (or less) means 1,000.
	MaxOfflineMessages int

	// authenticate, if set, replaces account.Manager.Authenticate for XMPP
	// logins. A test-only seam: the load tests log in without Argon2id
	// (they measure the stream layer), and TestBindRefusedEndsStream lets
	// in a user whose account is gone by the time it binds.
	authenticate func(ctx context.Context, clientKey, username, password string) error

	// archiveStore, if set, wraps the message archive the Archiver writes
	// to (tests: a store whose commits wait for the test).
	archiveStore func(mam.Store) mam.Store
	// s2sRetry, if set, replaces the delays between connection attempts
	// to a remote domain before its queue is bounced (tests shorten them).
	s2sRetry []time.Duration
	// s2sTimeout, if set, replaces NegotiationTimeout for outbound
	// server-to-server negotiations (a test shortens it alone, so that
	// its own client logins keep the usual deadline).
	s2sTimeout time.Duration
	// s2sListener, if set, is the s2s listener instead of one opened on
	// S2S (tests: two servers must know each other's address before
	// either starts, without a port picked free and given up meanwhile).
	s2sListener net.Listener
	// s2sTLSListener, if set, is the direct TLS s2s listener instead of
	// one opened on S2STLS (tests, as s2sListener).
	s2sTLSListener net.Listener
	// s2sResolver, if set, looks up SRV records for federation instead of
	// net.DefaultResolver (tests).
	s2sResolver srvResolver

	// httpBodyTimeout, if set, replaces the 15 s within which an HTTPS
	// request body (a form) must arrive (https.go; tests shorten it).
	httpBodyTimeout time.Duration
}

// rosterLimit is MaxRosterItems, or its default when not positive.
func (c Config) rosterLimit() int { return orDefault(c.MaxRosterItems, defaultMaxRosterItems) }

// domainLimits is the configuration of the per-remote-domain limiter
// (s2slimit.go), its refusals counted in log.
func (c Config) domainLimits(log *slog.Logger) domainLimitConfig {
	return domainLimitConfig{
		StanzaRate:     float64(c.S2SStanzaRate),
		ByteRate:       float64(c.S2SByteRate),
		MaxPendingSubs: c.S2SMaxPendingSubs,
		Now:            c.Now,
		Log:            log,
	}
}

// roomLimit is MaxOwnedRooms, or its default when not positive.
func (c Config) roomLimit() int { return orDefault(c.MaxOwnedRooms, defaultMaxOwnedRooms) }

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// Defaults of the flags.
const (
	defaultDomain    = "localhost"
	defaultC2S       = "127.0.0.1:5222"
	defaultC2STLS    = "127.0.0.1:5223"
	defaultHTTP      = "127.0.0.1:5443"
	defaultData      = "./data"
	defaultUploadMax = 100 << 20
	defaultUploadTTL = 30 * 24 * time.Hour
	maxRevealIPs     = 24 * time.Hour
	defaultQueueSize = 256
)

// parseFlags turns the command line into a Config. Usage and errors go to
// out.
func parseFlags(args []string, out io.Writer) (Config, error) {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(out)
	var c Config
	fs.StringVar(&c.Domain, "domain", defaultDomain, "XMPP domain")
	fs.StringVar(&c.C2S, "c2s", defaultC2S, "client port, STARTTLS required")
	fs.StringVar(&c.C2STLS, "c2s-tls", defaultC2STLS, "client port, direct TLS (XEP-0368); empty disables it")
	fs.StringVar(&c.HTTP, "http", defaultHTTP, "HTTPS for uploads, /account and /privacy")
	fs.StringVar(&c.DataDir, "data", defaultData, "data directory")
	fs.StringVar(&c.CertFile, "cert", "", "PEM certificate (default: self-signed, created in -data)")
	fs.StringVar(&c.KeyFile, "key", "", "PEM private key for -cert")
	fs.BoolVar(&c.OpenRegistration, "open-registration", false,
		"allow XEP-0077 in-band registration (rate limited per client IP; loopback not limited)")
	fs.Int64Var(&c.UploadMax, "upload-max", defaultUploadMax, "max upload size in bytes")
	fs.DurationVar(&c.UploadTTL, "upload-ttl", defaultUploadTTL, "upload lifetime")
	fs.StringVar(&c.LogDir, "log-dir", "", "log files, anonymized, rotated and expired (default: <data>/logs)")
	fs.DurationVar(&c.RevealIPs, "reveal-ips", 0, "maintenance window: log full IPs for this long (max 24h)")
	fs.DurationVar(&c.NegotiationTimeout, "negotiation-timeout", defaultNegotiationTimeout,
		"time a client connection has for TLS, authentication and binding")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", defaultIdleTimeout,
		"silence after which the server pings a client; no answer within a minute ends the session")
	fs.IntVar(&c.MaxConnsPerIP, "max-conns-per-ip", defaultMaxConnsPerIP,
		"client connections still negotiating per IPv4 address or IPv6 /64")
	fs.IntVar(&c.MaxConns, "max-conns", 0,
		"open client connections (default 10000, or 3/4 of the open-file limit if lower)")
	fs.DurationVar(&c.OfflineMessages, "offline-messages", 0,
		"keep messages to offline users this long until delivered (at most 720h); 0 refuses them (the sender gets an error)")
	fs.DurationVar(&c.SMResumeTimeout, "sm-resume-timeout", defaultSMResumeTimeout,
		"XEP-0198: how long unacknowledged stanzas of a dropped connection wait in memory for its resumption (max 1h)")
	fs.StringVar(&c.Store, "store", "",
		"PostgreSQL (postgres://... or key=value DSN) for archives, upload records and accounts, shared by several servers; empty: bbolt in -data")
	fs.StringVar(&c.Blobs, "blobs", "",
		"S3 bucket for uploaded files: s3://host[:port]/bucket[/prefix] (s3+http:// without TLS), keys from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; empty: -data/uploads")
	fs.DurationVar(&c.ClusterPoll, "cluster-poll", defaultClusterPoll,
		"with -store: how often each server checks its sessions' accounts, ending those deleted or blocked on another server")
	fs.StringVar(&c.S2S, "s2s", "",
		"server-to-server listener (federation, e.g. 0.0.0.0:5269); empty: federation off, no stanza leaves the server")
	fs.StringVar(&c.S2STLS, "s2s-tls", "",
		"server-to-server listener where TLS comes first (XEP-0368 direct TLS, e.g. 0.0.0.0:5270, published as _xmpps-server._tcp); needs -s2s")
	fs.StringVar(&c.S2SHosts, "s2s-hosts", "",
		"domain=host:port,... : where to reach these remote domains instead of DNS SRV (tests, private networks); tls://host:port for a direct TLS port")
	fs.StringVar(&c.S2SCA, "s2s-ca", "",
		"PEM file of extra certificates trusted for remote servers (SASL EXTERNAL); others authenticate with dialback")
	fs.IntVar(&c.S2SStanzaRate, "s2s-stanza-rate", defaultS2SStanzaRate,
		"stanzas a second one remote domain may send on average (5 s of it at once); more get policy-violation")
	fs.IntVar(&c.S2SByteRate, "s2s-byte-rate", defaultS2SByteRate,
		"bytes a second one remote domain may send on average (5 s of it at once); more get policy-violation")
	fs.IntVar(&c.S2SMaxPendingSubs, "s2s-max-pending-subs", defaultS2SMaxPendingSubs,
		"subscription requests from one remote domain that may wait for local users' answers; more get policy-violation")
	fs.BoolVar(&c.Purge, "purge", false, "run every retention job and the residue purge once, then exit")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return c.withDefaults()
}

// withDefaults fills zero fields with their defaults and validates c.
func (c Config) withDefaults() (Config, error) {
	if c.Domain == "" {
		c.Domain = defaultDomain
	}
	if c.DataDir == "" {
		c.DataDir = defaultData
	}
	if c.LogDir == "" {
		c.LogDir = filepath.Join(c.DataDir, "logs")
	}
	if c.UploadMax == 0 {
		c.UploadMax = defaultUploadMax
	}
	if c.UploadTTL == 0 {
		c.UploadTTL = defaultUploadTTL
	}
	if c.NegotiationTimeout == 0 {
		c.NegotiationTimeout = defaultNegotiationTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = defaultIdleTimeout
	}
	if c.PingTimeout == 0 {
		c.PingTimeout = defaultPingTimeout
	}
	if c.MaxConnsPerIP == 0 {
		c.MaxConnsPerIP = defaultMaxConnsPerIP
	}
	if c.MaxConns == 0 {
		c.MaxConns = defaultMaxConns(openFileLimit())
	}
	if c.SMResumeTimeout == 0 {
		c.SMResumeTimeout = defaultSMResumeTimeout
	}
	if c.ClusterPoll == 0 {
		c.ClusterPoll = defaultClusterPoll
	}
	if c.QueueSize == 0 {
		c.QueueSize = defaultQueueSize
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Stderr == nil {
		c.Stderr = io.Discard
	}
	switch {
	case c.UploadMax < 0:
		return c, errors.New("-upload-max must not be negative")
	case c.UploadTTL < 0:
		return c, errors.New("-upload-ttl must not be negative")
	case c.OfflineMessages < 0 || c.OfflineMessages > maxOfflineTTL:
		return c, errors.New("-offline-messages must be between 0 (off) and 720h (30 days)")
	case c.RevealIPs < 0 || c.RevealIPs > maxRevealIPs:
		return c, errors.New("-reveal-ips must be between 0 and 24h")
	case c.NegotiationTimeout < 0 || c.IdleTimeout < 0 || c.PingTimeout < 0:
		return c, errors.New("-negotiation-timeout and -idle-timeout must be positive")
	case c.MaxConnsPerIP < 0 || c.MaxConns < 0:
		return c, errors.New("-max-conns-per-ip and -max-conns must be positive")
	case c.S2SStanzaRate < 0 || c.S2SByteRate < 0 || c.S2SMaxPendingSubs < 0:
		return c, errors.New("-s2s-stanza-rate, -s2s-byte-rate and -s2s-max-pending-subs must not be negative")
	case c.SMResumeTimeout < 0 || c.SMResumeTimeout > maxSMResumeTimeout:
		return c, errors.New("-sm-resume-timeout must be between 0 and 1h")
	case c.ClusterPoll < 0:
		return c, errors.New("-cluster-poll must be positive")
	case checkStore(c.Store) != nil:
		return c, checkStore(c.Store)
	case !validBlobs(c.Blobs):
		_, err := parseBlobs(c.Blobs)
		return c, err
	case (c.CertFile == "") != (c.KeyFile == ""):
		return c, errors.New("-cert and -key go together")
	case c.S2S == "" && (c.S2SHosts != "" || c.S2SCA != "" || c.S2STLS != ""):
		return c, errors.New("-s2s-tls, -s2s-hosts and -s2s-ca need -s2s (federation is off without it)")
	case c.C2S == "":
		return c, errors.New("-c2s must not be empty: STARTTLS is the standard client port")
	case c.HTTP == "":
		return c, errors.New("-http must not be empty: uploads and /account need it")
	}
	return c, nil
}
