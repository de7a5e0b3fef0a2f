//go:build !unix

// Package cputime reads the CPU time this process has used. Benchmarks
// report it per operation beside the wall clock: on a shared, noisy
// machine it moves far less than wall-clock rates do.
package cputime

import "time"

// Process is not measured on this system: it returns 0.
func Process() time.Duration { return 0 }
