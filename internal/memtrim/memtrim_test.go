package memtrim

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRegions(t *testing.T) {
	smaps := []byte(`00400000-02903000 r-xp 00000000 08:01 123 /usr/bin/ferry
Size:              37900 kB
Rss:               32012 kB
Anonymous:             0 kB
02903000-05389000 r--p 02503000 08:01 123 /usr/bin/ferry
Size:              43576 kB
Anonymous:             0 kB
05389000-0538a000 r--p 04f89000 08:01 123 /usr/bin/ferry
Size:                  4 kB
Anonymous:             4 kB
0538a000-05470000 rw-p 04f8a000 08:01 123 /usr/bin/ferry
Anonymous:           732 kB
05470000-074ce000 rw-p 00000000 00:00 0
Anonymous:           196 kB
7f0000000000-7f0000001000 r--s 00000000 08:01 9 /usr/bin/ferry
Anonymous:             0 kB
7f0000002000-7f0000003000 r--p 00000000 08:01 10 /usr/lib/other.so
Anonymous:             0 kB
`)
	got, err := Regions(smaps, "/usr/bin/ferry")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Start != 0x400000 || got[0].End != 0x2903000 || got[1].Start != 0x2903000 || got[1].Perms != "r--p" {
		t.Fatalf("regions %+v: want the clean text and read-only data only (never relocated RELRO pages, rw-p, shared or other files)", got)
	}
	if _, err := Regions([]byte("zz-01 r-xp 0 0:0 1 /usr/bin/ferry\n"), "/usr/bin/ferry"); err == nil {
		t.Error("a bad range was accepted")
	}
}

func rss(t *testing.T, field string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc")
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte(field+":")); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(string(v)), " kB"), 10, 64)
			return n
		}
	}
	t.Skipf("no %s in /proc/self/status", field)
	return 0
}

// TestReleaseKeepsRunning: after Release the process runs on (its code and
// data fault back in) and its file-backed resident memory does not grow.
func TestReleaseKeepsRunning(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("linux only")
	}
	before := rss(t, "RssFile")
	n, err := Release()
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no region of the test binary was released")
	}
	// Run code and read constant data again.
	s := strings.Repeat("ferry", 1000)
	if strings.Count(s, "rry") != 1000 {
		t.Fatal("string functions broke after Release")
	}
	if after := rss(t, "RssFile"); after >= before {
		t.Errorf("RssFile %d kB after Release, %d kB before", after, before)
	}
}

// TestRunReleasesWhenIdle: after a busy spell, an idle interval gives the
// pages back.
func TestRunReleasesWhenIdle(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("linux only")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, 100*time.Millisecond) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	// Busy: run a lot of distinct code for over 10 ms of CPU.
	start := time.Now()
	for time.Since(start) < 200*time.Millisecond {
		_ = fmt.Sprintf("%v %x %q", time.Now(), []byte("ferry"), strings.Repeat("x", 64))
		_ = regexp.MustCompile(`^(a+)+b[0-9]{2,}$`).MatchString("aaaab12")
	}
	busy := rss(t, "RssFile")
	deadline := time.Now().Add(5 * time.Second)
	for rss(t, "RssFile") >= busy {
		if time.Now().After(deadline) {
			t.Fatalf("RssFile still %d kB (%d kB when busy) after 5 s idle", rss(t, "RssFile"), busy)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
