// Package memtrim hands the pages of the ferry binary that start-up
// touched back to the page cache.
//
// Package initialisation of the libraries ferry links (cloud storage
// clients, the Kubernetes client for `ferry operator`, protobuf registries)
// reads tens of megabytes of the binary's code and read-only data once.
// Those pages are clean copies of the file: the kernel may drop them at any
// time and reads them back on the next access. They still count in a
// process's RSS until it does, so an idle `ferry serve` looked three times
// its real size. Release advises the kernel that the binary's read-only
// mappings are not needed now (MADV_DONTNEED); the pages a server keeps
// using come back at the cost of a minor fault each.
//
// Only mappings of the executable that are not writable are released: a
// writable private mapping may hold changes that exist nowhere else.
package memtrim

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/ferryserve/ferry/internal/cputime"
)

// Region is one mapping of the executable that Release may drop.
type Region struct {
	Start, End uintptr
	Perms      string
}

// Regions lists the executable's read-only mappings whose pages are all
// clean copies of the file, from a /proc/self/smaps listing. A read-only
// mapping with anonymous pages was written before it was protected (the
// dynamic linker's RELRO relocations of a cgo binary): dropping those
// pages would bring back the file's unrelocated bytes, so it is skipped.
func Regions(smaps []byte, exe string) ([]Region, error) {
	var out []Region
	var cur *Region // the mapping whose fields are being read; nil: not ours
	flush := func() {
		if cur != nil {
			out = append(out, *cur)
			cur = nil
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(smaps))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) == 0 {
			continue
		}
		if lo, hi, isRange := bytes.Cut(f[0], []byte("-")); isRange && len(f) >= 5 && !bytes.HasSuffix(f[0], []byte(":")) {
			flush()
			perms := string(f[1])
			if len(f) < 6 || string(f[5]) != exe || len(perms) < 4 || perms[1] != '-' || perms[3] != 'p' {
				continue // another file, writable, or shared: not ours to drop
			}
			s, err1 := strconv.ParseUint(string(lo), 16, 64)
			e, err2 := strconv.ParseUint(string(hi), 16, 64)
			if err1 != nil || err2 != nil || e <= s {
				return nil, fmt.Errorf("smaps: bad range %q", f[0])
			}
			cur = &Region{Start: uintptr(s), End: uintptr(e), Perms: perms}
			continue
		}
		if cur != nil && string(f[0]) == "Anonymous:" && len(f) >= 2 && string(f[1]) != "0" {
			cur = nil // holds written pages
		}
	}
	flush()
	return out, sc.Err()
}

// Release drops the resident pages of the executable's read-only mappings
// and returns how many bytes of mappings it advised. Where that is not
// possible (not Linux, no /proc) it does nothing.
func Release() (int64, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, nil
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return 0, nil
	}
	regions, err := Regions(smaps, exe)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, r := range regions {
		if err := dontNeed(r.Start, r.End-r.Start); err != nil {
			return n, fmt.Errorf("madvise %x-%x: %w", r.Start, r.End, err)
		}
		n += int64(r.End - r.Start)
	}
	return n, nil
}

// Run releases the binary's pages again whenever the process has been idle
// (under 10 ms of CPU time) for a whole interval since it last did, so a
// server that served a burst and went quiet shrinks back, as the runtime's
// scavenger returns idle heap. It blocks until ctx ends.
func Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = 30 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	last, released := cputime.Process(), true
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now := cputime.Process()
		busy := now-last >= 10*time.Millisecond
		last = now
		switch {
		case busy:
			released = false
		case !released:
			if _, err := Release(); err != nil {
				return err
			}
			released = true
			last = cputime.Process()
		}
	}
}

// Idle is Run as a component with a Run method (for an errgroup or
// controlplane.Plane.Add).
type Idle struct{ Interval time.Duration }

// Run is Run(ctx, i.Interval).
func (i Idle) Run(ctx context.Context) error { return Run(ctx, i.Interval) }
