package lightgbm

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/tensor"
)

// edgeThresholds are thresholds where the flat layout's folding of missing
// values could go wrong: infinities, zero and the zero-as-missing band.
var edgeThresholds = []float64{math.Inf(1), math.Inf(-1), 0, zeroThreshold, -zeroThreshold, 1e-40, -1e-40, 1e300}

// randomTree writes a random tree of up to nLeaves leaves over nFeatures
// features in model.txt form, its splits of every missing type and
// default side; cat > 0 makes about one split in cat categorical, and
// nanThr puts a NaN threshold on one split.
func randomTree(rng *rand.Rand, nLeaves, nFeatures, cat int, nanThr bool) string {
	nl := 1 + rng.IntN(nLeaves)
	inner := nl - 1
	feat := make([]string, inner)
	thr := make([]string, inner)
	dt := make([]string, inner)
	left := make([]int, inner)
	right := make([]int, inner)
	parent, isLeft := []int{-1}, []bool{false}
	var catBounds, catWords []string
	catBounds = append(catBounds, "0")
	for n := range inner {
		l := rng.IntN(n + 1)
		left[n], right[n] = ^l, ^(n + 1)
		if p := parent[l]; p >= 0 {
			if isLeft[l] {
				left[p] = n
			} else {
				right[p] = n
			}
		}
		parent[l], isLeft[l] = n, true
		parent, isLeft = append(parent, n), append(isLeft, false)
		feat[n] = strconv.Itoa(rng.IntN(nFeatures))
		if cat > 0 && rng.IntN(cat) == 0 {
			thr[n] = strconv.Itoa(len(catBounds) - 1)
			dt[n] = "1"
			catWords = append(catWords, strconv.FormatUint(uint64(rng.Uint32()), 10))
			catBounds = append(catBounds, strconv.Itoa(len(catWords)))
			continue
		}
		v := rng.NormFloat64()
		if rng.IntN(4) == 0 {
			v = edgeThresholds[rng.IntN(len(edgeThresholds))]
		}
		thr[n] = strconv.FormatFloat(v, 'g', -1, 64)
		// Missing type (bits 2-3) None, Zero or NaN; default left (bit 1).
		dt[n] = strconv.Itoa(4*rng.IntN(3) + 2*rng.IntN(2))
	}
	if nanThr && inner > 0 {
		n := rng.IntN(inner)
		if dt[n] != "1" {
			thr[n] = "nan"
		}
	}
	leaves := make([]string, nl)
	for i := range leaves {
		leaves[i] = strconv.FormatFloat(rng.NormFloat64()/10, 'g', -1, 64)
	}
	ints := func(v []int) string { return strings.Trim(fmt.Sprint(v), "[]") }
	s := fmt.Sprintf("num_leaves=%d\nnum_cat=%d\nsplit_feature=%s\nthreshold=%s\ndecision_type=%s\nleft_child=%s\nright_child=%s\nleaf_value=%s",
		nl, len(catWords), strings.Join(feat, " "), strings.Join(thr, " "), strings.Join(dt, " "), ints(left), ints(right), strings.Join(leaves, " "))
	if len(catWords) > 0 {
		s += "\ncat_boundaries=" + strings.Join(catBounds, " ") + "\ncat_threshold=" + strings.Join(catWords, " ")
	}
	return s
}

// edgeRows returns rows that put every feature of m on, just below and just
// above every threshold of m's trees, missing, zero-like and infinite,
// mixed with random values.
func edgeRows(rng *rand.Rand, m *Model, rows int) []float64 {
	var thresholds []float64
	for _, t := range m.b.trees {
		for _, n := range t.nodes {
			v := n.threshold
			thresholds = append(thresholds, v, math.Nextafter(v, math.Inf(-1)), math.Nextafter(v, math.Inf(1)))
		}
	}
	special := []float64{math.NaN(), math.Inf(1), math.Inf(-1), 0, math.Copysign(0, -1),
		1e-40, -1e-40, zeroThreshold, -zeroThreshold, 1, 2, 37, 31.5, -1}
	nf := m.NumFeatures()
	x := make([]float64, rows*nf)
	for i := range x {
		switch rng.IntN(3) {
		case 0:
			x[i] = rng.NormFloat64()
		case 1:
			x[i] = thresholds[rng.IntN(len(thresholds))]
		default:
			x[i] = special[rng.IntN(len(special))]
		}
	}
	return x
}

// nodeWalkRaw is the reference: every tree of [start, end) through the node
// walk, summed per class in file order.
func nodeWalkRaw(m *Model, row []float64, start, end int) []float64 {
	k := m.b.treesPerIter
	s := make([]float64, k)
	for t := start; t < end; t++ {
		tr := &m.b.trees[t]
		s[t%k] += tr.output(tr.leaf(row), row)
	}
	return s
}

// TestFlatMatchesNodeWalk holds the flat layout's two walks (across rows in
// batches of 8 or more, across trees below) to the node walk, bit for bit,
// on every golden model and on random models with every missing type,
// default side and edge threshold, some with categorical splits or a NaN
// threshold that keep their trees on the node walk, in batches on both
// sides of the block size and with iteration ranges.
func TestFlatMatchesNodeWalk(t *testing.T) {
	models := map[string]*Model{}
	for _, name := range goldenCases {
		models[name] = loadCase(t, name)
	}
	rng := rand.New(rand.NewPCG(15, 7))
	for i, c := range []struct{ k, cat int }{{1, 0}, {1, 0}, {3, 0}, {1, 5}, {2, 3}} {
		var trees []string
		for j := range 24 * c.k {
			trees = append(trees, randomTree(rng, 40, 6, c.cat, j%7 == 3 && i%2 == 1))
		}
		head := header("binary sigmoid:1", 1, 6)
		if c.k > 1 {
			head = header(fmt.Sprintf("multiclass num_class:%d", c.k), c.k, 6)
		}
		models[fmt.Sprintf("random%d", i)] = mustParse(t, build(head, trees...), Options{})
	}
	laidOut := 0
	for name, m := range models {
		t.Run(name, func(t *testing.T) {
			if m.b.ftrees == nil {
				t.Fatal("no tree laid out")
			}
			for _, ft := range m.b.ftrees {
				if ft.size > 0 {
					laidOut++
				}
			}
			nf, k, nt := m.NumFeatures(), m.b.treesPerIter, len(m.b.trees)
			const rows = 300
			x := edgeRows(rng, m, rows)
			iters := nt / k
			for _, batch := range []int{1, 3, 7, 8, 9, 64, 65, rows} {
				for _, r := range []struct{ start, num int }{{0, 0}, {1, iters - 2}, {0, 1}} {
					if r.num < 0 || r.start+max(r.num, 1) > iters {
						continue
					}
					params := map[string]any{ParamStartIteration: r.start}
					if r.num > 0 {
						params[ParamNumIteration] = r.num
					}
					end := nt
					if r.num > 0 {
						end = (r.start + r.num) * k
					}
					for lo := 0; lo+batch <= rows; lo += max(batch, rows/4) {
						in := &tensor.Tensor{Name: "input-0", Datatype: tensor.FP64, Shape: []int64{int64(batch), int64(nf)}, Data: x[lo*nf : (lo+batch)*nf]}
						res, err := m.Predict(context.Background(), &runtime.Request{Inputs: []*tensor.Tensor{in}, Outputs: []string{OutputRawScore}, Parameters: params})
						if err != nil {
							t.Fatal(err)
						}
						got := res.Outputs[0].Data.([]float64)
						for i := range batch {
							row := x[(lo+i)*nf : (lo+i+1)*nf]
							want := nodeWalkRaw(m, row, r.start*k, end)
							if m.b.averageOutput {
								continue
							}
							for c := range k {
								if g := got[i*k+c]; math.Float64bits(g) != math.Float64bits(want[c]) {
									t.Fatalf("batch %d, iterations %+v, row %v class %d: flat %v, node walk %v", batch, r, row, c, g, want[c])
								}
							}
						}
					}
				}
			}
		})
	}
	if laidOut == 0 {
		t.Fatal("no model used the flat layout")
	}
}

// TestFlatLayout checks what buildFlat chose on hand-made trees: which
// trees fall back to the node walk, and that a leaf keeps the walk.
func TestFlatLayout(t *testing.T) {
	cat := `num_leaves=2
num_cat=1
split_feature=0
threshold=0
decision_type=1
left_child=-1
right_child=-2
leaf_value=1 2
cat_boundaries=0 1
cat_threshold=6`
	m := mustParse(t, build(header("regression", 1, 2), stump, constant, cat, numTree(10, "nan"), numTree(8, "inf")), Options{})
	var fits []bool
	for _, ft := range m.b.ftrees {
		fits = append(fits, ft.size > 0)
	}
	if want := []bool{true, true, false, false, true}; fmt.Sprint(fits) != fmt.Sprint(want) {
		t.Errorf("laid out %v, want %v (categorical and NaN-threshold trees keep the node walk)", fits, want)
	}
	// The +Inf threshold with NaN going right reads the NaN indicator.
	if m.b.varOff[varNaNFlag] < 0 {
		t.Errorf("varOff = %v: no NaN indicator for the +Inf threshold", m.b.varOff)
	}
	// f0 = NaN: stump left 0.1, constant 0.2, cat (NaN never in the set)
	// right 2, NaN threshold: NaN type default left → numTree's left leaf,
	// +Inf with NaN right → right leaf.
	for _, rows := range []int{1, 9} {
		x := make([][]float64, rows)
		for i := range x {
			x[i] = []float64{math.NaN(), 0}
		}
		got := predictRows(t, m, nil, x...)
		want := nodeWalkRaw(m, x[0], 0, 5)[0]
		for i, g := range got {
			if g != want {
				t.Errorf("batch %d row %d: %v, want %v", rows, i, g, want)
			}
		}
	}
}

// TestFlatConcurrentPredict calls Predict on shared models from several
// goroutines at once (run it with -race), in batches on both sides of
// every boundary the flat walks have: walkRow below minBlock, walkBlock's
// block size (64 rows, or fewer for a wide model) and evaluate's chunks
// of chunkRows rows, which large batches split among goroutines. Every
// score must match the node walk bit for bit.
func TestFlatConcurrentPredict(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 9))
	models := map[string]*Model{}
	for _, name := range []string{"binary_nan", "binary_zero_as_missing", "multiclass", "regression_linear_tree"} {
		models[name] = loadCase(t, name)
	}
	for _, nf := range []int{6, 40} { // 40 features: rows too wide for 64-row blocks
		var trees []string
		for range 30 {
			trees = append(trees, randomTree(rng, 40, nf, 0, false))
		}
		models[fmt.Sprintf("random%d", nf)] = mustParse(t, build(header("binary sigmoid:1", 1, nf), trees...), Options{})
	}
	batches := []int{1, 7, 8, 9, 63, 64, 65, 127, 129, chunkRows - 1, chunkRows, chunkRows + 1, 2*chunkRows - 1, 2*chunkRows + 1, 3*chunkRows + 9}
	for name, m := range models {
		t.Run(name, func(t *testing.T) {
			if m.b.ftrees == nil {
				t.Fatal("no tree laid out")
			}
			nf, k := m.NumFeatures(), m.b.treesPerIter
			rows := batches[len(batches)-1]
			x := edgeRows(rng, m, rows)
			want := make([]float64, 0, rows*k)
			for i := range rows {
				want = append(want, nodeWalkRaw(m, x[i*nf:(i+1)*nf], 0, len(m.b.trees))...)
			}
			var wg sync.WaitGroup
			errs := make(chan error, 4*len(batches))
			for g := range 4 {
				wg.Go(func() {
					for j := range batches {
						batch := batches[(j+g)%len(batches)]
						lo := (g * 37) % (rows - batch + 1)
						in := &tensor.Tensor{Name: "input-0", Datatype: tensor.FP64, Shape: []int64{int64(batch), int64(nf)}, Data: x[lo*nf : (lo+batch)*nf]}
						res, err := m.Predict(context.Background(), &runtime.Request{Inputs: []*tensor.Tensor{in}, Outputs: []string{OutputRawScore}})
						if err != nil {
							errs <- err
							return
						}
						got := res.Outputs[0].Data.([]float64)
						for i, g := range got {
							if w := want[lo*k+i]; math.Float64bits(g) != math.Float64bits(w) {
								errs <- fmt.Errorf("batch %d, row %d class %d: flat %v, node walk %v", batch, lo+i/k, i%k, g, w)
								return
							}
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}
