package router

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryserve/ferry/internal/quality"
)

// HeaderRevision names, in every proxied response, the revision that served it.
const HeaderRevision = "Ferry-Revision"

// Router proxies requests to replicas following the current Table.
type Router struct {
	ix    atomic.Pointer[index]
	rr    atomic.Uint64
	proxy *httputil.ReverseProxy // requests the hop does not take (hop.go)
	hops  *hopPool
	hop   http.Handler // forward, else proxy: what a component's Middleware wraps
	log   *slog.Logger

	// changed is closed (and replaced) on every Update, waking requests
	// held for a revision with no ready replica.
	mu      sync.Mutex
	changed chan struct{}

	activate        func(namespace, revision string)
	activateTimeout time.Duration

	graphs atomic.Pointer[graphTable] // InferenceGraphs (graph.go)

	stats    sync.Map // "ns/revision" → *RevisionStats
	feedback sync.Map // "ns/service" → *feedbackCounts (feedback.go)
	limits   sync.Map // "ns/revision" → *limiter
	local    sync.Map // backend address → http.Handler of an in-process replica (SetLocal)
	// quality reads the predictor replicas' quality windows, at most once
	// a second for all its readers (QualityScraper).
	quality *quality.Scraper
	waiting atomic.Int64
}

// SetLocal makes h serve the requests routed to the backend at addr, in
// this process and with no hop: an in-process replica (the control
// plane's in-process runner) registers its handler under its address
// before it is ready, and removes it (h nil) before it stops, so a
// request that finds no handler goes to the address as before. The
// router keeps its own per-request work for such a backend (split,
// activator, concurrency limit, counters, latency histogram, timeout,
// middleware).
func (r *Router) SetLocal(addr string, h http.Handler) {
	if h == nil {
		r.local.Delete(addr)
		return
	}
	r.local.Store(addr, h)
}

// localHandler is the in-process handler registered for addr, or nil.
func (r *Router) localHandler(addr string) http.Handler {
	if h, ok := r.local.Load(addr); ok {
		return h.(http.Handler)
	}
	return nil
}

// Waiting is how many requests the activator holds now.
func (r *Router) Waiting() int64 { return r.waiting.Load() }

// RevisionStats counts one revision's traffic, for the autoscaler.
type RevisionStats struct {
	InFlight atomic.Int64     // requests being served or held for activation
	Requests atomic.Uint64    // requests received
	Latency  LatencyHistogram // answered requests by code class and duration (latency.go)
}

// Stats returns the counters of a revision (namespace/revision).
func (r *Router) Stats(namespace, revision string) *RevisionStats {
	k := namespace + "/" + revision
	if v, ok := r.stats.Load(k); ok { // the common case allocates nothing
		return v.(*RevisionStats)
	}
	v, _ := r.stats.LoadOrStore(k, &RevisionStats{})
	return v.(*RevisionStats)
}

// SetActivator makes the router hold requests for a revision with no ready
// replica: it calls activate (to ask for a replica) and waits up to timeout
// for one to appear in a routing update, then answers 503 with Retry-After.
func (r *Router) SetActivator(activate func(namespace, revision string), timeout time.Duration) {
	r.activate, r.activateTimeout = activate, timeout
}

// SetHopSocket tells the router where a replica also listens on a Unix
// socket: socket(addr) is the path for the replica at TCP address addr, or
// "" for none. The hop dials the socket first (on loopback it costs both
// ends less than TCP) and TCP when that fails. Call it before serving.
func (r *Router) SetHopSocket(socket func(addr string) string) { r.hops.socket = socket }

// New returns a Router with an empty table for domain.
func New(domain string, log *slog.Logger) *Router {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Router{log: log, changed: make(chan struct{}), hops: newHopPool()}
	r.quality = quality.NewScraper(quality.ScraperConfig{Revisions: r.PredictorReplicas, Logger: log})
	r.hop = http.HandlerFunc(r.serveHop)
	r.ix.Store(newIndex(&Table{Domain: domain}))
	// Replicas are on loopback: keep a connection per concurrent request
	// alive (a new dial per request costs more than the request), and
	// leave bodies as they are (the transport would otherwise ask for gzip
	// and inflate it itself).
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	r.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			be := pr.In.Context().Value(backendKey{}).(string)
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = be
			if mb, ok := pr.In.Body.(*memBody); ok {
				// The proxy hides every body behind its own wrapper; this
				// one the transport can tell is in memory.
				pr.Out.Body = io.NopCloser(&mb.r)
			}
			pr.SetXForwarded()
		},
		Transport:    tr,
		ErrorHandler: r.proxyError,
		BufferPool:   copyBuffers{},
	}
	return r
}

// copyBuffers lends the reverse proxy its response copy buffers, which it
// would otherwise allocate (32 KiB) for every request.
type copyBuffers struct{}

var copyBufferPool = sync.Pool{New: func() any { return new([32 << 10]byte) }}

func (copyBuffers) Get() []byte  { return copyBufferPool.Get().(*[32 << 10]byte)[:] }
func (copyBuffers) Put(b []byte) { copyBufferPool.Put((*[32 << 10]byte)(b)) }

// maxBufferedBody is the largest request body the ingress reads whole
// before proxying. A body in memory goes out with the request headers in
// one write; a streamed one costs a write for the headers and another for
// the body, which for a small predict doubles the hop's syscalls.
const maxBufferedBody = 64 << 10

// memBody is a request body read whole by bufferBody.
type memBody struct {
	b []byte
	r bytes.Reader
}

// rest is what is left to read of the body.
func (m *memBody) rest() []byte { return m.b[len(m.b)-m.r.Len():] }

func (m *memBody) Read(p []byte) (int, error) { return m.r.Read(p) }
func (*memBody) Close() error                 { return nil }

// bufferBody replaces a small body of known length with the same bytes in
// memory, read to EOF (so wrappers that watch for the end, such as a
// body-rate bound, see it).
func bufferBody(req *http.Request) error {
	n := req.ContentLength
	if n <= 0 || n > maxBufferedBody || req.Body == nil || req.Body == http.NoBody {
		return nil
	}
	b := make([]byte, n+1)
	got, err := io.ReadFull(req.Body, b)
	if err == nil {
		err = fmt.Errorf("request body longer than its Content-Length %d", n)
	} else if errors.Is(err, io.ErrUnexpectedEOF) && int64(got) == n {
		err = nil
	}
	if err != nil {
		return err
	}
	_ = req.Body.Close()
	mb := &memBody{b: b[:n]}
	mb.r.Reset(mb.b)
	req.Body = mb
	return nil
}

// streamBody keeps a body that bufferBody left on the wire for the
// transport until the handler returns. An HTTP/1 server, on the answer's
// first write, by default reads what is left of the request body and
// closes it; but the transport's write goroutine streams that body while
// the answer is copied, and reads it once more after its last byte (to
// check nothing follows the Content-Length). A replica quick to answer
// (loopback) makes that read fail on the closed body; the transport then
// closes the replica connection under the answer, and the client gets a
// truncated one (unexpected EOF). A replica that answers before reading
// all of the body would even have the rest taken from it. Full duplex
// turns that server behaviour off.
func streamBody(w http.ResponseWriter, req *http.Request) {
	if req.Body == nil || req.Body == http.NoBody {
		return
	}
	if _, ok := req.Body.(*memBody); ok {
		return
	}
	// An error: w cannot (a recorder, a wrapper without Unwrap), and the
	// request is proxied as before. HTTP/2 is full duplex anyway.
	_ = http.NewResponseController(w).EnableFullDuplex()
}

// Update publishes a new routing table.
func (r *Router) Update(t *Table) error {
	if err := t.Validate(); err != nil {
		return err
	}
	ix := newIndex(t)
	backends := map[string]bool{}
	for _, svc := range t.Services {
		for _, c := range svc.Components {
			for i := range c.Targets {
				rev := c.Targets[i].Revision
				ix.revs[&c.Targets[i]] = &revState{stats: r.Stats(svc.Namespace, rev), lim: r.limiter(svc.Namespace, rev)}
				for _, be := range c.Targets[i].Backends {
					backends[be] = true
				}
			}
		}
	}
	r.ix.Store(ix)
	r.hops.keep(backends) // connections to replicas that left
	r.mu.Lock()
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	return nil
}

func (r *Router) changes() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

type backendKey struct{}

// Route is where a request goes.
type Route struct {
	Service   *Service
	Component string
	Target    *Target

	rev *revState // the target's counters, found without a key per request
	// setCookie: tell the client which revision it drew (sticky cookie).
	setCookie bool
}

// revState is what serve needs of a revision, looked up once per Update.
type revState struct {
	stats *RevisionStats
	lim   *limiter
}

// Resolve decides the route of a request without proxying it. component,
// if not empty, forces the component (used by internal component ports).
func (r *Router) Resolve(req *http.Request, component string) (*Route, error) {
	ix := r.ix.Load()
	svc, tag, ok := ix.hostRoute(req.Host)
	model, explain := pathModel(req.URL.Path)
	if !ok {
		if model == "" {
			return nil, fmt.Errorf("%w: no service for host %q; use Host {name}.{namespace}.%s or a /v1/models/{name} or /v2/models/{name} path", ErrNoRoute, req.Host, ix.domain)
		}
		svcs := ix.byName[model]
		switch len(svcs) {
		case 0:
			return nil, fmt.Errorf("%w: no InferenceService named %q", ErrNoRoute, model)
		case 1:
			svc = svcs[0]
		default:
			return nil, fmt.Errorf("%w: %d InferenceServices are named %q; pick one with Host %s.{namespace}.%s", ErrNoRoute, len(svcs), model, model, ix.domain)
		}
	}
	if component == "" {
		switch {
		case explain:
			component = Explainer
		case svc.Components[Transformer] != nil:
			component = Transformer
		default:
			component = Predictor
		}
	}
	c := svc.Components[component]
	if c == nil {
		return nil, fmt.Errorf("%w: %s/%s has no %s", ErrNoRoute, svc.Namespace, svc.Name, component)
	}
	if len(c.Targets) == 0 {
		return nil, fmt.Errorf("%w: %s/%s has no ready %s revision yet (starting, or failing: see ferry describe isvc %s)", ErrNotReady, svc.Namespace, svc.Name, component, svc.Name)
	}
	if tag == "" {
		tag = svc.Affinity.requestTag(req) // affinity.go: tag header, route rules
	}
	var t *Target
	if tag == "" {
		t = svc.Affinity.sticky(req, svc, c)
	}
	if t == nil {
		var err error
		if t, err = pickTarget(c, tag); err != nil {
			return nil, fmt.Errorf("%s/%s %s: %w", svc.Namespace, svc.Name, component, err)
		}
	}
	rt := &Route{Service: svc, Component: component, Target: t, rev: ix.revs[t]}
	if a := svc.Affinity; a != nil && a.Mode == "cookie" && tag == "" && len(c.Targets) > 1 &&
		cookieValue(req, StickyCookie(svc.Namespace, svc.Name)) != t.Revision {
		rt.setCookie = true
	}
	return rt, nil
}

// Errors the router answers with.
var (
	ErrNoRoute   = errors.New("no route")
	ErrNoReplica = errors.New("no ready replica")
	// ErrNotReady: the service exists but has no revision to route to yet.
	ErrNotReady = errors.New("not ready")
)

func pickTarget(c *Component, tag string) (*Target, error) {
	switch tag {
	case "":
	case "latest":
		for i := range c.Targets {
			if c.Targets[i].Latest {
				return &c.Targets[i], nil
			}
		}
		return nil, fmt.Errorf("%w: no latest revision", ErrNoRoute)
	default:
		for i := range c.Targets {
			if c.Targets[i].Tag == tag {
				return &c.Targets[i], nil
			}
		}
		return nil, fmt.Errorf("%w: no revision tagged %q", ErrNoRoute, tag)
	}
	if len(c.Targets) == 1 { // percents sum to 100: no draw needed
		return &c.Targets[0], nil
	}
	return byBucket(c, rand.IntN(100)), nil
}

// ServeHTTP routes and proxies one request.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.serve(w, req, "")
}

// ComponentHandler routes by model path straight to one component of a
// service, skipping the transformer: a transformer's predictor_host points
// here so its calls do not loop back into itself.
func (r *Router) ComponentHandler(component string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.serve(w, req, component)
	})
}

// repositoryRefusal answers repository calls (load, unload, index) at the
// ingress: a client must not unload a model the control plane believes is
// serving.
const repositoryRefusal = "the model repository API (index, load, unload) is not served through the ingress: " +
	"models are managed by the control plane (ferry apply / ferry delete of InferenceServices and TrainedModels)"

func (r *Router) serve(w http.ResponseWriter, req *http.Request, component string) {
	if component == "" && r.serveGraph(w, req) {
		return
	}
	if component == "" && r.serveFeedback(w, req) { // feedback.go: fanned out to every replica
		return
	}
	if component == "" && r.serveQuality(w, req) { // quality.go: merged over the replicas
		return
	}
	if strings.HasPrefix(req.URL.Path, "/v2/repository") {
		writeError(w, http.StatusForbidden, errors.New(repositoryRefusal))
		return
	}
	rt, err := r.Resolve(req, component)
	if errors.Is(err, ErrNotReady) {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	if err != nil {
		writeError(w, http.StatusNotFound, err)
		return
	}
	st := r.revState(rt).stats
	st.Requests.Add(1)
	st.InFlight.Add(1)
	defer st.InFlight.Add(-1)
	rec := st.Latency.track(w)
	defer rec.observe()
	w = rec
	if len(rt.Target.Backends) == 0 {
		if rt, err = r.awaitReplica(req, component, rt); err != nil {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, err)
			return
		}
	}
	if t := rt.Target; t.Concurrency > 0 {
		lim := r.revState(rt).lim // rt may be another target after awaitReplica
		capacity := t.Concurrency * len(t.Backends)
		// A queue of ten requests per slot, as Knative's queue-proxy keeps.
		if err := lim.acquire(req.Context(), capacity, 10*capacity); err != nil {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, fmt.Errorf("revision %s of %s/%s: %w (containerConcurrency %d × %d replicas)", t.Revision, rt.Service.Namespace, rt.Service.Name, err, t.Concurrency, len(t.Backends)))
			return
		}
		defer lim.release()
	}
	be := rt.Target.Backends[int(r.rr.Add(1)%uint64(len(rt.Target.Backends)))]
	if to := rt.Service.Components[rt.Component].Timeout; to > 0 {
		ctx, cancel := context.WithTimeout(req.Context(), to)
		defer cancel()
		req = req.WithContext(ctx)
	}
	w.Header().Set(HeaderRevision, rt.Target.Revision)
	if rt.setCookie {
		http.SetCookie(w, &http.Cookie{Name: StickyCookie(rt.Service.Namespace, rt.Service.Name), Value: rt.Target.Revision,
			Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	}
	mw := rt.Service.Components[rt.Component].Middleware
	if h := r.localHandler(be); h != nil && mw == nil {
		h.ServeHTTP(w, req) // an in-process replica: no hop, so nothing to buffer
		return
	}
	if err := bufferBody(req); err != nil {
		r.proxyError(w, req, err)
		return
	}
	streamBody(w, req)
	if mw != nil {
		mw(r.hop).ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), backendKey{}, be)))
		return
	}
	if !r.forward(w, req, be) {
		r.proxy.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), backendKey{}, be)))
	}
}

// serveHop sends a request to the replica its context names: to its
// handler when it runs in this process, else by the hop when it can take
// the request and by the ReverseProxy otherwise.
func (r *Router) serveHop(w http.ResponseWriter, req *http.Request) {
	be := req.Context().Value(backendKey{}).(string)
	if h := r.localHandler(be); h != nil {
		h.ServeHTTP(w, req)
		return
	}
	if !r.forward(w, req, be) {
		r.proxy.ServeHTTP(w, req)
	}
}

// revState returns the counters and limiter of a route's target.
func (r *Router) revState(rt *Route) *revState {
	if rt.rev != nil {
		return rt.rev
	}
	ns, rev := rt.Service.Namespace, rt.Target.Revision
	return &revState{stats: r.Stats(ns, rev), lim: r.limiter(ns, rev)}
}

// awaitReplica holds a request for a revision without ready replicas (the
// activator): it asks for a replica and waits for a routing update that
// gives the request somewhere to go.
func (r *Router) awaitReplica(req *http.Request, component string, rt *Route) (*Route, error) {
	noReplica := fmt.Errorf("%w: revision %s of %s/%s has no ready replica yet", ErrNoReplica, rt.Target.Revision, rt.Service.Namespace, rt.Service.Name)
	if r.activate == nil {
		return nil, noReplica
	}
	r.waiting.Add(1)
	defer r.waiting.Add(-1)
	timeout := time.NewTimer(r.activateTimeout)
	defer timeout.Stop()
	for {
		changed := r.changes()
		r.activate(rt.Service.Namespace, rt.Target.Revision)
		select {
		case <-changed:
		case <-timeout.C:
			return nil, fmt.Errorf("%w (waited %s for one to start)", noReplica, r.activateTimeout)
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
		next, err := r.Resolve(req, component)
		if err != nil {
			return nil, err
		}
		if len(next.Target.Backends) > 0 {
			return next, nil
		}
		rt = next
	}
}

func (r *Router) proxyError(w http.ResponseWriter, req *http.Request, err error) {
	code := http.StatusBadGateway
	if errors.Is(err, context.DeadlineExceeded) {
		code = http.StatusGatewayTimeout
		err = fmt.Errorf("component timeout exceeded: %w", err)
	}
	if errors.Is(req.Context().Err(), context.Canceled) {
		return // the client went away
	}
	r.log.Warn("proxy error", "host", req.Host, "path", req.URL.Path, "err", err)
	writeError(w, code, err)
}

func writeError(w http.ResponseWriter, code int, err error) {
	b, _ := json.Marshal(map[string]string{"error": err.Error()})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}
