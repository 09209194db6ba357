//go:build !linux

package logredact_test

import "time"

func threadCPU() time.Duration { return wallClock() }

func lockThread() func() { return func() {} }
