package operator_test

import (
	"bytes"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/operator"
	"github.com/ferryserve/ferry/internal/operator/kubetest"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestWebhooksThroughAPIServer registers the webhooks with a real API
// server (at a loopback URL instead of the install manifests' Service) and
// runs the operator with them: the operator fills both configurations'
// caBundle with the CA of the certificate it made, after which a create
// through the API server (what `kubectl apply` sends) of a spec that
// `ferry apply` refuses fails with ferry apply's message, and a valid one
// is stored with KServe's defaults filled in.
func TestWebhooksThroughAPIServer(t *testing.T) {
	cluster := kubetest.Start(t, kubetest.Options{CRDDirs: []string{"../../config/crd"}})
	cl := newClient(t, cluster)
	ctx := t.Context()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	const validating, mutating = "ferry-validating-test", "ferry-mutating-test"
	v, m := operator.WebhookConfigurations(validating, mutating, func(path string) admissionregistrationv1.WebhookClientConfig {
		url := "https://127.0.0.1:" + strconv.Itoa(port) + path
		return admissionregistrationv1.WebhookClientConfig{URL: &url}
	})
	for _, o := range []client.Object{v, m} {
		if err := cl.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	startOperator(t, cluster, func(c *operator.Config) {
		c.Webhook = operator.WebhookConfig{Port: port, Host: "127.0.0.1", IPs: []net.IP{net.IPv4(127, 0, 0, 1)},
			Configurations: []string{validating, mutating}, SwitchGrace: -1}
	})

	// The operator publishes its CA in every webhook of both.
	poll(t, "caBundle in both configurations", func() (bool, error) {
		var vv admissionregistrationv1.ValidatingWebhookConfiguration
		var mm admissionregistrationv1.MutatingWebhookConfiguration
		if err := cl.Get(ctx, client.ObjectKey{Name: validating}, &vv); err != nil {
			return false, err
		}
		if err := cl.Get(ctx, client.ObjectKey{Name: mutating}, &mm); err != nil {
			return false, err
		}
		var bundles [][]byte
		for _, w := range vv.Webhooks {
			bundles = append(bundles, w.ClientConfig.CABundle)
		}
		for _, w := range mm.Webhooks {
			bundles = append(bundles, w.ClientConfig.CABundle)
		}
		for _, b := range bundles {
			if !bytes.Contains(b, []byte("BEGIN CERTIFICATE")) {
				return false, nil
			}
		}
		return len(bundles) == 5, nil
	})

	// A spec the CRD's schema accepts and ferry apply refuses.
	bad := `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: too-much-canary
  namespace: ` + ns + `
spec:
  predictor:
    canaryTrafficPercent: 150
    sklearn:
      storageUri: gs://bucket/iris
`
	_, applyErr := api.Load([]byte(bad))
	if applyErr == nil {
		t.Fatal("api accepts canaryTrafficPercent 150; pick another invalid spec")
	}
	_, want, _ := strings.Cut(applyErr.Error(), "): ")
	// The API server may be called before the webhook server has its
	// certificate: a TLS error is retried, a denial is the answer.
	var createErr error
	poll(t, "the validating webhook's denial", func() (bool, error) {
		createErr = cl.Create(ctx, loadYAML(t, bad))
		if createErr == nil {
			t.Fatal("the API server stored an InferenceService with canaryTrafficPercent 150")
		}
		return strings.Contains(createErr.Error(), "denied the request"), nil
	})
	if !strings.Contains(createErr.Error(), want) {
		t.Errorf("create error\n%v\ndoes not carry ferry apply's message\n%s", createErr, want)
	}

	// A graph `ferry apply` refuses is refused with its message too.
	badGraph := `{apiVersion: serving.kserve.io/v1alpha1, kind: InferenceGraph, metadata: {name: short-split, namespace: ` + ns + `},
  spec: {nodes: {root: {routerType: Splitter, steps: [{serviceName: a, weight: 30}]}}}}`
	if err := cl.Create(ctx, loadYAML(t, badGraph)); err == nil || !strings.Contains(err.Error(), "denied the request") ||
		!strings.Contains(err.Error(), "spec.nodes.root.steps: the weights of a Splitter node must sum to 100, got 30") {
		t.Errorf("create of an invalid InferenceGraph: %v, want ferry apply's denial", err)
	}

	// A valid spec is stored defaulted, as KServe's webhook defaults it.
	good := `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: defaulted
  namespace: ` + ns + `
spec:
  predictor:
    logger:
      url: http://message-dumper.default/
    sklearn:
      storageUri: gs://bucket/iris
`
	if err := cl.Create(ctx, loadYAML(t, good)); err != nil {
		t.Fatalf("valid InferenceService refused: %v", err)
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(operator.InferenceServiceGVK)
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "defaulted"}, u); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		path []string
		want string
	}{
		{[]string{"spec", "predictor", "logger", "mode"}, "all"},
		{[]string{"spec", "predictor", "sklearn", "protocolVersion"}, "v1"},
		{[]string{"spec", "predictor", "sklearn", "resources", "limits", "cpu"}, "1"},
	} {
		if got, _, _ := unstructured.NestedString(u.Object, f.path...); got != f.want {
			t.Errorf("%s = %q after create, want the default %q", strings.Join(f.path, "."), got, f.want)
		}
	}
}
