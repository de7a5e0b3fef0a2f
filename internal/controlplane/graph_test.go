package controlplane

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/graph"
)

// graphStatus reads a stored graph's status.
func (h *harness) graphStatus(ns, name string) *api.InferenceGraphStatus {
	h.t.Helper()
	raw, err := h.store.Get(KindInferenceGraph, ns+"/"+name)
	if err != nil {
		h.t.Fatal(err)
	}
	var ig api.InferenceGraph
	if err := json.Unmarshal(raw, &ig); err != nil {
		h.t.Fatal(err)
	}
	if ig.Status == nil {
		h.t.Fatalf("graph %s/%s has no status", ns, name)
	}
	return ig.Status
}

// pathRecorder is a model backend that records the paths it is asked.
type pathRecorder struct {
	mu    sync.Mutex
	paths []string
}

func (p *pathRecorder) server(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.paths = append(p.paths, r.URL.Path)
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"predictions":[1],"path":"`+r.URL.Path+`"}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func (p *pathRecorder) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.paths...)
}

const v2ISVC = `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: ok-v2
spec:
  predictor:
    sklearn:
      protocolVersion: v2
      storageUri: gs://b/v2
`

const sequenceGraph = `apiVersion: serving.kserve.io/v1alpha1
kind: InferenceGraph
metadata:
  name: seq
spec:
  nodes:
    root:
      routerType: Sequence
      steps:
      - serviceName: ok-a
        name: first
      - serviceName: ok-v2
        name: second
        data: $request
`

// TestGraphReadyAndRouted: a graph over existing services is Ready, routed
// at /graphs/{ns}/{name}, and calls each service at its protocol's path.
func TestGraphReadyAndRouted(t *testing.T) {
	rec := &pathRecorder{}
	backend := rec.server(t)
	h := newHarness(t)
	h.runner.backend = strings.TrimPrefix(backend.URL, "http://")
	h.apply(isvcYAML("ok-a", "gs://b/a", "") + "---\n" + v2ISVC + "---\n" + sequenceGraph)

	st := h.graphStatus("default", "seq")
	if len(st.Conditions) != 1 {
		t.Fatalf("conditions %+v", st.Conditions)
	}
	c := st.Conditions[0]
	if c.Type != "Ready" || c.Status != "True" || c.Reason != "" || c.LastTransitionTime.IsZero() {
		t.Fatalf("Ready condition %+v", c)
	}
	if st.URL != "http://seq.default.example.com" || st.DeploymentMode != "Ferry" || st.ObservedGeneration != 1 {
		t.Fatalf("status %+v", st)
	}

	for _, req := range []*http.Request{
		httptest.NewRequestWithContext(t.Context(), "POST", "/graphs/default/seq", strings.NewReader(`{"instances":[[1]]}`)),
		func() *http.Request {
			r := httptest.NewRequestWithContext(t.Context(), "POST", "/", strings.NewReader(`{"instances":[[1]]}`))
			r.Host = "seq.default.example.com"
			return r
		}(),
	} {
		w := httptest.NewRecorder()
		h.rt.ServeHTTP(w, req)
		// A Sequence answers with its last step's answer.
		if w.Code != 200 || !strings.Contains(w.Body.String(), `"path":"/v2/models/ok-v2/infer"`) {
			t.Fatalf("%s%s: %d %s", req.Host, req.URL.Path, w.Code, w.Body)
		}
	}
	want := []string{"/v1/models/ok-a:predict", "/v2/models/ok-v2/infer", "/v1/models/ok-a:predict", "/v2/models/ok-v2/infer"}
	if got := rec.seen(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("backend saw %v, want %v", got, want)
	}

	// Another pass with nothing changed rewrites nothing.
	before, _ := h.store.Get(KindInferenceGraph, "default/seq")
	h.reconcile()
	after, _ := h.store.Get(KindInferenceGraph, "default/seq")
	if string(before) != string(after) {
		t.Fatalf("an unchanged graph's status was rewritten:\n%s\n%s", before, after)
	}
}

// TestGraphFollowsItsServices: a graph whose service is missing is not
// Ready (ServiceNotFound) and not routed; it becomes Ready when the
// service is applied, and not Ready again when it is deleted.
func TestGraphFollowsItsServices(t *testing.T) {
	h := newHarness(t)
	h.apply(v2ISVC + "---\n" + sequenceGraph)
	c := h.graphStatus("default", "seq").Conditions[0]
	if c.Status != "False" || c.Reason != reasonServiceNotFound || !strings.Contains(c.Message, `"ok-a"`) {
		t.Fatalf("with ok-a missing: %+v", c)
	}
	w := httptest.NewRecorder()
	h.rt.ServeHTTP(w, httptest.NewRequestWithContext(t.Context(), "POST", "/graphs/default/seq", strings.NewReader("{}")))
	if w.Code != 404 {
		t.Fatalf("a graph that is not Ready answers %d", w.Code)
	}

	h.apply(isvcYAML("ok-a", "gs://b/a", ""))
	if c := h.graphStatus("default", "seq").Conditions[0]; c.Status != "True" || c.Reason != "" || c.Message != "" {
		t.Fatalf("after applying ok-a: %+v", c)
	}

	srv := NewAPIServer(h.ctl).Handler()
	if code, b := apiCall(t, srv, "DELETE", "/api/v1/namespaces/default/inferenceservices/ok-a", ""); code != 200 {
		t.Fatalf("delete: %d %s", code, b)
	}
	// The delete queues the graph pass; run it as the loop would.
	if err := h.ctl.syncGraphs(t.Context()); err != nil {
		t.Fatal(err)
	}
	if c := h.graphStatus("default", "seq").Conditions[0]; c.Status != "False" || c.Reason != reasonServiceNotFound {
		t.Fatalf("after deleting ok-a: %+v", c)
	}
}

// TestGraphInvalidAndUndecodable: a graph calling a host that is not one
// of ferry's services is InvalidGraph; a stored graph that does not decode
// is skipped without holding up the others.
func TestGraphInvalidAndUndecodable(t *testing.T) {
	h := newHarness(t)
	if err := h.store.Put(KindInferenceGraph, "default/broken", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	h.apply(isvcYAML("ok-a", "gs://b/a", "") + `---
apiVersion: serving.kserve.io/v1alpha1
kind: InferenceGraph
metadata:
  name: outside
spec:
  nodes:
    root:
      routerType: Sequence
      steps:
      - serviceUrl: http://models.example.org/v1/models/x:predict
`)
	c := h.graphStatus("default", "outside").Conditions[0]
	if c.Status != "False" || c.Reason != reasonInvalidGraph || !strings.Contains(c.Message, "models.example.org") {
		t.Fatalf("graph calling an outside host: %+v", c)
	}
}

func TestGraphResolver(t *testing.T) {
	h := newHarness(t)
	h.apply(isvcYAML("ok-a", "gs://b/a", "") + "---\n" + strings.Replace(v2ISVC, "name: ok-v2", "name: ok-v2\n  namespace: prod", 1) +
		"---\napiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n  name: ok-grpc\nspec:\n  predictor:\n    onnx:\n      protocolVersion: grpc-v2\n      storageUri: gs://b/g\n")
	services, err := h.ctl.storedServices()
	if err != nil {
		t.Fatal(err)
	}
	resolve := h.ctl.graphResolver("default", services)
	for _, tc := range []struct {
		name string
		step api.InferenceStep
		want graph.Target
		err  string
	}{
		{"service name, v1", api.InferenceStep{ServiceName: "ok-a"}, graph.Target{Namespace: "default", Service: "ok-a", Path: "/v1/models/ok-a:predict"}, ""},
		{"service name, grpc-v2", api.InferenceStep{ServiceName: "ok-grpc"}, graph.Target{Namespace: "default", Service: "ok-grpc", Path: "/v2/models/ok-grpc/infer"}, ""},
		{"service name in another namespace", api.InferenceStep{ServiceName: "ok-v2"}, graph.Target{}, "service not found"},
		{"ingress host with path", api.InferenceStep{ServiceURL: "http://ok-v2.prod.example.com/v2/models/other/infer"}, graph.Target{Namespace: "prod", Service: "ok-v2", Path: "/v2/models/other/infer"}, ""},
		{"ingress host with port, root path", api.InferenceStep{ServiceURL: "http://ok-a.default.example.com:8080/"}, graph.Target{Namespace: "default", Service: "ok-a", Path: "/v1/models/ok-a:predict"}, ""},
		{"kubernetes service host", api.InferenceStep{ServiceURL: "http://OK-V2.prod.svc.cluster.local"}, graph.Target{Namespace: "prod", Service: "ok-v2", Path: "/v2/models/ok-v2/infer"}, ""},
		{"short kubernetes host", api.InferenceStep{ServiceURL: "http://ok-a.default.svc/v1/models/ok-a:explain"}, graph.Target{Namespace: "default", Service: "ok-a", Path: "/v1/models/ok-a:explain"}, ""},
		{"unknown service by URL", api.InferenceStep{ServiceURL: "http://nope.default.example.com"}, graph.Target{}, "service not found"},
		{"outside host", api.InferenceStep{ServiceURL: "http://models.example.org/x"}, graph.Target{}, "host is not {service}.{namespace}.example.com"},
		{"single-label host", api.InferenceStep{ServiceURL: "http://localhost/x"}, graph.Target{}, "host is not"},
		{"unparsable URL", api.InferenceStep{ServiceURL: "http://[::1"}, graph.Target{}, "serviceUrl"},
	} {
		got, err := resolve(tc.step)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: err %v, want one containing %q", tc.name, err, tc.err)
		case got != tc.want:
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
		if tc.err == "service not found" && !errors.Is(err, graph.ErrServiceNotFound) {
			t.Errorf("%s: %v does not wrap ErrServiceNotFound", tc.name, err)
		}
	}
}

// TestSaveGraphStatusYieldsToNewerSpecs: a status computed for one
// generation is not written over a newer one, nor over a deleted graph;
// an unchanged Ready keeps its transition time.
func TestSaveGraphStatusYieldsToNewerSpecs(t *testing.T) {
	h := newHarness(t)
	h.apply(isvcYAML("ok-a", "gs://b/a", "") + "---\n" + strings.Replace(sequenceGraph, "ok-v2", "ok-a", 1))
	raw, _ := h.store.Get(KindInferenceGraph, "default/seq")
	var ig api.InferenceGraph
	if err := json.Unmarshal(raw, &ig); err != nil {
		t.Fatal(err)
	}
	was := ig.Status.Conditions[0]

	// Same Ready status again: its lastTransitionTime is carried over.
	if err := h.ctl.saveGraphStatus("default/seq", &ig, api.Condition{Type: "Ready", Status: "True"}); err != nil {
		t.Fatal(err)
	}
	if c := h.graphStatus("default", "seq").Conditions[0]; !c.LastTransitionTime.Equal(was.LastTransitionTime) {
		t.Fatalf("transition time %v, was %v", c.LastTransitionTime, was.LastTransitionTime)
	}

	// A status for generation 1 while generation 2 is stored: not written.
	stale := ig
	stale.Status = nil
	ig2 := ig
	ig2.Metadata.Generation = 2
	ig2.Status = nil
	if err := h.store.Put(KindInferenceGraph, "default/seq", mustJSON(&ig2)); err != nil {
		t.Fatal(err)
	}
	if err := h.ctl.saveGraphStatus("default/seq", &stale, api.Condition{Type: "Ready", Status: "False", Reason: "X"}); err != nil {
		t.Fatal(err)
	}
	raw, _ = h.store.Get(KindInferenceGraph, "default/seq")
	if strings.Contains(string(raw), `"status"`) {
		t.Fatalf("a stale status was written over generation 2: %s", raw)
	}

	// Deleted meanwhile: nothing is written, nothing recreated.
	if err := h.store.Delete(KindInferenceGraph, "default/seq", false); err != nil {
		t.Fatal(err)
	}
	if err := h.ctl.saveGraphStatus("default/seq", &ig2, api.Condition{Type: "Ready", Status: "True"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.Get(KindInferenceGraph, "default/seq"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a deleted graph came back: %v", err)
	}
}
