package storage

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// object is one file a URI names.
type object struct {
	name    string // slash-separated path inside the pulled directory
	key     string // the store's name for it (object key, blob name, path)
	size    int64  // -1: unknown
	version string // ETag, generation or mtime; "" unknown
	md5     []byte // expected MD5, when the store gives one
	ranges  bool   // the store serves byte ranges of it
}

// source is one store holding the objects a URI names.
type source interface {
	// list returns the objects the location names: one for a file, all
	// below it for a directory (names relative to it). None is ErrNotFound.
	list(ctx context.Context) ([]object, error)
	// open reads n bytes of o from off; n < 0 reads to the end.
	open(ctx context.Context, o object, off, n int64) (io.ReadCloser, error)
	// close releases the clients; called once per pull.
	close() error
}

// md5Checker is implemented by sources that learn only while reading
// whether an object's listed MD5 is really one (S3 ETags under SSE-KMS are
// not).
type md5Checker interface{ md5Valid(o object) bool }

// checkNames refuses object names that would land outside the target.
func checkNames(objs []object) error {
	seen := make(map[string]bool, len(objs))
	for _, o := range objs {
		n := o.name
		if n == "" || strings.HasPrefix(n, "/") || strings.Contains(n, "\\") || hasDotDot(n) ||
			path.Clean(n) != n || strings.ContainsRune(n, 0) {
			return fmt.Errorf("%w: object name %q would land outside the model directory", ErrInvalidURI, n)
		}
		if seen[n] {
			return fmt.Errorf("%w: object name %q appears twice", ErrInvalidURI, n)
		}
		seen[n] = true
	}
	// A name may not be both a file and a directory ("a" and "a/b").
	for n := range seen {
		for d := path.Dir(n); d != "."; d = path.Dir(d) {
			if seen[d] {
				return fmt.Errorf("%w: %q is both a file and a directory", ErrInvalidURI, d)
			}
		}
	}
	return nil
}

// relName is key relative to prefix, for directory listings.
func relName(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return strings.TrimPrefix(key, prefix+"/")
}

// localSource reads one local file (directories are returned in place and
// never reach here).
type localSource struct{ path string }

func (s localSource) list(context.Context) ([]object, error) {
	fi, err := os.Stat(s.path)
	if err != nil {
		return nil, notFoundOr(err)
	}
	return []object{{name: filepath.Base(s.path), key: s.path, size: fi.Size(),
		version: strconv.FormatInt(fi.ModTime().UnixNano(), 36), ranges: true}}, nil
}

func (s localSource) open(_ context.Context, o object, off, n int64) (io.ReadCloser, error) {
	f, err := os.Open(o.key)
	if err != nil {
		return nil, notFoundOr(err)
	}
	if n < 0 {
		n = o.size - off
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, off, n), f}, nil
}

func (localSource) close() error { return nil }

func notFoundOr(err error) error {
	switch {
	case os.IsNotExist(err):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case os.IsPermission(err):
		return fmt.Errorf("%w: %w", ErrAccessDenied, err)
	}
	return err
}
