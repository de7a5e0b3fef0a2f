package treeshap

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/lightgbm"
	"github.com/ferryserve/ferry/internal/runtime/sklearn"
	"github.com/ferryserve/ferry/internal/tensor"
)

// readCSV reads comma-separated numbers ("nan" is NaN), skipping a header
// line when skipHeader is set.
func readCSV(t testing.TB, path string, skipHeader bool) [][]float64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if skipHeader {
		lines = lines[1:]
	}
	out := make([][]float64, len(lines))
	for i, l := range lines {
		for _, f := range strings.Split(l, ",") {
			v, err := strconv.ParseFloat(f, 64)
			if err != nil {
				t.Fatalf("%s line %d: %v", path, i, err)
			}
			out[i] = append(out[i], v)
		}
	}
	return out
}

// outputs runs m on rows and returns the named output, row by row.
func outputs(t testing.TB, m runtime.Model, rows [][]float64, name string) [][]float64 {
	t.Helper()
	var flat []float64
	for _, r := range rows {
		flat = append(flat, r...)
	}
	req := &runtime.Request{Inputs: []*tensor.Tensor{runtime.NewFP64("input-0", []int64{int64(len(rows)), int64(len(rows[0]))}, flat)}, Outputs: []string{name}}
	res, err := m.Predict(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := res.Outputs[0].Float64s()
	if err != nil {
		t.Fatal(err)
	}
	k := len(vals) / len(rows)
	out := make([][]float64, len(rows))
	for i := range out {
		out[i] = vals[i*k : (i+1)*k]
	}
	return out
}

// checkRows explains rows with the explainer the runtime model gives
// (the path ferry serve takes), compares each value with want (per row,
// per group: features then bias) within tol, and checks that every
// group's values add up to the model's own output within 1e-9.
func checkRows(t *testing.T, m runtime.Model, rows, want, model [][]float64, tol float64) {
	t.Helper()
	x, err := FromModel(m)
	if err != nil {
		t.Fatal(err)
	}
	f, w := x.NumFeatures(), x.Width()
	out := make([]float64, w)
	worst, worstSum := 0.0, 0.0
	for r, row := range rows {
		if err := x.Shap(row, out); err != nil {
			t.Fatal(err)
		}
		if len(want[r]) != w {
			t.Fatalf("row %d: golden has %d values, explainer %d", r, len(want[r]), w)
		}
		for i := range w {
			d := math.Abs(out[i] - want[r][i])
			worst = max(worst, d)
			if d > tol {
				t.Fatalf("row %d group %d column %d: %.17g, reference %.17g", r, i/(f+1), i%(f+1), out[i], want[r][i])
			}
		}
		for g := range x.NumGroups() {
			sum := 0.0
			for _, v := range out[g*(f+1) : (g+1)*(f+1)] {
				sum += v
			}
			d := math.Abs(sum - model[r][g])
			worstSum = max(worstSum, d)
			if d > 1e-9*max(1, math.Abs(model[r][g])) {
				t.Fatalf("row %d group %d: values sum to %.17g, the model gives %.17g", r, g, sum, model[r][g])
			}
		}
	}
	t.Logf("%d rows: worst |Ferry - reference| %.2g, worst |sum - model output| %.2g", len(rows), worst, worstSum)
}

// TestGoldenLightGBM explains the LightGBM runtime's golden models as
// ferry serve does (the loaded runtime model's TreeEnsemble) against
// contrib.csv, predict_contrib's layout, from testdata/gen/gen_lgb_sklearn.py.
func TestGoldenLightGBM(t *testing.T) {
	dirs, err := filepath.Glob("testdata/lightgbm/*")
	if err != nil || len(dirs) < 5 {
		t.Fatalf("LightGBM cases: %d (%v); run testdata/gen/gen_lgb_sklearn.py", len(dirs), err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			m, err := lightgbm.LoadFile(filepath.Join(dir, "model.txt"), lightgbm.Options{})
			if err != nil {
				t.Fatal(err)
			}
			rows := readCSV(t, filepath.Join(dir, "input.csv"), true)
			want := readCSV(t, filepath.Join(dir, "contrib.csv"), false)
			checkRows(t, m, rows, want, outputs(t, m, rows, lightgbm.OutputRawScore), 1e-9)
		})
	}
}

// TestLightGBMNumIteration: a model loaded to predict with fewer rounds
// is explained with those rounds only.
func TestLightGBMNumIteration(t *testing.T) {
	m, err := lightgbm.LoadFile("testdata/lightgbm/multiclass/model.txt", lightgbm.Options{NumIteration: 7})
	if err != nil {
		t.Fatal(err)
	}
	e, err := m.TreeEnsemble()
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Trees) != 21 {
		t.Fatalf("%d trees, want 7 rounds of 3", len(e.Trees))
	}
	rows := readCSV(t, "testdata/lightgbm/multiclass/input.csv", true)[:10]
	x, _ := FromModel(m)
	raw := outputs(t, m, rows, lightgbm.OutputRawScore)
	out := make([]float64, x.Width())
	for r, row := range rows {
		_ = x.Shap(row, out)
		for g := range 3 {
			sum := 0.0
			for _, v := range out[g*6 : (g+1)*6] {
				sum += v
			}
			if math.Abs(sum-raw[r][g]) > 1e-9 {
				t.Fatalf("row %d group %d: %v, raw score over 7 rounds %v", r, g, sum, raw[r][g])
			}
		}
	}
}

// TestLightGBMUnexplainable: linear trees and zero_as_missing splits load
// and predict, but TreeSHAP refuses them with the reason.
func TestLightGBMUnexplainable(t *testing.T) {
	for name, want := range map[string]string{"regression_linear_tree": "linear tree", "binary_zero_as_missing": "zero_as_missing"} {
		m, err := lightgbm.LoadFile(filepath.Join("../../runtime/lightgbm/testdata", name, "model.txt"), lightgbm.Options{})
		if err != nil {
			t.Skip("runtime golden model missing:", err)
		}
		_, err = FromModel(m)
		if !errors.Is(err, ErrNotTrees) || !errors.Is(err, runtime.ErrUnsupported) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// skGolden is shap.json from testdata/gen/gen_lgb_sklearn.py.
type skGolden struct {
	Rows     [][]float64   `json:"rows"`
	Shap     [][][]float64 `json:"shap"` // row, group, features then bias
	Expected []float64     `json:"expected_value"`
	Output   [][]float64   `json:"output"` // predict or predict_proba
}

// TestGoldenSklearn explains scikit-learn trees and forests loaded by the
// runtime against exact Shapley values enumerated in Python over the
// fitted tree_ arrays.
func TestGoldenSklearn(t *testing.T) {
	dirs, err := filepath.Glob("testdata/sklearn/*")
	if err != nil || len(dirs) < 6 {
		t.Fatalf("scikit-learn cases: %d (%v); run testdata/gen/gen_lgb_sklearn.py", len(dirs), err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dir, "model.joblib"))
			if err != nil {
				t.Fatal(err)
			}
			m, err := sklearn.Read(t.Context(), bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			var g skGolden
			b, err = os.ReadFile(filepath.Join(dir, "shap.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &g); err != nil {
				t.Fatal(err)
			}
			want := make([][]float64, len(g.Shap))
			for r, groups := range g.Shap {
				for _, v := range groups {
					want[r] = append(want[r], v...)
				}
			}
			name := sklearn.OutputPredict
			if len(g.Expected) > 1 {
				name = sklearn.OutputProba
			}
			model := outputs(t, m, g.Rows, name)
			for r := range model {
				for k, v := range model[r] {
					if math.Abs(v-g.Output[r][k]) > 1e-12 {
						t.Fatalf("row %d: runtime %v, scikit-learn %v", r, model[r], g.Output[r])
					}
				}
			}
			checkRows(t, m, g.Rows, want, model, 1e-9)
			x, _ := FromModel(m)
			for k, v := range x.ExpectedValue() {
				if math.Abs(v-g.Expected[k]) > 1e-12 {
					t.Fatalf("expected value %v, reference %v", x.ExpectedValue(), g.Expected)
				}
			}
		})
	}
}

// TestSklearnNonTreeRefused: a linear model has no trees to explain.
func TestSklearnNonTreeRefused(t *testing.T) {
	b, err := os.ReadFile("../../runtime/sklearn/testdata/models/ridge.joblib")
	if err != nil {
		t.Skip("runtime golden model missing:", err)
	}
	m, err := sklearn.Read(t.Context(), bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := FromModel(m); !errors.Is(err, ErrNotTrees) || !strings.Contains(err.Error(), "Ridge") {
		t.Fatalf("Ridge: %v", err)
	}
}
