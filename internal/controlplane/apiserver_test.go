package controlplane

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/mgmt"
)

// apiCall sends one request to the management API and returns its status
// and body.
func apiCall(t *testing.T, h http.Handler, method, path, body string) (int, []byte) {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), method, path, strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	return rec.Code, rec.Body.Bytes()
}

// apiJSON is apiCall for an answer of wantCode, decoded into out.
func apiJSON(t *testing.T, h http.Handler, method, path, body string, wantCode int, out any) {
	t.Helper()
	code, b := apiCall(t, h, method, path, body)
	if code != wantCode {
		t.Fatalf("%s %s: %d %s, want %d", method, path, code, b, wantCode)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// itemNames returns ns/name of every object in a list answer.
func itemNames(t *testing.T, l mgmt.List[json.RawMessage]) []string {
	t.Helper()
	var out []string
	for _, raw := range l.Items {
		var o struct {
			Metadata struct{ Namespace, Name string } `json:"metadata"`
		}
		if err := json.Unmarshal(raw, &o); err != nil {
			t.Fatal(err)
		}
		out = append(out, o.Metadata.Namespace+"/"+o.Metadata.Name)
	}
	slices.Sort(out)
	return out
}

const otherNamespaceISVC = `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: ok-b
  namespace: other
spec:
  predictor:
    sklearn:
      storageUri: gs://b/b
`

// TestAPIServiceListGetDelete: services are listed (all, or one
// namespace), read back, and deleted with their revisions, replicas and
// routes; unknown ones are 404.
func TestAPIServiceListGetDelete(t *testing.T) {
	h := newHarness(t)
	h.apply(isvcYAML("ok-a", "gs://b/a", "") + "---\n" + otherNamespaceISVC)
	srv := NewAPIServer(h.ctl).Handler()

	var all mgmt.List[json.RawMessage]
	apiJSON(t, srv, "GET", "/api/v1/inferenceservices", "", 200, &all)
	if got := itemNames(t, all); !slices.Equal(got, []string{"default/ok-a", "other/ok-b"}) {
		t.Fatalf("list: %v", got)
	}
	var other mgmt.List[json.RawMessage]
	apiJSON(t, srv, "GET", "/api/v1/inferenceservices?namespace=other", "", 200, &other)
	if got := itemNames(t, other); !slices.Equal(got, []string{"other/ok-b"}) {
		t.Fatalf("list ?namespace=other: %v", got)
	}
	var empty mgmt.List[json.RawMessage]
	apiJSON(t, srv, "GET", "/api/v1/inferenceservices?namespace=nope", "", 200, &empty)
	if empty.Items == nil || len(empty.Items) != 0 {
		t.Fatalf("list of an empty namespace: %+v, want items: []", empty)
	}

	var got struct {
		Metadata struct {
			Name       string
			Generation int64
		} `json:"metadata"`
		Status struct {
			Conditions []struct{ Type, Status string }
		} `json:"status"`
	}
	apiJSON(t, srv, "GET", "/api/v1/namespaces/default/inferenceservices/ok-a", "", 200, &got)
	if got.Metadata.Name != "ok-a" || got.Metadata.Generation != 1 || len(got.Status.Conditions) == 0 {
		t.Fatalf("get: %+v", got)
	}
	var e mgmt.ErrorBody
	apiJSON(t, srv, "GET", "/api/v1/namespaces/default/inferenceservices/nope", "", 404, &e)
	if !strings.Contains(e.Error, "not found") {
		t.Fatalf("get of a missing service: %q", e.Error)
	}

	var revs mgmt.List[mgmt.Revision]
	apiJSON(t, srv, "GET", "/api/v1/namespaces/default/inferenceservices/ok-a/revisions", "", 200, &revs)
	if len(revs.Items) != 1 {
		t.Fatalf("revisions before the delete: %+v", revs.Items)
	}

	var del mgmt.Deleted
	apiJSON(t, srv, "DELETE", "/api/v1/namespaces/default/inferenceservices/ok-a", "", 200, &del)
	if del.Deleted != "default/ok-a" {
		t.Fatalf("delete answered %+v", del)
	}
	// The delete reconciles before answering: the object, its revisions,
	// its replicas and its route are gone already.
	apiJSON(t, srv, "GET", "/api/v1/namespaces/default/inferenceservices/ok-a", "", 404, nil)
	apiJSON(t, srv, "GET", "/api/v1/namespaces/default/inferenceservices/ok-a/revisions", "", 200, &revs)
	if len(revs.Items) != 0 {
		t.Fatalf("revisions after the delete: %+v", revs.Items)
	}
	if n := len(h.ctl.ReplicaSets("default", "ok-a")); n != 0 {
		t.Fatalf("%d replica sets still run after the delete", n)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequestWithContext(t.Context(), "POST", "/v1/models/ok-a:predict", strings.NewReader("{}"))
	req.Host = "ok-a.default.example.com"
	h.rt.ServeHTTP(rec, req)
	if rec.Code != 404 {
		t.Fatalf("the deleted service is still routed: %d", rec.Code)
	}
	// The other namespace's service is untouched.
	apiJSON(t, srv, "GET", "/api/v1/namespaces/other/inferenceservices/ok-b", "", 200, nil)
	if n := len(h.ctl.ReplicaSets("other", "ok-b")); n != 1 {
		t.Fatalf("other/ok-b has %d replica sets after deleting default/ok-a, want 1", n)
	}

	apiJSON(t, srv, "DELETE", "/api/v1/namespaces/default/inferenceservices/ok-a", "", 404, &e)
	if !strings.Contains(e.Error, "not found") {
		t.Fatalf("second delete: %q", e.Error)
	}
}

// TestAPITrainedModelsAndGraphs: TrainedModels and InferenceGraphs are
// listed, read and deleted by their own routes.
func TestAPITrainedModelsAndGraphs(t *testing.T) {
	h := newHarness(t)
	h.apply(`apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: ok-mms
spec:
  predictor:
    sklearn:
      protocolVersion: v1
---
apiVersion: serving.kserve.io/v1alpha1
kind: TrainedModel
metadata:
  name: iris-a
spec:
  inferenceService: ok-mms
  model:
    framework: sklearn
    storageUri: gs://b/iris
    memory: 64Mi
---
apiVersion: serving.kserve.io/v1alpha1
kind: InferenceGraph
metadata:
  name: g
spec:
  nodes:
    root:
      routerType: Sequence
      steps:
      - serviceName: ok-mms
`)
	srv := NewAPIServer(h.ctl).Handler()
	for _, c := range []struct{ list, item, want string }{
		{"/api/v1/trainedmodels", "/api/v1/namespaces/default/trainedmodels/iris-a", "default/iris-a"},
		{"/api/v1/inferencegraphs", "/api/v1/namespaces/default/inferencegraphs/g", "default/g"},
	} {
		var l mgmt.List[json.RawMessage]
		apiJSON(t, srv, "GET", c.list, "", 200, &l)
		if got := itemNames(t, l); !slices.Equal(got, []string{c.want}) {
			t.Fatalf("%s: %v", c.list, got)
		}
		apiJSON(t, srv, "GET", c.item, "", 200, nil)
		var del mgmt.Deleted
		apiJSON(t, srv, "DELETE", c.item, "", 200, &del)
		if del.Deleted != c.want {
			t.Fatalf("DELETE %s: %+v", c.item, del)
		}
		apiJSON(t, srv, "GET", c.item, "", 404, nil)
		apiJSON(t, srv, "DELETE", c.item, "", 404, nil)
		apiJSON(t, srv, "GET", c.list, "", 200, &l)
		if len(l.Items) != 0 {
			t.Fatalf("%s after the delete: %v", c.list, itemNames(t, l))
		}
	}
	// The graph's route went with it.
	rec := httptest.NewRecorder()
	h.rt.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), "POST", "/graphs/default/g", strings.NewReader("{}")))
	if rec.Code != 404 {
		t.Fatalf("deleted graph still answers: %d %s", rec.Code, rec.Body)
	}
}

// TestAPIRevisionsEventsReplicas: a canary's two revisions, the events that
// made them, and each revision's replicas as the runner reports them.
func TestAPIRevisionsEventsReplicas(t *testing.T) {
	h := newHarness(t)
	h.apply(isvcYAML("ok-c", "gs://b/v1", ""))
	h.apply(isvcYAML("ok-c", "gs://b/v2", "    canaryTrafficPercent: 10\n"))
	srv := NewAPIServer(h.ctl).Handler()
	base := "/api/v1/namespaces/default/inferenceservices/ok-c"

	var revs mgmt.List[mgmt.Revision]
	apiJSON(t, srv, "GET", base+"/revisions", "", 200, &revs)
	if len(revs.Items) != 2 {
		t.Fatalf("revisions: %+v", revs.Items)
	}
	for i, want := range []string{"ok-c-predictor-00001", "ok-c-predictor-00002"} {
		r := revs.Items[i]
		if r.Name != want || r.Number != i+1 || r.Component != "predictor" || r.Hash == "" || r.Created.IsZero() {
			t.Errorf("revision %d: %+v, want %s", i, r, want)
		}
		if uri := "gs://b/v" + string(rune('1'+i)); !strings.Contains(string(r.Spec), uri) {
			t.Errorf("revision %s spec %s does not name %s", r.Name, r.Spec, uri)
		}
	}
	if revs.Items[0].Hash == revs.Items[1].Hash {
		t.Error("two specs share a hash")
	}
	// A service without revisions answers an empty list, not null.
	code, b := apiCall(t, srv, "GET", "/api/v1/namespaces/default/inferenceservices/nope/revisions", "")
	if code != 200 || string(b) != `{"items":[]}` {
		t.Fatalf("revisions of an unknown service: %d %s", code, b)
	}

	var evs mgmt.List[mgmt.Event]
	apiJSON(t, srv, "GET", base+"/events", "", 200, &evs)
	var reasons []string
	for _, e := range evs.Items {
		if e.Time.IsZero() || e.Type == "" || e.Message == "" {
			t.Errorf("incomplete event %+v", e)
		}
		reasons = append(reasons, e.Reason)
	}
	for _, want := range []string{"Applied", "RevisionCreated", "RevisionStarted"} {
		if !slices.Contains(reasons, want) {
			t.Errorf("events %v lack %s", reasons, want)
		}
	}
	code, b = apiCall(t, srv, "GET", "/api/v1/namespaces/default/inferenceservices/nope/events", "")
	if code != 200 || string(b) != `{"items":[]}` {
		t.Fatalf("events of an unknown service: %d %s", code, b)
	}

	var reps mgmt.Replicas
	apiJSON(t, srv, "GET", base+"/replicas", "", 200, &reps)
	if len(reps.Revisions) != 2 {
		t.Fatalf("replicas by revision: %+v", reps.Revisions)
	}
	for _, rev := range []string{"ok-c-predictor-00001", "ok-c-predictor-00002"} {
		rs := reps.Revisions[rev]
		if len(rs) != 1 || rs[0].Name != rev+"-0" || rs[0].Phase != "Ready" {
			t.Errorf("%s replicas %+v, want one Ready", rev, rs)
		}
	}
	// Without an autoscaler there is no desired count to report.
	if len(reps.Desired) != 0 || len(reps.Panic) != 0 {
		t.Errorf("desired %v panic %v without an autoscaler", reps.Desired, reps.Panic)
	}
}

// TestAPILogsByComponent: logs are the failing predictor's replicas' lines;
// another component, or a service with no such component, has none.
func TestAPILogsByComponent(t *testing.T) {
	h := newHarness(t)
	h.apply(isvcYAML("fail-x", "gs://nope/m", ""))
	srv := NewAPIServer(h.ctl).Handler()
	base := "/api/v1/namespaces/default/inferenceservices/fail-x/logs"
	for _, path := range []string{base, base + "?component=predictor&tail=5", base + "?tail=-3"} {
		var l mgmt.Logs
		apiJSON(t, srv, "GET", path, "", 200, &l)
		lines := l.Replicas["fail-x-predictor-00001-0"]
		if len(l.Replicas) != 1 || len(lines) != 1 || !strings.Contains(lines[0], "access denied") {
			t.Fatalf("%s: %+v", path, l.Replicas)
		}
	}
	for _, path := range []string{base + "?component=transformer", "/api/v1/namespaces/default/inferenceservices/nope/logs"} {
		var l mgmt.Logs
		apiJSON(t, srv, "GET", path, "", 200, &l)
		if l.Replicas == nil || len(l.Replicas) != 0 {
			t.Fatalf("%s: %+v, want no replicas", path, l.Replicas)
		}
	}
}

func TestContainsComponent(t *testing.T) {
	for _, c := range []struct {
		rev, comp string
		want      bool
	}{
		{"iris-predictor-00001", "predictor", true},
		{"iris-transformer-00012", "transformer", true},
		{"iris-explainer-00001", "explainer", true},
		{"iris-transformer-00001", "predictor", false},
		{"iris-predictor-00001", "transformer", false},
		// A service named like a component is told apart by the suffix.
		{"x-predictor-transformer-00001", "predictor", false},
		{"x-predictor-transformer-00001", "transformer", true},
		// Too short to hold "-{component}-NNNNN" after a name.
		{"-predictor-00001", "predictor", false},
		{"predictor", "predictor", false},
		{"", "predictor", false},
	} {
		if got := containsComponent(c.rev, c.comp); got != c.want {
			t.Errorf("containsComponent(%q, %q) = %v, want %v", c.rev, c.comp, got, c.want)
		}
	}
}

// TestAPIApplyRefusals: what apply refuses, and with which status.
func TestAPIApplyRefusals(t *testing.T) {
	h := newHarness(t)
	srv := NewAPIServer(h.ctl).Handler()
	for _, c := range []struct {
		name, body string
		code       int
		msg        string
	}{
		{"empty", "", 400, "no InferenceService"},
		{"not yaml", "{{{", 400, ""},
		{"invalid", "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: x}\nspec: {predictor: {}}\n", 400, ""},
	} {
		var e mgmt.ErrorBody
		apiJSON(t, srv, "POST", "/api/v1/apply", c.body, c.code, &e)
		if e.Error == "" || !strings.Contains(e.Error, c.msg) {
			t.Errorf("%s: error %q, want one containing %q", c.name, e.Error, c.msg)
		}
	}
	// Over the guard's body limit: 413, nothing applied.
	guarded := http.MaxBytesHandler(srv, 16)
	code, b := apiCall(t, guarded, "POST", "/api/v1/apply", isvcYAML("ok-big", "gs://b/m", ""))
	if code != http.StatusRequestEntityTooLarge {
		t.Fatalf("over the body limit: %d %s", code, b)
	}
	if _, err := h.store.Get(KindInferenceService, "default/ok-big"); err == nil {
		t.Fatal("a truncated apply was stored")
	}
	// Applying twice: created, then unchanged.
	for _, want := range []string{"created", "unchanged"} {
		var res []mgmt.ApplyResult
		apiJSON(t, srv, "POST", "/api/v1/apply", isvcYAML("ok-d", "gs://b/m", ""), 200, &res)
		if len(res) != 1 || res[0].Action != want || res[0].Kind != "InferenceService" || res[0].Name != "ok-d" {
			t.Fatalf("apply: %+v, want %s", res, want)
		}
	}
	var health map[string]string
	apiJSON(t, srv, "GET", "/healthz", "", 200, &health)
	if health["status"] != "ok" {
		t.Fatalf("healthz: %v", health)
	}
}

// TestAPIStoreFailuresAre500: when the store cannot be read, every read
// and delete answers 500 with the store's error, never an empty success.
func TestAPIStoreFailuresAre500(t *testing.T) {
	h := newHarness(t)
	h.apply(isvcYAML("ok-a", "gs://b/a", ""))
	srv := NewAPIServer(h.ctl).Handler()
	if err := h.store.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/inferenceservices"},
		{"GET", "/api/v1/namespaces/default/inferenceservices/ok-a"},
		{"DELETE", "/api/v1/namespaces/default/inferenceservices/ok-a"},
		{"GET", "/api/v1/namespaces/default/inferenceservices/ok-a/revisions"},
		{"GET", "/api/v1/namespaces/default/inferenceservices/ok-a/rollout"},
		{"POST", "/api/v1/apply"},
	} {
		body := ""
		if c.method == "POST" {
			body = isvcYAML("ok-a", "gs://b/other", "")
		}
		var e mgmt.ErrorBody
		apiJSON(t, srv, c.method, c.path, body, 500, &e)
		if e.Error == "" {
			t.Errorf("%s %s: 500 without an error message", c.method, c.path)
		}
	}
}
