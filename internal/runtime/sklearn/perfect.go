package sklearn

import (
	"math"
	"unsafe"
)

// The perfect layout stores a tree as a complete binary tree of its own
// depth in heap order (node i's children are 2i+1 and 2i+2), leaves above
// the last level pushed down by padding splits whose two subtrees repeat
// the leaf. A walk then needs no child pointers, no leaf test and no
// branch: exactly depth steps of load, compare, add.
//
// scikit-learn compares float32(x) <= threshold with a float64 threshold.
// For a float32 x that is the same as x <= t32, where t32 is the largest
// float32 not above the threshold (−Inf when there is none), so the walk
// compares float32s with no loss of exactness.
//
// Missing values are folded into the row instead of the step, as the
// XGBoost runtime does: each row is expanded once to 2×cols float32s, NaN
// as +Inf in the first half and −Inf in the second. A split that sends NaN
// right reads the first half (+Inf <= t32 fails unless t32 is +Inf), one
// that sends it left the second (−Inf <= every t32 that is not NaN).
// Present values are the same in both halves. Trees with a NaN threshold
// or a threshold of +Inf would break the argument and keep the node walk.

// perfTree is a tree's perfect layout: 2^depth-1 splits in heap order, as
// two arrays (the feature's index in the expanded row, and the threshold
// rounded down to float32), and the 2^depth leaves' values, k each, copied
// from tree.values so that the last step reads them without an indirection.
type perfTree struct {
	depth     int
	k         int
	nFeatures int // the unexpanded row width the features index
	feat      []uint32
	thr       []float32
	vals      []float64
}

const (
	// maxPerfectDepth bounds a perfect tree at 2^12 leaves.
	maxPerfectDepth = 12
	// Trees up to perfectFreeDepth are always laid out; deeper ones only
	// while padding at most perfectSlack times their real node count.
	perfectFreeDepth = 6
	perfectSlack     = 4
	// blockRows is how many rows a block walk carries through each tree.
	blockRows = 64
	// smallBatch is the batch below which rows walk trees one at a time.
	smallBatch = 8
)

// floor32 is the largest float32 not above v (−Inf when none is).
func floor32(v float64) float32 {
	f := float32(v)
	if float64(f) > v {
		f = math.Nextafter32(f, float32(math.Inf(-1)))
	}
	return f
}

// maxDepth is the number of splits on the tree's longest root-to-leaf
// path. Children come after their parents (readTree checks it), so one
// pass in index order sees every node's depth before its children's,
// without recursing as deep as a degenerate tree.
func (t *tree) maxDepth() int {
	d := make([]int32, len(t.nodes))
	deepest := int32(0)
	for i, n := range t.nodes {
		if n.left < 0 {
			deepest = max(deepest, d[i])
			continue
		}
		d[n.left] = max(d[n.left], d[i]+1)
		d[n.right] = max(d[n.right], d[i]+1)
	}
	return int(deepest)
}

// buildPerfect lays t out perfect when it fits; t.perf stays nil otherwise.
// Call it after the leaves' values are final (normalizeLeaves).
func (t *tree) buildPerfect(nFeatures int) {
	d := t.maxDepth()
	if d > maxPerfectDepth || (d > perfectFreeDepth && 1<<(d+1)-1 > perfectSlack*len(t.nodes)) {
		return
	}
	for _, n := range t.nodes {
		if n.left >= 0 && (n.threshold != n.threshold || n.threshold == math.Inf(1)) {
			return
		}
	}
	p := &perfTree{depth: d, k: t.nValues, nFeatures: nFeatures, feat: make([]uint32, 1<<d-1), thr: make([]float32, 1<<d-1), vals: make([]float64, t.nValues<<d)}
	t.fillPerfect(p, 0, 0, 0, nFeatures)
	t.perf = p
}

// fillPerfect writes the subtree of node src at heap index h, level lvl.
func (t *tree) fillPerfect(p *perfTree, h, lvl, src, nFeatures int) {
	if lvl == p.depth {
		l := h - len(p.feat)
		copy(p.vals[l*p.k:(l+1)*p.k], t.values[src*t.nValues:(src+1)*t.nValues])
		return
	}
	n := &t.nodes[src]
	left, right := src, src
	// Padding (under a leaf) keeps feature 0 and threshold 0: either way
	// leads to the same leaf.
	if n.left >= 0 {
		f := uint32(n.feature)
		if n.missingLeft {
			f += uint32(nFeatures)
		}
		p.feat[h], p.thr[h] = f, floor32(n.threshold)
		left, right = int(n.left), int(n.right)
	}
	t.fillPerfect(p, 2*h+1, lvl+1, left, nFeatures)
	t.fillPerfect(p, 2*h+2, lvl+1, right, nFeatures)
}

// expandRows writes the rows of x (cols each) into buf as float32, 2×cols
// per row: NaN as +Inf, then NaN as −Inf.
func expandRows(buf []float32, x []float64, cols int) {
	inf, ninf := float32(math.Inf(1)), float32(math.Inf(-1))
	rows := len(x) / cols
	for r := range rows {
		row := x[r*cols : (r+1)*cols]
		out := buf[r*2*cols : (r+1)*2*cols]
		right, left := out[:cols], out[cols:]
		for f, v := range row {
			v32 := float32(v)
			if v32 != v32 {
				right[f], left[f] = inf, ninf
				continue
			}
			right[f], left[f] = v32, v32
		}
	}
}

func b2u(b bool) uint32 {
	var u uint32
	if b {
		u = 1
	}
	return u
}

// leaf1 walks the perfect tree for one expanded row (2×nFeatures values)
// and returns its leaf's values. The loads skip bounds checks for the
// reasons walk gives; row's length is checked once.
func (p *perfTree) leaf1(row []float32) []float64 {
	if len(row) != 2*p.nFeatures {
		panic("sklearn: perfect walk: row does not fit")
	}
	xp := unsafe.Pointer(unsafe.SliceData(row))
	fp := unsafe.Pointer(unsafe.SliceData(p.feat))
	tp := unsafe.Pointer(unsafe.SliceData(p.thr))
	var i uint32
	for range p.depth {
		x := *(*float32)(unsafe.Add(xp, uintptr(*(*uint32)(unsafe.Add(fp, uintptr(i)*4)))*4))
		i = 2*i + 2 - b2u(x <= *(*float32)(unsafe.Add(tp, uintptr(i)*4)))
	}
	l := int(i) - len(p.feat)
	return p.vals[l*p.k : (l+1)*p.k]
}

// prepareTrees lays out every tree that fits the perfect layout.
func prepareTrees(trees []*tree, nFeatures int) {
	for _, t := range trees {
		t.buildPerfect(nFeatures)
	}
}

// sumTrees adds, for each row of x and each tree in order, the tree's leaf
// values (k of them) to out[row*k:], as a row-by-row walk does: 0 + v0 +
// v1 + ... when out starts at zero. Large batches go in blocks of rows,
// each converted to float32 once and then walked tree by tree.
func sumTrees(trees []*tree, x mat, out []float64, k int) {
	cols := x.cols
	stride := 2 * cols
	if x.rows < smallBatch {
		var small [2 * 64]float32
		var buf []float32
		if stride <= len(small) {
			buf = small[:stride]
		} else {
			buf = make([]float32, stride)
		}
		for r := range x.rows {
			xr := x.row(r)
			expandRows(buf, xr, cols)
			o := out[r*k : (r+1)*k]
			for ti := 0; ti < len(trees); ti++ {
				t := trees[ti]
				if ti+4 <= len(trees) && quad(trees[ti:ti+4]) {
					// Four walks at once: independent chains of loads.
					v0, v1, v2, v3 := leaf4(trees[ti:ti+4], buf)
					for _, v := range [4][]float64{v0, v1, v2, v3} {
						for j := range o {
							o[j] += v[j]
						}
					}
					ti += 3
					continue
				}
				var v []float64
				if t.perf != nil {
					v = t.perf.leaf1(buf)
				} else {
					v = t.value(xr)
				}
				for j := range o {
					o[j] += v[j]
				}
			}
		}
		return
	}
	buf := make([]float32, blockRows*stride)
	var leaves [blockRows]uint32
	for lo := 0; lo < x.rows; lo += blockRows {
		hi := min(lo+blockRows, x.rows)
		n := hi - lo
		xb := x.data[lo*cols : hi*cols]
		expandRows(buf, xb, cols)
		ob := out[lo*k : hi*k]
		for _, t := range trees {
			p := t.perf
			switch {
			case p == nil:
				for r := range n {
					v := t.value(xb[r*cols : (r+1)*cols])
					o := ob[r*k : (r+1)*k]
					for j := range o {
						o[j] += v[j]
					}
				}
			case k == 2 && p.depth >= 2:
				p.add2(buf, stride, n, ob)
			default:
				p.leaves(buf, stride, n, leaves[:])
				for r, l := range leaves[:n] {
					v := p.vals[int(l)*k : int(l+1)*k]
					o := ob[r*k : (r+1)*k]
					for j := range o {
						o[j] += v[j]
					}
				}
			}
		}
	}
}

// leafValues copies each row's leaf values (nValues of them) to
// out[row*nValues:], exactly as stored: a single tree adds nothing up.
func (t *tree) leafValues(x mat, out []float64) {
	k := t.nValues
	if t.perf == nil || x.rows < smallBatch {
		for r := range x.rows {
			copy(out[r*k:(r+1)*k], t.value(x.row(r)))
		}
		return
	}
	cols := x.cols
	stride := 2 * cols
	buf := make([]float32, blockRows*stride)
	var leaves [blockRows]uint32
	for lo := 0; lo < x.rows; lo += blockRows {
		hi := min(lo+blockRows, x.rows)
		expandRows(buf, x.data[lo*cols:hi*cols], cols)
		t.perf.leaves(buf, stride, hi-lo, leaves[:])
		for r, l := range leaves[:hi-lo] {
			copy(out[(lo+r)*k:(lo+r+1)*k], t.perf.vals[int(l)*k:int(l+1)*k])
		}
	}
}

// walk is what a level of a block walk reads: the block's expanded rows,
// rowBytes apart, and the perfect tree's nodes. Its loads skip Go's bounds
// checks, which cost a third of a step: buildPerfect wrote features below
// 2×nFeatures, the row width, and a heap index below 2^depth-1 has both
// children inside the tree.
type walk struct {
	xp, fp, tp unsafe.Pointer
	rowBytes   uintptr
}

func (p *perfTree) walk(xb []float32, stride, n int) walk {
	if n > blockRows || len(xb) < n*stride || stride != 2*p.nFeatures {
		panic("sklearn: perfect walk: block does not fit")
	}
	return walk{
		xp:       unsafe.Pointer(unsafe.SliceData(xb)),
		fp:       unsafe.Pointer(unsafe.SliceData(p.feat)),
		tp:       unsafe.Pointer(unsafe.SliceData(p.thr)),
		rowBytes: uintptr(stride) * 4,
	}
}

// leaves walks the n expanded rows in xb (stride float32s apart) one level
// at a time across all rows, so the CPU overlaps their independent chains
// of loads, and writes each row's leaf (0 to 2^depth-1) to out[:n].
func (p *perfTree) leaves(xb []float32, stride, n int, out []uint32) {
	ix := out[:n]
	if p.depth == 0 {
		clear(ix)
		return
	}
	w := p.walk(xb, stride, n)
	w.root(ix)
	for range p.depth - 1 {
		w.level(ix)
	}
	first := uint32(len(p.feat))
	for r := range ix {
		ix[r] -= first
	}
}

// add2 is leaves for two values per leaf and depth 2 or more, fused with
// the sum: the pass that makes the last split adds the leaf's values to
// ob[2r:].
func (p *perfTree) add2(xb []float32, stride, n int, ob []float64) {
	w := p.walk(xb, stride, n)
	var idx [blockRows]uint32
	ix := idx[:n]
	w.root(ix)
	for range p.depth - 2 {
		w.level(ix)
	}
	w.last2(ix, uint32(len(p.feat)), p.vals, ob[:2*n])
}

// root makes every row's first split, which needs no node load. The loops
// below step byte offsets rather than pointers, which must never point past
// the block.
//
//go:noinline
func (w walk) root(ix []uint32) {
	xp := unsafe.Add(w.xp, uintptr(*(*uint32)(w.fp))*4)
	thr := *(*float32)(w.tp)
	var row uintptr
	for r := range ix {
		x := *(*float32)(unsafe.Add(xp, row))
		ix[r] = 2 - b2u(x <= thr)
		row += w.rowBytes
	}
}

// level moves every row one split down. It is a function of its own so
// that its loop keeps every value in a register.
//
//go:noinline
func (w walk) level(ix []uint32) {
	xp, fp, tp := w.xp, w.fp, w.tp
	var row uintptr
	for r, i := range ix {
		f := *(*uint32)(unsafe.Add(fp, uintptr(i)*4))
		x := *(*float32)(unsafe.Add(xp, row+uintptr(f)*4))
		ix[r] = 2*i + 2 - b2u(x <= *(*float32)(unsafe.Add(tp, uintptr(i)*4)))
		row += w.rowBytes
	}
}

// last2 makes the last split and adds the leaf's two values to ob[2r:].
// vals holds 2 values for each of the 2^depth leaves; ob is checked once.
//
//go:noinline
func (w walk) last2(ix []uint32, first uint32, vals, ob []float64) {
	xp, fp, tp := w.xp, w.fp, w.tp
	vp := unsafe.Pointer(unsafe.SliceData(vals))
	op := unsafe.Pointer(unsafe.SliceData(ob[:2*len(ix)]))
	var row, out uintptr
	for _, i := range ix {
		f := *(*uint32)(unsafe.Add(fp, uintptr(i)*4))
		x := *(*float32)(unsafe.Add(xp, row+uintptr(f)*4))
		l := 2*i + 2 - b2u(x <= *(*float32)(unsafe.Add(tp, uintptr(i)*4))) - first
		v := (*[2]float64)(unsafe.Add(vp, uintptr(l)*16))
		o := (*[2]float64)(unsafe.Add(op, out))
		o[0] += v[0]
		o[1] += v[1]
		row += w.rowBytes
		out += 16
	}
}

// quad tells whether ts are four perfect trees of one depth.
func quad(ts []*tree) bool {
	for _, t := range ts[:4] {
		if t.perf == nil || t.perf.depth != ts[0].perf.depth {
			return false
		}
	}
	return true
}

// leaf4 is leaf1 for four perfect trees of one depth walked together, so
// that the CPU overlaps their chains of loads.
func leaf4(ts []*tree, row []float32) (v0, v1, v2, v3 []float64) {
	p0, p1, p2, p3 := ts[0].perf, ts[1].perf, ts[2].perf, ts[3].perf
	for _, p := range [4]*perfTree{p0, p1, p2, p3} {
		if len(row) != 2*p.nFeatures {
			panic("sklearn: perfect walk: row does not fit")
		}
	}
	xp := unsafe.Pointer(unsafe.SliceData(row))
	step := func(p *perfTree, i uint32) uint32 {
		f := *(*uint32)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(p.feat)), uintptr(i)*4))
		x := *(*float32)(unsafe.Add(xp, uintptr(f)*4))
		return 2*i + 2 - b2u(x <= *(*float32)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(p.thr)), uintptr(i)*4)))
	}
	var i0, i1, i2, i3 uint32
	for range p0.depth {
		i0, i1, i2, i3 = step(p0, i0), step(p1, i1), step(p2, i2), step(p3, i3)
	}
	leaf := func(p *perfTree, i uint32) []float64 {
		l := int(i) - len(p.feat)
		return p.vals[l*p.k : (l+1)*p.k]
	}
	return leaf(p0, i0), leaf(p1, i1), leaf(p2, i2), leaf(p3, i3)
}
