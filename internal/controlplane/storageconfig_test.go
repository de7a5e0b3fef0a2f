package controlplane

import (
	"slices"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/api"
)

// TestStorageKeyResolvesForReplicas: a predictor given as storage: {key,
// path} runs a replica that pulls the resolved URI with the entry's
// credentials, which win over ferry up's own environment.
func TestStorageKeyResolvesForReplicas(t *testing.T) {
	// KServe's storage-config Secret, as a user would apply it to a cluster.
	cfg, err := api.ParseStorageConfig([]byte(`apiVersion: v1
kind: Secret
metadata:
  name: storage-config
stringData:
  localMinIO: |
    {"type": "s3", "bucket": "models", "access_key_id": "minio", "secret_access_key": "minio123", "endpoint_url": "http://127.0.0.1:9000"}
`))
	if err != nil {
		t.Fatal(err)
	}
	ctl := NewController(Config{FerryBinary: "ferry", StorageConfig: cfg, ReplicaEnv: []string{"AWS_ACCESS_KEY_ID=from-up"}})
	objs, err := api.Load([]byte("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n  name: iris\nspec:\n  predictor:\n    sklearn:\n      storage:\n        key: localMinIO\n        path: sklearn/iris\n"))
	if err != nil {
		t.Fatal(err)
	}
	isvc := objs[0].(*api.InferenceService)
	rev := Revision{Name: "iris-predictor-00001", Spec: mustJSON(isvc.Spec.Predictor)}
	tmpl, err := ctl.template(t.Context(), isvc, api.ComponentPredictor, rev)
	if err != nil {
		t.Fatal(err)
	}
	pc := tmpl(8080, 8081)
	i := slices.Index(pc.Args, "--model-uri")
	if i < 0 || pc.Args[i+1] != "s3://models/sklearn/iris" {
		t.Fatalf("args %v", pc.Args)
	}
	env := strings.Join(pc.Env, " ")
	if !strings.Contains(env, "AWS_SECRET_ACCESS_KEY=minio123") || !strings.Contains(env, "AWS_ENDPOINT_URL=http://127.0.0.1:9000") {
		t.Fatalf("env %v", pc.Env)
	}
	if last := slices.IndexFunc(pc.Env, func(e string) bool { return e == "AWS_ACCESS_KEY_ID=minio" }); last < slices.Index(pc.Env, "AWS_ACCESS_KEY_ID=from-up") {
		t.Fatalf("the service's credentials do not win: %v", pc.Env)
	}
	// An unknown key is refused with the field named.
	objs, _ = api.Load([]byte("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n  name: iris\nspec:\n  predictor:\n    sklearn:\n      storage:\n        key: nope\n        path: x\n"))
	isvc = objs[0].(*api.InferenceService)
	if _, err := ctl.template(t.Context(), isvc, api.ComponentPredictor, Revision{Spec: mustJSON(isvc.Spec.Predictor)}); err == nil || !strings.Contains(err.Error(), "storage.key") {
		t.Fatalf("unknown key: %v", err)
	}
}
