package operator_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/operator"
	"github.com/ferryserve/ferry/internal/operator/kubetest"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// testGateway runs with an operator started with --gateway against an API
// server that has an HTTPRoute CRD (a stand-in with an open schema, from
// testdata): routes instead of an Ingress, a Service per revision, and a
// canary split weighted 10/90 by the gateway, then promoted.
func testGateway(t *testing.T, cluster *kubetest.Cluster, cl client.Client) {
	ctx := t.Context()

	isvc := loadYAML(t, `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: wine
  namespace: default
  annotations:
    serving.ferryserve.io/route-rules: "header:X-Group=beta=>latest; cookie:exp=old=>prev"
spec:
  predictor:
    lightgbm: {storageUri: "gs://bucket/wine/v1"}
  explainer:
    alibi: {type: KernelShap, storageUri: "gs://bucket/wine/explainer"}
`)
	if err := cl.Create(ctx, isvc); err != nil {
		t.Fatal(err)
	}
	r1, e1 := "wine-predictor-00001", "wine-explainer-00001"
	markAvailable(t, cl, r1)
	markAvailable(t, cl, e1)
	waitCondition(t, cl, "wine", "Ready", "True")
	for _, rev := range []string{r1, e1} {
		svc := waitService(t, cl, rev, rev)
		if ref := svc.OwnerReferences; len(ref) != 1 || ref[0].Kind != "Deployment" || ref[0].Name != rev {
			t.Errorf("revision Service %s owners = %+v, want its Deployment", rev, ref)
		}
	}
	// Tag rules ahead of the split: Knative's tag header, then the
	// annotation's rules; the cookie rule's tag (prev) has no revision
	// yet, so it is left out.
	const tagLatest, tagPrev, group, cookie = " Knative-Serving-Tag=latest", " Knative-Serving-Tag=prev", " X-Group=beta", ` Cookie~(^|;\s*)exp=old(;|$)`
	want := map[string]string{
		"wine.default.example.com Exact /v1/models/wine:explain": e1 + "=100",
		"wine.default.example.com Exact /v2/models/wine/explain": e1 + "=100",
		"wine.default.example.com PathPrefix /":                  r1 + "=100",
		"wine.default.example.com PathPrefix /" + tagLatest:      r1 + "=100",
		"wine.default.example.com PathPrefix /" + group:          r1 + "=100",
	}
	waitRoute(t, cl, "wine", want)
	waitRoute(t, cl, operator.TagRouteName("wine", "latest"), map[string]string{"latest-wine.default.example.com PathPrefix /": r1 + "=100"})

	// The gateway's verdict on the route is the service's IngressReady: a
	// route the Gateway refuses makes the service not Ready, with the
	// gateway's reason, until it is accepted.
	setRouteAccepted(t, cl, "wine", "False", "NotAllowedByListeners", "no listener for this hostname")
	st := waitStatus(t, cl, "wine", "IngressReady=False from the route", func(st map[string]any) bool {
		return conditionField(st, "IngressReady", "reason") == "NotAllowedByListeners" && conditionField(st, "Ready", "status") == "False"
	})
	if msg := conditionField(st, "IngressReady", "message"); !strings.Contains(msg, "gateways/public") || !strings.Contains(msg, "no listener for this hostname") {
		t.Errorf("IngressReady message %q does not name the Gateway and its message", msg)
	}
	setRouteAccepted(t, cl, "wine", "True", "Accepted", "")
	waitCondition(t, cl, "wine", "Ready", "True")
	checkOwner(t, getRoute(t, cl, "wine").GetOwnerReferences(), isvc)
	waitRoute(t, cl, "wine-predictor", map[string]string{"wine-predictor.default.example.com PathPrefix /": r1 + "=100"})
	waitRoute(t, cl, "wine-explainer", map[string]string{"wine-explainer.default.example.com PathPrefix /": e1 + "=100"})
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "wine"}, &networkingv1.Ingress{}); !apierrors.IsNotFound(err) {
		t.Errorf("Ingress with --gateway: %v, want none", err)
	}

	// A canary at 10 %: the gateway splits what a Service cannot.
	update(t, cl, "wine", func(u *unstructured.Unstructured) {
		pr := u.Object["spec"].(map[string]any)["predictor"].(map[string]any)
		pr["canaryTrafficPercent"] = int64(10)
		pr["lightgbm"].(map[string]any)["storageUri"] = "gs://bucket/wine/v2"
	})
	r2 := "wine-predictor-00002"
	markAvailable(t, cl, r2)
	want["wine.default.example.com PathPrefix /"] = r2 + "=10 " + r1 + "=90"
	want["wine.default.example.com PathPrefix /"+tagLatest] = r2 + "=100"
	want["wine.default.example.com PathPrefix /"+tagPrev] = r1 + "=100"
	want["wine.default.example.com PathPrefix /"+group] = r2 + "=100"
	want["wine.default.example.com PathPrefix /"+cookie] = r1 + "=100"
	waitRoute(t, cl, "wine", want)
	if got := routeOrder(getRoute(t, cl, "wine")); !slices.Equal(got, []string{"Exact /v1/models/wine:explain", "Exact /v2/models/wine/explain",
		"PathPrefix /" + tagLatest, "PathPrefix /" + tagPrev, "PathPrefix /" + group, "PathPrefix /" + cookie, "PathPrefix /"}) {
		t.Errorf("wine's rules in the order %q: the tag header first, then the annotation's rules, then the split", got)
	}
	waitRoute(t, cl, operator.TagRouteName("wine", "latest"), map[string]string{"latest-wine.default.example.com PathPrefix /": r2 + "=100"})
	waitRoute(t, cl, operator.TagRouteName("wine", "prev"), map[string]string{"prev-wine.default.example.com PathPrefix /": r1 + "=100"})
	waitRoute(t, cl, "wine-predictor", map[string]string{"wine-predictor.default.example.com PathPrefix /": r2 + "=10 " + r1 + "=90"})
	before := getRoute(t, cl, "wine").GetResourceVersion()

	// Promote: all traffic to revision 2.
	update(t, cl, "wine", func(u *unstructured.Unstructured) {
		delete(u.Object["spec"].(map[string]any)["predictor"].(map[string]any), "canaryTrafficPercent")
	})
	want["wine.default.example.com PathPrefix /"] = r2 + "=100"
	delete(want, "wine.default.example.com PathPrefix /"+tagPrev)
	delete(want, "wine.default.example.com PathPrefix /"+cookie)
	waitRoute(t, cl, "wine", want)
	poll(t, "prev tag route deleted", func() (bool, error) {
		r := &unstructured.Unstructured{}
		r.SetGroupVersionKind(operator.HTTPRouteGVK)
		err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: operator.TagRouteName("wine", "prev")}, r)
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
	if after := getRoute(t, cl, "wine").GetResourceVersion(); after == before {
		t.Error("route not rewritten on promotion")
	}

	// Without the explainer its route and paths go.
	update(t, cl, "wine", func(u *unstructured.Unstructured) {
		delete(u.Object["spec"].(map[string]any), "explainer")
	})
	waitRoute(t, cl, "wine", map[string]string{"wine.default.example.com PathPrefix /": r2 + "=100",
		"wine.default.example.com PathPrefix /" + tagLatest: r2 + "=100", "wine.default.example.com PathPrefix /" + group: r2 + "=100"})
	poll(t, "explainer route deleted", func() (bool, error) {
		r := &unstructured.Unstructured{}
		r.SetGroupVersionKind(operator.HTTPRouteGVK)
		err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "wine-explainer"}, r)
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
	// The first operator's Ingresses go: the routes replace them.
	poll(t, "income's Ingress deleted", func() (bool, error) {
		err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "income"}, &networkingv1.Ingress{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})

	// The services the first operator made are taken over, not made
	// again: the restarted operator gives income's revisions their
	// Services and creates no revision of its own.
	waitService(t, cl, "income-predictor-00001", "income-predictor-00001")
	var deps appsv1.DeploymentList
	if err := cl.List(ctx, &deps, client.InNamespace(ns), client.MatchingLabels{operator.LabelInferenceService: "income"}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range deps.Items {
		names = append(names, d.Name)
	}
	slices.Sort(names)
	if want := []string{"income-explainer-00001", "income-predictor-00001"}; !slices.Equal(names, want) {
		t.Errorf("income's revisions after the restart = %v, want %v", names, want)
	}

	if cluster.GC {
		poll(t, "revision Service of the explainer deleted with its Deployment", func() (bool, error) {
			err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: e1}, &corev1.Service{})
			return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
		})
	}
}

func getRoute(t *testing.T, cl client.Client, name string) *unstructured.Unstructured {
	t.Helper()
	r := &unstructured.Unstructured{}
	r.SetGroupVersionKind(operator.HTTPRouteGVK)
	if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, r); err != nil {
		t.Fatal(err)
	}
	return r
}

// routeRules maps "host type path" to its backends, "svc=weight ...",
// and checks the parent is the configured Gateway.
func routeRules(t *testing.T, r *unstructured.Unstructured) map[string]string {
	t.Helper()
	spec, _ := r.Object["spec"].(map[string]any)
	parents, _ := spec["parentRefs"].([]any)
	if len(parents) != 1 || parents[0].(map[string]any)["namespace"] != "gateways" || parents[0].(map[string]any)["name"] != "public" {
		t.Errorf("%s parentRefs = %v", r.GetName(), parents)
	}
	hosts, _ := spec["hostnames"].([]any)
	out := map[string]string{}
	rules, _ := spec["rules"].([]any)
	for _, h := range hosts {
		for _, rule := range rules {
			rm := rule.(map[string]any)
			s := ""
			refs, _ := rm["backendRefs"].([]any)
			for i, b := range refs {
				bm := b.(map[string]any)
				if i > 0 {
					s += " "
				}
				s += fmt.Sprintf("%v=%v", bm["name"], bm["weight"])
			}
			out[fmt.Sprintf("%v %s", h, matchKey(rm))] = s
		}
	}
	return out
}

// matchKey is "type path" of a rule's first match, with " Name=value"
// for each exact header match and " Name~regexp" for a regular
// expression.
func matchKey(rule map[string]any) string {
	m := rule["matches"].([]any)[0].(map[string]any)
	path := m["path"].(map[string]any)
	k := fmt.Sprintf("%v %v", path["type"], path["value"])
	hs, _ := m["headers"].([]any)
	for _, h := range hs {
		hm := h.(map[string]any)
		op := "="
		if hm["type"] == "RegularExpression" {
			op = "~"
		}
		k += fmt.Sprintf(" %v%s%v", hm["name"], op, hm["value"])
	}
	return k
}

// routeOrder lists a route's rules by matchKey, in order.
func routeOrder(r *unstructured.Unstructured) []string {
	var out []string
	rules, _ := r.Object["spec"].(map[string]any)["rules"].([]any)
	for _, rule := range rules {
		out = append(out, matchKey(rule.(map[string]any)))
	}
	return out
}

func waitRoute(t *testing.T, cl client.Client, name string, want map[string]string) {
	t.Helper()
	var got map[string]string
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("route %s: %v", name, got)
		}
	})
	poll(t, "HTTPRoute "+name, func() (bool, error) {
		r := &unstructured.Unstructured{}
		r.SetGroupVersionKind(operator.HTTPRouteGVK)
		err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, r)
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		got = routeRules(t, r)
		return maps.Equal(got, want), nil
	})
}

// setRouteAccepted writes, as a gateway controller would, the route's
// status for the gateways/public parent: Accepted with status and reason.
func setRouteAccepted(t *testing.T, cl client.Client, name, status, reason, msg string) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		r := getRoute(t, cl, name)
		parent := map[string]any{
			"parentRef":      map[string]any{"group": operator.HTTPRouteGVK.Group, "kind": "Gateway", "namespace": "gateways", "name": "public"},
			"controllerName": "example.com/gateway-controller",
			"conditions": []any{map[string]any{"type": "Accepted", "status": status, "reason": reason, "message": msg,
				"lastTransitionTime": time.Now().UTC().Format(time.RFC3339), "observedGeneration": r.GetGeneration()}},
		}
		if err := unstructured.SetNestedSlice(r.Object, []any{parent}, "status", "parents"); err != nil {
			return err
		}
		return cl.Status().Update(t.Context(), r)
	})
	if err != nil {
		t.Fatal(err)
	}
}
