package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/router"
)

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
	// ReplicaEnv is added to every `ferry serve` child's environment:
	// storage credentials and settings (AWS_*, GOOGLE_*, AZURE_*, …), so a
	// replica pulls its own model the way ferry up would. Never logged.
	ReplicaEnv []string
	// StorageConfig resolves `storage: {key, path}` model specs (KServe's
	// storage-config secret, from --storage-config); nil: none given.
	StorageConfig api.StorageConfig
	// PredictorAddr is the internal address where the router sends
	// requests straight to predictors (given to transformers as
	// predictor_host).
	PredictorAddr string
	// IngressURL is how clients reach the router (for status URLs in
	// messages), e.g. http://127.0.0.1:8080.
	IngressURL string
	Logger     *slog.Logger
	// Resync is how often every service is reconciled even without
	// changes (default 10s); applies, replica state changes and the
	// autoscaler queue their own service at once.
	Resync time.Duration
	// Autoscaler decides replica counts; nil runs minReplicas (at least 1).
	Autoscaler *Autoscaler
	// ServeArgs are passed to every `ferry serve` child (storage settings,
	// so multi-model replicas pull the way ferry up does).
	ServeArgs []string
	// Runner runs revisions' replicas (default: local processes).
	Runner Runner
	// InProcess, if set, runs the predictor revisions that can be served
	// inside this process (inprocess.go) when InProcessPredictors or the
	// service's AnnotationInProcess asks for it; the rest go to Runner.
	InProcess Runner
	// InProcessPredictors is ferry up's --in-process-predictors: the
	// default of AnnotationInProcess.
	InProcessPredictors bool
	// Workers is how many objects are reconciled at once (default 16).
	Workers int
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
	running  map[string]Replicas // by revision key ns/name/component/revision
	events   map[string][]Event  // by ns/name, newest last
	lastHash map[string]string   // status hash per service, to skip no-op writes
	// everReady marks revisions that had a ready replica: scaled to zero,
	// they stay routable (through the activator), as in Knative.
	everReady map[string]bool
	// loggers run in the ingress for components that do not log
	// themselves; liveLoggers marks those a service's current reconcile used.
	loggers     map[string]*componentLogger
	liveLoggers map[string]bool
	// startedAt tells revisions that ran before this process (restored
	// from the store) from new ones.
	startedAt time.Time

	queue     *workQueue
	tmRecheck atomic.Bool  // a recheck of the TrainedModel pass is scheduled
	probes    *modelProber // modelprobe.go: is a TrainedModel loaded?
	keyLocks  sync.Map     // object key → *sync.Mutex: one reconcile of a key at a time

	// statusHook, if set (tests), sees every status written.
	statusHook func(key string, st *api.InferenceServiceStatus)

	routesMu sync.Mutex
	routes   map[string]*router.Service // by ns/name, as last reconciled
	aliases  map[string][]string        // TrainedModel names per ns/name
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
		cfg.Resync = 10 * time.Second
	}
	if cfg.Domain == "" {
		cfg.Domain = "example.com"
	}
	if cfg.Runner == nil {
		cfg.Runner = ProcessRunner{Logger: cfg.Logger}
	}
	if cfg.Workers <= 0 {
		// Reconciles mostly wait on the store's fsync, which concurrent
		// writers share: more workers mean larger batches, not more CPU.
		cfg.Workers = 16
	}
	c := &Controller{cfg: cfg, kick: make(chan struct{}, 1), running: map[string]Replicas{}, events: map[string][]Event{}, lastHash: map[string]string{}, everReady: map[string]bool{},
		loggers: map[string]*componentLogger{}, liveLoggers: map[string]bool{}, startedAt: time.Now(),
		queue: newWorkQueue(100*time.Millisecond, 30*time.Second), routes: map[string]*router.Service{}, aliases: map[string][]string{}}
	c.probes = newModelProber(func() { c.queue.Add(trainedModelsKey) })
	return c
}

// Trigger asks for every object to be reconciled soon.
func (c *Controller) Trigger() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Enqueue asks for one InferenceService (ns/name) to be reconciled soon.
func (c *Controller) Enqueue(key string) { c.queue.Add(key) }

// trainedModelsKey is the queue key of the TrainedModel pass (placement
// onto servers, models configs, aliases), which looks at every service.
const trainedModelsKey = "\x00trainedmodels"

// trainedModelsRecheck is how often the TrainedModel pass runs.
const trainedModelsRecheck = time.Second

// Run reconciles until ctx ends, then stops every replica. Workers take
// keys from the queue; a periodic resync queues every object (it picks up
// replica readiness), and a replica's change queues only its service.
func (c *Controller) Run(ctx context.Context) error {
	defer c.stopAll()
	defer c.probes.wait()
	var wg sync.WaitGroup
	for range c.cfg.Workers {
		wg.Add(1)
		go func() { // owned: ends when the queue shuts down below
			defer wg.Done()
			c.work(ctx)
		}()
	}
	defer wg.Wait()
	defer c.queue.ShutDown()
	t := time.NewTicker(c.cfg.Resync)
	defer t.Stop()
	for {
		c.enqueueAll()
		select {
		case <-ctx.Done():
			return nil
		case <-c.kick:
		case <-t.C:
		}
	}
}

func (c *Controller) work(ctx context.Context) {
	for {
		key, ok := c.queue.Get()
		if !ok {
			return
		}
		err := c.sync(ctx, key)
		switch {
		case err == nil:
			c.queue.Forget(key)
			if key == trainedModelsKey && c.tmRecheck.CompareAndSwap(false, true) {
				// Models load inside replicas without telling the
				// controller: look again soon (one timer at a time).
				time.AfterFunc(trainedModelsRecheck, func() {
					c.tmRecheck.Store(false)
					c.queue.Add(trainedModelsKey)
				})
			}
		case ctx.Err() == nil:
			c.cfg.Logger.Error("reconcile failed; retrying", "key", key, "err", err)
			c.queue.AddRateLimited(key)
		}
		c.queue.Done(key)
	}
}

// enqueueObject queues what an applied object affects: the service itself,
// and the TrainedModel pass (which places models on services).
func (c *Controller) enqueueObject(kind, key string) {
	if kind == KindInferenceService {
		c.queue.Add(key)
	}
	c.queue.Add(trainedModelsKey)
	c.queue.Add(graphsKey) // graph.go: any service or graph may change a graph
}

// EnqueueRevision queues the service that runs revision rev in ns (the
// autoscaler changed its desired replicas).
func (c *Controller) EnqueueRevision(ns, rev string) {
	c.mu.Lock()
	var keys []string
	for k := range c.running { // ns/name/component/revision
		parts := strings.Split(k, "/")
		if len(parts) == 4 && parts[0] == ns && parts[3] == rev {
			keys = append(keys, parts[0]+"/"+parts[1])
		}
	}
	c.mu.Unlock()
	for _, k := range keys {
		c.queue.Add(k)
	}
}

// enqueueAll queues every stored service and the TrainedModel pass.
func (c *Controller) enqueueAll() {
	keys, err := c.cfg.Store.Keys(KindInferenceService, "")
	if err != nil {
		c.cfg.Logger.Error("list services", "err", err)
		return
	}
	for _, k := range keys {
		c.queue.Add(k)
	}
	c.routesMu.Lock()
	for k := range c.routes {
		if !slices.Contains(keys, k) {
			c.queue.Add(k) // deleted: its replicas and routes go
		}
	}
	c.routesMu.Unlock()
	c.queue.Add(trainedModelsKey)
	c.queue.Add(graphsKey)
}

func (c *Controller) sync(ctx context.Context, key string) error {
	switch key {
	case trainedModelsKey:
		return c.syncTrainedModels(ctx)
	case graphsKey:
		return c.syncGraphs(ctx) // graph.go
	}
	return c.syncService(ctx, key)
}

func (c *Controller) lockKey(key string) func() {
	m, _ := c.keyLocks.LoadOrStore(key, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// syncService reconciles one InferenceService: revisions, replicas,
// routes and status. Nothing in it waits on the network.
func (c *Controller) syncService(ctx context.Context, key string) error {
	defer c.lockKey(key)()
	raw, err := c.cfg.Store.Get(KindInferenceService, key)
	if errors.Is(err, ErrNotFound) {
		c.stopService(key, nil)
		c.stopUnusedLoggers(key)
		return c.setRoutes(key, nil)
	}
	if err != nil {
		return err
	}
	var isvc api.InferenceService
	if err := json.Unmarshal(raw, &isvc); err != nil {
		c.cfg.Logger.Error("stored service cannot be decoded; skipping it", "key", key, "err", err)
		return nil
	}
	svc, keep, save := c.reconcile(ctx, &isvc)
	c.stopService(key, keep)
	c.stopUnusedLoggers(key)
	if err := c.setRoutes(key, svc); err != nil {
		return err
	}
	// The status is saved after the routes are published, so a client that
	// sees it can rely on the traffic it describes.
	return save()
}

// syncTrainedModels places TrainedModels on their servers and publishes
// their names as aliases of those servers' routes.
func (c *Controller) syncTrainedModels(ctx context.Context) error {
	defer c.lockKey(trainedModelsKey)()
	c.routesMu.Lock()
	services := make([]*router.Service, 0, len(c.routes))
	for _, s := range c.routes {
		services = append(services, s)
	}
	c.routesMu.Unlock()
	aliases, err := c.reconcileTrainedModels(ctx, services)
	if err != nil {
		return fmt.Errorf("trained models: %w", err)
	}
	c.routesMu.Lock()
	defer c.routesMu.Unlock()
	changed := len(aliases) != len(c.aliases)
	for k, v := range aliases {
		if !slices.Equal(v, c.aliases[k]) {
			changed = true
		}
	}
	if !changed {
		return nil
	}
	c.aliases = aliases
	for k, s := range c.routes {
		cp := *s
		cp.Aliases = aliases[k]
		c.routes[k] = &cp
	}
	return c.publishLocked()
}

// setRoutes records a service's routes (nil: gone) and republishes the
// route table when they changed.
func (c *Controller) setRoutes(key string, svc *router.Service) error {
	c.routesMu.Lock()
	defer c.routesMu.Unlock()
	old, had := c.routes[key]
	if svc == nil {
		if !had {
			return nil
		}
		delete(c.routes, key)
		return c.publishLocked()
	}
	svc.Aliases = c.aliases[key]
	if had && sameRoutes(old, svc) {
		return nil
	}
	c.routes[key] = svc
	return c.publishLocked()
}

// sameRoutes compares two services' routes. Middleware (a request logger)
// cannot be compared; its MiddlewareID says whether it was replaced.
func sameRoutes(a, b *router.Service) bool {
	return reflect.DeepEqual(withoutMiddleware(a), withoutMiddleware(b))
}

func withoutMiddleware(s *router.Service) router.Service {
	cp := *s
	cp.Components = make(map[string]*router.Component, len(s.Components))
	for k, comp := range s.Components {
		if comp == nil {
			cp.Components[k] = nil
			continue
		}
		cc := *comp
		cc.Middleware = nil
		cp.Components[k] = &cc
	}
	return cp
}

func (c *Controller) publishLocked() error {
	keys := make([]string, 0, len(c.routes))
	for k := range c.routes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	services := make([]*router.Service, 0, len(keys))
	for _, k := range keys {
		services = append(services, c.routes[k])
	}
	return c.cfg.Router.Update(&router.Table{Domain: c.cfg.Domain, Services: services})
}

func (c *Controller) stopAll() {
	c.mu.Lock()
	c.liveLoggers = map[string]bool{}
	c.mu.Unlock()
	c.stopUnusedLoggers("") // nothing is live once the loop has ended: stops them all
	c.mu.Lock()
	sets := make([]Replicas, 0, len(c.running))
	for _, s := range c.running {
		sets = append(sets, s)
	}
	c.running = map[string]Replicas{}
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

// ReconcileAll reconciles every stored service, then the TrainedModels,
// synchronously (at start-up, before the API serves).
func (c *Controller) ReconcileAll(ctx context.Context) error {
	keys, _, err := c.cfg.Store.List(KindInferenceService, "")
	if err != nil {
		return err
	}
	c.routesMu.Lock()
	for k := range c.routes {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	c.routesMu.Unlock()
	var errs []error
	for _, k := range keys {
		if err := c.syncService(ctx, k); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
		}
	}
	if err := c.syncTrainedModels(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := c.syncGraphs(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ReconcileObject reconciles one object now (after a delete, so its routes
// are gone when the client hears it is).
func (c *Controller) ReconcileObject(ctx context.Context, kind, key string) error {
	switch kind {
	case KindTrainedModel:
		return c.syncTrainedModels(ctx)
	case KindInferenceGraph:
		return c.syncGraphs(ctx)
	}
	c.queue.Add(graphsKey) // graphs calling this service are no longer ready
	return errors.Join(c.syncService(ctx, key), c.syncTrainedModels(ctx))
}

// stopService stops a service's replica sets whose revision is not in keep.
func (c *Controller) stopService(key string, keep []string) {
	prefix := key + "/"
	c.mu.Lock()
	var stop []Replicas
	for k, s := range c.running {
		if strings.HasPrefix(k, prefix) && !slices.Contains(keep, k) {
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

func (c *Controller) replicaSet(key string) Replicas {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.running[key]
}

// ReplicaSets returns the running replica sets of a service by revision.
func (c *Controller) ReplicaSets(ns, name string) map[string]Replicas {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]Replicas{}
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
