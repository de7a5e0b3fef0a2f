package onnx

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/tensor"
)

// goldenCase is one testdata/golden/<name>.json: the inputs fed to the
// model and the reference library's outputs (see testdata/gen/gen.py).
type goldenCase struct {
	Tolerance float64                `json:"tolerance"`
	Inputs    map[string]goldenValue `json:"inputs"`
	Outputs   map[string]goldenValue `json:"outputs"`
}

type goldenValue struct {
	Shape []int64         `json:"shape"`
	Dtype string          `json:"dtype"`
	Data  json.RawMessage `json:"data"`
}

func (g goldenValue) tensor(t *testing.T, name string) *tensor.Tensor {
	t.Helper()
	out := &tensor.Tensor{Name: name, Shape: g.Shape}
	var err error
	switch g.Dtype {
	case "float32":
		var f []float64
		f, err = floatsWithNaN(g.Data)
		f32 := make([]float32, len(f))
		for i, x := range f {
			f32[i] = float32(x)
		}
		out.Datatype, out.Data = tensor.FP32, f32
	case "float64":
		var f []float64
		f, err = floatsWithNaN(g.Data)
		out.Datatype, out.Data = tensor.FP64, f
	case "int64":
		var i []int64
		err = json.Unmarshal(g.Data, &i)
		out.Datatype, out.Data = tensor.Int64, i
	case "string":
		var s []string
		err = json.Unmarshal(g.Data, &s)
		b := make([][]byte, len(s))
		for i, x := range s {
			b[i] = []byte(x)
		}
		out.Datatype, out.Data = tensor.Bytes, b
	default:
		t.Fatalf("golden dtype %q", g.Dtype)
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// floatsWithNaN decodes a JSON array of numbers in which "NaN" stands for
// NaN (JSON has no literal for it).
func floatsWithNaN(raw json.RawMessage) ([]float64, error) {
	var items []any
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, err
	}
	out := make([]float64, len(items))
	for i, it := range items {
		switch v := it.(type) {
		case float64:
			out[i] = v
		case string:
			if v != "NaN" {
				return nil, fmt.Errorf("float element %q", v)
			}
			out[i] = math.NaN()
		default:
			return nil, fmt.Errorf("float element %v", it)
		}
	}
	return out, nil
}

func loadGolden(t *testing.T, name string) goldenCase {
	t.Helper()
	return loadGoldenFrom(t, "golden", name)
}

func loadGoldenFrom(t *testing.T, dir, name string) goldenCase {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", dir, name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var gc goldenCase
	if err := json.Unmarshal(raw, &gc); err != nil {
		t.Fatal(err)
	}
	return gc
}

func goldenNames(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.onnx"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden models: %v", err)
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = strings.TrimSuffix(filepath.Base(f), ".onnx")
	}
	return names
}

// compareTensor checks got against want: exact for labels, and within
// tol (absolute, or relative for values above 1) for numbers. It returns
// the largest difference seen.
func compareTensor(t *testing.T, got, want *tensor.Tensor, tol float64) float64 {
	t.Helper()
	if !slicesEqual(got.Shape, want.Shape) {
		t.Errorf("%s: shape %v, want %v", want.Name, got.Shape, want.Shape)
		return math.Inf(1)
	}
	if want.Datatype == tensor.Bytes || want.Datatype == tensor.Int64 {
		if got.Datatype != want.Datatype {
			t.Errorf("%s: datatype %s, want %s", want.Name, got.Datatype, want.Datatype)
			return math.Inf(1)
		}
		g, _ := json.Marshal(got.Data)
		w, _ := json.Marshal(want.Data)
		if string(g) != string(w) {
			t.Errorf("%s: got %s, want %s", want.Name, g, w)
		}
		return 0
	}
	g, err := got.Float64s()
	if err != nil {
		t.Fatal(err)
	}
	w, _ := want.Float64s()
	var worst float64
	for i := range w {
		if math.IsNaN(g[i]) && math.IsNaN(w[i]) {
			continue
		}
		d := math.Abs(g[i] - w[i])
		if !(d <= tol*max(1, math.Abs(w[i]))) {
			t.Errorf("%s[%d] = %g, want %g (diff %g > %g)", want.Name, i, g[i], w[i], d, tol)
		}
		worst = max(worst, d)
	}
	return worst
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

// runGolden loads every model in testdata/<dir> with the given engine and
// compares its outputs with the reference outputs recorded beside it.
func runGolden(t *testing.T, dir string, opts Options) {
	for _, name := range goldenNames(t, dir) {
		t.Run(name, func(t *testing.T) {
			gc := loadGoldenFrom(t, dir, name)
			if len(gc.Outputs) == 0 {
				t.Fatal("no reference outputs recorded (see TestRecordORTGolden)")
			}
			m, err := LoadFile(t.Context(), filepath.Join("testdata", dir, name+".onnx"), opts)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			req := &runtime.Request{}
			for in, v := range gc.Inputs {
				req.Inputs = append(req.Inputs, v.tensor(t, in))
			}
			res, err := m.Predict(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Outputs) < len(gc.Outputs) {
				t.Fatalf("got %d outputs, want %d", len(res.Outputs), len(gc.Outputs))
			}
			for _, out := range res.Outputs {
				want, ok := gc.Outputs[out.Name]
				if !ok {
					continue // not recorded: see TestRecordORTGolden
				}
				worst := compareTensor(t, out, want.tensor(t, out.Name), gc.Tolerance)
				t.Logf("%s: max abs diff %.3g", out.Name, worst)
			}
		})
	}
}

// TestGoldenGoEngine checks the Go engine against torch and sklearn
// (testdata/golden).
func TestGoldenGoEngine(t *testing.T) { runGolden(t, "golden", Options{Engine: EngineGo}) }

// TestORTGoldenGoEngine checks the Go engine against ONNX Runtime's outputs
// for the ai.onnx.ml options no Debian library evaluates (testdata/ortgolden).
func TestORTGoldenGoEngine(t *testing.T) { runGolden(t, "ortgolden", Options{Engine: EngineGo}) }
