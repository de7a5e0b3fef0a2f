package operator

import (
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// TestGraphWebhook sends InferenceGraphs to the validating handler: a
// valid one is allowed, an invalid one denied with the api package's
// message, and another kind at the graph's path is a 400.
func TestGraphWebhook(t *testing.T) {
	h := webhookHandlers()[WebhookPathValidateInferenceGraph]
	review := func(kind, version, obj string) admission.Response {
		return h.Handle(t.Context(), admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
			UID: "1", Operation: admissionv1.Create,
			Kind:   metav1.GroupVersionKind{Group: "serving.kserve.io", Version: version, Kind: kind},
			Object: runtime.RawExtension{Raw: []byte(obj)},
		}})
	}
	const head = `{"apiVersion":"serving.kserve.io/v1alpha1","kind":"InferenceGraph","metadata":{"name":"g"},`
	if r := review("InferenceGraph", "v1alpha1", head+`"spec":{"nodes":{"root":{"routerType":"Sequence","steps":[{"serviceName":"a"},{"nodeName":"n"}]},"n":{"routerType":"Ensemble","steps":[{"serviceUrl":"http://b.ns.svc.cluster.local/v1/models/b:predict"}]}}}}`); !r.Allowed {
		t.Errorf("valid graph denied: %+v", r.Result)
	}
	for _, tc := range []struct{ spec, want string }{
		{`{"nodes":{"root":{"routerType":"Switch","steps":[{"serviceName":"a"}]}}}`, `spec.nodes.root.steps[0].condition: required in a Switch node`},
		{`{"nodes":{"start":{"routerType":"Sequence","steps":[{"serviceName":"a"}]}}}`, `spec.nodes.root: required`},
		{`{"nodes":{"root":{"routerType":"Sequence","steps":[{"nodeName":"root"}]}}}`, `cycle root → root`},
		{`{"nodes":{"root":{"routerType":"Sequence","steps":[{"serviceName":"a"}]}},"timeout":"soon"}`, `invalid`},
	} {
		r := review("InferenceGraph", "v1alpha1", head+`"spec":`+tc.spec+`}`)
		if r.Allowed || r.Result == nil || !strings.Contains(r.Result.Message, tc.want) {
			t.Errorf("%s: %+v, want denied with %q", tc.spec, r.Result, tc.want)
		}
	}
	if r := review("InferenceService", "v1beta1", `{"apiVersion":"serving.kserve.io/v1beta1","kind":"InferenceService"}`); r.Allowed || r.Result.Code != 400 {
		t.Errorf("an InferenceService at the graph's path: %+v, want a 400", r.Result)
	}
}
