package attack_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/attack"
)

func post(t *testing.T, url, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%d %s: %v", resp.StatusCode, b, err)
	}
	return resp.StatusCode, out
}

func attackServer(t *testing.T, host, model, typ string, kv map[string]string, pred attack.Predictor) string {
	t.Helper()
	cfg, err := attack.ParseConfig(typ, kv)
	if err != nil {
		t.Fatal(err)
	}
	pred.Host, pred.Model = host, model
	s := httptest.NewServer(attack.NewHandler(attack.HandlerConfig{Model: model, Attack: cfg, Predictor: pred, MaxInstances: 5}))
	t.Cleanup(s.Close)
	return s.URL
}

// TestHandlerKFServingContract sends KFServing's art-explainer request
// shapes to the handler in front of a real predictor.
func TestHandlerKFServingContract(t *testing.T) {
	host := startPredictor(t)
	url := attackServer(t, host, "iris", attack.TypeSquareAttack, map[string]string{"eps": "1", "max_iter": "100", "nb_classes": "3"}, attack.Predictor{})

	// One tabular instance and its label: scalars back.
	code, out := post(t, url+"/v1/models/iris:explain", `{"instances": [[6.0, 2.7, 5.1, 1.6], [1]]}`)
	if code != 200 {
		t.Fatalf("%d %v", code, out)
	}
	e := out["explanations"].(map[string]any)
	for _, k := range []string{"adversarial_example", "L2 error", "adversarial_prediction", "prediction", "success", "queries", "Linf error"} {
		if _, ok := e[k]; !ok {
			t.Errorf("no %q in %v", k, e)
		}
	}
	if ex, ok := e["adversarial_example"].([]any); !ok || len(ex) != 4 {
		t.Errorf("adversarial_example %v: want 4 numbers", e["adversarial_example"])
	}
	if _, ok := e["prediction"].(float64); !ok {
		t.Errorf("prediction %v: want a number", e["prediction"])
	}
	if e["success"] == true && e["adversarial_prediction"].(float64) == 1 {
		t.Errorf("success with adversarial prediction 1 = label: %v", e)
	}
	if li := e["Linf error"].(float64); li > 1 {
		t.Errorf("Linf error %v beyond eps 1", li)
	}

	// A batch in V2's explain path: lists back, examples nested as sent.
	code, out = post(t, url+"/v2/models/iris/explain", `{"instances": [[[6.0, 2.7, 5.1, 1.6], [5.1, 3.5, 1.4, 0.2]], [1, 0]]}`)
	if code != 200 {
		t.Fatalf("%d %v", code, out)
	}
	e = out["explanations"].(map[string]any)
	if ex := e["adversarial_example"].([]any); len(ex) != 2 || len(ex[0].([]any)) != 4 {
		t.Errorf("batch adversarial_example %v", ex)
	}
	if p := e["prediction"].([]any); len(p) != 2 || p[1].(float64) != 0 {
		t.Errorf("batch prediction %v", p)
	}

	// Without labels the predictor's own class is attacked.
	if code, out = post(t, url+"/v1/models/iris:explain", `{"instances": [[6.0, 2.7, 5.1, 1.6]]}`); code != 200 {
		t.Errorf("no labels: %d %v", code, out)
	}

	for _, c := range []struct {
		path, body string
		code       int
		want       string
	}{
		{"/v1/models/iris:explain", `{"instances": [[1, 2, 3, 4], [7]]}`, 400, "label 7 of instance 0: the predictor has 3 classes"},
		{"/v1/models/iris:explain", `{"instances": [[1, 2, 3], [1]]}`, 502, "predictor failed"},
		{"/v1/models/iris:explain", `{"instances": [[[1, 2], [3]], [1]]}`, 400, "rectangular"},
		{"/v1/models/iris:explain", `{"instances": [[1, 2, 3, 4], [1], [2]]}`, 400, `"instances" has 3 elements`},
		{"/v1/models/iris:explain", `{"inputs": []}`, 400, `unknown field "inputs"`},
		{"/v1/models/iris:explain", `{"instances": [[[1,2,3,4],[1,2,3,4],[1,2,3,4],[1,2,3,4],[1,2,3,4],[1,2,3,4]], [0,0,0,0,0,0]]}`, 400, "6 instances, at most 5"},
		{"/v1/models/iris:explain", `{"instances": [[1, 2, 3, 4], [1, 0]]}`, 400, "2 labels for inputs of shape [4]"},
		{"/v1/models/other:explain", `{"instances": [[1, 2, 3, 4], [1]]}`, 404, "model not found"},
		{"/v1/models/iris:predict", `{"instances": [[1, 2, 3, 4], [1]]}`, 400, ":explain only"},
	} {
		code, out := post(t, url+c.path, c.body)
		if code != c.code || !strings.Contains(out["error"].(string), c.want) {
			t.Errorf("%s %s: %d %v, want %d containing %q", c.path, c.body, code, out, c.code, c.want)
		}
	}
}

// TestHandlerImageRequest sends the examples' digits request
// ({"instances": [image, [label]]}) through V2 to the ONNX model.
func TestHandlerImageRequest(t *testing.T) {
	host := startPredictor(t)
	url := attackServer(t, host, "digits", attack.TypeSquareAttack, map[string]string{"eps": "0.1", "max_iter": "200", "clip_values": "0,1", "nb_classes": "10"},
		attack.Predictor{Protocol: attack.ProtocolV2, InputName: "input"})
	body, err := os.ReadFile("../../examples/attack/digits-request.json")
	if err != nil {
		t.Fatal(err)
	}
	code, out := post(t, url+"/v1/models/digits:explain", string(body))
	if code != 200 {
		t.Fatalf("%d %v", code, out)
	}
	e := out["explanations"].(map[string]any)
	ex := e["adversarial_example"].([]any)
	if len(ex) != 8 || len(ex[0].([]any)) != 8 {
		t.Fatalf("adversarial_example is not 8×8: %v", ex)
	}
	if e["Linf error"].(float64) > 0.1 {
		t.Errorf("Linf error %v beyond eps 0.1", e["Linf error"])
	}
	t.Logf("digits: prediction %v, adversarial %v, success %v, queries %v, L2 %v", e["prediction"], e["adversarial_prediction"], e["success"], e["queries"], e["L2 error"])
}

func TestHandlerPredictorDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	url := attackServer(t, addr, "m", attack.TypeHopSkipJump, nil, attack.Predictor{})
	if code, out := post(t, url+"/v1/models/m:explain", `{"instances": [[1, 2], [0]]}`); code != 502 || !strings.Contains(out["error"].(string), "predictor failed") {
		t.Errorf("%d %v", code, out)
	}
	resp, err := http.Get(url + "/v2/health/ready")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("ready: %d", resp.StatusCode)
	}
}
