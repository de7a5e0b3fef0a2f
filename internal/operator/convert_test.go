package operator

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/api"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// reviewOf builds the ConversionReview the API server sends.
func reviewOf(t testing.TB, desired string, objs ...string) []byte {
	t.Helper()
	r := apiextv1.ConversionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "apiextensions.k8s.io/v1", Kind: "ConversionReview"},
		Request:  &apiextv1.ConversionRequest{UID: "u1", DesiredAPIVersion: desired},
	}
	for _, o := range objs {
		r.Request.Objects = append(r.Request.Objects, runtime.RawExtension{Raw: []byte(o)})
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// storedMeta is metadata as the API server sends it: fields the
// conversion must give back untouched.
const storedMeta = `"metadata":{"name":"iris","namespace":"default","uid":"0d9c","resourceVersion":"42","generation":3,` +
	`"creationTimestamp":"2026-01-01T00:00:00Z","finalizers":["x"],"managedFields":[{"manager":"kubectl","operation":"Update"}],` +
	`"labels":{"team":"a"},"annotations":{"owner":"b"}}`

func TestConvertReview(t *testing.T) {
	v1alpha2 := `{"apiVersion":"serving.kubeflow.org/v1alpha2","kind":"InferenceService",` + storedMeta + `,` +
		`"spec":{"default":{"predictor":{"parallelism":4,"sklearn":{"storageUri":"gs://b/iris"}}},"canaryTrafficPercent":20,` +
		`"canary":{"predictor":{"xgboost":{"storageUri":"gs://b/x","nthread":2}}}}}`
	review, status := convertReview(reviewOf(t, "serving.kubeflow.org/v1beta1", v1alpha2))
	res := review.Response
	if status != http.StatusOK || res.UID != "u1" || res.Result.Status != metav1.StatusSuccess || len(res.ConvertedObjects) != 1 {
		t.Fatalf("status %d, response %+v", status, res)
	}
	var got map[string]any
	if err := json.Unmarshal(res.ConvertedObjects[0].Raw, &got); err != nil {
		t.Fatal(err)
	}
	if got["apiVersion"] != "serving.kubeflow.org/v1beta1" || got["kind"] != "InferenceService" {
		t.Errorf("converted to %v %v", got["apiVersion"], got["kind"])
	}
	checkMetaKept(t, v1alpha2, res.ConvertedObjects[0].Raw)
	md := got["metadata"].(map[string]any)
	ann := md["annotations"].(map[string]any)
	if ann["owner"] != "b" || ann[api.AnnotationConvertedFrom] != "serving.kubeflow.org/v1alpha2" || ann[api.AnnotationV1alpha2NThread] != "2" {
		t.Errorf("annotations = %v", ann)
	}
	pred := got["spec"].(map[string]any)["predictor"].(map[string]any)
	if pred["canaryTrafficPercent"] != float64(20) || pred["xgboost"] == nil {
		t.Errorf("predictor = %v", pred)
	}

	// And back: what was written.
	back, _ := convertReview(reviewOf(t, "serving.kubeflow.org/v1alpha2", string(res.ConvertedObjects[0].Raw)))
	if back.Response.Result.Status != metav1.StatusSuccess {
		t.Fatalf("back: %+v", back.Response.Result)
	}
	checkMetaKept(t, v1alpha2, back.Response.ConvertedObjects[0].Raw)
	var want, again map[string]any
	_ = json.Unmarshal([]byte(v1alpha2), &want)
	_ = json.Unmarshal(back.Response.ConvertedObjects[0].Raw, &again)
	if !reflect.DeepEqual(want["spec"], again["spec"]) || !reflect.DeepEqual(want["metadata"], again["metadata"]) {
		t.Errorf("v1alpha2 → v1beta1 → v1alpha2:\nwrote %s\nread  %s", v1alpha2, back.Response.ConvertedObjects[0].Raw)
	}

	// The same version is passed through; several objects keep their order.
	v1beta1 := `{"apiVersion":"serving.kubeflow.org/v1beta1","kind":"InferenceService",` + storedMeta + `,"spec":{"predictor":{"sklearn":{"storageUri":"gs://b/1"}}}}`
	review, _ = convertReview(reviewOf(t, "serving.kubeflow.org/v1beta1", v1beta1, string(res.ConvertedObjects[0].Raw)))
	if objs := review.Response.ConvertedObjects; len(objs) != 2 || string(objs[0].Raw) != v1beta1 {
		t.Errorf("pass-through: %+v", review.Response)
	}
}

// checkMetaKept fails when out's metadata differs from in's other than in
// labels and annotations: the API server refuses such a conversion.
func checkMetaKept(t *testing.T, in string, out []byte) {
	t.Helper()
	var a, b struct {
		Metadata map[string]any `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(in), &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &b); err != nil {
		t.Fatal(err)
	}
	for _, m := range []map[string]any{a.Metadata, b.Metadata} {
		delete(m, "labels")
		delete(m, "annotations")
	}
	if (len(a.Metadata) > 0 || len(b.Metadata) > 0) && !reflect.DeepEqual(a.Metadata, b.Metadata) {
		t.Errorf("metadata changed:\nwas %v\nnow %v", a.Metadata, b.Metadata)
	}
}

func TestConvertReviewRefused(t *testing.T) {
	isvc := func(apiVersion, spec string) string {
		return `{"apiVersion":"` + apiVersion + `","kind":"InferenceService","metadata":{"name":"x","namespace":"ns"},"spec":` + spec + `}`
	}
	for _, tc := range []struct {
		name   string
		body   []byte
		status int
		want   string
	}{
		{"not JSON", []byte("{"), http.StatusBadRequest, "decoding the conversion review"},
		{"other kind", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), http.StatusBadRequest, "want a apiextensions.k8s.io/v1 ConversionReview"},
		{"no request", []byte(`{"apiVersion":"apiextensions.k8s.io/v1","kind":"ConversionReview"}`), http.StatusBadRequest, "has no request"},
		{"two frameworks", reviewOf(t, "serving.kubeflow.org/v1beta1", isvc("serving.kubeflow.org/v1alpha2", `{"default":{"predictor":{"sklearn":{},"onnx":{}}}}`)),
			http.StatusOK, "objects[0] (ns/x): spec.default.predictor: exactly one of"},
		{"transformer without container", reviewOf(t, "serving.kubeflow.org/v1beta1", isvc("serving.kubeflow.org/v1alpha2", `{"default":{"predictor":{"sklearn":{}},"transformer":{}}}`)),
			http.StatusOK, "spec.default.transformer.custom: required"},
		{"wrong shape", reviewOf(t, "serving.kubeflow.org/v1beta1", isvc("serving.kubeflow.org/v1alpha2", `{"default":"sklearn"}`)),
			http.StatusOK, "invalid object: json: cannot unmarshal"},
		{"other group", reviewOf(t, "serving.kserve.io/v1beta1", isvc("serving.kubeflow.org/v1alpha2", `{}`)),
			http.StatusOK, "cannot convert serving.kubeflow.org/v1alpha2 to serving.kserve.io/v1beta1"},
		{"other version", reviewOf(t, "serving.kubeflow.org/v1", isvc("serving.kubeflow.org/v1alpha2", `{}`)),
			http.StatusOK, `version "v1" is neither v1alpha2 nor v1beta1`},
		{"other kind of object", reviewOf(t, "serving.kubeflow.org/v1beta1", `{"apiVersion":"serving.kubeflow.org/v1alpha1","kind":"TrainedModel"}`),
			http.StatusOK, `kind "TrainedModel": this webhook converts InferenceService only`},
		{"not an object", reviewOf(t, "serving.kubeflow.org/v1beta1", `[1]`), http.StatusOK, "object: json: cannot unmarshal array"},
		{"broken annotation", reviewOf(t, "serving.kubeflow.org/v1beta1", `{"apiVersion":"serving.kubeflow.org/v1alpha2","kind":"InferenceService",`+
			`"metadata":{"name":"x","annotations":{"ferryserve.github.io/v1beta1-spec":"{"}},"spec":{"default":{"predictor":{"sklearn":{}}}}}`),
			http.StatusOK, "metadata.annotations[ferryserve.github.io/v1beta1-spec]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			review, status := convertReview(tc.body)
			if status != tc.status || review.Response == nil || review.Response.Result.Status != metav1.StatusFailure ||
				!strings.Contains(review.Response.Result.Message, tc.want) || len(review.Response.ConvertedObjects) != 0 {
				t.Errorf("status %d, response %+v; want %d, Failure saying %q", status, review.Response, tc.status, tc.want)
			}
			if tc.status == http.StatusOK && review.Response.UID != "u1" {
				t.Errorf("uid = %q", review.Response.UID)
			}
		})
	}
}

// TestConvertHTTP posts to the handler as the webhook server mounts it.
func TestConvertHTTP(t *testing.T) {
	srv := httptest.NewServer(converter{})
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", resp.StatusCode)
	}
	for _, tc := range []struct {
		body   []byte
		status int
		result string
	}{
		{reviewOf(t, "serving.kubeflow.org/v1alpha2", `{"apiVersion":"serving.kubeflow.org/v1beta1","kind":"InferenceService","metadata":{"name":"a"},"spec":{"predictor":{"onnx":{"storageUri":"gs://b/m"}}}}`), http.StatusOK, metav1.StatusSuccess},
		{[]byte("nonsense"), http.StatusBadRequest, metav1.StatusFailure},
	} {
		resp, err := http.Post(srv.URL, "application/json", bytes.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var review apiextv1.ConversionReview
		if err := json.Unmarshal(b, &review); err != nil || review.Response == nil {
			t.Fatalf("response %s: %v", b, err)
		}
		if resp.StatusCode != tc.status || review.Response.Result.Status != tc.result || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("status %d, result %+v; want %d, %s", resp.StatusCode, review.Response.Result, tc.status, tc.result)
		}
	}
}

// FuzzConvertReview sends arbitrary bytes as the object of a
// ConversionReview, converted in both directions: no panic; a Failed
// result with a message, or every object converted to the desired version
// with its metadata kept but for labels and annotations, and converting
// that back succeeds.
func FuzzConvertReview(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"serving.kubeflow.org/v1alpha2","kind":"InferenceService","metadata":{"name":"a","uid":"1"},"spec":{"default":{"predictor":{"sklearn":{"storageUri":"gs://b/m"}}}}}`), true)
	f.Add([]byte(`{"apiVersion":"serving.kubeflow.org/v1beta1","kind":"InferenceService","metadata":{"name":"a"},"spec":{"predictor":{"model":{"modelFormat":{"name":"x"}},"containers":[{},{}]}},"status":{"url":"u"}}`), false)
	f.Add([]byte(`{"apiVersion":"serving.kubeflow.org/v1alpha2","kind":"InferenceService","metadata":{"annotations":{"ferryserve.github.io/v1beta1-spec":"{\"predictor\":{}}","ferryserve.github.io/v1beta1-status":"{}"}},"spec":{"canaryTrafficPercent":-1}}`), true)
	f.Add([]byte(`{"apiVersion":"serving.kubeflow.org/v1beta1","kind":"InferenceService","metadata":{"annotations":{"ferryserve.github.io/v1alpha2-default":"{\"predictor\":{\"custom\":{}}}","ferryserve.github.io/v1alpha2-nthread":"x"}},"spec":{"explainer":{"art":{}}}}`), false)
	f.Add([]byte(`{"apiVersion":"serving.kubeflow.org/v1beta1","kind":"InferenceService","metadata":null,"spec":null}`), false)
	f.Add([]byte(`{"apiVersion":"serving.kubeflow.org/v1beta1","kind":"InferenceService"},{"apiVersion":"serving.kubeflow.org/v1alpha2","kind":"InferenceService"}`), true)
	f.Fuzz(func(t *testing.T, obj []byte, toV1beta1 bool) {
		desired, other := "serving.kubeflow.org/v1alpha2", "serving.kubeflow.org/v1beta1"
		if toV1beta1 {
			desired, other = other, desired
		}
		// The bytes go into the review as they are, so that the
		// review's decoding is fuzzed too.
		body := []byte(`{"apiVersion":"apiextensions.k8s.io/v1","kind":"ConversionReview","request":{"uid":"u1","desiredAPIVersion":"` +
			desired + `","objects":[` + string(obj) + `]}}`)
		review, _ := convertReview(body)
		res := review.Response
		if res == nil {
			t.Fatal("no response")
		}
		if res.Result.Status != metav1.StatusSuccess {
			if res.Result.Status != metav1.StatusFailure || res.Result.Message == "" || len(res.ConvertedObjects) != 0 {
				t.Fatalf("result %+v", res)
			}
			return
		}
		var in apiextv1.ConversionReview
		if err := json.Unmarshal(body, &in); err != nil {
			t.Fatalf("converted a review that does not decode: %v", err)
		}
		if len(res.ConvertedObjects) != len(in.Request.Objects) {
			t.Fatalf("%d objects converted of %d", len(res.ConvertedObjects), len(in.Request.Objects))
		}
		var back []string
		for i, o := range res.ConvertedObjects {
			var tm struct{ APIVersion string }
			if err := json.Unmarshal(o.Raw, &tm); err != nil {
				t.Fatalf("converted object %s: %v", o.Raw, err)
			}
			if tm.APIVersion != desired && !bytes.Equal(o.Raw, in.Request.Objects[i].Raw) {
				t.Fatalf("converted to %q, want %s", tm.APIVersion, desired)
			}
			checkMetaKept(t, string(in.Request.Objects[i].Raw), o.Raw)
			back = append(back, string(o.Raw))
		}
		if rev, _ := convertReview(reviewOf(t, other, back...)); rev.Response.Result.Status != metav1.StatusSuccess {
			t.Fatalf("converting own output %q back: %s", back, rev.Response.Result.Message)
		}
	})
}
