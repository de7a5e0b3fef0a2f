package explain

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/lightgbm"
	"github.com/ferryserve/ferry/internal/runtime/sklearn"
	"github.com/ferryserve/ferry/internal/runtime/xgboost"
	"github.com/ferryserve/ferry/internal/tensor"
)

// v1Server is a loopback V1 predictor for a linear model 2·x0 - x1 + 0.5·x2.
func v1Server(t *testing.T, fail bool) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/models/lin:predict" || fail {
			http.Error(w, `{"error":"boom"}`, http.StatusInternalServerError)
			return
		}
		var req struct{ Instances [][]float64 }
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		preds := make([]float64, len(req.Instances))
		for i, x := range req.Instances {
			preds[i] = 2*x[0] - x[1] + 0.5*x[2]
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"predictions": preds})
	}))
	t.Cleanup(s.Close)
	return s
}

func background() *Data {
	d := &Data{FeatureNames: []string{"a", "b", "c"}}
	for i := range 40 {
		d.Rows = append(d.Rows, []float64{float64(i%7) - 3, float64(i%5) - 2, float64(i%3) - 1})
	}
	return d
}

func post(t *testing.T, h http.Handler, path, body string) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodPost, path, strings.NewReader(body)))
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s: %d %q", path, rec.Code, rec.Body.String())
	}
	return rec.Code, out
}

func handler(t *testing.T, o Options, host string, lend func(string) LendFunc) http.Handler {
	t.Helper()
	x, err := New(Config{Options: o, Predictor: func(name string) Predictor { return V1Predictor(http.DefaultClient, host, name) }, Lend: lend})
	if err != nil {
		t.Fatal(err)
	}
	return NewHandler(x, 0, 0, nil).Middleware(http.NotFoundHandler())
}

func TestKernelShapOverV1(t *testing.T) {
	s := v1Server(t, false)
	h := handler(t, Options{Type: TypeKernelShap, Config: map[string]string{"nsamples": "100"}, Data: background()}, s.URL, nil)
	code, out := post(t, h, "/v1/models/lin:explain", `{"instances": [[1, 2, 3]]}`)
	if code != 200 {
		t.Fatalf("%d %v", code, out)
	}
	data := out["data"].(map[string]any)
	vals := data["shap_values"].([]any)[0].([]any)[0].([]any)
	// A linear model's SHAP values are w·(x - mean background).
	mean := []float64{}
	for f := range 3 {
		m := 0.0
		for _, r := range background().Rows {
			m += r[f]
		}
		mean = append(mean, m/40)
	}
	w := []float64{2, -1, 0.5}
	x := []float64{1, 2, 3}
	for f := range 3 {
		if got, want := vals[f].(float64), w[f]*(x[f]-mean[f]); math.Abs(got-want) > 1e-9 {
			t.Errorf("feature %d: %v, want %v", f, got, want)
		}
	}
	if out["meta"].(map[string]any)["name"] != "KernelShap" || data["feature_names"].([]any)[1] != "b" {
		t.Fatalf("meta/feature names: %v", out)
	}
}

func TestAnchorOverV2Route(t *testing.T) {
	s := v1Server(t, false)
	h := handler(t, Options{Type: TypeAnchorTabular, Config: map[string]string{"seed": "1"}, Data: background()}, s.URL, nil)
	// 2·3 - (-2) + 0.5 = 8.5 → class 1 (whole? no: 8.5 ≥ 0.5).
	code, out := post(t, h, "/v2/models/lin/explain", `{"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [3, -2, 1]}]}`)
	if code != 200 {
		t.Fatalf("%d %v", code, out)
	}
	data := out["data"].(map[string]any)
	if p := data["precision"].(float64); p < 0.95 || len(data["anchor"].([]any)) == 0 {
		t.Fatalf("anchor: %v", data)
	}
}

func TestTreeShapInProcess(t *testing.T) {
	b, err := os.ReadFile("treeshap/testdata/golden/reg_squarederror/model.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := xgboost.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	lend := func(string) LendFunc {
		return func() (runtime.Model, func(), error) { return m, func() {}, nil }
	}
	h := handler(t, Options{Type: TypeTreeShap}, "unused", lend)
	code, out := post(t, h, "/v1/models/x:explain", `{"instances": [[0.5, null, -1, 2, 0], [1, 1, 1, 1, 1]]}`)
	if code != 200 {
		t.Fatalf("%d %v", code, out)
	}
	data := out["data"].(map[string]any)
	margins, _ := m.PredictMargins(t.Context(), []float32{0.5, float32(math.NaN()), -1, 2, 0, 1, 1, 1, 1, 1}, 2)
	for r := range 2 {
		sum := data["expected_value"].([]any)[0].(float64)
		for _, v := range data["shap_values"].([]any)[0].([]any)[r].([]any) {
			sum += v.(float64)
		}
		if math.Abs(sum-float64(margins[r])) > 1e-5 {
			t.Errorf("row %d: values sum to %v, margin %v", r, sum, margins[r])
		}
	}
	if code, out := post(t, h, "/v1/models/x:explain", `{"instances": [[1, 2]]}`); code != 400 || !strings.Contains(out["error"].(string), "instances[0]") {
		t.Fatalf("short row: %d %v", code, out)
	}
}

func TestErrors(t *testing.T) {
	s := v1Server(t, true)
	h := handler(t, Options{Type: TypeKernelShap, Data: background()}, s.URL, nil)
	code, out := post(t, h, "/v1/models/lin:explain", `{"instances": [[1, 2, 3]]}`)
	if code != http.StatusBadGateway || !strings.Contains(out["error"].(string), s.URL+"/v1/models/lin:predict") {
		t.Fatalf("failing predictor: %d %v", code, out)
	}
	for body, field := range map[string]string{
		`{"instances": "x"}`:                                 "instances",
		`{"instances": [[1], [1, 2]]}`:                       "instances[1]",
		`{"inputs": [{"shape": [2, 2], "data": [1, 2, 3]}]}`: "inputs[0].shape",
		`{}`: "instances",
	} {
		if code, out := post(t, h, "/v1/models/lin:explain", body); code != 400 || !strings.Contains(out["error"].(string), field) {
			t.Errorf("%s: %d %v", body, code, out)
		}
	}
	// Other routes pass through.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/models/lin:predict", nil))
	if rec.Code != 404 {
		t.Fatalf("predict route: %d", rec.Code)
	}
}

func TestConfigRefused(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Type: "Counterfactual"}, `type "Counterfactual"`},
		{Options{Type: TypeAnchorTabular, Config: map[string]string{"max_samples_start": "10"}, Data: background()}, "min_samples_start"},
		{Options{Type: TypeAnchorTabular, Config: map[string]string{"colour": "red"}, Data: background()}, `"colour"`},
		{Options{Type: TypeAnchorTabular, Config: map[string]string{"threshold": "high"}, Data: background()}, "threshold"},
		{Options{Type: TypeAnchorTabular, Config: map[string]string{"threshold": "2"}, Data: background()}, "threshold"},
		{Options{Type: TypeAnchorTabular}, "training rows"},
		{Options{Type: TypeKernelShap, Config: map[string]string{"nsamples": "-3"}, Data: background()}, "nsamples"},
		{Options{Type: TypeTreeShap, Config: map[string]string{"interaction": "true"}}, `TreeShap does not take "interaction"; it takes: interactions`},
		{Options{Type: TypeTreeShap}, "in this process"},
	} {
		_, err := New(Config{Options: tc.o, Predictor: func(string) Predictor { return nil }})
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v", tc.o, err)
		}
	}
}

func TestParseData(t *testing.T) {
	d, err := ParseData([]byte(`{"feature_names": ["a", "s"], "category_map": {"1": ["x", "y"]}, "data": [[1, 0], [null, 1]]}`))
	if err != nil || len(d.Rows) != 2 || !math.IsNaN(d.Rows[1][0]) || d.CategoryMap[1][1] != "y" {
		t.Fatalf("%+v %v", d, err)
	}
	if _, err := ParseData([]byte(`{"feature_names": ["a"], "data": [[1, 2]]}`)); err == nil {
		t.Fatal("names/columns mismatch accepted")
	}
}

func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{`{"instances": [[1, 2, null]]}`, `{"instances": [1, 2]}`, `{"inputs": [{"shape": [1, 2], "data": [[1, 2]]}]}`, `{"inputs": []}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rows, err := DecodeRequest(b)
		if err != nil {
			if !errors.Is(err, ErrBadInput) {
				t.Fatalf("error does not wrap ErrBadInput: %v", err)
			}
			return
		}
		if len(rows) == 0 || len(rows) > maxRows {
			t.Fatalf("%d rows", len(rows))
		}
		for _, r := range rows {
			if len(r) != len(rows[0]) || len(r) == 0 {
				t.Fatal("ragged rows")
			}
		}
	})
}

// TestTreeShapLightGBMAndSklearn serves :explain for models of the
// LightGBM and scikit-learn runtimes, as ferry serve lends them: the
// values of each output add up to the model's raw score (LightGBM) or
// predict_proba (scikit-learn).
func TestTreeShapLightGBMAndSklearn(t *testing.T) {
	lgb, err := lightgbm.LoadFile("treeshap/testdata/lightgbm/multiclass/model.txt", lightgbm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("treeshap/testdata/sklearn/rfc_multi/model.joblib")
	if err != nil {
		t.Fatal(err)
	}
	sk, err := sklearn.Read(t.Context(), bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	row := []float64{0.3, -1.2, 0.8, 0.1, -0.4}
	for _, tc := range []struct {
		m      runtime.Model
		output string
	}{{lgb, lightgbm.OutputRawScore}, {sk, sklearn.OutputProba}} {
		lend := func(string) LendFunc {
			return func() (runtime.Model, func(), error) { return tc.m, func() {}, nil }
		}
		h := handler(t, Options{Type: TypeTreeShap}, "unused", lend)
		code, out := post(t, h, "/v2/models/m/explain", `{"inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP64", "data": [0.3, -1.2, 0.8, 0.1, -0.4]}]}`)
		if code != 200 {
			t.Fatalf("%s: %d %v", tc.m.Metadata().Platform, code, out)
		}
		res, err := tc.m.Predict(t.Context(), &runtime.Request{Inputs: []*tensor.Tensor{runtime.NewFP64("x", []int64{1, 5}, row)}, Outputs: []string{tc.output}})
		if err != nil {
			t.Fatal(err)
		}
		want, _ := res.Outputs[0].Float64s()
		data := out["data"].(map[string]any)
		if len(data["shap_values"].([]any)) != 3 {
			t.Fatalf("%s: %d outputs, want 3", tc.m.Metadata().Platform, len(data["shap_values"].([]any)))
		}
		for g, vals := range data["shap_values"].([]any) {
			sum := data["expected_value"].([]any)[g].(float64)
			for _, v := range vals.([]any)[0].([]any) {
				sum += v.(float64)
			}
			if math.Abs(sum-want[g]) > 1e-9 {
				t.Errorf("%s output %d: values sum to %v, model %v", tc.m.Metadata().Platform, g, sum, want[g])
			}
		}
	}
}
