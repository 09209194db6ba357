//go:build linux

package logredact_test

import (
	"runtime"
	"syscall"
	"time"
	"unsafe"
)

// threadCPU returns the CPU time consumed by the calling OS thread, so that
// benchmark ratios are not distorted by other processes on a shared
// machine. Callers lock the goroutine to its thread.
//
// It reads CLOCK_THREAD_CPUTIME_ID, which counts to the nanosecond.
// getrusage(RUSAGE_THREAD) counts the same time but is brought up to date
// only at scheduler ticks: with batches of a few milliseconds, about a
// tick, the time of one batch was credited to the next one, and ratios
// moved by ±0.2 from run to run.
func threadCPU() time.Duration {
	var ts syscall.Timespec
	const clockThreadCPUTimeID = 3 // CLOCK_THREAD_CPUTIME_ID
	_, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0)
	if errno != 0 {
		return wallClock()
	}
	return time.Duration(ts.Nano())
}

func lockThread() func() {
	runtime.LockOSThread()
	return runtime.UnlockOSThread
}
