package repository

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"slices"

	"github.com/ferryserve/ferry/internal/runtime"
)

// ErrMemoryLimit means a model does not fit under the memory limit.
var ErrMemoryLimit = errors.New("memory limit exceeded")

// Sizer is implemented by models that know their resident size exactly;
// others are measured by the live-heap delta of their load.
type Sizer interface {
	SizeBytes() int64
}

func (r *Repository) measuring() bool { return r.cfg.MemoryLimit > 0 || r.cfg.MeasureMemory }

// load loads one version and, when accounting is on, measures the memory it
// retains: loads are serialised and bracketed by garbage collections, so the
// growth of the live heap is the model's resident size.
func (r *Repository) load(ctx context.Context, dir, format string) (runtime.Model, string, int64, error) {
	ctx = runtime.WithDecodeBudget(ctx, r.decodeBudget())
	if !r.measuring() {
		m, f, err := r.cfg.Loader.Load(ctx, dir, format)
		return m, f, 0, err
	}
	r.measureMu.Lock()
	defer r.measureMu.Unlock()
	before := liveHeap()
	m, f, err := r.cfg.Loader.Load(ctx, dir, format)
	if err != nil {
		return nil, f, 0, err
	}
	if s, ok := runtime.Unwrap(m).(Sizer); ok {
		return m, f, s.SizeBytes(), nil
	}
	return m, f, max(liveHeap()-before, 0), nil
}

// decodeBudget bounds the memory one load may commit while decoding its
// file: Config.DecodeBudget, and under a memory limit no more than the
// limit leaves free (the whole limit with EvictLRU, since idle models can
// make way), so a load's peak stays within --memory-limit too. Zero means
// the loader's default.
func (r *Repository) decodeBudget() int64 {
	b := r.cfg.DecodeBudget
	if r.cfg.MemoryLimit <= 0 {
		return b
	}
	free := r.cfg.MemoryLimit
	if !r.cfg.EvictLRU {
		r.mu.RLock()
		free -= r.usedExcept("")
		r.mu.RUnlock()
	}
	free = max(free, 1)
	if b <= 0 || free < b {
		return free
	}
	return b
}

func liveHeap() int64 {
	goruntime.GC()
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// usedExcept sums the measured size of ready versions of every model but
// skip. The caller holds r.mu.
func (r *Repository) usedExcept(skip string) int64 {
	var n int64
	for name, e := range r.models {
		if name == skip {
			continue
		}
		for _, v := range e.versions {
			if v.state == Ready {
				n += v.size
			}
		}
	}
	return n
}

// precheck refuses a load whose declared size cannot fit even after
// eviction, before any bytes are read.
func (r *Repository) precheck(name string, declared int64) error {
	if r.cfg.MemoryLimit <= 0 || declared <= 0 {
		return nil
	}
	if declared > r.cfg.MemoryLimit {
		return fmt.Errorf("%w: model %q declares %d bytes, more than the whole limit of %d (raise --memory-limit)", ErrMemoryLimit, name, declared, r.cfg.MemoryLimit)
	}
	r.mu.RLock()
	used := r.usedExcept(name)
	r.mu.RUnlock()
	if used+declared > r.cfg.MemoryLimit && !r.cfg.EvictLRU {
		return fmt.Errorf("%w: model %q declares %d bytes; %d of the %d-byte limit are in use (unload a model, raise --memory-limit, or use --evict lru)", ErrMemoryLimit, name, declared, used, r.cfg.MemoryLimit)
	}
	return nil
}

// makeRoom checks that the freshly loaded versions of e fit under the limit,
// evicting least recently used idle models when allowed. The caller holds
// e.ops.
func (r *Repository) makeRoom(e *entry, fresh []*version) error {
	if r.cfg.MemoryLimit <= 0 {
		return nil
	}
	var need int64
	for _, v := range fresh {
		if v.state == Ready {
			need += v.size
		}
	}
	for {
		r.mu.RLock()
		used := r.usedExcept(e.src.Name)
		r.mu.RUnlock()
		if used+need <= r.cfg.MemoryLimit {
			return nil
		}
		if !r.cfg.EvictLRU {
			return fmt.Errorf("%w: model %q needs %d bytes; %d of the %d-byte limit are in use (unload a model, raise --memory-limit, or use --evict lru)", ErrMemoryLimit, e.src.Name, need, used, r.cfg.MemoryLimit)
		}
		if !r.evictOne(e) {
			return fmt.Errorf("%w: model %q needs %d bytes; %d of the %d-byte limit are held by models in use, none could be evicted", ErrMemoryLimit, e.src.Name, need, used, r.cfg.MemoryLimit)
		}
	}
}

// evictOne unloads the least recently used model that is idle (no request
// holds it and no load or unload is running on it). It reports whether it
// evicted one.
func (r *Repository) evictOne(except *entry) bool {
	type cand struct {
		e    *entry
		last int64
	}
	r.mu.RLock()
	var cands []cand
	for _, e := range r.models {
		if e == except {
			continue
		}
		var last int64 = -1
		for _, v := range e.versions {
			if v.state == Ready {
				last = max(last, v.lastUsed.Load())
			}
		}
		if last >= 0 {
			cands = append(cands, cand{e, last})
		}
	}
	r.mu.RUnlock()
	slices.SortFunc(cands, func(a, b cand) int { return int(min(max(a.last-b.last, -1), 1)) })
	for _, c := range cands {
		if !c.e.ops.TryLock() {
			continue
		}
		ok := r.evict(c.e, except.src.Name)
		c.e.ops.Unlock()
		if ok {
			return true
		}
	}
	return false
}

// evict unloads e if none of its versions is in use. The caller holds e.ops.
func (r *Repository) evict(e *entry, forName string) bool {
	r.mu.Lock()
	for _, v := range e.versions {
		if v.model != nil && !v.inuse.TryLock() {
			r.mu.Unlock()
			return false
		}
	}
	// Every version is now write-locked: no request holds it, none can start.
	old := e.versions
	e.versions = []*version{{state: Unavailable, reason: fmt.Sprintf("evicted (least recently used) to make room for %q; load it again to serve it", forName)}}
	r.mu.Unlock()
	for _, v := range old {
		if v.model != nil {
			if err := v.model.Close(); err != nil {
				r.cfg.Logger.Warn("model close failed", "model", e.src.Name, "err", err)
			}
			v.model = nil
			v.inuse.Unlock()
		}
	}
	r.cfg.Logger.Info("model evicted", "model", e.src.Name, "for", forName)
	return true
}
