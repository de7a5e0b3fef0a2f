package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"

	"github.com/ferryserve/ferry/internal/api"
)

// DefaultMaxBodyBytes bounds a graph's request and every step's answer.
const DefaultMaxBodyBytes = 32 << 20

// Config configures an Executor.
type Config struct {
	Caller Caller
	// MaxBodyBytes bounds the request and each step's answer (default
	// DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// IntN returns a uniform integer in [0, n) for Splitter picks; it must
	// be safe for concurrent use (default math/rand/v2's IntN). Tests
	// give a seeded source.
	IntN   func(n int) int
	Logger *slog.Logger
}

// Executor runs graphs. It holds no per-request state and is safe for
// concurrent use.
type Executor struct {
	cfg Config
}

// NewExecutor returns an Executor.
func NewExecutor(cfg Config) *Executor {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.IntN == nil {
		cfg.IntN = rand.IntN
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Executor{cfg: cfg}
}

// Response is a graph's answer.
type Response struct {
	Status int
	Body   []byte
}

// StepError is a step whose failure fails the graph: it answered non-2xx
// (Status, Body) or not at all (Err). Its message names the graph, node and
// step.
type StepError struct {
	Graph  string // namespace/name
	Node   string
	Step   string
	Target string // "service x", "node y", "url z"
	Status int    // the step's status, or 0 when it gave no answer
	Body   []byte
	Err    error
}

func (e *StepError) Error() string {
	what := ""
	switch {
	case e.Err != nil:
		what = e.Err.Error()
	default:
		what = fmt.Sprintf("answered %d", e.Status)
		if msg := errorMessage(e.Body); msg != "" {
			what += ": " + msg
		}
	}
	return fmt.Sprintf("inference graph %s: node %q step %q (%s) failed: %s", e.Graph, e.Node, e.Step, e.Target, what)
}

func (e *StepError) Unwrap() error { return e.Err }

// HTTPStatus is what the graph answers for this failure: the step's own
// 4xx/5xx, 504 when it timed out, else 502.
func (e *StepError) HTTPStatus() int {
	switch {
	case e.Status >= 400:
		return e.Status
	case errors.Is(e.Err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

// NoMatchError is a Switch (or a Sequence's first conditional step) whose
// conditions all failed: KServe's router answers 404.
type NoMatchError struct {
	Graph, Node string
}

func (e *NoMatchError) Error() string {
	return fmt.Sprintf("inference graph %s: node %q: no step's condition matched the input", e.Graph, e.Node)
}

// errorMessage extracts {"error": "..."} from a body, or a short prefix of
// a non-JSON one.
func errorMessage(b []byte) string {
	var eb struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &eb) == nil && eb.Error != "" {
		return eb.Error
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// Run executes g for one request. The error is a *StepError, a
// *NoMatchError, or ctx's error.
func (e *Executor) Run(ctx context.Context, g *Graph, body []byte, hdr http.Header) (Response, error) {
	if g.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.timeout)
		defer cancel()
	}
	return e.runNode(ctx, g, g.nodes[api.GraphRootNode], body, stepHeaders(hdr), 0)
}

// stepHeaders keeps what a step should see of the client's headers: not
// the hop-by-hop ones, nor the framing that belongs to the graph's request.
func stepHeaders(in http.Header) http.Header {
	out := make(http.Header, len(in)+1)
	for k, v := range in {
		switch http.CanonicalHeaderKey(k) {
		case "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Te", "Trailer",
			"Content-Length", "Accept-Encoding", "Host", "Expect":
			continue
		}
		out[k] = v
	}
	if out.Get("Content-Type") == "" {
		out.Set("Content-Type", "application/json")
	}
	return out
}

func (e *Executor) runNode(ctx context.Context, g *Graph, n *node, in []byte, hdr http.Header, depth int) (Response, error) {
	if depth > len(g.nodes) { // compile refuses cycles; this is the last guard
		return Response{}, fmt.Errorf("inference graph %s/%s: node %q nested too deeply", g.Namespace, g.Name, n.name)
	}
	switch n.typ {
	case api.RouterSequence:
		return e.sequence(ctx, g, n, in, hdr, depth)
	case api.RouterSwitch:
		for i := range n.steps {
			if s := &n.steps[i]; s.cond != nil && s.cond.Match(in) {
				return e.single(ctx, g, n, s, in, hdr, depth)
			}
		}
		return Response{}, &NoMatchError{Graph: g.Namespace + "/" + g.Name, Node: n.name}
	case api.RouterSplitter:
		pick := e.cfg.IntN(n.total)
		for i := range n.steps {
			if pick -= n.steps[i].weight; pick < 0 {
				return e.single(ctx, g, n, &n.steps[i], in, hdr, depth)
			}
		}
		return e.single(ctx, g, n, &n.steps[len(n.steps)-1], in, hdr, depth)
	case api.RouterEnsemble:
		return e.ensemble(ctx, g, n, in, hdr, depth)
	}
	return Response{}, fmt.Errorf("inference graph %s/%s: node %q has unknown router type %q", g.Namespace, g.Name, n.name, n.typ)
}

// single runs the one step a Switch or Splitter picked: its answer is the
// node's, and a failure fails the graph unless the step is Soft.
func (e *Executor) single(ctx context.Context, g *Graph, n *node, s *step, in []byte, hdr http.Header, depth int) (Response, error) {
	res, err := e.runStep(ctx, g, n, s, prepare(s, in), hdr, depth)
	if err != nil {
		return Response{}, err
	}
	if !ok2xx(res.Status) && s.hard {
		return Response{}, e.stepError(g, n, s, res, nil)
	}
	return res, nil
}

func (e *Executor) sequence(ctx context.Context, g *Graph, n *node, in []byte, hdr http.Header, depth int) (Response, error) {
	var prev *Response
	for i := range n.steps {
		s := &n.steps[i]
		if s.cond != nil {
			// KServe tests a Sequence step's condition on the previous
			// response and, when it fails, ends the node with that
			// response. Before any step ran, Ferry tests the request.
			doc := in
			if prev != nil {
				doc = prev.Body
			}
			if !s.cond.Match(doc) {
				if prev == nil {
					return Response{}, &NoMatchError{Graph: g.Namespace + "/" + g.Name, Node: n.name}
				}
				return *prev, nil
			}
		}
		input := in
		if s.useResp && prev != nil {
			input = prev.Body
		}
		res, err := e.runStep(ctx, g, n, s, prepare(s, input), hdr, depth)
		var se *StepError
		switch {
		case err != nil && !s.hard && errors.As(err, &se):
			// A soft step that got no answer: the next one sees an error body.
			res = Response{Status: se.HTTPStatus(), Body: errorBody(se)}
		case err != nil:
			return Response{}, err
		case !ok2xx(res.Status) && s.hard:
			return Response{}, e.stepError(g, n, s, res, nil)
		}
		prev = &res
	}
	return *prev, nil
}

// ensemble runs every step at once (one goroutine per step, all joined
// before it returns) and merges the answers into one object keyed by step
// name (or index). The first failed Hard step, in step order, fails it.
func (e *Executor) ensemble(ctx context.Context, g *Graph, n *node, in []byte, hdr http.Header, depth int) (Response, error) {
	type result struct {
		res Response
		err error
	}
	results := make([]result, len(n.steps))
	var wg sync.WaitGroup
	for i := range n.steps {
		wg.Add(1)
		go func() { // owned: joined by wg.Wait below
			defer wg.Done()
			s := &n.steps[i]
			r, err := e.runStep(ctx, g, n, s, prepare(s, in), hdr, depth)
			results[i] = result{r, err}
		}()
	}
	wg.Wait()
	merged := make(map[string]json.RawMessage, len(n.steps))
	for i, r := range results {
		s := &n.steps[i]
		var se *StepError
		switch {
		case r.err != nil && (s.hard || !errors.As(r.err, &se)):
			return Response{}, r.err
		case r.err != nil:
			merged[s.key] = errorBody(se)
		case !ok2xx(r.res.Status) && s.hard:
			return Response{}, e.stepError(g, n, s, r.res, nil)
		case json.Valid(r.res.Body):
			merged[s.key] = r.res.Body
		default:
			b, _ := json.Marshal(string(r.res.Body))
			merged[s.key] = b
		}
	}
	b, err := json.Marshal(merged)
	if err != nil {
		return Response{}, fmt.Errorf("inference graph %s/%s: node %q: merge answers: %w", g.Namespace, g.Name, n.name, err)
	}
	return Response{Status: http.StatusOK, Body: b}, nil
}

// runStep calls a step's service or runs its node. A service that gives
// no answer is a *StepError; an answer of any status is returned as is.
func (e *Executor) runStep(ctx context.Context, g *Graph, n *node, s *step, in []byte, hdr http.Header, depth int) (Response, error) {
	if s.node != "" {
		return e.runNode(ctx, g, g.nodes[s.node], in, hdr, depth+1)
	}
	if g.stepTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.stepTimeout)
		defer cancel()
	}
	t := s.target
	status, body, err := e.cfg.Caller.Call(ctx, t.Namespace, t.Service, t.Path, in, hdr)
	if err == nil && int64(len(body)) > e.cfg.MaxBodyBytes {
		err = fmt.Errorf("answer of %d bytes exceeds the %d-byte limit", len(body), e.cfg.MaxBodyBytes)
	}
	if err != nil {
		return Response{}, e.stepError(g, n, s, Response{}, err)
	}
	e.cfg.Logger.Debug("graph step", "graph", g.Namespace+"/"+g.Name, "node", n.name, "step", s.label, "status", status)
	return Response{Status: status, Body: body}, nil
}

func (e *Executor) stepError(g *Graph, n *node, s *step, res Response, err error) *StepError {
	return &StepError{Graph: g.Namespace + "/" + g.Name, Node: n.name, Step: s.label, Target: s.targetMsg,
		Status: res.Status, Body: res.Body, Err: err}
}

func errorBody(err error) []byte {
	b, _ := json.Marshal(map[string]string{"error": err.Error()})
	return b
}

func ok2xx(status int) bool { return status >= 200 && status <= 299 }

// prepare applies mapPredictionsToInstances: a V1 answer's "predictions"
// become the next request's "instances" (other fields are kept).
func prepare(s *step, in []byte) []byte {
	if !s.mapPreds {
		return in
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(in, &m) != nil {
		return in
	}
	p, ok := m["predictions"]
	if !ok || bytes.Equal(bytes.TrimSpace(p), []byte("null")) {
		return in
	}
	delete(m, "predictions")
	m["instances"] = p
	out, err := json.Marshal(m)
	if err != nil {
		return in
	}
	return out
}

// Handler serves g: any path, POST only, the body bounded by MaxBodyBytes.
// Successes are the graph's answer as is; failures are
// {"error": "...", "node": ..., "step": ...} with the failing step's status
// (or 502/504), or 404 when no Switch condition matched.
func (e *Executor) Handler(g *Graph) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "an inference graph answers POST only"})
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, e.cfg.MaxBodyBytes))
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": fmt.Sprintf("request body exceeds %d bytes", tooBig.Limit)})
			return
		case err != nil:
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "read request body: " + err.Error()})
			return
		}
		res, err := e.Run(r.Context(), g, body, r.Header)
		if err != nil {
			e.writeFailure(w, r, err)
			return
		}
		if json.Valid(res.Body) {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(res.Status)
		_, _ = w.Write(res.Body)
	})
}

func (e *Executor) writeFailure(w http.ResponseWriter, r *http.Request, err error) {
	var (
		se *StepError
		nm *NoMatchError
	)
	switch {
	case errors.As(err, &se):
		writeJSON(w, se.HTTPStatus(), map[string]string{"error": se.Error(), "node": se.Node, "step": se.Step})
	case errors.As(err, &nm):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": nm.Error(), "node": nm.Node})
	case r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
	default:
		e.cfg.Logger.Warn("inference graph failed", "err", err)
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}
