package operator_test

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/operator"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const incomeYAML = `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: income, namespace: default}
spec:
  predictor:
    minReplicas: 1
    maxReplicas: 3
    scaleMetric: cpu
    scaleTarget: 70
    sklearn: {storageUri: "gs://bucket/income"}
  transformer:
    minReplicas: 2
    maxReplicas: 2
    containers:
    - image: example/income-transformer:1
  explainer:
    alibi:
      type: AnchorTabular
      storageUri: gs://bucket/income/explainer
`

// testComponents applies an InferenceService with a transformer and an
// explainer: a revision, Service and condition per component, the
// transformer chained to the predictor's Service, an HPA only where
// minReplicas < maxReplicas (and none once an annotation hands scaling to
// an external autoscaler), an Ingress whose root goes to the transformer
// and whose explain paths go to the explainer, Ready only once every
// component is, and a removed transformer cleaned up.
func testComponents(t *testing.T, cl client.Client) {
	ctx := t.Context()
	isvc := loadYAML(t, incomeYAML)
	if err := cl.Create(ctx, isvc); err != nil {
		t.Fatal(err)
	}
	pred, tr, ex := "income-predictor-00001", "income-transformer-00001", "income-explainer-00001"
	dp, dt, de := waitDeployment(t, cl, pred), waitDeployment(t, cl, tr), waitDeployment(t, cl, ex)
	for _, d := range []*appsv1.Deployment{dp, dt, de} {
		checkOwner(t, d.OwnerReferences, isvc)
	}
	tc := dt.Spec.Template.Spec.Containers[0]
	if tc.Image != "example/income-transformer:1" || *dt.Spec.Replicas != 2 {
		t.Errorf("transformer image %q replicas %d", tc.Image, *dt.Spec.Replicas)
	}
	if i := slices.Index(tc.Args, "--predictor_host"); i < 0 || tc.Args[i+1] != "income-predictor.default" {
		t.Errorf("transformer args %q lack --predictor_host income-predictor.default", tc.Args)
	}
	ec := de.Spec.Template.Spec.Containers[0]
	if i := slices.Index(ec.Args, "--explainer-type"); ec.Image != serveImage || i < 0 || ec.Args[i+1] != "AnchorTabular" {
		t.Errorf("explainer image %q args %q", ec.Image, ec.Args)
	}
	for comp, rev := range map[string]string{"predictor": pred, "transformer": tr, "explainer": ex} {
		svc := waitService(t, cl, operator.ServiceName("income", comp), rev)
		checkOwner(t, svc.OwnerReferences, isvc)
	}

	// HPA: the predictor scales 1..3 on cpu at 70 %; the transformer is
	// fixed at 2 and the explainer at the default 1, so neither gets one.
	hpa := &autoscalingv2.HorizontalPodAutoscaler{}
	poll(t, "HPA "+pred, func() (bool, error) {
		err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: pred}, hpa)
		return err == nil, client.IgnoreNotFound(err)
	})
	checkOwner(t, hpa.OwnerReferences, isvc)
	if s := hpa.Spec; s.ScaleTargetRef.Name != pred || s.ScaleTargetRef.Kind != "Deployment" || *s.MinReplicas != 1 || s.MaxReplicas != 3 ||
		len(s.Metrics) != 1 || s.Metrics[0].Resource.Name != corev1.ResourceCPU || *s.Metrics[0].Resource.Target.AverageUtilization != 70 {
		t.Errorf("HPA spec = %+v", s)
	}
	var hpas autoscalingv2.HorizontalPodAutoscalerList
	if err := cl.List(ctx, &hpas, client.InNamespace(ns), client.MatchingLabels{operator.LabelInferenceService: "income"}); err != nil || len(hpas.Items) != 1 {
		t.Errorf("HPAs = %d (%v), want only the predictor's", len(hpas.Items), err)
	}

	// Ingress: the transformer takes the traffic; explain goes beside it.
	ing := &networkingv1.Ingress{}
	poll(t, "Ingress income", func() (bool, error) {
		err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "income"}, ing)
		return err == nil, client.IgnoreNotFound(err)
	})
	checkOwner(t, ing.OwnerReferences, isvc)
	routes := ingressRoutes(ing)
	want := map[string]string{
		"income.default.example.com/":                         "income-transformer",
		"income.default.example.com/v1/models/income:explain": "income-explainer",
		"income.default.example.com/v2/models/income/explain": "income-explainer",
	}
	if !maps.Equal(routes, want) {
		t.Errorf("ingress routes = %v, want %v", routes, want)
	}

	// Ready needs every component.
	markAvailable(t, cl, pred)
	markAvailable(t, cl, ex)
	st := waitCondition(t, cl, "income", "PredictorReady", "True")
	st = waitCondition(t, cl, "income", "ExplainerReady", "True")
	if got := conditionStatus(st, "TransformerReady"); got != "False" {
		t.Errorf("TransformerReady = %q before its Deployment is available", got)
	}
	if got := conditionStatus(st, "Ready"); got != "False" {
		t.Errorf("Ready = %q with the transformer not ready", got)
	}
	markAvailable(t, cl, tr)
	st = waitCondition(t, cl, "income", "Ready", "True")
	for _, c := range []string{"PredictorReady", "TransformerReady", "ExplainerReady", "IngressReady"} {
		if got := conditionStatus(st, c); got != "True" {
			t.Errorf("%s = %q", c, got)
		}
	}
	if st["url"] != "http://income.default.example.com" {
		t.Errorf("url = %v", st["url"])
	}
	if addr, _ := st["address"].(map[string]any); addr["url"] != "http://income-transformer.default.svc.cluster.local" {
		t.Errorf("address = %v, want the transformer's Service", st["address"])
	}
	if u := component(st, "transformer")["url"]; u != "http://income-transformer.default.svc.cluster.local" {
		t.Errorf("transformer url = %v", u)
	}

	// Settled: the defaults the API server adds to an HPA must not make
	// every reconcile rewrite it (a hot loop would show as new versions).
	before := versions(t, cl, "income", pred)
	markAvailable(t, cl, pred) // one more reconcile
	time.Sleep(2 * time.Second)
	if after := versions(t, cl, "income", pred); !maps.Equal(before, after) {
		t.Errorf("objects rewritten while nothing changed: %v → %v", before, after)
	}

	// An external autoscaler takes over: the HPA goes.
	update(t, cl, "income", func(u *unstructured.Unstructured) {
		ann := u.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann["serving.kserve.io/autoscalerClass"] = "external"
		u.SetAnnotations(ann)
	})
	poll(t, "HPA "+pred+" deleted for an external autoscaler", func() (bool, error) {
		err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: pred}, &autoscalingv2.HorizontalPodAutoscaler{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})

	// Without the transformer the predictor takes the traffic; the
	// transformer's revision and Service go, the predictor's stay.
	update(t, cl, "income", func(u *unstructured.Unstructured) {
		delete(u.Object["spec"].(map[string]any), "transformer")
	})
	poll(t, "transformer removed", func() (bool, error) {
		errD := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: tr}, &appsv1.Deployment{})
		errS := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "income-transformer"}, &corev1.Service{})
		if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "income"}, ing); err != nil {
			return false, err
		}
		return apierrors.IsNotFound(errD) && apierrors.IsNotFound(errS) && ingressRoutes(ing)["income.default.example.com/"] == "income-predictor", nil
	})
	st = waitStatus(t, cl, "income", "no TransformerReady", func(st map[string]any) bool {
		return conditionStatus(st, "TransformerReady") == "" && conditionStatus(st, "Ready") == "True"
	})
	if component(st, "transformer") != nil {
		t.Errorf("status still lists the transformer: %v", st["components"])
	}
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: pred}, &appsv1.Deployment{}); err != nil {
		t.Errorf("predictor revision: %v", err)
	}

	// An explainer Ferry cannot run is reported on its own condition; the
	// predictor still runs.
	bad := loadYAML(t, `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: lime, namespace: default}
spec:
  predictor:
    sklearn: {storageUri: "gs://bucket/lime"}
  explainer:
    alibi: {type: Counterfactuals, storageUri: "gs://bucket/lime"}
`)
	if err := cl.Create(ctx, bad); err != nil {
		t.Fatal(err)
	}
	st = waitCondition(t, cl, "lime", "ExplainerReady", "False")
	if r, m := conditionField(st, "ExplainerReady", "reason"), conditionField(st, "ExplainerReady", "message"); r != "RevisionFailed" || m == "" {
		t.Errorf("ExplainerReady reason %q message %q", r, m)
	}
	waitDeployment(t, cl, "lime-predictor-00001")
}

// ingressRoutes maps host+path to the backend Service's name.
func ingressRoutes(ing *networkingv1.Ingress) map[string]string {
	out := map[string]string{}
	for _, r := range ing.Spec.Rules {
		for _, p := range r.HTTP.Paths {
			out[r.Host+p.Path] = p.Backend.Service.Name
		}
	}
	return out
}

// versions are the resourceVersions of what the operator writes for an
// InferenceService with one autoscaled revision.
func versions(t *testing.T, cl client.Client, name, hpa string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for key, obj := range map[string]client.Object{
		"isvc":    get(t, cl, name),
		"ingress": &networkingv1.Ingress{},
		"hpa":     &autoscalingv2.HorizontalPodAutoscaler{},
		"service": &corev1.Service{},
	} {
		n := map[string]string{"isvc": name, "ingress": name, "hpa": hpa, "service": name + "-predictor"}[key]
		if key != "isvc" {
			if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: n}, obj); err != nil {
				t.Fatal(err)
			}
		}
		out[key] = obj.GetResourceVersion()
	}
	return out
}
