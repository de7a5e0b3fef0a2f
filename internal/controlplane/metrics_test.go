package controlplane

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/mgmt"
	"github.com/ferryserve/ferry/internal/router"
)

// newScaledHarness is newHarness with an autoscaler (not running: desired
// counts come from registration and the tests' own steps) reading stat.
func newScaledHarness(t *testing.T, stat Stat) *harness {
	t.Helper()
	store, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	h := &harness{t: t, store: store, rt: router.New("example.com", nil), runner: &fakeRunner{}}
	a := NewAutoscaler(AutoscalerConfig{}, stat, nil)
	h.ctl = NewController(Config{Store: store, Router: h.rt, Runner: h.runner, DataDir: t.TempDir(), FerryBinary: "ferry", PredictorAddr: "127.0.0.1:1", Autoscaler: a})
	t.Cleanup(h.ctl.stopAll)
	return h
}

// scrape fetches the metrics in the text format and returns each sample
// ("name{labels}") with its value as written.
func scrape(t *testing.T, h *Controller, counters RevisionCounters, waiting func() int64) map[string]string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.MetricsHandler(counters, waiting).ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), "GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(rec.Body.Bytes()))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		out[line[:i]] = line[i+1:]
	}
	return out
}

func revLabels(svc, rev string) string {
	return `{namespace="default",revision="` + rev + `",service="` + svc + `"}`
}

// TestMetricsPerRevision: each running revision reports its replicas, the
// autoscaler's state and the ingress counters; the activator's queue is
// one gauge.
func TestMetricsPerRevision(t *testing.T) {
	h := newScaledHarness(t, func(string, string) (int64, uint64) { return 0, 0 })
	h.apply(isvcYAML("ok-m", "gs://b/v1", "    minReplicas: 2\n"))
	h.apply(isvcYAML("hang-m", "gs://b/h", ""))
	counters := func(ns, rev string) (int64, uint64) {
		if ns == "default" && rev == "ok-m-predictor-00001" {
			return 3, 42
		}
		return 0, 0
	}
	m := scrape(t, h.ctl, counters, func() int64 { return 7 })
	for series, want := range map[string]string{
		"ferry_autoscaler_actual_replicas" + revLabels("ok-m", "ok-m-predictor-00001"):      "2",
		"ferry_revision_ready_replicas" + revLabels("ok-m", "ok-m-predictor-00001"):         "1", // the fake reports one backend
		"ferry_autoscaler_desired_replicas" + revLabels("ok-m", "ok-m-predictor-00001"):     "2",
		"ferry_autoscaler_panic_mode" + revLabels("ok-m", "ok-m-predictor-00001"):           "0",
		"ferry_revision_requests_in_flight" + revLabels("ok-m", "ok-m-predictor-00001"):     "3",
		"ferry_revision_requests_total" + revLabels("ok-m", "ok-m-predictor-00001"):         "42",
		"ferry_autoscaler_actual_replicas" + revLabels("hang-m", "hang-m-predictor-00001"):  "1",
		"ferry_revision_ready_replicas" + revLabels("hang-m", "hang-m-predictor-00001"):     "0",
		"ferry_autoscaler_desired_replicas" + revLabels("hang-m", "hang-m-predictor-00001"): "1",
		"ferry_activator_requests_waiting":                                                  "7",
	} {
		if got, ok := m[series]; !ok || got != want {
			t.Errorf("%s = %q (present %v), want %s", series, got, ok, want)
		}
	}
	// The process and Go collectors ride along.
	if _, ok := m["go_goroutines"]; !ok {
		t.Error("no go_goroutines in the scrape")
	}

	// Without counters or an activator, those series are left out.
	m = scrape(t, h.ctl, nil, nil)
	for series := range m {
		if strings.HasPrefix(series, "ferry_revision_requests_") || strings.HasPrefix(series, "ferry_activator_") {
			t.Errorf("%s reported without its source", series)
		}
	}
	if m["ferry_autoscaler_actual_replicas"+revLabels("ok-m", "ok-m-predictor-00001")] != "2" {
		t.Error("per-revision gauges missing without counters")
	}

	// A deleted service's revisions are no longer reported.
	if err := h.store.Delete(KindInferenceService, "default/hang-m", false); err != nil {
		t.Fatal(err)
	}
	h.reconcile()
	m = scrape(t, h.ctl, nil, nil)
	for series := range m {
		if strings.Contains(series, "hang-m") {
			t.Errorf("deleted service still reported: %s", series)
		}
	}
}

// TestMetricsWithoutAutoscaler: no desired or panic series when nothing
// decides them.
func TestMetricsWithoutAutoscaler(t *testing.T) {
	h := newHarness(t)
	h.apply(isvcYAML("ok-n", "gs://b/v1", ""))
	m := scrape(t, h.ctl, nil, nil)
	if m["ferry_autoscaler_actual_replicas"+revLabels("ok-n", "ok-n-predictor-00001")] != "1" {
		t.Fatalf("actual replicas missing: %v", m)
	}
	for series := range m {
		if strings.HasPrefix(series, "ferry_autoscaler_desired") || strings.HasPrefix(series, "ferry_autoscaler_panic") {
			t.Errorf("%s without an autoscaler", series)
		}
	}
}

// TestAPIReplicasWithAutoscaler: the replicas answer carries the
// autoscaler's desired count per revision.
func TestAPIReplicasWithAutoscaler(t *testing.T) {
	h := newScaledHarness(t, func(string, string) (int64, uint64) { return 0, 0 })
	h.apply(isvcYAML("ok-s", "gs://b/v1", "    minReplicas: 3\n    maxReplicas: 5\n"))
	var reps mgmt.Replicas
	apiJSON(t, NewAPIServer(h.ctl).Handler(), "GET", "/api/v1/namespaces/default/inferenceservices/ok-s/replicas", "", 200, &reps)
	rev := "ok-s-predictor-00001"
	if len(reps.Revisions[rev]) != 3 || reps.Desired[rev] != 3 || reps.Panic[rev] {
		b, _ := json.Marshal(reps)
		t.Fatalf("replicas %s, want 3 running and 3 desired", b)
	}
}

// TestEnqueueRevisionQueuesItsService: the autoscaler's per-revision
// callback queues only the service that runs the revision.
func TestEnqueueRevisionQueuesItsService(t *testing.T) {
	h := newHarness(t)
	h.apply(isvcYAML("ok-a", "gs://b/a", "") + "---\n" + isvcYAML("ok-b", "gs://b/b", "") + "---\n" + otherNamespaceISVC)
	drain := func() []string {
		var keys []string
		for h.ctl.queue.Len() > 0 {
			k, _ := h.ctl.queue.Get()
			h.ctl.queue.Done(k)
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return keys
	}
	drain() // what the applies queued
	h.ctl.EnqueueRevision("default", "ok-a-predictor-00001")
	if got := drain(); !slices.Equal(got, []string{"default/ok-a"}) {
		t.Fatalf("queued %v, want default/ok-a", got)
	}
	// Another namespace's revision of that name, and unknown revisions,
	// queue nothing.
	h.ctl.EnqueueRevision("other", "ok-a-predictor-00001")
	h.ctl.EnqueueRevision("default", "ok-a-predictor-00009")
	h.ctl.EnqueueRevision("default", "ok-b")
	if got := drain(); len(got) != 0 {
		t.Fatalf("queued %v, want nothing", got)
	}
	h.ctl.EnqueueRevision("other", "ok-b-predictor-00001")
	if got := drain(); !slices.Equal(got, []string{"other/ok-b"}) {
		t.Fatalf("queued %v, want other/ok-b", got)
	}
}
