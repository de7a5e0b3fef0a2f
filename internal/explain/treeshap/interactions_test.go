package treeshap

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// TestGoldenInteractions compares Interactions with libxgboost 1.7's
// pred_interactions=True (testdata/gen/gen_interactions.py) within 1e-5,
// and checks that each matrix row sums to that feature's SHAP value.
func TestGoldenInteractions(t *testing.T) {
	files, _ := filepath.Glob("testdata/golden/*/interactions.json")
	if len(files) < 5 {
		t.Fatalf("%d interaction goldens; run testdata/gen/gen_interactions.py", len(files))
	}
	for _, f := range files {
		dir := filepath.Dir(f)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			m, _ := loadGolden(t, dir)
			var g struct {
				Rows, Cols   int
				Input        f32s `json:"input"`
				Interactions f32s `json:"interactions"`
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &g); err != nil {
				t.Fatal(err)
			}
			x, err := FromModel(m)
			if err != nil {
				t.Fatal(err)
			}
			w, n := x.InteractionWidth(), x.NumFeatures()+1
			if len(g.Interactions) != g.Rows*w {
				t.Fatalf("golden has %d values for %d rows, want %d per row", len(g.Interactions), g.Rows, w)
			}
			out := make([]float64, w)
			shap := make([]float64, x.Width())
			worst := 0.0
			for r := range g.Rows {
				row := g.Input[r*g.Cols : (r+1)*g.Cols]
				if err := x.Interactions(row, out); err != nil {
					t.Fatal(err)
				}
				want := g.Interactions[r*w : (r+1)*w]
				for i := range out {
					d := math.Abs(out[i] - want[i])
					worst = max(worst, d)
					if d > 1e-5 {
						g, rest := i/(n*n), i%(n*n)
						t.Fatalf("row %d group %d [%d][%d]: %v, libxgboost %v", r, g, rest/n, rest%n, out[i], want[i])
					}
				}
				if err := x.Shap(row, shap); err != nil {
					t.Fatal(err)
				}
				for grp := range x.NumGroups() {
					for i := range n {
						sum := 0.0
						for _, v := range out[grp*n*n+i*n : grp*n*n+(i+1)*n] {
							sum += v
						}
						if d := math.Abs(sum - shap[grp*n+i]); d > 1e-9 {
							t.Fatalf("row %d group %d feature %d: interactions sum to %v, SHAP value %v", r, grp, i, sum, shap[grp*n+i])
						}
					}
				}
			}
			t.Logf("%d rows: worst |Ferry - libxgboost| %.2g", g.Rows, worst)
		})
	}
}
