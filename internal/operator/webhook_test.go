package operator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/api"
	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	"sigs.k8s.io/yaml"
)

// admissionRequest is what the API server sends for creating (old nil)
// or updating the object whose YAML or JSON is doc.
func admissionRequest(t testing.TB, doc, old string) admission.Request {
	t.Helper()
	js, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	var tm struct{ APIVersion, Kind string }
	_ = json.Unmarshal(js, &tm)
	group, version, _ := strings.Cut(tm.APIVersion, "/")
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       "1",
		Kind:      metav1.GroupVersionKind{Group: group, Version: version, Kind: tm.Kind},
		Operation: admissionv1.Create,
		Object:    runtime.RawExtension{Raw: js},
	}}
	if old != "" {
		req.Operation = admissionv1.Update
		if req.OldObject.Raw, err = yaml.YAMLToJSON([]byte(old)); err != nil {
			t.Fatal(err)
		}
	}
	return req
}

func handle(path string, req admission.Request) admission.Response {
	return webhookHandlers()[path].Handle(context.Background(), req)
}

// applyPatch applies the add and replace operations of a JSON patch (the
// only ones a defaulting patch may hold) to doc.
func applyPatch(t testing.TB, doc []byte, ops []jsonpatch.JsonPatchOperation) []byte {
	t.Helper()
	var root any
	if err := json.Unmarshal(doc, &root); err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		if op.Operation != "add" && op.Operation != "replace" {
			t.Fatalf("patch operation %s %s: a defaulting patch only adds and replaces", op.Operation, op.Path)
		}
		parts := strings.Split(op.Path, "/")[1:]
		cur := root
		for i, p := range parts {
			p = strings.ReplaceAll(strings.ReplaceAll(p, "~1", "/"), "~0", "~")
			last := i == len(parts)-1
			switch c := cur.(type) {
			case map[string]any:
				if last {
					if _, ok := c[p]; op.Operation == "replace" && !ok {
						t.Fatalf("replace %s: no such field", op.Path)
					}
					c[p] = op.Value
				}
				cur = c[p]
			case []any:
				n, err := strconv.Atoi(p)
				if err != nil || n >= len(c) {
					t.Fatalf("patch path %s: bad index %q", op.Path, p)
				}
				if last {
					if op.Operation != "replace" {
						t.Fatalf("patch %s %s: inserts into a list", op.Operation, op.Path)
					}
					c[n] = op.Value
				}
				cur = c[n]
			default:
				t.Fatalf("patch path %s crosses a %T", op.Path, cur)
			}
		}
	}
	b, err := json.Marshal(root)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// loadMessage is the message `ferry apply` gives for doc (its api.Load
// error without the "document N (line L): " prefix), or "".
func loadMessage(doc []byte) string {
	_, err := api.Load(doc)
	if err == nil {
		return ""
	}
	_, msg, _ := strings.Cut(err.Error(), "): ")
	return msg
}

const sklearnIsvc = `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: sklearn-iris
  namespace: default
spec:
  predictor:
    logger:
      url: http://message-dumper.default/
    batcher:
      maxLatency: 100
    sklearn:
      storageUri: gs://kfserving-examples/models/sklearn/1.0/model
      resources:
        limits:
          nvidia.com/gpu: "1"
          memory: 4Gi
      readinessProbe:
        httpGet:
          path: /v1/models/sklearn-iris
  transformer:
    containers:
    - name: my-transformer
      image: kserve/image-transformer:latest
`

// TestWebhookDefaulting checks the defaulting patch of a service with a
// logger, a batcher, a partial resources block, a probe and a
// transformer: exactly KServe's defaults, nothing else, and idempotent.
func TestWebhookDefaulting(t *testing.T) {
	req := admissionRequest(t, sklearnIsvc, "")
	resp := handle(WebhookPathMutateInferenceService, req)
	if !resp.Allowed {
		t.Fatalf("denied: %+v", resp.Result)
	}
	got := map[string]any{}
	for _, op := range resp.Patches {
		b, _ := json.Marshal(op.Value)
		got[op.Operation+" "+op.Path] = string(b)
	}
	want := map[string]any{
		"add /spec/predictor/minReplicas":                  `1`,
		"add /spec/predictor/logger/mode":                  `"all"`,
		"add /spec/predictor/batcher/maxBatchSize":         `32`,
		"add /spec/predictor/sklearn/name":                 `"kserve-container"`,
		"add /spec/predictor/sklearn/protocolVersion":      `"v1"`,
		"add /spec/predictor/sklearn/resources/limits/cpu": `"1"`,
		"add /spec/predictor/sklearn/resources/requests":   `{"cpu":"1","memory":"4Gi"}`,
		"add /spec/transformer/minReplicas":                `1`,
		"replace /spec/transformer/containers/0/name":      `"kserve-container"`,
		"add /spec/transformer/containers/0/resources":     `{"limits":{"cpu":"1","memory":"2Gi"},"requests":{"cpu":"1","memory":"2Gi"}}`,
	}
	// api also defaults the probe's port, as Knative would; KServe's
	// defaulter does not, so it must not be patched (checked below: any
	// patch not in want fails).
	for k, v := range want {
		if got[k] != v {
			t.Errorf("patch %s = %v, want %v", k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected patch %s %v", k, v)
		}
	}

	// The patched object is what api defaulting makes of it (apart from
	// the probe port), and defaulting it again patches nothing.
	patched := applyPatch(t, req.Object.Raw, resp.Patches)
	req2 := req
	req2.Object.Raw = patched
	if r := handle(WebhookPathMutateInferenceService, req2); !r.Allowed || len(r.Patches) != 0 {
		t.Errorf("second defaulting: allowed %v, patches %v", r.Allowed, r.Patches)
	}
	if r := handle(WebhookPathValidateInferenceService, req2); !r.Allowed {
		t.Errorf("patched object denied: %v", r.Result.Message)
	}
}

// TestWebhookSamples admits every InferenceService and TrainedModel of
// api's test data and KServe's samples that api decodes: the validating
// webhook denies exactly what `ferry apply` refuses, with its message,
// and the defaulting patch applies, keeps the object decodable (strictly:
// no field the schema would prune), is idempotent and changes no meaning.
func TestWebhookSamples(t *testing.T) {
	files, _ := filepath.Glob("../api/testdata/*.yaml")
	samples, _ := filepath.Glob("../api/testdata/kserve-samples/*.yaml")
	files = append(files, samples...)
	var valid, invalid int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range bytes.Split(b, []byte("\n---")) {
			objs, err := api.Decode(doc)
			if err != nil || len(objs) != 1 {
				continue // not one object api decodes: not what the webhook sees
			}
			// As written: api converts older versions, which the CRDs do
			// not serve.
			var ty api.TypeMeta
			if err := yaml.Unmarshal(doc, &ty); err != nil {
				t.Fatal(err)
			}
			if !(ty.Kind == api.KindInferenceService && ty.Version() == api.VersionInferenceService ||
				ty.Kind == api.KindTrainedModel && ty.Version() == api.VersionTrainedModel) {
				continue
			}
			name := filepath.Base(f) + "#" + strconv.Itoa(i)
			req := admissionRequest(t, string(doc), "")
			vpath, mpath := WebhookPathValidateInferenceService, WebhookPathMutateInferenceService
			if ty.Kind == api.KindTrainedModel {
				vpath, mpath = WebhookPathValidateTrainedModel, WebhookPathMutateTrainedModel
			}
			want := loadMessage(doc)
			resp := handle(vpath, req)
			switch {
			case want == "" && !resp.Allowed:
				t.Errorf("%s: denied %q; ferry apply accepts it", name, resp.Result.Message)
			case want != "" && resp.Allowed:
				t.Errorf("%s: allowed; ferry apply refuses it: %s", name, want)
			case want != "" && resp.Result.Message != want:
				t.Errorf("%s: denied with\n%s\nferry apply says\n%s", name, resp.Result.Message, want)
			}
			if want != "" {
				invalid++
			} else {
				valid++
			}
			mresp := handle(mpath, req)
			if !mresp.Allowed {
				t.Errorf("%s: defaulting denied it: %v", name, mresp.Result)
				continue
			}
			patched := applyPatch(t, req.Object.Raw, mresp.Patches)
			if _, err := api.Decode(patched); err != nil {
				t.Errorf("%s: patched object does not decode: %v", name, err)
				continue
			}
			if got := loadMessage(patched); got != want {
				t.Errorf("%s: patching changed ferry apply's verdict from %q to %q", name, want, got)
			}
			if want == "" {
				a, _ := api.Load(doc)
				p, _ := api.Load(patched)
				if ja, jp := mustJSON(t, a), mustJSON(t, p); ja != jp {
					t.Errorf("%s: defaulted objects differ after patching:\n%s\n%s", name, ja, jp)
				}
			}
			req.Object.Raw = patched
			if r := handle(mpath, req); len(r.Patches) != 0 {
				t.Errorf("%s: defaulting is not idempotent: %v", name, r.Patches)
			}
		}
	}
	if valid < 50 || invalid < 10 {
		t.Errorf("admitted %d valid and %d invalid objects; the test data has more", valid, invalid)
	}
	t.Logf("%d valid, %d invalid objects", valid, invalid)
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const trainedModel = `apiVersion: serving.kserve.io/v1alpha1
kind: TrainedModel
metadata:
  name: model1
spec:
  inferenceService: sklearn-mms
  model:
    storageUri: gs://bucket/model1
    framework: sklearn
    memory: 256Mi
`

func TestWebhookTrainedModelUpdate(t *testing.T) {
	updated := strings.Replace(trainedModel, "256Mi", "1Gi", 1)
	resp := handle(WebhookPathValidateTrainedModel, admissionRequest(t, updated, trainedModel))
	if want := `spec.model.memory: field is immutable: was "256Mi", now "1Gi"`; resp.Allowed || resp.Result.Message != want {
		t.Errorf("memory changed: allowed %v, message %q, want %q", resp.Allowed, resp.Result.Message, want)
	}
	same := strings.Replace(trainedModel, "256Mi", "268435456", 1)
	if resp := handle(WebhookPathValidateTrainedModel, admissionRequest(t, same, trainedModel)); !resp.Allowed {
		t.Errorf("the same memory written otherwise: denied %q", resp.Result.Message)
	}
	uri := strings.Replace(trainedModel, "gs://bucket/model1", "gs://bucket/model2", 1)
	if resp := handle(WebhookPathValidateTrainedModel, admissionRequest(t, uri, trainedModel)); !resp.Allowed {
		t.Errorf("new storageUri: denied %q", resp.Result.Message)
	}
	if resp := handle(WebhookPathMutateTrainedModel, admissionRequest(t, trainedModel, "")); !resp.Allowed || len(resp.Patches) != 0 {
		t.Errorf("TrainedModel defaulting: allowed %v, patches %v; KServe has no TrainedModel defaulter", resp.Allowed, resp.Patches)
	}
}

// TestWebhookMalformed sends requests no API server should send: each
// gets a clear error (HTTP 400 in the review), none a panic or an
// allowance.
func TestWebhookMalformed(t *testing.T) {
	isvcKind := metav1.GroupVersionKind{Group: api.GroupKServe, Version: "v1beta1", Kind: api.KindInferenceService}
	for _, tc := range []struct {
		name string
		path string
		kind metav1.GroupVersionKind
		raw  string
		want string
	}{
		{"no object", WebhookPathValidateInferenceService, isvcKind, "", "admission request has no object"},
		{"null", WebhookPathValidateInferenceService, isvcKind, "null", "admitted object: null"},
		{"list", WebhookPathMutateInferenceService, isvcKind, "[1]", "admitted object: json: cannot unmarshal array"},
		{"truncated", WebhookPathValidateInferenceService, isvcKind, `{"kind":`, "admitted object: unexpected EOF"},
		{"trailing", WebhookPathValidateInferenceService, isvcKind, `{"kind":"InferenceService","apiVersion":"serving.kserve.io/v1beta1"} {}`, "data after the object"},
		{"other kind", WebhookPathValidateInferenceService, metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, `{}`, "this webhook admits InferenceService v1beta1"},
		{"trained model at isvc path", WebhookPathMutateInferenceService, metav1.GroupVersionKind{Group: api.GroupKServe, Version: "v1alpha1", Kind: api.KindTrainedModel}, `{}`, "not TrainedModel v1alpha1"},
		{"object kind differs", WebhookPathValidateInferenceService, isvcKind, `{"kind":"TrainedModel","apiVersion":"serving.kserve.io/v1beta1"}`, `kind "TrainedModel", want InferenceService`},
		{"object version differs", WebhookPathValidateTrainedModel, metav1.GroupVersionKind{Group: api.GroupKubeflow, Version: "v1alpha1", Kind: api.KindTrainedModel}, `{"kind":"TrainedModel","apiVersion":"serving.kserve.io/v1alpha1"}`, `apiVersion "serving.kserve.io/v1alpha1", want serving.kubeflow.org/v1alpha1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{UID: "1", Kind: tc.kind, Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: []byte(tc.raw)}}}
			resp := handle(tc.path, req)
			if resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusBadRequest || !strings.Contains(resp.Result.Message, tc.want) {
				t.Errorf("allowed %v, result %+v; want a 400 saying %q", resp.Allowed, resp.Result, tc.want)
			}
		})
	}

	// A spec of the wrong shape is the schema's to refuse: defaulting
	// lets it through unpatched, validation denies it with api's error.
	bad := `{"apiVersion":"serving.kserve.io/v1beta1","kind":"InferenceService","metadata":{"name":"x"},"spec":{"predictor":"sklearn"}}`
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{UID: "1", Kind: isvcKind, Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: []byte(bad)}}}
	if resp := handle(WebhookPathMutateInferenceService, req); !resp.Allowed || len(resp.Patches) != 0 {
		t.Errorf("defaulting a malformed spec: %+v", resp)
	}
	if resp := handle(WebhookPathValidateInferenceService, req); resp.Allowed || !strings.HasPrefix(resp.Result.Message, "invalid object: json: cannot unmarshal") {
		t.Errorf("validating a malformed spec: allowed %v, %v", resp.Allowed, resp.Result)
	}
	// A/B annotations are checked as ferry apply checks them.
	for _, tc := range []struct{ rules, want string }{
		{"header:X-Group=beta=>latest; cookie:exp=old=>prev", ""},
		{"header:X-Group=>latest", "serving.ferryserve.io/route-rules"},
		{"query:a=b=>prev", "want header:NAME=VALUE=>TAG"},
	} {
		raw := `{"apiVersion":"serving.kserve.io/v1beta1","kind":"InferenceService","metadata":{"name":"ab","namespace":"default",` +
			`"annotations":{"serving.ferryserve.io/route-rules":"` + tc.rules + `"}},"spec":{"predictor":{"sklearn":{"storageUri":"gs://b/m"}}}}`
		req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{UID: "1", Kind: isvcKind, Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: []byte(raw)}}}
		resp := handle(WebhookPathValidateInferenceService, req)
		switch {
		case tc.want == "" && !resp.Allowed:
			t.Errorf("route rules %q denied: %v", tc.rules, resp.Result)
		case tc.want != "" && (resp.Allowed || !strings.Contains(resp.Result.Message, tc.want)):
			t.Errorf("route rules %q: allowed %v, %v; want a denial saying %q", tc.rules, resp.Allowed, resp.Result, tc.want)
		}
	}

	// Deletion and connect are not ours to judge.
	req.Operation = admissionv1.Delete
	req.Object.Raw = nil
	if resp := handle(WebhookPathValidateInferenceService, req); !resp.Allowed {
		t.Errorf("delete denied: %v", resp.Result)
	}
}

// TestWebhookHTTP posts admission reviews to the handler as the webhook
// server mounts it: malformed bodies get a 400 review with the reason,
// a good one the verdict.
func TestWebhookHTTP(t *testing.T) {
	mux := http.NewServeMux()
	for path, h := range webhookHandlers() {
		mux.Handle(path, &admission.Webhook{Handler: h})
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	post := func(path, contentType, body string) admissionv1.AdmissionReview {
		t.Helper()
		resp, err := http.Post(srv.URL+path, contentType, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var rev admissionv1.AdmissionReview
		if err := json.NewDecoder(resp.Body).Decode(&rev); err != nil {
			t.Fatalf("%s: response is not a review: %v", path, err)
		}
		if rev.Response == nil {
			t.Fatalf("%s: review without a response", path)
		}
		return rev
	}
	for _, tc := range []struct{ name, contentType, body, want string }{
		{"empty", "application/json", "", "request body is empty"},
		{"not json", "application/json", "{{{", "couldn't get version/kind"},
		{"wrong content type", "text/plain", "{}", "contentType=text/plain"},
		{"request is a string", "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":"x"}`, "cannot unmarshal"},
		{"object is a string", "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","kind":{"group":"serving.kserve.io","version":"v1beta1","kind":"InferenceService"},"operation":"CREATE","object":"x"}}`, "admitted object: json: cannot unmarshal string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rev := post(WebhookPathValidateInferenceService, tc.contentType, tc.body)
			r := rev.Response
			if r.Allowed || r.Result == nil || r.Result.Code != http.StatusBadRequest || !strings.Contains(r.Result.Message, tc.want) {
				t.Errorf("response %+v; want a 400 saying %q", r, tc.want)
			}
		})
	}

	req := admissionRequest(t, strings.Replace(sklearnIsvc, "gs://kfserving-examples", "ftp://host", 1), "")
	body, _ := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  &req.AdmissionRequest,
	})
	rev := post(WebhookPathValidateInferenceService, "application/json", string(body))
	want := loadMessage([]byte(strings.Replace(sklearnIsvc, "gs://kfserving-examples", "ftp://host", 1)))
	if want == "" || !strings.Contains(want, "spec.predictor.sklearn.storageUri") {
		t.Fatalf("ferry apply's message %q does not name the field", want)
	}
	if rev.Response.Allowed || rev.Response.Result.Message != want || rev.Response.UID != "1" {
		t.Errorf("response %+v; want denied with %q", rev.Response, want)
	}
}

// TestWebhookConfigurationFiles checks that the install manifests
// register the paths the operator serves, as WebhookConfigurations does.
func TestWebhookConfigurationFiles(t *testing.T) {
	b, err := os.ReadFile("../../config/webhook/manifests.yaml")
	if errors.Is(err, os.ErrNotExist) {
		t.Skip("no config/webhook/manifests.yaml")
	}
	if err != nil {
		t.Fatal(err)
	}
	var gotV admissionregistrationv1.ValidatingWebhookConfiguration
	var gotM admissionregistrationv1.MutatingWebhookConfiguration
	for _, doc := range bytes.Split(b, []byte("\n---")) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatal(err)
		}
		switch tm.Kind {
		case "ValidatingWebhookConfiguration":
			err = yaml.UnmarshalStrict(doc, &gotV)
		case "MutatingWebhookConfiguration":
			err = yaml.UnmarshalStrict(doc, &gotM)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	wantV, wantM := WebhookConfigurations(gotV.Name, gotM.Name, func(path string) admissionregistrationv1.WebhookClientConfig {
		return admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Path: &path}}
	})
	norm := func(cc *admissionregistrationv1.WebhookClientConfig) {
		cc.CABundle = nil
		if cc.Service != nil {
			cc.Service = &admissionregistrationv1.ServiceReference{Path: cc.Service.Path}
		}
	}
	for i := range gotV.Webhooks {
		norm(&gotV.Webhooks[i].ClientConfig)
	}
	for i := range gotM.Webhooks {
		norm(&gotM.Webhooks[i].ClientConfig)
	}
	if g, w := mustJSON(t, gotV.Webhooks), mustJSON(t, wantV.Webhooks); g != w {
		t.Errorf("validating webhooks in config/webhook:\n%s\nwant\n%s", g, w)
	}
	if g, w := mustJSON(t, gotM.Webhooks), mustJSON(t, wantM.Webhooks); g != w {
		t.Errorf("mutating webhooks in config/webhook:\n%s\nwant\n%s", g, w)
	}
}

// FuzzWebhookAdmit sends arbitrary objects to every handler: no panic, a
// verdict or a 400, and a defaulting patch that applies.
func FuzzWebhookAdmit(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"serving.kserve.io/v1beta1","kind":"InferenceService","metadata":{"name":"a"},"spec":{"predictor":{"sklearn":{"storageUri":"gs://b/m"}}}}`), false)
	f.Add([]byte(`{"apiVersion":"serving.kserve.io/v1beta1","kind":"InferenceService","spec":{"predictor":{"containers":[{"name":"x","resources":null}],"logger":{}}}}`), false)
	f.Add([]byte(`{"apiVersion":"serving.kserve.io/v1alpha1","kind":"TrainedModel","spec":{"model":{"memory":"1Gi"}}}`), true)
	f.Add([]byte(`{"apiVersion":"serving.kserve.io/v1beta1","kind":"InferenceService","spec":{"predictor":{"sklearn":{"resources":{"limits":"x"}}}}}`), false)
	f.Add([]byte(`[]`), false)
	f.Fuzz(func(t *testing.T, raw []byte, tm bool) {
		kind := metav1.GroupVersionKind{Group: api.GroupKServe, Version: "v1beta1", Kind: api.KindInferenceService}
		paths := []string{WebhookPathMutateInferenceService, WebhookPathValidateInferenceService}
		if tm {
			kind = metav1.GroupVersionKind{Group: api.GroupKServe, Version: "v1alpha1", Kind: api.KindTrainedModel}
			paths = []string{WebhookPathMutateTrainedModel, WebhookPathValidateTrainedModel}
		}
		for _, op := range []admissionv1.Operation{admissionv1.Create, admissionv1.Update} {
			req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{UID: "1", Kind: kind, Operation: op,
				Object: runtime.RawExtension{Raw: raw}, OldObject: runtime.RawExtension{Raw: raw}}}
			for _, p := range paths {
				resp := handle(p, req)
				if !resp.Allowed && (resp.Result == nil || resp.Result.Message == "") {
					t.Fatalf("%s: refused without a reason: %+v", p, resp)
				}
				if len(resp.Patches) > 0 {
					applyPatch(t, raw, resp.Patches)
				}
			}
		}
	})
}

// TestWebhookV1alpha2 sends v1alpha2 InferenceServices as a configuration
// that names that version would (Ferry's say matchPolicy Equivalent, which
// converts them to v1beta1 first): validation after conversion, with the
// fields named as written, and no defaulting patch.
func TestWebhookV1alpha2(t *testing.T) {
	good := `apiVersion: serving.kubeflow.org/v1alpha2
kind: InferenceService
metadata: {name: iris, namespace: default}
spec:
  default:
    predictor:
      sklearn: {storageUri: gs://b/iris}
`
	if resp := handle(WebhookPathValidateInferenceService, admissionRequest(t, good, "")); !resp.Allowed {
		t.Errorf("valid v1alpha2 denied: %v", resp.Result)
	}
	if resp := handle(WebhookPathMutateInferenceService, admissionRequest(t, good, "")); !resp.Allowed || len(resp.Patches) != 0 {
		t.Errorf("defaulting a v1alpha2 object: allowed %v, %d patches", resp.Allowed, len(resp.Patches))
	}
	for _, tc := range []struct{ doc, want string }{
		{strings.Replace(good, "storageUri: gs://b/iris", "storageUri: 'ftp://b/iris'", 1), "spec.default.predictor.sklearn.storageUri"},
		{good + "  canaryTrafficPercent: 150\n  canary: {predictor: {sklearn: {storageUri: gs://b/v2}}}\n", "spec.canaryTrafficPercent"},
		{strings.Replace(good, "sklearn: {storageUri: gs://b/iris}", "sklearn: {storageUri: gs://b/iris}\n      onnx: {storageUri: gs://b/o}", 1), "spec.default.predictor: exactly one of"},
	} {
		resp := handle(WebhookPathValidateInferenceService, admissionRequest(t, tc.doc, ""))
		if resp.Allowed || !strings.Contains(resp.Result.Message, tc.want) {
			t.Errorf("allowed %v, %v; want a denial naming %s", resp.Allowed, resp.Result, tc.want)
		}
	}
}
