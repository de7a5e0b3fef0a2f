package lightgbm

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/tensor"
)

// FuzzParse feeds arbitrary bytes to the parser. Anything it accepts must
// evaluate without panicking; anything it rejects must be an
// ErrCorruptModel or ErrUnsupported error.
func FuzzParse(f *testing.F) {
	f.Add([]byte(build(header("regression", 1, 1), stump, constant)))
	f.Add([]byte(build(header("multiclassova num_class:2 sigmoid:1.5", 2, 1), stump, constant)))
	f.Add([]byte(build(header("binary sigmoid:1", 1, 1, "average_output"), stump, constant, stump)))
	f.Add([]byte(build(header("regression", 1, 2), `num_leaves=3
num_cat=2
split_feature=1 1
threshold=0 1
decision_type=1 1
left_child=-1 -2
right_child=1 -3
leaf_value=10 20 30
cat_boundaries=0 2 3
cat_threshold=33 2 4`)))
	f.Add([]byte(build(header("regression", 1, 2), numTree(0, "0")+"\nis_linear=1\nleaf_const=1 2\nnum_features=1 0\nleaf_features=1 \nleaf_coeff=0.5 ")))
	// One real model from each CLI case, cut after its first two trees so
	// the mutator spends its time on structure rather than on long arrays.
	for _, name := range goldenCases {
		s := string(readFile(f, name))
		if i := strings.Index(s, "Tree=2\n"); i > 0 {
			s = s[:i] + "end of trees\n"
		}
		s = strings.Replace(s, "tree_sizes=", "tree_sizes_cut=", 1)
		f.Add([]byte(s))
	}
	// The first four rows have no NaN, so they take the grouped walk where
	// the flat layout does not apply.
	rows := [][]float64{
		{0, 0, 0, 0, 0, 0},
		{-1, 1, 37, -0.5, 1e300, math.Inf(-1)},
		{1e-40, -1e-40, 2.5, 32, 31, math.Inf(1)},
		{0.5, -2, 1, 3, 0.25, -1e-36},
		{math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN()},
		{math.NaN(), 0, 1, math.NaN(), 4, 5},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data, Options{})
		if err != nil {
			if !errors.Is(err, runtime.ErrCorruptModel) && !errors.Is(err, runtime.ErrUnsupported) {
				t.Fatalf("error wraps neither ErrCorruptModel nor ErrUnsupported: %v", err)
			}
			return
		}
		n := m.NumFeatures()
		if n > 64 {
			return // valid, but too wide to be worth a request here
		}
		x := make([]float64, 0, len(rows)*n)
		for _, r := range rows {
			for j := range n {
				x = append(x, r[j%len(r)])
			}
		}
		in := &tensor.Tensor{Name: "input-0", Datatype: tensor.FP64, Shape: []int64{int64(len(rows)), int64(n)}, Data: x}
		req := &runtime.Request{Inputs: []*tensor.Tensor{in}, Outputs: []string{OutputPredict, OutputRawScore, OutputLeafIndex}}
		res, err := m.Predict(context.Background(), req)
		if err != nil {
			t.Fatalf("predict on a model that parsed: %v", err)
		}
		if got, want := res.Outputs[0].Len(), len(rows)*m.b.numClass; got != want {
			t.Fatalf("predict has %d values, want %d", got, want)
		}
		// The flat layout must agree with the node walk bit for bit: on
		// these rows (walkRow), on them repeated past a block's minimum
		// (walkBlock), and from the second round on (walk1).
		k := m.b.treesPerIter
		check := func(rep, start int) {
			xs := x
			for range rep - 1 {
				xs = append(xs, x...)
			}
			in := &tensor.Tensor{Name: "input-0", Datatype: tensor.FP64, Shape: []int64{int64(rep * len(rows)), int64(n)}, Data: xs}
			res, err := m.Predict(context.Background(), &runtime.Request{Inputs: []*tensor.Tensor{in}, Outputs: []string{OutputRawScore},
				Parameters: map[string]any{ParamStartIteration: start}})
			if err != nil {
				t.Fatalf("predict on a model that parsed: %v", err)
			}
			raw := res.Outputs[0].Data.([]float64)
			iters := len(m.b.trees)/k - start
			for i := range rep * len(rows) {
				r := i % len(rows)
				want := nodeWalkRaw(m, x[r*n:(r+1)*n], start*k, len(m.b.trees))
				for c := range k {
					if m.b.averageOutput {
						want[c] /= float64(iters)
					}
					if math.Float64bits(raw[i*k+c]) != math.Float64bits(want[c]) {
						t.Fatalf("%d rows from round %d, row %d class %d: raw %v, node walk %v", rep*len(rows), start, i, c, raw[i*k+c], want[c])
					}
				}
			}
		}
		check(1, 0)
		check(minBlock/len(rows)+1, 0)
		if len(m.b.trees)/k > 1 {
			check(1, 1)
			check(minBlock/len(rows)+1, 1)
		}
	})
}

// FuzzPredict drives a real categorical model with arbitrary feature
// values, which exercises the bitset lookups and float-to-int edges.
func FuzzPredict(f *testing.F) {
	m, err := LoadFile("testdata/regression_categorical/model.txt", Options{})
	if err != nil {
		f.Fatal(err)
	}
	seed := func(v ...float64) []byte {
		b := make([]byte, 0, 8*len(v))
		for _, x := range v {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
		}
		return b
	}
	f.Add(seed(0, 0, 37, 0))
	f.Add(seed(math.NaN(), 1, -0.5, 2))
	f.Add(seed(1e308, -1e308, 4294967296, math.Inf(1)))
	f.Fuzz(func(t *testing.T, raw []byte) {
		x := make([]float64, 4)
		for i := 0; i < 4 && 8*(i+1) <= len(raw); i++ {
			x[i] = math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
		}
		in := &tensor.Tensor{Name: "input-0", Datatype: tensor.FP64, Shape: []int64{1, 4}, Data: x}
		res, err := m.Predict(context.Background(), &runtime.Request{Inputs: []*tensor.Tensor{in}})
		if err != nil {
			t.Fatal(err)
		}
		// Every leaf value is finite, so every output must be.
		if v := res.Outputs[0].Data.([]float64)[0]; math.IsNaN(v) || math.IsInf(v, 0) {
			t.Fatalf("output %v for input %v", v, x)
		}
	})
}
