package api

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func loadOne(t *testing.T, yaml string) *InferenceService {
	t.Helper()
	objs, err := Load([]byte(yaml))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(objs) != 1 {
		t.Fatalf("got %d objects", len(objs))
	}
	return objs[0].(*InferenceService)
}

func TestPredictorFormat(t *testing.T) {
	tests := []struct {
		file                       string
		format, uri, proto, custom string // custom: the container's image, "" for nil
	}{
		{"sklearn-v1", "sklearn", "gs://kfserving-examples/models/sklearn/1.0/model", "v1", ""},
		{"sklearn-v2", "sklearn", "gs://seldon-models/sklearn/iris", "v2", ""},
		{"xgboost", "xgboost", "s3://my-bucket/xgboost/iris", "v1", ""},
		{"lightgbm", "lightgbm", "https://kfservingsamples.blob.core.windows.net/lightgbm/iris", "v1", ""},
		{"pmml", "pmml", "pvc://models-pvc/pmml/model.pmml", "v1", ""},
		{"onnx", "onnx", "gs://kfserving-examples/models/onnx/model.onnx", "v2", ""},
		{"pytorch", "pytorch", "gs://kfserving-examples/models/pytorch/cifar10/", "v1", ""},
		{"tensorflow", "tensorflow", "gs://kfserving-examples/models/tensorflow/flowers", "grpc-v1", ""},
		{"triton", "triton", "gs://kfserving-examples/models/torchscript", "v2", ""},
		{"model-generic", "sklearn", "gs://kfserving-examples/models/sklearn/1.0/model", "v1", ""},
		{"multimodel", "sklearn", "", "v1", ""},
		{"custom-container", FormatCustom, "s3://bucket/custom", "v2", "kfserving/custom-model:v1"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile("testdata/" + tt.file + ".good.yaml")
			if err != nil {
				t.Fatal(err)
			}
			objs, err := Load(data)
			if err != nil {
				t.Fatal(err)
			}
			format, uri, proto, custom := objs[0].(*InferenceService).PredictorFormat()
			image := ""
			if custom != nil {
				image = custom.Image
			}
			if format != tt.format || uri != tt.uri || proto != tt.proto || image != tt.custom {
				t.Errorf("PredictorFormat() = %q, %q, %q, %q; want %q, %q, %q, %q",
					format, uri, proto, image, tt.format, tt.uri, tt.proto, tt.custom)
			}
		})
	}
}

func TestPredictorFormatBeforeDefaulting(t *testing.T) {
	objs, err := Decode([]byte(`
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: t}
spec:
  predictor:
    triton:
      image: nvcr.io/nvidia/tritonserver:23.05-py3
      command: [tritonserver]
`))
	if err != nil {
		t.Fatal(err)
	}
	isvc := objs[0].(*InferenceService)
	format, uri, proto, custom := isvc.PredictorFormat()
	if format != "triton" || uri != "" || proto != ProtocolV2 || custom == nil || custom.Command[0] != "tritonserver" {
		t.Errorf("PredictorFormat() = %q, %q, %q, %+v", format, uri, proto, custom)
	}
	isvc.Spec.Predictor.SKLearn = &PredictorExtensionSpec{}
	if format, _, _, _ := isvc.PredictorFormat(); format != "" {
		t.Errorf("two implementations gave format %q, want empty", format)
	}
}

const hashBase = `
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: h}
spec:
  predictor:
    canaryTrafficPercent: 10
    sklearn:
      storageUri: gs://b/m1
      env: [{name: A, value: "1"}]
      resources: {limits: {cpu: "2", memory: 4Gi}}
`

func TestComponentSpecHash(t *testing.T) {
	base := loadOne(t, hashBase)
	h := ComponentSpecHash(&base.Spec.Predictor)
	if len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
		t.Fatalf("hash %q is not 64 hex digits", h)
	}
	tests := []struct {
		name    string
		yaml    string
		changed bool
	}{
		{"same", hashBase, false},
		{"canary percent only", strings.Replace(hashBase, "canaryTrafficPercent: 10", "canaryTrafficPercent: 0", 1), false},
		{"canary removed", strings.Replace(hashBase, "canaryTrafficPercent: 10", "", 1), false},
		{"default spelled out", strings.Replace(hashBase, "sklearn:", "minReplicas: 1\n    sklearn:\n      protocolVersion: v1", 1), false},
		{"map order", strings.Replace(hashBase, "{cpu: \"2\", memory: 4Gi}", "{memory: 4Gi, cpu: \"2\"}", 1), false},
		{"storage uri", strings.Replace(hashBase, "gs://b/m1", "gs://b/m2", 1), true},
		{"env", strings.Replace(hashBase, `value: "1"`, `value: "2"`, 1), true},
		{"replicas", strings.Replace(hashBase, "sklearn:", "minReplicas: 0\n    sklearn:", 1), true},
		{"protocol", strings.Replace(hashBase, "sklearn:", "sklearn:\n      protocolVersion: v2", 1), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			other := loadOne(t, tt.yaml)
			got := ComponentSpecHash(&other.Spec.Predictor)
			if (got != h) != tt.changed {
				t.Errorf("hash changed = %v, want %v", got != h, tt.changed)
			}
		})
	}
	// The canary percent must still be there after hashing.
	if base.Spec.Predictor.CanaryTrafficPercent == nil || *base.Spec.Predictor.CanaryTrafficPercent != 10 {
		t.Error("ComponentSpecHash modified the spec")
	}
	tr := &TransformerSpec{PodSpec: PodSpec{Containers: []Container{{Image: "x"}}}}
	ex := &ExplainerSpec{Alibi: &ExplainerExtensionSpec{Type: "AnchorTabular"}}
	if ComponentSpecHash(tr) == ComponentSpecHash(ex) {
		t.Error("transformer and explainer hash alike")
	}
}

func TestQuantity(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"1", 1, true},
		{"500m", 0.5, true},
		{"2Gi", 2 << 30, true},
		{"1.5", 1.5, true},
		{"256Mi", 256 << 20, true},
		{"1e3", 1000, true},
		{"1E-3", 0.001, true},
		{"100k", 1e5, true},
		{"2G", 2e9, true},
		{".5", 0.5, true},
		{"+3", 3, true},
		{"-1", -1, true},
		{"", 0, false},
		{"Gi", 0, false},
		{"2GB", 0, false},
		{"1.2.3", 0, false},
		{"1e", 0, false},
		{"1e999", 0, false},
		{"lots", 0, false},
		{"1 Gi", 0, false},
	}
	for _, tt := range tests {
		got, err := Quantity(tt.in).Value()
		if (err == nil) != tt.ok || tt.ok && got != tt.want {
			t.Errorf("Quantity(%q).Value() = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestQuantityJSON(t *testing.T) {
	var r ResourceRequirements
	if err := json.Unmarshal([]byte(`{"limits":{"cpu":1,"memory":"2Gi"}}`), &r); err != nil {
		t.Fatal(err)
	}
	if r.Limits["cpu"] != "1" || r.Limits["memory"] != "2Gi" {
		t.Errorf("limits = %v", r.Limits)
	}
	b, _ := json.Marshal(r)
	if string(b) != `{"limits":{"cpu":"1","memory":"2Gi"}}` {
		t.Errorf("marshal = %s", b)
	}
	if err := json.Unmarshal([]byte(`{"limits":{"cpu":true}}`), &r); err == nil {
		t.Error("boolean quantity accepted")
	}
}

func TestIntOrString(t *testing.T) {
	tests := []struct {
		in      string
		want    IntOrString
		resolve int
		ok      bool
	}{
		{`8080`, FromInt(8080), 8080, true},
		{`"http1"`, FromString("http1"), 9000, true},
		{`"8081"`, FromString("8081"), 8081, true},
		{`"missing"`, FromString("missing"), 0, false},
	}
	ports := []ContainerPort{{Name: "http1", ContainerPort: 9000}}
	for _, tt := range tests {
		var v IntOrString
		if err := json.Unmarshal([]byte(tt.in), &v); err != nil {
			t.Fatalf("Unmarshal(%s): %v", tt.in, err)
		}
		if v != tt.want {
			t.Errorf("Unmarshal(%s) = %+v, want %+v", tt.in, v, tt.want)
		}
		if b, _ := json.Marshal(v); string(b) != tt.in {
			t.Errorf("Marshal = %s, want %s", b, tt.in)
		}
		got, err := v.Resolve(ports)
		if (err == nil) != tt.ok || got != tt.resolve {
			t.Errorf("Resolve(%s) = %d, %v; want %d ok=%v", tt.in, got, err, tt.resolve, tt.ok)
		}
	}
	var v IntOrString
	for _, bad := range []string{`1.5`, `true`, `99999999999`, `[]`} {
		if err := json.Unmarshal([]byte(bad), &v); err == nil {
			t.Errorf("Unmarshal(%s) accepted", bad)
		}
	}
}

func TestResourceDefaults(t *testing.T) {
	tests := []struct {
		name         string
		in           ResourceRequirements
		wantRequests map[string]Quantity
		wantLimits   map[string]Quantity
	}{
		{"none", ResourceRequirements{},
			map[string]Quantity{"cpu": "1", "memory": "2Gi"}, map[string]Quantity{"cpu": "1", "memory": "2Gi"}},
		{"low limit", ResourceRequirements{Limits: map[string]Quantity{"memory": "1Gi"}},
			map[string]Quantity{"cpu": "1", "memory": "1Gi"}, map[string]Quantity{"cpu": "1", "memory": "1Gi"}},
		{"high request", ResourceRequirements{Requests: map[string]Quantity{"cpu": "4"}},
			map[string]Quantity{"cpu": "4", "memory": "2Gi"}, map[string]Quantity{"cpu": "4", "memory": "2Gi"}},
		{"low request", ResourceRequirements{Requests: map[string]Quantity{"cpu": "100m"}},
			map[string]Quantity{"cpu": "100m", "memory": "2Gi"}, map[string]Quantity{"cpu": "1", "memory": "2Gi"}},
		{"gpu kept", ResourceRequirements{Limits: map[string]Quantity{"nvidia.com/gpu": "1"}},
			map[string]Quantity{"cpu": "1", "memory": "2Gi"}, map[string]Quantity{"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": "1"}},
	}
	for _, tt := range tests {
		r := tt.in
		defaultResources(&r)
		if mustJSON(t, r.Requests) != mustJSON(t, tt.wantRequests) || mustJSON(t, r.Limits) != mustJSON(t, tt.wantLimits) {
			t.Errorf("%s: got requests %v limits %v; want %v %v", tt.name, r.Requests, r.Limits, tt.wantRequests, tt.wantLimits)
		}
	}
}

func TestSetGroup(t *testing.T) {
	tm := TypeMeta{APIVersion: GroupKubeflow + "/" + VersionInferenceService, Kind: KindInferenceService}
	tm.SetGroup(GroupKServe)
	if tm.APIVersion != "serving.kserve.io/v1beta1" || tm.Group() != GroupKServe || tm.Version() != VersionInferenceService {
		t.Errorf("SetGroup gave %+v", tm)
	}
}

func BenchmarkLoad(b *testing.B) {
	data, err := os.ReadFile("testdata/custom-container.good.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(data); err != nil {
			b.Fatal(err)
		}
	}
}

func TestTrainedModelValidateUpdate(t *testing.T) {
	base := func(mem Quantity) *TrainedModel {
		return &TrainedModel{
			TypeMeta: TypeMeta{APIVersion: GroupKServe + "/" + VersionTrainedModel, Kind: KindTrainedModel},
			Metadata: ObjectMeta{Name: "m"},
			Spec: TrainedModelSpec{InferenceService: "parent", Model: StoredModel{
				StorageURI: "s3://b/m", Framework: "sklearn", Memory: mem}},
		}
	}
	tests := []struct {
		old, new Quantity
		wantErr  string
	}{
		{"256Mi", "256Mi", ""},
		{"1Gi", "1024Mi", ""},
		{"256Mi", "512Mi", `spec.model.memory: field is immutable: was "256Mi", now "512Mi"`},
		{"256Mi", "bad", `spec.model.memory: invalid quantity "bad"`},
	}
	for _, tt := range tests {
		err := base(tt.new).ValidateUpdate(base(tt.old))
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%s -> %s: err = %v, want %q", tt.old, tt.new, err, tt.wantErr)
		}
	}
}
