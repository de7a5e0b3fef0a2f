package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A PID file records a running replica's process group and the kernel's
// start time of its leader, so a later supervisor can tell the same
// process from an unrelated one that reused the PID.
type pidRecord struct {
	PID   int
	Start string // field 22 of /proc/PID/stat; empty where /proc is missing
}

func (p pidRecord) String() string { return fmt.Sprintf("%d %s\n", p.PID, p.Start) }

func parsePIDRecord(b []byte) (pidRecord, error) {
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return pidRecord{}, errors.New("empty pid file")
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 1 {
		return pidRecord{}, fmt.Errorf("bad pid %q", f[0])
	}
	rec := pidRecord{PID: pid}
	if len(f) > 1 {
		rec.Start = f[1]
	}
	return rec, nil
}

// processStart returns the start time of pid (in clock ticks since boot),
// or "" when it cannot be read.
func processStart(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is field 3 (state); start time is field 22.
	if len(fields) < 20 {
		return ""
	}
	return fields[19]
}

// zombie reports whether pid has exited and waits to be reaped by its
// parent (a dead replica whose new parent does not reap).
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && strings.HasPrefix(strings.TrimSpace(s[i+1:]), "Z")
}

func writePIDFile(path string, pid int) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(pidRecord{PID: pid, Start: processStart(pid)}.String()), 0o600)
}

// Reap stops the replicas that an earlier supervisor left running (after
// it was killed with SIGKILL on a system without a parent-death signal, or
// when a replica escaped it): for each PID file in dir whose process is
// still the one recorded, its process group gets SIGTERM, then SIGKILL
// after grace. Every PID file is removed. It returns how many process
// groups it stopped.
func Reap(ctx context.Context, dir string, grace time.Duration, log *slog.Logger) (int, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read replica pid dir: %w", err)
	}
	var groups []int
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".pid") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(path)
		_ = os.Remove(path)
		if err != nil {
			continue
		}
		rec, err := parsePIDRecord(b)
		if err != nil {
			log.Warn("ignoring a bad replica pid file", "file", path, "err", err)
			continue
		}
		if rec.Start == "" || processStart(rec.PID) != rec.Start || zombie(rec.PID) {
			continue // gone, or the PID now belongs to someone else
		}
		log.Warn("stopping a replica left over from an earlier run", "pid", rec.PID, "file", e.Name())
		_ = syscall.Kill(-rec.PID, syscall.SIGTERM)
		groups = append(groups, rec.PID)
	}
	deadline := time.Now().Add(grace)
	for _, pgid := range groups {
		for syscall.Kill(-pgid, 0) == nil && !zombie(pgid) && time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return len(groups), ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
		if syscall.Kill(-pgid, 0) == nil {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
	}
	return len(groups), nil
}
