package controlplane

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/mgmt"
	"github.com/ferryserve/ferry/internal/router"
)

// TestInferForwardsThroughTheRouter: the console's test request reaches
// the model by the router's route for the service, on the path of the
// protocol and verb asked for, and comes back with the model's status,
// body and the revision that answered.
func TestInferForwardsThroughTheRouter(t *testing.T) {
	var gotPath, gotBody string
	model := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotPath, gotBody = r.URL.Path, string(b)
		switch {
		case strings.Contains(r.URL.Path, "locked"):
			w.WriteHeader(http.StatusUnauthorized)
		case strings.HasSuffix(r.URL.Path, ":explain"):
			w.WriteHeader(http.StatusNotImplemented)
			_, _ = w.Write([]byte(`{"error":"no explainer"}`))
		default:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"predictions":[1]}`))
		}
	}))
	defer model.Close()

	h := newHarness(t)
	if err := h.ctl.ApplyYAML([]byte("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n  name: iris\nspec:\n  predictor:\n    sklearn:\n      storageUri: gs://b/m\n")); err != nil {
		t.Fatal(err)
	}
	h.ctl.cfg.Domain = "example.com"
	backend := strings.TrimPrefix(model.URL, "http://")
	comp := func() *router.Component {
		return &router.Component{Targets: []router.Target{{Revision: "iris-predictor-00001", Percent: 100, Backends: []string{backend}}}}
	}
	if err := h.rt.Update(&router.Table{Domain: "example.com", Services: []*router.Service{{Name: "iris", Namespace: "default",
		Components: map[string]*router.Component{router.Predictor: comp(), router.Explainer: comp()}}}}); err != nil {
		t.Fatal(err)
	}
	srv := NewAPIServer(h.ctl).Handler()
	base := "/api/v1/namespaces/default/inferenceservices/iris/infer"

	for _, c := range []struct {
		query, wantPath string
		wantCode        int
		wantBody        string
	}{
		{"", "/v1/models/iris:predict", 200, `{"predictions":[1]}`},
		{"?protocol=v2", "/v2/models/iris/infer", 200, `{"predictions":[1]}`},
		{"?protocol=v1&verb=explain&model=other", "/v1/models/other:explain", 501, `{"error":"no explainer"}`},
		{"?model=locked", "/v1/models/locked:predict", 502, "answered 401"},
	} {
		gotPath = ""
		req := httptest.NewRequest("POST", base+c.query, strings.NewReader(`{"instances":[[1,2]]}`))
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code != c.wantCode || !strings.Contains(rec.Body.String(), c.wantBody) || gotPath != c.wantPath {
			t.Fatalf("infer%s: %d %s at %q, want %d %s at %q", c.query, rec.Code, rec.Body, gotPath, c.wantCode, c.wantBody, c.wantPath)
		}
		if gotBody != `{"instances":[[1,2]]}` {
			t.Fatalf("infer%s: the model got %q", c.query, gotBody)
		}
		if c.wantCode == 200 && rec.Header().Get(router.HeaderRevision) != "iris-predictor-00001" {
			t.Fatalf("infer%s: headers %v", c.query, rec.Header())
		}
	}

	var e mgmt.ErrorBody
	apiJSON(t, srv, "POST", base+"?protocol=v3", "{}", 400, &e)
	if !strings.Contains(e.Error, "want v1 or v2") {
		t.Fatalf("protocol v3: %q", e.Error)
	}
	apiJSON(t, srv, "POST", base+"?verb=load", "{}", 400, &e)
	if !strings.Contains(e.Error, "want predict or explain") {
		t.Fatalf("verb load: %q", e.Error)
	}
	apiJSON(t, srv, "POST", "/api/v1/namespaces/default/inferenceservices/nope/infer", "{}", 404, &e)
	if !strings.Contains(e.Error, "not found") {
		t.Fatalf("unknown service: %q", e.Error)
	}
}
