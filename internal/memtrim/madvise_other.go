//go:build !linux

package memtrim

import "time"

func dontNeed(start, length uintptr) error { return nil }

func cpuTime() time.Duration { return 0 }
