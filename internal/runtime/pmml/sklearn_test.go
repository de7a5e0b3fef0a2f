package pmml

import (
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestBoostedSklearn scores the ensembles testdata/gen/sklearn2pmml.py
// wrote from scikit-learn 1.2 models (a gradient-boosted modelChain with
// rescaled sums, and a random forest averaging tree probabilities) and
// compares them with scikit-learn's predictions.
func TestBoostedSklearn(t *testing.T) {
	for _, name := range []string{"sk_gbc", "sk_rf"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", "boosted", name)
			m := loadGz(t, filepath.Join(dir, "model.pmml.gz"))
			recs := goldenRecords(t, filepath.Join("..", "boosted", name))
			head, want := readCSVFile(t, filepath.Join(dir, "expected.csv"))
			worst := 0.0
			for i, rec := range recs {
				vals := make([]value, len(m.inputs))
				for j, in := range m.inputs {
					vals[j], _ = convert(in.field, rec[in.name])
				}
				sc, err := m.score(vals, nil)
				if err != nil {
					t.Fatal(err)
				}
				for j, col := range head {
					w, _ := strconv.ParseFloat(want[i][j], 64)
					var g float64
					switch {
					case col == "y":
						g, _ = sc.res.val.number()
						if g != w {
							t.Errorf("row %d: class %v, want %v", i, g, w)
						}
						continue
					case strings.HasPrefix(col, "probability("):
						g = sc.res.probs[col[len("probability("):len(col)-1]]
					case col == "decision_function":
						p := sc.res.probs["1"]
						g = math.Log(p / (1 - p))
						if math.Abs(g-w) > 1e-9 {
							t.Errorf("row %d: decision function %.17g, want %.17g", i, g, w)
						}
						continue
					}
					e := relErr(g, w)
					if math.Abs(w) < goldenAbsFloor && math.Abs(g) < goldenAbsFloor {
						e = 0
					}
					worst = math.Max(worst, e)
					if e > 1e-12 {
						t.Errorf("row %d %s: got %.17g, want %.17g", i, col, g, w)
					}
				}
			}
			t.Logf("%d rows, max relative error %.3g", len(recs), worst)
		})
	}
}
