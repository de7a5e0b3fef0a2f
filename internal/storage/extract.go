package storage

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// maxArchiveEntries bounds the entries one archive may hold, so a crafted
// archive of empty files cannot exhaust inodes.
const maxArchiveEntries = 100_000

// archiveKind reports how a file named name is unpacked ("" for not at all).
func archiveKind(name string) string {
	n := strings.ToLower(name)
	switch {
	case strings.HasSuffix(n, ".tar.gz"), strings.HasSuffix(n, ".tgz"):
		return "tgz"
	case strings.HasSuffix(n, ".tar"):
		return "tar"
	case strings.HasSuffix(n, ".zip"):
		return "zip"
	}
	return ""
}

// unpack extracts the archive at src into dst (an existing empty directory).
// It refuses absolute names, names climbing out of dst, writing through a
// link, links whose target leaves dst, special files, and more unpacked
// bytes than limit allows: a zip's declared sizes are summed before anything
// is written, a tar entry's size is checked before it is written, and the
// bytes are counted as they are written. It stops when ctx is done. On
// error dst is left partly written: the caller discards it.
func unpack(ctx context.Context, src, kind, dst string, limit budget) error {
	x := &extractor{ctx: ctx, root: dst, limit: limit, left: limit.max}
	if limit.max <= 0 {
		x.left = math.MaxInt64 - 1
	}
	switch kind {
	case "zip":
		return x.zip(src)
	case "tar", "tgz":
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		var r io.Reader = f
		if kind == "tgz" {
			gz, err := gzip.NewReader(f)
			if err != nil {
				return fmt.Errorf("%w: not a gzip stream: %w", ErrUnsafeArchive, err)
			}
			defer gz.Close()
			r = gz
		}
		return x.tar(r)
	}
	return fmt.Errorf("unknown archive kind %q", kind)
}

type extractor struct {
	ctx     context.Context
	root    string
	limit   budget
	left    int64 // bytes still allowed
	entries int
	links   []link // created last, once every file exists
}

type link struct{ name, target string }

func (x *extractor) tar(r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: reading tar: %w", ErrUnsafeArchive, err)
		}
		if err := x.count(); err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err = x.dir(h.Name)
		case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
			err = x.file(h.Name, tr, h.Size, h.FileInfo().Mode())
		case tar.TypeSymlink:
			err = x.symlink(h.Name, h.Linkname)
		case tar.TypeLink:
			err = x.hardlink(h.Name, h.Linkname)
		case tar.TypeXGlobalHeader, tar.TypeXHeader, tar.TypeGNULongName, tar.TypeGNULongLink:
			continue
		default:
			err = fmt.Errorf("%w: %q is a special file (type %q)", ErrUnsafeArchive, h.Name, h.Typeflag)
		}
		if err != nil {
			return err
		}
	}
	return x.finish()
}

func (x *extractor) zip(src string) error {
	zr, err := zip.OpenReader(src)
	if err != nil {
		return fmt.Errorf("%w: reading zip: %w", ErrUnsafeArchive, err)
	}
	defer zr.Close()
	// The central directory declares every size: a bomb is refused before
	// a byte is written. The reader fails an entry that inflates to more
	// than it declared.
	var declared uint64
	for _, f := range zr.File {
		if f.Mode().IsRegular() {
			declared = min(declared+min(f.UncompressedSize64, math.MaxInt64), math.MaxInt64)
		}
	}
	if declared > uint64(x.left) {
		return x.limit.exceeded("the unpacked archive", int64(declared), false)
	}
	for _, f := range zr.File {
		if err := x.count(); err != nil {
			return err
		}
		mode := f.Mode()
		switch {
		case mode.IsDir():
			err = x.dir(f.Name)
		case mode&fs.ModeSymlink != 0:
			err = x.zipSymlink(f)
		case mode.IsRegular():
			var rc io.ReadCloser
			if rc, err = f.Open(); err == nil {
				err = x.file(f.Name, rc, int64(f.UncompressedSize64), mode)
				rc.Close()
			}
		default:
			err = fmt.Errorf("%w: %q is a special file", ErrUnsafeArchive, f.Name)
		}
		if err != nil {
			return err
		}
	}
	return x.finish()
}

func (x *extractor) zipSymlink(f *zip.File) error {
	rc, err := f.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	target, err := io.ReadAll(io.LimitReader(rc, 4096))
	if err != nil {
		return err
	}
	return x.symlink(f.Name, string(target))
}

func (x *extractor) count() error {
	if x.entries++; x.entries > maxArchiveEntries {
		return fmt.Errorf("%w: more than %d entries", ErrTooLarge, maxArchiveEntries)
	}
	return nil
}

// clean validates an entry name and returns it slash-separated and relative.
func clean(name string) (string, error) {
	n := strings.ReplaceAll(name, "\\", "/")
	switch {
	case n == "" || strings.ContainsRune(n, 0):
		return "", fmt.Errorf("%w: empty or NUL entry name", ErrUnsafeArchive)
	case strings.HasPrefix(n, "/") || (len(n) > 1 && n[1] == ':'):
		return "", fmt.Errorf("%w: absolute path %q", ErrUnsafeArchive, name)
	case hasDotDot(n):
		return "", fmt.Errorf("%w: %q climbs out of the target", ErrUnsafeArchive, name)
	}
	n = path.Clean(n)
	if n == "." {
		return "", nil
	}
	return n, nil
}

// target resolves a cleaned name under root, refusing a path whose parent
// components are anything but real directories (never write through a link).
func (x *extractor) target(name string) (string, error) {
	n, err := clean(name)
	if err != nil {
		return "", err
	}
	if n == "" {
		return x.root, nil
	}
	p := x.root
	parts := strings.Split(n, "/")
	for _, part := range parts[:len(parts)-1] {
		p = filepath.Join(p, part)
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(p, 0o755); err != nil {
				return "", err
			}
		case err != nil:
			return "", err
		case !fi.IsDir():
			return "", fmt.Errorf("%w: %q passes through a non-directory", ErrUnsafeArchive, name)
		}
	}
	p = filepath.Join(p, parts[len(parts)-1])
	if fi, err := os.Lstat(p); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return "", fmt.Errorf("%w: %q would write through a link", ErrUnsafeArchive, name)
	}
	return p, nil
}

func (x *extractor) dir(name string) error {
	p, err := x.target(name)
	if err != nil {
		return err
	}
	if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if fi, err := os.Lstat(p); err != nil || !fi.IsDir() {
		return fmt.Errorf("%w: %q is both a file and a directory", ErrUnsafeArchive, name)
	}
	return nil
}

func (x *extractor) file(name string, r io.Reader, size int64, mode fs.FileMode) error {
	if err := x.ctx.Err(); err != nil {
		return err
	}
	if size > x.left {
		return x.limit.exceeded("the unpacked archive", x.limit.max-x.left+size, true)
	}
	p, err := x.target(name)
	if err != nil {
		return err
	}
	if p == x.root {
		return fmt.Errorf("%w: file entry with an empty name", ErrUnsafeArchive)
	}
	perm := fs.FileMode(0o644)
	if mode&0o111 != 0 {
		perm = 0o755
	}
	_ = os.Remove(p) // a later entry replaces an earlier one, as tar does
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	n, err := io.Copy(ctxWriter{x.ctx, f}, io.LimitReader(r, x.left+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	switch {
	case x.ctx.Err() != nil:
		return x.ctx.Err()
	case err != nil:
		return fmt.Errorf("%w: %q: %w", ErrUnsafeArchive, name, err)
	}
	if x.left -= n; x.left < 0 {
		return x.limit.exceeded("the unpacked archive", x.limit.max, true)
	}
	return nil
}

// ctxWriter stops a copy once ctx is done (a cancelled pull must not go on
// filling the disk).
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// symlink records a link to create at the end; its target must stay inside
// root as written (relative, no climbing above root from the link's place).
func (x *extractor) symlink(name, target string) error {
	n, err := clean(name)
	if err != nil || n == "" {
		return fmt.Errorf("%w: bad link name %q", ErrUnsafeArchive, name)
	}
	t := strings.ReplaceAll(target, "\\", "/")
	if t == "" || strings.HasPrefix(t, "/") || (len(t) > 1 && t[1] == ':') || strings.ContainsRune(t, 0) {
		return fmt.Errorf("%w: link %q points to %q, outside the target", ErrUnsafeArchive, name, target)
	}
	if j := path.Join(path.Dir(n), t); j == ".." || strings.HasPrefix(j, "../") {
		return fmt.Errorf("%w: link %q points to %q, outside the target", ErrUnsafeArchive, name, target)
	}
	x.links = append(x.links, link{n, t})
	return nil
}

// hardlink copies an already unpacked regular file (a hard link into the
// cache could alias files outside it if the archive were replayed).
func (x *extractor) hardlink(name, target string) error {
	t, err := clean(target)
	if err != nil || t == "" {
		return fmt.Errorf("%w: hard link %q to %q", ErrUnsafeArchive, name, target)
	}
	src := filepath.Join(x.root, filepath.FromSlash(t))
	fi, err := os.Lstat(src)
	if err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: hard link %q to %q, which is not a file unpacked before it", ErrUnsafeArchive, name, target)
	}
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	return x.file(name, f, fi.Size(), fi.Mode())
}

// finish creates the links, then checks that each resolves inside root
// (chains of links can climb where no single one does).
func (x *extractor) finish() error {
	for _, l := range x.links {
		p, err := x.target(l.name)
		if err != nil {
			return err
		}
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%w: link %q replaces an existing entry", ErrUnsafeArchive, l.name)
		}
		if err := os.Symlink(filepath.FromSlash(l.target), p); err != nil {
			return err
		}
	}
	root, err := filepath.EvalSymlinks(x.root)
	if err != nil {
		return err
	}
	for _, l := range x.links {
		real, err := filepath.EvalSymlinks(filepath.Join(x.root, filepath.FromSlash(l.name)))
		if errors.Is(err, fs.ErrNotExist) {
			continue // dangling: it reaches nothing
		}
		if err != nil {
			return fmt.Errorf("%w: link %q: %w", ErrUnsafeArchive, l.name, err)
		}
		if rel, err := filepath.Rel(root, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return fmt.Errorf("%w: link %q resolves outside the target", ErrUnsafeArchive, l.name)
		}
	}
	return nil
}
