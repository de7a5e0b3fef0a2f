package storage

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestHelperPull is not a test: TestPullAcrossProcesses runs the test binary
// as child processes that each pull once and print the directory.
func TestHelperPull(t *testing.T) {
	uri := os.Getenv("FERRY_STORAGE_HELPER_URI")
	if uri == "" {
		t.Skip("helper process for TestPullAcrossProcesses")
	}
	p, err := New(Config{CacheDir: os.Getenv("FERRY_STORAGE_HELPER_CACHE")})
	if err != nil {
		t.Fatal(err)
	}
	dir, err := p.Pull(context.Background(), uri)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("DIR=%s\n", dir)
}

// Four processes pull one URI into one cache at once: one download, one entry.
func TestPullAcrossProcesses(t *testing.T) {
	srv := newFileServer(t, map[string][]byte{"/model.bin": bigBody(2 << 20)})
	cache := t.TempDir()
	uri := srv.URL + "/model.bin"
	cmds := make([]*exec.Cmd, 4)
	outs := make([]strings.Builder, 4)
	for i := range cmds {
		cmds[i] = exec.Command(os.Args[0], "-test.run=^TestHelperPull$", "-test.count=1")
		cmds[i].Env = append(os.Environ(), "FERRY_STORAGE_HELPER_URI="+uri, "FERRY_STORAGE_HELPER_CACHE="+cache)
		cmds[i].Stdout, cmds[i].Stderr = &outs[i], &outs[i]
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	dirs := map[string]bool{}
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("child %d: %v\n%s", i, err, outs[i].String())
		}
		for _, line := range strings.Split(outs[i].String(), "\n") {
			if d, ok := strings.CutPrefix(line, "DIR="); ok {
				dirs[d] = true
			}
		}
	}
	if len(dirs) != 1 {
		t.Errorf("children got directories %v, want one", dirs)
	}
	if n := srv.gets.Load(); n != 1 {
		t.Errorf("%d GETs from 4 processes, want 1", n)
	}
	assertCache(t, cache, 1)
}
