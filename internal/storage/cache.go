package storage

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// cache is the on-disk, content-addressed store:
//
//	<root>/entries/<key>/    a complete entry: exactly the model files
//	<root>/meta/<key>.json   its size and redacted URI; mtime = last use
//	<root>/locks/<key>.lock  flock held while the entry is built or evicted
//	<root>/tmp/<key>.<rand>/ staging; never read as an entry
//
// An entry is complete iff entries/<key> exists: it appears only by rename.
type cache struct {
	root     string
	maxBytes int64
}

type entryMeta struct {
	URI     string    `json:"uri"`
	Bytes   int64     `json:"bytes"`
	Created time.Time `json:"created"`
}

func newCache(root string, maxBytes int64) (*cache, error) {
	for _, d := range []string{"entries", "meta", "locks", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return nil, fmt.Errorf("storage: cache: %w", err)
		}
	}
	return &cache{root: root, maxBytes: maxBytes}, nil
}

// cacheKey hashes the normalised URI and the listing (names, sizes and
// versions), so a changed object yields a new entry.
func cacheKey(norm string, objs []object) string {
	h := sha256.New()
	fmt.Fprintf(h, "ferry-storage-v1\x00%s\x00", norm)
	sorted := slices.Clone(objs)
	slices.SortFunc(sorted, func(a, b object) int { return strings.Compare(a.name, b.name) })
	for _, o := range sorted {
		fmt.Fprintf(h, "%s\x00%d\x00%s\x00", o.name, o.size, o.version)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func (c *cache) entryDir(key string) string { return filepath.Join(c.root, "entries", key) }
func (c *cache) metaPath(key string) string { return filepath.Join(c.root, "meta", key+".json") }
func (c *cache) lockPath(key string) string { return filepath.Join(c.root, "locks", key+".lock") }

// lookup reports whether the entry is complete and, if so, marks it used.
func (c *cache) lookup(key string) (string, bool) {
	dir := c.entryDir(key)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return "", false
	}
	now := time.Now()
	if err := os.Chtimes(c.metaPath(key), now, now); errors.Is(err, fs.ErrNotExist) {
		// Crashed between the rename and the metadata write: rebuild it.
		size, _ := dirSize(dir)
		_ = c.writeMeta(key, entryMeta{Bytes: size, Created: now})
	}
	return dir, true
}

func (c *cache) lock(ctx context.Context, key string) (*fileLock, error) {
	l, _, err := lockFile(ctx, c.lockPath(key), false)
	return l, err
}

// stage makes a fresh staging directory for key after removing any left by
// an earlier pull that died (the caller holds key's lock, so none is live).
func (c *cache) stage(key string) (string, error) {
	old, _ := filepath.Glob(filepath.Join(c.root, "tmp", key+".*"))
	for _, o := range old {
		_ = os.RemoveAll(o)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	dir := filepath.Join(c.root, "tmp", key+"."+hex.EncodeToString(b[:]))
	return dir, os.Mkdir(dir, 0o755)
}

// sweep removes staging directories that no live pull owns: those a
// process left when it was killed mid-pull (SIGKILL, a crash, an exit
// before its pull unwound). A directory is swept only under its key's lock,
// which every live pull of that key holds, so processes sharing the cache
// never remove each other's work. It returns how many it removed.
func (c *cache) sweep() (int, error) {
	ents, err := os.ReadDir(filepath.Join(c.root, "tmp"))
	if err != nil {
		return 0, err
	}
	byKey := map[string][]string{}
	for _, e := range ents {
		if key, _, ok := strings.Cut(e.Name(), "."); ok && key != "" {
			byKey[key] = append(byKey[key], e.Name())
		}
	}
	var n int
	var errs []error
	for key, dirs := range byKey {
		l, ok, err := lockFile(context.Background(), c.lockPath(key), true)
		if err != nil || !ok {
			continue // a pull of key is running: its staging is live
		}
		for _, d := range dirs {
			if err := os.RemoveAll(filepath.Join(c.root, "tmp", d)); err != nil {
				errs = append(errs, err)
			} else {
				n++
			}
		}
		l.unlock()
	}
	return n, errors.Join(errs...)
}

// commit renames the finished directory into place and records its size.
func (c *cache) commit(key, from string, m entryMeta) (string, error) {
	dir := c.entryDir(key)
	if err := os.Rename(from, dir); err != nil {
		return "", err
	}
	return dir, c.writeMeta(key, m)
}

func (c *cache) writeMeta(key string, m entryMeta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := c.metaPath(key) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, c.metaPath(key))
}

// evict removes least recently used entries other than keep until the cache
// fits maxBytes. Entries locked by another pull are skipped.
func (c *cache) evict(keep string) error {
	if c.maxBytes <= 0 {
		return nil
	}
	type ent struct {
		key  string
		size int64
		used time.Time
	}
	files, err := os.ReadDir(filepath.Join(c.root, "meta"))
	if err != nil {
		return err
	}
	var ents []ent
	var total int64
	for _, f := range files {
		key, ok := strings.CutSuffix(f.Name(), ".json")
		if !ok {
			continue
		}
		var m entryMeta
		b, err := os.ReadFile(c.metaPath(key))
		if err != nil || json.Unmarshal(b, &m) != nil {
			continue
		}
		info, err := f.Info()
		if err != nil {
			continue
		}
		ents = append(ents, ent{key, m.Bytes, info.ModTime()})
		total += m.Bytes
	}
	slices.SortFunc(ents, func(a, b ent) int { return a.used.Compare(b.used) })
	var errs []error
	for _, e := range ents {
		if total <= c.maxBytes {
			break
		}
		if e.key == keep {
			continue
		}
		l, ok, err := lockFile(context.Background(), c.lockPath(e.key), true)
		if err != nil || !ok {
			continue
		}
		if err := c.remove(e.key); err != nil {
			errs = append(errs, err)
		} else {
			total -= e.size
		}
		l.unlock()
	}
	return errors.Join(errs...)
}

// remove deletes an entry: first out of entries/ by rename (atomic), then
// its bytes.
func (c *cache) remove(key string) error {
	var b [6]byte
	_, _ = rand.Read(b[:])
	trash := filepath.Join(c.root, "tmp", key+".evict-"+hex.EncodeToString(b[:]))
	if err := os.Rename(c.entryDir(key), trash); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	_ = os.Remove(c.metaPath(key))
	return os.RemoveAll(trash)
}

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	return n, err
}
