package main_test

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// irisBackground is an explainer.json of iris rows (KernelShap's
// background, AnchorTabular's training sample).
const irisBackground = `{"feature_names": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
 "data": [[5.1, 3.5, 1.4, 0.2], [4.9, 3.0, 1.4, 0.2], [7.0, 3.2, 4.7, 1.4], [6.4, 3.2, 4.5, 1.5],
          [6.3, 3.3, 6.0, 2.5], [5.8, 2.7, 5.1, 1.9], [5.7, 2.8, 4.1, 1.3], [6.5, 3.0, 5.8, 2.2]]}`

const irisRow = `[6.8, 2.8, 4.8, 1.4]`

type shapExplanation struct {
	Meta struct{ Name string }
	Data struct {
		ShapValues    [][][]float64 `json:"shap_values"`
		ExpectedValue []float64     `json:"expected_value"`
		FeatureNames  []string      `json:"feature_names"`
		Raw           struct {
			RawPrediction [][]float64 `json:"raw_prediction"`
		}
	}
}

func decodeShap(t *testing.T, code int, body []byte) shapExplanation {
	t.Helper()
	var e shapExplanation
	if code != 200 {
		t.Fatalf("explain: %d %s", code, body)
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("explain: %v\n%s", err, body)
	}
	return e
}

// checkShap checks one explained row: every output's values plus its
// expected value add up to want[output] (the predictor's own output, or
// a margin).
func checkShap(t *testing.T, e shapExplanation, name string, want []float64) {
	t.Helper()
	if e.Meta.Name != name || len(e.Data.ShapValues) != len(want) || len(e.Data.ExpectedValue) != len(want) {
		t.Fatalf("%s: %d outputs, want %d: %+v", name, len(e.Data.ShapValues), len(want), e)
	}
	for k, rows := range e.Data.ShapValues {
		if len(rows) != 1 || len(rows[0]) != 4 {
			t.Fatalf("%s output %d: %v", name, k, rows)
		}
		sum := e.Data.ExpectedValue[k]
		for _, v := range rows[0] {
			sum += v
		}
		if math.Abs(sum-want[k]) > 1e-6 {
			t.Errorf("%s output %d: values + expected = %v, want %v", name, k, sum, want[k])
		}
	}
}

// predictIris asks a V1 server for the class probabilities of irisRow.
func predictIris(t *testing.T, url string) []float64 {
	t.Helper()
	code, body := post(t, url, `{"instances": [`+irisRow+`]}`)
	var p struct{ Predictions [][]float64 }
	if err := json.Unmarshal(body, &p); code != 200 || err != nil || len(p.Predictions) != 1 || len(p.Predictions[0]) != 3 {
		t.Fatalf("predict: %d %v %s", code, err, body)
	}
	return p.Predictions[0]
}

// TestExplainStandalone runs `ferry explain` with KServe's explainer
// arguments beside a `ferry serve` predictor: it serves only :explain (V1
// and V2 paths) and its KernelShap values add up to the predictor's own
// outputs, which it read over V1.
func TestExplainStandalone(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ferry processes")
	}
	bin := buildFerry(t)
	models, _ := filepath.Abs("../../examples/models/xgboost-iris")
	pred := startServe(t, bin, "--model-dir", models, "--model-name", "iris")
	want := predictIris(t, pred.http+"/v1/models/iris:predict")

	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "explainer.json"), []byte(irisBackground), 0o644); err != nil {
		t.Fatal(err)
	}
	hp := freePort(t)
	x := startChild(t, bin, fmt.Sprintf("http://127.0.0.1:%d", hp), "explain", "--host", "127.0.0.1", "--model_name", "iris", "--http_port", fmt.Sprint(hp),
		"--predictor_host", pred.http[len("http://"):], "--storage_uri", data, "KernelShap", "--seed", "1")

	code, body := post(t, x.http+"/v1/models/iris:explain", `{"instances": [`+irisRow+`]}`)
	e := decodeShap(t, code, body)
	checkShap(t, e, "KernelShap", want)
	if e.Data.FeatureNames[2] != "petal_length" {
		t.Errorf("feature names %v", e.Data.FeatureNames)
	}
	code, body = post(t, x.http+"/v2/models/iris/explain", `{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": `+irisRow+`}]}`)
	e = decodeShap(t, code, body)
	checkShap(t, e, "KernelShap", want)
	// No model of its own: predict is not served here.
	if code, body = post(t, x.http+"/v1/models/iris:predict", `{"instances": [`+irisRow+`]}`); code != 404 {
		t.Errorf("predict on the explainer: %d %s", code, body)
	}
}

// startChild runs a ferry command that serves HTTP at url and waits until
// it is ready.
func startChild(t *testing.T, bin, url string, args ...string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(bin, args...), http: url, stderr: &syncBuffer{}, done: make(chan error, 1)}
	c.cmd.Stderr = c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() {
		_ = c.cmd.Process.Kill()
		<-c.done
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url + "/v2/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return c
			}
		}
		select {
		case err := <-c.done:
			t.Fatalf("ferry %s exited early: %v\n%s", args[0], err, c.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ferry %s not ready after 30s\n%s", args[0], c.stderr)
		}
		time.Sleep(20 * time.Millisecond) // bounded poll
	}
}

// TestUpExplainer applies an XGBoost predictor with an alibi explainer
// block under ferry up; :explain through the ingress answers with SHAP
// values: KernelShap (a black box calling the predictor, training data
// from storageUri), then TreeShap (the predictor's trees, exact).
func TestUpExplainer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ferry up and its replicas")
	}
	bin := buildFerry(t)
	tdir := t.TempDir()
	models, _ := filepath.Abs("../../examples/models/xgboost-iris")
	data := filepath.Join(tdir, "explainer")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "explainer.json"), []byte(irisBackground), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := func(explainer string) string {
		return fmt.Sprintf("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n  name: iris\nspec:\n  predictor:\n    xgboost:\n      storageUri: %s\n  explainer:\n    alibi:\n%s", models, explainer)
	}
	u := startUp(t, bin, filepath.Join(tdir, "data"), 0, 0, 0, "-f",
		writeYAML(t, tdir, "kernel.yaml", spec(fmt.Sprintf("      type: KernelShap\n      storageUri: %s\n      config:\n        seed: \"1\"\n", data))))
	u.waitStatus(t, "iris", "Ready", ready)

	code, _, body := u.infer(t, "", "/v1/models/iris:predict", `{"instances": [`+irisRow+`]}`)
	var p struct{ Predictions [][]float64 }
	if err := json.Unmarshal([]byte(body), &p); code != 200 || err != nil || len(p.Predictions) != 1 {
		t.Fatalf("predict: %d %v %s", code, err, body)
	}
	code, _, body = u.infer(t, "", "/v1/models/iris:explain", `{"instances": [`+irisRow+`]}`)
	checkShap(t, decodeShap(t, code, []byte(body)), "KernelShap", p.Predictions[0])

	// TreeShap: a new explainer revision; values add up to the margins,
	// whose softmax is the predictor's output.
	u.ferryCLI(t, bin, "apply", "-f", writeYAML(t, tdir, "tree.yaml", spec("      type: TreeShap\n")))
	u.waitStatus(t, "iris", "TreeShap revision ready", func(s isvcStatus) bool {
		return ready(s) && s.Status.Components["explainer"].LatestReadyRevision == "iris-explainer-00002"
	})
	code, _, body = u.infer(t, "", "/v1/models/iris:explain", `{"instances": [`+irisRow+`]}`)
	e := decodeShap(t, code, []byte(body))
	margins := e.Data.Raw.RawPrediction[0]
	checkShap(t, e, "TreeShap", margins)
	var z float64
	for _, m := range margins {
		z += math.Exp(m)
	}
	for k, m := range margins {
		if got := math.Exp(m) / z; math.Abs(got-p.Predictions[0][k]) > 1e-5 {
			t.Errorf("softmax(margins)[%d] = %v, predictor %v", k, got, p.Predictions[0][k])
		}
	}

	// An alibi config key Ferry does not take is refused by ferry apply,
	// naming the field; the service keeps its last good explainer.
	bad := exec.Command(bin, "apply", "-f", writeYAML(t, tdir, "bad.yaml", spec(fmt.Sprintf("      type: KernelShap\n      storageUri: %s\n      config:\n        max_samples_start: \"5\"\n", data))), "--server", u.api)
	bad.Env = u.env
	out, err := bad.CombinedOutput()
	if err == nil || !containsAll(string(out), "spec.explainer.alibi.config", "max_samples_start") {
		t.Errorf("apply of max_samples_start: %v\n%s", err, out)
	}
	if code, _, body := u.infer(t, "", "/v1/models/iris:explain", `{"instances": [`+irisRow+`]}`); code != 200 {
		t.Errorf("after the refused apply the explainer answers %d %s", code, body)
	}
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
