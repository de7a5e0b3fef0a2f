package storage

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"hash/crc32"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// endlessServer streams zeros in chunked encoding until the client goes
// away; HEAD declares no length either. served counts body bytes written.
type endlessServer struct {
	*httptest.Server
	served atomic.Int64
}

func newEndlessServer(t *testing.T) *endlessServer {
	s := &endlessServer{}
	chunk := make([]byte, 32<<10)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush() // headers out before any body: chunked, no Content-Length
		if r.Method != http.MethodGet {
			return
		}
		for r.Context().Err() == nil {
			n, err := w.Write(chunk)
			s.served.Add(int64(n))
			if err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// maxProgress records the largest Done an OnProgress hook saw.
type maxProgress struct {
	mu  sync.Mutex
	max int64
}

func (m *maxProgress) record(p Progress) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.max = max(m.max, p.Done)
}

// An endless chunked download stops at --storage-max-size: the bytes kept
// never pass the limit, the error says what was seen and which flag to
// raise, and nothing stays in the cache.
func TestPullEndlessDownloadStopsAtLimit(t *testing.T) {
	srv := newEndlessServer(t)
	const limit = 1 << 20
	var seen maxProgress
	p := newTestPuller(t, Config{MaxSize: limit, OnProgress: seen.record})
	start := time.Now()
	_, err := p.Pull(t.Context(), srv.URL+"/endless.bin")
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	mustContain(t, err, "the download is more than 1.0 MiB", "the size limit of 1.0 MiB", "--storage-max-size")
	if seen.max > limit {
		t.Errorf("kept %d bytes, over the %d byte limit", seen.max, limit)
	}
	// The server may have filled socket buffers past the limit, not more.
	if n := srv.served.Load(); n > limit+16<<20 {
		t.Errorf("server wrote %d bytes before the client stopped", n)
	}
	t.Logf("stopped after %s; server wrote %d bytes", time.Since(start), srv.served.Load())
	assertCache(t, p.cfg.CacheDir, 0)
}

// A download that stops sending fails after the read idle timeout, not the
// pull timeout, whether it stalls before the headers or in the body.
func TestPullStalledDownloadFailsAfterIdleTimeout(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	stall := func(r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/headers/") {
			stall(r)
			return
		}
		w.Header().Set("Content-Length", "1000000")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			w.Write(make([]byte, 1000))
			w.(http.Flusher).Flush()
			stall(r)
		}
	}))
	t.Cleanup(srv.Close)
	for _, path := range []string{"/body/model.bin", "/headers/model.bin"} {
		t.Run(path, func(t *testing.T) {
			p := newTestPuller(t, Config{ReadIdleTimeout: 100 * time.Millisecond, Attempts: 2, Timeout: time.Minute})
			start := time.Now()
			_, err := p.Pull(t.Context(), srv.URL+path)
			took := time.Since(start)
			if err == nil || errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("got %v, want a stall error before the pull timeout", err)
			}
			mustContain(t, err, "100ms", "--storage-read-idle-timeout")
			if took > 20*time.Second {
				t.Errorf("took %s to notice the stall", took)
			}
			assertCache(t, p.cfg.CacheDir, 0)
		})
	}
}

// zipDeclaring builds a zip of n stored entries that each declare size
// bytes but hold none: the central directory alone makes the bomb.
func zipDeclaring(t *testing.T, n int, size uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := range n {
		h := &zip.FileHeader{Name: "part" + string(rune('a'+i%26)) + strings.Repeat("x", i/26) + ".bin",
			Method: zip.Store, CRC32: crc32.ChecksumIEEE(nil), UncompressedSize64: size}
		h.SetMode(0o644)
		if _, err := zw.CreateRaw(h); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Zip bombs are refused from their declared sizes before anything is
// written: 40 honest 64 KiB entries (a few KiB of zip) over a 1 MiB limit, and
// 40 entries declaring 1 GiB each, the shape of the reported 41.8 MB bomb.
func TestPullZipBombRefusedUpFront(t *testing.T) {
	var honest []entry
	for i := range 40 {
		honest = append(honest, entry{name: "w" + string(rune('a'+i%26)) + strings.Repeat("x", i/26), body: string(make([]byte, 64<<10))})
	}
	fs := newFileServer(t, map[string][]byte{
		"/honest.zip":   makeZip(t, honest...),
		"/declared.zip": zipDeclaring(t, 40, 1<<30),
	})
	for name, want := range map[string]string{"/honest.zip": "2.5 MiB", "/declared.zip": "40.0 GiB"} {
		t.Run(name, func(t *testing.T) {
			p := newTestPuller(t, Config{MaxSize: 1 << 20})
			_, err := p.Pull(t.Context(), fs.URL+name)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("got %v, want ErrTooLarge", err)
			}
			mustContain(t, err, "the unpacked archive is "+want, "the size limit of 1.0 MiB", "--storage-max-size")
			assertCache(t, p.cfg.CacheDir, 0)
		})
	}
	// Unpacked directly: not one file was created.
	parent := t.TempDir()
	src, out := filepath.Join(parent, "a.zip"), filepath.Join(parent, "out")
	if err := os.WriteFile(src, zipDeclaring(t, 40, 1<<30), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unpack(t.Context(), src, "zip", out, budget{max: 4 << 20}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("wrote %v before refusing", names(ents))
	}
}

// A tar.gz bomb (ten 256 KiB entries of zeros, a few KiB compressed) stops
// before the entry that would pass the limit; what was written stays within
// it and is discarded.
func TestPullTarGzBombStopsAtLimit(t *testing.T) {
	var es []entry
	for i := range 10 {
		es = append(es, entry{name: "zeros" + string(rune('0'+i)), body: string(make([]byte, 256<<10))})
	}
	tgz := makeTar(t, true, es...)
	const limit = 640 << 10 // the third entry passes it

	parent := t.TempDir()
	src, out := filepath.Join(parent, "a.tgz"), filepath.Join(parent, "out")
	if err := os.WriteFile(src, tgz, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	err := unpack(t.Context(), src, "tgz", out, budget{max: limit, what: "the size limit", fix: "raise --storage-max-size"})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	mustContain(t, err, "the unpacked archive is more than 768.0 KiB", "--storage-max-size")
	if n, _ := dirSize(out); n > limit {
		t.Errorf("wrote %d bytes, over the %d byte limit", n, limit)
	}

	fs := newFileServer(t, map[string][]byte{"/bomb.tar.gz": tgz})
	p := newTestPuller(t, Config{MaxSize: limit})
	_, err = p.Pull(t.Context(), fs.URL+"/bomb.tar.gz")
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	assertCache(t, p.cfg.CacheDir, 0)
}

// A cancelled unpack writes nothing more.
func TestUnpackStopsWhenCancelled(t *testing.T) {
	parent := t.TempDir()
	src, out := filepath.Join(parent, "a.tar"), filepath.Join(parent, "out")
	if err := os.WriteFile(src, makeTar(t, false, entry{name: "a", body: "hello"}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := unpack(ctx, src, "tar", out, budget{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("wrote %v after cancel", names(ents))
	}
}

// Cancelling a pull (what SIGTERM does) removes its staging directory
// before Pull returns, so an exit right after leaves nothing in tmp/.
func TestPullCancelRemovesStaging(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	chunk := make([]byte, 32<<10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		if r.Method != http.MethodGet {
			return
		}
		for sent := 0; r.Context().Err() == nil; sent += len(chunk) {
			if sent >= 256<<10 {
				cancel() // mid-download, with bytes in the staging directory
			}
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(srv.Close)
	p := newTestPuller(t, Config{MaxSize: 64 << 20})
	_, err := p.Pull(ctx, srv.URL+"/endless.bin")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	assertCache(t, p.cfg.CacheDir, 0) // at once: no polling
}

// Staging directories that a killed process left are swept when a Puller
// starts; one whose key is locked (a live pull elsewhere) is kept.
func TestNewSweepsStaleStaging(t *testing.T) {
	root := t.TempDir()
	stale := []string{"0123abcd.5f5f5f", "0123abcd.8e8e8e", "4567cdef.evict-1a2b3c"}
	for _, d := range stale {
		if err := os.MkdirAll(filepath.Join(root, "tmp", d, "raw"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "tmp", d, "raw", "part.bin"), make([]byte, 4096), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	live := "89abef01.c0ffee"
	if runtime.GOOS != "windows" {
		if err := os.MkdirAll(filepath.Join(root, "tmp", live), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(root, "locks"), 0o755); err != nil {
			t.Fatal(err)
		}
		l, ok, err := lockFile(t.Context(), filepath.Join(root, "locks", "89abef01.lock"), true)
		if err != nil || !ok {
			t.Fatalf("lock: %v %v", ok, err)
		}
		defer l.unlock()
	}
	newTestPuller(t, Config{CacheDir: root})
	ents, err := os.ReadDir(filepath.Join(root, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(names(ents), ",")
	want := ""
	if runtime.GOOS != "windows" {
		want = live
	}
	if got != want {
		t.Errorf("tmp/ holds %q after start-up, want %q", got, want)
	}
}

// A model larger than the whole cache is refused, not kept: from its
// declared size, and while streaming when the server declares none.
func TestPullRefusesObjectLargerThanCache(t *testing.T) {
	big := bigBody(3 << 20)
	fs := newFileServer(t, map[string][]byte{"/big.bin": big, "/small.bin": bigBody(100 << 10)})
	chunked := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		if r.Method == http.MethodGet {
			w.Write(big)
		}
	}))
	t.Cleanup(chunked.Close)
	for _, tc := range []struct{ uri, says string }{
		{fs.URL + "/big.bin", "the download is 3.0 MiB"},
		{chunked.URL + "/big.bin", "the download is more than 1.0 MiB"},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			p := newTestPuller(t, Config{MaxCacheBytes: 1 << 20})
			_, err := p.Pull(t.Context(), tc.uri)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("got %v, want ErrTooLarge", err)
			}
			mustContain(t, err, tc.says, "the cache limit of 1.0 MiB", "--storage-cache-limit")
			assertCache(t, p.cfg.CacheDir, 0)
			if _, err := p.Pull(t.Context(), fs.URL+"/small.bin"); err != nil {
				t.Fatalf("a model within the limit: %v", err)
			}
			assertCache(t, p.cfg.CacheDir, 1)
		})
	}
}

// The smallest bound wins and is the one the error names.
func TestBudgetPicksTheSmallestBound(t *testing.T) {
	dir := t.TempDir()
	free, haveFree := freeBytes(dir)
	for _, tc := range []struct {
		name      string
		cfg       Config
		max       int64
		fixNeedle string
	}{
		{"explicit", Config{MaxSize: 5 << 20}, 5 << 20, "--storage-max-size"},
		{"cache limit smaller", Config{MaxSize: 5 << 20, MaxCacheBytes: 1 << 20}, 1 << 20, "--storage-cache-limit"},
		{"cache limit larger", Config{MaxSize: 1 << 20, MaxCacheBytes: 5 << 20}, 1 << 20, "--storage-max-size"},
		{"no bound", Config{MaxSize: -1}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.CacheDir = dir
			b := newTestPuller(t, tc.cfg).budget()
			if b.max != tc.max || !strings.Contains(b.fix, tc.fixNeedle) {
				t.Errorf("budget = %+v, want max %d naming %q", b, tc.max, tc.fixNeedle)
			}
		})
	}
	if !haveFree {
		t.Skip("free disk space unknown here")
	}
	b := newTestPuller(t, Config{CacheDir: dir}).budget()
	if b.max <= 0 || b.max > free || !strings.Contains(b.fix, "free disk space") {
		t.Errorf("default budget = %+v with %d bytes free", b, free)
	}
}
