// Package repository owns the set of named models a server holds: their
// versions, their load states (Pending, Loading, Ready, Unloading,
// Unavailable, Failed with a reason), loading and unloading them, and handing
// a loaded model to a request for the duration of that request.
package repository

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryserve/ferry/internal/runtime"
)

// State is a model version's lifecycle state, named as the repository
// extension reports it.
type State string

// The states a model version goes through.
const (
	Pending     State = "PENDING"
	Loading     State = "LOADING"
	Ready       State = "READY"
	Unloading   State = "UNLOADING"
	Unavailable State = "UNAVAILABLE" // unloaded on request
	Failed      State = "FAILED"
)

// Errors callers map to status codes.
var (
	ErrModelNotFound   = errors.New("model not found")
	ErrVersionNotFound = errors.New("model version not found")
	ErrModelNotReady   = errors.New("model not ready")
)

// Loader turns a model directory into a loaded model; *runtime.Registry is one.
type Loader interface {
	Load(ctx context.Context, dir, format string) (runtime.Model, string, error)
}

// Source says where a model's files are: Dir holds the model file directly,
// or numeric subdirectories that are its versions.
type Source struct {
	Name   string
	Dir    string
	Format string // "" = detect
	// Memory is the size the user declared for the model (bytes, 0 = not
	// declared). It is checked against the memory limit before loading;
	// after loading the measured size replaces it.
	Memory int64
}

// Config configures a Repository.
type Config struct {
	Loader Loader
	Logger *slog.Logger
	// OnLoad, if set, is called after every load attempt of a version.
	OnLoad func(model, format string, took time.Duration, err error)
	// MemoryLimit bounds the summed resident size of loaded models (bytes;
	// 0 = no limit). A load that would exceed it fails, or with EvictLRU
	// first unloads the least recently used idle models.
	MemoryLimit int64
	EvictLRU    bool
	// DecodeBudget bounds the memory one load may commit while decoding a
	// model file (--max-model-decode-bytes; 0 = the loader's default). A
	// memory limit lowers it to what the limit leaves free; loaders read it
	// with runtime.DecodeBudget.
	DecodeBudget int64
	// MeasureMemory measures each model's resident size even without a
	// limit (it is always measured when MemoryLimit is set).
	MeasureMemory bool
	// Discover, if set, finds the source of a model that Load is asked for
	// but that was never added (a multi-model server loading by name).
	Discover func(name string) (Source, bool)
}

// Repository is safe for concurrent use.
type Repository struct {
	cfg Config
	// measureMu serialises measured loads so heap deltas are attributable.
	measureMu sync.Mutex

	mu     sync.RWMutex
	models map[string]*entry
}

type entry struct {
	src      Source
	versions []*version // sorted by version number, ascending
	// ops serialises load/unload of one model.
	ops sync.Mutex
}

type version struct {
	name   string // "" for an unversioned model
	dir    string
	format string
	state  State
	reason string
	model  runtime.Model
	size   int64 // measured resident bytes (0 = not measured)
	// inuse is read-locked by every request using model; unload write-locks
	// it to wait for in-flight requests before closing the model.
	inuse sync.RWMutex
	// lastUsed is the UnixNano time of the last Acquire (for LRU eviction).
	lastUsed atomic.Int64
}

// New returns an empty repository.
func New(cfg Config) *Repository {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Repository{cfg: cfg, models: map[string]*entry{}}
}

// Add registers a model source without loading it. Adding a name twice
// replaces the source used by the next Load.
func (r *Repository) Add(src Source) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.models[src.Name]; ok {
		e.src = src
		return
	}
	r.models[src.Name] = &entry{src: src, versions: []*version{{state: Pending}}}
}

// Names lists the registered models, sorted.
func (r *Repository) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.models))
	for n := range r.models {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// LoadAll loads every registered model, concurrently up to parallel at a
// time, and returns the errors joined. Models that fail stay Failed; the
// others serve.
func (r *Repository) LoadAll(ctx context.Context, parallel int) error {
	names := r.Names()
	sem := make(chan struct{}, max(parallel, 1))
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	for i, n := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = r.Load(ctx, n)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Load (re)loads every version of a registered model. The previous versions
// keep serving until the new ones are ready, then are closed.
func (r *Repository) Load(ctx context.Context, name string) error {
	r.mu.RLock()
	e, ok := r.models[name]
	r.mu.RUnlock()
	if !ok && r.cfg.Discover != nil {
		if src, found := r.cfg.Discover(name); found {
			r.Add(src)
			r.mu.RLock()
			e, ok = r.models[name]
			r.mu.RUnlock()
		}
	}
	if !ok {
		return fmt.Errorf("%w: %q", ErrModelNotFound, name)
	}
	e.ops.Lock()
	defer e.ops.Unlock()

	r.mu.Lock()
	src := e.src
	if !anyReady(e.versions) {
		for _, v := range e.versions {
			v.state, v.reason = Loading, ""
		}
	}
	r.mu.Unlock()

	dirs, err := versionDirs(src.Dir)
	if err != nil {
		r.fail(e, err)
		return fmt.Errorf("model %q: %w", name, err)
	}
	if err := r.precheck(name, src.Memory); err != nil {
		r.fail(e, err)
		return err
	}
	fresh := make([]*version, 0, len(dirs))
	var loadErrs []error
	for _, d := range dirs {
		v := &version{name: d.version, dir: d.dir}
		start := time.Now()
		m, format, size, err := r.load(ctx, d.dir, src.Format)
		took := time.Since(start)
		if r.cfg.OnLoad != nil {
			r.cfg.OnLoad(name, format, took, err)
		}
		v.format, v.size = format, size
		if err != nil {
			v.state, v.reason = Failed, err.Error()
			loadErrs = append(loadErrs, fmt.Errorf("model %q version %q: %w", name, d.version, err))
			r.cfg.Logger.Error("model load failed", "model", name, "version", d.version, "err", err)
		} else {
			v.state, v.model = Ready, m
			r.cfg.Logger.Info("model loaded", "model", name, "version", d.version, "format", format, "took", took, "bytes", size)
		}
		fresh = append(fresh, v)
	}
	if err := r.makeRoom(e, fresh); err != nil {
		for _, v := range fresh {
			r.closeVersion(v)
		}
		r.fail(e, err)
		return err
	}

	r.mu.Lock()
	old := e.versions
	e.versions = fresh
	r.mu.Unlock()
	for _, v := range old {
		r.closeVersion(v)
	}
	return errors.Join(loadErrs...)
}

func anyReady(vs []*version) bool {
	return slices.ContainsFunc(vs, func(v *version) bool { return v.state == Ready })
}

func (r *Repository) fail(e *entry, err error) {
	r.mu.Lock()
	old := e.versions
	e.versions = []*version{{state: Failed, reason: err.Error()}}
	r.mu.Unlock()
	for _, v := range old {
		r.closeVersion(v)
	}
}

// unloadedReason marks a model unloaded on request.
const unloadedReason = "unloaded"

// Unload unloads every version of a model; it stays registered, Unavailable,
// and can be loaded again. In-flight requests finish first.
func (r *Repository) Unload(ctx context.Context, name string) error {
	r.mu.RLock()
	e, ok := r.models[name]
	r.mu.RUnlock()
	if !ok {
		return fmt.Errorf("%w: %q", ErrModelNotFound, name)
	}
	e.ops.Lock()
	defer e.ops.Unlock()
	r.mu.Lock()
	old := e.versions
	e.versions = []*version{{state: Unavailable, reason: unloadedReason}}
	for _, v := range old {
		if v.state == Ready {
			v.state = Unloading
		}
	}
	r.mu.Unlock()
	for _, v := range old {
		r.closeVersion(v)
	}
	r.cfg.Logger.Info("model unloaded", "model", name)
	return ctx.Err()
}

// Remove unloads a model and forgets it.
func (r *Repository) Remove(ctx context.Context, name string) error {
	if err := r.Unload(ctx, name); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	r.mu.Lock()
	delete(r.models, name)
	r.mu.Unlock()
	return nil
}

// closeVersion waits for in-flight requests and closes the model.
func (r *Repository) closeVersion(v *version) {
	if v.model == nil {
		return
	}
	v.inuse.Lock()
	err := v.model.Close()
	v.model = nil
	v.inuse.Unlock()
	if err != nil {
		r.cfg.Logger.Warn("model close failed", "version", v.name, "err", err)
	}
}

// Handle is a model lent to one request. Call Release when done with it.
type Handle struct {
	Model   runtime.Model
	Name    string
	Version string
	v       *version
}

// Release returns the model to the repository.
func (h *Handle) Release() { h.v.inuse.RUnlock() }

// Acquire lends the named model version ("" = the default, highest ready
// version) for one request.
func (r *Repository) Acquire(name, ver string) (*Handle, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.models[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrModelNotFound, name)
	}
	v, err := pick(e, ver)
	if err != nil {
		return nil, err
	}
	if v.state != Ready {
		return nil, notReady(name, v)
	}
	v.inuse.RLock()
	v.lastUsed.Store(time.Now().UnixNano())
	return &Handle{Model: v.model, Name: name, Version: v.name, v: v}, nil
}

func notReady(name string, v *version) error {
	if v.reason != "" {
		return fmt.Errorf("%w: %q is %s: %s", ErrModelNotReady, name, v.state, v.reason)
	}
	return fmt.Errorf("%w: %q is %s", ErrModelNotReady, name, v.state)
}

func pick(e *entry, ver string) (*version, error) {
	if ver == "" {
		// Highest ready version; otherwise the highest version, to report its state.
		for i := len(e.versions) - 1; i >= 0; i-- {
			if e.versions[i].state == Ready {
				return e.versions[i], nil
			}
		}
		return e.versions[len(e.versions)-1], nil
	}
	for _, v := range e.versions {
		if v.name == ver {
			return v, nil
		}
	}
	return nil, fmt.Errorf("%w: model %q has no version %q (versions: %v)", ErrVersionNotFound, e.src.Name, ver, versionNames(e))
}

func versionNames(e *entry) []string {
	out := []string{}
	for _, v := range e.versions {
		if v.name != "" {
			out = append(out, v.name)
		}
	}
	return out
}

// Status is one model version's state.
type Status struct {
	Name    string
	Version string
	State   State
	Reason  string
	Format  string
	// Bytes is the measured resident size (0 when not measured).
	Bytes int64
}

// Index lists every model version and its state, sorted by name and version.
func (r *Repository) Index() []Status {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []Status
	for n, e := range r.models {
		for _, v := range e.versions {
			out = append(out, Status{Name: n, Version: v.name, State: v.state, Reason: v.reason, Format: v.format, Bytes: v.size})
		}
	}
	slices.SortFunc(out, func(a, b Status) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), compareVersions(a.Version, b.Version))
	})
	return out
}

// Versions lists a model's version names (empty for an unversioned model).
func (r *Repository) Versions(name string) ([]string, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.models[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrModelNotFound, name)
	}
	return versionNames(e), nil
}

// ModelReady reports whether a model version can serve; it returns an error
// for unknown models and versions.
func (r *Repository) ModelReady(name, ver string) (bool, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.models[name]
	if !ok {
		return false, fmt.Errorf("%w: %q", ErrModelNotFound, name)
	}
	v, err := pick(e, ver)
	if err != nil {
		return false, err
	}
	return v.state == Ready, nil
}

// Ready reports whether every registered model that was not explicitly
// unloaded has a ready version. A server with a failed model is not ready,
// so a readiness probe never sends traffic to a half-working server; the
// ready models still answer requests addressed to them.
func (r *Repository) Ready() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, e := range r.models {
		if len(e.versions) == 1 && e.versions[0].state == Unavailable {
			// Evicted or unloaded models of a multi-model server leave it
			// ready; a server whose only model was unloaded serves nothing
			// and says so, so its supervisor routes around and heals it.
			if len(r.models) == 1 && e.versions[0].reason == unloadedReason {
				return false
			}
			continue
		}
		if !anyReady(e.versions) {
			return false
		}
	}
	return true
}

// Close unloads every model.
func (r *Repository) Close() {
	for _, n := range r.Names() {
		_ = r.Remove(context.Background(), n)
	}
}
