package operator_test

import (
	"maps"
	"slices"
	"testing"

	"github.com/ferryserve/ferry/internal/operator"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// testQuality applies a service with quality monitoring on: its predictor
// pods are given the headless Service that lists them all as
// --quality-peers, and the operator writes that Service, owned by the
// InferenceService, selecting the pods of every revision (a canary's
// too); with the annotation gone, the Service goes.
func testQuality(t *testing.T, cl client.Client) {
	ctx := t.Context()
	const name = "quality-iris"
	isvc := loadYAML(t, `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: quality-iris
  namespace: default
  annotations: {serving.ferryserve.io/quality: "true"}
spec:
  predictor:
    sklearn: {storageUri: "gs://bucket/iris/v1"}
`)
	if err := cl.Create(ctx, isvc); err != nil {
		t.Fatal(err)
	}
	peersName := name + "-predictor-quality"
	peers := &corev1.Service{}
	poll(t, "headless Service "+peersName, func() (bool, error) {
		err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: peersName}, peers)
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	checkOwner(t, peers.OwnerReferences, isvc)
	if peers.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("cluster IP %q, want None (headless: its DNS name lists the pods)", peers.Spec.ClusterIP)
	}
	if _, ok := peers.Spec.Selector[operator.LabelRevision]; ok {
		t.Errorf("selector %v names a revision: a canary's pods would not be asked", peers.Spec.Selector)
	}
	if len(peers.Spec.Ports) != 1 || peers.Spec.Ports[0].Port != 8080 {
		t.Errorf("ports %+v, want ferry serve's HTTP port 8080", peers.Spec.Ports)
	}
	sel := labels.SelectorFromSet(peers.Spec.Selector)
	checkPeer := func(d *appsv1.Deployment) {
		t.Helper()
		if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("revision %s pods (labels %v) are not selected by %v", d.Name, d.Spec.Template.Labels, peers.Spec.Selector)
		}
		args := d.Spec.Template.Spec.Containers[0].Args
		want := peersName + "." + ns + ".svc:8080"
		if i := slices.Index(args, "--quality-peers"); i < 0 || args[i+1] != want {
			t.Errorf("revision %s args %q, want --quality-peers %s", d.Name, args, want)
		}
	}
	rev1 := name + "-predictor-00001"
	checkPeer(waitDeployment(t, cl, rev1))

	// A canary revision is a peer too.
	update(t, cl, name, func(u *unstructured.Unstructured) {
		pr := u.Object["spec"].(map[string]any)["predictor"].(map[string]any)
		pr["canaryTrafficPercent"] = int64(10)
		pr["sklearn"].(map[string]any)["storageUri"] = "gs://bucket/iris/v2"
	})
	checkPeer(waitDeployment(t, cl, name+"-predictor-00002"))

	// Quality monitoring off: the Service goes.
	update(t, cl, name, func(u *unstructured.Unstructured) {
		ann := maps.Clone(u.GetAnnotations())
		delete(ann, "serving.ferryserve.io/quality")
		u.SetAnnotations(ann)
	})
	poll(t, "headless Service deleted", func() (bool, error) {
		err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: peersName}, &corev1.Service{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
	if err := cl.Delete(ctx, isvc); err != nil {
		t.Fatal(err)
	}
}
