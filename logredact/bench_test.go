package logredact_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"regexp"
	"testing"
	"time"

	"chatbx.eu/privacy/logredact"
)

var clockStart = time.Now()

func wallClock() time.Duration { return time.Since(clockStart) }

// benchHandler measures h against the bare JSONHandler on the same record,
// in the same run, interleaving batches of both and counting the CPU time
// of the benchmark's thread (on Linux), so that the load of a shared
// machine does not distort the ratio. It reports the Handler's CPU ns/op,
// the ratio as "x-JSONHandler" and the allocations the Handler adds.
func benchHandler(b *testing.B, opts *logredact.Options, r slog.Record) {
	benchAgainstJSON(b, logredact.NewHandler(slog.NewJSONHandler(io.Discard, nil), opts), r)
}

// benchAgainstJSON is benchHandler for any handler h that wraps a
// JSONHandler writing to io.Discard.
func benchAgainstJSON(b *testing.B, h slog.Handler, r slog.Record) {
	defer lockThread()()
	ctx := context.Background()
	bare := slog.NewJSONHandler(io.Discard, nil)
	extra := testing.AllocsPerRun(100, func() { _ = h.Handle(ctx, r) }) -
		testing.AllocsPerRun(100, func() { _ = bare.Handle(ctx, r) })
	b.ResetTimer()
	var tBare, tWrapped time.Duration
	for done := 0; done < b.N; {
		n := min(4096, b.N-done)
		t0 := threadCPU()
		for range n {
			_ = bare.Handle(ctx, r)
		}
		t1 := threadCPU()
		for range n {
			_ = h.Handle(ctx, r)
		}
		tWrapped += threadCPU() - t1
		tBare += t1 - t0
		done += n
	}
	// ns/op is the Handler's own CPU time, not the wall time of both loops.
	b.ReportMetric(float64(tWrapped.Nanoseconds())/float64(b.N), "ns/op")
	b.ReportMetric(float64(tBare.Nanoseconds())/float64(b.N), "bare-ns/op")
	b.ReportMetric(float64(tWrapped)/float64(tBare), "x-JSONHandler")
	b.ReportMetric(extra, "extra-allocs/op")
}

// connRecord is a connection record: a message and four attributes, the
// remote address among them as remote.
func connRecord(remote slog.Value) slog.Record {
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "c2s connection", 0)
	r.AddAttrs(slog.String("user", "alice@example.org"), slog.String("resource", "phone"),
		slog.Attr{Key: "remote", Value: remote}, slog.Bool("tls", true))
	return r
}

func BenchmarkHandler(b *testing.B) {
	addrPort := slog.AnyValue(netip.MustParseAddrPort("198.51.100.77:53211"))
	b.Run("ip/truncate", func(b *testing.B) { benchHandler(b, nil, connRecord(addrPort)) })
	// The address as a string attribute, as slog.String("remote",
	// r.RemoteAddr) logs it: in the connection record, and in a minimal
	// record, where the bare handler has the least work to hide the cost in.
	b.Run("ip-string/truncate", func(b *testing.B) {
		benchHandler(b, nil, connRecord(slog.StringValue("198.51.100.77:53211")))
	})
	b.Run("ipv6-string/truncate", func(b *testing.B) {
		benchHandler(b, nil, connRecord(slog.StringValue("[2001:db8:1:2::77]:53211")))
	})
	b.Run("ip-string-minimal/truncate", func(b *testing.B) {
		r := slog.NewRecord(time.Now(), slog.LevelInfo, "c2s connection", 0)
		r.AddAttrs(slog.String("user", "alice@example.org"), slog.String("remote", "198.51.100.77:53211"))
		benchHandler(b, nil, r)
	})
	b.Run("ip/pseudonymize", func(b *testing.B) {
		benchHandler(b, &logredact.Options{Mode: logredact.Pseudonymize}, connRecord(addrPort))
	})
	b.Run("ipv6/pseudonymize", func(b *testing.B) {
		r := slog.NewRecord(time.Now(), slog.LevelInfo, "c2s connection", 0)
		r.AddAttrs(slog.Any("remote", netip.MustParseAddr("2001:db8:1:2::77")))
		benchHandler(b, &logredact.Options{Mode: logredact.Pseudonymize}, r)
	})
	b.Run("noip/truncate", func(b *testing.B) { benchHandler(b, nil, connRecord(slog.StringValue("redacted"))) })
	// A reference, not this package: the least work of any handler that
	// changes an attribute, copying the record into a new one.
	b.Run("reference-copy-record", func(b *testing.B) {
		benchAgainstJSON(b, recordCopier{slog.NewJSONHandler(io.Discard, nil)}, connRecord(slog.StringValue("198.51.100.77:53211")))
	})
}

// recordCopier passes a copy of each record, made with slog.NewRecord and
// AddAttrs (the only way to change an attribute), to next.
type recordCopier struct{ next slog.Handler }

func (c recordCopier) Enabled(ctx context.Context, l slog.Level) bool { return c.next.Enabled(ctx, l) }
func (c recordCopier) WithAttrs(as []slog.Attr) slog.Handler {
	return recordCopier{c.next.WithAttrs(as)}
}
func (c recordCopier) WithGroup(name string) slog.Handler {
	return recordCopier{c.next.WithGroup(name)}
}

func (c recordCopier) Handle(ctx context.Context, r slog.Record) error {
	var buf [8]slog.Attr
	attrs := buf[:0]
	r.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, a)
		return true
	})
	nr := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	nr.AddAttrs(attrs...)
	return c.next.Handle(ctx, nr)
}

// logText is realistic error-log text: Go http.Server and TLS errors,
// about one line in three holding an address, IPv6 among them.
func logText(size int) []byte {
	rng := rand.New(rand.NewPCG(3, 4))
	var buf bytes.Buffer
	for buf.Len() < size {
		ts := fmt.Sprintf("2026/11/26 %02d:%02d:%02d", rng.IntN(24), rng.IntN(60), rng.IntN(60))
		v4 := fmt.Sprintf("%d.%d.%d.%d:%d", 198, 51, 100, rng.IntN(256), 1024+rng.IntN(60000))
		v6 := fmt.Sprintf("[2001:db8:%x:%x::%x]:%d", rng.IntN(65536), rng.IntN(65536), rng.IntN(65536), 1024+rng.IntN(60000))
		switch rng.IntN(6) {
		case 0:
			fmt.Fprintf(&buf, "%s http: TLS handshake error from %s: remote error: tls: bad certificate\n", ts, v4)
		case 1:
			fmt.Fprintf(&buf, "%s http: TLS handshake error from %s: EOF\n", ts, v6)
		case 2:
			fmt.Fprintf(&buf, "%s http: superfluous response.WriteHeader call from chatbx.eu/privacy/upload.(*Handler).ServeHTTP (handler.go:212)\n", ts)
		case 3:
			fmt.Fprintf(&buf, "%s http2: server: error reading preface from client %s: timeout waiting for client preface\n", ts, v4)
		default:
			fmt.Fprintf(&buf, "%s upload: slot expired for file of 1048576 bytes, content type image/jpeg, request id 8f3a9c2e\n", ts)
		}
	}
	return buf.Bytes()
}

func BenchmarkScrubber(b *testing.B) {
	text := logText(1 << 20)
	// Baselines: splitting the text into lines (the least a line-oriented
	// writer does), and a regular expression that finds IPv4 only.
	b.Run("baseline-lines", func(b *testing.B) {
		b.SetBytes(int64(len(text)))
		n := 0
		for range b.N {
			for rest := text; len(rest) > 0; {
				i := bytes.IndexByte(rest, '\n')
				if i < 0 {
					break
				}
				n += len(rest[:i])
				rest = rest[i+1:]
			}
		}
		_ = n
	})
	b.Run("baseline-regexp-ipv4-only", func(b *testing.B) {
		re := regexp.MustCompile(`\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b`)
		b.SetBytes(int64(len(text)))
		for range b.N {
			_ = re.ReplaceAll(text, []byte("x"))
		}
	})
	for _, mode := range []logredact.Mode{logredact.Truncate, logredact.Pseudonymize} {
		b.Run(mode.String(), func(b *testing.B) {
			defer lockThread()()
			s := logredact.NewScrubber(io.Discard, &logredact.Options{Mode: mode})
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			cpu0 := threadCPU()
			for range b.N {
				// Writes of 4 KiB, as a bufio.Writer or log.Logger would.
				for off := 0; off < len(text); off += 4096 {
					_, _ = s.Write(text[off:min(off+4096, len(text))])
				}
			}
			cpu := threadCPU() - cpu0
			// Throughput per second of CPU time: what one core achieves,
			// whatever else the machine is doing.
			b.ReportMetric(float64(len(text))*float64(b.N)/cpu.Seconds()/1e6, "cpu-MB/s")
		})
	}
}
