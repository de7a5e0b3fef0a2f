package controlplane

import (
	"slices"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/server"
	"github.com/ferryserve/ferry/internal/supervisor"
)

func TestBuiltinExplainerTemplate(t *testing.T) {
	c := &Controller{cfg: Config{FerryBinary: "/bin/ferry", PredictorAddr: "127.0.0.1:7000"}}
	isvc := func(pred api.PredictorSpec) *api.InferenceService {
		s := &api.InferenceService{Spec: api.InferenceServiceSpec{Predictor: pred}}
		s.Metadata.Name = "iris"
		return s
	}
	xgb := isvc(api.PredictorSpec{XGBoost: &api.PredictorExtensionSpec{StorageURI: "s3://b/iris"}})
	custom := isvc(api.PredictorSpec{PodSpec: api.PodSpec{Containers: []api.Container{{Name: "c", Command: []string{"srv"}}}}})
	alibi := func(typ, uri string, cfg map[string]string) *api.ExplainerSpec {
		return &api.ExplainerSpec{Alibi: &api.ExplainerExtensionSpec{Type: typ, StorageURI: uri, Config: cfg}}
	}
	for _, tc := range []struct {
		name string
		isvc *api.InferenceService
		e    *api.ExplainerSpec
		args string // after serve's listener flags
		err  string
	}{
		{"kernel", xgb, alibi("KernelShap", "s3://b/x", map[string]string{"seed": "1", "nsamples": "64"}),
			"--predictor-host 127.0.0.1:7000 --explainer-data s3://b/x --explainer-type KernelShap --explainer-config nsamples=64 --explainer-config seed=1", ""},
		{"tree", xgb, alibi("TreeShap", "", nil),
			"--model-uri s3://b/iris --model-name iris --model-format xgboost --explainer-type TreeShap", ""},
		{"tree on a custom predictor", custom, alibi("TreeShap", "", nil), "", "spec.explainer.alibi.type: TreeShap reads the predictor's trees"},
		{"unimplemented type", xgb, alibi("Counterfactuals", "s3://b/x", nil), "", `spec.explainer.alibi.type: type "Counterfactuals" is not one of`},
		{"misspelt key", xgb, alibi("AnchorTabular", "s3://b/x", map[string]string{"max_samples_start": "5"}), "", `spec.explainer.alibi.config: AnchorTabular does not take "max_samples_start": Alibi's name is min_samples_start`},
		{"no data", xgb, alibi("AnchorTabular", "", nil), "", "spec.explainer.alibi.storageUri: AnchorTabular needs training data"},
		{"aix", xgb, &api.ExplainerSpec{AIX: &api.ExplainerExtensionSpec{Type: "LimeImages", StorageURI: "s3://b/ignored", Config: map[string]string{"num_samples": "100"}}},
			"--predictor-host 127.0.0.1:7000 --explainer-type LimeImages --explainer-config num_samples=100", ""},
		{"aix misspelt key", xgb, &api.ExplainerSpec{AIX: &api.ExplainerExtensionSpec{Type: "LimeImages", Config: map[string]string{"num_sample": "100"}}},
			"", `spec.explainer.aix.config:`},
	} {
		tmpl, err := c.builtinExplainerTemplate(tc.isvc, tc.e)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		cfg := tmpl(9000, 9001)
		cfg.Args = withoutReplicaID(t, cfg)
		want := append(strings.Fields("serve --host 127.0.0.1 --http-port 9000 --grpc-port 9001 --log-format json"), strings.Fields(tc.args)...)
		if cfg.Command != "/bin/ferry" || !slices.Equal(cfg.Args, want) || cfg.Readiness == nil || cfg.Readiness.HTTPGet.Port != 9000 {
			t.Errorf("%s: %s %v\nwant args %v", tc.name, cfg.Command, cfg.Args, want)
		}
	}
}

func TestARTExplainerTemplate(t *testing.T) {
	c := &Controller{cfg: Config{FerryBinary: "/bin/ferry", PredictorAddr: "127.0.0.1:7000"}}
	isvc := &api.InferenceService{}
	isvc.Metadata.Name = "digits"
	art := func(typ string, cfg map[string]string) *api.ExplainerSpec {
		return &api.ExplainerSpec{ART: &api.ExplainerExtensionSpec{Type: typ, Config: cfg}}
	}
	tmpl, err := c.builtinExplainerTemplate(isvc, art("SquareAttack", map[string]string{"nb_classes": "10", "eps": "0.1"}))
	if err != nil {
		t.Fatal(err)
	}
	cfg := tmpl(9000, 9001)
	want := strings.Fields("attack --host 127.0.0.1 --http-port 9000 --log-format json --model-name digits --predictor-host 127.0.0.1:7000 SquareAttack --eps 0.1 --nb_classes 10")
	if cfg.Command != "/bin/ferry" || !slices.Equal(cfg.Args, want) || cfg.Readiness.HTTPGet.Port != 9000 {
		t.Errorf("%s %v\nwant args %v", cfg.Command, cfg.Args, want)
	}
	for _, tc := range []struct {
		e   *api.ExplainerSpec
		err string
	}{
		{art("SquareAttack", map[string]string{"max_samples": "3"}), `spec.explainer.art: attack config: unknown key "max_samples" for SquareAttack`},
		{art("FastGradientMethod", nil), `spec.explainer.art: attack config: type "FastGradientMethod"`},
	} {
		if _, err := c.builtinExplainerTemplate(isvc, tc.e); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("error %v, want %q", err, tc.err)
		}
	}
}

// withoutReplicaID checks a ferry serve child's --replica-id against its
// probes and returns its arguments without it.
func withoutReplicaID(t *testing.T, cfg supervisor.Config) []string {
	t.Helper()
	i := slices.Index(cfg.Args, "--replica-id")
	if i < 0 || i+1 >= len(cfg.Args) {
		t.Errorf("no --replica-id in %v", cfg.Args)
		return cfg.Args
	}
	id := cfg.Args[i+1]
	for _, p := range []*supervisor.Probe{cfg.Readiness, cfg.Liveness} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Header != server.HeaderReplicaID || p.HTTPGet.Value != id {
			t.Errorf("probe %+v does not expect replica %s", p, id)
		}
	}
	return slices.Delete(slices.Clone(cfg.Args), i, i+2)
}
