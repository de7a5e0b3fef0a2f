package lightgbm

import (
	"errors"
	"math"
	"os"
	"testing"

	"github.com/ferryserve/ferry/internal/explain/treeshap/treeshaptest"
	"github.com/ferryserve/ferry/internal/runtime"
)

// TestTreeEnsembleGolden lays every golden model open and checks that the
// ensemble computes the runtime's raw scores on the fixture rows (so its
// splits decide as LightGBM's do, NaN and categories included), that
// TreeSHAP equals enumerated Shapley values within 1e-9 and adds up to
// the margins within 1e-6.
func TestTreeEnsembleGolden(t *testing.T) {
	dirs, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		name := d.Name()
		if !d.IsDir() {
			continue
		}
		t.Run(name, func(t *testing.T) {
			e, err := ParseTreeEnsemble(readFile(t, name))
			// Linear leaves, and zero_as_missing splits that send zero
			// across the threshold, are not representable: refused.
			if name == "regression_linear_tree" || name == "binary_zero_as_missing" {
				if !errors.Is(err, runtime.ErrUnsupported) {
					t.Fatalf("%v, want ErrUnsupported", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			req, _, rows := inputRequest(t, name)
			req.Outputs = []string{OutputRawScore}
			res, err := loadCase(t, name).Predict(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := output(t, res, OutputRawScore).Float64s()
			data := req.Inputs[0].Data.([]float64)
			f := e.NumFeatures
			var xs [][]float64
			for r := range rows {
				x := data[r*f : (r+1)*f]
				xs = append(xs, x)
				for k, m := range treeshaptest.Margins(e, x) {
					if want := raw[r*e.NumGroups+k]; math.Abs(m-want) > 1e-9 {
						t.Fatalf("row %d group %d: ensemble margin %.17g, runtime %.17g", r, k, m, want)
					}
				}
			}
			exact, sum := treeshaptest.Check(t, e, xs, 1e-9)
			t.Logf("%d rows, %d trees: worst |TreeSHAP - enumeration| %.2g, worst |sum - margin| %.2g", rows, len(e.Trees), exact, sum)
		})
	}
}

func TestTreeEnsembleNeedsCounts(t *testing.T) {
	text := build(header("regression", 1, 2), "num_leaves=2\nsplit_feature=0\nthreshold=0.5\ndecision_type=2\nleft_child=-1\nright_child=-2\nleaf_value=1 2\n")
	if _, err := ParseTreeEnsemble([]byte(text)); !errors.Is(err, runtime.ErrUnsupported) {
		t.Fatalf("a model without counts: %v, want ErrUnsupported", err)
	}
}
