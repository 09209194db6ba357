// Package logredact keeps IP addresses out of logs: a log/slog Handler that
// anonymizes addresses (truncation or keyed ipcrypt-pfx pseudonyms), a
// time-boxed maintenance window that reveals them, a scrubber for free text,
// and log files that expire.
package logredact
