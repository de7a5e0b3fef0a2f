package storage

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// memSource serves objects from memory; corrupt flips a byte in what it
// serves so the MD5 check must catch it.
type memSource struct {
	objs    []object
	data    map[string][]byte
	corrupt bool
}

func (m *memSource) list(context.Context) ([]object, error) { return m.objs, nil }
func (m *memSource) close() error                           { return nil }
func (m *memSource) open(_ context.Context, o object, off, n int64) (io.ReadCloser, error) {
	b := bytes.Clone(m.data[o.key])
	if m.corrupt {
		b[len(b)/2] ^= 0xff
	}
	if n < 0 {
		n = int64(len(b)) - off
	}
	return io.NopCloser(bytes.NewReader(b[off : off+n])), nil
}

func TestDownloadVerifiesMD5(t *testing.T) {
	body := bigBody(200_000)
	sum := md5.Sum(body)
	for _, corrupt := range []bool{false, true} {
		t.Run(fmt.Sprint("corrupt=", corrupt), func(t *testing.T) {
			src := &memSource{objs: []object{{name: "w.bin", key: "w", size: int64(len(body)), md5: sum[:], ranges: true}},
				data: map[string][]byte{"w": body}, corrupt: corrupt}
			d := &downloader{src: src, attempts: 1, partSize: 64 << 10, concurrency: 2}
			err := d.fetch(t.Context(), t.TempDir(), src.objs)
			if corrupt != errors.Is(err, ErrVerify) || (!corrupt && err != nil) {
				t.Errorf("err = %v", err)
			}
		})
	}
}

// A server that never answers: the pull stops at its timeout, says so, and
// leaves nothing behind.
func TestPullTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	p := newTestPuller(t, Config{Timeout: 200 * time.Millisecond, Attempts: 5})
	_, err := p.Pull(t.Context(), srv.URL+"/slow.bin")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a deadline error", err)
	}
	mustContain(t, err, srv.URL+"/slow.bin", "timeout 200ms")
	assertCache(t, p.cfg.CacheDir, 0)
}

func benchmarkPullHTTP(b *testing.B, size int, cfg Config) {
	body := bigBody(size)
	var version atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			version.Add(1) // each pull lists a new version: every pull is a miss
		}
		w.Header().Set("ETag", fmt.Sprintf(`"%d"`, version.Load()))
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	}))
	b.Cleanup(srv.Close)
	cfg.CacheDir = b.TempDir()
	cfg.MaxCacheBytes = int64(3 * size) // keep the disk use bounded
	p, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(size))
	b.ResetTimer()
	for b.Loop() {
		if _, err := p.Pull(b.Context(), srv.URL+"/model.bin"); err != nil {
			b.Fatal(err)
		}
	}
}

// Cold pulls of a 64 MiB file from a loopback server: one stream vs ranges.
func BenchmarkPullHTTPSingleStream(b *testing.B) {
	benchmarkPullHTTP(b, 64<<20, Config{PartSize: 1 << 30})
}

func BenchmarkPullHTTPRanges(b *testing.B) {
	benchmarkPullHTTP(b, 64<<20, Config{PartSize: 8 << 20, Concurrency: 4})
}

// A warm pull: list (HEAD) plus a cache lookup.
func BenchmarkPullCacheHit(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader([]byte("model")))
	}))
	b.Cleanup(srv.Close)
	p, err := New(Config{CacheDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := p.Pull(b.Context(), srv.URL+"/model.bin"); err != nil {
			b.Fatal(err)
		}
	}
}
