package main

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"chatbx.eu/privacy/logredact"
)

// benchLog returns about n bytes of Prosody and ejabberd log lines in
// their formats, every other line with an address (IPv4, IPv6 bracketed
// with a port, IPv4-mapped), as a busy server logs them. clients is how
// many different client addresses of each family appear (0: every one is
// new, the worst case for the pseudonym cache).
func benchLog(n, clients int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		crng := rng
		if clients > 0 {
			c := uint64(rng.IntN(clients))
			crng = rand.New(rand.NewPCG(c, c))
		}
		v4 := fmt.Sprintf("%d.%d.%d.%d", 1+crng.IntN(223), crng.IntN(256), crng.IntN(256), 1+crng.IntN(254))
		v6 := fmt.Sprintf("2001:db8:%x:%x::%x", crng.IntN(65536), crng.IntN(65536), 1+crng.IntN(65535))
		switch i % 8 {
		case 0:
			fmt.Fprintf(&b, "Dec 05 05:19:%02d c2s55d1c0a6b%04x\tinfo\tClient connected from %s:%d\n", i%60, i%65536, v4, 1024+rng.IntN(60000))
		case 1:
			fmt.Fprintf(&b, "Dec 05 05:19:%02d c2s55d1c0a6b%04x\tinfo\tAuthenticated as user%d@example.org\n", i%60, i%65536, i)
		case 2:
			fmt.Fprintf(&b, "Dec 05 05:19:%02d c2s55d1c0a6b%04x\tinfo\tClient connected from [%s]:%d\n", i%60, i%65536, v6, 1024+rng.IntN(60000))
		case 3:
			fmt.Fprintf(&b, "Dec 05 05:19:%02d mod_muc\tdebug\tuser%d@example.org/phone joined room%d@conference.example.org\n", i%60, i, i%97)
		case 4:
			fmt.Fprintf(&b, "2026-12-05 05:19:%02d.%06d+00:00 [info] <0.%d.0>@ejabberd_listener:accept/7:282 (<0.%d.0>) Accepted connection [::ffff:%s]:%d -> [::ffff:203.0.113.1]:5222\n", i%60, i%1000000, i, i, v4, 1024+rng.IntN(60000))
		case 5:
			fmt.Fprintf(&b, "2026-12-05 05:19:%02d.%06d+00:00 [info] <0.%d.0>@ejabberd_c2s:process_terminated/2:302 (tls|<0.%d.0>) Closing c2s session for user%d@example.org/phone: Connection closed\n", i%60, i%1000000, i, i, i)
		case 6:
			fmt.Fprintf(&b, "2026-12-05 05:19:%02d.%06d+00:00 [info] <0.%d.0>@ejabberd_c2s:handle_auth_success/4:272 (tls|<0.%d.0>) Accepted c2s SCRAM-SHA-1 authentication for user%d@example.org by sql backend from %s\n", i%60, i%1000000, i, i, i, v6)
		default:
			fmt.Fprintf(&b, "2026-12-05 05:19:%02d.%06d+00:00 [debug] <0.%d.0>@ejabberd_sm:set_session/1:411 Set session for user%d@example.org/phone\n", i%60, i%1000000, i, i)
		}
	}
	return b.Bytes()
}

// BenchmarkFilter measures the program's path (reads of 256 KiB through
// the filter, which hands them to the package's Scrubber) against the
// bare Scrubber on the same text, in interleaved batches so that the
// load of a shared machine hits both alike, counting the CPU time of the
// benchmark's thread. It reports the filter's MB per second of CPU time,
// the bare Scrubber's, and their ratio (x-scrubber). The "rotating-file"
// case also reads the input from a file and writes the output to hourly
// files in a temporary directory, as the program does.
func BenchmarkFilter(b *testing.B) {
	for _, tc := range []struct {
		name    string
		mode    logredact.Mode
		files   bool
		clients int
	}{
		{"truncate", logredact.Truncate, false, 0},
		{"pseudonymize/2000-clients", logredact.Pseudonymize, false, 2000},
		{"pseudonymize/all-new", logredact.Pseudonymize, false, 0},
		{"truncate/rotating-file", logredact.Truncate, true, 0},
	} {
		text := benchLog(8<<20, tc.clients)
		b.Run(tc.name, func(b *testing.B) {
			opts := &logredact.Options{Mode: tc.mode}
			bare := logredact.NewScrubber(io.Discard, opts)
			var out io.Writer = io.Discard
			in := filepath.Join(b.TempDir(), "in.log")
			if tc.files {
				if err := os.WriteFile(in, text, 0o600); err != nil {
					b.Fatal(err)
				}
				rf, err := logredact.OpenRotating(logredact.RotateConfig{Dir: filepath.Join(b.TempDir(), "out")})
				if err != nil {
					b.Fatal(err)
				}
				defer rf.Close()
				out = rf
			}
			f := newFilter(out, opts)
			defer lockThread()()
			b.SetBytes(int64(len(text)))
			var tBare, tFilter time.Duration
			for range b.N {
				t0 := threadCPU()
				for off := 0; off < len(text); off += 256 << 10 {
					_, _ = bare.Write(text[off:min(off+256<<10, len(text))])
				}
				t1 := threadCPU()
				var err error
				if tc.files {
					var r *os.File
					if r, err = os.Open(in); err == nil {
						err = copyLines(f, r)
						r.Close()
					}
				} else {
					err = copyLines(f, bytes.NewReader(text))
				}
				if err != nil {
					b.Fatal(err)
				}
				tFilter += threadCPU() - t1
				tBare += t1 - t0
			}
			mb := float64(len(text)) * float64(b.N) / 1e6
			b.ReportMetric(mb/tFilter.Seconds(), "filter-cpu-MB/s")
			b.ReportMetric(mb/tBare.Seconds(), "scrubber-cpu-MB/s")
			b.ReportMetric(float64(tFilter)/float64(tBare), "x-scrubber")
		})
	}
}
