package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/ferryserve/ferry/internal/puller"
	"github.com/ferryserve/ferry/internal/storage"
)

type storageOptions struct {
	cacheDir    string
	cacheLimit  string
	maxSize     string
	pvcRoot     string
	timeout     time.Duration
	idleTimeout time.Duration
}

func (s *storageOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&s.cacheDir, "storage-cache-dir", "", "cache shared by every ferry process on the machine for pulled models (default: the user cache dir)")
	f.StringVar(&s.cacheLimit, "storage-cache-limit", "", "evict least recently used cache entries beyond this size, e.g. 20Gi (empty = no limit)")
	f.StringVar(&s.maxSize, "storage-max-size", "", "most one model pull may write, for its download and again for what its archive unpacks to, e.g. 50Gi (empty = half the cache disk's free space, and never over --storage-cache-limit)")
	f.DurationVar(&s.idleTimeout, "storage-read-idle-timeout", storage.DefaultReadIdleTimeout, "fail (and retry) a model download that receives no data for this long (0 = only --pull-timeout applies)")
	f.StringVar(&s.pvcRoot, "pvc-root", "", "directory whose subdirectories stand for PVCs in pvc://CLAIM/PATH URIs")
	f.DurationVar(&s.timeout, "pull-timeout", 30*time.Minute, "bound on one model pull, retries included")
}

// args renders the storage flags that are set, for child processes.
func (s storageOptions) args() []string {
	var out []string
	for _, f := range []struct{ name, v string }{{"storage-cache-dir", s.cacheDir}, {"storage-cache-limit", s.cacheLimit},
		{"storage-max-size", s.maxSize}, {"pvc-root", s.pvcRoot}} {
		if f.v != "" {
			out = append(out, "--"+f.name, f.v)
		}
	}
	return append(out, "--pull-timeout", s.timeout.String(), "--storage-read-idle-timeout", s.idleTimeout.String())
}

// newStorage returns the puller for storage URIs, configured from flags and
// KServe's environment variables (AWS_*, S3_*, GOOGLE_APPLICATION_CREDENTIALS,
// STORAGE_EMULATOR_HOST, AZURE_STORAGE_*). Pulls of more than a few MB draw
// a progress bar on progress when it is a terminal.
func newStorage(o storageOptions, log *slog.Logger, progress io.Writer) (*storage.Puller, error) {
	limit, err := puller.ParseQuantity(o.cacheLimit)
	if err != nil {
		return nil, fmt.Errorf("--storage-cache-limit: %w", err)
	}
	maxSize, err := puller.ParseQuantity(o.maxSize)
	if err != nil {
		return nil, fmt.Errorf("--storage-max-size: %w", err)
	}
	idle := o.idleTimeout
	switch {
	case idle < 0:
		return nil, fmt.Errorf("--storage-read-idle-timeout %s: must not be negative", idle)
	case idle == 0:
		idle = -1 // storage.Config: negative is none, zero the default
	}
	cfg := storage.Config{CacheDir: o.cacheDir, MaxCacheBytes: limit, MaxSize: maxSize, PVCRoot: o.pvcRoot,
		Timeout: o.timeout, ReadIdleTimeout: idle, Logger: log}
	if err := cfg.ApplyEnv(os.LookupEnv); err != nil {
		return nil, err
	}
	if f, ok := progress.(*os.File); ok && isTerminal(f) {
		cfg.OnProgress = func(p storage.Progress) { drawProgress(f, p) }
	}
	return storage.New(cfg)
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// drawProgress draws one progress line: bytes, percent, rate and ETA.
func drawProgress(w io.Writer, p storage.Progress) {
	const minBytes = 4 << 20
	if p.Total < minBytes && p.Done < minBytes {
		return
	}
	line := fmt.Sprintf("pulling %s  %s", shortURI(p.URI), humanBytes(p.Done))
	if p.Total > 0 {
		pct := float64(p.Done) * 100 / float64(p.Total)
		bar := strings.Repeat("█", int(pct/5)) + strings.Repeat("░", 20-int(pct/5))
		line = fmt.Sprintf("pulling %s  %s %5.1f%%  %s / %s", shortURI(p.URI), bar, pct, humanBytes(p.Done), humanBytes(p.Total))
	}
	line += fmt.Sprintf("  %s/s", humanBytes(int64(p.Rate())))
	if eta := p.ETA(); eta > 0 && p.Done < p.Total {
		line += "  ETA " + eta.Round(time.Second).String()
	}
	end := "\r"
	if p.Total > 0 && p.Done >= p.Total {
		end = "\n"
	}
	fmt.Fprint(w, "\033[2K"+line+end)
}

func shortURI(u string) string {
	if len(u) > 48 {
		return "…" + u[len(u)-47:]
	}
	return u
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
