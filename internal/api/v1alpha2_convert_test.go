package api

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// decodeV1alpha2 reads one v1alpha2 document as a conversion webhook gets
// it: plain JSON decoding, no defaults.
func decodeV1alpha2(t *testing.T, data []byte) *InferenceServiceV1alpha2 {
	t.Helper()
	var src InferenceServiceV1alpha2
	if err := yaml.UnmarshalStrict(data, &src); err != nil {
		t.Fatal(err)
	}
	return &src
}

// throughJSON encodes v and decodes it into a new T, as the webhook's
// response and the API server's next request do.
func throughJSON[T any](t *testing.T, v any) *T {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	return &out
}

// TestConvertV1alpha2Written writes each v1alpha2 good file as a client
// would: converted to v1beta1 (the stored version), defaulted as the
// mutating webhook does, and read back at v1alpha2. Without defaulting the
// read must equal what was written; with it, the view must convert back to
// the stored spec exactly (what the view cannot show rides in
// AnnotationV1beta1Spec).
func TestConvertV1alpha2Written(t *testing.T) {
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
			src := decodeV1alpha2(t, data)
			stored, err := src.ConvertToV1beta1()
			if err != nil {
				t.Fatal(err)
			}
			stored = throughJSON[InferenceService](t, stored)
			view, err := stored.ConvertToV1alpha2()
			if err != nil {
				t.Fatal(err)
			}
			if a, b := mustJSON(t, src.Spec), mustJSON(t, view.Spec); a != b {
				t.Errorf("read back at v1alpha2:\nwrote %s\nread  %s", a, b)
			}
			if a, b := mustJSON(t, src.Metadata), mustJSON(t, view.Metadata); a != b {
				t.Errorf("metadata read back at v1alpha2:\nwrote %s\nread  %s", a, b)
			}

			stored.Default()
			view, err = stored.ConvertToV1alpha2()
			if err != nil {
				t.Fatal(err)
			}
			view = throughJSON[InferenceServiceV1alpha2](t, view)
			if _, ok := view.Metadata.Annotations[AnnotationV1beta1Spec]; !ok && src.Spec.Default.Predictor.Custom == nil {
				t.Errorf("the defaulted view has no %s, though v1alpha2 cannot show protocolVersion", AnnotationV1beta1Spec)
			}
			again, err := view.ConvertToV1beta1()
			if err != nil {
				t.Fatal(err)
			}
			if a, b := mustJSON(t, stored), mustJSON(t, again); a != b {
				t.Errorf("defaulted object changed through v1alpha2:\nwas %s\nnow %s", a, b)
			}
			if !strings.Contains(mustJSON(t, view.Spec), "storageUri") && src.Spec.Default.Predictor.Custom == nil {
				t.Errorf("view lost the model: %s", mustJSON(t, view.Spec))
			}
		})
	}
}

// TestConvertV1beta1RoundTrip converts every v1beta1 InferenceService of the
// testdata and KServe's samples, defaulted, to v1alpha2 and back: nothing
// may fail (the API server converts whole lists) and the spec, labels and
// annotations must come back as they were, but for the converted-from
// annotation.
func TestConvertV1beta1RoundTrip(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.good.yaml")
	samples, _ := filepath.Glob("testdata/kserve-samples/*.yaml")
	n := 0
	for _, file := range append(files, samples...) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := Load(data)
		if err != nil {
			continue // samples Ferry refuses are checked elsewhere
		}
		for _, o := range objs {
			isvc, ok := o.(*InferenceService)
			if !ok {
				continue
			}
			n++
			view, err := isvc.ConvertToV1alpha2()
			if err != nil {
				t.Errorf("%s %s: %v", file, isvc.Metadata.Name, err)
				continue
			}
			view = throughJSON[InferenceServiceV1alpha2](t, view)
			back, err := view.ConvertToV1beta1()
			if err != nil {
				t.Errorf("%s %s: back: %v", file, isvc.Metadata.Name, err)
				continue
			}
			if a, b := mustJSON(t, isvc.Spec), mustJSON(t, back.Spec); a != b {
				t.Errorf("%s %s: spec changed:\nwas %s\nnow %s", file, isvc.Metadata.Name, a, b)
			}
			want := maps.Clone(isvc.Metadata.Annotations)
			if want == nil {
				want = map[string]string{}
			}
			if _, ok := want[AnnotationConvertedFrom]; !ok {
				want[AnnotationConvertedFrom] = isvc.Group() + "/" + VersionV1alpha2
			}
			if a, b := mustJSON(t, want), mustJSON(t, back.Metadata.Annotations); a != b {
				t.Errorf("%s %s: annotations changed:\nwant %s\ngot  %s", file, isvc.Metadata.Name, a, b)
			}
		}
	}
	if n < 50 {
		t.Errorf("only %d InferenceServices converted", n)
	}
}

// TestConvertV1alpha2Edit changes the v1alpha2 view of a spec v1alpha2
// cannot fully express: the changes made there apply, and what the view
// does not show is kept, unless the component's implementation changed.
func TestConvertV1alpha2Edit(t *testing.T) {
	isvc := loadOne(t, `
apiVersion: serving.kubeflow.org/v1beta1
kind: InferenceService
metadata: {name: edit, annotations: {team: a}}
spec:
  predictor:
    nodeSelector: {pool: gpu}
    minReplicas: 1
    timeout: 30
    logger: {url: "http://sink/", metadataHeaders: [x-id]}
    sklearn:
      storageUri: gs://bucket/v1
      protocolVersion: v2
      env: [{name: A, value: b}]
  transformer:
    containers:
    - {name: t, image: t:1}
    - {name: sidecar, image: s:1}
`)
	view, err := isvc.ConvertToV1alpha2()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := view.Metadata.Annotations[AnnotationV1beta1Spec]; !ok {
		t.Fatalf("no %s on the view: %v", AnnotationV1beta1Spec, view.Metadata.Annotations)
	}
	p := &view.Spec.Default.Predictor
	if p.SKLearn == nil || p.SKLearn.StorageURI != "gs://bucket/v1" || p.Logger == nil || p.Logger.URL != "http://sink/" {
		t.Fatalf("view predictor = %s", mustJSON(t, p))
	}
	edited := throughJSON[InferenceServiceV1alpha2](t, view)
	edited.Spec.Default.Predictor.SKLearn.StorageURI = "gs://bucket/v2"
	edited.Spec.Default.Predictor.MaxReplicas = 4
	edited.Spec.Default.Predictor.Logger.Mode = LogRequest
	back, err := edited.ConvertToV1beta1()
	if err != nil {
		t.Fatal(err)
	}
	got := back.Spec.Predictor
	if got.SKLearn == nil || got.SKLearn.StorageURI != "gs://bucket/v2" || got.SKLearn.ProtocolVersion != "v2" || len(got.SKLearn.Env) != 1 {
		t.Errorf("sklearn = %s, want the new storageUri with protocolVersion and env kept", mustJSON(t, got.SKLearn))
	}
	if got.MaxReplicas != 4 || got.TimeoutSeconds == nil || *got.TimeoutSeconds != 30 || got.NodeSelector["pool"] != "gpu" {
		t.Errorf("predictor = %s, want maxReplicas 4 with timeout and nodeSelector kept", mustJSON(t, got))
	}
	if l := got.Logger; l == nil || l.Mode != LogRequest || len(l.MetadataHeaders) != 1 {
		t.Errorf("logger = %s, want mode request with metadataHeaders kept", mustJSON(t, l))
	}
	if tr := back.Spec.Transformer; tr == nil || len(tr.Containers) != 2 {
		t.Errorf("transformer = %s, want both containers kept", mustJSON(t, tr))
	}
	if _, ok := back.Metadata.Annotations[AnnotationV1beta1Spec]; ok || back.Metadata.Annotations["team"] != "a" {
		t.Errorf("annotations = %v", back.Metadata.Annotations)
	}

	// Another framework: the sklearn key's v1beta1-only fields go with it.
	edited = throughJSON[InferenceServiceV1alpha2](t, view)
	edited.Spec.Default.Predictor.XGBoost = &BoostedSpecV1alpha2{FrameworkSpecV1alpha2: FrameworkSpecV1alpha2{StorageURI: "gs://bucket/xgb"}}
	edited.Spec.Default.Predictor.SKLearn = nil
	back, err = edited.ConvertToV1beta1()
	if err != nil {
		t.Fatal(err)
	}
	if got := back.Spec.Predictor; got.SKLearn != nil || got.XGBoost == nil || got.XGBoost.ProtocolVersion != "" || got.NodeSelector["pool"] != "gpu" {
		t.Errorf("predictor = %s, want xgboost alone, nodeSelector kept", mustJSON(t, got))
	}
}

// TestConvertV1alpha2Unrepresentable: the generic model form has no
// v1alpha2 key; the view shows none, and writing it back restores it.
func TestConvertV1alpha2Unrepresentable(t *testing.T) {
	isvc := loadOne(t, `
apiVersion: serving.kubeflow.org/v1beta1
kind: InferenceService
metadata: {name: generic}
spec:
  predictor:
    model: {modelFormat: {name: sklearn}, storageUri: gs://x/y}
`)
	view, err := isvc.ConvertToV1alpha2()
	if err != nil {
		t.Fatal(err)
	}
	if p := view.Spec.Default.Predictor; p.SKLearn != nil || p.Custom != nil {
		t.Errorf("view predictor = %s", mustJSON(t, p))
	}
	back, err := throughJSON[InferenceServiceV1alpha2](t, view).ConvertToV1beta1()
	if err != nil {
		t.Fatal(err)
	}
	if a, b := mustJSON(t, isvc.Spec), mustJSON(t, back.Spec); a != b {
		t.Errorf("spec changed:\nwas %s\nnow %s", a, b)
	}
}

// TestConvertV1alpha2Refused: what no conversion can choose between fails
// with the field path; what Validate reports is left to it.
func TestConvertV1alpha2Refused(t *testing.T) {
	src := decodeV1alpha2(t, []byte(`
apiVersion: serving.kubeflow.org/v1alpha2
kind: InferenceService
metadata: {name: two}
spec:
  default:
    predictor:
      sklearn: {storageUri: gs://a}
      xgboost: {storageUri: gs://b}
`))
	if _, err := src.ConvertToV1beta1(); err == nil || !strings.Contains(err.Error(), "spec.default.predictor: exactly one of") {
		t.Errorf("two frameworks: %v", err)
	}
	src = decodeV1alpha2(t, []byte(`
apiVersion: serving.kubeflow.org/v1alpha2
kind: InferenceService
metadata: {name: share}
spec:
  canaryTrafficPercent: 150
  default:
    predictor:
      sklearn: {storageUri: gs://a}
`))
	isvc, err := src.ConvertToV1beta1()
	if err != nil {
		t.Fatal(err)
	}
	if err := isvc.Validate(); err == nil || !strings.Contains(err.Error(), "spec.canaryTrafficPercent") {
		t.Errorf("Validate of canaryTrafficPercent 150: %v", err)
	}
	src.Metadata.Annotations = map[string]string{AnnotationV1beta1Spec: "{"}
	if _, err := src.ConvertToV1beta1(); err == nil || !strings.Contains(err.Error(), AnnotationV1beta1Spec) {
		t.Errorf("a broken %s: %v", AnnotationV1beta1Spec, err)
	}
}

// TestConvertV1alpha2Status: the API server copies the stored status,
// converted to the request's version, into an object updated at v1alpha2;
// converting it back must give the v1beta1 status whole. A status changed
// at v1alpha2 converts what both versions share.
func TestConvertV1alpha2Status(t *testing.T) {
	isvc := loadOne(t, `
apiVersion: serving.kubeflow.org/v1beta1
kind: InferenceService
metadata: {name: st}
spec:
  predictor:
    canaryTrafficPercent: 10
    sklearn: {storageUri: gs://x/y}
`)
	yes := true
	ten, ninety := int64(10), int64(90)
	isvc.Status = &InferenceServiceStatus{
		ObservedGeneration: 2,
		URL:                "http://st.default.example.com",
		Conditions:         []Condition{{Type: "Ready", Status: "True"}},
		Components: map[string]ComponentStatus{ComponentPredictor: {
			LatestCreatedRevision:   "st-predictor-00002",
			LatestRolledoutRevision: "st-predictor-00001",
			Traffic: []TrafficTarget{
				{RevisionName: "st-predictor-00002", LatestRevision: &yes, Percent: &ten},
				{RevisionName: "st-predictor-00001", Percent: &ninety},
			},
		}},
	}
	view, err := isvc.ConvertToV1alpha2()
	if err != nil {
		t.Fatal(err)
	}
	if view.Status == nil || view.Status.Traffic != 100 {
		t.Errorf("v1alpha2 status = %s", mustJSON(t, view.Status))
	}
	read := throughJSON[InferenceServiceV1alpha2](t, view)
	back, err := read.ConvertToV1beta1()
	if err != nil {
		t.Fatal(err)
	}
	if a, b := mustJSON(t, isvc.Status), mustJSON(t, back.Status); a != b {
		t.Errorf("status changed through v1alpha2:\nwas %s\nnow %s", a, b)
	}
	if a, b := mustJSON(t, isvc.Spec), mustJSON(t, back.Spec); a != b {
		t.Errorf("spec changed through v1alpha2:\nwas %s\nnow %s", a, b)
	}

	read.Status.Conditions = []Condition{{Type: "Ready", Status: "False", Reason: "Changed"}}
	back, err = read.ConvertToV1beta1()
	if err != nil {
		t.Fatal(err)
	}
	if st := back.Status; st == nil || len(st.Conditions) != 1 || st.Conditions[0].Reason != "Changed" || st.URL != isvc.Status.URL || st.Components != nil {
		t.Errorf("status changed at v1alpha2 converts to %s", mustJSON(t, back.Status))
	}
}
