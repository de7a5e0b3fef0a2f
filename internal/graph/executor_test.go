package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/ferryserve/ferry/internal/api"
)

// fakeCaller answers per service: by default it echoes the request wrapped
// as {"from": service, "got": request}; status overrides the code.
type fakeCaller struct {
	mu     sync.Mutex
	calls  []string // service names in call order
	status map[string]int
	fail   map[string]error
	paths  map[string]string
	hdr    map[string]http.Header
}

func (f *fakeCaller) Call(ctx context.Context, ns, service, path string, body []byte, hdr http.Header) (int, []byte, error) {
	f.mu.Lock()
	f.calls = append(f.calls, service)
	if f.paths == nil {
		f.paths, f.hdr = map[string]string{}, map[string]http.Header{}
	}
	f.paths[service], f.hdr[service] = path, hdr.Clone()
	st, err := f.status[service], f.fail[service]
	f.mu.Unlock()
	if err != nil {
		return 0, nil, err
	}
	if st == 0 {
		st = 200
	}
	if st >= 400 {
		return st, []byte(fmt.Sprintf(`{"error":"%s broke"}`, service)), nil
	}
	out, _ := json.Marshal(map[string]any{"from": service, "got": json.RawMessage(body), "predictions": []int{1}})
	return st, out, nil
}

func resolver(ns string) Resolver {
	return func(s api.InferenceStep) (Target, error) {
		if s.ServiceName == "missing" {
			return Target{}, fmt.Errorf("%w: %s", ErrServiceNotFound, s.ServiceName)
		}
		return Target{Namespace: ns, Service: s.ServiceName, Path: "/v1/models/" + s.ServiceName + ":predict"}, nil
	}
}

func load(t *testing.T, yaml string) *api.InferenceGraph {
	t.Helper()
	objs, err := api.Load([]byte("apiVersion: serving.kserve.io/v1alpha1\nkind: InferenceGraph\nmetadata: {name: g}\n" + yaml))
	if err != nil {
		t.Fatal(err)
	}
	return objs[0].(*api.InferenceGraph)
}

func compile(t *testing.T, yaml string) *Graph {
	t.Helper()
	g, err := Compile(load(t, yaml), resolver("default"))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func run(t *testing.T, f *fakeCaller, g *Graph, body string) (Response, error) {
	t.Helper()
	e := NewExecutor(Config{Caller: f})
	return e.Run(t.Context(), g, []byte(body), http.Header{"X-Trace": {"t1"}, "Content-Length": {"9"}})
}

func field(t *testing.T, b []byte, path string) string {
	t.Helper()
	v, ok := decodeJSON(b)
	if !ok {
		t.Fatalf("not JSON: %s", b)
	}
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return "<none>"
		}
		v = m[k]
	}
	out, _ := json.Marshal(v)
	return string(out)
}

func TestSequenceRequestAndResponse(t *testing.T) {
	g := compile(t, `spec:
  nodes:
    root:
      routerType: Sequence
      steps:
        - serviceName: a
        - serviceName: b
          data: $response
        - serviceName: c
          data: $request
        - serviceName: d
          data: $response
          mapPredictionsToInstances: true
`)
	f := &fakeCaller{}
	res, err := run(t, f, g, `{"instances":[[1,2]]}`)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.calls, ","); got != "a,b,c,d" {
		t.Fatalf("calls %s", got)
	}
	// d got c's answer with predictions renamed; c got the original request.
	if got := field(t, res.Body, "got.from"); got != `"c"` {
		t.Errorf("d's input came from %s, want c", got)
	}
	if got := field(t, res.Body, "got.instances"); got != `[1]` {
		t.Errorf("mapPredictionsToInstances: instances %s", got)
	}
	if got := field(t, res.Body, "got.got"); got != `{"instances":[[1,2]]}` {
		t.Errorf("c's input %s, want the request", got)
	}
	if f.paths["a"] != "/v1/models/a:predict" {
		t.Errorf("path %q", f.paths["a"])
	}
	if h := f.hdr["b"]; h.Get("X-Trace") != "t1" || h.Get("Content-Length") != "" || h.Get("Content-Type") != "application/json" {
		t.Errorf("step headers %v", h)
	}
}

func TestSequenceHardAndSoft(t *testing.T) {
	const spec = `spec:
  nodes:
    root:
      routerType: Sequence
      steps:
        - serviceName: a
        - serviceName: b
          name: second
          data: $response
%s
        - serviceName: c
          data: $response
`
	f := &fakeCaller{status: map[string]int{"b": 503}}
	_, err := run(t, f, compile(t, fmt.Sprintf(spec, "")), `{}`)
	var se *StepError
	if !errors.As(err, &se) {
		t.Fatalf("err %v, want a StepError", err)
	}
	if se.Node != "root" || se.Step != "second" || se.HTTPStatus() != 503 || !strings.Contains(se.Error(), `step "second" (service b) failed: answered 503: b broke`) {
		t.Errorf("error %v (status %d)", se, se.HTTPStatus())
	}
	if got := strings.Join(f.calls, ","); got != "a,b" {
		t.Errorf("a Hard (default) failure went on: calls %s", got)
	}

	f = &fakeCaller{status: map[string]int{"b": 400}}
	res, err := run(t, f, compile(t, fmt.Sprintf(spec, "          dependency: Soft")), `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.calls, ","); got != "a,b,c" {
		t.Errorf("a Soft failure stopped: calls %s", got)
	}
	if got := field(t, res.Body, "got.error"); got != `"b broke"` {
		t.Errorf("c got %s, want b's error", got)
	}

	f = &fakeCaller{fail: map[string]error{"b": context.DeadlineExceeded}}
	_, err = run(t, f, compile(t, fmt.Sprintf(spec, "")), `{}`)
	if !errors.As(err, &se) || se.HTTPStatus() != http.StatusGatewayTimeout || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("timeout: %v", err)
	}
}

func TestSequenceCondition(t *testing.T) {
	g := compile(t, `spec:
  nodes:
    root:
      routerType: Sequence
      steps:
        - serviceName: a
        - serviceName: b
          data: $response
          condition: "from"
        - serviceName: c
          data: $response
          condition: "predictions.#(==9)"
`)
	f := &fakeCaller{}
	res, err := run(t, f, g, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	// c's condition does not hold on b's answer: the node ends with it.
	if got := strings.Join(f.calls, ","); got != "a,b" {
		t.Errorf("calls %s", got)
	}
	if got := field(t, res.Body, "from"); got != `"b"` {
		t.Errorf("answer from %s, want b", got)
	}
}

func TestSwitch(t *testing.T) {
	g := compile(t, `spec:
  nodes:
    root:
      routerType: Switch
      steps:
        - serviceName: one
          condition: "[@this].#(source==client)"
        - serviceName: two
          condition: "instances.#(intval>10)"
        - serviceName: three
          condition: "instances.#(strval%*red-server*)"
`)
	for body, want := range map[string]string{
		`{"source":"client","instances":[{"intval":50}]}`: "one",
		`{"instances":[{"intval":50}]}`:                   "two",
		`{"instances":[{"strval":"a-red-server-1"}]}`:     "three",
	} {
		f := &fakeCaller{}
		if _, err := run(t, f, g, body); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(f.calls, ","); got != want {
			t.Errorf("%s went to %s, want %s", body, got, want)
		}
	}
	f := &fakeCaller{}
	_, err := run(t, f, g, `{"instances":[{"intval":1}]}`)
	var nm *NoMatchError
	if !errors.As(err, &nm) || nm.Node != "root" || len(f.calls) != 0 {
		t.Errorf("no match: %v, calls %v", err, f.calls)
	}
}

func TestEnsemble(t *testing.T) {
	g := compile(t, `spec:
  nodes:
    root:
      routerType: Sequence
      steps:
        - nodeName: both
    both:
      routerType: Ensemble
      steps:
        - serviceName: a
          name: first
        - serviceName: b
        - serviceName: c
          name: flaky
`)
	f := &fakeCaller{status: map[string]int{"c": 500}}
	res, err := run(t, f, g, `{"x":1}`)
	if err != nil {
		t.Fatal(err)
	}
	if got := field(t, res.Body, "first.from"); got != `"a"` {
		t.Errorf("first: %s in %s", got, res.Body)
	}
	if got := field(t, res.Body, "1.from"); got != `"b"` {
		t.Errorf("unnamed step keyed by index: %s in %s", got, res.Body)
	}
	if got := field(t, res.Body, "flaky.error"); got != `"c broke"` {
		t.Errorf("a Soft (default) failure is kept in the result: %s", got)
	}

	hard := compile(t, `spec:
  nodes:
    root:
      routerType: Ensemble
      steps:
        - serviceName: a
        - serviceName: c
          name: must
          dependency: Hard
`)
	_, err = run(t, f, hard, `{}`)
	var se *StepError
	if !errors.As(err, &se) || se.Node != "root" || se.Step != "must" || se.HTTPStatus() != 500 {
		t.Errorf("hard ensemble failure: %v", err)
	}
}

// TestSplitterWeights draws 20 000 requests through a 20/80 splitter with
// a seeded source: each side's share is within 1.5 points of its weight
// (about 5 standard deviations).
func TestSplitterWeights(t *testing.T) {
	g := compile(t, `spec:
  nodes:
    root:
      routerType: Splitter
      steps:
        - serviceName: small
          weight: 20
        - serviceName: large
          weight: 80
`)
	f := &fakeCaller{}
	var mu sync.Mutex
	src := rand.New(rand.NewPCG(1, 2))
	e := NewExecutor(Config{Caller: f, IntN: func(n int) int { mu.Lock(); defer mu.Unlock(); return src.IntN(n) }})
	const n = 20000
	for range n {
		if _, err := e.Run(t.Context(), g, []byte(`{}`), nil); err != nil {
			t.Fatal(err)
		}
	}
	small := 0
	for _, c := range f.calls {
		if c == "small" {
			small++
		}
	}
	if share := float64(small) / n * 100; share < 18.5 || share > 21.5 {
		t.Errorf("small got %.1f%% of requests, want 20±1.5", share)
	}
}

func TestCompileErrors(t *testing.T) {
	_, err := Compile(load(t, `spec:
  nodes:
    root:
      routerType: Sequence
      steps:
        - serviceName: fine
        - serviceName: missing
`), resolver("default"))
	var ce *CompileError
	if !errors.As(err, &ce) || ce.Path != "spec.nodes.root.steps[1].serviceName" || !errors.Is(err, ErrServiceNotFound) {
		t.Errorf("missing service: %v", err)
	}
	ig := load(t, "spec: {nodes: {root: {routerType: Switch, steps: [{serviceName: a, condition: '@reverse'}]}}}\n")
	if _, err := Compile(ig, resolver("default")); !errors.As(err, &ce) || ce.Path != "spec.nodes.root.steps[0].condition" {
		t.Errorf("bad condition: %v", err)
	}
	// A cycle that skipped validation is still refused.
	ig.Spec.Nodes["root"] = api.InferenceRouter{RouterType: api.RouterSequence, Steps: []api.InferenceStep{{NodeName: "root"}}}
	if _, err := Compile(ig, resolver("default")); !errors.As(err, &ce) {
		t.Errorf("cycle: %v", err)
	}
}

func TestHandler(t *testing.T) {
	g := compile(t, `spec:
  nodes:
    root:
      routerType: Sequence
      steps:
        - serviceName: a
        - serviceName: b
          name: broken
`)
	f := &fakeCaller{status: map[string]int{"b": 422}}
	e := NewExecutor(Config{Caller: f, MaxBodyBytes: 64})
	h := e.Handler(g)
	do := func(method, body string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, "/anything", strings.NewReader(body)))
		b, _ := io.ReadAll(rec.Result().Body)
		return rec.Code, string(b)
	}
	code, body := do(http.MethodPost, `{"instances":[]}`)
	if code != 422 || !strings.Contains(body, `"step":"broken"`) || !strings.Contains(body, `node \"root\" step \"broken\" (service b) failed: answered 422: b broke`) {
		t.Errorf("failure: %d %s", code, body)
	}
	if code, _ := do(http.MethodGet, ""); code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", code)
	}
	if code, _ := do(http.MethodPost, strings.Repeat("x", 65)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("large body: %d", code)
	}
	f.status = nil
	if code, body := do(http.MethodPost, `{}`); code != 200 || field(t, []byte(body), "from") != `"b"` {
		t.Errorf("success: %d %s", code, body)
	}
}
