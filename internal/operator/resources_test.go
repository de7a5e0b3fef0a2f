package operator

import (
	"slices"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/plan"
	"github.com/ferryserve/ferry/internal/puller"
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
	if c.Image != "img:1" || c.Args[0] != "serve" {
		t.Errorf("image %q args %q, want img:1 running serve", c.Image, c.Args)
	}
	// The storage initializer pulls the model; ferry serve reads it.
	checkArgs(t, c.Args, "--model-dir", "/mnt/models", "--model-name", "iris", "--model-format", "sklearn", "--http-port", "8080")
	if init := d.Spec.Template.Spec.InitContainers; len(init) != 1 || init[0].Image != "img:1" ||
		!slices.Equal(init[0].Args[:3], []string{"pull", "gs://bucket/iris", "/mnt/models"}) {
		t.Errorf("init containers = %+v, want ferry pull gs://bucket/iris /mnt/models", init)
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

// checkArgs fails unless args hold each flag of pairs followed by its value.
func checkArgs(t *testing.T, args []string, pairs ...string) {
	t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		j := slices.Index(args, pairs[i])
		if j < 0 || j+1 >= len(args) || args[j+1] != pairs[i+1] {
			t.Errorf("args %q lack %s %s", args, pairs[i], pairs[i+1])
		}
	}
}

const chained = `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: income, namespace: models}
spec:
  predictor:
    sklearn: {storageUri: gs://bucket/income}
  transformer:
    minReplicas: 2
    maxReplicas: 4
    labels: {role: pre}
    containers:
    - image: example/transformer:1
      args: ["--feast_url", "feast:6565"]
  explainer:
    alibi:
      type: AnchorTabular
      storageUri: gs://bucket/income/explainer
      config: {threshold: "0.9"}
`

func TestTransformerDeploymentChainsToPredictor(t *testing.T) {
	isvc := loadISVC(t, chained)
	d, err := ComponentDeployment(isvc, "transformer", "income-transformer-00001", "h", "img:1", 2)
	if err != nil {
		t.Fatal(err)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if c.Image != "example/transformer:1" || c.Name != "kserve-container" || *d.Spec.Replicas != 2 {
		t.Errorf("image %q name %q replicas %d", c.Image, c.Name, *d.Spec.Replicas)
	}
	// The container's own arguments first, then KServe's.
	want := []string{"--feast_url", "feast:6565", "--model_name", "income", "--predictor_host", "income-predictor.models", "--http_port", "8080"}
	if !slices.Equal(c.Args, want) {
		t.Errorf("args %q, want %q", c.Args, want)
	}
	if d.Labels[LabelComponent] != "transformer" || d.Spec.Template.Labels["role"] != "pre" {
		t.Errorf("labels %v pod labels %v", d.Labels, d.Spec.Template.Labels)
	}

	// An argument the container sets itself is not given twice.
	isvc.Spec.Transformer.Containers[0].Args = []string{"--predictor_host=elsewhere:80"}
	d, err = ComponentDeployment(isvc, "transformer", "income-transformer-00002", "h", "img:1", 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Spec.Template.Spec.Containers[0].Args; slices.Contains(got, "--predictor_host") {
		t.Errorf("args %q repeat --predictor_host", got)
	}
}

func TestExplainerDeployment(t *testing.T) {
	isvc := loadISVC(t, chained)
	d, err := ComponentDeployment(isvc, "explainer", "income-explainer-00001", "h", "img:1", 1)
	if err != nil {
		t.Fatal(err)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if c.Image != "img:1" || c.Args[0] != "serve" {
		t.Errorf("image %q args %q, want img:1 running serve", c.Image, c.Args)
	}
	checkArgs(t, c.Args, "--predictor-host", "income-predictor.models", "--explainer-data", "gs://bucket/income/explainer",
		"--explainer-type", "AnchorTabular", "--explainer-config", "threshold=0.9")

	// TreeShap reads the predictor's trees, so it loads the same model.
	isvc = loadISVC(t, `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: trees}
spec:
  predictor:
    xgboost: {storageUri: gs://bucket/trees}
  explainer:
    alibi: {type: TreeShap}
`)
	d, err = ComponentDeployment(isvc, "explainer", "trees-explainer-00001", "h", "img:1", 1)
	if err != nil {
		t.Fatal(err)
	}
	c = d.Spec.Template.Spec.Containers[0]
	checkArgs(t, c.Args, "--model-uri", "gs://bucket/trees", "--model-format", "xgboost", "--explainer-type", "TreeShap")
	if slices.Contains(c.Args, "--predictor-host") {
		t.Errorf("TreeShap args %q call the predictor", c.Args)
	}

	// ART runs ferry attack against the predictor's Service.
	isvc = loadISVC(t, `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: digits}
spec:
  predictor:
    sklearn: {storageUri: gs://bucket/digits}
  explainer:
    art: {type: SquareAttack, config: {nb_classes: "10"}}
`)
	d, err = ComponentDeployment(isvc, "explainer", "digits-explainer-00001", "h", "img:1", 1)
	if err != nil {
		t.Fatal(err)
	}
	c = d.Spec.Template.Spec.Containers[0]
	if c.Args[0] != "attack" {
		t.Errorf("ART args %q, want ferry attack", c.Args)
	}
	checkArgs(t, c.Args, "--predictor-host", "digits-predictor.default", "--model-name", "digits", "--nb_classes", "10")
}

// TestExplainerAIX: aix LimeImages runs as ferry up runs it (plan.Explainer).
func TestExplainerAIX(t *testing.T) {
	isvc := loadISVC(t, `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: digits}
spec:
  predictor:
    onnx: {storageUri: gs://bucket/digits}
  explainer:
    aix: {type: LimeImages, config: {num_samples: "100"}}
`)
	d, err := ComponentDeployment(isvc, "explainer", "digits-explainer-00001", "h", "img:1", 1)
	if err != nil {
		t.Fatal(err)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if c.Args[0] != "serve" {
		t.Errorf("aix args %q, want ferry serve", c.Args)
	}
	checkArgs(t, c.Args, "--predictor-host", "digits-predictor.default", "--explainer-type", "LimeImages", "--explainer-config", "num_samples=100")
}

func TestExplainerUnsupported(t *testing.T) {
	for _, tc := range []struct{ spec, want string }{
		{"aix: {type: LimeImages, config: {num_sample: \"5\"}}", "spec.explainer.aix.config"},
		{"alibi: {type: KernelShap}", "spec.explainer.alibi.storageUri"},
		{"alibi: {type: Counterfactuals, storageUri: gs://b/x}", "spec.explainer.alibi"},
	} {
		isvc := loadISVC(t, `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: x}
spec:
  predictor:
    sklearn: {storageUri: gs://bucket/x}
  explainer:
    `+tc.spec+`
`)
		_, err := ComponentDeployment(isvc, "explainer", "x-explainer-00001", "h", "img:1", 1)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one naming %s", tc.spec, err, tc.want)
		}
	}
}

func TestPredictorDeploymentMultiModel(t *testing.T) {
	isvc := loadISVC(t, `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: mms, namespace: models}
spec:
  predictor:
    sklearn:
      resources: {limits: {memory: 2Gi}}
`)
	d, err := PredictorDeployment(isvc, "mms-predictor-00001", "h", "img:1")
	if err != nil {
		t.Fatal(err)
	}
	ps := d.Spec.Template.Spec
	c := ps.Containers[0]
	checkArgs(t, c.Args, "--models-config", "/mnt/configs/models.json", "--puller-state-dir", "/mnt/models")
	if slices.Contains(c.Args, "--model-uri") {
		t.Errorf("args %q name a model", c.Args)
	}
	if len(ps.Volumes) != 2 || ps.Volumes[0].ConfigMap == nil || ps.Volumes[0].ConfigMap.Name != "modelconfig-mms-0" || !*ps.Volumes[0].ConfigMap.Optional {
		t.Errorf("volumes = %+v, want the optional model-config ConfigMap first", ps.Volumes)
	}
	if len(c.VolumeMounts) != 2 || c.VolumeMounts[0].MountPath != "/mnt/configs" || !c.VolumeMounts[0].ReadOnly {
		t.Errorf("mounts = %+v", c.VolumeMounts)
	}
	if got := c.Resources.Limits.Memory().String(); got != "2Gi" {
		t.Errorf("memory limit = %s, want 2Gi", got)
	}
}

func TestRenderModelConfig(t *testing.T) {
	b, err := RenderModelConfig([]plan.ModelEntry{{Name: "m1", StorageURI: "gs://b/m1", Framework: "sklearn", Memory: "256Mi"}})
	if err != nil {
		t.Fatal(err)
	}
	// What the puller (ferry serve --models-config, KServe's agent) reads.
	got, bad, err := puller.ParseConfig(b)
	if err != nil || len(bad) != 0 || len(got) != 1 || got[0].Name != "m1" || got[0].Spec.Memory != "256Mi" {
		t.Errorf("puller reads %s as %+v (bad %v, err %v)", b, got, bad, err)
	}
	if b, _ := RenderModelConfig(nil); string(b) != "[]" {
		t.Errorf("no models = %s, want []", b)
	}
}
