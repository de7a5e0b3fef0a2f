package storage

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestPullHTTPFileAndCacheHit(t *testing.T) {
	srv := newFileServer(t, map[string][]byte{"/m/model.bst": []byte("booster")})
	p := newTestPuller(t, Config{})
	dir, err := p.Pull(t.Context(), srv.URL+"/m/model.bst")
	if err != nil {
		t.Fatal(err)
	}
	if got := readTree(t, dir); len(got) != 1 || got["model.bst"] != "booster" {
		t.Fatalf("pulled %v", got)
	}
	dir2, err := p.Pull(t.Context(), srv.URL+"/m/model.bst")
	if err != nil || dir2 != dir {
		t.Fatalf("second pull: %q, %v; want %q", dir2, err, dir)
	}
	if n := srv.gets.Load(); n != 1 {
		t.Errorf("%d GETs, want 1 (the second pull is a cache hit)", n)
	}
	// A new version (new ETag) is a new entry.
	srv.set("/m/model.bst", []byte("booster v2"))
	dir3, err := p.Pull(t.Context(), srv.URL+"/m/model.bst")
	if err != nil {
		t.Fatal(err)
	}
	if dir3 == dir || readTree(t, dir3)["model.bst"] != "booster v2" {
		t.Errorf("changed object: dir %q content %v", dir3, readTree(t, dir3))
	}
	assertCache(t, p.cfg.CacheDir, 2)
}

func TestPullHTTPArchives(t *testing.T) {
	want := map[string]string{"model.json": "{}", "sub/weights.bin": "0123", "link": "-> model.json"}
	entries := []entry{{name: "sub/", typ: '5'}, {name: "model.json", body: "{}"}, {name: "sub/weights.bin", body: "0123"},
		{name: "link", link: "model.json", typ: '2'}}
	tgz := makeTar(t, true, entries...)
	srv := newFileServer(t, map[string][]byte{
		"/a.tar.gz": tgz, "/a.tgz": tgz, "/a.tar": makeTar(t, false, entries...), "/a.zip": makeZip(t, entries...),
	})
	p := newTestPuller(t, Config{})
	for _, name := range []string{"a.tar.gz", "a.tgz", "a.tar", "a.zip"} {
		t.Run(name, func(t *testing.T) {
			dir, err := p.Pull(t.Context(), srv.URL+"/"+name)
			if err != nil {
				t.Fatal(err)
			}
			got := readTree(t, dir)
			if len(got) != len(want) {
				t.Errorf("got %v, want %v", got, want)
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestPullHTTPParallelRanges(t *testing.T) {
	body := bigBody(1<<20 + 123)
	srv := newFileServer(t, map[string][]byte{"/big.bin": body})
	var mu sync.Mutex
	var last Progress
	calls := 0
	p := newTestPuller(t, Config{PartSize: 64 << 10, Concurrency: 4, OnProgress: func(pr Progress) {
		mu.Lock()
		defer mu.Unlock()
		last, calls = pr, calls+1
	}})
	dir, err := p.Pull(t.Context(), srv.URL+"/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "big.bin"))
	if !bytes.Equal(got, body) {
		t.Fatal("content differs")
	}
	if n := srv.ranges.Load(); n != 17 {
		t.Errorf("%d range requests, want 17", n)
	}
	if calls == 0 || last.Done != int64(len(body)) || last.Total != int64(len(body)) {
		t.Errorf("last progress %+v after %d calls", last, calls)
	}
}

// The server dies halfway: with one attempt the pull fails clearly and leaves
// nothing in the cache; with retries, the same pull succeeds.
func TestPullHTTPServerDiesMidDownload(t *testing.T) {
	for _, tc := range []struct {
		name     string
		size     int
		noRanges bool
	}{{"single stream", 10_000, true}, {"ranges", 300 << 10, false}} {
		t.Run(tc.name, func(t *testing.T) {
			body := bigBody(tc.size)
			srv := newFileServer(t, map[string][]byte{"/model.bin": body})
			srv.noRanges = tc.noRanges
			cache := t.TempDir()
			srv.failGets.Store(1)
			p := newTestPuller(t, Config{CacheDir: cache, Attempts: 1, PartSize: 64 << 10})
			_, err := p.Pull(t.Context(), srv.URL+"/model.bin")
			mustContain(t, err, srv.URL+"/model.bin", "unexpected EOF")
			assertCache(t, cache, 0)

			srv.failGets.Store(2)
			p = newTestPuller(t, Config{CacheDir: cache, Attempts: 3, PartSize: 64 << 10})
			dir, err := p.Pull(t.Context(), srv.URL+"/model.bin")
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(filepath.Join(dir, "model.bin")); !bytes.Equal(got, body) {
				t.Fatal("content differs after retry")
			}
			assertCache(t, cache, 1)
		})
	}
}

func TestPullHTTPCredentialsNeverLeak(t *testing.T) {
	const token = "Bearer s3cr3t-t0ken-value"
	srv := newFileServer(t, map[string][]byte{"/m.bin": []byte("x")})
	srv.auth = token
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))

	p := newTestPuller(t, Config{Logger: log})
	_, err := p.Pull(t.Context(), srv.URL+"/m.bin")
	if !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("no header: %v, want ErrAccessDenied", err)
	}

	p = newTestPuller(t, Config{Logger: log, HTTP: HTTPConfig{Headers: map[string]string{"Authorization": token}}})
	if _, err := p.Pull(t.Context(), srv.URL+"/m.bin"); err != nil {
		t.Fatal(err)
	}
	// Secrets in the URI itself: user info and query values.
	u := strings.Replace(srv.URL, "http://", "http://user:hunter2pass@", 1) + "/missing.bin?token=qu3ry-s3cret&sig=abc%2Bdef%3D"
	_, err = p.Pull(t.Context(), u)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v, want ErrNotFound", err)
	}
	mustContain(t, err, "/missing.bin", "REDACTED")
	for _, secret := range []string{"s3cr3t-t0ken-value", "hunter2pass", "qu3ry-s3cret", "abc+def=", "abc%2Bdef%3D"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error leaks %q: %v", secret, err)
		}
		if strings.Contains(logs.String(), secret) {
			t.Errorf("log leaks %q: %s", secret, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "model pulled") {
		t.Errorf("log has no pull line: %s", logs.String())
	}
}

func TestPullConcurrentCoalesces(t *testing.T) {
	srv := newFileServer(t, map[string][]byte{"/model.bin": bigBody(200_000)})
	cache := t.TempDir()
	// Two Pullers on one cache stand in for two processes: only the flock
	// coordinates them. Each also gets several concurrent callers.
	ps := []*Puller{newTestPuller(t, Config{CacheDir: cache}), newTestPuller(t, Config{CacheDir: cache})}
	var wg sync.WaitGroup
	dirs := make([]string, 8)
	errs := make([]error, 8)
	for i := range 8 {
		wg.Go(func() { dirs[i], errs[i] = ps[i%2].Pull(context.Background(), srv.URL+"/model.bin") })
	}
	wg.Wait()
	for i := range 8 {
		if errs[i] != nil || dirs[i] != dirs[0] {
			t.Fatalf("pull %d: %q, %v; want %q", i, dirs[i], errs[i], dirs[0])
		}
	}
	if n := srv.gets.Load(); n != 1 {
		t.Errorf("%d GETs for 8 concurrent pulls, want 1", n)
	}
	assertCache(t, cache, 1)
}

func TestPullEvictsLeastRecentlyUsed(t *testing.T) {
	srv := newFileServer(t, map[string][]byte{"/a.bin": bigBody(1000), "/b.bin": bigBody(1000), "/c.bin": bigBody(1000)})
	cache := t.TempDir()
	p := newTestPuller(t, Config{CacheDir: cache, MaxCacheBytes: 2500})
	pull := func(name string) string {
		t.Helper()
		dir, err := p.Pull(t.Context(), srv.URL+"/"+name)
		if err != nil {
			t.Fatal(err)
		}
		return dir
	}
	a := pull("a.bin")
	b := pull("b.bin")
	// Touch a so that b is the least recently used. Set times explicitly:
	// two pulls within one clock tick would otherwise tie.
	meta := func(dir string) string { return p.cache.metaPath(filepath.Base(dir)) }
	old := mustStat(t, meta(b)).ModTime()
	pull("a.bin")
	if err := os.Chtimes(meta(a), old.Add(1e9), old.Add(1e9)); err != nil {
		t.Fatal(err)
	}
	pull("c.bin")
	if _, err := os.Stat(b); !os.IsNotExist(err) {
		t.Errorf("b (least recently used) still cached: %v", err)
	}
	if _, err := os.Stat(a); err != nil {
		t.Errorf("a evicted: %v", err)
	}
	assertCache(t, cache, 2)
	gets := srv.gets.Load()
	pull("b.bin")
	if srv.gets.Load() != gets+1 {
		t.Error("b was not downloaded again after eviction")
	}
}

func mustStat(t *testing.T, p string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}
