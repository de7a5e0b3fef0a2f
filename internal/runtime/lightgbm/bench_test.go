package lightgbm

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/tensor"
)

// synthModel writes a binary model of nTrees trees with nLeaves leaves each
// over nFeatures features, grown leaf-wise from a fixed seed the way
// LightGBM grows trees, with a mix of NaN-left and NaN-right splits.
func synthModel(nTrees, nLeaves, nFeatures int) string {
	rng := rand.New(rand.NewPCG(1, 2))
	trees := make([]string, nTrees)
	for t := range trees {
		inner := nLeaves - 1
		feat := make([]string, inner)
		thr := make([]string, inner)
		dt := make([]string, inner)
		left := make([]int, inner)
		right := make([]int, inner)
		// Where each leaf hangs: node index and side (-1 for the root leaf).
		parent, isLeft := []int{-1}, []bool{false}
		for n := range inner {
			l := rng.IntN(n + 1) // split an existing leaf
			newLeaf := n + 1
			left[n], right[n] = ^l, ^newLeaf
			if p := parent[l]; p >= 0 {
				if isLeft[l] {
					left[p] = n
				} else {
					right[p] = n
				}
			}
			parent[l], isLeft[l] = n, true
			parent, isLeft = append(parent, n), append(isLeft, false)
			feat[n] = fmt.Sprint(rng.IntN(nFeatures))
			thr[n] = fmt.Sprint(rng.NormFloat64())
			dt[n] = []string{"8", "10"}[rng.IntN(2)]
		}
		leaves := make([]string, nLeaves)
		for i := range leaves {
			leaves[i] = fmt.Sprint(rng.NormFloat64() / 10)
		}
		trees[t] = fmt.Sprintf("num_leaves=%d\nnum_cat=0\nsplit_feature=%s\nthreshold=%s\ndecision_type=%s\nleft_child=%s\nright_child=%s\nleaf_value=%s",
			nLeaves, strings.Join(feat, " "), strings.Join(thr, " "), strings.Join(dt, " "),
			strings.Trim(fmt.Sprint(left), "[]"), strings.Trim(fmt.Sprint(right), "[]"), strings.Join(leaves, " "))
	}
	return build(header("binary sigmoid:1", 1, nFeatures), trees...)
}

func TestSynthModel(t *testing.T) {
	// The benchmark model must be a valid model, or the numbers mean nothing.
	m, err := Parse([]byte(synthModel(100, 31, 20)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Metadata().Properties["num_trees"]; got != "100" {
		t.Fatalf("num_trees = %s", got)
	}
}

func BenchmarkPredict(b *testing.B) {
	const features = 20
	m, err := Parse([]byte(synthModel(100, 31, features)), Options{})
	if err != nil {
		b.Fatal(err)
	}
	for _, rows := range []int{1, 10_000} {
		b.Run(fmt.Sprintf("trees=100/leaves=31/batch=%d", rows), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(3, 4))
			x := make([]float64, rows*features)
			for i := range x {
				x[i] = rng.NormFloat64()
			}
			in := &tensor.Tensor{Name: "input-0", Datatype: tensor.FP64, Shape: []int64{int64(rows), features}, Data: x}
			req := &runtime.Request{Inputs: []*tensor.Tensor{in}}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Predict(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
		})
	}
}

func BenchmarkParse(b *testing.B) {
	text := []byte(synthModel(100, 31, 20))
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(text, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestFastPathMatchesGeneric checks the grouped, branch-free walk of
// NaN-free rows against the general walk, row by row, bit for bit, on the
// synthetic model and every fixture model (which include categorical,
// Zero-missing and linear trees that must fall back).
func TestFastPathMatchesGeneric(t *testing.T) {
	models := map[string]*Model{}
	for _, name := range goldenCases {
		models[name] = loadCase(t, name)
	}
	synth, err := Parse([]byte(synthModel(30, 31, 7)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	models["synthetic"] = synth
	rng := rand.New(rand.NewPCG(5, 6))
	for name, m := range models {
		const rows = 1000
		n := m.NumFeatures()
		x := make([]float64, rows*n)
		for i := range x {
			switch rng.IntN(40) {
			case 0:
				x[i] = math.NaN()
			case 1:
				x[i] = 0
			default:
				x[i] = rng.NormFloat64() * 2
			}
			if i/n%3 != 0 && math.IsNaN(x[i]) {
				x[i] = 1 // two rows in three are NaN-free
			}
		}
		in := &tensor.Tensor{Name: "input-0", Datatype: tensor.FP64, Shape: []int64{rows, int64(n)}, Data: x}
		res, err := m.Predict(context.Background(), &runtime.Request{Inputs: []*tensor.Tensor{in}, Outputs: []string{OutputRawScore}})
		if err != nil {
			t.Fatal(err)
		}
		got := res.Outputs[0].Data.([]float64)
		k := m.b.treesPerIter
		for i := range rows {
			row := x[i*n : (i+1)*n]
			want := make([]float64, k)
			for j := range m.b.trees {
				tr := &m.b.trees[j]
				want[j%k] += tr.output(tr.leaf(row), row)
			}
			for c := range k {
				if got[i*k+c] != want[c] {
					t.Fatalf("%s row %d class %d: grouped %v, generic %v", name, i, c, got[i*k+c], want[c])
				}
			}
		}
	}
}
