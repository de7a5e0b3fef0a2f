package xgboost

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/tensor"
)

// goldenCase is one case.json written by testdata/gen/gen.py: inputs and
// the outputs of XGBoost 1.7's Booster.predict.
type goldenCase struct {
	Objective    string   `json:"objective"`
	Booster      string   `json:"booster"`
	Rows         int      `json:"rows"`
	Cols         int      `json:"cols"`
	Input        f32s     `json:"input"`
	PredictShape []int64  `json:"predict_shape"`
	Predict      f32s     `json:"predict"`
	Margin       f32s     `json:"margin"`
	Formats      []string `json:"formats"`
}

// f32s reads gen.py's float32 arrays: shortest float32 decimal forms,
// parsed as float32 so no value is rounded twice; null is NaN.
type f32s []float32

func (f *f32s) UnmarshalJSON(b []byte) error {
	var nums []*json.Number
	if err := json.Unmarshal(b, &nums); err != nil {
		return err
	}
	out := make([]float32, len(nums))
	for i, n := range nums {
		out[i] = float32(math.NaN())
		if n != nil {
			v, err := strconv.ParseFloat(string(*n), 32)
			if err != nil {
				return err
			}
			out[i] = float32(v)
		}
	}
	*f = out
	return nil
}

func loadCases(t testing.TB) map[string]goldenCase {
	t.Helper()
	dirs, err := filepath.Glob("testdata/golden/*/case.json")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden cases (%v); run testdata/gen/gen.py", err)
	}
	cases := map[string]goldenCase{}
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var c goldenCase
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		cases[filepath.Base(filepath.Dir(p))] = c
	}
	return cases
}

// tolerance: probabilities (and other link outputs in [0, 1]) must agree
// to 1e-6 absolute; unbounded outputs (exp links) to 1e-6 relative.
func closeEnough(got, want float32) bool {
	if math.IsNaN(float64(want)) {
		return math.IsNaN(float64(got))
	}
	d := math.Abs(float64(got) - float64(want))
	return d <= 1e-6 || d <= 1e-6*math.Abs(float64(want))
}

func TestGolden(t *testing.T) {
	cases := loadCases(t)
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range cases {
			if !yield(k) {
				return
			}
		}
	})
	for _, name := range names {
		c := cases[name]
		for _, format := range c.Formats {
			t.Run(name+"/"+format, func(t *testing.T) {
				m, err := LoadFile(filepath.Join("testdata/golden", name, "model."+format))
				if err != nil {
					t.Fatal(err)
				}
				if got := string(m.Encoding()); got != format {
					t.Errorf("encoding %q, want %q", got, format)
				}
				md := m.Metadata()
				if md.Inputs[0].Shape[1] != int64(c.Cols) || md.Properties["objective"] != c.Objective || md.Properties["booster"] != c.Booster {
					t.Errorf("metadata %+v does not match case (cols %d, %s, %s)", md, c.Cols, c.Objective, c.Booster)
				}
				x := []float32(c.Input)
				req := &runtime.Request{
					Inputs:  []*tensor.Tensor{{Name: "input-0", Datatype: tensor.FP32, Shape: []int64{int64(c.Rows), int64(c.Cols)}, Data: x}},
					Outputs: []string{OutputPredict, OutputRawScore},
				}
				res, err := m.Predict(t.Context(), req)
				if err != nil {
					t.Fatal(err)
				}
				pred, raw := res.Outputs[0], res.Outputs[1]
				if !slices.Equal(pred.Shape, c.PredictShape) {
					t.Errorf("predict shape %v, want %v", pred.Shape, c.PredictShape)
				}
				if md.Outputs[0].Shape[0] != -1 || len(md.Outputs[0].Shape) != len(c.PredictShape) {
					t.Errorf("metadata predict shape %v, want rank %d", md.Outputs[0].Shape, len(c.PredictShape))
				}
				compare(t, "predict", pred.Data.([]float32), c.Predict)
				compare(t, "raw_score", raw.Data.([]float32), c.Margin)
			})
		}
	}
}

func compare(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	var maxErr float64
	bad := 0
	for i := range want {
		if !closeEnough(got[i], want[i]) {
			if bad < 5 {
				t.Errorf("%s[%d] = %v, want %v", what, i, got[i], want[i])
			}
			bad++
		}
		if d := math.Abs(float64(got[i]) - float64(want[i])); d > maxErr {
			maxErr = d
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values differ", what, bad, len(want))
	}
	t.Logf("%s: max abs error %.3g", what, maxErr)
}
