package controlplane

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/explain"
)

// TestAnchorTextExplainerTemplate runs an alibi AnchorText block as a
// stand-alone ferry serve explainer against the predictor: no training
// data is needed (a storageUri, Alibi's explainer.dill, is not passed
// on), config keys pass through sorted, and keys Ferry does not honour
// are refused by name.
func TestAnchorTextExplainerTemplate(t *testing.T) {
	c := &Controller{cfg: Config{FerryBinary: "/bin/ferry", PredictorAddr: "127.0.0.1:7000"}}
	isvc := &api.InferenceService{Spec: api.InferenceServiceSpec{Predictor: api.PredictorSpec{
		SKLearn: &api.PredictorExtensionSpec{StorageURI: "s3://b/moviesentiment"}}}}
	isvc.Metadata.Name = "moviesentiment"
	text := func(uri string, cfg map[string]string) *api.ExplainerSpec {
		return &api.ExplainerSpec{Alibi: &api.ExplainerExtensionSpec{Type: "AnchorText", StorageURI: uri, Config: cfg}}
	}
	for _, tc := range []struct {
		name string
		e    *api.ExplainerSpec
		args string
	}{
		{"no storage", text("", nil), "--predictor-host 127.0.0.1:7000 --explainer-type AnchorText"},
		{"dill storage", text("gs://b/moviesentiment-explainer", map[string]string{"threshold": "0.9", "seed": "1"}),
			"--predictor-host 127.0.0.1:7000 --explainer-type AnchorText --explainer-config seed=1 --explainer-config threshold=0.9"},
	} {
		tmpl, err := c.builtinExplainerTemplate(isvc, tc.e)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		cfg := tmpl(9000, 9001)
		cfg.Args = withoutReplicaID(t, cfg)
		want := append(strings.Fields("serve --host 127.0.0.1 --http-port 9000 --grpc-port 9001 --log-format json"), strings.Fields(tc.args)...)
		if !slices.Equal(cfg.Args, want) {
			t.Errorf("%s: args %v\nwant %v", tc.name, cfg.Args, want)
		}
	}
	for key, want := range map[string]string{
		"use_similarity_proba": `spec.explainer.alibi.config: AnchorText does not take "use_similarity_proba": Ferry samples with UNK only`,
		"max_samples_start":    `spec.explainer.alibi.config: AnchorText does not take "max_samples_start": Alibi's name is min_samples_start`,
		"thresold":             `spec.explainer.alibi.config: AnchorText does not take "thresold"; it takes: threshold,`,
	} {
		_, err := c.builtinExplainerTemplate(isvc, text("", map[string]string{key: "1"}))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", key, err, want)
		}
	}
}

// TestAnchorTextExplainerArgsExplain builds the explainer the child
// builds from the template's arguments (type and config entries, V1
// texts to the predictor address) and explains a text against a
// loopback predictor that says 1 exactly when the text holds "good".
func TestAnchorTextExplainerArgsExplain(t *testing.T) {
	pred := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Instances []string }
		if r.URL.Path != "/v1/models/movie:predict" || json.NewDecoder(r.Body).Decode(&req) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		out := make([]int, len(req.Instances))
		for i, s := range req.Instances {
			if slices.Contains(strings.Fields(s), "good") {
				out[i] = 1
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"predictions": out})
	}))
	defer pred.Close()
	c := &Controller{cfg: Config{FerryBinary: "/bin/ferry", PredictorAddr: pred.Listener.Addr().String()}}
	isvc := &api.InferenceService{}
	isvc.Metadata.Name = "movie"
	tmpl, err := c.builtinExplainerTemplate(isvc, &api.ExplainerSpec{Alibi: &api.ExplainerExtensionSpec{
		Type: "AnchorText", Config: map[string]string{"seed": "3", "threshold": "0.95"}}})
	if err != nil {
		t.Fatal(err)
	}
	var typ, host string
	var pairs []string
	args := tmpl(9000, 9001).Args
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--explainer-type":
			typ = args[i+1]
		case "--predictor-host":
			host = args[i+1]
		case "--explainer-config":
			pairs = append(pairs, args[i+1])
		}
	}
	conf, err := explain.ParseConfig(pairs)
	if err != nil {
		t.Fatal(err)
	}
	x, err := explain.New(explain.Config{Options: explain.Options{Type: typ, Config: conf},
		TextPredictor: func(name string) explain.TextPredictor {
			return explain.V1TextPredictor(http.DefaultClient, host, name)
		}})
	if err != nil {
		t.Fatal(err)
	}
	exp, err := x.ExplainText(t.Context(), "movie", []string{"a good film with a dull plot"})
	if err != nil {
		t.Fatal(err)
	}
	d := exp.Data.(*explain.AnchorTextData)
	if !slices.Equal(d.Anchor, []string{"good"}) || d.Precision < 0.95 || exp.Meta.Name != "AnchorText" || exp.Meta.Params["seed"] != "3" {
		t.Fatalf("explanation %+v, data %+v", exp.Meta, d)
	}
}
