package operator_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/operator"
	"github.com/ferryserve/ferry/internal/operator/kubetest"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// testKnative runs InferenceServices in Serverless mode against an API
// server with a stand-in for Knative Serving's Service CRD (testdata/knative;
// no Knative controller runs, so the test plays it by writing each Knative
// Service's status): KFServing 0.5's sklearn sample gets a Knative Service
// (golden), becomes Ready with KServe's status fields from what "Knative"
// reports, goes through a 10 % canary (traffic blocks 90/10 with tags),
// promotion and rollback; a transformer gets its own Knative Service and
// the entry URL; a removed component, a switch to raw mode and back, and
// deletion clean up.
func testKnative(t *testing.T, cluster *kubetest.Cluster, cl client.Client) {
	ctx := t.Context()

	isvc := loadSample(t, "../api/testdata/kserve-samples/v0.5.1__v1beta1__sklearn__v1__sklearn.yaml")
	// KFServing 0.5's sample in KServe's group, in Serverless mode (the
	// operator's default is RawDeployment).
	isvc.SetAPIVersion("serving.kserve.io/v1beta1")
	isvc.SetNamespace(ns)
	isvc.SetAnnotations(map[string]string{"serving.kserve.io/deploymentMode": "Serverless"})
	if err := cl.Create(ctx, isvc); err != nil {
		t.Fatal(err)
	}
	name := isvc.GetName()
	ksvc := name + "-predictor"
	r1, r2 := name+"-predictor-00001", name+"-predictor-00002"

	k := waitKnative(t, cl, ksvc, "template "+r1, func(k *unstructured.Unstructured) bool { return templateName(k) == r1 })
	checkOwner(t, k.GetOwnerReferences(), isvc)
	checkKnativeGolden(t, k, "sklearn-iris-predictor.yaml")
	// Knative has not created the revision: not ready.
	st := waitCondition(t, cl, name, "PredictorReady", "False")
	if got := conditionStatus(st, "Ready"); got != "False" {
		t.Errorf("Ready = %q before Knative reports the revision", got)
	}

	playKnative(t, cl, ksvc, r1)
	st = waitCondition(t, cl, name, "Ready", "True")
	pred := component(st, "predictor")
	for f, want := range map[string]string{
		"latestCreatedRevision": r1, "latestReadyRevision": r1, "latestRolledoutRevision": r1,
		"url": "http://" + ksvc + ".default.example.com",
	} {
		if pred[f] != want {
			t.Errorf("components.predictor.%s = %v, want %s", f, pred[f], want)
		}
	}
	if want := "http://" + ksvc + ".default.example.com"; st["url"] != want {
		t.Errorf("url = %v, want %s (the predictor's Knative route)", st["url"], want)
	}
	if addr, _ := st["address"].(map[string]any); addr["url"] != "http://"+ksvc+".default.svc.cluster.local" {
		t.Errorf("address = %v", st["address"])
	}
	if tr := traffic(st); !reflect.DeepEqual(tr, map[string]int64{r1: 100}) {
		t.Errorf("traffic = %v, want all on %s", tr, r1)
	}
	// Nothing of raw mode: no Deployment, Service or Ingress of the operator.
	var deps appsv1.DeploymentList
	if err := cl.List(ctx, &deps, client.InNamespace(ns), client.MatchingLabels{operator.LabelInferenceService: name}); err != nil || len(deps.Items) != 0 {
		t.Errorf("Serverless service has %d Deployments (%v)", len(deps.Items), err)
	}
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &networkingv1.Ingress{}); !apierrors.IsNotFound(err) {
		t.Errorf("Ingress of a Serverless service: %v, want none", err)
	}

	// Canary at 10 %: a new template (revision 2); until Knative says it is
	// ready everything stays on revision 1, then KFServing's split.
	update(t, cl, name, func(u *unstructured.Unstructured) {
		pr := u.Object["spec"].(map[string]any)["predictor"].(map[string]any)
		pr["canaryTrafficPercent"] = int64(10)
		pr["sklearn"].(map[string]any)["storageUri"] = "gs://kfserving-samples/models/sklearn/iris-v2"
	})
	k = waitKnative(t, cl, ksvc, "template "+r2, func(k *unstructured.Unstructured) bool { return templateName(k) == r2 })
	if got := specTraffic(k); got != "latest=100" {
		t.Errorf("traffic before revision 2 is ready = %s, want latest=100", got)
	}
	inits, _, _ := unstructured.NestedSlice(k.Object, "spec", "template", "spec", "initContainers")
	if len(inits) != 1 || !strings.Contains(fmt.Sprint(inits[0].(map[string]any)["args"]), "iris-v2") {
		t.Errorf("revision 2 init containers = %v, want the storage initializer pulling iris-v2", inits)
	}
	playKnative(t, cl, ksvc, r2)
	k = waitKnative(t, cl, ksvc, "a 10/90 traffic block", func(k *unstructured.Unstructured) bool {
		return specTraffic(k) == "latest:latest=10 prev:"+r1+"=90"
	})
	checkKnativeGolden(t, k, "sklearn-iris-predictor-canary.yaml")
	playKnative(t, cl, ksvc, r2)
	st = waitStatus(t, cl, name, "a 10/90 split, Ready", func(st map[string]any) bool {
		return reflect.DeepEqual(traffic(st), map[string]int64{r2: 10, r1: 90}) && conditionStatus(st, "Ready") == "True"
	})
	if p := component(st, "predictor"); p["latestRolledoutRevision"] != r1 || p["latestReadyRevision"] != r2 {
		t.Errorf("during the canary: %v", p)
	}

	// Promotion: canaryTrafficPercent removed.
	update(t, cl, name, func(u *unstructured.Unstructured) {
		delete(u.Object["spec"].(map[string]any)["predictor"].(map[string]any), "canaryTrafficPercent")
	})
	waitKnative(t, cl, ksvc, "all traffic to the latest", func(k *unstructured.Unstructured) bool { return specTraffic(k) == "latest=100" })
	playKnative(t, cl, ksvc, r2)
	st = waitStatus(t, cl, name, "promoted", func(st map[string]any) bool {
		p := component(st, "predictor")
		return p["latestRolledoutRevision"] == r2 && p["previousRolledoutRevision"] == r1 &&
			reflect.DeepEqual(traffic(st), map[string]int64{r2: 100}) && conditionStatus(st, "Ready") == "True"
	})

	// Rollback: canaryTrafficPercent 0 pins the previous revision.
	update(t, cl, name, func(u *unstructured.Unstructured) {
		u.Object["spec"].(map[string]any)["predictor"].(map[string]any)["canaryTrafficPercent"] = int64(0)
	})
	k = waitKnative(t, cl, ksvc, "traffic pinned to "+r1, func(k *unstructured.Unstructured) bool {
		return specTraffic(k) == "latest:latest=0 prev:"+r1+"=100"
	})
	if templateName(k) != r2 {
		t.Errorf("rollback changed the template to %s", templateName(k))
	}
	playKnative(t, cl, ksvc, r2)
	waitStatus(t, cl, name, "rolled back, Ready", func(st map[string]any) bool {
		return reflect.DeepEqual(traffic(st), map[string]int64{r1: 100, r2: 0}) && conditionStatus(st, "Ready") == "True"
	})

	testKnativeTransformer(t, cluster, cl)

	// A mode the operator does not run is reported.
	bad := loadYAML(t, `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: mesh, namespace: default, annotations: {serving.kserve.io/deploymentMode: ModelMesh}}
spec:
  predictor:
    sklearn: {storageUri: "gs://a/b"}
`)
	if err := cl.Create(ctx, bad); err != nil {
		t.Fatal(err)
	}
	st = waitCondition(t, cl, "mesh", "Ready", "False")
	if r, m := conditionField(st, "Ready", "reason"), conditionField(st, "Ready", "message"); r != "InvalidSpec" || !bytes.Contains([]byte(m), []byte("ModelMesh")) {
		t.Errorf("ModelMesh: %s %q", r, m)
	}

	// Deletion: the garbage collector removes the Knative Service.
	if err := cl.Delete(ctx, isvc); err != nil {
		t.Fatal(err)
	}
	if cluster.GC {
		waitKnativeGone(t, cl, ksvc)
	}
}

const knTransformerYAML = `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: kn-transformer
  namespace: default
  annotations:
    serving.kserve.io/deploymentMode: Serverless
    autoscaling.knative.dev/target: "5"
spec:
  predictor:
    minReplicas: 0
    maxReplicas: 4
    containerConcurrency: 8
    timeout: 30
    sklearn: {storageUri: "gs://bucket/iris"}
  transformer:
    scaleMetric: rps
    scaleTarget: 50
    containers:
    - image: example/image-transformer:1
`

// testKnativeTransformer: a transformer gets its own Knative Service
// (chained to the predictor's host) and the service's URL; scale to zero,
// containerConcurrency and the autoscaling annotations; the transformer
// removed; a switch to raw mode and back.
func testKnativeTransformer(t *testing.T, cluster *kubetest.Cluster, cl client.Client) {
	ctx := t.Context()
	isvc := loadYAML(t, knTransformerYAML)
	if err := cl.Create(ctx, isvc); err != nil {
		t.Fatal(err)
	}
	p1, t1 := "kn-transformer-predictor-00001", "kn-transformer-transformer-00001"
	kp := waitKnative(t, cl, "kn-transformer-predictor", "template", func(k *unstructured.Unstructured) bool { return templateName(k) == p1 })
	kt := waitKnative(t, cl, "kn-transformer-transformer", "template", func(k *unstructured.Unstructured) bool { return templateName(k) == t1 })
	checkKnativeGolden(t, kp, "kn-transformer-predictor.yaml")
	checkKnativeGolden(t, kt, "kn-transformer-transformer.yaml")

	playKnative(t, cl, "kn-transformer-predictor", p1)
	st := waitCondition(t, cl, "kn-transformer", "PredictorReady", "True")
	if got := conditionStatus(st, "TransformerReady"); got != "False" {
		t.Errorf("TransformerReady = %q before Knative reports it", got)
	}
	if got := conditionStatus(st, "Ready"); got != "False" {
		t.Errorf("Ready = %q with the transformer not ready", got)
	}
	playKnative(t, cl, "kn-transformer-transformer", t1)
	st = waitCondition(t, cl, "kn-transformer", "Ready", "True")
	if want := "http://kn-transformer-transformer.default.example.com"; st["url"] != want {
		t.Errorf("url = %v, want the transformer's %s", st["url"], want)
	}
	if c := component(st, "transformer"); c["latestReadyRevision"] != t1 {
		t.Errorf("transformer status = %v", c)
	}

	// The transformer removed: its Knative Service goes.
	update(t, cl, "kn-transformer", func(u *unstructured.Unstructured) {
		delete(u.Object["spec"].(map[string]any), "transformer")
	})
	if cluster.GC {
		waitKnativeGone(t, cl, "kn-transformer-transformer")
	} else {
		waitKnative(t, cl, "kn-transformer-transformer", "marked for deletion", func(k *unstructured.Unstructured) bool { return k.GetDeletionTimestamp() != nil })
	}
	st = waitStatus(t, cl, "kn-transformer", "the predictor's URL", func(st map[string]any) bool {
		return st["url"] == "http://kn-transformer-predictor.default.example.com" && conditionStatus(st, "Ready") == "True"
	})
	if conditionStatus(st, "TransformerReady") != "" {
		t.Errorf("TransformerReady reported without a transformer: %v", st["conditions"])
	}
	if !cluster.GC {
		t.Log("no garbage collector: mode switches and deletion not checked")
		return
	}

	// To raw mode: the Knative Service goes, raw revisions come.
	update(t, cl, "kn-transformer", func(u *unstructured.Unstructured) {
		u.SetAnnotations(map[string]string{"serving.kserve.io/deploymentMode": "RawDeployment"})
	})
	waitKnativeGone(t, cl, "kn-transformer-predictor")
	markAvailable(t, cl, p1)
	waitService(t, cl, "kn-transformer-predictor", p1)
	st = waitCondition(t, cl, "kn-transformer", "Ready", "True")
	if want := "http://kn-transformer.default.example.com"; st["url"] != want {
		t.Errorf("raw mode url = %v, want the Ingress host %s", st["url"], want)
	}

	// And back: the Deployment and Service go, revision numbers go on.
	update(t, cl, "kn-transformer", func(u *unstructured.Unstructured) {
		u.SetAnnotations(map[string]string{"serving.kserve.io/deploymentMode": "Serverless"})
	})
	p2 := "kn-transformer-predictor-00002"
	waitKnative(t, cl, "kn-transformer-predictor", "template "+p2, func(k *unstructured.Unstructured) bool { return templateName(k) == p2 })
	poll(t, "raw revision and Service deleted", func() (bool, error) {
		err1 := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: p1}, &appsv1.Deployment{})
		err2 := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "kn-transformer-predictor"}, &corev1.Service{})
		err3 := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "kn-transformer"}, &networkingv1.Ingress{})
		return apierrors.IsNotFound(err1) && apierrors.IsNotFound(err2) && apierrors.IsNotFound(err3), nil
	})
	playKnative(t, cl, "kn-transformer-predictor", p2)
	waitStatus(t, cl, "kn-transformer", "Ready on "+p2, func(st map[string]any) bool {
		return component(st, "predictor")["latestReadyRevision"] == p2 && conditionStatus(st, "Ready") == "True"
	})
}

func getKnative(t testing.TB, cl client.Client, name string) (*unstructured.Unstructured, error) {
	k := &unstructured.Unstructured{}
	k.SetGroupVersionKind(operator.KnativeServiceGVK)
	err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, k)
	return k, err
}

func waitKnative(t testing.TB, cl client.Client, name, what string, ok func(*unstructured.Unstructured) bool) *unstructured.Unstructured {
	t.Helper()
	var k *unstructured.Unstructured
	poll(t, "Knative Service "+name+": "+what, func() (bool, error) {
		var err error
		k, err = getKnative(t, cl, name)
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil && ok(k), err
	})
	return k
}

func waitKnativeGone(t testing.TB, cl client.Client, name string) {
	t.Helper()
	poll(t, "Knative Service "+name+" deleted", func() (bool, error) {
		_, err := getKnative(t, cl, name)
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
}

func templateName(k *unstructured.Unstructured) string {
	s, _, _ := unstructured.NestedString(k.Object, "spec", "template", "metadata", "name")
	return s
}

// specTraffic renders spec.traffic as "tag:revision=percent ..." (latest
// for latestRevision, no tag part when untagged).
func specTraffic(k *unstructured.Unstructured) string {
	tr, _, _ := unstructured.NestedSlice(k.Object, "spec", "traffic")
	var b bytes.Buffer
	for i, e := range tr {
		m := e.(map[string]any)
		if i > 0 {
			b.WriteByte(' ')
		}
		if tag, _ := m["tag"].(string); tag != "" {
			b.WriteString(tag + ":")
		}
		rev, _ := m["revisionName"].(string)
		if l, _ := m["latestRevision"].(bool); l {
			rev = "latest"
		}
		fmt.Fprintf(&b, "%s=%v", rev, m["percent"])
	}
	return b.String()
}

// playKnative writes the status Knative's controller would once revision
// ready (the newest ready one) is ready and the Knative Service's current
// spec is applied: latest created and ready revisions, the route's URLs
// and the traffic block resolved to revision names, and Ready.
func playKnative(t testing.TB, cl client.Client, name, ready string) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		k, err := getKnative(t, cl, name)
		if err != nil {
			return err
		}
		host := name + ".default.example.com"
		var traffic []any
		spec, _, _ := unstructured.NestedSlice(k.Object, "spec", "traffic")
		for _, e := range spec {
			m := e.(map[string]any)
			out := map[string]any{"percent": m["percent"], "latestRevision": m["latestRevision"] == true}
			out["revisionName"] = m["revisionName"]
			if m["latestRevision"] == true {
				out["revisionName"] = ready
			}
			if tag, _ := m["tag"].(string); tag != "" {
				out["tag"] = tag
				out["url"] = "http://" + tag + "-" + host
			}
			traffic = append(traffic, out)
		}
		created := templateName(k)
		cond := func(typ string) map[string]any {
			if created == ready {
				return map[string]any{"type": typ, "status": "True"}
			}
			return map[string]any{"type": typ, "status": "Unknown", "reason": "Deploying"}
		}
		k.Object["status"] = map[string]any{
			"observedGeneration":        k.GetGeneration(),
			"latestCreatedRevisionName": created,
			"latestReadyRevisionName":   ready,
			"url":                       "http://" + host,
			"address":                   map[string]any{"url": "http://" + name + ".default.svc.cluster.local"},
			"traffic":                   traffic,
			"conditions":                []any{cond("ConfigurationsReady"), map[string]any{"type": "RoutesReady", "status": "True"}, cond("Ready")},
		}
		return cl.Status().Update(t.Context(), k)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkKnativeGolden compares what the operator wrote (metadata it sets and
// the spec) with testdata/knative/golden/<file>; -update rewrites it.
func checkKnativeGolden(t *testing.T, k *unstructured.Unstructured, file string) {
	t.Helper()
	var owners []any
	for _, o := range k.GetOwnerReferences() {
		owners = append(owners, map[string]any{"apiVersion": o.APIVersion, "kind": o.Kind, "name": o.Name, "controller": *o.Controller, "blockOwnerDeletion": *o.BlockOwnerDeletion})
	}
	doc := map[string]any{
		"apiVersion": k.GetAPIVersion(),
		"kind":       k.GetKind(),
		"metadata": map[string]any{
			"name": k.GetName(), "namespace": k.GetNamespace(),
			"labels": k.GetLabels(), "annotations": k.GetAnnotations(), "ownerReferences": owners,
		},
		"spec": k.Object["spec"],
	}
	got, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "knative", "golden", file)
	if f := flag.Lookup("update"); f != nil && f.Value.String() == "true" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run: go test ./internal/operator -run TestOperator/Knative -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Knative Service %s differs from %s (rerun with -update if intended):\n%s", k.GetName(), path, got)
	}
}
