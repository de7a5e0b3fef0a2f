package pmml

import (
	"math"
	"path/filepath"
	"strconv"
	"testing"
)

// TestBoostedXGBoost scores the ensembles testdata/gen/xgboost2pmml.py
// wrote from XGBoost 1.7 models (float fields, x-mathContext="float") and
// compares them with XGBoost's float32 predictions.
func TestBoostedXGBoost(t *testing.T) {
	for _, c := range []struct {
		name string
		cols map[string]string // expected column → output name
		ulps float64
	}{
		// Margins are float32 sums in XGBoost's order: bit-exact.
		{"xgb_regression", map[string]string{"y": "y"}, 0},
		// The logistic function goes through expf, which may round
		// differently from Go's float64 exp by an ulp.
		{"xgb_binary", map[string]string{"probability(1)": "probability(1)"}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join("testdata", "boosted", c.name)
			m := loadGz(t, filepath.Join(dir, "model.pmml.gz"))
			recs := goldenRecords(t, filepath.Join("..", "boosted", c.name))
			got, err := m.PredictRecords(t.Context(), recs)
			if err != nil {
				t.Fatal(err)
			}
			head, want := readCSVFile(t, filepath.Join(dir, "expected.csv"))
			worst := 0.0
			for i := range want {
				for j, col := range head {
					key, ok := c.cols[col]
					if !ok {
						continue
					}
					w, _ := strconv.ParseFloat(want[i][j], 64)
					g, _ := got[i][key].(float64)
					ulp := float64(math.Nextafter32(float32(w), float32(math.Inf(1))) - float32(w))
					d := math.Abs(g-w) / ulp
					worst = math.Max(worst, d)
					if d > c.ulps {
						t.Errorf("row %d %s: got %.9g, want %.9g (%.1f float32 ulps)", i, col, g, w, d)
					}
				}
			}
			t.Logf("%d rows, max error %.1f float32 ulps", len(want), worst)
		})
	}
	// The margin chain output agrees too.
	m := loadGz(t, filepath.Join("testdata", "boosted", "xgb_binary", "model.pmml.gz"))
	recs := goldenRecords(t, filepath.Join("..", "boosted", "xgb_binary"))
	_, want := readCSVFile(t, filepath.Join("testdata", "boosted", "xgb_binary", "expected.csv"))
	for i, rec := range recs {
		vals := make([]value, len(m.inputs))
		for j, in := range m.inputs {
			vals[j], _ = convert(in.field, rec[in.name])
		}
		s := newScope(nil, nil)
		for j, in := range m.inputs {
			s.set(in.name, vals[j])
		}
		_, inner, err := m.top.evaluate(s)
		if err != nil {
			t.Fatal(err)
		}
		w, _ := strconv.ParseFloat(want[i][0], 64)
		if g, _ := inner.get("xgbValue").number(); g != w {
			t.Errorf("row %d margin: got %.9g, want %.9g", i, g, w)
		}
	}
}
