package operator_test

import (
	"encoding/json"
	"testing"

	"github.com/ferryserve/ferry/internal/operator"
	"github.com/ferryserve/ferry/internal/operator/kubetest"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func trainedModel(t *testing.T, name, isvc, memory string) *unstructured.Unstructured {
	t.Helper()
	return loadYAML(t, `apiVersion: serving.kserve.io/v1alpha1
kind: TrainedModel
metadata: {name: `+name+`, namespace: default}
spec:
  inferenceService: `+isvc+`
  model: {storageUri: "gs://bucket/`+name+`", framework: sklearn, memory: `+memory+`}
`)
}

func getTM(t *testing.T, cl client.Client, name string) map[string]any {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(operator.TrainedModelGVK)
	if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		t.Fatal(err)
	}
	st, _ := u.Object["status"].(map[string]any)
	return st
}

func waitTM(t *testing.T, cl client.Client, name, what string, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	var st map[string]any
	poll(t, "TrainedModel "+name+": "+what, func() (bool, error) {
		st = getTM(t, cl, name)
		return st != nil && ok(st), nil
	})
	return st
}

// modelConfig returns the model names in an InferenceService's
// model-config ConfigMap, in order, once it exists.
func modelConfig(t *testing.T, cl client.Client, isvc string) ([]string, *corev1.ConfigMap, error) {
	cm := &corev1.ConfigMap{}
	if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: operator.ModelConfigName(isvc)}, cm); err != nil {
		return nil, nil, client.IgnoreNotFound(err)
	}
	var list []struct {
		Name string `json:"modelName"`
		Spec struct {
			StorageURI string `json:"storageUri"`
			Framework  string `json:"framework"`
			Memory     string `json:"memory"`
		} `json:"modelSpec"`
	}
	if err := json.Unmarshal([]byte(cm.Data[operator.ModelConfigKey]), &list); err != nil {
		return nil, cm, err
	}
	names := []string{}
	for _, m := range list {
		if m.Spec.StorageURI != "gs://bucket/"+m.Name || m.Spec.Framework != "sklearn" || m.Spec.Memory == "" {
			t.Errorf("entry %+v", m)
		}
		names = append(names, m.Name)
	}
	return names, cm, nil
}

func waitModelConfig(t *testing.T, cl client.Client, isvc string, want ...string) *corev1.ConfigMap {
	t.Helper()
	var cm *corev1.ConfigMap
	poll(t, "model-config of "+isvc+" listing "+joinNames(want), func() (bool, error) {
		names, c, err := modelConfig(t, cl, isvc)
		cm = c
		return c != nil && joinNames(names) == joinNames(want), err
	})
	return cm
}

func joinNames(n []string) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// testTrainedModels applies a multi-model InferenceService and
// TrainedModels that name it: the model-config ConfigMap lists the valid
// ones in KServe's format, sorted; their status follows the parent's
// readiness and gives the model's URL; an invalid model is reported and
// left out; deleting a model removes its entry.
func testTrainedModels(t *testing.T, cluster *kubetest.Cluster, cl client.Client) {
	ctx := t.Context()
	isvc := loadYAML(t, `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: mms, namespace: default}
spec:
  predictor:
    sklearn: {}
`)
	if err := cl.Create(ctx, isvc); err != nil {
		t.Fatal(err)
	}
	dep := waitDeployment(t, cl, "mms-predictor-00001")
	if len(dep.Spec.Template.Spec.Volumes) == 0 || dep.Spec.Template.Spec.Volumes[0].ConfigMap.Name != "modelconfig-mms-0" {
		t.Errorf("multi-model predictor volumes = %+v", dep.Spec.Template.Spec.Volumes)
	}
	for _, tm := range []*unstructured.Unstructured{
		trainedModel(t, "m2", "mms", "256Mi"),
		trainedModel(t, "m1", "mms", "128Mi"),
		trainedModel(t, "bad", "mms", "lots"),
		trainedModel(t, "orphan", "nope", "1Gi"),
		// Placement: more than the predictor's 2Gi default limit, and a
		// framework ferry serve does not load.
		trainedModel(t, "huge", "mms", "3Gi"),
		loadYAML(t, `apiVersion: serving.kserve.io/v1alpha1
kind: TrainedModel
metadata: {name: tf, namespace: default}
spec:
  inferenceService: mms
  model: {storageUri: "gs://bucket/tf", framework: tensorflow, memory: 1Mi}
`),
	} {
		if err := cl.Create(ctx, tm); err != nil {
			t.Fatal(err)
		}
	}
	cm := waitModelConfig(t, cl, "mms", "m1", "m2")
	checkOwner(t, cm.OwnerReferences, isvc)

	st := waitTM(t, cl, "m1", "InferenceServiceReady=False", func(st map[string]any) bool {
		return conditionStatus(st, "InferenceServiceReady") == "False"
	})
	if r := conditionField(st, "Ready", "reason"); r != "InferenceServiceNotReady" {
		t.Errorf("m1 Ready reason = %q before the parent is ready", r)
	}
	markAvailable(t, cl, "mms-predictor-00001")
	st = waitTM(t, cl, "m1", "Ready=True", func(st map[string]any) bool { return conditionStatus(st, "Ready") == "True" })
	if st["url"] != "http://mms.default.example.com/v1/models/m1:predict" {
		t.Errorf("m1 url = %v", st["url"])
	}
	st = waitTM(t, cl, "bad", "InvalidSpec", func(st map[string]any) bool { return conditionField(st, "Ready", "reason") == "InvalidSpec" })
	if m := conditionField(st, "Ready", "message"); m == "" {
		t.Error("invalid model's Ready has no message")
	}
	waitTM(t, cl, "orphan", "parent not found", func(st map[string]any) bool {
		return conditionField(st, "InferenceServiceReady", "reason") == "InferenceServiceNotFound"
	})
	// Placement, as KServe checks it: each failure is the model's Ready
	// reason, and the model stays out of the model config (above).
	for _, c := range []struct{ tm, cond, reason string }{
		{"huge", "MemoryResourceAvailable", "MemoryResourceUnavailable"},
		{"tf", "FrameworkSupported", "FrameworkNotSupported"},
	} {
		st := waitTM(t, cl, c.tm, c.cond+"=False", func(st map[string]any) bool { return conditionStatus(st, c.cond) == "False" })
		if r := conditionField(st, "Ready", "reason"); r != c.reason || conditionField(st, c.cond, "message") == "" {
			t.Errorf("%s: Ready reason %q, %s %q, want %s with a message", c.tm, r, c.cond, conditionField(st, c.cond, "message"), c.reason)
		}
	}
	if st := getTM(t, cl, "m1"); conditionStatus(st, "IsMMSPredictor") != "True" || conditionStatus(st, "MemoryResourceAvailable") != "True" {
		t.Errorf("m1 placement = %v, want all True", st["conditions"])
	}
	// A parent that serves one model (a storageUri) takes no TrainedModel.
	single := loadYAML(t, `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: single, namespace: default}
spec:
  predictor:
    sklearn: {storageUri: "gs://bucket/single"}
`)
	if err := cl.Create(ctx, single); err != nil {
		t.Fatal(err)
	}
	if err := cl.Create(ctx, trainedModel(t, "on-single", "single", "1Mi")); err != nil {
		t.Fatal(err)
	}
	st = waitTM(t, cl, "on-single", "IsMMSPredictor=False", func(st map[string]any) bool { return conditionStatus(st, "IsMMSPredictor") == "False" })
	if r := conditionField(st, "Ready", "reason"); r != "NotMMSPredictor" {
		t.Errorf("on-single Ready reason %q, want NotMMSPredictor", r)
	}

	// Deleting a model removes its entry; no finalizer is needed.
	m1 := &unstructured.Unstructured{}
	m1.SetGroupVersionKind(operator.TrainedModelGVK)
	m1.SetNamespace(ns)
	m1.SetName("m1")
	if err := cl.Delete(ctx, m1); err != nil {
		t.Fatal(err)
	}
	waitModelConfig(t, cl, "mms", "m2")

	// A fixed model is listed again.
	bad := &unstructured.Unstructured{}
	bad.SetGroupVersionKind(operator.TrainedModelGVK)
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "bad"}, bad); err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedField(bad.Object, "64Mi", "spec", "model", "memory"); err != nil {
		t.Fatal(err)
	}
	if err := cl.Update(ctx, bad); err != nil {
		t.Fatal(err)
	}
	waitModelConfig(t, cl, "mms", "bad", "m2")

	// The ConfigMap goes with its InferenceService.
	if err := cl.Delete(ctx, isvc); err != nil {
		t.Fatal(err)
	}
	waitTM(t, cl, "m2", "parent gone", func(st map[string]any) bool {
		return conditionField(st, "InferenceServiceReady", "reason") == "InferenceServiceNotFound"
	})
	if !cluster.GC {
		return
	}
	poll(t, "model-config deleted with mms", func() (bool, error) {
		err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: operator.ModelConfigName("mms")}, &corev1.ConfigMap{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
}
