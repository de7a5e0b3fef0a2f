package treeshap

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/sklearn"
)

// nanNum is a JSON number where null stands for NaN.
type nanNum float64

func (n *nanNum) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = nanNum(math.NaN())
		return nil
	}
	var f float64
	err := json.Unmarshal(b, &f)
	*n = nanNum(f)
	return err
}

// boostGolden is shap.json from testdata/gen/gen_sklearn_boosting.py.
type boostGolden struct {
	Model    string        `json:"model"`  // path from this package
	Output   string        `json:"output"` // the runtime output that is the margin
	Rows     [][]nanNum    `json:"rows"`
	Shap     [][][]float64 `json:"shap"` // row, margin, features then expected value
	Expected []float64     `json:"expected_value"`
	Margin   [][]float64   `json:"margin"` // scikit-learn's decision_function or predict
}

func readBoostGolden(t *testing.T, path string) (boostGolden, [][]float64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var g boostGolden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	rows := make([][]float64, len(g.Rows))
	for i, r := range g.Rows {
		for _, v := range r {
			rows[i] = append(rows[i], float64(v))
		}
	}
	return g, rows
}

// TestGoldenSklearnBoosting explains scikit-learn GradientBoosting and
// HistGradientBoosting models, and pipelines of per-feature steps ahead
// of them, loaded by the runtime as ferry serve loads them, against exact
// Shapley values of the raw margin enumerated in Python over the fitted
// estimators: within 1e-9, expected values within 1e-12, each row's values
// adding up to the runtime's own margin within 1e-9 (checkRows).
func TestGoldenSklearnBoosting(t *testing.T) {
	files, err := filepath.Glob("testdata/sklearn_boosting/*/shap.json")
	if err != nil || len(files) < 15 {
		t.Fatalf("gradient boosting cases: %d (%v); run testdata/gen/gen_sklearn_boosting.py", len(files), err)
	}
	for _, file := range files {
		t.Run(filepath.Base(filepath.Dir(file)), func(t *testing.T) {
			g, rows := readBoostGolden(t, file)
			m, err := sklearn.Load(t.Context(), g.Model)
			if err != nil {
				t.Fatal(err)
			}
			model := outputs(t, m, rows, g.Output)
			for r := range model {
				for k, v := range model[r] {
					if math.Abs(v-g.Margin[r][k]) > 1e-12*max(1, math.Abs(v)) {
						t.Fatalf("row %d: runtime %v, scikit-learn %v", r, model[r], g.Margin[r])
					}
				}
			}
			want := make([][]float64, len(g.Shap))
			for r, groups := range g.Shap {
				for _, v := range groups {
					want[r] = append(want[r], v...)
				}
			}
			checkRows(t, m, rows, want, model, 1e-9)
			x, _ := FromModel(m)
			for k, v := range x.ExpectedValue() {
				if math.Abs(v-g.Expected[k]) > 1e-12*max(1, math.Abs(v)) {
					t.Fatalf("expected value %v, reference %v", x.ExpectedValue(), g.Expected)
				}
			}
			checkInteractionSums(t, x, rows)
		})
	}
}

// checkInteractionSums: each feature's row of interaction values adds up
// to its SHAP value, also where the model maps its input first.
func checkInteractionSums(t *testing.T, x *Explainer, rows [][]float64) {
	t.Helper()
	f, n := x.NumFeatures(), x.NumFeatures()+1
	shap := make([]float64, x.Width())
	inter := make([]float64, x.InteractionWidth())
	for r, row := range rows[:min(len(rows), 4)] {
		if err := x.Shap(row, shap); err != nil {
			t.Fatal(err)
		}
		if err := x.Interactions(row, inter); err != nil {
			t.Fatal(err)
		}
		for g := range x.NumGroups() {
			for i := range f {
				sum := 0.0
				for _, v := range inter[g*n*n+i*n : g*n*n+(i+1)*n] {
					sum += v
				}
				if d := math.Abs(sum - shap[g*n+i]); d > 1e-9 {
					t.Fatalf("row %d group %d feature %d: interactions sum to %v, SHAP value %v", r, g, i, sum, shap[g*n+i])
				}
			}
		}
	}
}

// TestSklearnPipelineRefused: a Pipeline whose steps mix features ahead
// of its trees loads and predicts, but TreeSHAP refuses it naming the
// step; one ending in a linear model is refused naming that.
func TestSklearnPipelineRefused(t *testing.T) {
	for path, want := range map[string]string{
		"testdata/sklearn_boosting/refused_pipe_pca_dtr/model.joblib":  `step "pca" is PCA`,
		"../../runtime/sklearn/testdata/models/pipe_std_logreg.joblib": "ends in a tree model, not in LogisticRegression",
	} {
		m, err := sklearn.Load(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := FromModel(m); !errors.Is(err, ErrNotTrees) || !errors.Is(err, runtime.ErrUnsupported) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want a refusal naming %q", path, err, want)
		}
	}
}
