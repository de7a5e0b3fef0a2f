package operator_test

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ferryserve/ferry/internal/operator"
	"github.com/ferryserve/ferry/internal/operator/kubetest"
	authzv1 "k8s.io/api/authorization/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	coordinationv1 "k8s.io/api/coordination/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// operatorUser is the service account config/rbac binds its roles to.
const operatorUser = "system:serviceaccount:" + installNS + ":ferry-operator"

// TestInstall applies config/default to a real API server (RBAC on) and
// runs the operator as its service account, so that a verb, resource or
// group missing from config/rbac fails here: KServe's sklearn sample with
// an HPA and an Ingress, a multi-model server with a TrainedModel, then
// Gateway API routes, all reaching Ready with not one request answered 403
// Forbidden. Then, to show the test can fail, it takes deployments' create
// away from the ClusterRole and sees the next InferenceService fail with
// "forbidden". Subject access reviews check what the roles must not allow.
func TestInstall(t *testing.T) {
	cluster := kubetest.Start(t, kubetest.Options{CRDDirs: []string{"../../config/crd", "testdata/gateway-api"}})
	admin := newClient(t, cluster)
	ctx := t.Context()

	for _, m := range kustomizeBuild(t, "../../config/default", map[string]bool{}) {
		u := &unstructured.Unstructured{Object: m.obj}
		var opts []client.CreateOption
		switch m.kind() {
		case "CustomResourceDefinition":
			continue // the same files, installed by kubetest before the garbage collector starts
		case "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration":
			// Checked by the API server but not kept: nothing serves the
			// webhooks here, and with failurePolicy Fail they would
			// refuse every InferenceService.
			opts = append(opts, client.DryRunAll)
		}
		if err := admin.Create(ctx, u, opts...); err != nil {
			t.Fatalf("%s: %s: %v", m.file, m.key(), err)
		}
	}

	forbidden := &forbiddenLog{}
	sa := rest.CopyConfig(cluster.Config)
	sa.Impersonate = rest.ImpersonationConfig{UserName: operatorUser}
	sa.WrapTransport = forbidden.wrap
	stop := startOperator(t, cluster, func(c *operator.Config) {
		c.REST = sa
		c.LeaderElectionNamespace = installNS
	})

	// KServe's sample, scaled by an HPA, behind an Ingress.
	isvc := loadSample(t, "../api/testdata/kserve-samples/v0.15.2__storage__uri__sklearn.yaml")
	isvc.SetNamespace(ns)
	pred := isvc.Object["spec"].(map[string]any)["predictor"].(map[string]any)
	pred["minReplicas"], pred["maxReplicas"] = int64(1), int64(3)
	if err := admin.Create(ctx, isvc); err != nil {
		t.Fatal(err)
	}
	name := isvc.GetName()
	markAvailable(t, admin, name+"-predictor-00001")
	waitCondition(t, admin, name, "Ready", "True")
	if err := admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: name + "-predictor-00001"}, &autoscalingv2.HorizontalPodAutoscaler{}); err != nil {
		t.Errorf("HPA: %v", err)
	}
	if err := admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &networkingv1.Ingress{}); err != nil {
		t.Errorf("Ingress: %v", err)
	}

	// A multi-model server and a TrainedModel: the model-config ConfigMap
	// and the TrainedModel's status.
	mms := loadYAML(t, `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: mms, namespace: default}
spec:
  predictor:
    sklearn: {}
`)
	if err := admin.Create(ctx, mms); err != nil {
		t.Fatal(err)
	}
	if err := admin.Create(ctx, trainedModel(t, "m1", "mms", "128Mi")); err != nil {
		t.Fatal(err)
	}
	markAvailable(t, admin, "mms-predictor-00001")
	waitModelConfig(t, admin, "mms", "m1")
	waitTM(t, admin, "m1", "Ready=True", func(st map[string]any) bool { return conditionStatus(st, "Ready") == "True" })

	lease := &coordinationv1.Lease{}
	if err := admin.Get(ctx, client.ObjectKey{Namespace: installNS, Name: operator.LeaderElectionID}, lease); err != nil {
		t.Errorf("leader election lease: %v", err)
	} else if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		t.Errorf("lease %s has no holder", lease.Name)
	}
	forbidden.check(t, "the operator with Ingresses")

	// The same service account routing with the Gateway API: the first
	// service's Ingress is replaced by HTTPRoutes, a new one gets its own.
	stop()
	startOperator(t, cluster, func(c *operator.Config) {
		c.REST = sa
		c.LeaderElectionNamespace = installNS
		c.Gateway = "gateways/public"
	})
	routed := loadYAML(t, `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: routed, namespace: default}
spec:
  predictor:
    sklearn: {storageUri: "gs://bucket/routed"}
`)
	if err := admin.Create(ctx, routed); err != nil {
		t.Fatal(err)
	}
	markAvailable(t, admin, "routed-predictor-00001")
	waitCondition(t, admin, "routed", "Ready", "True")
	route := &unstructured.Unstructured{}
	route.SetGroupVersionKind(operator.HTTPRouteGVK)
	poll(t, "HTTPRoute routed", func() (bool, error) {
		return admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: "routed"}, route) == nil, nil
	})
	forbidden.check(t, "the operator with the Gateway API")

	checkAccess(t, admin)

	// Without deployments' create the next service cannot run, and says why.
	role := &rbacv1.ClusterRole{}
	if err := admin.Get(ctx, client.ObjectKey{Name: "ferry-operator"}, role); err != nil {
		t.Fatal(err)
	}
	removed := false
	for i, r := range role.Rules {
		if slices.Contains(r.Resources, "deployments") {
			role.Rules[i].Verbs = slices.DeleteFunc(r.Verbs, func(v string) bool { return v == "create" })
			removed = true
		}
	}
	if !removed {
		t.Fatal("the ClusterRole has no deployments rule")
	}
	if err := admin.Update(ctx, role); err != nil {
		t.Fatal(err)
	}
	denied := loadYAML(t, `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: denied, namespace: default}
spec:
  predictor:
    sklearn: {storageUri: "gs://bucket/denied"}
`)
	if err := admin.Create(ctx, denied); err != nil {
		t.Fatal(err)
	}
	st := waitStatus(t, admin, "denied", "Ready=False, forbidden", func(st map[string]any) bool {
		return conditionStatus(st, "Ready") == "False" && strings.Contains(conditionField(st, "Ready", "message"), "forbidden")
	})
	if r := conditionField(st, "Ready", "reason"); r != "ReconcileFailed" {
		t.Errorf("reason = %q, want ReconcileFailed", r)
	}
	if got := forbidden.all(); !slices.Contains(got, "POST /apis/apps/v1/namespaces/default/deployments") {
		t.Errorf("forbidden requests = %q, want the Deployment's create", got)
	}
}

// checkAccess asks the API server's authorizer what the operator's service
// account may do: what it needs, and a few neighbouring things it must not.
func checkAccess(t *testing.T, admin client.Client) {
	t.Helper()
	cases := []struct {
		attr authzv1.ResourceAttributes
		want bool
	}{
		{authzv1.ResourceAttributes{Namespace: installNS, Verb: "create", Resource: "secrets"}, true},
		{authzv1.ResourceAttributes{Namespace: installNS, Verb: "update", Resource: "secrets", Name: "ferry-webhook-cert"}, true},
		{authzv1.ResourceAttributes{Namespace: ns, Verb: "get", Resource: "secrets", Name: "storage-config"}, true},
		{authzv1.ResourceAttributes{Verb: "patch", Group: "admissionregistration.k8s.io", Resource: "validatingwebhookconfigurations", Name: "ferry-validating-webhook"}, true},
		{authzv1.ResourceAttributes{Verb: "update", Group: "admissionregistration.k8s.io", Resource: "mutatingwebhookconfigurations", Name: "ferry-mutating-webhook"}, true},
		{authzv1.ResourceAttributes{Verb: "patch", Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions", Name: operator.ConversionCRD}, true},
		{authzv1.ResourceAttributes{Namespace: ns, Verb: "create", Group: "serving.knative.dev", Resource: "services"}, true},
		{authzv1.ResourceAttributes{Namespace: ns, Verb: "watch", Group: "serving.knative.dev", Resource: "revisions"}, true},
		{authzv1.ResourceAttributes{Namespace: ns, Verb: "create", Group: "events.k8s.io", Resource: "events"}, true},

		{authzv1.ResourceAttributes{Namespace: ns, Verb: "create", Resource: "secrets"}, false},
		{authzv1.ResourceAttributes{Namespace: ns, Verb: "list", Resource: "secrets"}, false},
		{authzv1.ResourceAttributes{Namespace: ns, Verb: "watch", Resource: "secrets"}, false},
		{authzv1.ResourceAttributes{Namespace: installNS, Verb: "update", Resource: "secrets", Name: "someone-elses"}, false},
		{authzv1.ResourceAttributes{Namespace: installNS, Verb: "delete", Resource: "secrets", Name: "ferry-webhook-cert"}, false},
		{authzv1.ResourceAttributes{Verb: "patch", Group: "admissionregistration.k8s.io", Resource: "validatingwebhookconfigurations", Name: "someone-elses"}, false},
		{authzv1.ResourceAttributes{Verb: "create", Group: "admissionregistration.k8s.io", Resource: "mutatingwebhookconfigurations"}, false},
		{authzv1.ResourceAttributes{Verb: "patch", Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions", Name: "inferenceservices.serving.kserve.io"}, false},
		{authzv1.ResourceAttributes{Verb: "update", Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions", Name: operator.ConversionCRD}, false},
		{authzv1.ResourceAttributes{Verb: "list", Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions"}, false},
		{authzv1.ResourceAttributes{Namespace: ns, Verb: "update", Group: "coordination.k8s.io", Resource: "leases"}, false},
		{authzv1.ResourceAttributes{Namespace: ns, Verb: "delete", Group: "serving.kserve.io", Resource: "inferenceservices"}, false},
		{authzv1.ResourceAttributes{Namespace: ns, Verb: "update", Group: "serving.knative.dev", Resource: "routes"}, false},
		{authzv1.ResourceAttributes{Namespace: ns, Verb: "create", Resource: "pods"}, false},
		{authzv1.ResourceAttributes{Namespace: ns, Verb: "update", Resource: "serviceaccounts"}, false},
		{authzv1.ResourceAttributes{Verb: "update", Group: "rbac.authorization.k8s.io", Resource: "clusterroles", Name: "ferry-operator"}, false},
		{authzv1.ResourceAttributes{Verb: "list", Resource: "nodes"}, false},
	}
	for _, c := range cases {
		sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
			User:               operatorUser,
			Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + installNS, "system:authenticated"},
			ResourceAttributes: &c.attr,
		}}
		if err := admin.Create(t.Context(), sar); err != nil {
			t.Fatal(err)
		}
		if sar.Status.Allowed != c.want {
			t.Errorf("%s %s/%s %q in %q: allowed %v, want %v (%s)", c.attr.Verb, c.attr.Group, c.attr.Resource, c.attr.Name, c.attr.Namespace,
				sar.Status.Allowed, c.want, sar.Status.Reason)
		}
	}
}

// forbiddenLog records the requests the API server answered with 403
// (roundTripper is bench_test.go's).
type forbiddenLog struct {
	mu   sync.Mutex
	reqs []string
}

func (f *forbiddenLog) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(r)
		if err == nil && resp.StatusCode == http.StatusForbidden {
			f.mu.Lock()
			f.reqs = append(f.reqs, r.Method+" "+r.URL.Path)
			f.mu.Unlock()
		}
		return resp, err
	})
}

func (f *forbiddenLog) all() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

func (f *forbiddenLog) check(t *testing.T, what string) {
	t.Helper()
	if got := f.all(); len(got) > 0 {
		t.Errorf("%s was refused %d requests: %q", what, len(got), got)
	}
}
