package fairness

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// A V1 predictor on loopback that answers class probabilities: class 1
// when the instance's second value is even, else class 0 (class 7 when
// the instance's first value is 9, to check the label checks).
func scorePredictor(t *testing.T, calls *int) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*calls++
		if r.URL.Path != "/v1/models/german-credit:predict" {
			http.Error(w, "wrong path "+r.URL.Path, http.StatusNotFound)
			return
		}
		var req struct{ Instances [][]float64 }
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		preds := make([]any, len(req.Instances))
		for i, in := range req.Instances {
			switch {
			case in[0] == 9:
				preds[i] = 7
			case int(in[1])%2 == 0:
				preds[i] = []float64{0.2, 0.8}
			default:
				preds[i] = []float64{0.9, 0.1}
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"predictions": preds})
	}))
	t.Cleanup(s.Close)
	return s
}

// TestHandlerAsksPredictor: a request with instances only gets its
// outputs from the predictor, and the same metrics as a request that
// carries those outputs.
func TestHandlerAsksPredictor(t *testing.T) {
	calls := 0
	pred := scorePredictor(t, &calls)
	h, err := Handler(HandlerConfig{Metrics: ageConfig(t), ModelName: "german-credit",
		Predict: V1Predictor(http.DefaultClient, strings.TrimPrefix(pred.URL, "http://"), "german-credit")})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	url := srv.URL + "/v1/models/german-credit:explain"

	code, asked := post(t, url, `{"instances": [[1,0],[1,1],[1,2],[1,3],[0,10],[0,11],[0,12],[0,13]]}`)
	if code != 200 || calls != 1 {
		t.Fatalf("%d %v after %d predictor calls", code, asked, calls)
	}
	code, given := post(t, url, `{"instances": [[1,0],[1,1],[1,2],[1,3],[0,10],[0,11],[0,12],[0,13]], "outputs": [1,0,1,0,1,0,1,0]}`)
	if code != 200 || calls != 1 {
		t.Fatalf("%d %v; a request with outputs called the predictor", code, given)
	}
	if !reflect.DeepEqual(asked, given) {
		t.Errorf("asked the predictor: %v\ngiven outputs: %v", asked, given)
	}
	if code, out := post(t, url, `{"instances": [[9, 0]]}`); code != http.StatusBadGateway || !strings.Contains(out["error"].(string), "predictor outputs") {
		t.Errorf("label 7 from the predictor: %d %v", code, out)
	}
	pred.Close()
	if code, out := post(t, url, `{"instances": [[1, 0]]}`); code != http.StatusBadGateway || !strings.Contains(out["error"].(string), "predictor failed") {
		t.Errorf("predictor down: %d %v", code, out)
	}
}
