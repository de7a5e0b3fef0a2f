package operator_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/operator"
	"github.com/ferryserve/ferry/internal/operator/kubetest"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// TestOperatorPods runs the operator on a cluster that makes pods as a
// real one does: Kubernetes' own Deployment and ReplicaSet controllers
// create them, kube-scheduler binds them to a node and kwok, a simulated
// kubelet, marks them Running and Ready. Nothing in the test writes a
// status: the InferenceService must become Ready from what the cluster
// reports, through a canary and its promotion, and its deletion must take
// every pod with it.
func TestOperatorPods(t *testing.T) {
	cluster := kubetest.Start(t, kubetest.Options{CRDDirs: []string{"../../config/crd"}, Pods: true})
	cl := newClient(t, cluster)
	startOperator(t, cluster, nil)
	ctx := t.Context()
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		ctx := context.Background() // t.Context() has ended by now
		var pl corev1.PodList
		_ = cl.List(ctx, &pl, client.InNamespace(ns))
		for _, p := range pl.Items {
			t.Logf("pod %s node=%q phase=%s conditions=%+v", p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.Conditions)
		}
		var deps appsv1.DeploymentList
		_ = cl.List(ctx, &deps, client.InNamespace(ns))
		for _, d := range deps.Items {
			t.Logf("deployment %s status=%+v", d.Name, d.Status)
		}
		var rs appsv1.ReplicaSetList
		_ = cl.List(ctx, &rs, client.InNamespace(ns))
		for _, r := range rs.Items {
			t.Logf("replicaset %s status=%+v", r.Name, r.Status)
		}
	})

	isvc := loadSample(t, "../api/testdata/kserve-samples/v0.15.2__storage__uri__sklearn.yaml")
	isvc.SetNamespace(ns)
	pr := isvc.Object["spec"].(map[string]any)["predictor"].(map[string]any)
	pr["minReplicas"] = int64(2)
	if err := cl.Create(ctx, isvc); err != nil {
		t.Fatal(err)
	}
	name := isvc.GetName()
	rev1 := name + "-predictor-00001"

	st := waitCondition(t, cl, name, "Ready", "True")
	if got := conditionStatus(st, "PredictorReady"); got != "True" {
		t.Errorf("PredictorReady = %q once Ready", got)
	}
	pods := waitPods(t, cl, rev1, 2)
	for _, p := range pods {
		if p.Spec.NodeName != kubetest.KwokNode {
			t.Errorf("pod %s scheduled to %q, want %s", p.Name, p.Spec.NodeName, kubetest.KwokNode)
		}
		// The storage initializer ran to completion before the server.
		var initDone bool
		for _, s := range p.Status.InitContainerStatuses {
			if s.Name == operator.StorageInitializerName && s.State.Terminated != nil && s.State.Terminated.ExitCode == 0 {
				initDone = true
			}
		}
		if !initDone {
			t.Errorf("pod %s: storage initializer not completed: %+v", p.Name, p.Status.InitContainerStatuses)
		}
	}
	// The status the operator read was the Deployment controller's.
	dep := waitDeployment(t, cl, rev1)
	if dep.Status.ReadyReplicas != 2 || dep.Status.ObservedGeneration != dep.Generation {
		t.Errorf("Deployment status = %+v, want 2 ready replicas of generation %d", dep.Status, dep.Generation)
	}

	// Canary: revision 2 gets 10 % once its own pods are ready.
	update(t, cl, name, func(u *unstructured.Unstructured) {
		pr := u.Object["spec"].(map[string]any)["predictor"].(map[string]any)
		pr["canaryTrafficPercent"] = int64(10)
		pr["sklearn"].(map[string]any)["storageUri"] = "gs://bucket/sklearn/v2"
	})
	rev2 := name + "-predictor-00002"
	st = waitStatus(t, cl, name, "a 10/90 canary split", func(st map[string]any) bool {
		tr := traffic(st)
		return len(tr) == 2 && tr[rev2] == 10 && tr[rev1] == 90
	})
	if got := conditionStatus(st, "Ready"); got != "True" {
		t.Errorf("Ready = %q during the canary", got)
	}
	waitPods(t, cl, rev2, 2)
	waitPods(t, cl, rev1, 2)

	// Promotion: all traffic to revision 2, revision 1's pods go.
	update(t, cl, name, func(u *unstructured.Unstructured) {
		pr := u.Object["spec"].(map[string]any)["predictor"].(map[string]any)
		delete(pr, "canaryTrafficPercent")
	})
	waitStatus(t, cl, name, "revision 2 promoted", func(st map[string]any) bool {
		tr := traffic(st)
		return len(tr) == 1 && tr[rev2] == 100 && conditionStatus(st, "Ready") == "True"
	})
	waitService(t, cl, name+"-predictor", rev2)

	// Deletion takes the revisions and every pod with them (the garbage
	// collector through ReplicaSets, kwok confirming each pod's end).
	if err := cl.Delete(ctx, isvc); err != nil {
		t.Fatal(err)
	}
	poll(t, "every pod of "+name+" deleted", func() (bool, error) {
		var pl corev1.PodList
		err := cl.List(ctx, &pl, client.InNamespace(ns), client.MatchingLabels{operator.LabelInferenceService: name})
		return err == nil && len(pl.Items) == 0, err
	})
	var deps appsv1.DeploymentList
	if err := cl.List(ctx, &deps, client.InNamespace(ns), client.MatchingLabels{operator.LabelInferenceService: name}); err != nil || len(deps.Items) != 0 {
		t.Errorf("after deletion: %d Deployments (%v)", len(deps.Items), err)
	}
}

// waitPods waits until revision rev has exactly n pods, all Running and
// Ready and none being deleted, and returns them.
func waitPods(t *testing.T, cl client.Client, rev string, n int) []corev1.Pod {
	t.Helper()
	var pl corev1.PodList
	poll(t, "pods of "+rev+" running and ready", func() (bool, error) {
		if err := cl.List(t.Context(), &pl, client.InNamespace(ns), client.MatchingLabels{operator.LabelRevision: rev}); err != nil {
			return false, err
		}
		if len(pl.Items) != n {
			return false, nil
		}
		for _, p := range pl.Items {
			if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning || !podReady(&p) {
				return false, nil
			}
		}
		return true, nil
	})
	return pl.Items
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// TestKubectlSamplesReady applies every KServe sample, as
// TestKubectlSamples does, to a cluster that makes pods (kwok), and waits
// for each InferenceService to become Ready from what the cluster reports:
// every one whose golden (testdata/kubectl) shows no failure of its own
// (an invalid spec, a runtime the operator has no image for) must reach
// Ready=True, and the others keep their failure.
func TestKubectlSamplesReady(t *testing.T) {
	_, cl, samples, _ := applyKubectlSamples(t, kubetest.Options{CRDDirs: []string{"../../config/crd"}, Pods: true})
	ready, failing := 0, 0
	for _, s := range samples {
		expect := goldenFailures(t, s)
		for _, key := range s.isvcs {
			group, name, _ := strings.Cut(key, "/")
			gvk := operator.InferenceServiceGVK
			gvk.Group = group
			reasons := expect[key]
			what := s.ns + "/" + name + " Ready"
			if len(reasons) > 0 {
				what = s.ns + "/" + name + " failing with " + strings.Join(reasons, ", ")
			}
			var last string
			deadline := time.Now().Add(2 * waitFor)
			for {
				u := &unstructured.Unstructured{}
				u.SetGroupVersionKind(gvk)
				if err := cl.Get(t.Context(), client.ObjectKey{Namespace: s.ns, Name: name}, u); err != nil {
					t.Fatal(err)
				}
				st, _ := u.Object["status"].(map[string]any)
				last = fmt.Sprint(st["conditions"])
				if len(reasons) == 0 && conditionStatus(st, "Ready") == "True" {
					ready++
					break
				}
				if len(reasons) > 0 && conditionStatus(st, "Ready") == "False" && hasReasons(st, reasons) {
					failing++
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("%s (%s): timed out waiting for %s; conditions %s", s.file, key, what, last)
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	t.Logf("%d InferenceServices Ready, %d failing as their goldens say", ready, failing)
	if ready < 50 {
		t.Errorf("only %d samples reached Ready", ready)
	}
}

// failureReasons are condition reasons that pods cannot cure.
var failureReasons = []string{"InvalidSpec", "RevisionFailed", "ReconcileFailed", "NameTaken"}

// goldenFailures reads which InferenceServices of s its golden shows
// failing, with the reasons.
func goldenFailures(t *testing.T, s kubectlSample) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "kubectl", strings.TrimSuffix(s.file, ".yaml")+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var docs []struct {
		InferenceService string   `json:"inferenceService"`
		Conditions       []string `json:"conditions"`
	}
	if err := yaml.Unmarshal(b, &docs); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, d := range docs {
		for _, c := range d.Conditions {
			for _, r := range failureReasons {
				if strings.HasSuffix(c, "("+r+")") && !slices.Contains(out[d.InferenceService], r) {
					out[d.InferenceService] = append(out[d.InferenceService], r)
				}
			}
		}
	}
	return out
}

// hasReasons reports whether st has a False condition with each reason.
func hasReasons(st map[string]any, reasons []string) bool {
	conds, _ := st["conditions"].([]any)
	for _, r := range reasons {
		found := false
		for _, c := range conds {
			if m, _ := c.(map[string]any); m["status"] == "False" && m["reason"] == r {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}
