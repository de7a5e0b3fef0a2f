package api

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode checks that no input makes Decode, Default, Validate or the
// helpers panic, that Default is idempotent, and that whatever decodes
// survives an encode/decode round trip.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	samples, _ := filepath.Glob("testdata/kserve-samples/*.yaml")
	for _, file := range append(files, samples...) {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: x}\nspec: {predictor: {containers: [{}]}}\n"))
	f.Add([]byte("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nspec: {predictor: {model: {}}, explainer: {containers: [{}]}}\n"))
	f.Add([]byte("{\"apiVersion\":\"serving.kserve.io/v1alpha1\",\"kind\":\"TrainedModel\",\"spec\":{\"model\":{\"memory\":1e400}}}"))
	f.Add([]byte("apiVersion: serving.kubeflow.org/v1alpha2\nkind: InferenceService\nmetadata: {name: x, annotations: {ferryserve.github.io/v1alpha2-default: '{'}}\nspec: {default: {predictor: {custom: {container: {}}}}, canary: {predictor: {}}}\n"))
	f.Add([]byte("apiVersion: serving.kubeflow.org/v1beta1\nkind: InferenceService\nmetadata: {name: x, annotations: {ferryserve.github.io/converted-from: serving.kubeflow.org/v1alpha2, ferryserve.github.io/v1alpha2-default: '{\"predictor\":{\"sklearn\":{}}}'}}\nspec: {predictor: {sklearn: {}}}\n"))
	f.Add([]byte("apiVersion: serving.kserve.io/v1alpha1\nkind: InferenceGraph\nmetadata: {name: g}\nspec: {nodes: {root: {routerType: Splitter, steps: [{nodeName: root, weight: 100, condition: '#(a==\"b)'}]}}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := Decode(data)
		if err != nil {
			return
		}
		for _, o := range objs {
			enc, err := json.Marshal(o)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			back, err := Decode(enc)
			if err != nil || len(back) != 1 {
				t.Fatalf("decoding own output %s: %d objects, %v", enc, len(back), err)
			}
			o.Default()
			once, _ := json.Marshal(o)
			o.Default()
			if twice, _ := json.Marshal(o); string(once) != string(twice) {
				t.Fatalf("Default not idempotent:\n%s\n%s", once, twice)
			}
			_ = o.Validate()
			if isvc, ok := o.(*InferenceService); ok {
				isvc.PredictorFormat()
				ComponentSpecHash(&isvc.Spec.Predictor)
				if old, err := isvc.ToV1alpha2(); err == nil {
					if _, err := json.Marshal(old); err != nil {
						t.Fatalf("marshal v1alpha2 view: %v", err)
					}
				}
				checkConversionRoundTrip(t, isvc)
			}
		}
	})
}

// checkConversionRoundTrip converts isvc to v1alpha2 and back as the
// conversion webhook does: the spec and status must come back unchanged.
func checkConversionRoundTrip(t *testing.T, isvc *InferenceService) {
	view, err := isvc.ConvertToV1alpha2()
	if err != nil {
		return // a broken v1alpha2-default annotation
	}
	enc, err := json.Marshal(view)
	if err != nil {
		t.Fatalf("marshal v1alpha2 view: %v", err)
	}
	var read InferenceServiceV1alpha2
	if err := json.Unmarshal(enc, &read); err != nil {
		t.Fatalf("decoding own v1alpha2 view %s: %v", enc, err)
	}
	back, err := read.ConvertToV1beta1()
	if err != nil {
		t.Fatalf("converting own v1alpha2 view %s back: %v", enc, err)
	}
	a, _ := json.Marshal(isvc.Spec)
	b, _ := json.Marshal(back.Spec)
	if string(a) != string(b) {
		t.Fatalf("spec changed through v1alpha2:\nwas %s\nnow %s\nview %s", a, b, enc)
	}
	a, _ = json.Marshal(isvc.Status)
	b, _ = json.Marshal(back.Status)
	if string(a) != string(b) {
		t.Fatalf("status changed through v1alpha2:\nwas %s\nnow %s\nview %s", a, b, enc)
	}
}
