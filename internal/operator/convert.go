package operator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/ferryserve/ferry/internal/api"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// maxConversionBody bounds a ConversionReview: the API server sends a
// list's objects in one review, and etcd's default limit on one object
// is 1.5 MiB.
const maxConversionBody = 64 << 20

// converter serves the conversion webhook of serving.kubeflow.org's
// InferenceService CRD (WebhookPathConvert): ConversionReview v1 requests
// in, each object converted between v1alpha2 and v1beta1 with api's
// lossless conversion. Only labels and annotations of an object's
// metadata change, as the API server requires.
type converter struct {
	log *slog.Logger
}

var _ http.Handler = converter{}

// ServeHTTP implements http.Handler: decode, convert, encode. A review
// that cannot be read gets 400 with a Failed review; a review whose
// objects cannot be converted gets 200 with a Failed result naming the
// object, which the API server passes on to the client.
func (c converter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "conversion reviews are POSTed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxConversionBody))
	if err != nil {
		writeReview(w, http.StatusBadRequest, failedReview("", fmt.Errorf("reading the conversion review: %w", err)))
		return
	}
	review, status := convertReview(body)
	if res := review.Response.Result; res.Status != metav1.StatusSuccess && c.log != nil {
		c.log.Warn("conversion refused", "uid", review.Response.UID, "err", res.Message)
	}
	writeReview(w, status, review)
}

func writeReview(w http.ResponseWriter, status int, review *apiextv1.ConversionReview) {
	b, err := json.Marshal(review)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// convertReview answers the ConversionReview in body, with the HTTP status
// to send it with. It never panics on any input (FuzzConvertReview).
func convertReview(body []byte) (*apiextv1.ConversionReview, int) {
	var in apiextv1.ConversionReview
	if err := json.Unmarshal(body, &in); err != nil {
		return failedReview("", fmt.Errorf("decoding the conversion review: %w", err)), http.StatusBadRequest
	}
	if in.APIVersion != apiextv1.SchemeGroupVersion.String() || in.Kind != "ConversionReview" {
		return failedReview("", fmt.Errorf("want a %s ConversionReview, got apiVersion %q kind %q", apiextv1.SchemeGroupVersion, in.APIVersion, in.Kind)), http.StatusBadRequest
	}
	if in.Request == nil {
		return failedReview("", errors.New("the conversion review has no request")), http.StatusBadRequest
	}
	req := in.Request
	out := make([]runtime.RawExtension, len(req.Objects))
	for i, obj := range req.Objects {
		b, err := convertObject(obj.Raw, req.DesiredAPIVersion)
		if err != nil {
			return failedReview(req.UID, fmt.Errorf("objects[%d]%s: %w", i, objectName(obj.Raw), err)), http.StatusOK
		}
		out[i] = runtime.RawExtension{Raw: b}
	}
	review := newReview(req.UID)
	review.Response.ConvertedObjects = out
	review.Response.Result = metav1.Status{Status: metav1.StatusSuccess}
	return review, http.StatusOK
}

func newReview(uid types.UID) *apiextv1.ConversionReview {
	return &apiextv1.ConversionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: apiextv1.SchemeGroupVersion.String(), Kind: "ConversionReview"},
		Response: &apiextv1.ConversionResponse{UID: uid},
	}
}

func failedReview(uid types.UID, err error) *apiextv1.ConversionReview {
	r := newReview(uid)
	r.Response.Result = metav1.Status{Status: metav1.StatusFailure, Message: err.Error()}
	return r
}

// objectName is " (namespace/name)" of raw when it has one, for messages.
func objectName(raw []byte) string {
	var o struct {
		Metadata struct{ Namespace, Name string } `json:"metadata"`
	}
	if json.Unmarshal(raw, &o) != nil || o.Metadata.Name == "" {
		return ""
	}
	return " (" + o.Metadata.Namespace + "/" + o.Metadata.Name + ")"
}

// convertObject converts one InferenceService, raw JSON, to desired
// (group/version). Its metadata is kept as it came but for labels and
// annotations, which the conversion may change.
func convertObject(raw []byte, desired string) ([]byte, error) {
	obj, err := decodeJSONObject("object", raw)
	if err != nil {
		return nil, err
	}
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	if kind != api.KindInferenceService {
		return nil, fmt.Errorf("kind %q: this webhook converts %s only", kind, api.KindInferenceService)
	}
	group, from, _ := strings.Cut(apiVersion, "/")
	toGroup, to, _ := strings.Cut(desired, "/")
	if group != toGroup || group != api.GroupKubeflow && group != api.GroupKServe {
		return nil, fmt.Errorf("cannot convert %s to %s: one group of %s and %s is needed", apiVersion, desired, api.GroupKubeflow, api.GroupKServe)
	}
	for _, v := range []string{from, to} {
		if v != api.VersionV1alpha2 && v != api.VersionInferenceService {
			return nil, fmt.Errorf("cannot convert %s to %s: version %q is neither %s nor %s", apiVersion, desired, v, api.VersionV1alpha2, api.VersionInferenceService)
		}
	}
	if from == to {
		return raw, nil
	}
	var converted any
	if from == api.VersionV1alpha2 {
		var src api.InferenceServiceV1alpha2
		if err := json.Unmarshal(raw, &src); err != nil {
			return nil, fmt.Errorf("%w: %w", api.ErrInvalid, err)
		}
		converted, err = src.ConvertToV1beta1()
	} else {
		var src api.InferenceService
		if err := json.Unmarshal(raw, &src); err != nil {
			return nil, fmt.Errorf("%w: %w", api.ErrInvalid, err)
		}
		converted, err = src.ConvertToV1alpha2()
	}
	if err != nil {
		return nil, err
	}
	tree, err := jsonTree(converted)
	if err != nil {
		return nil, err
	}
	result, _ := tree.(map[string]any)
	if result == nil {
		return nil, errors.New("converted object is not a JSON object") // a bug in api
	}
	result["apiVersion"] = desired
	result["metadata"] = keepMetadata(obj["metadata"], result["metadata"])
	return json.Marshal(result)
}

// keepMetadata is orig with the labels and annotations of converted.
func keepMetadata(orig, converted any) any {
	md, _ := orig.(map[string]any)
	out := make(map[string]any, len(md)+2)
	for k, v := range md {
		out[k] = v
	}
	cm, _ := converted.(map[string]any)
	for _, k := range []string{"labels", "annotations"} {
		if v, ok := cm[k]; ok {
			out[k] = v
		} else {
			delete(out, k)
		}
	}
	return out
}
