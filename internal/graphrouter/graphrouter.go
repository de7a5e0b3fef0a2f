// Package graphrouter runs one InferenceGraph as its own HTTP server, the
// process KServe calls the router and the operator deploys per graph
// (`ferry router`): the graph is compiled and executed by internal/graph,
// and each step's service is called over HTTP at its cluster address. It
// owns how a step reaches a service outside the process (URLs, the HTTP
// client, its timeouts and body limit) and the server's readiness
// endpoint; the request semantics stay with internal/graph.
package graphrouter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/graph"
)

// ReadyPath answers 200 once the server listens with a compiled graph: the
// pod's readiness probe, as KServe's router serves it.
const ReadyPath = "/readyz"

// DefaultClusterDomain is the suffix of a Service's cluster-local host.
const DefaultClusterDomain = "svc.cluster.local"

// DefaultStepTimeout bounds a step's call when the graph sets no
// routerTimeouts.serviceClient, so that a service that never answers does
// not hold a request (and its goroutines) for ever.
const DefaultStepTimeout = 60 * time.Second

// Config configures a Server.
type Config struct {
	// Graph is the graph to serve; New validates it.
	Graph *api.InferenceGraph
	// ServiceURLs maps a step's serviceName to the URL it is called at
	// (scheme, host and path), as the operator resolves it from the
	// InferenceService's protocol. A name not in the map is called at
	// DefaultServiceURL.
	ServiceURLs map[string]string
	// ClusterDomain is the suffix of cluster-local hosts
	// (DefaultClusterDomain when empty).
	ClusterDomain string
	// Addr is where the server listens (host:port).
	Addr string
	// MaxBodyBytes bounds the request and each step's answer
	// (graph.DefaultMaxBodyBytes when 0).
	MaxBodyBytes int64
	// StepTimeout bounds a step's call when the graph sets no
	// serviceClient timeout (DefaultStepTimeout when 0, none when < 0).
	StepTimeout time.Duration
	// Transport sends the steps' requests (a clone of
	// http.DefaultTransport when nil).
	Transport http.RoundTripper
	Logger    *slog.Logger
}

// DefaultServiceURL is where a step naming service in namespace ns is
// called when the operator gave no URL: the predictor's Service, as KServe
// names it in raw deployment mode, on the V1 predict path.
func DefaultServiceURL(service, ns, clusterDomain string) string {
	if clusterDomain == "" {
		clusterDomain = DefaultClusterDomain
	}
	return "http://" + service + "-predictor." + ns + "." + clusterDomain + "/v1/models/" + service + ":predict"
}

// ParseGraph reads the --graph-json document: a whole InferenceGraph
// object, or (as KServe's router is given) only its spec, which then takes
// name and namespace. The graph is defaulted and validated.
func ParseGraph(doc []byte, name, namespace string) (*api.InferenceGraph, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(doc, &probe); err != nil {
		return nil, fmt.Errorf("graph json: %w", err)
	}
	ig := &api.InferenceGraph{}
	dec := func(v any) error {
		d := json.NewDecoder(bytes.NewReader(doc))
		d.DisallowUnknownFields()
		return d.Decode(v)
	}
	if _, whole := probe["spec"]; whole {
		if err := dec(ig); err != nil {
			return nil, fmt.Errorf("graph json: %w", err)
		}
	} else if err := dec(&ig.Spec); err != nil {
		return nil, fmt.Errorf("graph json: %w", err)
	}
	if ig.APIVersion == "" {
		ig.APIVersion, ig.Kind = api.GroupKServe+"/"+api.VersionInferenceGraph, api.KindInferenceGraph
	}
	if ig.Metadata.Name == "" {
		ig.Metadata.Name = name
	}
	if ig.Metadata.Namespace == "" {
		ig.Metadata.Namespace = namespace
	}
	if ig.Metadata.Name == "" {
		return nil, errors.New("graph json: no metadata.name (give the graph's name with --name when the JSON is only its spec)")
	}
	ig.Default()
	if err := ig.Validate(); err != nil {
		return nil, err
	}
	return ig, nil
}

// Resolver maps a step to the URL it calls: its serviceUrl as written, or
// for a serviceName the URL in urls, else DefaultServiceURL. The Target's
// Service is the URL's scheme and host and its Path the rest (path and
// query), which is how Caller reads it.
func Resolver(ns, clusterDomain string, urls map[string]string) graph.Resolver {
	return func(s api.InferenceStep) (graph.Target, error) {
		raw := s.ServiceURL
		if s.ServiceName != "" {
			raw = urls[s.ServiceName]
			if raw == "" {
				raw = DefaultServiceURL(s.ServiceName, ns, clusterDomain)
			}
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return graph.Target{}, fmt.Errorf("%q is not an absolute http(s) URL", raw)
		}
		path := u.EscapedPath()
		if path == "" {
			path = "/"
		}
		if u.RawQuery != "" {
			path += "?" + u.RawQuery
		}
		return graph.Target{Namespace: ns, Service: u.Scheme + "://" + u.Host, Path: path}, nil
	}
}

// Caller calls services over HTTP: service is a base URL (scheme://host)
// and path its path, as Resolver builds them. It implements graph.Caller.
type Caller struct {
	Client *http.Client
	// MaxBodyBytes bounds an answer (graph.DefaultMaxBodyBytes when 0).
	MaxBodyBytes int64
	// Timeout bounds a call whose ctx has no deadline (none when 0).
	Timeout time.Duration
}

var _ graph.Caller = (*Caller)(nil)

// ErrAnswerTooLarge is an answer over the Caller's limit.
var ErrAnswerTooLarge = errors.New("answer too large")

// Call implements graph.Caller.
func (c *Caller) Call(ctx context.Context, _, service, path string, body []byte, hdr http.Header) (int, []byte, error) {
	if _, ok := ctx.Deadline(); !ok && c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	target := service + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("call %s: %w", target, err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("call %s: %w", target, err)
	}
	defer resp.Body.Close()
	limit := c.MaxBodyBytes
	if limit <= 0 {
		limit = graph.DefaultMaxBodyBytes
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return 0, nil, fmt.Errorf("call %s: read answer: %w", target, err)
	}
	if int64(len(b)) > limit {
		return 0, nil, fmt.Errorf("call %s: %w (over %d bytes)", target, ErrAnswerTooLarge, limit)
	}
	return resp.StatusCode, b, nil
}

// Server serves one graph: POST on any path runs it, GET ReadyPath (and
// /healthz) answers 200.
type Server struct {
	cfg     Config
	handler http.Handler
	// listener timeouts from spec.routerTimeouts (0: none).
	read, write, idle time.Duration
}

// New compiles cfg.Graph; a graph that cannot run is an error here, so the
// pod never becomes ready instead of failing every request.
func New(cfg Config) (*Server, error) {
	if cfg.Graph == nil {
		return nil, errors.New("graphrouter: no graph")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = graph.DefaultMaxBodyBytes
	}
	if cfg.StepTimeout == 0 {
		cfg.StepTimeout = DefaultStepTimeout
	}
	if err := cfg.Graph.Validate(); err != nil {
		return nil, err
	}
	ig := cfg.Graph
	g, err := graph.Compile(ig, Resolver(ig.Metadata.Namespace, cfg.ClusterDomain, cfg.ServiceURLs))
	if err != nil {
		return nil, fmt.Errorf("graph %s/%s: %w", ig.Metadata.Namespace, ig.Metadata.Name, err)
	}
	tr := cfg.Transport
	if tr == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// A graph calls few hosts, many times at once: keep as many idle
		// connections to each as Go keeps in all (the default 2 per host
		// would open and close one per request under load).
		t.MaxIdleConnsPerHost = t.MaxIdleConns
		tr = t
	}
	caller := &Caller{Client: &http.Client{Transport: tr}, MaxBodyBytes: cfg.MaxBodyBytes, Timeout: max(cfg.StepTimeout, 0)}
	exec := graph.NewExecutor(graph.Config{Caller: caller, MaxBodyBytes: cfg.MaxBodyBytes, Logger: cfg.Logger})
	s := &Server{cfg: cfg}
	if rt := ig.Spec.RouterTimeouts; rt != nil {
		s.read, s.write, s.idle = seconds(rt.ServerRead), seconds(rt.ServerWrite), seconds(rt.ServerIdle)
	}
	gh := exec.Handler(g)
	ready := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ready":true}`)
	}
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			switch r.URL.Path {
			case ReadyPath, "/healthz":
				ready(w, r)
				return
			}
		}
		gh.ServeHTTP(w, r)
	})
	return s, nil
}

func seconds(v *int64) time.Duration {
	if v == nil || *v <= 0 {
		return 0
	}
	return time.Duration(*v) * time.Second
}

// Handler is the server's HTTP handler (what Run serves).
func (s *Server) Handler() http.Handler { return s.handler }

// Run listens on cfg.Addr and serves until ctx is done, then drains the
// requests in flight (up to 30 s) and returns.
func (s *Server) Run(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("graphrouter: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on a listener it closes.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: s.read, WriteTimeout: s.write, IdleTimeout: s.idle}
	ig := s.cfg.Graph
	s.cfg.Logger.Info("ferry router", "graph", ig.Metadata.Namespace+"/"+ig.Metadata.Name, "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }() // owned: joined below
	select {
	case err := <-errc:
		return fmt.Errorf("graphrouter: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// ParseServiceURLs reads --service-url values, "name=URL" each.
func ParseServiceURLs(vals []string) (map[string]string, error) {
	out := make(map[string]string, len(vals))
	for _, v := range vals {
		name, u, ok := strings.Cut(v, "=")
		if !ok || name == "" || u == "" {
			return nil, fmt.Errorf("--service-url %q: want NAME=URL", v)
		}
		out[name] = u
	}
	return out, nil
}
