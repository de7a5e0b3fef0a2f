package operator

import (
	"slices"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/api"
)

func loadISVC(t *testing.T, doc string) *api.InferenceService {
	t.Helper()
	objs, err := api.Load([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return objs[0].(*api.InferenceService)
}

func TestPredictorDeploymentServesBuiltinFormat(t *testing.T) {
	isvc := loadISVC(t, `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: iris, namespace: models}
spec:
  predictor:
    minReplicas: 2
    labels: {team: a}
    sklearn:
      storageUri: gs://bucket/iris
      resources: {limits: {cpu: "1", memory: 1Gi}}
`)
	d, err := PredictorDeployment(isvc, "iris-predictor-00003", "h", "img:1")
	if err != nil {
		t.Fatal(err)
	}
	c := d.Spec.Template.Spec.Containers[0]
	want := []string{"serve", "--model-uri", "gs://bucket/iris", "--model-name", "iris", "--model-format", "sklearn"}
	if c.Image != "img:1" || !slices.Equal(c.Args[:len(want)], want) {
		t.Errorf("image %q args %q, want img:1 running %q", c.Image, c.Args, want)
	}
	if got := c.Resources.Limits.Memory().String(); got != "1Gi" {
		t.Errorf("memory limit = %s, want 1Gi", got)
	}
	if *d.Spec.Replicas != 2 || d.Namespace != "models" || d.Annotations[AnnotationSpecHash] != "h" {
		t.Errorf("replicas %d namespace %q annotations %v", *d.Spec.Replicas, d.Namespace, d.Annotations)
	}
	if d.Spec.Selector.MatchLabels[LabelRevision] != "iris-predictor-00003" || d.Spec.Template.Labels["team"] != "a" {
		t.Errorf("selector %v pod labels %v", d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
	}
	if n := revisionNumber(d.Name); n != 3 {
		t.Errorf("revisionNumber(%s) = %d", d.Name, n)
	}
}

func TestPredictorDeploymentCustomContainer(t *testing.T) {
	isvc := loadISVC(t, `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: custom}
spec:
  predictor:
    containers:
    - name: kserve-container
      image: example/model:2
      args: ["--port", "8080"]
      env: [{name: MODEL, value: m}]
`)
	d, err := PredictorDeployment(isvc, "custom-predictor-00001", "h", "img:1")
	if err != nil {
		t.Fatal(err)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if c.Image != "example/model:2" || !slices.Equal(c.Args, []string{"--port", "8080"}) || len(c.Env) == 0 || c.Env[0].Value != "m" {
		t.Errorf("container = %+v", c)
	}
}

func TestPredictorDeploymentNeedsRuntimeImage(t *testing.T) {
	isvc := loadISVC(t, `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: flowers}
spec:
  predictor:
    tensorflow: {storageUri: gs://bucket/flowers}
`)
	_, err := PredictorDeployment(isvc, "flowers-predictor-00001", "h", "img:1")
	if err == nil || !strings.Contains(err.Error(), `"tensorflow"`) {
		t.Fatalf("err = %v, want one naming the tensorflow format", err)
	}
}
