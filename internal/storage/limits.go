package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Defaults for the limits of Config.
const (
	// DefaultReadIdleTimeout is how long a download may go without a byte
	// before the attempt fails.
	DefaultReadIdleTimeout = 60 * time.Second
	// freeDiskPercent is the share of the cache file system's free space one
	// pull may fill when Config.MaxSize is not set: a pull fails with a
	// clear error long before the disk is full, an archive's download and
	// its unpacked files both fit, and two concurrent pulls cannot fill it.
	freeDiskPercent = 50
)

// errStalled marks a download attempt that received nothing for the read
// idle timeout. It is retried: another connection may do better.
var errStalled = errors.New("download stalled")

// budget is the most bytes one stage of a pull (the download, then the
// unpacking) may write, and what sets it, so an error can say which knob
// to turn.
type budget struct {
	max  int64  // ≤ 0: no bound
	what string // "the size limit", "the cache limit", ...
	fix  string // what to do about it
}

// budget returns the bound for a stage of a pull that starts now: the
// smallest of Config.MaxSize (default: a share of the free disk space),
// and the cache limit, which no entry may exceed on its own.
func (p *Puller) budget() budget {
	var b budget
	switch {
	case p.cfg.MaxSize > 0:
		b = budget{max: p.cfg.MaxSize, what: "the size limit", fix: "raise --storage-max-size"}
	case p.cfg.MaxSize == 0:
		if free, ok := freeBytes(p.cfg.CacheDir); ok {
			b = budget{max: free / 100 * freeDiskPercent, what: "the default size limit",
				fix: fmt.Sprintf("%d%% of the free disk space under %s; free space, put --storage-cache-dir on a larger disk, or set --storage-max-size",
					freeDiskPercent, p.cfg.CacheDir)}
		}
	}
	if c := p.cfg.MaxCacheBytes; c > 0 && (b.max <= 0 || c <= b.max) {
		b = budget{max: c, what: "the cache limit", fix: "raise --storage-cache-limit"}
	}
	return b
}

// exceeded is the error for a stage that would write size bytes (more
// than size when atLeast: a stream cut off at the bound).
func (b budget) exceeded(what string, size int64, atLeast bool) error {
	q := ""
	if atLeast {
		q = "more than "
	}
	return fmt.Errorf("%w: %s is %s%s, over %s of %s (%s)", ErrTooLarge, what, q, formatBytes(size), b.what, formatBytes(b.max), b.fix)
}

// allows reports whether size bytes fit.
func (b budget) allows(size int64) bool { return b.max <= 0 || size <= b.max }

// formatBytes renders n in binary units, exactly when it is small.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// idleReader resets a watchdog timer after every read that returns bytes;
// the timer, armed before the request is sent, cancels the attempt's
// context when it fires.
type idleReader struct {
	r     io.Reader
	timer *time.Timer
	idle  time.Duration
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.timer.Reset(r.idle)
	}
	return n, err
}

// stalled explains a transport timeout (no response headers within idle)
// as a stall of what, naming the flag; other errors pass through.
func stalled(ctx context.Context, err error, what string, idle time.Duration) error {
	var ne net.Error
	if err == nil || ctx.Err() != nil || errors.Is(err, errStalled) || !errors.As(err, &ne) || !ne.Timeout() {
		return err
	}
	// %v, not %w: the transport's timeout claims to be DeadlineExceeded,
	// which would make it final and look like the pull's own timeout.
	return fmt.Errorf("%w: %s received no response for %s (raise --storage-read-idle-timeout for a slow store): %v",
		errStalled, what, idle, err)
}
