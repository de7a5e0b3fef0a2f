package controlplane

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/mgmt"
	"github.com/ferryserve/ferry/internal/rollout"
)

// rolloutISVC is a service with a rollout policy (and, when state is not
// empty, the runner's recorded state) in its annotations.
func rolloutISVC(name, steps, state string) string {
	ann := fmt.Sprintf("  annotations:\n    %s: %q\n    %s: 30s\n", rollout.AnnotationSteps, steps, rollout.AnnotationInterval)
	if state != "" {
		ann += fmt.Sprintf("    %s: '%s'\n", rollout.AnnotationState, state)
	}
	return fmt.Sprintf("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n  name: %s\n%sspec:\n  predictor:\n    canaryTrafficPercent: 10\n    sklearn:\n      storageUri: gs://b/m\n", name, ann)
}

func TestRolloutStatusReportsPolicyStateAndPredictor(t *testing.T) {
	h := newHarness(t)
	h.apply(rolloutISVC("ok-r", "10,50,100", `{"revision":"ok-r-predictor-00002","step":1,"percent":50,"phase":"Progressing"}`) +
		"---\n" + rolloutISVC("ok-bad", "50,10", ""))
	srv := NewAPIServer(h.ctl).Handler()

	var st RolloutStatus
	apiJSON(t, srv, "GET", "/api/v1/namespaces/default/inferenceservices/ok-r/rollout", "", 200, &st)
	if st.Namespace != "default" || st.Name != "ok-r" || st.Paused || st.PolicyError != "" || st.RolledBack != "" {
		t.Fatalf("status %+v", st)
	}
	if st.Policy[rollout.AnnotationSteps] != "10,50,100" || st.Policy[rollout.AnnotationInterval] != "30s" || len(st.Policy) != 2 {
		t.Fatalf("policy %v", st.Policy)
	}
	if st.State == nil || st.State.Revision != "ok-r-predictor-00002" || st.State.Percent != 50 || st.State.Phase != "Progressing" {
		t.Fatalf("state %+v", st.State)
	}
	if st.CanaryTrafficPercent == nil || *st.CanaryTrafficPercent != 10 {
		t.Fatalf("canaryTrafficPercent %v", st.CanaryTrafficPercent)
	}
	if st.Predictor == nil || st.Predictor.LatestReadyRevision != "ok-r-predictor-00001" {
		t.Fatalf("predictor status %+v", st.Predictor)
	}

	// An invalid policy is reported, not refused.
	var bad RolloutStatus
	apiJSON(t, srv, "GET", "/api/v1/namespaces/default/inferenceservices/ok-bad/rollout", "", 200, &bad)
	if !strings.Contains(bad.PolicyError, "steps must increase") || bad.State != nil {
		t.Fatalf("invalid policy: %+v", bad)
	}

	var e mgmt.ErrorBody
	apiJSON(t, srv, "GET", "/api/v1/namespaces/default/inferenceservices/nope/rollout", "", 404, &e)
	if !strings.Contains(e.Error, "not found") {
		t.Fatalf("unknown service: %q", e.Error)
	}
}

// TestRolloutControlSetsAnnotations: pause, resume and abort change only
// annotations (no new generation, no new revision).
func TestRolloutControlSetsAnnotations(t *testing.T) {
	h := newHarness(t)
	h.apply(rolloutISVC("ok-r", "10,50,100", ""))
	srv := NewAPIServer(h.ctl).Handler()
	base := "/api/v1/namespaces/default/inferenceservices/ok-r/rollout"
	annotations := func() map[string]string {
		t.Helper()
		isvc, err := h.ctl.InferenceService("default", "ok-r")
		if err != nil {
			t.Fatal(err)
		}
		if isvc.Metadata.Generation != 1 {
			t.Fatalf("generation %d after a control action, want 1", isvc.Metadata.Generation)
		}
		return isvc.Metadata.Annotations
	}

	for _, c := range []struct {
		action              string
		paused, abort       bool
		wantPausedInStatus  bool
		wantActionInResults string
	}{
		{"pause", true, false, true, "configured"},
		{"pause", true, false, true, "unchanged"},
		{"resume", false, false, false, "configured"},
		{"pause", true, false, true, "configured"},
		// An abort is carried out even when paused: it lifts the pause.
		{"abort", false, true, false, "configured"},
	} {
		var res mgmt.ApplyResult
		apiJSON(t, srv, "POST", base+"/"+c.action, "", 200, &res)
		if res.Action != c.wantActionInResults || res.Name != "ok-r" {
			t.Fatalf("%s: %+v, want %s", c.action, res, c.wantActionInResults)
		}
		ann := annotations()
		if _, has := ann[rollout.AnnotationPaused]; has != c.paused {
			t.Fatalf("after %s: paused annotation %v, want %v (%v)", c.action, has, c.paused, ann)
		}
		if (ann[rollout.AnnotationAbort] == "true") != c.abort {
			t.Fatalf("after %s: abort annotation %q", c.action, ann[rollout.AnnotationAbort])
		}
		if ann[rollout.AnnotationSteps] != "10,50,100" {
			t.Fatalf("after %s: the policy was lost: %v", c.action, ann)
		}
		var st RolloutStatus
		apiJSON(t, srv, "GET", base, "", 200, &st)
		if st.Paused != c.wantPausedInStatus {
			t.Fatalf("after %s: status paused %v", c.action, st.Paused)
		}
	}
	h.reconcile()
	if revs, err := h.ctl.revisions("default", "ok-r", "predictor"); err != nil || len(revs) != 1 {
		t.Fatalf("control actions made revisions: %d %v", len(revs), err)
	}

	var e mgmt.ErrorBody
	apiJSON(t, srv, "POST", base+"/restart", "", 404, &e)
	if !strings.Contains(e.Error, "want pause, resume or abort") {
		t.Fatalf("unknown action: %q", e.Error)
	}
	apiJSON(t, srv, "POST", "/api/v1/namespaces/default/inferenceservices/nope/rollout/pause", "", 404, nil)
}

func TestRolloutControlNeedsAPolicy(t *testing.T) {
	h := newHarness(t)
	h.apply(isvcYAML("ok-plain", "gs://b/m", ""))
	srv := NewAPIServer(h.ctl).Handler()
	var e mgmt.ErrorBody
	apiJSON(t, srv, "POST", "/api/v1/namespaces/default/inferenceservices/ok-plain/rollout/pause", "", 409, &e)
	if !strings.Contains(e.Error, rollout.AnnotationSteps) {
		t.Fatalf("no policy: %q", e.Error)
	}
	isvc, err := h.ctl.InferenceService("default", "ok-plain")
	if err != nil {
		t.Fatal(err)
	}
	if _, has := isvc.Metadata.Annotations[rollout.AnnotationPaused]; has {
		t.Fatal("a refused pause was stored")
	}
}

// TestRolloutHooks: the runner's view of the controller (services with
// status, events) and its errors.
func TestRolloutHooks(t *testing.T) {
	h := newHarness(t)
	h.apply(isvcYAML("ok-a", "gs://b/a", "") + "---\n" + otherNamespaceISVC)

	all, err := h.ctl.InferenceServices()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range all {
		names = append(names, s.Metadata.Namespace+"/"+s.Metadata.Name)
		if s.Status == nil || ready(s.Status) != "True" {
			t.Errorf("%s/%s without a Ready status: %+v", s.Metadata.Namespace, s.Metadata.Name, s.Status)
		}
	}
	if strings.Join(names, ",") != "default/ok-a,other/ok-b" {
		t.Fatalf("services %v", names)
	}
	one, err := h.ctl.InferenceService("other", "ok-b")
	if err != nil || one.Spec.Predictor.SKLearn == nil || one.Spec.Predictor.SKLearn.StorageURI != "gs://b/b" {
		t.Fatalf("InferenceService: %+v %v", one, err)
	}
	if _, err := h.ctl.InferenceService("other", "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing service: %v, want ErrNotFound", err)
	}

	h.ctl.Event("default", "ok-a", "Warning", "RolloutAborted", "canary error rate 5% over 1%")
	evs := h.ctl.Events("default", "ok-a")
	last := evs[len(evs)-1]
	if last.Type != "Warning" || last.Reason != "RolloutAborted" || last.Message != "canary error rate 5% over 1%" {
		t.Fatalf("last event %+v", last)
	}
	if n := len(h.ctl.Events("other", "ok-b")); n == 0 || h.ctl.Events("other", "ok-b")[n-1].Reason == "RolloutAborted" {
		t.Fatal("the event landed on another service")
	}

	// A stored object that does not decode is an error, not a skipped one.
	if err := h.store.Put(KindInferenceService, "default/broken", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ctl.InferenceServices(); err == nil || !strings.Contains(err.Error(), "decode") {
		t.Fatalf("InferenceServices with a broken object: %v", err)
	}
	if _, err := h.ctl.InferenceService("default", "broken"); err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "default/broken") {
		t.Fatalf("InferenceService of a broken object: %v", err)
	}
	var e mgmt.ErrorBody
	apiJSON(t, NewAPIServer(h.ctl).Handler(), "GET", "/api/v1/namespaces/default/inferenceservices/broken/rollout", "", 500, &e)
	if !strings.Contains(e.Error, "decode") {
		t.Fatalf("rollout status of a broken object: %q", e.Error)
	}
}

// TestUpdateIsConditional: a read-modify-write (a rollout step, a rollout
// control) that lost a race with another write fails with ErrConflict and
// leaves the other write in place; on the current version it lands, and
// the status the reconciler wrote is kept.
func TestUpdateIsConditional(t *testing.T) {
	h := newHarness(t)
	h.apply(rolloutISVC("cas", "10,50", ""))
	read, err := h.ctl.InferenceService("default", "cas")
	if err != nil {
		t.Fatal(err)
	}
	if read.Metadata.ResourceVersion == "" || read.Status == nil {
		t.Fatalf("stored service has no resourceVersion or status: %+v", read.Metadata)
	}

	// A user's apply lands after the read.
	h.apply(strings.Replace(rolloutISVC("cas", "10,50", ""), "gs://b/m", "gs://b/m2", 1))

	step := *read
	step.Metadata.Annotations = map[string]string{rollout.AnnotationSteps: "10,50", rollout.AnnotationInterval: "30s", rollout.AnnotationState: `{"step":1}`}
	if _, err := h.ctl.Update(&step); !errors.Is(err, ErrConflict) {
		t.Fatalf("update from a stale read: %v, want ErrConflict", err)
	}
	cur, err := h.ctl.InferenceService("default", "cas")
	if err != nil {
		t.Fatal(err)
	}
	if cur.Metadata.Generation != 2 || cur.Metadata.Annotations[rollout.AnnotationState] != "" {
		t.Fatalf("after the refused update: generation %d, annotations %v; want the user's generation 2 untouched", cur.Metadata.Generation, cur.Metadata.Annotations)
	}

	// On the current version it lands: metadata only, same generation,
	// a new resourceVersion, the status kept.
	step = *cur
	step.Metadata.Annotations = map[string]string{rollout.AnnotationSteps: "10,50", rollout.AnnotationInterval: "30s", rollout.AnnotationState: `{"step":1}`}
	step.Status = nil
	res, err := h.ctl.Update(&step)
	if err != nil || res.Action != "configured" {
		t.Fatalf("update from the current read: %+v, %v", res, err)
	}
	after, err := h.ctl.InferenceService("default", "cas")
	if err != nil {
		t.Fatal(err)
	}
	if after.Metadata.Generation != 2 || after.Metadata.Annotations[rollout.AnnotationState] != `{"step":1}` ||
		after.Metadata.ResourceVersion == cur.Metadata.ResourceVersion || after.Status == nil {
		t.Fatalf("after the update: %+v (status %v)", after.Metadata, after.Status)
	}

	// A service deleted since it was read.
	gone := *after
	gone.Metadata.Name = "never-applied"
	if _, err := h.ctl.Update(&gone); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update of a missing service: %v, want ErrNotFound", err)
	}
	if _, err := h.ctl.InferenceService("default", "never-applied"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the refused update created the service: %v", err)
	}
}
