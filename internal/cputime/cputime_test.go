//go:build unix

package cputime

import (
	"testing"
	"time"
)

// TestProcessCounts: busy work shows as CPU time, at most the wall time
// it took on this goroutine's one thread plus the rest of the process.
func TestProcessCounts(t *testing.T) {
	before := Process()
	start := time.Now()
	x := 0
	for time.Since(start) < 50*time.Millisecond {
		x++
	}
	used := Process() - before
	if used < 10*time.Millisecond {
		t.Errorf("50 ms of busy work used %v of CPU (x=%d), want at least 10 ms", used, x)
	}
}
