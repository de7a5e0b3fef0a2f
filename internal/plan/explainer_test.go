package plan

import (
	"slices"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/api"
)

func TestExplainer(t *testing.T) {
	isvc := func(pred api.PredictorSpec) *api.InferenceService {
		s := &api.InferenceService{Spec: api.InferenceServiceSpec{Predictor: pred}}
		s.Metadata.Name = "iris"
		return s
	}
	xgb := isvc(api.PredictorSpec{XGBoost: &api.PredictorExtensionSpec{StorageURI: "s3://b/iris"}})
	custom := isvc(api.PredictorSpec{PodSpec: api.PodSpec{Containers: []api.Container{{Name: "c", Command: []string{"srv"}}}}})
	ext := func(typ, uri string, cfg map[string]string) *api.ExplainerExtensionSpec {
		return &api.ExplainerExtensionSpec{Type: typ, StorageURI: uri, Config: cfg}
	}
	for _, tc := range []struct {
		name string
		isvc *api.InferenceService
		e    *api.ExplainerSpec
		sub  string
		args string
		err  string
	}{
		{"kernel", xgb, &api.ExplainerSpec{Alibi: ext("KernelShap", "s3://b/x", map[string]string{"seed": "1"})}, "serve",
			"--predictor-host p:80 --explainer-data s3://b/x --explainer-type KernelShap --explainer-config seed=1", ""},
		{"tree", xgb, &api.ExplainerSpec{Alibi: ext("TreeShap", "", nil)}, "serve",
			"--model-uri s3://b/iris --model-name iris --model-format xgboost --explainer-type TreeShap", ""},
		{"text reads no data", xgb, &api.ExplainerSpec{Alibi: ext("AnchorText", "s3://b/explainer.dill", nil)}, "serve",
			"--predictor-host p:80 --explainer-type AnchorText", ""},
		{"aix", xgb, &api.ExplainerSpec{AIX: ext("LimeImages", "", map[string]string{"num_samples": "10"})}, "serve",
			"--predictor-host p:80 --explainer-type LimeImages --explainer-config num_samples=10", ""},
		{"art", xgb, &api.ExplainerSpec{ART: ext("SquareAttack", "", map[string]string{"eps": "0.1"})}, "attack",
			"--model-name iris --predictor-host p:80 SquareAttack --eps 0.1", ""},
		{"tree on a custom predictor", custom, &api.ExplainerSpec{Alibi: ext("TreeShap", "", nil)}, "", "", "spec.explainer.alibi.type: TreeShap reads the predictor's trees"},
		{"unimplemented type", xgb, &api.ExplainerSpec{Alibi: ext("Counterfactuals", "s3://b/x", nil)}, "", "", "spec.explainer.alibi.type:"},
		{"misspelt key", xgb, &api.ExplainerSpec{Alibi: ext("AnchorTabular", "s3://b/x", map[string]string{"max_samples_start": "5"})}, "", "", `spec.explainer.alibi.config: AnchorTabular does not take "max_samples_start"`},
		{"no data", xgb, &api.ExplainerSpec{Alibi: ext("AnchorTabular", "", nil)}, "", "", "spec.explainer.alibi.storageUri: AnchorTabular needs training data"},
		{"art key", xgb, &api.ExplainerSpec{ART: ext("SquareAttack", "", map[string]string{"max_iters": "5"})}, "", "", "spec.explainer.art:"},
		{"none", xgb, &api.ExplainerSpec{}, "", "", "no built-in explainer"},
	} {
		cmd, err := Explainer(tc.isvc, tc.e, "p:80")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if cmd.Sub != tc.sub || !slices.Equal(cmd.Args, strings.Fields(tc.args)) {
			t.Errorf("%s: %s %q, want %s %q", tc.name, cmd.Sub, cmd.Args, tc.sub, tc.args)
		}
	}
}
