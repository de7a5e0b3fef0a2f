package api

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// samplePlaceholder is why most expected failures fail: the sample holds a
// {username} placeholder, which is not valid YAML until it is replaced, so
// kubectl refuses it too.
const samplePlaceholder = "placeholder {username} is a YAML flow mapping; kubectl refuses it too"

// sampleFailures lists the KServe sample documents that do not load, why,
// and a piece of the error each must give.
var sampleFailures = map[string]struct{ why, err string }{
	"v0.15.2__bentoml__bentoml.yaml":                                       {samplePlaceholder, "did not find expected key"},
	"v0.5.1__bentoml__bentoml.yaml":                                        {samplePlaceholder, "did not find expected key"},
	"v0.5.1__v1alpha2__custom__hello-world__custom.yaml":                   {samplePlaceholder, "did not find expected key"},
	"v0.5.1__v1alpha2__custom__kfserving-custom-model__custom.yaml":        {samplePlaceholder, "did not find expected key"},
	"v0.15.2__v1beta1__custom__torchserve__autoscale.yaml":                 {samplePlaceholder, "did not find expected key"},
	"v0.15.2__v1beta1__custom__torchserve__bert-sample__bert.yaml":         {samplePlaceholder, "did not find expected key"},
	"v0.15.2__v1beta1__custom__torchserve__canary.yaml":                    {samplePlaceholder, "did not find expected key"},
	"v0.15.2__v1beta1__custom__torchserve__gpu.yaml":                       {samplePlaceholder, "did not find expected key"},
	"v0.15.2__v1beta1__custom__torchserve__logger__torchserve-logger.yaml": {samplePlaceholder, "did not find expected key"},
	"v0.15.2__v1beta1__custom__torchserve__metrics.yaml":                   {samplePlaceholder, "did not find expected key"},
	"v0.15.2__v1beta1__custom__torchserve__torchserve-custom-pv.yaml":      {samplePlaceholder, "did not find expected key"},
	"v0.15.2__v1beta1__custom__torchserve__torchserve-custom.yaml":         {samplePlaceholder, "did not find expected key"},
	"v0.5.1__v1beta1__custom__torchserve__autoscale.yaml":                  {samplePlaceholder, "did not find expected key"},
	"v0.5.1__v1beta1__custom__torchserve__bert-sample__bert.yaml":          {samplePlaceholder, "did not find expected key"},
	"v0.5.1__v1beta1__custom__torchserve__canary.yaml":                     {samplePlaceholder, "did not find expected key"},
	"v0.5.1__v1beta1__custom__torchserve__gpu.yaml":                        {samplePlaceholder, "did not find expected key"},
	"v0.5.1__v1beta1__custom__torchserve__logger__torchserve-logger.yaml":  {samplePlaceholder, "did not find expected key"},
	"v0.5.1__v1beta1__custom__torchserve__metrics.yaml":                    {samplePlaceholder, "did not find expected key"},
	"v0.5.1__v1beta1__custom__torchserve__torchserve-custom-pv.yaml":       {samplePlaceholder, "did not find expected key"},
	"v0.5.1__v1beta1__custom__torchserve__torchserve-custom.yaml":          {samplePlaceholder, "did not find expected key"},

	"v0.15.2__gcp-iap__sklearn-iap-no-authz.yaml":   {"placeholder namespace <namespace>, which no API server accepts", `invalid namespace "<namespace>"`},
	"v0.15.2__gcp-iap__sklearn-iap-with-authz.yaml": {"placeholder namespace <namespace>, which no API server accepts", `invalid namespace "<namespace>"`},

	"v0.15.2__storage__hf__hf_isvc.yaml": {"hf:// needs Hugging Face Hub access, which ferry does not have",
		"spec.predictor.model.storageUri: hf://meta-llama/Llama-2-7b-chat-hf: Hugging Face Hub URIs are not supported"},
	"v0.15.2__v1beta1__torchserve__v1__bloom__bloom-560m.yaml": {"nodeName is under spec, not spec.predictor: a mistake in the sample that strict field validation rejects",
		"spec.nodeName: unknown field"},
	"v0.5.1__logger__knative-eventing__sklearn-logging.yaml": {"a logger without url meant KFServing's Knative broker; ferry has none and requires the URL",
		"spec.default.predictor.logger.url: required"},
}

// TestKServeSamples loads every InferenceService and TrainedModel document
// of KServe's docs/samples at v0.5.1 and v0.15.2 (one file per document,
// copied unchanged but for a first comment line naming the source): each
// must load, or fail as sampleFailures says.
func TestKServeSamples(t *testing.T) {
	files, err := filepath.Glob("testdata/kserve-samples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	loaded := 0
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := Load(data)
			fail, expected := sampleFailures[name]
			switch {
			case err == nil && expected:
				t.Fatalf("loads now; remove it from sampleFailures (%s)", fail.why)
			case err != nil && !expected:
				t.Fatalf("Load: %v", err)
			case err != nil && !strings.Contains(err.Error(), fail.err):
				t.Fatalf("error lacks %q (%s)\ngot: %v", fail.err, fail.why, err)
			case err == nil && len(objs) != 1:
				t.Fatalf("got %d objects, want 1", len(objs))
			case err == nil:
				loaded++
			}
		})
	}
	for name := range sampleFailures {
		if _, err := os.Stat(filepath.Join("testdata/kserve-samples", name)); err != nil {
			t.Errorf("sampleFailures names a missing sample: %v", err)
		}
	}
	t.Logf("%d of %d KServe sample documents load", loaded, len(files))
}
