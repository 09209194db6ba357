// Package logredact keeps IP addresses out of logs: a log/slog Handler that
// anonymizes addresses (truncation or keyed ipcrypt-pfx pseudonyms), a
// time-boxed maintenance window that reveals them, a scrubber for free text,
// and log files that expire.
//
// It makes these promises of a privacy policy true in code:
//
//   - XMPP logs hold the connection time, the user and the IP address, the
//     address anonymized except during a short maintenance window, and no
//     record is kept for more than 24 hours;
//   - HTTP error logs (with anonymized addresses) are deleted after 30 days.
//
// # Anonymizing structured logs
//
// NewHandler wraps any slog.Handler. By default (the zero Options) it
// truncates IPv4 addresses to /24 and IPv6 addresses to /48, wherever they
// appear: in the message, in attributes of address types (netip.Addr,
// netip.AddrPort, net.IP, *net.TCPAddr, any net.Addr...), inside strings
// ("192.0.2.7:5222", "[2001:db8::1]:443", "dial tcp 192.0.2.7: refused"),
// in errors and fmt.Stringers, in groups, in LogValuer results and in
// attributes bound with Logger.With. Addresses that embed an IPv4 address
// (IPv4-mapped, 6to4) have the embedded address truncated to /24 too.
//
//	w, err := logredact.OpenRotating(logredact.XMPPLogConfig("data/logs"))
//	...
//	h := logredact.NewHandler(slog.NewJSONHandler(w, nil), nil)
//	logger := slog.New(h)
//	logger.Info("c2s connection", "user", jid, "remote", conn.RemoteAddr())
//	// {"time":...,"msg":"c2s connection","user":"alice@example.org","remote":"192.0.2.0:53211"}
//
// Options.Mode selects Pseudonymize instead: each address is replaced by its
// ipcrypt-pfx encryption (draft-denis-ipcrypt, whose test vectors the
// implementation passes) under a key drawn
// from crypto/rand for each UTC day and destroyed at the end of it
// (KeyRing): within a day a client keeps one pseudonym and networks keep
// their shape (same /24 in, same /24 out), but pseudonyms of different days
// cannot be linked, by anyone. Drop replaces addresses with a marker.
//
// # Maintenance window
//
// Handler.Reveal(d, reason) logs full addresses for at most d (capped by
// Options.MaxReveal, 24 hours by default; a longer request is refused). The
// window is checked against the clock on every record, so it closes by
// itself and cannot be left open; records written inside it carry
// "ip_revealed":true; its start and end are audit records (level WARN)
// stating the reason. Call Handler.Conceal at shutdown so that the end is
// on record even when no record follows the window.
//
// # Free text
//
// NewScrubber returns an io.Writer that anonymizes addresses in text, for
// http.Server.ErrorLog (log.New(scrubber, "", 0)) and libraries that only
// know io.Writer. It finds IPv4 and every textual IPv6 form (compressed,
// full, [v6]:port, ::ffff:a.b.c.d, fe80::1%eth0), holds a line until its
// newline so that addresses split across writes are found, and bounds its
// memory on a line that never ends (Options.MaxLine). It is a hand-written
// scanner (separators found with the vectorized bytes.IndexByte, candidates
// validated with netip.ParseAddr), not a regular expression.
//
// # Files that expire
//
// OpenRotating writes one file per period (mode 0600, directory 0700),
// named after the period's start: xmpp-2026-11-26T23.log. Its Expire method
// has the signature of the retention package's Expirer and deletes the files
// whose period ended before the cutoff; ExpireOld applies the writer's own
// MaxAge at the moment it runs. A retention job that runs Expire every
// interval keeps the MaxAge promise with RetentionMaxAge(interval) as its
// MaxAge, which leaves room for the file's Period and the time between two
// runs:
//
//	w, err := logredact.OpenRotating(logredact.XMPPLogConfig("data/logs"))
//	...
//	job := retention.Job{Name: "xmpp-log", Data: "XMPP logs, no line kept over 24 hours",
//		Expirer: w, Interval: 10 * time.Minute, MaxAge: w.RetentionMaxAge(10 * time.Minute)}
//
// XMPPLogConfig (hourly files, 24 hours) and
// HTTPErrorLogConfig (daily files, 30 days) are the presets. EraseLines
// removes every line that mentions an account, atomically per file, for
// account deletion.
//
// # Performance
//
// Against slog.JSONHandler on the same record, the Handler costs 1.10–1.13×
// for an address attribute of an address type (netip.AddrPort, net.Addr...)
// and 1.72–1.74× for an address inside a string attribute, which has to be
// found, parsed and copied into a new record: log remote addresses as
// netip.AddrPort or net.Addr values where the cost matters. Records without
// an address cost no extra allocation. ipcrypt-pfx costs two AES blocks
// per address bit; a per-day cache of 4,096 pseudonyms keeps repeated
// clients at 1.23–1.24×.
// The Scrubber anonymizes free text at 440–500 MB/s. The method, the full
// tables and the alternatives measured are in BENCHMARKS.md.
//
// # Limits
//
// Values passed to slog.Any of types not listed on Handler are not inspected
// (the next handler may marshal fields this package cannot see): log
// addresses as the listed types, strings or LogValuers. Free text that is
// ambiguous is anonymized anyway: "1.2.3.4" may have been a version number.
// Addresses not written in the standard notations are not recognized:
// IPv4 as a single integer or in hexadecimal, addresses spelled inside host
// names ("ip-192-0-2-7.example.net"), reverse-DNS names
// ("7.2.0.192.in-addr.arpa" is read as the address 7.2.0.192).
// crypto/aes keeps an expanded key schedule that Go cannot wipe; after
// rotation it is unreachable but not overwritten. Lines removed by EraseLines
// may survive in free blocks of the file system.
package logredact
