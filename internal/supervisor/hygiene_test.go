package supervisor

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil && !zombie(pid) }

func waitGone(t *testing.T, pid int, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: process %d still alive", what, pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReplicaDiesWithSupervisor: kill -9 of the supervising process takes
// its replica with it (Pdeathsig), and the PID file it left lets the next
// supervisor reap anything that survived.
func TestReplicaDiesWithSupervisor(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs Linux /proc")
	}
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "run", "r.pid")
	sup := exec.Command(os.Args[0], "-test.run=^$")
	sup.Env = append(os.Environ(), "FERRY_SUPERVISOR_CHILD=supervise", "PID_FILE="+pidFile)
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sup.Process.Kill(); _ = sup.Wait() }()
	var pid int
	deadline := time.Now().Add(20 * time.Second)
	for {
		if b, err := os.ReadFile(pidFile); err == nil {
			if rec, err := parsePIDRecord(b); err == nil {
				pid = rec.PID
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("supervisor never recorded its replica")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !alive(pid) {
		t.Fatalf("replica %d not running", pid)
	}
	if err := sup.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = sup.Wait()
	waitGone(t, pid, "after kill -9 of the supervisor")
	// The PID file stays behind; Reap finds nothing left to stop.
	n, err := Reap(context.Background(), filepath.Dir(pidFile), time.Second, slog.New(slog.DiscardHandler))
	if err != nil || n != 0 {
		t.Fatalf("reap: %d %v", n, err)
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Fatalf("pid file not removed: %v", err)
	}
}

// TestReapStopsLeftovers: a process group recorded in a PID file is
// stopped; a PID file whose PID now belongs to another process is not.
func TestReapStopsLeftovers(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs Linux /proc")
	}
	dir := t.TempDir()
	left := exec.Command("sleep", "60")
	left.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := left.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = left.Wait(); close(exited) }()
	if err := writePIDFile(filepath.Join(dir, "left.pid"), left.Process.Pid); err != nil {
		t.Fatal(err)
	}
	// A record for our own PID with another start time: PID reuse.
	if err := os.WriteFile(filepath.Join(dir, "reused.pid"), []byte(strconv.Itoa(os.Getpid())+" 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "junk.pid"), []byte("not a pid"), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := Reap(context.Background(), dir, 2*time.Second, slog.New(slog.DiscardHandler))
	if err != nil || n != 1 {
		t.Fatalf("reap: %d %v", n, err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("leftover still running")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("pid files left: %v", entries)
	}
	if n, err := Reap(context.Background(), filepath.Join(dir, "missing"), time.Second, slog.New(slog.DiscardHandler)); n != 0 || err != nil {
		t.Fatalf("missing dir: %d %v", n, err)
	}
}

// TestRestartAfterNotReady: a replica that was ready and then stays not
// ready is restarted.
func TestRestartAfterNotReady(t *testing.T) {
	port := freePort(t)
	flag := filepath.Join(t.TempDir(), "unready")
	h := start(t, "flaky-ready", port, func(c *Config) {
		c.Env = append(c.Env, "UNREADY_FILE="+flag)
		c.Readiness = &Probe{HTTPGet: &HTTPGetAction{Path: "/ready", Port: port}, Period: 20 * time.Millisecond, FailureThreshold: 2}
		c.RestartAfterNotReady = 200 * time.Millisecond
	})
	h.wait(t, "Ready", func(s Status) bool { return s.Phase == Ready })
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	h.wait(t, "NotReady", func(s Status) bool { return s.Phase == NotReady })
	s := h.wait(t, "a restart", func(s Status) bool { return s.Restarts >= 1 })
	if !strings.Contains(s.LastExit, "readiness failed") {
		t.Fatalf("LastExit %q", s.LastExit)
	}
	// The restarted child removes the flag at start (a reloaded model) and is ready again.
	h.wait(t, "Ready again", func(s Status) bool { return s.Phase == Ready })
}
