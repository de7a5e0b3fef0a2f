package sklearn

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferryserve/ferry/internal/explain/treeshap/treeshaptest"
	"github.com/ferryserve/ferry/internal/runtime"
)

// TestTreeEnsembleGolden lays the golden tree models open and checks that
// the ensemble computes the runtime's predictions (predict for
// regressors, predict_proba for classifiers) on the golden rows and on
// rows at the float32 rounding boundary of every threshold, and that
// TreeSHAP equals enumerated Shapley values within 1e-9 and adds up to
// the outputs within 1e-6.
func TestTreeEnsembleGolden(t *testing.T) {
	for _, name := range []string{"dtr", "rfr", "etr", "dtc_bin", "dtc_multi", "etc", "rfc", "rfc_str"} {
		t.Run(name, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", "models", name+".joblib"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			e, err := ReadTreeEnsemble(t.Context(), f)
			if err != nil {
				t.Fatal(err)
			}
			g := readGolden(t, name)
			rows := make([][]float64, 0, len(g.X))
			for _, r := range g.X {
				row := make([]float64, len(r))
				for j, v := range r {
					row[j] = float64(v)
				}
				rows = append(rows, row)
			}
			// Rows on either side of each threshold's float32 boundary.
			for _, tr := range e.Trees[:min(len(e.Trees), 3)] {
				for _, n := range tr.Nodes {
					if n.IsLeaf() {
						continue
					}
					for _, x := range []float64{n.Threshold, math.Nextafter(n.Threshold, math.Inf(1))} {
						r := append([]float64(nil), rows[0]...)
						r[n.Feature] = x
						rows = append(rows, r)
					}
				}
			}
			m := load(t, name+".joblib")
			out := OutputPredict
			if e.NumGroups > 1 { // classifiers: one output per class
				out = OutputProba
			}
			for i, r := range rows {
				req := golden{X: [][]num{toNums(r)}}.request(out)
				res, err := m.Predict(t.Context(), req)
				if err != nil {
					t.Fatal(err)
				}
				want, _ := findOutput(t, res, out).Float64s()
				got := treeshaptest.Margins(e, r)
				if len(want) != len(got) {
					t.Fatalf("row %d: %d outputs, runtime %d", i, len(got), len(want))
				}
				for k := range got {
					if math.Abs(got[k]-want[k]) > 1e-12 {
						t.Fatalf("row %d output %d: ensemble %.17g, runtime %.17g", i, k, got[k], want[k])
					}
				}
			}
			exact, sum := treeshaptest.Check(t, e, rows, 1e-9)
			t.Logf("%d rows, %d trees, %d outputs: worst |TreeSHAP - enumeration| %.2g, worst |sum - output| %.2g", len(rows), len(e.Trees), e.NumGroups, exact, sum)
		})
	}
}

func toNums(r []float64) []num {
	out := make([]num, len(r))
	for i, v := range r {
		out[i] = num(v)
	}
	return out
}

func TestTreeEnsembleRefusesNonTrees(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "models", "logreg_multi.joblib"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := ReadTreeEnsemble(t.Context(), f); !errors.Is(err, runtime.ErrUnsupported) {
		t.Fatalf("logistic regression: %v, want ErrUnsupported", err)
	}
}

func TestFloat32Boundary(t *testing.T) {
	for _, thr := range []float64{0.5, -1.25, 0.1, 1e-40, 3.4e38, math.MaxFloat32, -3.4e38, 0} {
		b := float32Boundary(thr)
		if float64(float32(b)) > thr || float64(float32(math.Nextafter(b, math.Inf(1)))) <= thr {
			t.Errorf("threshold %g: boundary %.17g is not the last value rounding to <= it", thr, b)
		}
	}
}
