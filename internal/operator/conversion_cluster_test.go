package operator_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/operator"
	"github.com/ferryserve/ferry/internal/operator/kubetest"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

var (
	kubeflowV1alpha2 = schema.GroupVersionKind{Group: api.GroupKubeflow, Version: api.VersionV1alpha2, Kind: api.KindInferenceService}
	crdGVK           = schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}
)

// patchConversionCRD merge-patches the clientConfig of the conversion
// webhook of serving.kubeflow.org's InferenceService CRD.
func patchConversionCRD(t testing.TB, cl client.Client, clientConfig string) {
	t.Helper()
	crd := &unstructured.Unstructured{}
	crd.SetGroupVersionKind(crdGVK)
	crd.SetName(operator.ConversionCRD)
	patch := `{"spec":{"conversion":{"webhook":{"clientConfig":` + clientConfig + `}}}}`
	if err := cl.Patch(t.Context(), crd, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		t.Fatal(err)
	}
}

// conversionClientConfig reads the CRD's conversion clientConfig.
func conversionClientConfig(t testing.TB, cl client.Client) map[string]any {
	t.Helper()
	crd := &unstructured.Unstructured{}
	crd.SetGroupVersionKind(crdGVK)
	if err := cl.Get(t.Context(), client.ObjectKey{Name: operator.ConversionCRD}, crd); err != nil {
		t.Fatal(err)
	}
	cc, _, _ := unstructured.NestedMap(crd.Object, "spec", "conversion", "webhook", "clientConfig")
	return cc
}

func hasCA(cc map[string]any) bool {
	s, _ := cc["caBundle"].(string)
	b, err := base64.StdEncoding.DecodeString(s)
	return err == nil && bytes.Contains(b, []byte("BEGIN CERTIFICATE"))
}

// serveConversionOnLoopback points the conversion webhook at port on
// 127.0.0.1 (the API server cannot reach a Service here) and returns the
// operator configuration that serves it there; waitConversionCA waits
// for the operator to publish its CA in the CRD.
func serveConversionOnLoopback(t *testing.T, cl client.Client) func(*operator.Config) {
	t.Helper()
	port := freePort(t)
	patchConversionCRD(t, cl, `{"url":"https://127.0.0.1:`+strconv.Itoa(port)+operator.WebhookPathConvert+`","service":null}`)
	return func(c *operator.Config) {
		c.Webhook = operator.WebhookConfig{Port: port, Host: "127.0.0.1", IPs: []net.IP{net.IPv4(127, 0, 0, 1)},
			ConversionCRDs: []string{operator.ConversionCRD}, SwitchGrace: -1}
	}
}

func waitConversionCA(t testing.TB, cl client.Client) {
	t.Helper()
	poll(t, "the conversion webhook's caBundle", func() (bool, error) {
		return hasCA(conversionClientConfig(t, cl)), nil
	})
}

// createRetrying creates u, again while the API server cannot call a
// webhook yet (its certificate or CA not yet in place).
func createRetrying(t testing.TB, cl client.Client, u *unstructured.Unstructured) {
	t.Helper()
	var err error
	poll(t, "create "+u.GetName(), func() (bool, error) {
		err = cl.Create(t.Context(), u.DeepCopy())
		if err == nil {
			return true, nil
		}
		if strings.Contains(err.Error(), "x509") || strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "tls") {
			return false, nil
		}
		return false, err
	})
}

func getAt(t testing.TB, cl client.Client, gvk schema.GroupVersionKind, name string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		t.Fatal(err)
	}
	return u
}

// updateAt changes the object read at gvk and writes it back at gvk, as
// `kubectl edit` of that version does, again on a conflict.
func updateAt(t testing.TB, cl client.Client, gvk schema.GroupVersionKind, name string, change func(u *unstructured.Unstructured)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		u := getAt(t, cl, gvk, name)
		change(u)
		return cl.Update(t.Context(), u)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// subset reports where got lacks or differs from a value of want (JSON
// trees; lists compared whole): "" when want ⊆ got.
func subset(path string, want, got any) string {
	wm, ok := want.(map[string]any)
	if !ok {
		// Numbers decode as float64 from YAML, int64 from the API server.
		w, _ := json.Marshal(want)
		g, _ := json.Marshal(got)
		if !bytes.Equal(w, g) {
			return fmt.Sprintf("%s = %v, want %v", path, got, want)
		}
		return ""
	}
	gm, ok := got.(map[string]any)
	if !ok {
		return fmt.Sprintf("%s = %v, want an object", path, got)
	}
	for k, v := range wm {
		if d := subset(path+"."+k, v, gm[k]); d != "" {
			return d
		}
	}
	return ""
}

// TestConversionThroughAPIServer installs config/'s RBAC and runs the
// operator as its service account with the conversion webhook: the
// operator points serving.kubeflow.org's InferenceService CRD at its own
// Service (the chart's CRD names ferry-system whatever the namespace) and
// publishes its CA there, with get and patch on that CRD alone. Then a
// KFServing v1alpha2 InferenceService is created, read at both versions,
// reconciled like a v1beta1 one, rolled out as a v1alpha2 canary and
// promoted; bad v1alpha2 input gets the conversion's or validation's
// message; a v1beta1 spec v1alpha2 cannot express survives an edit at
// v1alpha2.
func TestConversionThroughAPIServer(t *testing.T) {
	cluster := kubetest.Start(t, kubetest.Options{CRDDirs: []string{"../../config/crd"}})
	admin := newClient(t, cluster)
	ctx := t.Context()

	// config/default but the CRDs (installed) and the Deployment (no
	// kubelet), with the admission webhooks at a loopback URL.
	port := freePort(t)
	for _, m := range kustomizeBuild(t, "../../config/default", map[string]bool{}) {
		switch m.kind() {
		case "CustomResourceDefinition", "Deployment":
			continue
		case "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration":
			for _, h := range m.obj["webhooks"].([]any) {
				cc := h.(map[string]any)["clientConfig"].(map[string]any)
				path := cc["service"].(map[string]any)["path"].(string)
				h.(map[string]any)["clientConfig"] = map[string]any{"url": "https://127.0.0.1:" + strconv.Itoa(port) + path}
			}
		}
		if err := admin.Create(ctx, &unstructured.Unstructured{Object: m.obj}); err != nil {
			t.Fatalf("%s: %s: %v", m.file, m.key(), err)
		}
	}
	// As the chart installs the CRD into a release in another namespace.
	patchConversionCRD(t, admin, `{"service":{"namespace":"elsewhere"}}`)

	forbidden := &forbiddenLog{}
	sa := rest.CopyConfig(cluster.Config)
	sa.Impersonate = rest.ImpersonationConfig{UserName: operatorUser}
	sa.WrapTransport = forbidden.wrap
	startOperator(t, cluster, func(c *operator.Config) {
		c.REST = sa
		c.LeaderElectionNamespace = installNS
		c.Webhook = operator.WebhookConfig{Port: port, Host: "127.0.0.1", IPs: []net.IP{net.IPv4(127, 0, 0, 1)},
			Service:        installNS + "/" + operator.DefaultWebhookServiceName,
			Configurations: []string{"ferry-mutating-webhook", "ferry-validating-webhook"},
			ConversionCRDs: []string{operator.ConversionCRD}, SwitchGrace: -1}
	})
	poll(t, "the CRD calling the operator's Service, with its CA", func() (bool, error) {
		cc := conversionClientConfig(t, admin)
		svc, _ := cc["service"].(map[string]any)
		return hasCA(cc) && svc["namespace"] == installNS && svc["name"] == operator.DefaultWebhookServiceName && svc["path"] == operator.WebhookPathConvert, nil
	})
	// The API server cannot reach the Service here: the same webhook at
	// its loopback address, the CA kept.
	patchConversionCRD(t, admin, `{"url":"https://127.0.0.1:`+strconv.Itoa(port)+operator.WebhookPathConvert+`","service":null}`)

	written := loadYAML(t, `apiVersion: serving.kubeflow.org/v1alpha2
kind: InferenceService
metadata:
  name: iris
  namespace: default
  annotations: {owner: team-a}
spec:
  default:
    predictor:
      minReplicas: 1
      parallelism: 8
      logger: {url: "http://message-dumper.default/", mode: request}
      sklearn:
        storageUri: gs://kfserving-samples/models/sklearn/iris
        resources:
          requests: {cpu: 100m, memory: 1Gi}
          limits: {cpu: "1", memory: 1Gi}
`)
	createRetrying(t, admin, written)

	// Stored at v1beta1, defaulted by the mutating webhook at v1beta1
	// (matchPolicy Equivalent).
	stored := getAt(t, admin, kubeflowISVC, "iris")
	for _, f := range []struct {
		path []string
		want any
	}{
		{[]string{"spec", "predictor", "sklearn", "storageUri"}, "gs://kfserving-samples/models/sklearn/iris"},
		{[]string{"spec", "predictor", "sklearn", "protocolVersion"}, "v1"},
		{[]string{"spec", "predictor", "containerConcurrency"}, int64(8)},
		{[]string{"spec", "predictor", "logger", "mode"}, "request"},
		{[]string{"metadata", "annotations", api.AnnotationConvertedFrom}, "serving.kubeflow.org/v1alpha2"},
		{[]string{"metadata", "annotations", "owner"}, "team-a"},
	} {
		if got, _, _ := unstructured.NestedFieldNoCopy(stored.Object, f.path...); got != f.want {
			t.Errorf("v1beta1 %s = %v, want %v", strings.Join(f.path, "."), got, f.want)
		}
	}
	// Read at v1alpha2: what was written, plus the defaults.
	read := getAt(t, admin, kubeflowV1alpha2, "iris")
	if d := subset("spec", written.Object["spec"], read.Object["spec"]); d != "" {
		t.Errorf("read back at v1alpha2: %s", d)
	}
	if read.GetAnnotations()["owner"] != "team-a" || read.GetUID() != stored.GetUID() || read.GetResourceVersion() != stored.GetResourceVersion() {
		t.Errorf("v1alpha2 metadata = %v, uid %s rv %s; want the stored object's", read.GetAnnotations(), read.GetUID(), read.GetResourceVersion())
	}
	if _, ok := read.GetAnnotations()[api.AnnotationConvertedFrom]; ok {
		t.Errorf("the v1alpha2 view shows %s", api.AnnotationConvertedFrom)
	}

	// Reconciled as a v1beta1 one: a revision owned by the stored object.
	d := waitDeployment(t, admin, "iris-predictor-00001")
	if ref := d.OwnerReferences; len(ref) != 1 || ref[0].APIVersion != "serving.kubeflow.org/v1beta1" || ref[0].UID != stored.GetUID() {
		t.Errorf("owner references = %+v", ref)
	}
	markAvailable(t, admin, "iris-predictor-00001")
	poll(t, "iris Ready", func() (bool, error) { return conditionStatus(getKF(t, admin, "iris"), "Ready") == "True", nil })
	st, _ := getAt(t, admin, kubeflowV1alpha2, "iris").Object["status"].(map[string]any)
	if def, _ := st["default"].(map[string]any); st["traffic"] != int64(100) || conditionStatus(st, "Ready") != "True" ||
		def["predictor"].(map[string]any)["name"] != "iris-predictor-00001" {
		t.Errorf("v1alpha2 status = %v", st)
	}

	// A canary endpoint written at v1alpha2: the rolled-out revision keeps
	// 90 %, the canary's gets 10 %, and both versions say so.
	updateAt(t, admin, kubeflowV1alpha2, "iris", func(u *unstructured.Unstructured) {
		u.Object["spec"].(map[string]any)["canary"] = map[string]any{"predictor": map[string]any{
			"sklearn": map[string]any{"storageUri": "gs://kfserving-samples/models/sklearn/iris-v2"}}}
		u.Object["spec"].(map[string]any)["canaryTrafficPercent"] = int64(10)
	})
	if got := getKF(t, admin, "iris"); got == nil || component(got, "predictor") == nil {
		t.Errorf("status after an update at v1alpha2 = %v, want the v1beta1 status kept", got)
	}
	markAvailable(t, admin, "iris-predictor-00002")
	poll(t, "iris 90/10", func() (bool, error) {
		tr := traffic(getKF(t, admin, "iris"))
		return tr["iris-predictor-00001"] == 90 && tr["iris-predictor-00002"] == 10, nil
	})
	canary := getAt(t, admin, kubeflowV1alpha2, "iris")
	st, _ = canary.Object["status"].(map[string]any)
	if st["traffic"] != int64(90) || st["canaryTraffic"] != int64(10) {
		t.Errorf("v1alpha2 status traffic %v canaryTraffic %v, want 90 and 10", st["traffic"], st["canaryTraffic"])
	}
	spec := canary.Object["spec"].(map[string]any)
	if uri, _, _ := unstructured.NestedString(spec, "canary", "predictor", "sklearn", "storageUri"); uri != "gs://kfserving-samples/models/sklearn/iris-v2" || spec["canaryTrafficPercent"] != int64(10) {
		t.Errorf("v1alpha2 spec after the canary = %v", spec)
	}
	if d := subset("spec.default", written.Object["spec"].(map[string]any)["default"], spec["default"]); d != "" {
		t.Errorf("default endpoint after the canary: %s", d)
	}

	// KFServing's promotion: the canary becomes the default endpoint.
	updateAt(t, admin, kubeflowV1alpha2, "iris", func(u *unstructured.Unstructured) {
		spec := u.Object["spec"].(map[string]any)
		spec["default"] = spec["canary"]
		delete(spec, "canary")
		delete(spec, "canaryTrafficPercent")
	})
	poll(t, "iris promoted", func() (bool, error) {
		tr := traffic(getKF(t, admin, "iris"))
		return len(tr) == 1 && tr["iris-predictor-00002"] == 100, nil
	})
	if err := admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: "iris-predictor-00003"}, d); !apierrors.IsNotFound(err) {
		t.Errorf("promotion made a third revision: %v", err)
	}

	// Bad v1alpha2 input: the conversion's message, or ferry apply's.
	for _, tc := range []struct{ doc, want string }{
		{`{apiVersion: serving.kubeflow.org/v1alpha2, kind: InferenceService, metadata: {name: two, namespace: default},
  spec: {default: {predictor: {sklearn: {storageUri: gs://a}, xgboost: {storageUri: gs://b}}}}}`,
			"spec.default.predictor: exactly one of custom, tensorflow"},
		{`{apiVersion: serving.kubeflow.org/v1alpha2, kind: InferenceService, metadata: {name: share, namespace: default},
  spec: {canaryTrafficPercent: 150, default: {predictor: {sklearn: {storageUri: gs://a}}}, canary: {predictor: {sklearn: {storageUri: gs://b}}}}}`,
			"spec.canaryTrafficPercent"},
	} {
		err := admin.Create(ctx, loadYAML(t, tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("create of a bad v1alpha2 object: %v, want %q", err, tc.want)
		}
	}

	// A v1beta1 spec v1alpha2 cannot show, edited at v1alpha2.
	createRetrying(t, admin, loadYAML(t, `apiVersion: serving.kubeflow.org/v1beta1
kind: InferenceService
metadata: {name: generic, namespace: default}
spec:
  predictor:
    nodeSelector: {pool: cpu}
    model:
      modelFormat: {name: sklearn}
      protocolVersion: v2
      storageUri: gs://bucket/generic
`))
	updateAt(t, admin, kubeflowV1alpha2, "generic", func(u *unstructured.Unstructured) {
		if err := unstructured.SetNestedField(u.Object, int64(3), "spec", "default", "predictor", "maxReplicas"); err != nil {
			t.Fatal(err)
		}
	})
	g := getAt(t, admin, kubeflowISVC, "generic")
	pred := g.Object["spec"].(map[string]any)["predictor"].(map[string]any)
	if m, _ := pred["model"].(map[string]any); m["storageUri"] != "gs://bucket/generic" || m["protocolVersion"] != "v2" ||
		pred["maxReplicas"] != int64(3) || pred["nodeSelector"].(map[string]any)["pool"] != "cpu" {
		t.Errorf("v1beta1 predictor after an edit at v1alpha2 = %v", pred)
	}

	// Lists convert every object.
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(kubeflowV1alpha2.GroupVersion().WithKind("InferenceServiceList"))
	if err := admin.List(ctx, list, client.InNamespace(ns)); err != nil || len(list.Items) != 2 {
		t.Errorf("list at v1alpha2: %d items, %v", len(list.Items), err)
	}
	// The webhook configurations' names are granted as the kind each is:
	// the operator asks for the other kind once, then no more.
	probes := []string{
		"GET /apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/ferry-mutating-webhook",
		"GET /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/ferry-validating-webhook",
	}
	if got := forbidden.all(); !slices.Equal(got, probes) {
		t.Errorf("the operator with the conversion webhook was refused %q, want only the first pass's probes %q", got, probes)
	}
	checkAccess(t, admin)
}
