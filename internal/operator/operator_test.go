package operator_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/operator"
	"github.com/ferryserve/ferry/internal/operator/kubetest"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

const (
	ns         = "default"
	serveImage = "ferry:test"
	domain     = "example.com"
	// waitFor bounds every poll: a reconcile takes milliseconds, but the
	// machine running the tests may be busy.
	waitFor = 60 * time.Second
)

// TestOperator runs the operator against one real API server (etcd,
// kube-apiserver and the garbage collector) and applies InferenceServices
// and TrainedModels to it; each subtest uses its own names.
func TestOperator(t *testing.T) {
	// The committed CRDs, so a schema the API server refuses fails here,
	// and stand-ins for the Gateway API's HTTPRoute CRD and Knative
	// Serving's Service CRD.
	cluster := kubetest.Start(t, kubetest.Options{CRDDirs: []string{"../../config/crd", "testdata/gateway-api", "testdata/knative"}})
	cl := newClient(t, cluster)
	stop := startOperator(t, cluster, nil)
	t.Run("RawDeployment", func(t *testing.T) { testRawDeployment(t, cluster, cl) })
	t.Run("Components", func(t *testing.T) { testComponents(t, cl) })
	t.Run("TrainedModels", func(t *testing.T) { testTrainedModels(t, cluster, cl) })
	t.Run("KubeflowGroup", func(t *testing.T) { testKubeflowGroup(t, cl) })
	t.Run("Knative", func(t *testing.T) { testKnative(t, cluster, cl) })
	t.Run("Quality", func(t *testing.T) { testQuality(t, cl) })

	// The same cluster, an operator routing through a Gateway: it takes
	// over the services above too, harmlessly (names do not overlap).
	stop()
	startOperator(t, cluster, func(c *operator.Config) { c.Gateway = "gateways/public" })
	t.Run("Gateway", func(t *testing.T) { testGateway(t, cluster, cl) })
}

// pulledURI is the model URI the storage initializer of d's pods pulls
// (`ferry pull URI DIR`), "" without one.
func pulledURI(d *appsv1.Deployment) string {
	for _, c := range d.Spec.Template.Spec.InitContainers {
		if c.Name == operator.StorageInitializerName && len(c.Args) >= 3 && c.Args[0] == "pull" {
			return c.Args[1]
		}
	}
	return ""
}

// testRawDeployment applies KServe's sklearn sample, checks the Deployment
// and Service the operator writes, plays the Deployment controller by
// marking the revision available, and checks the InferenceService becomes
// Ready; then a canary rollout, an invalid spec and deletion.
func testRawDeployment(t *testing.T, cluster *kubetest.Cluster, cl client.Client) {
	ctx := t.Context()

	isvc := loadSample(t, "../api/testdata/kserve-samples/v0.15.2__storage__uri__sklearn.yaml")
	isvc.SetNamespace(ns)
	if err := cl.Create(ctx, isvc); err != nil {
		t.Fatal(err)
	}
	name := isvc.GetName()
	uri := "https://github.com/tduffy000/kfserving-uri-examples/blob/master/sklearn/frozen/model.joblib?raw=true"

	rev1 := name + "-predictor-00001"
	dep := waitDeployment(t, cl, rev1)
	c := dep.Spec.Template.Spec.Containers
	if len(c) != 1 || c[0].Image != serveImage {
		t.Fatalf("containers = %+v, want one running %s", c, serveImage)
	}
	if got := pulledURI(dep); got != uri {
		t.Errorf("storage initializer pulls %q, want %q", got, uri)
	}
	for _, pair := range [][2]string{{"--model-dir", "/mnt/models"}, {"--model-name", name}, {"--model-format", "sklearn"}} {
		if i := slices.Index(c[0].Args, pair[0]); i < 0 || i+1 >= len(c[0].Args) || c[0].Args[i+1] != pair[1] {
			t.Errorf("args %q lack %s %s", c[0].Args, pair[0], pair[1])
		}
	}
	if c[0].Args[0] != "serve" {
		t.Errorf("args %q do not start with serve", c[0].Args)
	}
	wantLabels := map[string]string{operator.LabelInferenceService: name, operator.LabelComponent: "predictor", operator.LabelRevision: rev1}
	for k, v := range wantLabels {
		if dep.Spec.Template.Labels[k] != v || dep.Labels[k] != v {
			t.Errorf("label %s = %q (pod template %q), want %q", k, dep.Labels[k], dep.Spec.Template.Labels[k], v)
		}
	}
	checkOwner(t, dep.OwnerReferences, isvc)

	svc := waitService(t, cl, name+"-predictor", rev1)
	checkOwner(t, svc.OwnerReferences, isvc)

	// No pods run, so the operator must not call it ready yet.
	st := waitCondition(t, cl, name, "PredictorReady", "False")
	if got := conditionStatus(st, "Ready"); got != "False" {
		t.Errorf("Ready = %q before the Deployment is available", got)
	}

	markAvailable(t, cl, rev1)
	st = waitCondition(t, cl, name, "Ready", "True")
	pred := component(st, "predictor")
	if pred["latestReadyRevision"] != rev1 || pred["latestRolledoutRevision"] != rev1 {
		t.Errorf("predictor status = %v, want %s ready and rolled out", pred, rev1)
	}
	wantURL := fmt.Sprintf("http://%s-predictor.%s.svc.cluster.local", name, ns)
	if addr, _ := st["address"].(map[string]any); addr["url"] != wantURL {
		t.Errorf("address = %v, want %s", st["address"], wantURL)
	}
	if want := "http://" + name + "." + ns + "." + domain; st["url"] != want {
		t.Errorf("url = %v, want %s (the Ingress host)", st["url"], want)
	}

	// Canary: a new model at 10 % makes revision 2; until it is available
	// all traffic stays on revision 1, then 10/90 as KFServing splits it.
	update(t, cl, name, func(u *unstructured.Unstructured) {
		pr := u.Object["spec"].(map[string]any)["predictor"].(map[string]any)
		pr["canaryTrafficPercent"] = int64(10)
		pr["sklearn"].(map[string]any)["storageUri"] = "gs://bucket/sklearn/v2"
	})
	rev2 := name + "-predictor-00002"
	dep2 := waitDeployment(t, cl, rev2)
	if got := pulledURI(dep2); got != "gs://bucket/sklearn/v2" {
		t.Errorf("revision 2 pulls %q, want gs://bucket/sklearn/v2", got)
	}
	markAvailable(t, cl, rev2)
	st = waitStatus(t, cl, name, "a 10/90 canary split", func(st map[string]any) bool {
		tr := traffic(st)
		return len(tr) == 2 && tr[rev2] == 10 && tr[rev1] == 90
	})
	if got := conditionStatus(st, "Ready"); got != "True" {
		t.Errorf("Ready = %q during the canary", got)
	}
	// A Service cannot weigh backends: it follows the larger share.
	waitService(t, cl, name+"-predictor", rev1)

	// A spec the api package rejects is reported, not run.
	bad := loadYAML(t, `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: two-models, namespace: default}
spec:
  predictor:
    sklearn: {storageUri: "gs://a/b"}
    xgboost: {storageUri: "gs://a/c"}
`)
	if err := cl.Create(ctx, bad); err != nil {
		t.Fatal(err)
	}
	st = waitCondition(t, cl, "two-models", "Ready", "False")
	if r := conditionField(st, "Ready", "reason"); r != "InvalidSpec" {
		t.Errorf("reason = %q, want InvalidSpec (status %v)", r, st)
	}
	var deps appsv1.DeploymentList
	if err := cl.List(ctx, &deps, client.InNamespace(ns), client.MatchingLabels{operator.LabelInferenceService: "two-models"}); err != nil || len(deps.Items) != 0 {
		t.Errorf("invalid service got Deployments %d (%v)", len(deps.Items), err)
	}

	// Deleting the InferenceService removes what it owns.
	if err := cl.Delete(ctx, isvc); err != nil {
		t.Fatal(err)
	}
	if !cluster.GC {
		t.Log("no garbage collector (kube-controller-manager not built): owner references checked, cascade not")
		return
	}
	poll(t, "revisions and Service deleted with their InferenceService", func() (bool, error) {
		var deps appsv1.DeploymentList
		if err := cl.List(ctx, &deps, client.InNamespace(ns), client.MatchingLabels{operator.LabelInferenceService: name}); err != nil {
			return false, err
		}
		err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name + "-predictor"}, &corev1.Service{})
		return len(deps.Items) == 0 && apierrors.IsNotFound(err), nil
	})
}

func newClient(t testing.TB, c *kubetest.Cluster) client.Client {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(c.Config)
	cfg.QPS = -1 // the test plays several controllers at once
	cl, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// startOperator runs the operator with leader election on, as it runs by
// default (configure, when not nil, changes its configuration), waits
// until its /readyz answers 200, and returns a function that stops it
// (bounded); the test's end stops it too.
func startOperator(t testing.TB, c *kubetest.Cluster, configure func(*operator.Config)) (stop func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	probeAddr := l.Addr().String()
	l.Close()
	cfg := operator.Config{
		REST:                    c.Config,
		ServeImage:              serveImage,
		IngressDomain:           domain,
		LeaderElection:          true,
		LeaderElectionNamespace: ns,
		MetricsAddr:             "0",
		ProbeAddr:               probeAddr,
		Log:                     slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
		// The package's tests start a manager per cluster.
		SkipNameValidation: true,
	}
	if configure != nil {
		configure(&cfg)
	}
	mgr, err := operator.NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	stop = sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("operator: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("operator did not stop within 30s")
		}
	})
	t.Cleanup(stop)
	hc := &http.Client{Timeout: 5 * time.Second}
	poll(t, "operator /readyz", func() (bool, error) {
		resp, err := hc.Get("http://" + probeAddr + "/readyz")
		if err != nil {
			return false, nil // not listening yet
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	return stop
}

func loadSample(t *testing.T, path string) *unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return loadYAML(t, string(b))
}

func loadYAML(t testing.TB, doc string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}

// update applies change to the latest InferenceService name, again on a
// conflict: the operator writes its status meanwhile.
func update(t *testing.T, cl client.Client, name string, change func(u *unstructured.Unstructured)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		u := get(t, cl, name)
		change(u)
		return cl.Update(t.Context(), u)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func get(t testing.TB, cl client.Client, name string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(operator.InferenceServiceGVK)
	if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		t.Fatal(err)
	}
	return u
}

func waitDeployment(t testing.TB, cl client.Client, name string) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{}
	poll(t, "Deployment "+name, func() (bool, error) {
		err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, d)
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	return d
}

func waitService(t *testing.T, cl client.Client, name, rev string) *corev1.Service {
	t.Helper()
	s := &corev1.Service{}
	poll(t, "Service "+name+" selecting "+rev, func() (bool, error) {
		err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, s)
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil && s.Spec.Selector[operator.LabelRevision] == rev, err
	})
	return s
}

// markAvailable writes the status the Deployment controller would write
// once the revision's pod is ready: there is no kubelet here.
func markAvailable(t testing.TB, cl client.Client, name string) {
	t.Helper()
	d := waitDeployment(t, cl, name)
	d.Status = appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation,
		Replicas:           1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1,
		Conditions: []appsv1.DeploymentCondition{{
			Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable",
			LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now(),
		}},
	}
	if err := cl.Status().Update(t.Context(), d); err != nil {
		t.Fatal(err)
	}
}

func waitCondition(t testing.TB, cl client.Client, name, typ, status string) map[string]any {
	t.Helper()
	return waitStatus(t, cl, name, typ+"="+status, func(st map[string]any) bool { return conditionStatus(st, typ) == status })
}

func waitStatus(t testing.TB, cl client.Client, name, what string, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	var st map[string]any
	poll(t, name+": "+what, func() (bool, error) {
		st, _ = get(t, cl, name).Object["status"].(map[string]any)
		return st != nil && ok(st), nil
	})
	return st
}

func conditionStatus(st map[string]any, typ string) string { return conditionField(st, typ, "status") }

func conditionField(st map[string]any, typ, field string) string {
	conds, _ := st["conditions"].([]any)
	for _, c := range conds {
		if m, _ := c.(map[string]any); m["type"] == typ {
			s, _ := m[field].(string)
			return s
		}
	}
	return ""
}

func component(st map[string]any, name string) map[string]any {
	comps, _ := st["components"].(map[string]any)
	c, _ := comps[name].(map[string]any)
	return c
}

// traffic returns revision → percent of the predictor's traffic.
func traffic(st map[string]any) map[string]int64 {
	out := map[string]int64{}
	tr, _ := component(st, "predictor")["traffic"].([]any)
	for _, e := range tr {
		m, _ := e.(map[string]any)
		rev, _ := m["revisionName"].(string)
		p, _ := m["percent"].(int64)
		out[rev] = p
	}
	return out
}

func checkOwner(t *testing.T, refs []metav1.OwnerReference, owner *unstructured.Unstructured) {
	t.Helper()
	if len(refs) != 1 || refs[0].UID != owner.GetUID() || refs[0].Kind != "InferenceService" ||
		refs[0].Controller == nil || !*refs[0].Controller || refs[0].BlockOwnerDeletion == nil || !*refs[0].BlockOwnerDeletion {
		t.Errorf("owner references = %+v, want the InferenceService %s as controller", refs, owner.GetUID())
	}
}

// poll calls cond every 50 ms until it returns true, fails the test on an
// error or after waitFor.
func poll(t testing.TB, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitFor, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
