package router

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// GraphPathPrefix is where InferenceGraphs answer by path:
// /graphs/{namespace}/{name}[/anything].
const GraphPathPrefix = "/graphs/"

// graphTable maps "namespace/name" to a graph's handler.
type graphTable map[string]http.Handler

// SetGraphs publishes the InferenceGraphs the ingress answers, by
// "namespace/name". A graph answers on Host {name}.{namespace}.{domain}
// (unless an InferenceService has that name and namespace: services keep
// their host) and on /graphs/{namespace}/{name}, any method and path
// beyond, as KServe's graph router answers any path.
func (r *Router) SetGraphs(graphs map[string]http.Handler) {
	t := make(graphTable, len(graphs))
	for k, h := range graphs {
		t[k] = h
	}
	r.graphs.Store(&t)
}

// serveGraph answers req when it is for a graph, and reports whether it
// did.
func (r *Router) serveGraph(w http.ResponseWriter, req *http.Request) bool {
	var graphs graphTable
	if p := r.graphs.Load(); p != nil {
		graphs = *p
	}
	if rest, ok := strings.CutPrefix(req.URL.Path, GraphPathPrefix); ok {
		ns, rest, _ := strings.Cut(rest, "/")
		name, _, _ := strings.Cut(rest, "/")
		h := graphs[ns+"/"+name]
		if h == nil {
			writeError(w, http.StatusNotFound, fmt.Errorf("%w: no InferenceGraph %s/%s (paths are %s{namespace}/{name})", ErrNoRoute, ns, name, GraphPathPrefix))
			return true
		}
		h.ServeHTTP(w, req)
		return true
	}
	if len(graphs) == 0 {
		return false
	}
	ix := r.ix.Load()
	if _, _, isService := ix.hostRoute(req.Host); isService {
		return false
	}
	name, ns, ok := ix.hostParts(req.Host)
	if !ok {
		return false
	}
	h := graphs[ns+"/"+name]
	if h == nil {
		return false
	}
	h.ServeHTTP(w, req)
	return true
}

// hostParts parses "{name}.{namespace}.{domain}[:port]".
func (ix *index) hostParts(host string) (name, ns string, ok bool) {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	rest, found := strings.CutSuffix(strings.ToLower(host), "."+ix.domain)
	if !found {
		return "", "", false
	}
	name, ns, found = strings.Cut(rest, ".")
	if !found || strings.Contains(ns, ".") {
		return "", "", false
	}
	return name, ns, true
}

// ErrBodyTooLarge is a step's answer over the in-process call's limit.
var ErrBodyTooLarge = errors.New("answer too large")

// Call sends a request to an InferenceService through this router,
// in-process, as a client on the ingress would (Host
// {service}.{namespace}.{domain}): traffic splits, the activator,
// concurrency limits and request loggers all apply. It implements
// graph.Caller. The answer is bounded by maxBody bytes (0: 32 MiB).
func (r *Router) Call(ctx context.Context, namespace, service, path string, body []byte, hdr http.Header) (int, []byte, error) {
	return r.call(ctx, namespace, service, path, body, hdr, 0)
}

func (r *Router) call(ctx context.Context, namespace, service, path string, body []byte, hdr http.Header, maxBody int) (int, []byte, error) {
	if maxBody <= 0 {
		maxBody = 32 << 20
	}
	host := service + "." + namespace + "." + r.ix.Load().domain
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+host+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("call %s%s: %w", host, path, err)
	}
	req.Host = host
	req.RemoteAddr = "127.0.0.1:0" // the graph, inside the ingress
	for k, v := range hdr {
		req.Header[k] = v
	}
	w := &bufferWriter{header: http.Header{}, limit: maxBody}
	r.serve(w, req, "")
	if w.over {
		return 0, nil, fmt.Errorf("call %s%s: %w (over %d bytes)", host, path, ErrBodyTooLarge, maxBody)
	}
	if err := ctx.Err(); err != nil {
		return 0, nil, fmt.Errorf("call %s%s: %w", host, path, err)
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.status, w.buf.Bytes(), nil
}

// bufferWriter collects an in-process answer up to a limit.
type bufferWriter struct {
	header http.Header
	status int
	buf    bytes.Buffer
	limit  int
	over   bool
}

func (b *bufferWriter) Header() http.Header { return b.header }

func (b *bufferWriter) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

func (b *bufferWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	if b.buf.Len()+len(p) > b.limit {
		b.over = true
		return 0, ErrBodyTooLarge
	}
	return b.buf.Write(p)
}
