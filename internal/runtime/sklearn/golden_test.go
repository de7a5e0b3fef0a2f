package sklearn

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/tensor"
)

// golden is one testdata/golden/<name>.json record written by gen.py.
type golden struct {
	Sklearn     string      `json:"sklearn"`
	X           [][]num     `json:"X"`
	Predict     []any       `json:"predict"`
	PredictKind string      `json:"predict_kind"`
	Proba       [][]float64 `json:"predict_proba"`
	Decision    any         `json:"decision_function"`
}

// notYet are golden cases for estimators Ferry does not evaluate yet; they
// must fail to load with the "not supported" error.
var notYet = map[string]bool{}

func readGolden(t testing.TB, name string) golden {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "golden", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	return g
}

// num is a float that may be written as the string "nan".
type num float64

func (n *num) UnmarshalJSON(b []byte) error {
	if string(b) == `"nan"` {
		*n = num(math.NaN())
		return nil
	}
	var f float64
	err := json.Unmarshal(b, &f)
	*n = num(f)
	return err
}

// modelFiles lists every saved layout of a golden case.
func modelFiles(t testing.TB, name string) []string {
	t.Helper()
	var out []string
	for _, pat := range []string{name + ".joblib", name + ".*.joblib", name + ".p?.pkl"} {
		m, _ := filepath.Glob(filepath.Join("testdata", "models", pat))
		out = append(out, m...)
	}
	if len(out) == 0 {
		t.Fatalf("no model files for %s", name)
	}
	return out
}

func (g golden) request(outputs ...string) *runtime.Request {
	rows, cols := len(g.X), len(g.X[0])
	data := make([]float64, 0, rows*cols)
	for _, r := range g.X {
		for _, v := range r {
			data = append(data, float64(v))
		}
	}
	return &runtime.Request{
		Inputs:  []*tensor.Tensor{runtime.NewFP64("input-0", []int64{int64(rows), int64(cols)}, data)},
		Outputs: outputs,
	}
}

func findOutput(t *testing.T, res *runtime.Response, name string) *tensor.Tensor {
	t.Helper()
	for _, o := range res.Outputs {
		if o.Name == name {
			return o
		}
	}
	t.Fatalf("no output %q in response", name)
	return nil
}

// relErr is |a-b| / max(1, |b|).
func relErr(a, b float64) float64 {
	if a == b {
		return 0
	}
	return math.Abs(a-b) / math.Max(1, math.Abs(b))
}

func flatten(v any) []float64 {
	switch v := v.(type) {
	case float64:
		return []float64{v}
	case []any:
		var out []float64
		for _, x := range v {
			out = append(out, flatten(x)...)
		}
		return out
	}
	return nil
}

func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/golden/*.json")
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	const tol = 1e-9
	worst := 0.0
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		g := readGolden(t, name)
		for _, path := range modelFiles(t, name) {
			t.Run(filepath.Base(path), func(t *testing.T) {
				m, err := Load(context.Background(), path)
				if notYet[name] {
					if !errors.Is(err, runtime.ErrUnsupported) || !strings.Contains(err.Error(), "is not supported; supported:") {
						t.Fatalf("want a not-supported error, got %v", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				outs := []string{OutputPredict}
				md := m.Metadata()
				for _, o := range md.Outputs {
					if o.Name != OutputPredict {
						outs = append(outs, o.Name)
					}
				}
				if g.Proba != nil && !slices.Contains(outs, OutputProba) {
					t.Errorf("model has predict_proba in sklearn but not in Ferry")
				}
				res, err := m.Predict(context.Background(), g.request(outs...))
				if err != nil {
					t.Fatal(err)
				}
				pred := findOutput(t, res, OutputPredict)
				switch g.PredictKind {
				case "str":
					want := make([]string, len(g.Predict))
					for i, v := range g.Predict {
						want[i] = v.(string)
					}
					got := make([]string, len(want))
					for i, b := range pred.Data.([][]byte) {
						got[i] = string(b)
					}
					if !slices.Equal(got, want) {
						t.Errorf("predict = %v, want %v", got, want)
					}
				case "int":
					got := pred.Data.([]int64)
					for i, v := range g.Predict {
						if got[i] != int64(v.(float64)) {
							t.Errorf("predict[%d] = %d, want %v", i, got[i], v)
						}
					}
				default:
					got := pred.Data.([]float64)
					for i, v := range g.Predict {
						e := relErr(got[i], v.(float64))
						worst = max(worst, e)
						if e > tol {
							t.Errorf("predict[%d] = %v, want %v", i, got[i], v)
						}
					}
				}
				check := func(out string, want []float64) {
					if want == nil {
						return
					}
					if !slices.Contains(outs, out) {
						t.Errorf("no %s output", out)
						return
					}
					got := findOutput(t, res, out).Data.([]float64)
					if len(got) != len(want) {
						t.Fatalf("%s has %d values, want %d", out, len(got), len(want))
					}
					for i := range want {
						e := relErr(got[i], want[i])
						worst = max(worst, e)
						if e > tol {
							t.Errorf("%s[%d] = %v, want %v", out, i, got[i], want[i])
						}
					}
				}
				check(OutputProba, flatten(anySlice(g.Proba)))
				if slices.Contains(outs, OutputDecision) || g.Decision != nil {
					check(OutputDecision, flatten(g.Decision))
				}
			})
		}
	}
	t.Logf("worst relative error over all golden outputs: %.3g", worst)
}

func anySlice(p [][]float64) any {
	if p == nil {
		return nil
	}
	out := make([]any, len(p))
	for i, r := range p {
		row := make([]any, len(r))
		for j, v := range r {
			row[j] = v
		}
		out[i] = row
	}
	return out
}
