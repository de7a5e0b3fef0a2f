package puller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/ferryserve/ferry/internal/repository"
)

// Fetcher turns a storage URI into a local directory holding the model's
// files; internal/storage implements it.
type Fetcher interface {
	Pull(ctx context.Context, uri string) (dir string, err error)
}

// Repository is what the puller drives; *repository.Repository is one.
type Repository interface {
	Add(src repository.Source)
	Load(ctx context.Context, name string) error
	Remove(ctx context.Context, name string) error
}

// Config configures a Puller.
type Config struct {
	// ConfigPath is the models config file to watch.
	ConfigPath string
	// Interval is how often the file is checked (default 1s).
	Interval   time.Duration
	Fetcher    Fetcher
	Repository Repository
	// StateDir holds one marker per model whose pull and load finished.
	StateDir string
	// Parallel bounds concurrent model operations (default 4).
	Parallel int
	Logger   *slog.Logger
}

// State is what the puller knows about one model.
type State struct {
	Name       string `json:"name"`
	StorageURI string `json:"storageUri"`
	Phase      string `json:"phase"` // Pulling, Loading, Loaded, Failed
	Reason     string `json:"reason,omitempty"`
}

// Puller syncs the repository to the models config.
type Puller struct {
	cfg Config

	mu      sync.Mutex
	current map[string]ModelConfig // what was applied successfully or attempted
	states  map[string]State
	lastSum [32]byte
	lastErr error
	// retryAt, when set, is when models that failed are tried again even
	// if the config file has not changed; failures counts consecutive
	// passes with a failure, for the backoff.
	retryAt  time.Time
	failures int
}

// Failed models are tried again after 1 s, doubling up to 30 s.
const (
	firstRetry = time.Second
	maxRetry   = 30 * time.Second
)

// New returns a Puller.
func New(cfg Config) (*Puller, error) {
	if cfg.ConfigPath == "" || cfg.Fetcher == nil || cfg.Repository == nil {
		return nil, errors.New("puller: ConfigPath, Fetcher and Repository are required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 4
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.StateDir != "" {
		if err := os.MkdirAll(cfg.StateDir, 0o755); err != nil {
			return nil, fmt.Errorf("puller state dir: %w", err)
		}
	}
	return &Puller{cfg: cfg, current: map[string]ModelConfig{}, states: map[string]State{}}, nil
}

// Run syncs at once, then whenever the config file changes, until ctx ends.
func (p *Puller) Run(ctx context.Context) error {
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		if err := p.Sync(ctx); err != nil && ctx.Err() == nil {
			p.cfg.Logger.Error("models config not applied", "path", p.cfg.ConfigPath, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sync reads the config file and, if it changed since the last Sync,
// applies the difference. Operations on different models run in parallel;
// operations on one model are serialised because each model appears once
// per diff and Sync waits for all of them.
func (p *Puller) Sync(ctx context.Context) error {
	b, err := os.ReadFile(p.cfg.ConfigPath)
	if errors.Is(err, os.ErrNotExist) {
		b, err = nil, nil // no file yet: no models
	}
	if err != nil {
		return p.fail(fmt.Errorf("read models config %s: %w", p.cfg.ConfigPath, err))
	}
	sum := sha256.Sum256(b)
	p.mu.Lock()
	unchanged := sum == p.lastSum && p.lastErr == nil && (p.retryAt.IsZero() || time.Now().Before(p.retryAt))
	if !unchanged {
		p.retryAt = time.Time{} // this pass retries what failed; failures set it again
	}
	p.mu.Unlock()
	if unchanged {
		return nil
	}
	good, bad, err := ParseConfig(b)
	if err != nil {
		return p.fail(fmt.Errorf("models config %s: %w", p.cfg.ConfigPath, err))
	}
	for name, reason := range bad {
		p.cfg.Logger.Error("models config entry skipped", "model", name, "reason", reason)
		p.setState(State{Name: name, Phase: "Failed", Reason: reason})
	}

	want := map[string]ModelConfig{}
	for _, m := range good {
		want[m.Name] = m
	}
	p.mu.Lock()
	var add, remove []ModelConfig
	for n, m := range want {
		if cur, ok := p.current[n]; !ok || cur != m || p.states[n].Phase == "Failed" {
			add = append(add, m)
		}
	}
	for n, m := range p.current {
		if _, ok := want[n]; !ok {
			remove = append(remove, m)
		}
	}
	p.mu.Unlock()

	sem := make(chan struct{}, p.cfg.Parallel)
	var wg sync.WaitGroup
	for _, m := range remove {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			p.remove(ctx, m)
		}()
	}
	for _, m := range add {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			p.apply(ctx, m)
		}()
	}
	wg.Wait()
	p.mu.Lock()
	p.lastSum, p.lastErr = sum, ctx.Err()
	if p.retryAt.IsZero() {
		p.failures = 0
	} else {
		p.failures++
	}
	p.mu.Unlock()
	return nil
}

func (p *Puller) fail(err error) error {
	p.mu.Lock()
	p.lastErr = err
	p.mu.Unlock()
	return err
}

// apply pulls (unless a marker shows the same URI already pulled) and loads
// one model.
func (p *Puller) apply(ctx context.Context, m ModelConfig) {
	log := p.cfg.Logger.With("model", m.Name)
	dir, ok := p.readMarker(m)
	if !ok {
		p.setState(State{Name: m.Name, StorageURI: m.Spec.StorageURI, Phase: "Pulling"})
		var err error
		dir, err = p.cfg.Fetcher.Pull(ctx, m.Spec.StorageURI)
		if err != nil {
			log.Error("model pull failed", "err", err)
			p.applied(m, State{Name: m.Name, StorageURI: m.Spec.StorageURI, Phase: "Failed", Reason: "pull: " + err.Error()})
			return
		}
	}
	mem, _ := ParseQuantity(m.Spec.Memory)
	p.setState(State{Name: m.Name, StorageURI: m.Spec.StorageURI, Phase: "Loading"})
	p.cfg.Repository.Add(repository.Source{Name: m.Name, Dir: dir, Format: m.Spec.Framework, Memory: mem})
	if err := p.cfg.Repository.Load(ctx, m.Name); err != nil {
		log.Error("model load failed", "err", err)
		p.applied(m, State{Name: m.Name, StorageURI: m.Spec.StorageURI, Phase: "Failed", Reason: "load: " + err.Error()})
		p.deleteMarker(m.Name)
		return
	}
	p.writeMarker(m, dir)
	log.Info("model pulled and loaded", "uri", m.Spec.StorageURI)
	p.applied(m, State{Name: m.Name, StorageURI: m.Spec.StorageURI, Phase: "Loaded"})
}

func (p *Puller) remove(ctx context.Context, m ModelConfig) {
	if err := p.cfg.Repository.Remove(ctx, m.Name); err != nil && !errors.Is(err, repository.ErrModelNotFound) {
		p.cfg.Logger.Error("model unload failed", "model", m.Name, "err", err)
	}
	p.deleteMarker(m.Name)
	p.mu.Lock()
	delete(p.current, m.Name)
	delete(p.states, m.Name)
	p.mu.Unlock()
	p.cfg.Logger.Info("model removed", "model", m.Name)
}

func (p *Puller) applied(m ModelConfig, s State) {
	p.mu.Lock()
	p.current[m.Name] = m
	p.states[m.Name] = s
	if s.Phase == "Failed" {
		delay := maxRetry
		if p.failures < 5 {
			delay = min(firstRetry<<p.failures, maxRetry)
		}
		p.retryAt = time.Now().Add(delay)
	}
	p.mu.Unlock()
}

func (p *Puller) setState(s State) {
	p.mu.Lock()
	p.states[s.Name] = s
	p.mu.Unlock()
}

// States lists every model the config names, sorted by name.
func (p *Puller) States() []State {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]State, 0, len(p.states))
	for _, s := range p.states {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b State) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out
}

type marker struct {
	Spec ModelSpec `json:"modelSpec"`
	Dir  string    `json:"dir"`
}

func (p *Puller) markerPath(name string) string {
	sum := sha256.Sum256([]byte(name))
	return filepath.Join(p.cfg.StateDir, hex.EncodeToString(sum[:8])+"-"+name+".json")
}

// readMarker returns the directory of an earlier finished pull of the same
// spec, if its files are still there.
func (p *Puller) readMarker(m ModelConfig) (string, bool) {
	if p.cfg.StateDir == "" {
		return "", false
	}
	b, err := os.ReadFile(p.markerPath(m.Name))
	if err != nil {
		return "", false
	}
	var mk marker
	if json.Unmarshal(b, &mk) != nil || mk.Spec != m.Spec {
		return "", false
	}
	if st, err := os.Stat(mk.Dir); err != nil || !st.IsDir() {
		return "", false
	}
	return mk.Dir, true
}

func (p *Puller) writeMarker(m ModelConfig, dir string) {
	if p.cfg.StateDir == "" {
		return
	}
	b, _ := json.Marshal(marker{Spec: m.Spec, Dir: dir})
	tmp := p.markerPath(m.Name) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err == nil {
		err = os.Rename(tmp, p.markerPath(m.Name))
		if err != nil {
			p.cfg.Logger.Warn("puller marker not written", "model", m.Name, "err", err)
		}
	}
}

func (p *Puller) deleteMarker(name string) {
	if p.cfg.StateDir != "" {
		_ = os.Remove(p.markerPath(name))
	}
}
