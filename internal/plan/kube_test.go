package plan

import (
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/api"
)

func i32(v int32) *int32 { return &v }

func TestKubeScaling(t *testing.T) {
	for _, tc := range []struct {
		name    string
		x       api.ComponentExtensionSpec
		isvcAnn map[string]string
		want    Scaling
		wantErr string
	}{
		{name: "defaults: one replica, no HPA", want: Scaling{Replicas: 1}},
		{name: "min equals max: fixed", x: api.ComponentExtensionSpec{MinReplicas: i32(3), MaxReplicas: 3}, want: Scaling{Replicas: 3}},
		{name: "max below min is raised", x: api.ComponentExtensionSpec{MinReplicas: i32(2)}, want: Scaling{Replicas: 2}},
		{name: "cpu by default at 80 %", x: api.ComponentExtensionSpec{MinReplicas: i32(1), MaxReplicas: 5},
			want: Scaling{Replicas: 1, HPA: &HPA{Min: 1, Max: 5, Metric: "cpu", TargetUtilization: 80}}},
		{name: "memory with a target", x: api.ComponentExtensionSpec{MinReplicas: i32(2), MaxReplicas: 4, ScaleMetric: "memory", ScaleTarget: i32(60)},
			want: Scaling{Replicas: 2, HPA: &HPA{Min: 2, Max: 4, Metric: "memory", TargetUtilization: 60}}},
		{name: "zero min starts one replica", x: api.ComponentExtensionSpec{MinReplicas: i32(0), MaxReplicas: 3},
			want: Scaling{Replicas: 1, HPA: &HPA{Min: 1, Max: 3, Metric: "cpu", TargetUtilization: 80}}},
		{name: "external on the InferenceService", x: api.ComponentExtensionSpec{MaxReplicas: 5},
			isvcAnn: map[string]string{AnnotationAutoscalerClass: "external"}, want: Scaling{Replicas: 1, External: true}},
		{name: "component annotation wins", x: api.ComponentExtensionSpec{MaxReplicas: 5, Annotations: map[string]string{AnnotationAutoscalerClass: "hpa"}},
			isvcAnn: map[string]string{AnnotationAutoscalerClass: "external"}, want: Scaling{Replicas: 1, HPA: &HPA{Min: 1, Max: 5, Metric: "cpu", TargetUtilization: 80}}},
		{name: "external skips the metric check", x: api.ComponentExtensionSpec{MaxReplicas: 5, ScaleMetric: "rps"},
			isvcAnn: map[string]string{AnnotationAutoscalerClass: "external"}, want: Scaling{Replicas: 1, External: true}},
		{name: "concurrency needs Knative", x: api.ComponentExtensionSpec{MaxReplicas: 5, ScaleMetric: "concurrency"}, wantErr: "spec.predictor.scaleMetric"},
		{name: "rps needs Knative even when fixed", x: api.ComponentExtensionSpec{ScaleMetric: "rps"}, wantErr: `"rps"`},
		{name: "unknown class", isvcAnn: map[string]string{AnnotationAutoscalerClass: "kpa.autoscaling.knative.dev"}, wantErr: AnnotationAutoscalerClass},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := KubeScaling("predictor", &tc.x, tc.isvcAnn)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Replicas != tc.want.Replicas || got.External != tc.want.External || (got.HPA == nil) != (tc.want.HPA == nil) ||
				got.HPA != nil && *got.HPA != *tc.want.HPA {
				t.Errorf("got %+v (HPA %+v), want %+v (HPA %+v)", got, got.HPA, tc.want, tc.want.HPA)
			}
		})
	}
}

func TestServiceTarget(t *testing.T) {
	for _, tc := range []struct {
		traffic []TrafficTarget
		want    string
	}{
		{nil, "fallback"},
		{[]TrafficTarget{{Revision: "r2", Percent: 100, Latest: true}}, "r2"},
		{[]TrafficTarget{{Revision: "r2", Percent: 10, Latest: true}, {Revision: "r1", Percent: 90, Tag: "prev"}}, "r1"},
		{[]TrafficTarget{{Revision: "r2", Percent: 50, Latest: true}, {Revision: "r1", Percent: 50, Tag: "prev"}}, "r2"},
		{[]TrafficTarget{{Revision: "r2", Percent: 0, Latest: true}, {Revision: "r1", Percent: 100, Tag: "prev"}}, "r1"},
	} {
		if got := ServiceTarget(tc.traffic, "fallback"); got != tc.want {
			t.Errorf("ServiceTarget(%+v) = %s, want %s", tc.traffic, got, tc.want)
		}
	}
}

func TestEntryComponentAndHost(t *testing.T) {
	spec := api.InferenceServiceSpec{}
	if got := EntryComponent(&spec); got != api.ComponentPredictor {
		t.Errorf("entry without transformer = %s", got)
	}
	spec.Explainer = &api.ExplainerSpec{}
	spec.Transformer = &api.TransformerSpec{}
	if got := EntryComponent(&spec); got != api.ComponentTransformer {
		t.Errorf("entry with transformer = %s", got)
	}
	if got := IngressHost("iris", "models", "example.com"); got != "iris.models.example.com" {
		t.Errorf("host = %s", got)
	}
}

func TestModelConfig(t *testing.T) {
	tm := func(name, isvc string) *api.TrainedModel {
		return &api.TrainedModel{Metadata: api.ObjectMeta{Name: name}, Spec: api.TrainedModelSpec{
			InferenceService: isvc, Model: api.StoredModel{StorageURI: "gs://b/" + name, Framework: "sklearn", Memory: "256Mi"}}}
	}
	gone := tm("c", "mms")
	got := ModelConfig("mms", []*api.TrainedModel{tm("b", "mms"), tm("x", "other"), gone, tm("a", "mms")},
		func(m *api.TrainedModel) bool { return m == gone })
	if len(got) != 2 || got[0].Name != "a" || got[1].Name != "b" || got[0].StorageURI != "gs://b/a" || got[0].Memory != "256Mi" || got[0].Framework != "sklearn" {
		t.Errorf("ModelConfig = %+v, want a then b", got)
	}
	if got := ModelConfig("mms", nil, nil); got != nil {
		t.Errorf("no models = %+v", got)
	}
}

func TestTrainedModelConditions(t *testing.T) {
	str := func(cs []api.Condition) string {
		var s []string
		for _, c := range cs {
			s = append(s, c.Type+"="+c.Status+" "+c.Reason)
		}
		return strings.Join(s, ", ")
	}
	for _, tc := range []struct {
		invalid                      string
		parent, parentReady, written bool
		want                         string
	}{
		{"", true, true, true, "InferenceServiceReady=True , Ready=True "},
		{"", true, false, true, "InferenceServiceReady=False InferenceServiceNotReady, Ready=False InferenceServiceNotReady"},
		{"", false, false, false, "InferenceServiceReady=False InferenceServiceNotFound, Ready=False NotInModelConfig"},
		{"", true, true, false, "InferenceServiceReady=True , Ready=False NotInModelConfig"},
		{"spec.model.storageUri: required", true, true, false, "InferenceServiceReady=Unknown , Ready=False InvalidSpec"},
	} {
		if got := str(TrainedModelConditions(tc.invalid, tc.parent, tc.parentReady, tc.written)); got != tc.want {
			t.Errorf("TrainedModelConditions(%q, %v, %v, %v) = %s, want %s", tc.invalid, tc.parent, tc.parentReady, tc.written, got, tc.want)
		}
	}
}
