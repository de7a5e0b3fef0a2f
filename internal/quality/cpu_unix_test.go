//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package quality

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user and system) this process has used so
// far: benchmarks report it per operation, which on a shared, noisy
// machine moves far less than wall-clock rates do.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
