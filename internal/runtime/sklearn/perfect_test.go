package sklearn

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/ferryserve/ferry/internal/cputime"
)

// walkSum is the reference the perfect walks must match bit for bit: each
// row walks the nodes and adds its trees' values in order, from zero.
func walkSum(trees []*tree, x mat, k int) []float64 {
	out := make([]float64, x.rows*k)
	for r := range x.rows {
		for _, t := range trees {
			for j, v := range t.value(x.row(r)) {
				out[r*k+j] += v
			}
		}
	}
	return out
}

// probeRows builds rows whose features sit on, just above and just below
// every threshold (in float64 and float32), plus NaN and ±Inf, mixed with
// random values.
func probeRows(trees []*tree, cols int, rng *rand.Rand) mat {
	var special []float64
	for _, t := range trees {
		for _, n := range t.nodes {
			if n.left < 0 {
				continue
			}
			v := n.threshold
			f := float64(float32(v))
			special = append(special, v, math.Nextafter(v, math.Inf(1)), math.Nextafter(v, math.Inf(-1)),
				f, float64(math.Nextafter32(float32(v), float32(math.Inf(1)))), float64(math.Nextafter32(float32(v), float32(math.Inf(-1)))))
		}
	}
	special = append(special, math.NaN(), math.Inf(1), math.Inf(-1), 0, math.Copysign(0, -1), math.MaxFloat64, -math.MaxFloat64)
	rows := 3 * blockRows * 4
	x := newMat(rows, cols)
	for i := range x.data {
		if rng.IntN(3) == 0 {
			x.data[i] = rng.NormFloat64() * 3
		} else {
			x.data[i] = special[rng.IntN(len(special))]
		}
	}
	return x
}

func sameBits(t *testing.T, what string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
			t.Fatalf("%s: value %d is %v, the node walk gives %v", what, i, got[i], want[i])
		}
	}
}

// checkPerfect holds sumTrees and leafValues, in every batch size path, to
// the node walk.
func checkPerfect(t *testing.T, name string, trees []*tree, cols int) {
	t.Helper()
	k := trees[0].nValues
	rng := rand.New(rand.NewPCG(7, uint64(len(trees))))
	x := probeRows(trees, cols, rng)
	want := walkSum(trees, x, k)
	for _, batch := range []int{1, 3, smallBatch, 9, blockRows, blockRows + 5, x.rows} {
		var got []float64
		for lo := 0; lo < x.rows; lo += batch {
			hi := min(lo+batch, x.rows)
			part := mat{rows: hi - lo, cols: cols, data: x.data[lo*cols : hi*cols]}
			out := make([]float64, part.rows*k)
			sumTrees(trees, part, out, k)
			got = append(got, out...)
		}
		sameBits(t, name+": sumTrees", got, want)
		if len(trees) == 1 {
			var got []float64
			for lo := 0; lo < x.rows; lo += batch {
				hi := min(lo+batch, x.rows)
				part := mat{rows: hi - lo, cols: cols, data: x.data[lo*cols : hi*cols]}
				out := make([]float64, part.rows*k)
				trees[0].leafValues(part, out)
				got = append(got, out...)
			}
			for r := range x.rows {
				sameBits(t, name+": leafValues", got[r*k:(r+1)*k], trees[0].value(x.row(r)))
			}
		}
	}
}

func modelTrees(t *testing.T, m *Model) []*tree {
	t.Helper()
	switch e := any(m.est.clf).(type) {
	case *forestClassifier:
		return e.trees
	case *treeClassifier:
		return []*tree{e.tree}
	}
	switch e := any(m.est.reg).(type) {
	case *forestRegressor:
		return e.trees
	case *treeRegressor:
		return []*tree{e.tree}
	}
	t.Fatalf("%s: no trees", m.class)
	return nil
}

func TestPerfectMatchesNodeWalk(t *testing.T) {
	for _, name := range []string{"dtc_bin", "dtc_multi", "dtr", "etc", "etr", "rfc", "rfc_str", "rfr", "pipe_impute_std_rfc", "bench_rf100.zlib"} {
		path := filepath.Join("testdata", "models", name+".joblib")
		m, err := Load(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		trees := modelTrees(t, m)
		perfect := 0
		for _, tr := range trees {
			if tr.perf != nil {
				perfect++
			}
		}
		if perfect == 0 {
			t.Errorf("%s: no tree laid out perfect", name)
		}
		// The pipeline's steps keep the feature count.
		checkPerfect(t, name, trees, m.nFeatures)
	}
}

// TestPerfectEdges covers what the golden models cannot: splits that send
// NaN left (sklearn >= 1.3), thresholds exact in float32, beyond float32's
// range and infinite, a stump and a leaf-only tree.
func TestPerfectEdges(t *testing.T) {
	split := func(f int32, thr float64, l, r int32, ml bool) node {
		return node{left: l, right: r, feature: f, threshold: thr, missingLeft: ml}
	}
	leaf := node{left: -1, right: -1}
	const cols = 3
	mk := func(nodes ...node) *tree {
		tr := &tree{nodes: nodes, nValues: 2, values: make([]float64, 2*len(nodes))}
		for i := range tr.values {
			tr.values[i] = float64(i+1) / 7
		}
		tr.buildPerfect(cols)
		return tr
	}
	trees := []*tree{
		mk(split(0, 0.5, 1, 2, true), leaf, split(1, 1e39, 3, 4, false), leaf, leaf),
		mk(split(2, -1e39, 1, 2, false), split(0, 0.25, 3, 4, true), leaf, leaf, leaf),
		mk(split(1, math.Inf(-1), 1, 2, true), leaf, split(0, -3.5, 3, 4, true), leaf, leaf),
		mk(split(0, math.MaxFloat32, 1, 2, false), leaf, leaf),
		mk(leaf),
	}
	for i, tr := range trees {
		if tr.perf == nil {
			t.Fatalf("tree %d not laid out perfect", i)
		}
	}
	// +Inf and NaN thresholds keep the node walk.
	inf := mk(split(0, math.Inf(1), 1, 2, true), leaf, leaf)
	nan := mk(split(0, math.NaN(), 1, 2, true), leaf, leaf)
	if inf.perf != nil || nan.perf != nil {
		t.Fatal("a +Inf or NaN threshold was laid out perfect")
	}
	trees = append(trees, inf, nan)
	checkPerfect(t, "edges", trees, cols)
	for i := range trees {
		checkPerfect(t, "edges single", trees[i:i+1], cols)
	}
}

// BenchmarkSumTrees times the forest walk alone on the benchmark forest.
func BenchmarkSumTrees(b *testing.B) {
	m, err := Load(context.Background(), "testdata/models/bench_rf100.zlib.joblib")
	if err != nil {
		b.Fatal(err)
	}
	trees := m.est.clf.(*forestClassifier).trees
	rng := rand.New(rand.NewPCG(1, 2))
	x := newMat(10000, m.nFeatures)
	for i := range x.data {
		x.data[i] = rng.NormFloat64()
	}
	out := make([]float64, x.rows*2)
	cpu0 := cputime.Process()
	for b.Loop() {
		clear(out)
		sumTrees(trees, x, out, 2)
	}
	b.ReportMetric(float64((cputime.Process()-cpu0).Nanoseconds())/float64(b.N*x.rows), "cpu-ns/row")
}
