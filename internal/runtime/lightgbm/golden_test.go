package lightgbm

import (
	"context"
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/tensor"
)

// goldenTol is the tolerance the spec allows; the fixtures README says a
// correct evaluator matches exactly, and the test logs the largest error
// seen so a regression in precision shows before it fails.
const goldenTol = 1e-6

var goldenCases = []string{
	"bench_binary",
	"binary_nan",
	"binary_zero_as_missing",
	"lambdarank",
	"multiclass",
	"regression_categorical",
	"regression_linear_tree",
	"regression_use_missing_false",
}

// readCSV reads a fixture CSV (header line, then numbers; "nan" for
// missing) as a rows × cols matrix.
func readCSV(t testing.TB, path string) (header []string, rows, cols int, data []float64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	header = recs[0]
	for _, rec := range recs[1:] {
		for _, s := range rec {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			data = append(data, v)
		}
	}
	return header, len(recs) - 1, len(header), data
}

func loadCase(t testing.TB, name string) *Model {
	t.Helper()
	m, err := LoadFile(filepath.Join("testdata", name, "model.txt"), Options{})
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return m
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name, "model.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func inputRequest(t testing.TB, name string) (*runtime.Request, []string, int) {
	header, rows, cols, data := readCSV(t, filepath.Join("testdata", name, "input.csv"))
	in := &tensor.Tensor{Name: "input-0", Datatype: tensor.FP64, Shape: []int64{int64(rows), int64(cols)}, Data: data}
	return &runtime.Request{Inputs: []*tensor.Tensor{in}}, header, rows
}

func output(t testing.TB, res *runtime.Response, name string) *tensor.Tensor {
	t.Helper()
	for _, o := range res.Outputs {
		if o.Name == name {
			return o
		}
	}
	t.Fatalf("no output %q in response", name)
	return nil
}

// compare checks got against want and returns the largest absolute error.
func compare(t *testing.T, what string, got, want []float64) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	worst := 0.0
	for i := range want {
		d := math.Abs(got[i] - want[i])
		if !(d <= goldenTol) {
			t.Errorf("%s[%d] = %.17g, want %.17g", what, i, got[i], want[i])
		}
		worst = max(worst, d)
	}
	return worst
}

func TestGolden(t *testing.T) {
	for _, name := range goldenCases {
		t.Run(name, func(t *testing.T) {
			m := loadCase(t, name)
			req, header, rows := inputRequest(t, name)
			if got := m.Metadata().Properties["feature_names"]; got != strings.Join(header, ",") {
				t.Errorf("feature_names = %q, want %q", got, strings.Join(header, ","))
			}
			req.Outputs = []string{OutputPredict, OutputRawScore, OutputLeafIndex}
			res, err := m.Predict(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			_, wr, wc, want := readCSV(t, filepath.Join("testdata", name, "expected.csv"))
			pred := output(t, res, OutputPredict)
			wantShape := []int64{int64(wr)}
			if wc > 1 {
				wantShape = append(wantShape, int64(wc))
			}
			if !slicesEqual(pred.Shape, wantShape) || wr != rows {
				t.Fatalf("predict shape %v, want %v", pred.Shape, wantShape)
			}
			worst := compare(t, "predict", pred.Data.([]float64), want)
			rawPath := filepath.Join("testdata", name, "expected_raw.csv")
			if _, err := os.Stat(rawPath); err == nil {
				_, _, _, wantRaw := readCSV(t, rawPath)
				worst = max(worst, compare(t, "raw_score", output(t, res, OutputRawScore).Data.([]float64), wantRaw))
			} else {
				// Regression and ranking: the raw score is the output.
				worst = max(worst, compare(t, "raw_score", output(t, res, OutputRawScore).Data.([]float64), want))
			}
			_, _, lc, wantLeaf := readCSV(t, filepath.Join("testdata", name, "expected_leaf.csv"))
			leaves := output(t, res, OutputLeafIndex)
			if !slicesEqual(leaves.Shape, []int64{int64(rows), int64(lc)}) {
				t.Fatalf("leaf_index shape %v, want [%d %d]", leaves.Shape, rows, lc)
			}
			for i, l := range leaves.Data.([]int64) {
				if float64(l) != wantLeaf[i] {
					t.Errorf("row %d tree %d: leaf %d, want %v", i/lc, i%lc, l, wantLeaf[i])
				}
			}
			t.Logf("max abs error %.3g over %d rows", worst, rows)
		})
	}
}

// TestGoldenRawScoreParam checks that raw_score=true puts the CLI's
// predict_raw_score output into "predict".
func TestGoldenRawScoreParam(t *testing.T) {
	for _, name := range []string{"binary_nan", "multiclass", "binary_zero_as_missing"} {
		t.Run(name, func(t *testing.T) {
			m := loadCase(t, name)
			req, _, _ := inputRequest(t, name)
			req.Parameters = map[string]any{ParamRawScore: true}
			res, err := m.Predict(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Outputs) != 1 {
				t.Fatalf("got %d outputs, want only predict", len(res.Outputs))
			}
			_, _, _, want := readCSV(t, filepath.Join("testdata", name, "expected_raw.csv"))
			compare(t, "predict", output(t, res, OutputPredict).Data.([]float64), want)
		})
	}
}

// TestGoldenLayouts feeds the same rows as FP32-free per-feature columns
// and as a parallel-sized batch, and expects the same answers.
func TestGoldenLayouts(t *testing.T) {
	m := loadCase(t, "multiclass")
	req, _, rows := inputRequest(t, "multiclass")
	x := req.Inputs[0].Data.([]float64)
	cols := int(req.Inputs[0].Shape[1])
	_, _, _, want := readCSV(t, filepath.Join("testdata", "multiclass", "expected.csv"))

	var perFeature runtime.Request
	for j := range cols {
		col := make([]float64, rows)
		for i := range rows {
			col[i] = x[i*cols+j]
		}
		perFeature.Inputs = append(perFeature.Inputs, &tensor.Tensor{Name: "f" + strconv.Itoa(j), Datatype: tensor.FP64, Shape: []int64{int64(rows)}, Data: col})
	}
	res, err := m.Predict(context.Background(), &perFeature)
	if err != nil {
		t.Fatal(err)
	}
	compare(t, "per-feature predict", output(t, res, OutputPredict).Data.([]float64), want)

	// 40 copies of the 50 rows: 2000 rows, enough for several workers.
	const copies = 40
	big := make([]float64, 0, copies*len(x))
	bigWant := make([]float64, 0, copies*len(want))
	for range copies {
		big = append(big, x...)
		bigWant = append(bigWant, want...)
	}
	in := &tensor.Tensor{Name: "input-0", Datatype: tensor.FP64, Shape: []int64{int64(copies * rows), int64(cols)}, Data: big}
	res, err = m.Predict(context.Background(), &runtime.Request{Inputs: []*tensor.Tensor{in}})
	if err != nil {
		t.Fatal(err)
	}
	compare(t, "batch predict", output(t, res, OutputPredict).Data.([]float64), bigWant)
}

func slicesEqual(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
