//go:build unix

// Package cputime reads the CPU time this process has used. Benchmarks
// report it per operation beside the wall clock: on a shared, noisy
// machine it moves far less than wall-clock rates do.
package cputime

import (
	"syscall"
	"time"
)

// Process is the user and system CPU time this process has used so far
// (0 where it cannot be read).
func Process() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
