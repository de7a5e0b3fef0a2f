package cli

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/ferryserve/ferry/internal/storage"
)

func parseStorageFlags(t *testing.T, args ...string) storageOptions {
	t.Helper()
	var o storageOptions
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	o.addFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return o
}

// The storage limits reach the puller, and ferry up hands them to its
// children unchanged.
func TestStorageLimitFlags(t *testing.T) {
	o := parseStorageFlags(t, "--storage-cache-dir", t.TempDir(), "--storage-max-size", "1Mi",
		"--storage-read-idle-timeout", "5s")
	if again := parseStorageFlags(t, o.args()...); again != o {
		t.Errorf("args %q parse to %+v, want %+v", o.args(), again, o)
	}
	if d := parseStorageFlags(t).idleTimeout; d != storage.DefaultReadIdleTimeout {
		t.Errorf("default idle timeout %s", d)
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "2097152")
		if r.Method == http.MethodGet {
			w.Write(make([]byte, 2<<20))
		}
	}))
	t.Cleanup(srv.Close)
	p, err := newStorage(o, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Pull(t.Context(), srv.URL+"/model.bin")
	if !errors.Is(err, storage.ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	mustContainAll(t, err.Error(), "2.0 MiB", "1.0 MiB", "--storage-max-size")

	for _, bad := range [][]string{{"--storage-max-size", "lots"}, {"--storage-read-idle-timeout", "-1s"}} {
		o := parseStorageFlags(t, append(bad, "--storage-cache-dir", t.TempDir())...)
		if _, err := newStorage(o, nil, nil); err == nil {
			t.Errorf("%q accepted", bad)
		} else {
			mustContainAll(t, err.Error(), bad[0])
		}
	}
	o = parseStorageFlags(t, "--storage-read-idle-timeout", "0")
	if !slices.Contains(o.args(), time.Duration(0).String()) {
		t.Errorf("args %q lose the disabled idle timeout", o.args())
	}
}

func mustContainAll(t *testing.T, s string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(s, p) {
			t.Errorf("%q does not contain %q", s, p)
		}
	}
}
