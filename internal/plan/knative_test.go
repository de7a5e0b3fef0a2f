package plan

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/api"
)

func TestDeploymentMode(t *testing.T) {
	for _, tc := range []struct {
		ann       map[string]string
		def, want string
		err       string
	}{
		{nil, "", ModeRawDeployment, ""},
		{nil, "Serverless", ModeServerless, ""},
		{map[string]string{AnnotationDeploymentMode: "Serverless"}, "", ModeServerless, ""},
		{map[string]string{AnnotationDeploymentMode: "RawDeployment"}, "Serverless", ModeRawDeployment, ""},
		// KServe's newer names for the same modes.
		{map[string]string{AnnotationDeploymentMode: "Knative"}, "", ModeServerless, ""},
		{map[string]string{AnnotationDeploymentMode: "Standard"}, "Serverless", ModeRawDeployment, ""},
		{map[string]string{AnnotationDeploymentMode: "ModelMesh"}, "", "", `unsupported value "ModelMesh"`},
		{nil, "Lambda", "", `unsupported value "Lambda"`},
	} {
		got, err := DeploymentMode(tc.ann, tc.def)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), AnnotationDeploymentMode) {
				t.Errorf("DeploymentMode(%v, %q) = %q, %v; want an error with %q", tc.ann, tc.def, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("DeploymentMode(%v, %q) = %q, %v; want %q", tc.ann, tc.def, got, err, tc.want)
		}
	}
}

func TestKnativeScaling(t *testing.T) {
	i32 := func(v int32) *int32 { return &v }
	for _, tc := range []struct {
		name string
		x    api.ComponentExtensionSpec
		isvc map[string]string
		want map[string]string
		err  string
	}{
		{name: "defaults: KPA, one replica, no maximum", x: api.ComponentExtensionSpec{},
			want: map[string]string{KnativeClass: KnativeKPA, KnativeMinScale: "1"}},
		{name: "scale to zero", x: api.ComponentExtensionSpec{MinReplicas: i32(0), MaxReplicas: 3},
			want: map[string]string{KnativeClass: KnativeKPA, KnativeMinScale: "0", KnativeMaxScale: "3"}},
		{name: "concurrency target", x: api.ComponentExtensionSpec{MinReplicas: i32(2), MaxReplicas: 5, ScaleMetric: "concurrency", ScaleTarget: i32(4)},
			want: map[string]string{KnativeClass: KnativeKPA, KnativeMinScale: "2", KnativeMaxScale: "5", KnativeMetric: "concurrency", KnativeTarget: "4"}},
		{name: "rps", x: api.ComponentExtensionSpec{ScaleMetric: "rps", ScaleTarget: i32(100)},
			want: map[string]string{KnativeClass: KnativeKPA, KnativeMinScale: "1", KnativeMetric: "rps", KnativeTarget: "100"}},
		{name: "maxReplicas below minReplicas is raised", x: api.ComponentExtensionSpec{MinReplicas: i32(4), MaxReplicas: 2},
			want: map[string]string{KnativeClass: KnativeKPA, KnativeMinScale: "4", KnativeMaxScale: "4"}},
		{name: "cpu takes Knative's HPA class, which cannot scale to zero", x: api.ComponentExtensionSpec{MinReplicas: i32(0), MaxReplicas: 3, ScaleMetric: "cpu", ScaleTarget: i32(60)},
			want: map[string]string{KnativeClass: KnativeHPA, KnativeMinScale: "1", KnativeMaxScale: "3", KnativeMetric: "cpu", KnativeTarget: "60"}},
		{name: "annotations pass, the spec wins, min and max only from the spec",
			x:    api.ComponentExtensionSpec{ScaleTarget: i32(7), Annotations: map[string]string{KnativeAutoscalingPrefix + "window": "30s"}},
			isvc: map[string]string{KnativeTarget: "1", KnativeMinScale: "9", KnativeMaxScale: "9", "other": "x"},
			want: map[string]string{KnativeClass: KnativeKPA, KnativeMinScale: "1", KnativeTarget: "7", KnativeAutoscalingPrefix + "window": "30s"}},
		{name: "component annotations win over the service's",
			x:    api.ComponentExtensionSpec{Annotations: map[string]string{KnativeTarget: "3"}},
			isvc: map[string]string{KnativeTarget: "1"},
			want: map[string]string{KnativeClass: KnativeKPA, KnativeMinScale: "1", KnativeTarget: "3"}},
		{name: "cpu under an explicit KPA class", x: api.ComponentExtensionSpec{ScaleMetric: "memory"},
			isvc: map[string]string{KnativeClass: KnativeKPA}, err: "spec.predictor.scaleMetric"},
		{name: "rps under the HPA class", x: api.ComponentExtensionSpec{ScaleMetric: "rps"},
			isvc: map[string]string{KnativeClass: KnativeHPA}, err: "spec.predictor.scaleMetric"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := KnativeScaling("predictor", &tc.x, tc.isvc)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, %v; want an error naming %s", got, err, tc.err)
				}
				return
			}
			if err != nil || !maps.Equal(got, tc.want) {
				t.Errorf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestKnativeTraffic(t *testing.T) {
	latest100 := []KnativeTrafficTarget{{LatestRevision: true, Percent: 100}}
	for _, tc := range []struct {
		name string
		in   []TrafficTarget
		want []KnativeTrafficTarget
	}{
		{"nothing ready yet", nil, latest100},
		{"all on the latest", []TrafficTarget{{Revision: "s-predictor-00001", Percent: 100, Latest: true}}, latest100},
		{"canary 10 %", []TrafficTarget{
			{Revision: "s-predictor-00002", Percent: 10, Latest: true},
			{Revision: "s-predictor-00001", Percent: 90, Tag: "prev"},
		}, []KnativeTrafficTarget{
			{Tag: "latest", LatestRevision: true, Percent: 10},
			{Tag: "prev", RevisionName: "s-predictor-00001", Percent: 90},
		}},
		{"rollback pins the previous revision", []TrafficTarget{
			{Revision: "s-predictor-00002", Percent: 0, Latest: true},
			{Revision: "s-predictor-00001", Percent: 100, Tag: "prev"},
		}, []KnativeTrafficTarget{
			{Tag: "latest", LatestRevision: true, Percent: 0},
			{Tag: "prev", RevisionName: "s-predictor-00001", Percent: 100},
		}},
	} {
		if got := KnativeTraffic(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestKnativeRevisions(t *testing.T) {
	r := func(n int) string { return RevisionName("s", "predictor", n) }
	for _, tc := range []struct {
		name     string
		o        KnativeObservation
		prev     api.ComponentStatus
		revs     []string
		observed map[string]Observed
	}{
		{name: "new Knative Service",
			o:        KnativeObservation{Template: r(1)},
			revs:     []string{r(1)},
			observed: map[string]Observed{r(1): {Waiting: "waiting for Knative to create revision s-predictor-00001"}}},
		{name: "created, not ready",
			o:        KnativeObservation{Template: r(1), Current: true, LatestCreated: r(1), ConfigurationsReady: "Unknown"},
			revs:     []string{r(1)},
			observed: map[string]Observed{r(1): {Waiting: "waiting for Knative to make revision s-predictor-00001 ready"}}},
		{name: "ready",
			o:        KnativeObservation{Template: r(1), Current: true, LatestCreated: r(1), LatestReady: r(1), Routed: []string{r(1)}},
			revs:     []string{r(1)},
			observed: map[string]Observed{r(1): {Ready: true}}},
		{name: "new template not seen by Knative yet; the rolled-out one stays ready",
			o:        KnativeObservation{Template: r(2), LatestCreated: r(1), LatestReady: r(1), Routed: []string{r(1)}},
			prev:     api.ComponentStatus{LatestReadyRevision: r(1), LatestRolledoutRevision: r(1)},
			revs:     []string{r(1), r(2)},
			observed: map[string]Observed{r(1): {Ready: true}, r(2): {Waiting: "waiting for Knative to create revision s-predictor-00002"}}},
		{name: "new revision failed",
			o:        KnativeObservation{Template: r(2), Current: true, LatestCreated: r(2), LatestReady: r(1), ConfigurationsReady: "False", ConfigurationsMessage: "image pull backoff"},
			prev:     api.ComponentStatus{LatestReadyRevision: r(1), LatestRolledoutRevision: r(1)},
			revs:     []string{r(1), r(2)},
			observed: map[string]Observed{r(1): {Ready: true}, r(2): {Failed: "Knative: revision s-predictor-00002 failed: image pull backoff"}}},
		{name: "older revisions that served are idle, not gone (the activator wakes them)",
			o:        KnativeObservation{Template: r(3), Current: true, LatestCreated: r(3), LatestReady: r(3), Routed: []string{r(3)}},
			prev:     api.ComponentStatus{LatestReadyRevision: r(3), LatestRolledoutRevision: r(2), PreviousRolledoutRevision: r(1)},
			revs:     []string{r(1), r(2), r(3)},
			observed: map[string]Observed{r(1): {Idle: true}, r(2): {Idle: true}, r(3): {Ready: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			revs, obs := KnativeRevisions(tc.o, tc.prev)
			if !slices.Equal(revs, tc.revs) || !maps.Equal(obs, tc.observed) {
				t.Errorf("got %v %v, want %v %v", revs, obs, tc.revs, tc.observed)
			}
		})
	}
}

// TestKnativeRollout runs KFServing 0.5's canary samples through the planner
// as the operator does in Serverless mode: Knative reports, plan decides,
// KnativeTraffic writes the traffic block.
func TestKnativeRollout(t *testing.T) {
	r := func(n int) string { return RevisionName("s", "predictor", n) }
	var prev api.ComponentStatus
	step := func(o KnativeObservation, canary *int) ([]KnativeTrafficTarget, Output) {
		t.Helper()
		revs, obs := KnativeRevisions(o, prev)
		out := Component("predictor", Input{Revisions: revs, Observed: obs, CanaryTrafficPercent: canary, Previous: prev})
		prev = out.Status()
		return KnativeTraffic(out.Traffic), out
	}
	ten, zero := 10, 0
	tr, out := step(KnativeObservation{Template: r(1), Current: true, LatestCreated: r(1), LatestReady: r(1)}, nil)
	if out.Rollout.LatestRolledout != r(1) || len(tr) != 1 || !tr[0].LatestRevision || tr[0].Percent != 100 {
		t.Fatalf("first revision: %+v %+v", tr, out.Rollout)
	}
	// Canary at 10 %: while revision 2 is not ready, everything stays on 1.
	tr, _ = step(KnativeObservation{Template: r(2), Current: true, LatestCreated: r(2), LatestReady: r(1)}, &ten)
	if len(tr) != 1 || tr[0].Percent != 100 {
		t.Fatalf("canary before ready: %+v", tr)
	}
	tr, out = step(KnativeObservation{Template: r(2), Current: true, LatestCreated: r(2), LatestReady: r(2), Routed: []string{r(1)}}, &ten)
	want := []KnativeTrafficTarget{{Tag: "latest", LatestRevision: true, Percent: 10}, {Tag: "prev", RevisionName: r(1), Percent: 90}}
	if !reflect.DeepEqual(tr, want) || out.Rollout.LatestRolledout != r(1) {
		t.Fatalf("canary: %+v %+v, want %+v", tr, out.Rollout, want)
	}
	// Promotion.
	tr, out = step(KnativeObservation{Template: r(2), Current: true, LatestCreated: r(2), LatestReady: r(2), Routed: []string{r(2), r(1)}}, nil)
	if len(tr) != 1 || tr[0].Percent != 100 || out.Rollout.LatestRolledout != r(2) || out.Rollout.PreviousRolledout != r(1) {
		t.Fatalf("promotion: %+v %+v", tr, out.Rollout)
	}
	// Rollback: canaryTrafficPercent 0 pins revision 1, which may be at zero.
	tr, out = step(KnativeObservation{Template: r(2), Current: true, LatestCreated: r(2), LatestReady: r(2), Routed: []string{r(2)}}, &zero)
	want = []KnativeTrafficTarget{{Tag: "latest", LatestRevision: true, Percent: 0}, {Tag: "prev", RevisionName: r(1), Percent: 100}}
	if !reflect.DeepEqual(tr, want) || out.Condition.Status != "True" {
		t.Fatalf("rollback: %+v %+v, want %+v", tr, out.Condition, want)
	}
}

func TestKnativeConditions(t *testing.T) {
	now := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	ready := map[string]Observed{"s-predictor-00001": {Ready: true}}
	in := ServiceInput{Now: now, Components: map[string]Input{
		"predictor":   {Revisions: []string{"s-predictor-00001"}, Observed: ready},
		"transformer": {Revisions: []string{"s-transformer-00001"}, Observed: map[string]Observed{"s-transformer-00001": {Ready: true}}},
	}}
	out := Service(in)
	status := func(conds []api.Condition) map[string]string {
		m := map[string]string{}
		for _, c := range conds {
			m[c.Type] = c.Status + "/" + c.Reason
		}
		return m
	}
	k := map[string]KnativeReadiness{
		"predictor":   {Current: true, Status: "True"},
		"transformer": {Current: true, Status: "True"},
	}
	got := status(KnativeConditions(out, k, nil, now))
	want := map[string]string{"PredictorReady": "True/", "TransformerReady": "True/", "IngressReady": "True/", "Ready": "True/"}
	if !maps.Equal(got, want) {
		t.Errorf("all ready: %v, want %v", got, want)
	}
	k["transformer"] = KnativeReadiness{Current: true, Status: "False", Reason: "RevisionMissing", Message: "no revision"}
	k["predictor"] = KnativeReadiness{Current: false, Status: "True"}
	got = status(KnativeConditions(out, k, nil, now))
	want = map[string]string{"PredictorReady": "False/KnativeServiceNotReconciled", "TransformerReady": "False/RevisionMissing", "IngressReady": "True/", "Ready": "False/ComponentsNotReady"}
	if !maps.Equal(got, want) {
		t.Errorf("Knative not ready: %v, want %v", got, want)
	}
	// Plan's own verdict stands when it is not ready.
	in.Components["predictor"] = Input{Revisions: []string{"s-predictor-00001"}}
	got = status(KnativeConditions(Service(in), map[string]KnativeReadiness{"predictor": {Current: true, Status: "True"}, "transformer": {Current: true, Status: "True"}}, nil, now))
	if got["PredictorReady"] != "False/RevisionNotReady" || got["IngressReady"] != "False/NoReadyRevision" || got["Ready"] != "False/ComponentsNotReady" {
		t.Errorf("plan not ready: %v", got)
	}
}
