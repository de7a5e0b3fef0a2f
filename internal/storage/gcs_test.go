package storage

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// startFakeGCS runs fake-gcs-server on loopback, preloaded from a directory
// laid out as <bucket>/<object path>. It returns "127.0.0.1:port".
func startFakeGCS(t *testing.T, objects map[string][]byte) string {
	t.Helper()
	bin := findServer(t, "FERRY_TEST_FAKE_GCS", "fake-gcs-server")
	data := t.TempDir()
	for name, body := range objects {
		p := filepath.Join(data, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	port := freePort(t)
	host := fmt.Sprintf("127.0.0.1:%d", port)
	startServer(t, port, bin, "-scheme", "http", "-host", "127.0.0.1", "-port", fmt.Sprint(port),
		"-backend", "memory", "-data", data, "-public-host", host, "-external-url", "http://"+host, "-log-level", "error")
	return host
}

func TestPullGCS(t *testing.T) {
	big := bigBody(300_000)
	host := startFakeGCS(t, map[string][]byte{
		"models/sk/v1/model.joblib":   []byte("joblib"),
		"models/sk/v1/extra/cfg.json": []byte("{}"),
		"models/sk/v10/no.bin":        []byte("no"),
		"models/big.bin":              big,
	})
	var cfg Config
	if err := cfg.ApplyEnv(func(k string) (string, bool) {
		if k == "STORAGE_EMULATOR_HOST" {
			return host, true
		}
		return "", false
	}); err != nil {
		t.Fatal(err)
	}
	cfg.PartSize = 64 << 10
	p := newTestPuller(t, cfg)

	dir, err := p.Pull(t.Context(), "gs://models/sk/v1")
	if err != nil {
		t.Fatal(err)
	}
	if got := readTree(t, dir); len(got) != 2 || got["model.joblib"] != "joblib" || got["extra/cfg.json"] != "{}" {
		t.Errorf("directory: %v", got)
	}
	dir, err = p.Pull(t.Context(), "gs://models/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "big.bin")); !bytes.Equal(got, big) {
		t.Error("big.bin differs")
	}
	for _, tc := range []struct {
		uri  string
		kind error
	}{
		{"gs://models/sk/v2", ErrNotFound},
		{"gs://nosuchbucket/sk/v1", ErrNotFound},
		{"gs://", ErrInvalidURI},
	} {
		_, err := p.Pull(t.Context(), tc.uri)
		if !errors.Is(err, tc.kind) {
			t.Errorf("%s: %v, want %v", tc.uri, err, tc.kind)
		}
		mustContain(t, err, tc.uri)
	}
	assertCache(t, p.cfg.CacheDir, 2)
}
