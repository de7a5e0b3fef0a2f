package api

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestV1alpha2RoundTrip converts every v1alpha2 good file to v1beta1, back
// to v1alpha2 with ToV1alpha2, and forward again: the two v1beta1 objects
// must be equal, so `get -o yaml` can show either version without loss.
func TestV1alpha2RoundTrip(t *testing.T) {
	files, err := filepath.Glob("testdata/v1alpha2-*.good.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no v1alpha2 files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := Load(data)
			if err != nil {
				t.Fatal(err)
			}
			isvc := objs[0].(*InferenceService)
			if got := isvc.Metadata.Annotations[AnnotationConvertedFrom]; !strings.HasSuffix(got, "/"+VersionV1alpha2) {
				t.Errorf("annotation %s = %q", AnnotationConvertedFrom, got)
			}
			old, err := isvc.ToV1alpha2()
			if err != nil {
				t.Fatalf("ToV1alpha2: %v", err)
			}
			if old.APIVersion != isvc.Group()+"/"+VersionV1alpha2 {
				t.Errorf("apiVersion = %q", old.APIVersion)
			}
			if _, ok := old.Metadata.Annotations[AnnotationConvertedFrom]; ok {
				t.Errorf("the v1alpha2 view keeps Ferry's annotation: %v", old.Metadata.Annotations)
			}
			out, err := yaml.Marshal(old)
			if err != nil {
				t.Fatal(err)
			}
			again, err := Load(out)
			if err != nil {
				t.Fatalf("loading the v1alpha2 view: %v\n%s", err, out)
			}
			if a, b := mustJSON(t, isvc), mustJSON(t, again[0]); a != b {
				t.Errorf("round trip changed the object:\nwas %s\nnow %s\nv1alpha2:\n%s", a, b, out)
			}
		})
	}
}

func TestV1alpha2CanaryView(t *testing.T) {
	data, err := os.ReadFile("testdata/v1alpha2-canary.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Load(data)
	if err != nil {
		t.Fatal(err)
	}
	isvc := objs[0].(*InferenceService)
	yes := true
	ten, ninety := int64(10), int64(90)
	isvc.Status = &InferenceServiceStatus{
		URL: "http://my-model.default.example.com",
		Components: map[string]ComponentStatus{ComponentPredictor: {
			LatestCreatedRevision:   "my-model-predictor-00002",
			LatestRolledoutRevision: "my-model-predictor-00001",
			URL:                     "http://my-model-predictor.default.example.com",
			Traffic: []TrafficTarget{
				{RevisionName: "my-model-predictor-00002", LatestRevision: &yes, Percent: &ten},
				{RevisionName: "my-model-predictor-00001", Percent: &ninety},
			},
		}},
	}
	old, err := isvc.ToV1alpha2()
	if err != nil {
		t.Fatal(err)
	}
	if old.Spec.Canary == nil || old.Spec.Canary.Predictor.XGBoost == nil || old.Spec.Default.Predictor.Tensorflow == nil {
		t.Fatalf("endpoints = default %+v, canary %+v", old.Spec.Default.Predictor, old.Spec.Canary)
	}
	if p := old.Spec.CanaryTrafficPercent; p == nil || *p != 10 {
		t.Errorf("canaryTrafficPercent = %v", p)
	}
	st := old.Status
	want := &InferenceServiceStatusV1alpha2{
		URL: "http://my-model.default.example.com", Traffic: 90, CanaryTraffic: 10,
		Default: map[string]StatusConfigurationV1alpha2{ComponentPredictor: {Name: "my-model-predictor-00001", Hostname: "my-model-predictor.default.example.com"}},
		Canary:  map[string]StatusConfigurationV1alpha2{ComponentPredictor: {Name: "my-model-predictor-00002", Hostname: "my-model-predictor.default.example.com"}},
	}
	if !reflect.DeepEqual(st, want) {
		got, _ := json.Marshal(st)
		exp, _ := json.Marshal(want)
		t.Errorf("status = %s\nwant %s", got, exp)
	}
}

func TestToV1alpha2Unrepresentable(t *testing.T) {
	isvc := loadOne(t, `
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: generic}
spec:
  predictor:
    model:
      modelFormat: {name: sklearn}
      storageUri: gs://x/y
`)
	if _, err := isvc.ToV1alpha2(); err == nil || !strings.Contains(err.Error(), "spec.predictor.model has no v1alpha2 equivalent") {
		t.Errorf("ToV1alpha2 error = %v", err)
	}
}

func TestV1alpha2Path(t *testing.T) {
	for in, want := range map[string]string{
		"spec.predictor.sklearn.storageUri":        "spec.default.predictor.sklearn.storageUri",
		"spec.predictor.containers[0].env[1].name": "spec.default.predictor.custom.container.env[1].name",
		"spec.predictor.containerConcurrency":      "spec.default.predictor.parallelism",
		"spec.transformer.canaryTrafficPercent":    "spec.canaryTrafficPercent",
		"spec.explainer":                           "spec.default.explainer",
		"spec.predictorx":                          "spec.predictorx",
		"metadata.name":                            "metadata.name",
	} {
		if got := v1alpha2Path(in, "spec.default"); got != want {
			t.Errorf("v1alpha2Path(%q) = %q, want %q", in, got, want)
		}
	}
}
