package storage

import (
	"context"
	"crypto/md5" //nolint:gosec // MD5 is what the stores report; it checks integrity, not authenticity
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// task is one byte range of one object (n < 0: to the end).
type task struct {
	obj    object
	path   string
	off, n int64
}

// downloader copies objects from a source into a directory.
type downloader struct {
	src         source
	attempts    int
	backoff     time.Duration
	partSize    int64
	concurrency int
	limit       budget        // bounds the bytes written, all objects together
	idle        time.Duration // read idle timeout per attempt; ≤ 0: none
	done        atomic.Int64
	report      func(done int64) // progress; safe to call from many goroutines
}

// fetch writes every object under dir (which exists and is empty) and
// verifies sizes and MD5s. Declared sizes are checked against the limit
// before any file is created.
func (d *downloader) fetch(ctx context.Context, dir string, objs []object) error {
	var declared int64
	for _, o := range objs {
		declared += max(o.size, 0)
	}
	if !d.limit.allows(declared) {
		return d.limit.exceeded("the download", declared, false)
	}
	var tasks []task
	for _, o := range objs {
		p := filepath.Join(dir, filepath.FromSlash(o.name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		if o.size > 0 {
			err = f.Truncate(o.size)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		switch {
		case o.size == 0:
		case o.size > 0 && o.ranges && o.size >= 2*d.partSize:
			for off := int64(0); off < o.size; off += d.partSize {
				tasks = append(tasks, task{obj: o, path: p, off: off, n: min(d.partSize, o.size-off)})
			}
		default:
			tasks = append(tasks, task{obj: o, path: p, n: o.size})
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(d.concurrency)
	for _, t := range tasks {
		g.Go(func() error { return d.retry(gctx, func() error { return d.copyRange(gctx, t) }) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, o := range objs {
		if err := d.verify(ctx, filepath.Join(dir, filepath.FromSlash(o.name)), o); err != nil {
			return err
		}
	}
	return nil
}

// copyRange fetches one range into its place in the file. A short read is
// an error (the connection died); the bytes it counted are taken back so a
// retry reports progress correctly. An attempt that receives nothing for
// d.idle fails with errStalled.
func (d *downloader) copyRange(ctx context.Context, t task) (err error) {
	f, err := os.OpenFile(t.path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var body func(io.Reader) io.Reader = func(r io.Reader) io.Reader { return r }
	if d.idle > 0 {
		timer := time.AfterFunc(d.idle, func() { cancel(errStalled) })
		defer timer.Stop()
		body = func(r io.Reader) io.Reader { return &idleReader{r: r, timer: timer, idle: d.idle} }
		defer func() {
			if err != nil && ctx.Err() == nil && errors.Is(context.Cause(actx), errStalled) {
				// Not wrapping the transport's error: it says "context
				// canceled", which would make the failure look final.
				err = fmt.Errorf("%w: %s received nothing for %s (raise --storage-read-idle-timeout for a slow store)",
					errStalled, t.obj.name, d.idle)
			}
			err = stalled(ctx, err, t.obj.name, d.idle)
		}()
	}
	r, err := d.src.open(actx, t.obj, t.off, t.n)
	if err != nil {
		return err
	}
	defer r.Close()
	w := &countingWriter{w: io.NewOffsetWriter(f, t.off), d: d}
	var n int64
	if t.n >= 0 {
		n, err = io.Copy(w, io.LimitReader(body(r), t.n))
		if err == nil && n < t.n {
			err = fmt.Errorf("connection closed after %d of %d bytes: %w", n, t.n, io.ErrUnexpectedEOF)
		}
	} else {
		n, err = io.Copy(w, body(r))
		if err == nil {
			err = f.Truncate(n) // size was unknown: drop anything a failed try left beyond it
		}
	}
	if err != nil {
		d.add(-w.n)
	}
	return err
}

// retry runs fn until it succeeds, fails for good, or attempts run out.
func (d *downloader) retry(ctx context.Context, fn func() error) error {
	return retry(ctx, d.attempts, d.backoff, fn)
}

func retry(ctx context.Context, attempts int, backoff time.Duration, fn func() error) error {
	var err error
	for i := range attempts {
		if i > 0 {
			wait := min(backoff<<(i-1), 10*time.Second)
			wait += time.Duration(rand.Int64N(int64(wait)/4 + 1)) // jitter, so coalesced retries spread
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return errors.Join(err, ctx.Err())
			case <-t.C:
			}
		}
		if err = fn(); err == nil || !retryable(ctx, err) {
			return err
		}
	}
	return err
}

func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	for _, final := range []error{ErrNotFound, ErrAccessDenied, ErrInvalidURI, ErrVerify, ErrTooLarge, errFinal,
		context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, final) {
			return false
		}
	}
	var pe *os.PathError // local disk errors: full, read-only, ...
	return !errors.As(err, &pe)
}

func (d *downloader) verify(ctx context.Context, path string, o object) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if o.size >= 0 && fi.Size() != o.size {
		return fmt.Errorf("%w: %s: got %d bytes, want %d", ErrVerify, o.name, fi.Size(), o.size)
	}
	if len(o.md5) == 0 {
		return nil
	}
	if c, ok := d.src.(md5Checker); ok && !c.md5Valid(o) {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := md5.New() //nolint:gosec // see import
	// Hashing gigabytes must not delay a cancel.
	if _, err := io.Copy(ctxWriter{ctx, h}, f); err != nil {
		return err
	}
	if got := h.Sum(nil); string(got) != string(o.md5) {
		return fmt.Errorf("%w: %s: MD5 %x, want %x", ErrVerify, o.name, got, o.md5)
	}
	return nil
}

func (d *downloader) add(n int64) {
	v := d.done.Add(n)
	if d.report != nil {
		d.report(v)
	}
}

type countingWriter struct {
	w io.Writer
	d *downloader
	n int64
}

// Write refuses bytes that would take the download over its limit before
// writing any of them, so a stream without a declared end (chunked HTTP)
// stops at the limit.
func (c *countingWriter) Write(p []byte) (int, error) {
	if v := c.d.done.Add(int64(len(p))); !c.d.limit.allows(v) {
		c.d.done.Add(-int64(len(p)))
		return 0, c.d.limit.exceeded("the download", c.d.limit.max, true)
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.d.add(int64(n - len(p))) // take back what was not written; reports progress
	return n, err
}

// progress throttles OnProgress: at most one call per interval, serialised.
type progress struct {
	mu    sync.Mutex
	fn    func(Progress)
	uri   string
	total int64
	start time.Time
	last  time.Time
}

func (p *progress) update(done int64, final bool) {
	if p == nil || p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if !final && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	p.fn(Progress{URI: p.uri, Done: done, Total: p.total, Elapsed: now.Sub(p.start)})
}
