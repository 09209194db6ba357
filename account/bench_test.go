package account_test

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatbx.eu/privacy/account"
	"chatbx.eu/privacy/account/accounttest"
	"chatbx.eu/privacy/internal/argon"
	"golang.org/x/crypto/argon2"
)

// BenchmarkIDKey is the baseline: argon2.IDKey alone at the default
// parameters, the cost Hash and Verify cannot go below.
func BenchmarkIDKey(b *testing.B) {
	p := account.DefaultParams()
	salt := make([]byte, 16)
	for b.Loop() {
		argon2.IDKey([]byte("correct horse"), salt, p.Time, p.Memory, p.Threads, 32)
	}
}

func BenchmarkHash(b *testing.B) {
	for b.Loop() {
		if _, err := argon.Hash("correct horse", argon.DefaultParams()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	s, err := argon.Hash("correct horse", argon.DefaultParams())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, err := argon.Verify("correct horse", s); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// peakHeap samples runtime/metrics until stop is closed and returns the
// largest values seen of the live heap as marked by each GC cycle
// (/gc/heap/live, the memory actually in use) and of all heap objects,
// dead ones not yet collected included (/memory/classes/heap/objects,
// which GOGC=100 lets grow to about twice the live heap).
func peakHeap(stop <-chan struct{}) <-chan [2]uint64 {
	out := make(chan [2]uint64, 1)
	go func() {
		s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}}
		var peak [2]uint64
		t := time.NewTicker(200 * time.Microsecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			peak[0] = max(peak[0], s[0].Value.Uint64())
			peak[1] = max(peak[1], s[1].Value.Uint64())
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// BenchmarkAuthenticate100 runs 100 concurrent logins at the default
// parameters and reports their throughput, the peak heap, and the bound the
// bounded hasher (internal/argon) promises: limit × m + 64 MiB. The baseline is the throughput of
// plain argon2.IDKey run with the same concurrency (idkey-auth/s).
func BenchmarkAuthenticate100(b *testing.B) {
	const n = 100
	ctx := context.Background()
	p := account.DefaultParams()
	store := accounttest.NewMemStore()
	hash, err := argon.Hash("correct horse", argon.Params(p))
	if err != nil {
		b.Fatal(err)
	}
	if err := store.Create(ctx, account.Record{Username: "alice", Hash: hash, Created: time.Now()}, nil); err != nil {
		b.Fatal(err)
	}
	m, err := account.NewManager(store, account.Config{Params: p, Exempt: func(string) bool { return true }})
	if err != nil {
		b.Fatal(err)
	}
	limit := runtime.GOMAXPROCS(0)

	// Baseline: n IDKey calls, limit at a time.
	start := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, limit)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			argon2.IDKey([]byte("correct horse"), make([]byte, 16), p.Time, p.Memory, p.Threads, 32)
			<-sem
		}()
	}
	wg.Wait()
	baseline := n / time.Since(start).Seconds()

	runtime.GC()
	stop := make(chan struct{})
	peak := peakHeap(stop)
	var failed atomic.Int32
	b.ResetTimer()
	start = time.Now()
	for b.Loop() {
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := m.Authenticate(ctx, "192.0.2.1", "alice", "correct horse"); err != nil {
					failed.Add(1)
				}
			}()
		}
		wg.Wait()
	}
	elapsed := time.Since(start)
	b.StopTimer()
	close(stop)
	if failed.Load() > 0 {
		b.Fatalf("%d logins failed", failed.Load())
	}
	const mib = 1 << 20
	bound := float64(limit)*float64(p.Memory)*1024 + 64*mib
	peaks := <-peak
	live, objects := float64(peaks[0]), float64(peaks[1])
	rate := float64(n*b.N) / elapsed.Seconds()
	b.ReportMetric(rate, "auth/s")
	b.ReportMetric(baseline, "idkey-auth/s")
	b.ReportMetric(rate/baseline, "x-baseline")
	b.ReportMetric(live/mib, "peak-live-MiB")
	b.ReportMetric(objects/mib, "peak-objects-MiB")
	b.ReportMetric(bound/mib, "bound-MiB")
	b.ReportMetric(n*float64(p.Memory)/1024, "unbounded-MiB")
	if live > bound {
		b.Errorf("peak live heap %.0f MiB exceeds limit × m + 64 MiB = %.0f MiB", live/mib, bound/mib)
	}
}

// BenchmarkRegister measures a whole registration at the default
// parameters (policy checks, store, one Argon2id hash) over a MemStore;
// compare with BenchmarkIDKey: the checks must cost next to nothing.
func BenchmarkRegister(b *testing.B) {
	m, err := account.NewManager(accounttest.NewMemStore(), account.Config{Exempt: func(string) bool { return true }})
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		i++
		if err := m.Register(context.Background(), "192.0.2.1", fmt.Sprintf("user%d", i), "Tr0ub4dor&3x"); err != nil {
			b.Fatal(err)
		}
	}
}
