package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// Puller resolves storage URIs to local directories through the cache. It is
// safe for concurrent use; it starts no goroutine that outlives a Pull.
type Puller struct {
	cfg    Config
	cache  *cache
	secret redactor // secrets from the configuration
	group  singleflight.Group
}

// New validates cfg, fills its defaults and prepares the cache directory.
func New(cfg Config) (*Puller, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c, err := newCache(cfg.CacheDir, cfg.MaxCacheBytes)
	if err != nil {
		return nil, err
	}
	if cfg.HTTP.Client == nil {
		// One client for every http(s) pull, so connections are reused.
		if cfg.HTTP.Client, err = httpClient(false, "", cfg.ReadIdleTimeout); err != nil {
			return nil, err
		}
	}
	p := &Puller{cfg: cfg, cache: c}
	if n, err := c.sweep(); err != nil && cfg.Logger != nil {
		cfg.Logger.Warn("removing staging directories left by earlier pulls failed", "dir", c.root, "err", err)
	} else if n > 0 && cfg.Logger != nil {
		cfg.Logger.Info("removed staging directories left by earlier pulls", "dir", c.root, "count", n)
	}
	for _, s := range []string{cfg.S3.SecretAccessKey, cfg.S3.SessionToken, cfg.Azure.AccountKey,
		cfg.Azure.SASToken, string(cfg.GCS.CredentialsJSON)} {
		p.secret.add(s)
	}
	for _, q := range strings.Split(strings.TrimPrefix(cfg.Azure.SASToken, "?"), "&") {
		if _, v, ok := strings.Cut(q, "="); ok {
			p.secret.add(v)
			if u, err := url.QueryUnescape(v); err == nil {
				p.secret.add(u)
			}
		}
	}
	for _, v := range cfg.HTTP.Headers {
		p.secret.add(v)
		if _, tok, ok := strings.Cut(v, " "); ok { // "Bearer <token>"
			p.secret.add(tok)
		}
	}
	return p, nil
}

// Pull returns a local directory holding the files uri names: the directory
// itself for a local directory, otherwise a read-only-by-convention cache
// entry (a single file arrives as a directory holding that file; a single
// .zip/.tar/.tar.gz/.tgz arrives unpacked). Callers must not modify it.
// Concurrent pulls of one URI share one download. Errors are *Error.
func (p *Puller) Pull(ctx context.Context, uri string) (string, error) {
	sec := p.secret
	display := displayURI(uri, &sec)
	loc, err := parseURI(uri, p.cfg.PVCRoot)
	if err != nil {
		return "", sec.wrap("parse", display, err)
	}
	if loc.scheme == "file" {
		fi, err := os.Stat(loc.localPath)
		switch {
		case err != nil:
			return "", sec.wrap("stat", loc.display, notFoundOr(err))
		case fi.IsDir():
			return loc.localPath, nil
		case loc.dirOnly:
			return "", sec.wrap("stat", loc.display, fmt.Errorf("%w: names a file, but the uri ends in /", ErrInvalidURI))
		}
	}
	// The first caller's ctx drives the shared pull; a waiter whose own ctx
	// is still live when that one was cancelled tries again itself.
	for range 2 {
		// The SAS is in the flight key: a caller never shares a pull made
		// with someone else's token (the cache key leaves it out, but every
		// caller lists with its own credentials before using the cache).
		var leading atomic.Bool
		ch := p.group.DoChan(loc.norm+"\x00"+loc.sas, func() (any, error) {
			leading.Store(true)
			return p.pull(ctx, loc, &sec)
		})
		select {
		case <-ctx.Done():
			if leading.Load() {
				// The pull runs on ctx, so it is stopping: wait until it
				// has removed its staging directory, so a caller that
				// exits next (SIGTERM) leaves no partial download behind.
				<-ch
			}
			return "", sec.wrap("pull", loc.display, ctx.Err())
		case r := <-ch:
			if r.Err != nil && errors.Is(r.Err, context.Canceled) && ctx.Err() == nil {
				continue
			}
			if r.Err != nil {
				return "", r.Err
			}
			return r.Val.(string), nil
		}
	}
	return "", sec.wrap("pull", loc.display, context.Canceled)
}

// displayURI is uri as errors show it: without password or query values.
// It records those as secrets to scrub from causes too.
func displayURI(uri string, sec *redactor) string {
	if !strings.ContainsAny(uri, "@?#") {
		return uri
	}
	u, err := url.Parse(uri)
	if err != nil {
		scheme, _, _ := strings.Cut(uri, "://")
		return scheme + "://(unparseable uri)"
	}
	addURLSecrets(sec, u)
	return redactURL(u)
}

func addURLSecrets(r *redactor, u *url.URL) {
	if u.User != nil {
		if pw, ok := u.User.Password(); ok {
			r.add(pw)
		}
	}
	for _, vs := range u.Query() {
		for _, v := range vs {
			r.add(v)
		}
	}
	r.add(u.RawQuery)
}

// pull lists, then serves from the cache or downloads under the entry lock.
func (p *Puller) pull(ctx context.Context, loc location, sec *redactor) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	fail := func(op string, err error) (string, error) {
		if errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrNotFound) {
			err = fmt.Errorf("%w (timeout %s)", err, p.cfg.Timeout)
		}
		return "", sec.wrap(op, loc.display, err)
	}
	src, err := p.source(ctx, loc)
	if err != nil {
		return fail("connect", err)
	}
	defer src.close()
	var objs []object
	err = retry(ctx, p.cfg.Attempts, p.cfg.RetryBackoff, func() (err error) {
		objs, err = src.list(ctx)
		return stalled(ctx, err, "the listing", p.cfg.ReadIdleTimeout)
	})
	if err != nil {
		return fail("list", err)
	}
	if loc.scheme == "file" || loc.scheme == "http" {
		objs[0].name = filepath.Base(objs[0].name) // always a single file
	}
	if err := checkNames(objs); err != nil {
		return fail("list", err)
	}
	key := cacheKey(loc.norm, objs)
	if dir, ok := p.cache.lookup(key); ok {
		return dir, nil
	}
	lock, err := p.cache.lock(ctx, key)
	if err != nil {
		return fail("cache", err)
	}
	defer lock.unlock()
	if dir, ok := p.cache.lookup(key); ok { // another process finished it while we waited
		return dir, nil
	}
	dir, err := p.build(ctx, loc, src, key, objs)
	if err != nil {
		return fail("download", err)
	}
	if err := p.cache.evict(key); err != nil && p.cfg.Logger != nil {
		p.cfg.Logger.Warn("cache eviction failed", "err", sec.scrub(err.Error()))
	}
	return dir, nil
}

// build downloads and unpacks into a staging directory, then renames it into
// place. Whatever fails, the staging directory is removed.
func (p *Puller) build(ctx context.Context, loc location, src source, key string, objs []object) (string, error) {
	stage, err := p.cache.stage(key)
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(stage)
	var total int64
	for _, o := range objs {
		if o.size < 0 {
			total = -1
			break
		}
		total += o.size
	}
	start := time.Now()
	prog := &progress{fn: p.cfg.OnProgress, uri: loc.display, total: total, start: start}
	d := &downloader{src: src, attempts: p.cfg.Attempts, backoff: p.cfg.RetryBackoff,
		partSize: p.cfg.PartSize, concurrency: p.cfg.Concurrency, limit: p.budget(), idle: p.cfg.ReadIdleTimeout,
		report: func(done int64) { prog.update(done, false) }}
	raw := filepath.Join(stage, "raw")
	if err := os.Mkdir(raw, 0o755); err != nil {
		return "", err
	}
	if err := d.fetch(ctx, raw, objs); err != nil {
		return "", err
	}
	prog.update(d.done.Load(), true)
	out := raw
	if len(objs) == 1 && !loc.dirOnly {
		if kind := archiveKind(objs[0].name); kind != "" {
			out = filepath.Join(stage, "out")
			if err := os.Mkdir(out, 0o755); err != nil {
				return "", err
			}
			// Asked again: the download has used some of the free space.
			if err := unpack(ctx, filepath.Join(raw, objs[0].name), kind, out, p.budget()); err != nil {
				return "", err
			}
		}
	}
	size, err := dirSize(out)
	if err != nil {
		return "", err
	}
	dir, err := p.cache.commit(key, out, entryMeta{URI: loc.display, Bytes: size, Created: time.Now().UTC()})
	if err != nil {
		return "", err
	}
	if l := p.cfg.Logger; l != nil {
		l.LogAttrs(ctx, slog.LevelInfo, "model pulled", slog.String("uri", loc.display),
			slog.Int("files", len(objs)), slog.Int64("bytes", d.done.Load()),
			slog.Duration("took", time.Since(start)), slog.String("dir", dir))
	}
	return dir, nil
}

func (p *Puller) source(ctx context.Context, loc location) (source, error) {
	switch loc.scheme {
	case "file":
		return localSource{path: loc.localPath}, nil
	case "http":
		return &httpSource{client: p.cfg.HTTP.Client, url: loc.url, headers: p.cfg.HTTP.Headers}, nil
	case "s3":
		return newS3Source(p.cfg.S3, loc, p.cfg.ReadIdleTimeout)
	case "gs":
		return newGCSSource(ctx, p.cfg.GCS, loc, p.cfg.ReadIdleTimeout)
	case "azure":
		return newAzureSource(p.cfg.Azure, loc, p.cfg.ReadIdleTimeout)
	}
	return nil, fmt.Errorf("%w: unsupported scheme %q", ErrInvalidURI, loc.scheme)
}
