package controlplane

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrNotFound means the store has no such key.
var ErrNotFound = errors.New("not found")

// Store is the embedded state of `ferry up`: one bbolt file under the data
// directory, one bucket per kind, JSON values keyed by "namespace/name"
// (revisions by "namespace/service/component/revision"). Writes are
// transactional and fsynced, so a restart resumes exactly where it stopped.
type Store struct {
	db *bolt.DB
}

// Buckets the control plane uses.
const (
	KindInferenceService = "inferenceservices"
	KindTrainedModel     = "trainedmodels"
	KindInferenceGraph   = "inferencegraphs"
	KindRevision         = "revisions"
	KindEvent            = "events"
)

// OpenStore opens (or creates) the store in dir.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	path := filepath.Join(dir, "ferry.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open %s: another ferry up holds it (stop it or use another --data-dir)", path)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// A lone writer waits at most this long for others to share its fsync.
	db.MaxBatchDelay = 2 * time.Millisecond
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range []string{KindInferenceService, KindTrainedModel, KindInferenceGraph, KindRevision, KindEvent} {
			if _, err := tx.CreateBucketIfNotExists([]byte(b)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// Put stores value under key in kind. Concurrent writers share one
// transaction and one fsync (bolt's Batch): the reconcile workers write
// in parallel without queuing on the disk.
func (s *Store) Put(kind, key string, value []byte) error {
	return s.db.Batch(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(kind)).Put([]byte(key), value)
	})
}

// Modify replaces key's value with what f returns for the current one
// (nil when absent), in one transaction; f returning nil changes nothing.
// f may run more than once (writes are batched), so it must not have
// side effects beyond its result.
func (s *Store) Modify(kind, key string, f func(old []byte) ([]byte, error)) error {
	return s.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(kind))
		var old []byte
		if v := b.Get([]byte(key)); v != nil {
			old = append([]byte(nil), v...)
		}
		v, err := f(old)
		if err != nil || v == nil {
			return err
		}
		return b.Put([]byte(key), v)
	})
}

// Get returns the value of key, or ErrNotFound.
func (s *Store) Get(kind, key string) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket([]byte(kind)).Get([]byte(key))
		if v == nil {
			return fmt.Errorf("%s %q: %w", kind, key, ErrNotFound)
		}
		out = append([]byte(nil), v...)
		return nil
	})
	return out, err
}

// Delete removes key (and, with prefix set, every key starting with key).
func (s *Store) Delete(kind, key string, prefix bool) error {
	return s.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(kind))
		if !prefix {
			return b.Delete([]byte(key))
		}
		c := b.Cursor()
		var keys [][]byte
		for k, _ := c.Seek([]byte(key)); k != nil && hasPrefix(k, key); k, _ = c.Next() {
			keys = append(keys, append([]byte(nil), k...))
		}
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// Keys returns every key in kind that starts with prefix, in order.
func (s *Store) Keys(kind, prefix string) ([]string, error) {
	var keys []string
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte(kind)).Cursor()
		for k, _ := c.Seek([]byte(prefix)); k != nil && hasPrefix(k, prefix); k, _ = c.Next() {
			keys = append(keys, string(k))
		}
		return nil
	})
	return keys, err
}

// List returns every key/value in kind whose key starts with prefix, in key
// order.
func (s *Store) List(kind, prefix string) (keys []string, values [][]byte, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte(kind)).Cursor()
		for k, v := c.Seek([]byte(prefix)); k != nil && hasPrefix(k, prefix); k, v = c.Next() {
			keys = append(keys, string(k))
			values = append(values, append([]byte(nil), v...))
		}
		return nil
	})
	return keys, values, err
}

func hasPrefix(k []byte, p string) bool {
	return len(k) >= len(p) && string(k[:len(p)]) == p
}
