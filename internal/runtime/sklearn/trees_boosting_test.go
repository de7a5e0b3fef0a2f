package sklearn

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/explain/treeshap/treeshaptest"
	"github.com/ferryserve/ferry/internal/runtime"
)

// ensembleRows are the golden rows of name, then rows on either side of
// every threshold of the first trees (the float32 rounding boundary for
// GradientBoosting, which compares float32 copies, the float64 threshold
// for HistGradientBoosting), then the first row with each feature NaN.
func ensembleRows(t *testing.T, name string, e *runtime.TreeEnsemble) [][]float64 {
	t.Helper()
	g := readGolden(t, name)
	var rows [][]float64
	for _, r := range g.X {
		row := make([]float64, len(r))
		for j, v := range r {
			row[j] = float64(v)
		}
		rows = append(rows, row)
	}
	base := rows[0]
	for _, tr := range e.Trees[:min(len(e.Trees), 4)] {
		for _, n := range tr.Nodes {
			if n.IsLeaf() || math.IsInf(n.Threshold, 0) {
				continue
			}
			for _, x := range []float64{n.Threshold, math.Nextafter(n.Threshold, math.Inf(1))} {
				r := append([]float64(nil), base...)
				r[n.Feature] = x
				rows = append(rows, r)
			}
		}
	}
	for j := range base {
		r := append([]float64(nil), base...)
		r[j] = math.NaN()
		rows = append(rows, r)
	}
	return rows
}

// TestBoostingEnsembleGolden lays the golden GradientBoosting and
// HistGradientBoosting models open and checks that the ensemble computes
// the runtime's raw margins (decision_function for classifiers, predict
// for these identity-link regressors) exactly on golden, threshold and
// NaN rows, and that TreeSHAP equals enumerated Shapley values within
// 1e-9 and adds up to the margins (treeshaptest.Check).
func TestBoostingEnsembleGolden(t *testing.T) {
	for _, name := range []string{"gbr", "gbr_huber", "gbc_bin", "gbc_exp", "gbc_zero", "gbc_multi",
		"hgbr", "hgbr_nan", "hgbc_bin", "hgbc_nan", "hgbc_multi"} {
		t.Run(name, func(t *testing.T) {
			m := load(t, name+".joblib")
			e, err := m.TreeEnsemble()
			if err != nil {
				t.Fatal(err)
			}
			out := OutputPredict
			if m.est.clf != nil {
				out = OutputDecision
			}
			rows := ensembleRows(t, name, e)
			checkMargins(t, m, e, rows, out)
			exact, sum := treeshaptest.Check(t, e, rows, 1e-9)
			t.Logf("%d rows, %d trees, %d margins: worst |TreeSHAP - enumeration| %.2g, worst |sum - margin| %.2g", len(rows), len(e.Trees), e.NumGroups, exact, sum)
		})
	}
}

// checkMargins compares the ensemble's margins at each row, after the
// model's MapFeatures, with the runtime's output out.
func checkMargins(t *testing.T, m *Model, e *runtime.TreeEnsemble, rows [][]float64, out string) {
	t.Helper()
	for i, r := range rows {
		res, err := m.Predict(t.Context(), golden{X: [][]num{toNums(r)}}.request(out))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := findOutput(t, res, out).Float64s()
		in, err := m.MapFeatures(r)
		if err != nil {
			t.Fatal(err)
		}
		got := treeshaptest.Margins(e, in)
		if len(want) != len(got) {
			t.Fatalf("row %d: %d margins, runtime %d", i, len(got), len(want))
		}
		for k := range got {
			if math.Abs(got[k]-want[k]) > 1e-12*max(1, math.Abs(want[k])) {
				t.Fatalf("row %d output %d: ensemble %.17g, runtime %.17g", i, k, got[k], want[k])
			}
		}
	}
}

// TestPipelineEnsemble: SimpleImputer and StandardScaler ahead of a
// random forest transform each feature alone, so the forest is laid open
// over the mapped features and gives the pipeline's predict_proba.
func TestPipelineEnsemble(t *testing.T) {
	m := load(t, "pipe_impute_std_rfc.joblib")
	e, err := m.TreeEnsemble()
	if err != nil {
		t.Fatal(err)
	}
	rows := ensembleRows(t, "pipe_impute_std_rfc", e)
	checkMargins(t, m, e, rows, OutputProba)
	// A missing value reaches the trees as the imputer's statistic.
	r := append([]float64(nil), rows[0]...)
	r[0] = math.NaN()
	in, _ := m.MapFeatures(r)
	if math.IsNaN(in[0]) {
		t.Fatalf("MapFeatures left NaN: %v", in)
	}
	if !math.IsNaN(r[0]) {
		t.Fatal("MapFeatures modified its input")
	}
}

// TestTreeEnsembleRefusals: models TreeSHAP cannot explain say why, by
// class or step name.
func TestTreeEnsembleRefusals(t *testing.T) {
	for file, want := range map[string]string{
		"pipe_pca_linreg.joblib":      "ends in a tree model, not in LinearRegression",
		"pipe_std_logreg.joblib":      "not in LogisticRegression",
		"knnc.joblib":                 "not KNeighborsClassifier",
		"pipe_norm_linreg.joblib":     "not in LinearRegression",
		"logreg_multi.joblib":         "gradient boosting",
		"pipe_poly_ridge.joblib":      "Ridge",
		"svc_rbf.joblib":              "not SVC",
		"gnb_bin.joblib":              "not GaussianNB",
		"pipe_minmax_clip_gnb.joblib": "GaussianNB",
	} {
		m := load(t, file)
		_, err := m.TreeEnsemble()
		if !errors.Is(err, runtime.ErrUnsupported) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want ErrUnsupported naming %q", file, err, want)
		}
	}
}
