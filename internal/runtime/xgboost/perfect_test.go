package xgboost

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// referenceMargins is the plainest evaluation there is: each row walks each
// tree node by node (leaf), adding leaf values in tree order. Every faster
// path must match it bit for bit.
func (b *booster) referenceMargins(x []float32, rows, cols int) []float32 {
	ng := b.ngroup
	out := make([]float32, rows*ng)
	for r := range rows {
		copy(out[r*ng:(r+1)*ng], b.base)
		for ti, t := range b.trees {
			v := b.leaf(t.root, x[r*cols:(r+1)*cols])
			if b.weights != nil {
				v = float32(v * b.weights[ti])
			}
			out[r*ng+int(t.group)] += v
		}
	}
	return out
}

// edgeInput draws rows whose values sit on and around the model's own
// thresholds, with NaN and infinities mixed in, so every split sees
// x == threshold, the floats either side of it and missing values.
func edgeInput(b *booster, rows int, rng *rand.Rand) []float32 {
	var thr []float32
	for _, n := range b.nodes {
		if n.feat&bitLeaf == 0 && n.feat&bitCategorical == 0 {
			thr = append(thr, n.value)
		}
	}
	x := make([]float32, rows*b.numFeature)
	for i := range x {
		switch p := rng.IntN(20); {
		case p == 0:
			x[i] = float32(math.NaN())
		case p == 1:
			x[i] = float32(math.Inf(1 - 2*rng.IntN(2)))
		case p < 12 && len(thr) > 0:
			t := thr[rng.IntN(len(thr))]
			x[i] = []float32{t, math.Nextafter32(t, float32(math.Inf(1))), math.Nextafter32(t, float32(math.Inf(-1)))}[rng.IntN(3)]
		default:
			x[i] = float32(rng.NormFloat64() * 3)
		}
	}
	return x
}

// TestPerfectMatchesNodeWalk checks the perfect layout and the eight-row
// walks against referenceMargins, bit for bit, on every golden model and
// the benchmark model, for batch sizes around the lane and block sizes.
func TestPerfectMatchesNodeWalk(t *testing.T) {
	models := map[string]*Model{"bench": benchModel(t)}
	for name, c := range loadCases(t) {
		m, err := LoadFile(filepath.Join("testdata/golden", name, "model."+c.Formats[0]))
		if err != nil {
			t.Fatal(err)
		}
		models[name] = m
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for name, m := range models {
		b := m.b
		if b.linear != nil {
			continue
		}
		perfect := 0
		for _, tr := range b.trees {
			if tr.perf >= 0 {
				perfect++
			}
		}
		t.Logf("%s: %d of %d trees perfect, %d B of perfect nodes beside %d B of nodes", name, perfect, len(b.trees), 8*len(b.perf), 16*len(b.nodes))
		for _, rows := range []int{1, 7, 8, 9, 64, 131} {
			x := edgeInput(b, rows, rng)
			got, err := m.PredictMargins(t.Context(), x, rows)
			if err != nil {
				t.Fatal(err)
			}
			want := b.referenceMargins(x, rows, b.numFeature)
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%s, %d rows: margin[%d] = %v, node walk gives %v", name, rows, i, got[i], want[i])
				}
			}
		}
	}
}

// TestPerfectFallback checks that trees the perfect layout cannot hold
// (a NaN or -Inf threshold, or too deep for their size) stay on the node
// walk and still evaluate like it.
func TestPerfectFallback(t *testing.T) {
	m := benchModel(t)
	b := m.b
	// Poison one split of the third tree, then lay the trees out again.
	for i := b.trees[2].root; ; i++ {
		if b.nodes[i].feat&bitLeaf == 0 {
			b.nodes[i].value = float32(math.Inf(-1))
			break
		}
	}
	b.buildPerfect()
	if b.trees[2].perf != -1 || b.trees[1].perf < 0 {
		t.Fatalf("perf offsets %d, %d: want the poisoned tree alone on the node walk", b.trees[1].perf, b.trees[2].perf)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	x := edgeInput(b, 67, rng)
	got, err := m.PredictMargins(t.Context(), x, 67)
	if err != nil {
		t.Fatal(err)
	}
	want := b.referenceMargins(x, 67, b.numFeature)
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("margin[%d] = %v, node walk gives %v", i, got[i], want[i])
		}
	}
}
