package controlplane

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/router"
)

// harness is a controller with a fake runner and a real store and router,
// driven synchronously (ReconcileAll), so each step is deterministic.
type harness struct {
	t      *testing.T
	ctl    *Controller
	store  *Store
	rt     *router.Router
	runner *fakeRunner
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	store, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	h := &harness{t: t, store: store, rt: router.New("example.com", nil), runner: &fakeRunner{}}
	h.ctl = NewController(Config{Store: store, Router: h.rt, Runner: h.runner, DataDir: t.TempDir(), FerryBinary: "ferry", PredictorAddr: "127.0.0.1:1"})
	t.Cleanup(h.ctl.stopAll)
	return h
}

func (h *harness) apply(doc string) {
	h.t.Helper()
	if err := h.ctl.ApplyYAML([]byte(doc)); err != nil {
		h.t.Fatal(err)
	}
	h.reconcile()
}

// reconcile runs passes until the status is stable (a fake replica is
// ready at once, which the next pass observes).
func (h *harness) reconcile() {
	h.t.Helper()
	for range 3 {
		if err := h.ctl.ReconcileAll(h.t.Context()); err != nil {
			h.t.Fatal(err)
		}
	}
}

func (h *harness) status(name string) *api.InferenceServiceStatus {
	h.t.Helper()
	raw, err := h.store.Get(KindInferenceService, "default/"+name)
	if err != nil {
		h.t.Fatal(err)
	}
	var isvc api.InferenceService
	if err := json.Unmarshal(raw, &isvc); err != nil {
		h.t.Fatal(err)
	}
	if isvc.Status == nil {
		h.t.Fatalf("%s has no status", name)
	}
	return isvc.Status
}

func traffic(st *api.InferenceServiceStatus, comp string) string {
	var parts []string
	for _, t := range st.Components[comp].Traffic {
		parts = append(parts, fmt.Sprintf("%s=%d%s", t.RevisionName, *t.Percent, map[bool]string{true: "(" + t.Tag + ")", false: ""}[t.Tag != ""]))
	}
	return strings.Join(parts, ",")
}

func ready(st *api.InferenceServiceStatus) string {
	for _, c := range st.Conditions {
		if c.Type == "Ready" {
			return c.Status
		}
	}
	return ""
}

func isvcYAML(name, uri string, extra string) string {
	return fmt.Sprintf("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n  name: %s\nspec:\n  predictor:\n%s    sklearn:\n      storageUri: %s\n", name, extra, uri)
}

// TestCanaryRolloutPromoteAndRollback walks KFServing 0.5's rollout cases
// through the whole controller: a new revision, a canary split, promotion,
// and a rollback with canaryTrafficPercent 0.
func TestCanaryRolloutPromoteAndRollback(t *testing.T) {
	h := newHarness(t)
	h.apply(isvcYAML("ok-iris", "gs://b/v1", ""))
	st := h.status("ok-iris")
	if ready(st) != "True" || traffic(st, "predictor") != "ok-iris-predictor-00001=100" {
		t.Fatalf("v1: ready %s traffic %s", ready(st), traffic(st, "predictor"))
	}
	h.apply(isvcYAML("ok-iris", "gs://b/v2", "    canaryTrafficPercent: 20\n"))
	st = h.status("ok-iris")
	if got := traffic(st, "predictor"); got != "ok-iris-predictor-00002=20,ok-iris-predictor-00001=80(prev)" {
		t.Fatalf("canary: %s", got)
	}
	// Both revisions keep replicas while the canary runs.
	if n := len(h.ctl.ReplicaSets("default", "ok-iris")); n != 2 {
		t.Fatalf("%d replica sets during the canary, want 2", n)
	}
	// Promote: drop canaryTrafficPercent.
	h.apply(isvcYAML("ok-iris", "gs://b/v2", ""))
	st = h.status("ok-iris")
	if got := traffic(st, "predictor"); got != "ok-iris-predictor-00002=100" {
		t.Fatalf("promoted: %s", got)
	}
	if c := st.Components["predictor"]; c.LatestRolledoutRevision != "ok-iris-predictor-00002" || c.PreviousRolledoutRevision != "ok-iris-predictor-00001" {
		t.Fatalf("rolled-out revisions after promotion: %+v", c)
	}
	// Roll back: canaryTrafficPercent 0 sends everything to the previous one.
	h.apply(isvcYAML("ok-iris", "gs://b/v2", "    canaryTrafficPercent: 0\n"))
	if got := traffic(h.status("ok-iris"), "predictor"); got != "ok-iris-predictor-00002=0,ok-iris-predictor-00001=100(prev)" {
		t.Fatalf("rollback: %s", got)
	}
	evs := h.ctl.Events("default", "ok-iris")
	var reasons []string
	for _, e := range evs {
		reasons = append(reasons, e.Reason)
	}
	if !strings.Contains(strings.Join(reasons, ","), "Promoted") {
		t.Errorf("no Promoted event: %v", reasons)
	}
}

// TestRoutesFollowStatus: the router answers for a ready service, a
// starting one gets 503, a deleted one 404, and its replicas stop.
func TestRoutesFollowStatus(t *testing.T) {
	h := newHarness(t)
	h.apply(isvcYAML("ok-a", "gs://b/a", "") + "---\n" + isvcYAML("hang-b", "gs://b/b", ""))
	for _, c := range []struct {
		host string
		want int
	}{{"ok-a.default.example.com", 502}, {"hang-b.default.example.com", 503}, {"nope.default.example.com", 404}} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/v1/models/x:predict", strings.NewReader("{}"))
		req.Host = c.host
		req = req.WithContext(t.Context())
		h.rt.ServeHTTP(rec, req)
		// ok-a routes to the fake backend 127.0.0.1:1, which refuses: 502.
		if rec.Code != c.want && !(c.want == 503 && rec.Code == http.StatusServiceUnavailable) {
			t.Errorf("%s: %d %s, want %d", c.host, rec.Code, rec.Body, c.want)
		}
	}
	if st := h.status("hang-b"); ready(st) != "False" {
		t.Fatalf("hang-b ready %s", ready(st))
	}
	sets := h.runner.setsOf("default/ok-a")
	if err := h.store.Delete(KindInferenceService, "default/ok-a", false); err != nil {
		t.Fatal(err)
	}
	if err := h.ctl.ReconcileObject(t.Context(), KindInferenceService, "default/ok-a"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, s := range sets {
		for !s.isClosed() {
			if time.Now().After(deadline) {
				t.Fatal("replicas of a deleted service still run")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/v1/models/x:predict", nil)
	req.Host = "ok-a.default.example.com"
	h.rt.ServeHTTP(rec, req)
	if rec.Code != 404 {
		t.Fatalf("deleted service: %d", rec.Code)
	}
}

// TestTransformerChain: a transformer gets its own revision and replicas
// and the router sends requests to it first.
func TestTransformerChain(t *testing.T) {
	h := newHarness(t)
	h.apply(`apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: ok-chain
spec:
  transformer:
    containers:
    - name: kserve-container
      image: x
      command: ["my-transformer"]
  predictor:
    sklearn:
      storageUri: gs://b/m
`)
	st := h.status("ok-chain")
	if ready(st) != "True" {
		t.Fatalf("not ready: %+v", st.Conditions)
	}
	if traffic(st, "transformer") != "ok-chain-transformer-00001=100" {
		t.Fatalf("transformer traffic %s", traffic(st, "transformer"))
	}
	var tmpl ReplicaSpec
	for _, s := range h.runner.setsOf("default/ok-chain") {
		if strings.Contains(s.spec.Revision, "transformer") {
			tmpl = s.spec
		}
	}
	pc := tmpl.Template(9000, 9001)
	if pc.Command != "my-transformer" || !strings.Contains(strings.Join(pc.Args, " "), "--predictor_host 127.0.0.1:1") {
		t.Fatalf("transformer process %s %v", pc.Command, pc.Args)
	}
}

// TestFailingRevisionNamesItsReason: a failing replica's reason reaches
// the condition message.
func TestFailingRevisionNamesItsReason(t *testing.T) {
	h := newHarness(t)
	h.apply(isvcYAML("fail-x", "gs://nope/m", ""))
	st := h.status("fail-x")
	if ready(st) != "False" {
		t.Fatal("failing service is ready")
	}
	var msg string
	for _, c := range st.Conditions {
		if c.Type == "PredictorReady" {
			msg = c.Message
		}
	}
	if !strings.Contains(msg, "access denied") || !strings.Contains(msg, "restarts: 1") {
		t.Fatalf("condition message %q", msg)
	}
}
