//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package quality

import "time"

// processCPU is not measured here: benchmarks report 0 CPU per operation.
func processCPU() time.Duration { return 0 }
