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
// ipcrypt-pfx encryption (draft-denis-ipcrypt; PFX, which also passes the
// draft's test vectors, and Deterministic are exported) under a key drawn
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
// Measured with
//
//	go test -run '^$' -bench . -count 3 ./logredact/
//
// on a shared 2-core AMD EPYC (Go 1.26.8) with a load average of 2 to 4
// from other jobs. Because of that load, the handler benchmark interleaves
// batches of the bare slog.JSONHandler and of the Handler on the same
// record and compares the CPU time of the benchmark thread
// (CLOCK_THREAD_CPUTIME_ID; ns/op is the Handler's CPU time), and the
// scrubber reports its throughput per second of CPU time (cpu-MB/s) next
// to the wall-clock MB/s. (getrusage(RUSAGE_THREAD), used before, is
// brought up to date only at scheduler ticks, about as long as a batch,
// and ratios moved by ±0.2 from run to run.) Within a session the three
// runs agree to ±0.03; between sessions ratios move by about ±0.05.
//
//	Handler, connection record (msg + 4 attributes)      x JSONHandler   extra allocs
//	  no address                                         1.21 – 1.22    0
//	  netip.AddrPort attribute, truncate                 1.10 – 1.13    0
//	  netip.AddrPort, pseudonymize (cached)              1.23 – 1.24    0
//	  "198.51.100.77:53211" string attribute, truncate   1.72 – 1.74    1
//	  "[2001:db8:1:2::77]:53211" string, truncate        2.04 – 2.09    1
//	  reference, not this package: a handler that only
//	    copies the record (slog.NewRecord + AddAttrs)    1.21 – 1.24    0
//	Handler, smaller records
//	  msg + netip.Addr IPv6, pseudonymize (cached)       1.22 – 1.26    0
//	  msg + 2 attributes, the IPv4 string, truncate      1.83 – 1.88    1
//	Scrubber, 1 MiB of net/http error-log text in 4 KiB writes
//	  truncate                                           441 – 506 cpu-MB/s (434 – 498 MB/s wall)
//	  pseudonymize                                       453 – 468 cpu-MB/s (447 – 460 MB/s wall)
//	  baselines: splitting into lines 12,200 – 13,000 MB/s; a regexp for IPv4 only 20 – 30 MB/s
//
// Address-typed attributes (netip, net.IP, *net.TCPAddr...) are rendered as
// strings, which the JSONHandler writes faster than it marshals those
// types, so they stay within the 1.3× aimed at. An address logged as a
// string misses it: changing an attribute means copying the record into a
// new one, which alone costs 1.2× here (the reference row: slog copies
// each 40-byte Attr through temporaries, and the overlapping 16-byte moves
// defeat store forwarding on this CPU); testing every attribute for
// separators costs 0.2× (the no-address row); parsing, truncating and
// rendering the address and allocating the new string about 0.3×. A string
// that is one address (with a port, brackets or zone) skips the general
// scan for a direct parse (held to find exactly what the scan finds by
// TestExactSpanMatchesScan and FuzzExactSpan): three runs each of the code
// before and after it, interleaved in one session, gave 1.91 – 1.98 before
// and 1.75 – 1.77 after for the IPv4 string, 2.17 – 2.28 and 2.08 – 2.14
// for the IPv6 string, 1.90 – 1.99 and 1.81 – 1.83 for the small record.
// Log remote addresses as netip.AddrPort or net.Addr values where the cost
// matters. Anonymizing in slog.HandlerOptions.ReplaceAttr instead (no
// record copy) was built and measured and is not offered: slog's own
// ReplaceAttr path costs 1.6 – 2.1× with a function that changes nothing,
// so it came out slower than the Handler in every row (IPv4 string 2.12×),
// and it cannot see group names nor re-anonymize attributes bound with
// Logger.With after a maintenance window closes. Records without an address cost no extra
// allocation (TestHandlerNoIPNoExtraAllocs). ipcrypt-pfx costs two AES
// blocks per bit (64 for IPv4, 256 for IPv6): a per-day cache of 4,096
// pseudonyms keeps repeated clients cheap.
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
