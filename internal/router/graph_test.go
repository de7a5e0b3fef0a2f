package router

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestGraphRouting checks where graph requests go (by host, by path, and
// never over a service of the same name) and that Call reaches a service
// through the router in-process.
func TestGraphRouting(t *testing.T) {
	r := New("example.com", nil)
	if err := r.Update(&Table{Domain: "example.com", Services: []*Service{
		{Name: "iris", Namespace: "default", Components: map[string]*Component{
			Predictor: {Targets: []Target{{Revision: "iris-predictor-1", Percent: 100, Latest: true, Backends: []string{backend(t, "iris")}}}},
		}},
	}}); err != nil {
		t.Fatal(err)
	}
	graph := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		code, body, err := r.Call(req.Context(), "default", "iris", "/v1/models/iris:predict", []byte(`{}`), http.Header{"X-A": {"1"}})
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		fmt.Fprintf(w, "graph saw %d %s", code, body)
	})
	r.SetGraphs(map[string]http.Handler{"default/chain": graph, "default/iris": graph})
	cases := []struct{ host, path, want string }{
		{"chain.default.example.com", "/", "graph saw 200 iris /v1/models/iris:predict"},
		{"chain.default.example.com:8080", "/v1/models/x:predict", "graph saw 200 iris /v1/models/iris:predict"},
		{"localhost:8080", "/graphs/default/chain", "graph saw 200 iris /v1/models/iris:predict"},
		{"localhost:8080", "/graphs/default/chain/extra", "graph saw 200 iris /v1/models/iris:predict"},
		// A service keeps its host even when a graph shares its name.
		{"iris.default.example.com", "/v1/models/iris:predict", "iris /v1/models/iris:predict"},
	}
	for _, c := range cases {
		code, body, _ := get(t, r, c.host, c.path)
		if code != 200 || body != c.want {
			t.Errorf("%s%s: %d %q, want %q", c.host, c.path, code, body, c.want)
		}
	}
	if code, body, _ := get(t, r, "localhost", "/graphs/default/nope"); code != 404 || !strings.Contains(body, "no InferenceGraph default/nope") {
		t.Errorf("unknown graph: %d %s", code, body)
	}
	if code, _, _ := get(t, r, "nope.default.example.com", "/"); code != 404 {
		t.Errorf("unknown host: %d", code)
	}
	// The internal component port never answers graphs.
	req, _ := http.NewRequest("POST", "http://x/graphs/default/chain", strings.NewReader("{}"))
	rec := &bufferWriter{header: http.Header{}, limit: 1 << 20}
	r.ComponentHandler(Predictor).ServeHTTP(rec, req)
	if rec.status != 404 || strings.Contains(rec.buf.String(), "graph saw") {
		t.Errorf("component port: %d %s", rec.status, rec.buf.String())
	}
}

func TestCallLimitsAndCancellation(t *testing.T) {
	r := New("example.com", nil)
	if err := r.Update(&Table{Domain: "example.com", Services: []*Service{
		{Name: "iris", Namespace: "default", Components: map[string]*Component{
			Predictor: {Targets: []Target{{Revision: "iris-predictor-1", Percent: 100, Latest: true, Backends: []string{backend(t, "iris")}}}},
		}},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.call(t.Context(), "default", "iris", "/v1/models/iris:predict", nil, nil, 4); !errors.Is(err, ErrBodyTooLarge) {
		t.Errorf("over the limit: %v", err)
	}
	code, body, err := r.Call(t.Context(), "default", "missing", "/", nil, nil)
	if err != nil || code != 404 || !strings.Contains(string(body), "no service") {
		t.Errorf("missing service: %d %s %v", code, body, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := r.Call(ctx, "default", "iris", "/?sleep=1", nil, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
