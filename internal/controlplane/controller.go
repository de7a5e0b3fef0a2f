package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/router"
)

// Fetcher turns a storageUri into a local directory; internal/storage
// implements it.
type Fetcher interface {
	Pull(ctx context.Context, uri string) (string, error)
}

// Config configures a Controller.
type Config struct {
	Store  *Store
	Router *router.Router
	// Domain is the ingress domain (services answer at {name}.{ns}.{domain}).
	Domain string
	// DataDir holds logs and per-revision files.
	DataDir string
	// FerryBinary runs built-in runtimes as `ferry serve` children.
	FerryBinary string
	Fetcher     Fetcher
	// PredictorAddr is the internal address where the router sends
	// requests straight to predictors (given to transformers as
	// predictor_host).
	PredictorAddr string
	// IngressURL is how clients reach the router (for status URLs in
	// messages), e.g. http://127.0.0.1:8080.
	IngressURL string
	Logger     *slog.Logger
	// Resync is how often every service is reconciled even without
	// changes (default 1s): it picks up replica readiness.
	Resync time.Duration
	// Autoscaler decides replica counts; nil runs minReplicas (at least 1).
	Autoscaler *Autoscaler
	// ServeArgs are passed to every `ferry serve` child (storage settings,
	// so multi-model replicas pull the way ferry up does).
	ServeArgs []string
}

// Controller reconciles stored InferenceServices into running revisions
// and routes.
type Controller struct {
	cfg  Config
	kick chan struct{}
	// reconcileMu serialises reconcile passes (the loop's and synchronous
	// ones, such as after a delete).
	reconcileMu sync.Mutex

	mu       sync.Mutex
	running  map[string]*ReplicaSet // by revision key ns/name/component/revision
	events   map[string][]Event     // by ns/name, newest last
	lastHash map[string]string      // status hash per service, to skip no-op writes
	// everReady marks revisions that had a ready replica: scaled to zero,
	// they stay routable (through the activator), as in Knative.
	everReady map[string]bool
	// loggers run in the ingress for components that do not log
	// themselves; liveLoggers marks those used by the current pass.
	loggers     map[string]*componentLogger
	liveLoggers map[string]bool
	// startedAt tells revisions that ran before this process (restored
	// from the store) from new ones.
	startedAt time.Time
}

// Event is a notable change on a service, shown by `ferry describe`.
type Event struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"` // Normal or Warning
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
}

// NewController returns a controller; Run starts it.
func NewController(cfg Config) *Controller {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Resync <= 0 {
		cfg.Resync = time.Second
	}
	if cfg.Domain == "" {
		cfg.Domain = "example.com"
	}
	return &Controller{cfg: cfg, kick: make(chan struct{}, 1), running: map[string]*ReplicaSet{}, events: map[string][]Event{}, lastHash: map[string]string{}, everReady: map[string]bool{},
		loggers: map[string]*componentLogger{}, liveLoggers: map[string]bool{}, startedAt: time.Now()}
}

// Trigger asks for a reconcile soon.
func (c *Controller) Trigger() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Run reconciles until ctx ends, then stops every replica.
func (c *Controller) Run(ctx context.Context) error {
	defer c.stopAll()
	t := time.NewTicker(c.cfg.Resync)
	defer t.Stop()
	for {
		if err := c.ReconcileAll(ctx); err != nil && ctx.Err() == nil {
			c.cfg.Logger.Error("reconcile failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-c.kick:
		case <-t.C:
		}
	}
}

func (c *Controller) stopAll() {
	c.stopUnusedLoggers() // nothing is marked live once the loop has ended: stops them all
	c.mu.Lock()
	sets := make([]*ReplicaSet, 0, len(c.running))
	for _, s := range c.running {
		sets = append(sets, s)
	}
	c.running = map[string]*ReplicaSet{}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range sets {
		wg.Add(1)
		go func() { defer wg.Done(); s.Close() }()
	}
	wg.Wait()
}

func (c *Controller) event(key, typ, reason, msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	evs := c.events[key]
	if n := len(evs); n > 0 && evs[n-1].Reason == reason && evs[n-1].Message == msg {
		return
	}
	evs = append(evs, Event{Time: time.Now(), Type: typ, Reason: reason, Message: msg})
	if len(evs) > 50 {
		evs = evs[len(evs)-50:]
	}
	c.events[key] = evs
	c.cfg.Logger.Info("event", "service", key, "reason", reason, "message", msg)
}

// Events returns a service's recent events.
func (c *Controller) Events(ns, name string) []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.events[ns+"/"+name])
}

// ReconcileAll reconciles every stored service and publishes routes.
func (c *Controller) ReconcileAll(ctx context.Context) error {
	c.reconcileMu.Lock()
	defer c.reconcileMu.Unlock()
	_, vals, err := c.cfg.Store.List(KindInferenceService, "")
	if err != nil {
		return err
	}
	var services []*router.Service
	var saves []func() error
	live := map[string]bool{}
	var errs []error
	for _, v := range vals {
		var isvc api.InferenceService
		if err := json.Unmarshal(v, &isvc); err != nil {
			errs = append(errs, err)
			continue
		}
		svc, keep, save := c.reconcile(ctx, &isvc)
		saves = append(saves, save)
		for _, k := range keep {
			live[k] = true
		}
		if svc != nil {
			services = append(services, svc)
		}
	}
	c.stopExcept(live)
	c.stopUnusedLoggers()
	aliases, err := c.reconcileTrainedModels(ctx, services)
	if err != nil {
		errs = append(errs, fmt.Errorf("trained models: %w", err))
	}
	for _, s := range services {
		s.Aliases = aliases[s.Namespace+"/"+s.Name]
	}
	if err := c.cfg.Router.Update(&router.Table{Domain: c.cfg.Domain, Services: services}); err != nil {
		errs = append(errs, err)
	}
	for _, save := range saves {
		if err := save(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// stopExcept stops replica sets whose revision no longer needs replicas.
func (c *Controller) stopExcept(live map[string]bool) {
	c.mu.Lock()
	var stop []*ReplicaSet
	for k, s := range c.running {
		if !live[k] {
			stop = append(stop, s)
			delete(c.running, k)
			delete(c.everReady, k)
			if c.cfg.Autoscaler != nil {
				parts := strings.Split(k, "/")
				c.cfg.Autoscaler.Forget(parts[0], parts[len(parts)-1])
			}
		}
	}
	c.mu.Unlock()
	for _, s := range stop {
		go s.Close() // drains in the background; Close waits for its own replicas
	}
}

// Revision is one immutable version of a component's spec.
type Revision struct {
	Name      string          `json:"name"`
	Component string          `json:"component"`
	Number    int             `json:"number"`
	Hash      string          `json:"hash"`
	Spec      json.RawMessage `json:"spec"`
	Created   time.Time       `json:"created"`
}

func revKey(ns, name, component string) string { return ns + "/" + name + "/" + component + "/" }

// revisions lists a component's revisions, oldest first.
func (c *Controller) revisions(ns, name, component string) ([]Revision, error) {
	_, vals, err := c.cfg.Store.List(KindRevision, revKey(ns, name, component))
	if err != nil {
		return nil, err
	}
	out := make([]Revision, 0, len(vals))
	for _, v := range vals {
		var r Revision
		if err := json.Unmarshal(v, &r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Revision) int { return a.Number - b.Number })
	return out, nil
}

// ensureRevision creates a new revision when the component's spec changed.
func (c *Controller) ensureRevision(ns, name, component string, spec api.Component) ([]Revision, error) {
	revs, err := c.revisions(ns, name, component)
	if err != nil {
		return nil, err
	}
	hash := api.ComponentSpecHash(spec)
	if n := len(revs); n > 0 && revs[n-1].Hash == hash {
		return revs, nil
	}
	num := 1
	if n := len(revs); n > 0 {
		num = revs[n-1].Number + 1
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	r := Revision{Name: fmt.Sprintf("%s-%s-%05d", name, component, num), Component: component, Number: num, Hash: hash, Spec: raw, Created: time.Now().UTC()}
	b, _ := json.Marshal(r)
	if err := c.cfg.Store.Put(KindRevision, revKey(ns, name, component)+fmt.Sprintf("%08d", num), b); err != nil {
		return nil, err
	}
	c.event(ns+"/"+name, "Normal", "RevisionCreated", fmt.Sprintf("created revision %s", r.Name))
	return append(revs, r), nil
}

func (c *Controller) replicaSet(key string) *ReplicaSet {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.running[key]
}

// ReplicaSets returns the running replica sets of a service by revision.
func (c *Controller) ReplicaSets(ns, name string) map[string]*ReplicaSet {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]*ReplicaSet{}
	prefix := ns + "/" + name + "/"
	for k, s := range c.running {
		if strings.HasPrefix(k, prefix) {
			out[k[strings.LastIndexByte(k, '/')+1:]] = s
		}
	}
	return out
}

// PIDDir is where running replicas are recorded, so the next `ferry up`
// can reap what a killed one left behind (supervisor.Reap).
func (c *Controller) PIDDir() string {
	if c.cfg.DataDir == "" {
		return ""
	}
	return filepath.Join(c.cfg.DataDir, "run")
}

func (c *Controller) logDir(ns, name string) string {
	d := filepath.Join(c.cfg.DataDir, "logs", ns, name)
	_ = os.MkdirAll(d, 0o755)
	return d
}
