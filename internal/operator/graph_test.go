package operator_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/graphrouter"
	"github.com/ferryserve/ferry/internal/operator"
	"github.com/ferryserve/ferry/internal/operator/kubetest"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestInferenceGraph applies KServe's InferenceGraph sample to a real API
// server and checks what the operator makes of it: a graph whose services
// do not exist waits for them; then a router Deployment and Service named
// like the graph, owned by it, with the services' URLs resolved by their
// protocols; Ready once the Deployment is available; a spec change rolls
// the router; an invalid spec is reported; deletion collects everything.
func TestInferenceGraph(t *testing.T) {
	cluster := kubetest.Start(t, kubetest.Options{CRDDirs: []string{"../../config/crd", "testdata/gateway-api"}})
	cl := newClient(t, cluster)
	stop := startOperator(t, cluster, nil)
	ctx := t.Context()

	ig := loadSample(t, "../api/testdata/graph-sequence.good.yaml")
	ig.SetNamespace(ns)
	if err := cl.Create(ctx, ig); err != nil {
		t.Fatal(err)
	}
	name := ig.GetName()
	st := waitGraph(t, cl, name, "Ready=False ServiceNotFound", func(st map[string]any) bool {
		return conditionField(st, "Ready", "reason") == operator.ReasonServiceNotFound
	})
	if msg := conditionField(st, "Ready", "message"); !strings.Contains(msg, "sklearn-iris") || !strings.Contains(msg, "xgboost-iris") {
		t.Errorf("message %q does not name both missing services", msg)
	}
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
		t.Errorf("router Deployment before its services exist: %v", err)
	}

	// The services appear: one V1, one V2.
	for _, doc := range []string{
		`{apiVersion: serving.kserve.io/v1beta1, kind: InferenceService, metadata: {name: sklearn-iris, namespace: default},
  spec: {predictor: {sklearn: {storageUri: "gs://kfserving-examples/models/sklearn/1.0/model"}}}}`,
		`{apiVersion: serving.kserve.io/v1beta1, kind: InferenceService, metadata: {name: xgboost-iris, namespace: default},
  spec: {predictor: {xgboost: {protocolVersion: v2, storageUri: "gs://kfserving-examples/models/xgboost/iris"}}}}`,
	} {
		if err := cl.Create(ctx, loadYAML(t, doc)); err != nil {
			t.Fatal(err)
		}
	}
	dep := waitDeployment(t, cl, name)
	c := dep.Spec.Template.Spec.Containers
	if len(c) != 1 || c[0].Image != serveImage || c[0].Args[0] != "router" {
		t.Fatalf("containers = %+v, want one running `ferry router` in %s", c, serveImage)
	}
	wantURLs := []string{
		"sklearn-iris=http://sklearn-iris-predictor.default.svc.cluster.local/v1/models/sklearn-iris:predict",
		"xgboost-iris=http://xgboost-iris-predictor.default.svc.cluster.local/v2/models/xgboost-iris/infer",
	}
	if got := flagValues(c[0].Args, "--service-url"); !slices.Equal(got, wantURLs) {
		t.Errorf("--service-url %q, want %q", got, wantURLs)
	}
	graphArg := flagValues(c[0].Args, "--graph-json")
	if len(graphArg) != 1 {
		t.Fatalf("args %q: want one --graph-json", c[0].Args)
	}
	parsed, err := graphrouter.ParseGraph([]byte(graphArg[0]), "", "")
	if err != nil {
		t.Fatalf("--graph-json does not parse: %v", err)
	}
	if parsed.Metadata.Name != name || parsed.Metadata.Namespace != ns || len(parsed.Spec.Nodes) != 2 ||
		parsed.Spec.Nodes["root"].Steps[2].Condition != "predictions.#(>=0)" || *parsed.Spec.RouterTimeouts.ServiceClient != 5 {
		t.Errorf("--graph-json = %s, not the sample", graphArg[0])
	}
	if p := c[0].ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != graphrouter.ReadyPath || p.HTTPGet.Port.IntValue() != 8080 {
		t.Errorf("readiness probe = %+v, want GET %s on 8080", p, graphrouter.ReadyPath)
	}
	if cpu := c[0].Resources.Requests.Cpu().String(); cpu != "100m" {
		t.Errorf("cpu request = %s, want the sample's 100m", cpu)
	}
	if a := dep.Spec.Template.Spec.Affinity; a == nil || a.NodeAffinity == nil {
		t.Errorf("affinity = %+v, want the sample's node affinity", a)
	}
	if dep.Spec.Template.Labels[operator.LabelInferenceGraph] != name {
		t.Errorf("pod labels = %v", dep.Spec.Template.Labels)
	}
	checkGraphOwner(t, dep.OwnerReferences, ig)

	svc := &corev1.Service{}
	poll(t, "Service "+name, func() (bool, error) {
		err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, svc)
		return err == nil, client.IgnoreNotFound(err)
	})
	if p := svc.Spec.Ports; len(p) != 1 || p[0].Port != 80 || p[0].TargetPort.IntValue() != 8080 ||
		svc.Spec.Selector[operator.LabelInferenceGraph] != name {
		t.Errorf("service ports %+v selector %v, want 80→8080 selecting the router", p, svc.Spec.Selector)
	}
	checkGraphOwner(t, svc.OwnerReferences, ig)

	st = waitGraph(t, cl, name, "Ready=False RouterNotReady", func(st map[string]any) bool {
		return conditionField(st, "Ready", "reason") == operator.ReasonRouterNotReady
	})
	markAvailable(t, cl, name)
	st = waitGraph(t, cl, name, "Ready=True", func(st map[string]any) bool { return conditionStatus(st, "Ready") == "True" })
	// The operator has an ingress domain: the graph gets an Ingress, and
	// its host is the URL.
	if want := "http://" + name + "." + ns + "." + domain; st["url"] != want {
		t.Errorf("url = %v, want %s", st["url"], want)
	}
	ing := &networkingv1.Ingress{}
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, ing); err != nil {
		t.Fatal(err)
	}
	if r := ing.Spec.Rules; len(r) != 1 || r[0].Host != name+"."+ns+"."+domain || r[0].HTTP.Paths[0].Backend.Service.Name != name {
		t.Errorf("ingress rules = %+v, want the graph's host to its Service", r)
	}
	checkGraphOwner(t, ing.OwnerReferences, ig)
	// The sample scales on rps, which only Knative can: no HPA, and the
	// status says so.
	if got := conditionField(st, operator.ConditionAutoscaled, "reason"); got != "UnsupportedMetric" {
		t.Errorf("Autoscaled reason = %q, want UnsupportedMetric (status %v)", got, st)
	}

	// A spec change rolls the router (the new graph is in its arguments)
	// and cpu scaling gets an HPA.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		u := getGraph(t, cl, name)
		spec := u.Object["spec"].(map[string]any)
		spec["timeout"], spec["scaleMetric"], spec["scaleTarget"] = int64(7), "cpu", int64(60)
		return cl.Update(ctx, u)
	})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, "router Deployment with timeout 7", func() (bool, error) {
		d := waitDeployment(t, cl, name)
		g := flagValues(d.Spec.Template.Spec.Containers[0].Args, "--graph-json")
		return len(g) == 1 && strings.Contains(g[0], `"timeout":7`), nil
	})
	hpa := &autoscalingv2.HorizontalPodAutoscaler{}
	poll(t, "HPA "+name, func() (bool, error) {
		err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, hpa)
		return err == nil, client.IgnoreNotFound(err)
	})
	if hpa.Spec.ScaleTargetRef.Name != name || *hpa.Spec.MinReplicas != 1 || hpa.Spec.MaxReplicas != 3 ||
		*hpa.Spec.Metrics[0].Resource.Target.AverageUtilization != 60 {
		t.Errorf("HPA spec = %+v, want %s scaled 1..3 at 60%% cpu", hpa.Spec, name)
	}
	checkGraphOwner(t, hpa.OwnerReferences, ig)
	waitGraph(t, cl, name, "no Autoscaled condition", func(st map[string]any) bool {
		return conditionField(st, operator.ConditionAutoscaled, "status") == ""
	})

	// A spec the api package rejects (the CRD's schema cannot) is reported.
	bad := loadYAML(t, `apiVersion: serving.kserve.io/v1alpha1
kind: InferenceGraph
metadata: {name: bad-split, namespace: default}
spec:
  nodes:
    root:
      routerType: Splitter
      steps:
      - {serviceName: sklearn-iris, weight: 30}
`)
	if err := cl.Create(ctx, bad); err != nil {
		t.Fatal(err)
	}
	st = waitGraph(t, cl, "bad-split", "Ready=False InvalidSpec", func(st map[string]any) bool {
		return conditionField(st, "Ready", "reason") == "InvalidSpec"
	})
	if msg := conditionField(st, "Ready", "message"); !strings.Contains(msg, "must sum to 100") {
		t.Errorf("message %q, want the api validation's", msg)
	}
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "bad-split"}, &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
		t.Errorf("invalid graph got a Deployment: %v", err)
	}

	// Routed through a Gateway: an HTTPRoute replaces the Ingress.
	stop()
	startOperator(t, cluster, func(c *operator.Config) { c.Gateway = "gateways/public" })
	route := &unstructured.Unstructured{}
	route.SetGroupVersionKind(operator.HTTPRouteGVK)
	poll(t, "HTTPRoute "+name, func() (bool, error) {
		err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, route)
		return err == nil, client.IgnoreNotFound(err)
	})
	hosts, _, _ := unstructured.NestedStringSlice(route.Object, "spec", "hostnames")
	rules, _, _ := unstructured.NestedSlice(route.Object, "spec", "rules")
	if len(hosts) != 1 || hosts[0] != name+"."+ns+"."+domain || len(rules) != 1 ||
		!strings.Contains(fmt.Sprint(rules[0]), "name:"+name) {
		t.Errorf("route hosts %q rules %v, want the graph's host to its Service", hosts, rules)
	}
	poll(t, "the graph's Ingress removed", func() (bool, error) {
		err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &networkingv1.Ingress{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})

	if err := cl.Delete(ctx, ig); err != nil {
		t.Fatal(err)
	}
	if !cluster.GC {
		t.Log("no garbage collector (kube-controller-manager not built): owner references checked, cascade not")
		return
	}
	poll(t, "router Deployment, Service, HPA and route deleted with their graph", func() (bool, error) {
		key := client.ObjectKey{Namespace: ns, Name: name}
		errD := cl.Get(ctx, key, &appsv1.Deployment{})
		errS := cl.Get(ctx, key, &corev1.Service{})
		errH := cl.Get(ctx, key, &autoscalingv2.HorizontalPodAutoscaler{})
		errR := cl.Get(ctx, key, route)
		return apierrors.IsNotFound(errD) && apierrors.IsNotFound(errS) && apierrors.IsNotFound(errH) && apierrors.IsNotFound(errR), nil
	})
}

func getGraph(t testing.TB, cl client.Client, name string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(operator.InferenceGraphGVK)
	if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		t.Fatal(err)
	}
	return u
}

func waitGraph(t testing.TB, cl client.Client, name, what string, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	var st map[string]any
	poll(t, name+": "+what, func() (bool, error) {
		st, _ = getGraph(t, cl, name).Object["status"].(map[string]any)
		return st != nil && ok(st), nil
	})
	return st
}

func checkGraphOwner(t *testing.T, refs []metav1.OwnerReference, owner *unstructured.Unstructured) {
	t.Helper()
	if len(refs) != 1 || refs[0].UID != owner.GetUID() || refs[0].Kind != "InferenceGraph" || refs[0].Controller == nil || !*refs[0].Controller {
		t.Errorf("owner references = %+v, want the InferenceGraph %s as controller", refs, owner.GetUID())
	}
}

// flagValues returns the values of every occurrence of flag in args.
func flagValues(args []string, flag string) []string {
	var out []string
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag {
			out = append(out, args[i+1])
		}
	}
	return out
}

// TestGeneratedGraphArgsServe runs the router container's generated
// arguments through ferry's own command line, the services' cluster URLs
// swapped for loopback predictors, and sends the sample's request through
// it: Sequence → nested Ensemble → a conditional step.
func TestGeneratedGraphArgsServe(t *testing.T) {
	doc, err := os.ReadFile("../api/testdata/graph-sequence.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := api.Load(doc)
	if err != nil {
		t.Fatal(err)
	}
	ig := objs[0].(*api.InferenceGraph)
	ig.Default()
	if err := ig.Validate(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	calls := map[string]int{}
	predictor := func(model string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			calls[model+" "+r.URL.Path]++
			mu.Unlock()
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"model":%q,"predictions":[1],"seen":%s}`, model, b)
		}))
		t.Cleanup(s.Close)
		return s
	}
	sk, xg := predictor("sklearn"), predictor("xgboost")
	urls := map[string]string{
		"sklearn-iris": "http://sklearn-iris-predictor.default.svc.cluster.local/v1/models/sklearn-iris:predict",
		"xgboost-iris": "http://xgboost-iris-predictor.default.svc.cluster.local/v2/models/xgboost-iris/infer",
	}
	d, err := operator.GraphDeployment(ig, urls, serveImage)
	if err != nil {
		t.Fatal(err)
	}
	c := d.Spec.Template.Spec.Containers[0]
	args := slices.Clone(c.Args)
	for i, a := range args {
		a = strings.Replace(a, "http://sklearn-iris-predictor.default.svc.cluster.local", sk.URL, 1)
		args[i] = strings.Replace(a, "http://xgboost-iris-predictor.default.svc.cluster.local", xg.URL, 1)
	}
	base := runArgs(t, args)
	waitReady(t, base, c.ReadinessProbe.HTTPGet.Path)

	resp, err := http.Post(base+"/", "application/json", strings.NewReader(`{"instances":[[6.8,2.8,4.8,1.4]]}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("graph: %d %s", resp.StatusCode, b)
	}
	// The Ensemble's merged answer ends the Sequence: the last step's
	// condition tests it and finds no predictions.
	var out map[string]map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("answer %s: %v", b, err)
	}
	if out["sklearn"]["model"] != "sklearn" || out["xgboost"]["model"] != "xgboost" {
		t.Errorf("answer %s, want the ensemble of both models", b)
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string]int{"sklearn /v1/models/sklearn-iris:predict": 2, "xgboost /v2/models/xgboost-iris/infer": 1}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Errorf("calls %v, want %v", calls, want)
	}
}
