package operator_test

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

var kubeflowISVC = schema.GroupVersionKind{Group: "serving.kubeflow.org", Version: "v1beta1", Kind: "InferenceService"}

func getKF(t *testing.T, cl client.Client, name string) map[string]any {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(kubeflowISVC)
	if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		t.Fatal(err)
	}
	st, _ := u.Object["status"].(map[string]any)
	return st
}

// testKubeflowGroup applies a KFServing 0.5 (serving.kubeflow.org/v1beta1)
// InferenceService: it runs as the serving.kserve.io one does. A name
// taken in the other group is reported rather than retried forever.
func testKubeflowGroup(t *testing.T, cl client.Client) {
	ctx := t.Context()
	kf := loadYAML(t, `apiVersion: serving.kubeflow.org/v1beta1
kind: InferenceService
metadata: {name: flowers-kf, namespace: default}
spec:
  predictor:
    xgboost: {storageUri: "gs://bucket/flowers"}
`)
	if err := cl.Create(ctx, kf); err != nil {
		t.Fatal(err)
	}
	d := waitDeployment(t, cl, "flowers-kf-predictor-00001")
	if ref := d.OwnerReferences; len(ref) != 1 || ref[0].APIVersion != "serving.kubeflow.org/v1beta1" || ref[0].UID != kf.GetUID() {
		t.Errorf("owner references = %+v, want the serving.kubeflow.org InferenceService", ref)
	}
	markAvailable(t, cl, "flowers-kf-predictor-00001")
	var st map[string]any
	poll(t, "flowers-kf Ready", func() (bool, error) {
		st = getKF(t, cl, "flowers-kf")
		return conditionStatus(st, "Ready") == "True", nil
	})

	// The same name in both groups: the first keeps its revision.
	for _, apiVersion := range []string{"serving.kserve.io/v1beta1", "serving.kubeflow.org/v1beta1"} {
		u := loadYAML(t, `apiVersion: `+apiVersion+`
kind: InferenceService
metadata: {name: twin, namespace: default}
spec:
  predictor:
    sklearn: {storageUri: "gs://bucket/twin"}
`)
		if err := cl.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
		if apiVersion == "serving.kserve.io/v1beta1" {
			waitDeployment(t, cl, "twin-predictor-00001")
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("twin status: %v", st)
		}
	})
	poll(t, "twin (kubeflow) reports the taken name", func() (bool, error) {
		st = getKF(t, cl, "twin")
		// The revision's Deployment, or the Service or Ingress after it,
		// whichever the reconcile meets first.
		msg := conditionField(st, "Ready", "message")
		return conditionStatus(st, "Ready") == "False" &&
			(strings.Contains(msg, "belongs to serving.kserve.io/v1beta1 InferenceService twin") || strings.Contains(msg, "already owned by another InferenceService")), nil
	})
}
