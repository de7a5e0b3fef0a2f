//go:build unix

package detect

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time (user + system) this process has used, so that
// benchmarks on a shared machine can report work per CPU-second rather
// than per wall-second.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
